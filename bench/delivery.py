"""Delivery throughput: the relay draining a backlog vs a bare aiohttp client loop.

Both post the same 1 KiB bodies with the same concurrency (64) to nginx, on
the same event loop (uvloop). The
relay's figure includes everything a delivery costs: claiming from SQLite,
signing, sending, recording the attempt and the new state.

    python -m bench.delivery [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from pathlib import Path

import aiohttp
import httpx
import uvloop

from bench.common import PYTHON, Figures, delivery_rate, free_port, process, report, workdir
from bench.ingest import EVENT
from bench.nginx import nginx

CONCURRENCY = 64


async def bare_loop(url: str, count: int) -> float:
    """Deliveries/s of a plain aiohttp loop: the fastest Python client measured here."""
    body = json.dumps(EVENT).encode()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                async with session.post(url, data=body, headers={
                        "Content-Type": "application/json"}) as response:
                    await response.read()
                    assert response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return count / (time.perf_counter() - started)


def write_config(folder: Path, port: int, target: str) -> Path:
    config = folder / "relay.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"storage: sqlite:///{folder / 'relay.db'}\n"
        "logging: {level: warning, format: json}\n"
        "ingest: {max_body_bytes: 4MiB}\n"
        f"delivery: {{allow_networks: [127.0.0.0/8], concurrency: {CONCURRENCY}}}\n"
        "endpoints:\n"
        f"  - {{name: sink, url: '{target}/hooks', allow_http: true, events: ['*'],\n"
        "     secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,\n"
        f"     max_in_flight: {CONCURRENCY}}}\n"
    )
    return config


def set_paused(db: Path, paused: bool) -> None:
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO endpoint_state (name, paused) VALUES ('sink', ?) "
                 "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused", (int(paused),))
    if not paused:
        conn.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'held'")
    conn.commit()
    conn.close()


def fill_backlog(folder: Path, config: Path, port: int, count: int) -> None:
    """Ingest `count` events through the API while the endpoint is paused."""
    url = f"http://127.0.0.1:{port}"
    with process([PYTHON, "-m", "relay", "run", "-c", str(config)], ready_url=url + "/healthz"):
        pass
    set_paused(folder / "relay.db", True)
    one = json.dumps(EVENT)
    with (process([PYTHON, "-m", "relay", "run", "-c", str(config)], ready_url=url + "/healthz"),
          httpx.Client(timeout=60) as client):
            for start in range(0, count, 500):
                size = min(500, count - start)
                answer = client.post(url + "/v1/events/batch",
                                     content="[" + ",".join([one] * size) + "]",
                                     headers={"Content-Type": "application/json"})
                answer.raise_for_status()
    set_paused(folder / "relay.db", False)


def drain(folder: Path, config: Path, port: int, count: int) -> float:
    """Start the relay on a full backlog of `count`; deliveries/s until all are made.

    Timed from when the relay answers /healthz; what it delivered before that
    is not counted (`bench.common.delivery_rate`).
    """
    with process([PYTHON, "-m", "relay", "run", "-c", str(config)],
                 ready_url=f"http://127.0.0.1:{port}/healthz", log=folder / "relay.log"):
        return delivery_rate(folder / "relay.db", count)


def run(quick: bool = False) -> list[dict[str, object]]:
    count = 5_000 if quick else 50_000
    repeats = 1 if quick else 3
    relay_rates, bare_rates = [], []
    with nginx() as target:
        for _ in range(repeats):
            # On uvloop, the relay's loop: aiohttp is 7-30% faster there than on
            # asyncio's default loop, and the baseline must be the fastest client.
            bare_rates.append(uvloop.run(bare_loop(target + "/hooks", count)))
            folder = workdir()
            port = free_port()
            config = write_config(folder, port, target)
            fill_backlog(folder, config, port, count)
            relay_rates.append(drain(folder, config, port, count))
    return [report(
        f"delivery: drain a {count:,}-event backlog to nginx, concurrency {CONCURRENCY}",
        Figures("relay (claim, sign, send, record)", "deliv/s", relay_rates),
        Figures("bare aiohttp loop (send only)", "req/s", bare_rates),
        target=">= 0.8x",
    )]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    run(parser.parse_args().quick)
