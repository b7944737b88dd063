"""Crash loop: SIGKILL the relay at random moments under load; nothing acknowledged is lost."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import SECRET, endpoint_yaml
from tests.support import Receiver, RelayProcess, base_config, db_rows, free_port, wait_until

pytestmark = pytest.mark.slow

KILLS = 6
MAX_IN_FLIGHT = 4


class Loader(threading.Thread):
    """Posts events with unique keys at a steady pace, retrying each until acknowledged.

    That is what a platform should do with an idempotent relay, and it makes the
    accounting exact: every event is eventually acknowledged exactly once.
    """

    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = 1.0 / rate
        self.stop = threading.Event()
        self.acked: dict[str, str] = {}  # key -> type
        self.unacked_attempts = 0
        self.sequence = 0

    def run(self) -> None:
        types = ["license.created", "license.expired", "order.created", "report.created"]
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                self.sequence += 1
                key = f"k-{self.sequence}"
                event_type = types[self.sequence % len(types)]
                body = json.dumps({"type": event_type, "data": {"n": self.sequence}})
                while not self.stop.is_set():
                    try:
                        answer = client.post(self.url, content=body, headers={
                            "Content-Type": "application/json", "Idempotency-Key": key})
                        if answer.status_code in (200, 202):
                            self.acked[key] = event_type
                            break
                        self.unacked_attempts += 1
                    except httpx.HTTPError:
                        self.unacked_attempts += 1
                    time.sleep(0.05)
                time.sleep(self.interval)


def test_crash_loop(make_receiver: Callable[..., Receiver], tmp_path: Path) -> None:
    """Six kill -9 at random moments: every acked event reaches every matching endpoint."""
    rng = random.Random(20261123)
    slow_then_ok = lambda i, r: ("hang", 0.3) if rng.random() < 0.3 else (200, {}, b"ok")  # noqa: E731
    licenses = make_receiver(slow_then_ok)
    everything = make_receiver(slow_then_ok)
    port = free_port()
    db = tmp_path / "relay.db"
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(
        port, db,
        endpoint_yaml("licenses", licenses.url, events=["license.*"],
                      max_in_flight=MAX_IN_FLIGHT)
        + endpoint_yaml("everything", everything.url, max_in_flight=MAX_IN_FLIGHT),
    ))
    relay = RelayProcess(config, port, tmp_path / "relay.log").start()
    loader = Loader(relay.url + "/v1/events", rate=80)
    loader.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.4, 1.2))
            relay.kill()
            time.sleep(rng.uniform(0.0, 0.3))
            relay.start()
        time.sleep(0.5)
        loader.stop.set()
        loader.join(timeout=10)

        acked = dict(loader.acked)
        expected_licenses = {k for k, t in acked.items() if t.startswith("license.")}
        expected_all = set(acked)

        def delivered() -> bool:
            rows = db_rows(db, "SELECT count(*) FROM deliveries WHERE status != 'delivered'")
            return rows == [(0,)]

        wait_until(delivered, timeout=60, interval=0.2, message="every delivery delivered")
        for receiver, expected in ((licenses, expected_licenses), (everything, expected_all)):
            ids = Counter()
            for request in receiver.requests:
                Webhook(SECRET).verify(request.body, request.headers)
                ids[request.header("webhook-id")] += 1
            assert set(ids) == expected, "an acknowledged event is missing or an unknown one came"
            duplicates = sum(n - 1 for n in ids.values())
            # Only attempts in flight at a kill may be repeated.
            assert duplicates <= KILLS * MAX_IN_FLIGHT
        assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
        events = db_rows(db, "SELECT count(*) FROM events")[0][0]
        assert events == len(acked), "an unacknowledged event was stored as if acknowledged"
        print(f"\ncrash loop: {KILLS} kills survived, {len(acked)} events acknowledged, "
              f"{len(expected_licenses) + len(expected_all)} deliveries expected and made, "
              f"{loader.unacked_attempts} posts refused while down")
        assert relay.terminate() == 0
    finally:
        loader.stop.set()
        if relay.proc is not None and relay.proc.poll() is None:
            relay.proc.kill()
