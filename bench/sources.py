"""Ingest through a source with HMAC verification vs plain POST /v1/events, in one relay.

One relay process serves both: `/v1/events` and a `babel` source (hex
HMAC-SHA256 of the body, checked before the parse). wrk posts the same 1 KiB
event to each in turn, the source's request signed as Babel signs it, so the
ratio is what verification, the header dict and the source's lookups cost.
As in `bench.ingest`, the one endpoint is paused: every request commits an
event and a delivery row and nothing else competes for the CPU.

    python -m bench.sources [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sqlite3
import time
from pathlib import Path

from bench.common import PYTHON, Figures, free_port, process, report, workdir, wrk
from bench.ingest import EVENT

SECRET = "bench-babel-secret"


def lua_script(folder: Path, name: str, headers: dict[str, str]) -> Path:
    body = json.dumps(EVENT)
    script = folder / f"post-{name}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())
    )
    return script


def babel_headers() -> dict[str, str]:
    """Babel's headers for the bench body, without a webhook id: every request is a new event."""
    body = json.dumps(EVENT).encode()
    return {"Content-Type": "application/json", "X-Babel-Event": "license.created",
            "X-Babel-Timestamp": "2025-06-02T09:30:00Z",
            "X-Babel-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def relay_config(folder: Path, port: int) -> Path:
    config = folder / "relay.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"storage: sqlite:///{folder / 'relay.db'}\n"
        "logging: {level: warning, format: json}\n"
        "delivery: {allow_networks: [127.0.0.0/8]}\n"
        "sources:\n"
        f"  - {{name: babel, verify: {{scheme: babel, secret: {SECRET}}},\n"
        "     type_from: 'header:X-Babel-Event'}\n"
        "endpoints:\n"
        "  - {name: sink, url: 'http://127.0.0.1:9/', allow_http: true, events: ['*'],\n"
        "     signature: x-webhook}\n"
    )
    return config


def run(quick: bool = False) -> list[dict[str, object]]:
    seconds = 1.0 if quick else 10.0
    repeats = 1 if quick else 3
    folder = workdir()
    port = free_port()
    config = relay_config(folder, port)
    (folder / "relay.db").unlink(missing_ok=True)
    ready = f"http://127.0.0.1:{port}/healthz"
    with process([PYTHON, "-m", "relay", "run", "-c", str(config)], ready_url=ready):
        pass  # the schema, so that the sink can be paused before the runs
    db = sqlite3.connect(folder / "relay.db")
    db.execute("INSERT OR REPLACE INTO endpoint_state (name, paused) VALUES ('sink', 1)")
    db.commit()
    db.close()
    plain = lua_script(folder, "plain", {"Content-Type": "application/json"})
    signed = lua_script(folder, "babel", babel_headers())
    plain_url = f"http://127.0.0.1:{port}/v1/events"
    source_url = f"http://127.0.0.1:{port}/v1/sources/babel"
    source_rates, plain_rates = [], []
    with process([PYTHON, "-m", "relay", "run", "-c", str(config)], ready_url=ready,
                 log=folder / "relay.log"):
        wrk(plain_url, plain, 1)  # warm-up, both paths
        wrk(source_url, signed, 1)
        for _ in range(repeats):
            plain_rates.append(wrk(plain_url, plain, seconds))
            source_rates.append(wrk(source_url, signed, seconds))
            time.sleep(0.5)
    return [report(
        "ingest: POST /v1/sources/babel (HMAC verified) vs POST /v1/events, 1 KiB, "
        "64 connections",
        Figures("source with HMAC-SHA256 verification", "events/s", source_rates),
        Figures("plain /v1/events, same relay", "events/s", plain_rates),
        target=">= 0.9x",
    )]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for CI")
    run(parser.parse_args().quick)
