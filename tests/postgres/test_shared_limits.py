"""Per-endpoint limits hold across relays: fifo order, max_in_flight, rate_limit."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.postgres.conftest import Cluster
from tests.postgres.receiver import FastReceiver
from tests.support import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def post_each(relays: Cluster, event_type: str, count: int) -> None:
    """One event per request, round-robin over the relays, in order of `n`."""
    with httpx.Client(timeout=30) as http:
        for n in range(count):
            response = http.post(relays[n % len(relays)].url + "/v1/events",
                                 content=json.dumps({"type": event_type, "n": n}),
                                 headers={"Content-Type": "application/json"})
            assert response.status_code == 202, response.text


def test_fifo_and_max_in_flight_hold_across_three_relays(
    make_cluster: Callable[..., Cluster],
) -> None:
    """fifo: one in flight anywhere, ingest order kept; capped: never above max_in_flight."""
    receiver = FastReceiver(delays={"/ordered": 0.005, "/capped": 0.03}).start()
    try:
        relays = make_cluster(3, endpoint_yaml("ordered", receiver.url + "/ordered",
                                               events=["order.*"], ordering="fifo")
                              + endpoint_yaml("capped", receiver.url + "/capped",
                                              events=["license.*"], max_in_flight=4))
        post_each(relays, "order.created", 60)
        post_each(relays, "license.created", 200)
        wait_until(lambda: len(receiver.log("/ordered").ids) >= 60
                   and len(receiver.log("/capped").ids) >= 200, timeout=40, interval=0.1,
                   message="every delivery")
    finally:
        receiver.stop()
    ordered, capped = receiver.log("/ordered"), receiver.log("/capped")
    assert ordered.numbers == list(range(60))
    assert ordered.max_in_flight == 1
    assert 2 <= capped.max_in_flight <= 4, capped.max_in_flight
    assert sorted(capped.numbers) == list(range(200))


def test_rate_limit_is_shared_by_three_relays(
    make_cluster: Callable[..., Cluster], fast_receiver: FastReceiver,
) -> None:
    """20/s on an endpoint means 20/s in total, not 20/s per relay."""
    relays = make_cluster(3, endpoint_yaml("rated", fast_receiver.url + "/rated",
                                           rate_limit="20/s"))
    post_each(relays, "license.created", 70)
    wait_until(lambda: len(fast_receiver.log("/rated").ids) >= 70, timeout=20,
               message="70 deliveries")
    times = fast_receiver.log("/rated").times
    # A full bucket of 20 goes at once; the other 50 need 2.5 s at 20/s. Relays
    # limiting only themselves would send 60/s and finish in under a second.
    assert times[-1] - times[0] >= 2.2
    for start in times:  # no one-second window holds more than the burst plus the rate
        assert sum(1 for t in times if start <= t < start + 1.0) <= 20 + 21
