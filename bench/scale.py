"""Scale: a relay with 1,000,000 pending deliveries; its memory and delivery rate.

The backlog is written straight into the SQLite file (the API would take
minutes to fill it), then the relay drains the first deliveries to nginx. The
rate with a million waiting must match the rate with ten thousand waiting:
claiming the next due delivery is an index lookup, not a scan. Peak RSS is the
VmHWM of the relay process plus that of its SQLite writer process (a sum of
two peaks, so an upper bound of what both held at once).

    python -m bench.scale [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path

from bench.common import (
    PYTHON,
    Figures,
    delivery_rate,
    free_port,
    process,
    report,
    tree_memory_mb,
    workdir,
)
from bench.delivery import write_config
from bench.ingest import EVENT
from bench.nginx import nginx

MEASURED = 10_000  # deliveries timed in each run


def fill(db: Path, count: int) -> None:
    body = json.dumps(EVENT).encode()
    now = time.time()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous=OFF")
    for start in range(0, count, 50_000):
        ids = range(start, min(start + 50_000, count))
        conn.executemany("INSERT INTO events (id, type, body, received_at, delivery_count) "
                         "VALUES (?, 'license.created', ?, ?, 1)",
                         ((f"evt_scale_{i:09d}", body, now + i * 1e-6) for i in ids))
        conn.executemany("INSERT INTO deliveries (event_id, endpoint, event_type, status, "
                         "next_attempt_at, created_at, updated_at) VALUES "
                         "(?, 'sink', 'license.created', 'pending', ?, ?, ?)",
                         ((f"evt_scale_{i:09d}", now + i * 1e-6, now, now) for i in ids))
    conn.commit()
    conn.close()
    # The rows were written without syncing: flush them now, or the relay's
    # first checkpoint pays for writing the whole file out inside the timing.
    for name in (db, db.with_name(db.name + "-wal")):
        if name.exists():
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def drain_rate(backlog: int, target: str) -> tuple[float, float]:
    folder = workdir()
    port = free_port()
    config = write_config(folder, port, target)
    url = f"http://127.0.0.1:{port}/healthz"
    with process([PYTHON, "-m", "relay", "run", "-c", str(config)], ready_url=url):
        pass  # creates the schema
    fill(folder / "relay.db", backlog)
    with process([PYTHON, "-m", "relay", "run", "-c", str(config)], ready_url=url,
                 log=folder / "relay.log") as proc:
        rate = delivery_rate(folder / "relay.db", MEASURED)
        rss = tree_memory_mb(proc.pid, "VmHWM")  # a sum of peaks: an upper bound
    return rate, rss


def run(quick: bool = False) -> list[dict[str, object]]:
    big = 30_000 if quick else 1_000_000
    repeats = 1 if quick else 2
    big_rates, small_rates, rss = [], [], []
    with nginx() as target:
        for _ in range(repeats):
            rate, peak = drain_rate(big, target)
            big_rates.append(rate)
            rss.append(peak)
            # The small run is short, so one hiccup moves it a lot: take two.
            small_rates.extend(drain_rate(MEASURED, target)[0] for _ in range(2))
    results = [report(
        f"scale: delivery rate with {big:,} pending vs {MEASURED:,} pending",
        Figures(f"relay, {big:,} pending", "deliv/s", big_rates),
        Figures(f"relay, {MEASURED:,} pending", "deliv/s", small_rates),
        target=">= 0.9x",
    )]
    print(f"  peak RSS of the relay and its writer with {big:,} pending: {max(rss):.0f} MB "
          "(target < 150 MB)")
    results.append({"benchmark": f"scale: peak RSS with {big:,} pending", "measured": max(rss),
                    "unit": "MB", "target": "< 150 MB"})
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="30,000 pending instead of 1M")
    run(parser.parse_args().quick)
