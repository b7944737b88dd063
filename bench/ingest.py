"""Durable ingest throughput: the relay's POST /v1/events vs a bare Starlette endpoint.

Both servers run as subprocesses with the same uvicorn settings; wrk (another
process) posts 1 KiB license events over 64 connections. The relay routes each
event to one endpoint that is paused, so every request commits an event and a
delivery row (fsync included) without delivery work competing for the CPU.

    python -m bench.ingest [--quick]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path

from bench.common import PYTHON, Figures, free_port, process, report, workdir, wrk

EVENT = {"type": "license.created", "data": {
    "licenseKey": "ABCD-1234-EFGH-5678", "productId": "prod_42", "seats": 25,
    "customer": {"id": "cus_9", "email": "ops@example.com", "name": "Example Ltd"},
    "notes": "x" * 820,
}}


def lua_script(folder: Path, batch: int) -> Path:
    single = json.dumps(EVENT)
    assert 1000 <= len(single) <= 1100, len(single)
    body = single if batch == 1 else "[" + ",".join([single] * batch) + "]"
    script = folder / f"post-{batch}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def relay_config(folder: Path, port: int) -> Path:
    config = folder / "relay.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"storage: sqlite:///{folder / 'relay.db'}\n"
        "logging: {level: warning, format: json}\n"
        "ingest: {max_body_bytes: 2MiB}\n"
        "delivery: {allow_networks: [127.0.0.0/8]}\n"
        "endpoints:\n"
        "  - {name: sink, url: 'http://127.0.0.1:9/', allow_http: true, events: ['*'],\n"
        "     signature: x-webhook}\n"
    )
    return config


def pause_sink(folder: Path, port: int, config: Path) -> None:
    """Create the schema, then mark the endpoint paused so deliveries are only stored."""
    with process([PYTHON, "-m", "relay", "run", "-c", str(config)],
                 ready_url=f"http://127.0.0.1:{port}/healthz"):
        pass
    db = sqlite3.connect(folder / "relay.db")
    db.execute("INSERT OR REPLACE INTO endpoint_state (name, paused) VALUES ('sink', 1)")
    db.commit()
    db.close()


def run(quick: bool = False) -> list[dict[str, object]]:
    seconds = 1.0 if quick else 10.0
    repeats = 1 if quick else 3
    folder = workdir()
    results = []
    for batch in (1, 100):
        relay_port, bare_port = free_port(), free_port()
        config = relay_config(folder, relay_port)
        (folder / "relay.db").unlink(missing_ok=True)
        pause_sink(folder, relay_port, config)
        script = lua_script(folder, batch)
        path = "/v1/events" if batch == 1 else "/v1/events/batch"
        relay_rates, bare_rates = [], []
        for _ in range(repeats):
            with process([PYTHON, "-m", "bench.bare_app", str(bare_port)],
                         ready_url=f"http://127.0.0.1:{bare_port}/healthz"):
                wrk(f"http://127.0.0.1:{bare_port}{path}", script, 1)  # warm-up
                bare_rates.append(wrk(f"http://127.0.0.1:{bare_port}{path}", script, seconds)
                                  * batch)
            with process([PYTHON, "-m", "relay", "run", "-c", str(config)],
                         ready_url=f"http://127.0.0.1:{relay_port}/healthz",
                         log=folder / "relay.log"):
                wrk(f"http://127.0.0.1:{relay_port}{path}", script, 1)
                relay_rates.append(wrk(f"http://127.0.0.1:{relay_port}{path}", script, seconds)
                                   * batch)
            time.sleep(0.5)
        what = "POST /v1/events, 1 KiB" if batch == 1 else f"POST /v1/events/batch, {batch} x 1 KiB"
        results.append(report(
            f"ingest: {what}, 64 connections",
            Figures("relay (durable, group commit)", "events/s", relay_rates),
            Figures("bare Starlette endpoint (no storage)", "events/s", bare_rates),
            target=">= 0.8x" if batch == 1 else "",
        ))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for CI")
    run(parser.parse_args().quick)
