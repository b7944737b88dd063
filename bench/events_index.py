"""What the event list's tenant index (SQLite 0009, events_tenant) costs tenanted ingest.

Two relays as `bench.tenants` builds them (10,000 paused API endpoints of
5,000 tenants, wrk posting 1 KiB events with a random tenant's `X-Tenant`),
one of them with events_tenant dropped: the same run's baseline. Each event
writes one entry into the index, in a leaf of its own tenant, so a commit
writes about one more page per event. Untenanted ingest writes nothing to it
(a partial index); PostgreSQL's (0007) is partial too, and bench.replicas'
ingest carries no tenant.

    python -m bench.events_index [--quick]
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from bench.common import Figures, free_port, report, workdir
from bench.tenants import add_endpoints, config, create_schema, ingest_rate, tenant_script


def tenant_relay(tenants: int, drop_index: bool) -> tuple[Path, Path, int]:
    folder, port = workdir(), free_port()
    path = config(folder, port)
    create_schema(folder, path, port)
    add_endpoints(folder, tenants, "http://127.0.0.1:9/", paused=True)
    if drop_index:
        db = sqlite3.connect(folder / "relay.db")
        db.execute("DROP INDEX events_tenant")
        db.commit()
        db.close()
    return folder, path, port


def run(quick: bool = False) -> list[dict[str, object]]:
    tenants = 500 if quick else 5_000
    seconds = 1.0 if quick else 10.0
    repeats = 1 if quick else 4
    indexed, bare = tenant_relay(tenants, False), tenant_relay(tenants, True)
    with_index: list[float] = []
    without: list[float] = []
    for n in range(repeats):  # alternate which goes first: the machine's load drifts
        runs = [(without, bare), (with_index, indexed)]
        for rates, (folder, path, port) in runs if n % 2 == 0 else runs[::-1]:
            rates.append(ingest_rate(folder, path, port, tenant_script(folder, tenants),
                                     seconds))
    return [report(
        f"events_tenant: ingest with X-Tenant, {2 * tenants:,} API endpoints of "
        f"{tenants:,} tenants",
        Figures("relay, with events_tenant", "events/s", with_index),
        Figures("relay, events_tenant dropped", "events/s", without))]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    run(parser.parse_args().quick)
