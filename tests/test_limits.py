"""Per-endpoint delivery controls: rate limit, max_in_flight, fifo, automatic disable."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from tests.conftest import endpoint_yaml
from tests.support import Received, Receiver, RelayThread

pytestmark = pytest.mark.both_backends


def post_many(relay: RelayThread, count: int, event_type: str = "license.created") -> None:
    batch = [{"type": event_type, "n": i} for i in range(count)]
    assert relay.post(json.dumps(batch), path="/v1/events/batch").status_code == 202


def test_rate_limit_is_honoured_within_10_percent(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """rate_limit: 20/s sends a one-second burst, then 20 per second, +-10 %."""
    relay = make_relay(endpoint_yaml("limited", receiver.url, rate_limit="20/s"))
    post_many(relay, 100)
    arrivals = sorted(r.at for r in receiver.wait_for(100, timeout=15))
    steady = arrivals[20:]  # after the burst of one second's worth of tokens
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    assert 18.0 <= rate <= 22.0, f"measured {rate:.1f}/s"
    assert arrivals[19] - arrivals[0] < 0.5  # the burst went out at once


def test_max_in_flight_is_never_exceeded(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """A receiver counting concurrent requests never sees more than max_in_flight."""
    receiver = make_receiver(lambda i, r: ("hang", 0.2))
    relay = make_relay(endpoint_yaml("narrow", receiver.url, max_in_flight=3))
    post_many(relay, 30)
    receiver.wait_for(30, timeout=15)
    assert receiver.max_in_flight == 3


def test_global_concurrency_caps_all_endpoints(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """delivery.concurrency bounds attempts in flight across endpoints together."""
    receiver = make_receiver(lambda i, r: ("hang", 0.2))
    relay = make_relay(
        endpoint_yaml("a", receiver.url + "/a", max_in_flight=10)
        + endpoint_yaml("b", receiver.url + "/b", max_in_flight=10),
        extra="",
    )
    relay.state.dispatcher.slots.resize(4)
    post_many(relay, 20)
    receiver.wait_for(40, timeout=15)
    assert receiver.max_in_flight == 4


def test_fifo_keeps_ingest_order_across_retries(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """ordering: fifo waits for each delivery (retries included) before the next."""
    seen: dict[int, int] = {}
    lock = threading.Lock()

    def fail_first_try(index: int, request: Received) -> object:
        n = json.loads(request.body)["n"]
        with lock:
            seen[n] = seen.get(n, 0) + 1
            first = seen[n] == 1
        return (500, {}, b"try again") if first and n % 2 == 0 else (200, {}, b"ok")

    receiver = make_receiver(fail_first_try)
    relay = make_relay(endpoint_yaml("ordered", receiver.url, ordering="fifo",
                                     max_in_flight=10))
    for i in range(10):  # one request each: ingest order is commit order
        relay.post(json.dumps({"type": "order.created", "n": i}))
    requests = receiver.wait_for(15, timeout=15)
    order = [json.loads(r.body)["n"] for r in requests]
    assert order == [0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9]
    assert receiver.max_in_flight == 1
    relay.wait_statuses({"delivered": 10})


def test_fifo_moves_on_after_a_failed_delivery(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """A delivery that fails for good does not block the ones behind it."""
    receiver = make_receiver(
        lambda i, r: (400, {}, b"no") if json.loads(r.body)["n"] == 0 else (200, {}, b""))
    relay = make_relay(endpoint_yaml("ordered", receiver.url, ordering="fifo",
                                     retry_client_errors=False))
    for i in range(3):
        relay.post(json.dumps({"type": "order.created", "n": i}))
    relay.wait_statuses({"failed": 1, "delivered": 2})
    assert [json.loads(r.body)["n"] for r in receiver.requests] == [0, 1, 2]


def test_endpoint_failing_for_disable_after_is_disabled(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """Failing without a success for disable_after disables the endpoint and holds its work."""
    receiver = make_receiver(lambda i, r: (500, {}, b"down"))
    relay = make_relay(endpoint_yaml("flaky", receiver.url, disable_after="400ms",
                                     retry_schedule=["100ms"] * 20))
    post_many(relay, 3)
    relay.wait_statuses({"held": 3}, timeout=10)
    [(reason,)] = relay.rows("SELECT disabled_reason FROM endpoint_state WHERE name = 'flaky'")
    assert reason.startswith("failing continuously since ")
    assert reason.endswith("(disable_after: 400ms)")
    attempts_then = len(receiver.requests)
    time.sleep(0.5)
    assert len(receiver.requests) == attempts_then
