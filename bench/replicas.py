"""Scale-out: delivery with 1, 2 and 3 relays sharing PostgreSQL, and ingest vs SQLite.

Delivery: a backlog of 1 KiB events is stored while it is not yet due; then N
relay processes (all started and answering) share it, and the clock runs from
the moment it falls due (one UPDATE and a NOTIFY) until the last delivery to
nginx is recorded as delivered. Ratios are against one relay on PostgreSQL;
one relay on SQLite (bench.delivery's drain) is measured too, for scale.
Ingest: wrk posts single 1 KiB events to one relay (endpoint paused, so every
request commits an event and a delivery row) on PostgreSQL and on SQLite.

Needs the PostgreSQL server of the tests (RELAY_TEST_POSTGRES, default
postgresql://postgres@127.0.0.1:5432/test); each run uses a schema of its own.

    python -m bench.replicas [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

from bench import delivery as sqlite_delivery
from bench.common import PYTHON, Figures, free_port, process, report, workdir, wrk
from bench.ingest import EVENT, lua_script
from bench.ingest import pause_sink as pause_sqlite_sink
from bench.ingest import relay_config as sqlite_ingest_config
from bench.nginx import nginx
from relay.secrets_at_rest import generate_key
from relay.storage.postgres.store import channel_name

PG_URL = os.environ.get("RELAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CONCURRENCY = 64
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRETS_KEY = generate_key()  # PostgreSQL storage requires one; the replicas share it


def sql(statement: str, *args: object, schema: str | None = None) -> list[asyncpg.Record]:
    """One statement on a short-lived connection (in `schema` when given)."""
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(PG_URL, timeout=10)
        try:
            if schema is not None:
                await conn.execute(f'SET search_path TO "{schema}"')
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:16]}"
    sql(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        sql(f'DROP SCHEMA "{name}" CASCADE')


def config(folder: Path, port: int, storage: str, target: str, name: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"storage: {storage}\nsecrets_key: {SECRETS_KEY}\n"
        "logging: {level: warning, format: json}\n"
        "ingest: {max_body_bytes: 4MiB}\n"
        f"delivery: {{allow_networks: [127.0.0.0/8], concurrency: {CONCURRENCY}}}\n"
        "endpoints:\n"
        f"  - {{name: sink, url: '{target}/hooks', allow_http: true, events: ['*'],\n"
        f"     secret: {SECRET}, max_in_flight: {CONCURRENCY}}}\n"
    )
    return path


def relay(path: Path, port: int, log: Path) -> contextlib.AbstractContextManager[object]:
    return process([PYTHON, "-m", "relay", "run", "-c", str(path)],
                   ready_url=f"http://127.0.0.1:{port}/healthz", log=log)


def drain(replicas: int, count: int, target: str) -> float:
    """Deliveries per second of `replicas` relays sharing one backlog of `count`."""
    folder = workdir()
    with fresh_schema() as schema:
        storage = f"{PG_URL}?search_path={schema}"
        ports = [free_port() for _ in range(replicas)]
        paths = [config(folder, port, storage, target, f"relay-{n}")
                 for n, port in enumerate(ports)]
        one = json.dumps(EVENT)
        with relay(paths[0], ports[0], folder / "migrate.log"):
            pass
        sql("INSERT INTO endpoint_state (name, paused) VALUES ('sink', 1)", schema=schema)
        with relay(paths[0], ports[0], folder / "fill.log"), httpx.Client(timeout=60) as http:
            for start in range(0, count, 500):
                size = min(500, count - start)
                http.post(f"http://127.0.0.1:{ports[0]}/v1/events/batch",
                          content="[" + ",".join([one] * size) + "]",
                          headers={"Content-Type": "application/json"}).raise_for_status()
        # Waiting, not yet due: every relay is up before the first claim.
        sql("UPDATE deliveries SET status = 'pending', next_attempt_at = 1e12", schema=schema)
        sql("DELETE FROM endpoint_state WHERE name = 'sink'", schema=schema)
        with contextlib.ExitStack() as stack:
            for n, (path, port) in enumerate(zip(paths, ports, strict=True)):
                stack.enter_context(relay(path, port, folder / f"relay-{n}.log"))
            started = time.perf_counter()
            sql("UPDATE deliveries SET next_attempt_at = $1", time.time(), schema=schema)
            sql("SELECT pg_notify($1, 'sink')", channel_name(schema))
            while True:
                done = sql("SELECT count(*) FROM deliveries WHERE status = 'delivered'",
                           schema=schema)[0][0]
                if done >= count:
                    break
                time.sleep(0.05)
            return count / (time.perf_counter() - started)


def ingest_rate(storage: str, seconds: float, pause: str | None) -> float:
    """Events/s wrk gets from one relay on `storage`; `pause` is the PG schema to pause in."""
    folder = workdir()
    port = free_port()
    if storage.startswith("sqlite"):
        path = sqlite_ingest_config(folder, port)
        pause_sqlite_sink(folder, port, path)
    else:
        path = folder / "ingest.yaml"
        path.write_text(
            f"listen: 127.0.0.1:{port}\nstorage: {storage}\nsecrets_key: {SECRETS_KEY}\n"
            "logging: {level: warning, format: json}\n"
            "delivery: {allow_networks: [127.0.0.0/8]}\n"
            "endpoints:\n  - {name: sink, url: 'http://127.0.0.1:9/', allow_http: true,\n"
            "     events: ['*'], signature: x-webhook}\n")
        with relay(path, port, folder / "migrate.log"):
            pass
        sql("INSERT INTO endpoint_state (name, paused) VALUES ('sink', 1)", schema=pause)
    script = lua_script(folder, 1)
    with relay(path, port, folder / "relay.log"):
        wrk(f"http://127.0.0.1:{port}/v1/events", script, 1)  # warm-up
        return wrk(f"http://127.0.0.1:{port}/v1/events", script, seconds)


def run(quick: bool = False) -> list[dict[str, object]]:
    count = 3_000 if quick else 20_000
    repeats = 1 if quick else 3
    seconds = 1.0 if quick else 10.0
    rates: dict[int, list[float]] = {1: [], 2: [], 3: []}
    sqlite_rates: list[float] = []
    with nginx() as target:
        for _ in range(repeats):
            for replicas in rates:
                rates[replicas].append(drain(replicas, count, target))
            folder, port = workdir(), free_port()
            path = sqlite_delivery.write_config(folder, port, target)
            sqlite_delivery.fill_backlog(folder, path, port, count)
            sqlite_rates.append(sqlite_delivery.drain(folder, path, port, count))
    results = [
        report(f"scale-out delivery: {replicas} relays vs 1 on PostgreSQL, "
               f"{count:,}-event backlog to nginx",
               Figures(f"{replicas} relays sharing the queue", "deliv/s", rates[replicas]),
               Figures("1 relay", "deliv/s", rates[1]))
        for replicas in (2, 3)
    ]
    results.append(report(
        f"scale-out delivery: 1 relay on PostgreSQL vs on SQLite, {count:,}-event backlog",
        Figures("1 relay on PostgreSQL", "deliv/s", rates[1]),
        Figures("1 relay on SQLite", "deliv/s", sqlite_rates)))
    pg_rates, sqlite_rates = [], []
    for _ in range(repeats):
        with fresh_schema() as schema:
            pg_rates.append(ingest_rate(f"{PG_URL}?search_path={schema}", seconds, schema))
        sqlite_rates.append(ingest_rate("sqlite:///unused", seconds, None))
    results.append(report(
        "scale-out ingest: POST /v1/events, 1 KiB, 64 connections, PostgreSQL vs SQLite",
        Figures("relay on PostgreSQL (durable, group commit)", "events/s", pg_rates),
        Figures("relay on SQLite (durable, group commit)", "events/s", sqlite_rates)))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for CI")
    run(parser.parse_args().quick)
