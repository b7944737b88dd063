"""Run every benchmark: `python -m bench [--quick] [--only NAME ...] [--json FILE]`.

Each benchmark measures its baseline in the same run and prints medians, the
spread and the ratio; `--quick` is the short smoke version CI runs (it checks
that the benchmarks run, not their figures).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time

BENCHMARKS = [
    "ingest", "delivery", "latency", "delivery_clients", "kit_verify", "scale", "replicas",
    "tenants", "endpoint_list", "events_index", "sources", "filters", "telemetry",
]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {sys.platform}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results: list[dict[str, object]] = []
    failed = []
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"\n(skipping {name}: not present)")
                continue
            raise
        try:
            results.extend(module.run(quick=args.quick))
        except Exception as exc:  # one broken benchmark must not hide the others
            failed.append(name)
            print(f"\n!! {name} failed: {type(exc).__name__}: {exc}")
        print(f"   ({name} took {time.monotonic() - started:.0f}s)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine(), "quick": args.quick, "results": results},
                      handle, indent=2)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
