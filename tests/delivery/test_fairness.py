"""Isolation: endpoints that hang never keep a healthy endpoint's deliveries waiting."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import endpoint_yaml
from tests.support import Receiver, RelayThread, wait_until

pytestmark = pytest.mark.both_backends

CONCURRENCY = 8
HANG_S = 30.0  # the hanging endpoints' timeout: nothing of theirs ends during a test


@pytest.fixture
def release(make_relay: Callable[..., RelayThread]) -> Iterator[threading.Event]:
    """Set at teardown, before the relays stop: the hanging receivers answer then."""
    event = threading.Event()
    yield event
    event.set()


def hanging_until(release: threading.Event) -> Callable[[int, object], tuple[int, dict[str, str],
                                                                             bytes]]:
    def answer(index: int, request: object) -> tuple[int, dict[str, str], bytes]:
        release.wait(HANG_S * 2)
        return 200, {}, b"late"

    return answer


def relay_beside_hangers(make_relay: Callable[..., RelayThread], hangers: list[Receiver],
                         healthy: Receiver, timeout: float = HANG_S) -> RelayThread:
    """concurrency 8; each hanging endpoint may have 4 in flight; the healthy one 4."""
    endpoints = "".join(
        endpoint_yaml(f"hang{i}", receiver.url, events=["hang.created"], max_in_flight=4,
                      timeout=f"{timeout:g}s")
        for i, receiver in enumerate(hangers))
    endpoints += endpoint_yaml("healthy", healthy.url, events=["ok.created"], max_in_flight=4)
    return make_relay(endpoints, extra=f"  concurrency: {CONCURRENCY}\n")


def post_hanging_work(relay: RelayThread, count: int) -> None:
    batch = [{"type": "hang.created", "n": i} for i in range(count)]
    assert relay.post(json.dumps(batch), path="/v1/events/batch").status_code == 202


def hung(hangers: list[Receiver]) -> int:
    return sum(receiver.in_flight for receiver in hangers)


@pytest.mark.parametrize("hanging", [2, 3, 6])
def test_a_healthy_endpoint_delivers_while_endpoints_that_hang_fill_the_pool(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver],
    release: threading.Event, hanging: int,
) -> None:
    """N hanging endpoints hold every delivery.concurrency slot: healthy work still flows."""
    hangers = [make_receiver(hanging_until(release)) for _ in range(hanging)]
    healthy = make_receiver()
    relay = relay_beside_hangers(make_relay, hangers, healthy)
    post_hanging_work(relay, 10)
    wait_until(lambda: hung(hangers) >= CONCURRENCY, timeout=20,
               message="the hanging endpoints to hold the whole pool")
    started = time.monotonic()
    latencies = []
    for n in range(10):
        sent = time.monotonic()
        assert relay.post(json.dumps({"type": "ok.created", "n": n})).status_code == 202
        healthy.wait_for(n + 1, timeout=HANG_S / 6)  # not behind the hangers' timeouts
        latencies.append(time.monotonic() - sent)
    # A figure for the README (pytest -s), not an assertion: the machine is shared.
    print(f"\nfairness: {hanging} hanging endpoints hold all {CONCURRENCY} slots; healthy "
          f"endpoint's POST-to-arrival median {1000 * statistics.median(latencies):.1f} ms, "
          f"max {1000 * max(latencies):.1f} ms")
    burst = [{"type": "ok.created", "n": n} for n in range(10, 40)]
    assert relay.post(json.dumps(burst), path="/v1/events/batch").status_code == 202
    healthy.wait_for(40, timeout=HANG_S / 6)
    assert time.monotonic() - started < HANG_S  # the hangers' attempts are all still on
    assert hung(hangers) >= CONCURRENCY
    assert sorted(json.loads(r.body)["n"] for r in healthy.requests) == list(range(40))


def test_endpoints_known_to_hang_share_a_second_allowance_of_the_pool_size(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver],
    release: threading.Event,
) -> None:
    """Once their attempts time out, hanging endpoints keep to delivery.concurrency more.

    Three endpoints could have 12 attempts in flight; after their first ones
    ran long they start new ones only within the second allowance (8), while
    the healthy endpoint keeps the pool; a stop leaves nothing leased.
    """
    hangers = [make_receiver(hanging_until(release)) for _ in range(3)]
    healthy = make_receiver()
    relay = relay_beside_hangers(make_relay, hangers, healthy, timeout=1.5)
    post_hanging_work(relay, 200)
    dispatcher: Any = relay.state.dispatcher
    names = [f"hang{i}" for i in range(3)]
    wait_until(lambda: all(dispatcher.lanes[n].lagging for n in names), timeout=20,
               message="every hanging endpoint to have timed out once")
    time.sleep(2.0)  # past the timeout: what they started before they were known slow ended
    seen: list[int] = []
    for n in range(20):
        seen.append(sum(dispatcher.lanes[name].in_flight for name in names))
        assert relay.post(json.dumps({"type": "ok.created", "n": n})).status_code == 202
        healthy.wait_for(n + 1, timeout=HANG_S / 6)
        time.sleep(0.1)
    assert max(seen) <= CONCURRENCY
    assert dispatcher.slow.used <= CONCURRENCY
    relay.stop()  # lanes waiting for the second allowance stop waiting
    assert "delivering" not in relay.statuses()
