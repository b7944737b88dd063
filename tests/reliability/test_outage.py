"""Receiver outages: down for several retry periods, or flapping; everything arrives."""

from __future__ import annotations

import http.server
import random
import threading
import time
from collections.abc import Callable

import pytest

from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayThread, free_port, wait_until

pytestmark = pytest.mark.slow

SCHEDULE = [0.2, 0.4, 0.8, 1.6, 3.2]


def test_receiver_down_then_back(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """Down for 2 s: attempts at 0, 0.2, 0.6, 1.4 s fail, the one at 3.0 s delivers."""
    port = free_port()
    relay = make_relay(endpoint_yaml("crm", f"http://127.0.0.1:{port}/hooks",
                                     retry_schedule=[f"{s}s" for s in SCHEDULE]))
    for i in range(5):
        relay.post(f'{{"type": "license.expired", "n": {i}}}')
    started = time.monotonic()
    wait_until(lambda: relay.rows("SELECT count(*) FROM attempts")[0][0] >= 20, timeout=5,
               message="four failed attempts per delivery")
    assert time.monotonic() - started < 2.0
    # The receiver comes back on the same port.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _OkHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        relay.wait_statuses({"delivered": 5}, timeout=10)
        counts = relay.rows("SELECT delivery_id, count(*), max(status_code) FROM attempts "
                            "GROUP BY delivery_id")
        assert all(n == 5 and last == 200 for _, n, last in counts), counts
        assert relay.rows("SELECT DISTINCT error FROM attempts WHERE status_code IS NULL")
    finally:
        server.shutdown()
        server.server_close()


class _OkHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_flapping_receiver_gets_everything(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """Random 5xx, resets and timeouts on 60 % of requests: all 100 events arrive.

    With 31 attempts each, the chance that any delivery fails them all is 1e-5.
    """
    rng = random.Random(7)
    lock = threading.Lock()

    def flaky(index: int, request: object) -> object:
        with lock:
            roll = rng.random()
        if roll < 0.2:
            return (503, {}, b"unavailable")
        if roll < 0.35:
            return (500, {}, b"boom")
        if roll < 0.5:
            return "reset"
        if roll < 0.6:
            return ("hang", 1.0)
        return (200, {}, b"ok")

    receiver = make_receiver(flaky)
    relay = make_relay(endpoint_yaml("crm", receiver.url, timeout="300ms",
                                     retry_schedule=["100ms"] * 30))
    batch = "[" + ",".join(f'{{"type": "order.created", "n": {i}}}' for i in range(100)) + "]"
    assert relay.post(batch, path="/v1/events/batch").status_code == 202
    relay.wait_statuses({"delivered": 100}, timeout=40)
    ok_ids = {r.header("webhook-id") for r in receiver.requests}
    assert len(ok_ids) == 100
