"""Latency: from the platform's POST to the receiver's arrival, at a fixed 200 events/s.

The load generator posts at a steady rate and notes when each POST started;
the receiver notes when each webhook-id arrived; both use this host's clock.
The relay's figure includes the ingest commit (fsync), the wake-up of the
endpoint's lane, the claim, signing and the delivery POST. (Measured from the
202 instead, most events arrive before their 202 does: the lane is woken by
the same commit that releases the answer.) The baseline is the same events
posted straight to the receiver: what one HTTP hop costs.

    python -m bench.latency [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import aiohttp
import httpx

from bench.common import PYTHON, Figures, free_port, process, report, workdir
from bench.ingest import EVENT

RATE = 200


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


async def steady_load(url: str, seconds: float, direct: bool) -> dict[str, float]:
    """POST at RATE/s; returns id -> the time its POST started."""
    body = json.dumps(EVENT).encode()
    acked: dict[str, float] = {}
    total = int(RATE * seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def one(i: int) -> None:
            key = f"{'direct' if direct else 'relay'}-{i}"  # distinct ids per run
            headers = {"Content-Type": "application/json",
                       "X-Direct-Id" if direct else "Idempotency-Key": key}
            sent = time.time()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                assert response.status in (200, 202), response.status
            acked[key] = sent

        started = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = started + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return acked


def measure(url: str, receiver: str, seconds: float, direct: bool) -> list[float]:
    acked = asyncio.run(steady_load(url, seconds, direct))
    deadline = time.monotonic() + 30
    while True:
        arrivals = httpx.get(receiver + "/arrivals").json()
        if all(key in arrivals for key in acked) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    missing = [k for k in acked if k not in arrivals]
    if missing:
        raise RuntimeError(f"{len(missing)} events never arrived")
    return [max(arrivals[k] - acked[k], 0.0) * 1000 for k in acked]


def run(quick: bool = False) -> list[dict[str, object]]:
    seconds = 2.0 if quick else 30.0
    folder = workdir()
    receiver_port, relay_port = free_port(), free_port()
    receiver = f"http://127.0.0.1:{receiver_port}"
    config = Path(folder) / "relay.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{relay_port}\n"
        f"storage: sqlite:///{folder / 'relay.db'}\n"
        "logging: {level: warning, format: json}\n"
        "delivery: {allow_networks: [127.0.0.0/8]}\n"
        "endpoints:\n"
        f"  - {{name: sink, url: '{receiver}/hooks', allow_http: true, events: ['*'],\n"
        "     secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}\n"
    )
    with process([PYTHON, "-m", "bench.timing_receiver", str(receiver_port)],
                 ready_url=receiver + "/healthz"):
        direct = measure(receiver + "/hooks", receiver, seconds, direct=True)
        with process([PYTHON, "-m", "relay", "run", "-c", str(config)],
                     ready_url=f"http://127.0.0.1:{relay_port}/healthz",
                     log=Path(folder) / "relay.log"):
            relayed = measure(f"http://127.0.0.1:{relay_port}/v1/events", receiver, seconds,
                              direct=False)
    results = []
    for name, fraction, target in (("p50", 0.5, "< 10 ms"), ("p99", 0.99, "< 50 ms"),
                                   ("max", 1.0, "")):
        results.append(report(
            f"latency {name}: POST -> arrival at {RATE} events/s for {seconds:g}s",
            Figures(f"relay, {name}", "ms", [percentile(relayed, fraction)]),
            Figures(f"direct POST to the receiver, {name}", "ms", [percentile(direct, fraction)]),
            target=target, higher_is_better=False,
        ))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 5-second run, for CI")
    run(parser.parse_args().quick)
