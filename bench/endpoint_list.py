"""The endpoint list with 10,000 API endpoints: a page, and a page filtered by status.

`GET /v1/endpoints` pages 100 endpoints; `?status=` keeps those whose status
(ok, error, paused, disabled) matches. The relay holds 10,000 API endpoints of
5,000 tenants (as `bench.tenants` writes them) with 100,000 finished
deliveries spread over them; a quarter are paused, a tenth disabled, a fifth
failing, the rest ok. Each figure is the median time of one request, against
the same run's `GET /v1/endpoints/{name}` (one endpoint's answer, the least a
page of endpoints can cost) as the baseline.

    python -m bench.endpoint_list [--quick]
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import httpx

from bench.common import PYTHON, Figures, free_port, process, report, workdir
from bench.tenants import add_endpoints, config, create_schema

STATUSES = ("", "?status=ok", "?status=error", "?status=paused", "?status=disabled")


def states(db_path: Path, names: list[str], deliveries: int, now: float) -> None:
    """Give the endpoints their states, and `deliveries` finished deliveries among them."""
    db = sqlite3.connect(db_path)
    rows = []
    for n, name in enumerate(names):
        if n % 4 == 0:
            rows.append((name, 1, None, None, None))
        elif n % 10 == 1:
            rows.append((name, 0, "failing for 5d", now - 3600, now - 5 * 86400))
        elif n % 5 == 2:
            rows.append((name, 0, None, None, now - 600))
    db.executemany("INSERT OR REPLACE INTO endpoint_state (name, paused, disabled_reason, "
                   "disabled_at, failing_since) VALUES (?, ?, ?, ?, ?)", rows)
    db.executemany(
        "INSERT INTO deliveries (event_id, endpoint, event_type, status, attempts, "
        "created_at, updated_at, last_attempt_at, last_status_code, last_error, tenant) "
        "VALUES (?, ?, 'license.created', ?, 1, ?, ?, ?, ?, ?, ?)",
        [(f"evt_{i}", names[i % len(names)], "failed" if i % 7 == 0 else "delivered",
          now - i, now - i, now - i, 500 if i % 7 == 0 else 200,
          "HTTP 500" if i % 7 == 0 else None, f"cus_{(i % len(names)) // 2:05d}")
         for i in range(deliveries)])
    db.commit()
    db.close()


def timed(client: httpx.Client, path: str, repeats: int) -> list[float]:
    """Milliseconds per request, one request at a time."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def run(quick: bool = False) -> list[dict[str, object]]:
    tenants = 500 if quick else 5_000
    deliveries = 10_000 if quick else 100_000
    repeats = 3 if quick else 7
    folder, port = workdir(), free_port()
    path = config(folder, port)
    create_schema(folder, path, port)
    names = add_endpoints(folder, tenants, "http://127.0.0.1:9/", paused=False)
    states(folder / "relay.db", names, deliveries, time.time())
    url = f"http://127.0.0.1:{port}"
    requests = (*STATUSES, f"?tenant=cus_{tenants // 2:05d}")  # one tenant: two endpoints
    results = []
    with process([PYTHON, "-m", "relay", "run", "-c", str(path)], ready_url=url + "/healthz",
                 log=folder / "relay.log"), httpx.Client(base_url=url, timeout=300) as client:
        for query in requests:  # warm: the first page read fills SQLite's cache
            client.get("/v1/endpoints" + query).raise_for_status()
        one = timed(client, f"/v1/endpoints/{names[len(names) // 2]}", repeats)
        for query in requests:
            page = client.get("/v1/endpoints" + query).json()
            results.append(report(
                f"endpoint list, {len(names):,} API endpoints: GET /v1/endpoints{query} "
                f"({len(page['data'])} on the page)",
                Figures("a page of the list", "ms", timed(client, "/v1/endpoints" + query,
                                                          repeats)),
                Figures("one endpoint, GET /v1/endpoints/{name}", "ms", one),
                higher_is_better=False))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    run(parser.parse_args().quick)
