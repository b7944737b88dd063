"""Content filters at ingest: 100 filtered endpoints against one unfiltered, same run.

wrk posts the 1 KiB license event of `bench.ingest` (productId prod_42) to
three relays in turn, each routing it to exactly one endpoint, so each
request commits an event and one delivery and the difference is the filters:

- baseline: one endpoint without a filter;
- indexed: 100 endpoints, each `data.productId == "prod_N"`: the filters
  share one lookup of the path (`relay.filters.FilterSet`);
- evaluated: 100 endpoints, each `data.seats >= N and data.seats < N+1`
  (the event has 25 seats), which no index serves: all 100 run per event.

Endpoints are paused, so deliveries are only stored. Target: >= 0.8x.

    python -m bench.filters [--quick]
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

from bench.common import PYTHON, Figures, free_port, process, report, workdir, wrk
from bench.ingest import lua_script

ENDPOINTS = 100
VARIANTS = {
    "baseline": "",
    "indexed": 'data.productId == "prod_{n}"',
    "evaluated": "data.seats >= {n} and data.seats < {n1}",
}


def relay_config(folder: Path, port: int, variant: str) -> Path:
    template = VARIANTS[variant]
    lines = []
    for n in range(1 if not template else ENDPOINTS):
        flt = f", filter: '{template.format(n=n, n1=n + 1)}'" if template else ""
        lines.append(f"  - {{name: ep{n}, url: 'http://127.0.0.1:9/', allow_http: true, "
                     f"signature: x-webhook{flt}}}\n")
    config = folder / f"relay-{variant}.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"storage: sqlite:///{folder / f'{variant}.db'}\n"
        "logging: {level: warning, format: json}\n"
        "delivery: {allow_networks: [127.0.0.0/8]}\n"
        "endpoints:\n" + "".join(lines)
    )
    return config


def prepare(folder: Path, port: int, variant: str) -> Path:
    """Create the schema, then pause every endpoint so deliveries are only stored."""
    config = relay_config(folder, port, variant)
    db_path = folder / f"{variant}.db"
    db_path.unlink(missing_ok=True)
    with process([PYTHON, "-m", "relay", "run", "-c", str(config)],
                 ready_url=f"http://127.0.0.1:{port}/healthz"):
        pass
    db = sqlite3.connect(db_path)
    count = ENDPOINTS if VARIANTS[variant] else 1
    db.executemany("INSERT OR REPLACE INTO endpoint_state (name, paused) VALUES (?, 1)",
                   [(f"ep{n}",) for n in range(count)])
    db.commit()
    db.close()
    return config


def run(quick: bool = False) -> list[dict[str, object]]:
    seconds = 1.0 if quick else 10.0
    repeats = 1 if quick else 3
    folder = workdir()
    script = lua_script(folder, 1)
    ports = {variant: free_port() for variant in VARIANTS}
    configs = {variant: prepare(folder, ports[variant], variant) for variant in VARIANTS}
    rates: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    order = list(VARIANTS)
    for round_ in range(repeats):
        # Interleaved, so drift in the machine hits all three, and each round starts with
        # another one, so that none always runs first (after the pause, on a cooler cache).
        for variant in order[round_ % len(order):] + order[:round_ % len(order)]:
            url = f"http://127.0.0.1:{ports[variant]}"
            with process([PYTHON, "-m", "relay", "run", "-c", str(configs[variant])],
                         ready_url=url + "/healthz", log=folder / "relay.log"):
                wrk(url + "/v1/events", script, 1)  # warm-up
                rates[variant].append(wrk(url + "/v1/events", script, seconds))
            time.sleep(0.5)
    baseline = Figures("1 endpoint, no filter", "events/s", rates["baseline"])
    return [
        report("filters: POST /v1/events, 100 endpoints with one-field filters, 64 connections",
               Figures("100 filtered endpoints (shared index)", "events/s", rates["indexed"]),
               baseline, target=">= 0.8x"),
        report("filters: POST /v1/events, 100 endpoints with range filters, 64 connections",
               Figures("100 filtered endpoints (each evaluated)", "events/s",
                       rates["evaluated"]),
               baseline, target=">= 0.8x"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for CI")
    run(parser.parse_args().quick)
