"""Ingest with tracing off and on, in the same run: what a span per request costs.

The relay as in `bench.ingest` (1 KiB events over 64 connections, the endpoint
paused so every request commits an event and a delivery without delivery
work), four ways in turn: tracing off (the `telemetry:` section absent), on
(an ingest span per request, batched and exported over OTLP/HTTP to a local
sink on 127.0.0.1 that decodes and counts them, `bench.otlp_sink`), on with
one trace in ten sampled (the SDK's standard OTEL_TRACES_SAMPLER variables),
and the bare Starlette endpoint, to show that tracing off keeps ingest's figure.
The sink's count says how many spans arrived: the SDK's batch processor drops
spans when its queue (2048) is full rather than slow ingest down.

    python -m bench.telemetry [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import time
from pathlib import Path

import httpx

from bench.common import PYTHON, Figures, free_port, process, report, workdir, wrk
from bench.ingest import lua_script, pause_sink, relay_config


def traced_config(folder: Path, port: int, sink_port: int) -> Path:
    """bench.ingest's relay.yaml, with spans sent to the sink."""
    plain = relay_config(folder, port).read_text()
    config = folder / "relay-traced.yaml"
    config.write_text(plain + f"telemetry: {{otlp_endpoint: 'http://127.0.0.1:{sink_port}'}}\n")
    return config


# The standard SDK variables: one trace in ten, and what a caller's traceparent decided.
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}


def _events(folder: Path) -> int:
    with contextlib.closing(sqlite3.connect(folder / "relay.db")) as db:
        count: int = db.execute("SELECT count(*) FROM events").fetchone()[0]
    return count


def run(quick: bool = False) -> list[dict[str, object]]:
    seconds = 1.0 if quick else 10.0
    repeats = 1 if quick else 3
    folder = workdir()
    relay_port, bare_port, sink_port = free_port(), free_port(), free_port()
    plain = relay_config(folder, relay_port)
    (folder / "relay.db").unlink(missing_ok=True)
    pause_sink(folder, relay_port, plain)
    traced = traced_config(folder, relay_port, sink_port)
    script = lua_script(folder, 1)
    url = f"http://127.0.0.1:{relay_port}/v1/events"
    off, on, sampled, bare = [], [], [], []
    sent = arrived = 0
    # No OTEL_* variable may turn tracing on for the "off" runs.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
    for _ in range(repeats):
        with process([PYTHON, "-m", "bench.bare_app", str(bare_port)],
                     ready_url=f"http://127.0.0.1:{bare_port}/healthz"):
            wrk(f"http://127.0.0.1:{bare_port}/v1/events", script, 1)
            bare.append(wrk(f"http://127.0.0.1:{bare_port}/v1/events", script, seconds))
        with process([PYTHON, "-m", "relay", "run", "-c", str(plain)], ready_url=url[:-10]
                     + "/healthz", env=env, log=folder / "relay.log"):
            wrk(url, script, 1)
            off.append(wrk(url, script, seconds))
        with process([PYTHON, "-m", "bench.otlp_sink", str(sink_port)],
                     ready_url=f"http://127.0.0.1:{sink_port}/healthz"):
            stored = _events(folder)
            with process([PYTHON, "-m", "relay", "run", "-c", str(traced)],
                         ready_url=url[:-10] + "/healthz", env=env, log=folder / "relay.log"):
                wrk(url, script, 1)
                on.append(wrk(url, script, seconds))
            # Every request of this run (warm-up included) was traced; the relay
            # flushed its queue as it stopped.
            sent += _events(folder) - stored
            arrived += httpx.get(f"http://127.0.0.1:{sink_port}/count").json()["spans"]
            with process([PYTHON, "-m", "relay", "run", "-c", str(traced)],
                         ready_url=url[:-10] + "/healthz", env={**env, **SAMPLED},
                         log=folder / "relay.log"):
                wrk(url, script, 1)
                sampled.append(wrk(url, script, seconds))
        time.sleep(0.5)
    results = [
        report("telemetry: POST /v1/events, 1 KiB, 64 connections, tracing on vs off",
               Figures("relay, tracing on (OTLP/HTTP to a local sink)", "events/s", on),
               Figures("relay, tracing off", "events/s", off)),
        report("telemetry: POST /v1/events, 1 KiB, 64 connections, 10% sampled vs off",
               Figures("relay, tracing on, OTEL_TRACES_SAMPLER 10%", "events/s", sampled),
               Figures("relay, tracing off", "events/s", off)),
        report("telemetry: POST /v1/events, 1 KiB, 64 connections, tracing off vs bare",
               Figures("relay, tracing off", "events/s", off),
               Figures("bare Starlette endpoint (no storage)", "events/s", bare),
               target=">= 0.8x"),
    ]
    share = arrived / sent if sent else float("nan")
    print(f"  spans at the sink: {arrived:,} of {sent:,} events traced ({share:.0%}; "
          "what is missing the SDK's full queue dropped)")
    results[0]["spans_exported_share"] = round(share, 3)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for CI")
    run(parser.parse_args().quick)
