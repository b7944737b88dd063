"""A sustained steady load: the relay's memory stays flat while thousands of events pass."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bench.common import tree_memory_mb
from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayProcess, base_config, db_rows, free_port, wait_until

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("RELAY_LOAD_SECONDS", "40"))
RATE = 200  # events per second, each to two endpoints


def test_memory_is_flat_under_steady_load(
    make_receiver: Callable[..., Receiver], tmp_path: Path
) -> None:
    """After warm-up (SQLite's page cache filling to its 8 MB cap) RSS stays within 3 MB."""
    receiver = make_receiver()
    port = free_port()
    db = tmp_path / "relay.db"
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, db, endpoint_yaml("a", receiver.url + "/a")
                                  + endpoint_yaml("b", receiver.url + "/b")))
    relay = RelayProcess(config, port, tmp_path / "relay.log").start()
    assert relay.proc is not None
    stop = threading.Event()
    sent = [0]

    def load(worker: int, workers: int) -> None:
        interval = workers / RATE
        with httpx.Client(timeout=10) as client:
            started = time.monotonic()
            n = 0
            while not stop.is_set():
                body = json.dumps({"type": "telemetry.received", "data": {"w": worker, "n": n,
                                                                          "pad": "x" * 900}})
                answer = client.post(relay.url + "/v1/events", content=body,
                                     headers={"Content-Type": "application/json"})
                assert answer.status_code == 202
                sent[0] += 1
                n += 1
                delay = started + n * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

    workers = [threading.Thread(target=load, args=(i, 4), daemon=True) for i in range(4)]
    for thread in workers:
        thread.start()
    samples: list[tuple[float, float]] = []
    began = time.monotonic()
    try:
        while time.monotonic() - began < SECONDS:
            time.sleep(1.0)
            samples.append((time.monotonic() - began, tree_memory_mb(relay.proc.pid, "VmRSS")))
    finally:
        stop.set()
        for thread in workers:
            thread.join(timeout=10)
    wait_until(lambda: db_rows(db, "SELECT count(*) FROM deliveries WHERE status != "
                                   "'delivered'") == [(0,)], timeout=30,
               message="the backlog to drain")
    warm = [rss for at, rss in samples if at >= SECONDS / 2]
    growth = max(warm) - min(warm)
    print(f"\nload: {sent[0]} events ({sent[0] * 2} deliveries) in {SECONDS:.0f}s; RSS "
          f"{samples[0][1]:.1f} MB at 1s, {min(warm):.1f}-{max(warm):.1f} MB after warm-up")
    assert sent[0] >= RATE * SECONDS * 0.8
    assert growth < 3.0, f"RSS grew by {growth:.1f} MB under steady load"
    assert relay.terminate() == 0
