"""Many tenants: 10,000 API endpoints of 5,000 tenants, against one endpoint, same run.

- Ingest: wrk posts 1 KiB events, each with an `X-Tenant` of one of the 5,000
  tenants, to a relay holding the 10,000 endpoints (each tenant has one for
  license.* and one for order.*, so an event makes one delivery, as in the
  single-endpoint baseline). Endpoints are paused, so deliveries are only
  stored. Target: >= 0.8x the single-endpoint ingest of the same run.
- Drain: 100,000 deliveries spread over the 10,000 endpoints (ten each) to
  nginx, against 100,000 to one endpoint. Target: >= 0.5x.
- Memory: peak RSS of the relay and its SQLite writer while draining with the
  10,000 endpoints. Target: < 250 MB.

The endpoints are written straight into the database with their secrets
sealed under the relay's key file, as the endpoint API would store them (the
API is exercised by the tests; making 10,000 through it here would time the
setup, not the relay). The relay then loads them at start like any others.

    python -m bench.tenants [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from bench.common import (
    PYTHON,
    Figures,
    delivery_rate,
    free_port,
    process,
    report,
    tree_memory_mb,
    workdir,
    wrk,
)
from bench.ingest import EVENT
from bench.nginx import nginx
from relay.registry import SecretVersion, seal_secrets
from relay.secrets_at_rest import SecretBox, load_or_create_key

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def config(folder: Path, port: int, yaml_endpoints: str = "  []\n") -> Path:
    path = folder / "relay.yaml"
    path.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"storage: sqlite:///{folder / 'relay.db'}\n"
        "logging: {level: warning, format: json}\n"
        "ingest: {max_body_bytes: 4MiB, tenant_field: data.customer.tenant}\n"
        "delivery: {allow_networks: [127.0.0.0/8], concurrency: 64}\n"
        f"endpoints:\n{yaml_endpoints}"
    )
    return path


def create_schema(folder: Path, path: Path, port: int) -> None:
    with process([PYTHON, "-m", "relay", "run", "-c", str(path)],
                 ready_url=f"http://127.0.0.1:{port}/healthz"):
        pass


def add_endpoints(folder: Path, tenants: int, url: str, *, paused: bool,
                  events: tuple[str, str] = ("license.*", "order.*")) -> list[str]:
    """Two API endpoints per tenant, written as the API stores them; their names."""
    db_path = folder / "relay.db"
    box = SecretBox(load_or_create_key(db_path.with_name(db_path.name + ".key")))
    now = time.time()
    rows, names = [], []
    for t in range(tenants):
        for kind, pattern in zip(("lic", "ord"), events, strict=True):
            name = f"ep_{t:05d}_{kind}"
            spec = {"name": name, "url": url, "allow_http": True, "events": [pattern],
                    "tenant": f"cus_{t:05d}", "max_in_flight": 10}
            rows.append((name, f"cus_{t:05d}", json.dumps(spec),
                         seal_secrets(box, name, [SecretVersion(SECRET)]), now, now))
            names.append(name)
    db = sqlite3.connect(db_path)
    db.executemany("INSERT INTO api_endpoints VALUES (?, ?, ?, ?, ?, ?)", rows)
    if paused:
        db.executemany("INSERT INTO endpoint_state (name, paused) VALUES (?, 1)",
                       [(n,) for n in names])
    db.commit()
    db.close()
    return names


def tenant_script(folder: Path, tenants: int) -> Path:
    """wrk posting the 1 KiB event with a random tenant's X-Tenant header."""
    script = folder / "post-tenants.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(EVENT))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        f'  local tenant = string.format("cus_%05d", math.random(0, {tenants - 1}))\n'
        '  return wrk.format(nil, nil, {["Content-Type"] = "application/json",\n'
        '                               ["X-Tenant"] = tenant}, nil)\n'
        "end\n"
    )
    return script


def ingest_rate(folder: Path, path: Path, port: int, script: Path, seconds: float) -> float:
    url = f"http://127.0.0.1:{port}"
    with process([PYTHON, "-m", "relay", "run", "-c", str(path)], ready_url=url + "/healthz",
                 log=folder / "relay.log"):
        wrk(url + "/v1/events", script, 1)
        return wrk(url + "/v1/events", script, seconds)


def fill(url: str, count: int, tenants: int | None) -> None:
    """`count` deliveries through the batch API: to one endpoint, or two per tenant event."""
    events = count if tenants is None else count // 2
    with httpx.Client(timeout=120) as client:
        for start in range(0, events, 500):
            batch = []
            for i in range(start, min(start + 500, events)):
                event = json.loads(json.dumps(EVENT))
                if tenants is not None:
                    event["data"]["customer"]["tenant"] = f"cus_{i % tenants:05d}"
                batch.append(event)
            client.post(url + "/v1/events/batch", json=batch).raise_for_status()


def unpause(db_path: Path) -> None:
    db = sqlite3.connect(db_path)
    db.execute("DELETE FROM endpoint_state")
    db.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'held'")
    db.commit()
    db.close()


def drain(folder: Path, path: Path, port: int, count: int) -> tuple[float, float]:
    """Deliveries/s of a relay started on the backlog, and its tree's peak RSS (MB)."""
    url = f"http://127.0.0.1:{port}"
    peak = [0.0]
    with process([PYTHON, "-m", "relay", "run", "-c", str(path)], ready_url=url + "/healthz",
                 log=folder / "relay.log") as proc:
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError, StopIteration):
                    peak[0] = max(peak[0], tree_memory_mb(proc.pid, "VmRSS"))
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            rate = delivery_rate(folder / "relay.db", count)
        finally:
            stop.set()
            sampler.join()
    return rate, peak[0]


def backlog(tenants: int | None, count: int, target: str) -> tuple[Path, Path, int]:
    """A fresh relay folder with `count` deliveries waiting, endpoints paused meanwhile."""
    folder, port = workdir(), free_port()
    sink = (f"  - {{name: sink, url: '{target}/hooks', allow_http: true, events: ['*'],\n"
            f"     secret: {SECRET}, max_in_flight: 64}}\n")
    path = config(folder, port, "  []\n" if tenants else sink)
    create_schema(folder, path, port)
    if tenants:
        add_endpoints(folder, tenants, target + "/hooks", paused=True, events=("*", "*"))
    else:
        db = sqlite3.connect(folder / "relay.db")
        db.execute("INSERT INTO endpoint_state (name, paused) VALUES ('sink', 1)")
        db.commit()
        db.close()
    url = f"http://127.0.0.1:{port}"
    with process([PYTHON, "-m", "relay", "run", "-c", str(path)], ready_url=url + "/healthz",
                 log=folder / "relay.log"):
        fill(url, count, tenants)
    unpause(folder / "relay.db")
    return folder, path, port


def run(quick: bool = False) -> list[dict[str, object]]:
    tenants = 500 if quick else 5_000
    count = 10_000 if quick else 100_000
    seconds = 1.0 if quick else 10.0
    repeats = 1 if quick else 3
    results = []
    # Ingest: the same event, routed to one endpoint or to one of 10,000 by tenant.
    many_rates, one_rates = [], []
    many, many_port = workdir(), free_port()
    many_config = config(many, many_port)
    create_schema(many, many_config, many_port)
    add_endpoints(many, tenants, "http://127.0.0.1:9/", paused=True)
    one, one_port = workdir(), free_port()
    one_config = config(one, one_port, "  - {name: sink, url: 'http://127.0.0.1:9/', "
                                       "allow_http: true, events: ['*'], signature: x-webhook}\n")
    create_schema(one, one_config, one_port)
    db = sqlite3.connect(one / "relay.db")
    db.execute("INSERT INTO endpoint_state (name, paused) VALUES ('sink', 1)")
    db.commit()
    db.close()
    for _ in range(repeats):
        # The same requests (a random X-Tenant each): the one endpoint takes every tenant.
        one_rates.append(ingest_rate(one, one_config, one_port, tenant_script(one, tenants),
                                     seconds))
        many_rates.append(ingest_rate(many, many_config, many_port,
                                      tenant_script(many, tenants), seconds))
    results.append(report(
        f"tenants: ingest, {2 * tenants:,} API endpoints of {tenants:,} tenants, X-Tenant",
        Figures("relay, tenant routing", "events/s", many_rates),
        Figures("relay, one endpoint", "events/s", one_rates), target=">= 0.8x"))
    # Drain: 100,000 deliveries over 10,000 endpoints, or to one.
    many_drains, one_drains, peaks = [], [], []
    with nginx() as target:
        for _ in range(repeats):
            rate, _peak = drain(*backlog(None, count, target), count)
            one_drains.append(rate)
            rate, peak = drain(*backlog(tenants, count, target), count)
            many_drains.append(rate)
            peaks.append(peak)
    results.append(report(
        f"tenants: drain {count:,} deliveries over {2 * tenants:,} endpoints to nginx",
        Figures(f"relay, {2 * tenants:,} endpoints", "deliv/s", many_drains),
        Figures("relay, one endpoint", "deliv/s", one_drains), target=">= 0.5x"))
    print(f"  peak RSS of the relay and its writer with {2 * tenants:,} endpoints: "
          f"{max(peaks):.0f} MB (target < 250 MB)")
    results[-1]["peak_rss_mb"] = round(max(peaks), 1)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    run(parser.parse_args().quick)
