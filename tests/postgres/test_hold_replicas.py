"""Pause, resume and automatic disable made on one replica hold or free every replica's lane.

Each relay keeps its lanes' holds in memory; these tests check that the store's
announcement (NOTIFY `!name`) keeps them in step, without SIGHUP. The replica
that acted is stopped before the last event, so only the other one can send it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.postgres.conftest import Cluster
from tests.support import Receiver, RelayProcess, wait_until

pytestmark = pytest.mark.postgres


def _admin(relay: RelayProcess, path: str) -> httpx.Response:
    response = httpx.post(f"{relay.url}/v1/endpoints/crm/{path}", timeout=10)
    assert response.status_code == 200, response.text
    return response


def _held_on(relay: RelayProcess) -> str | None:
    return httpx.get(f"{relay.url}/v1/endpoints/crm", timeout=5).json().get("status")


def _delivered_by(relay: RelayProcess, receiver: Receiver, before: int) -> float:
    """Post one event to `relay` and return how long until the receiver had it."""
    started = time.monotonic()
    assert relay.post({"type": "license.created", "n": before}).status_code == 202
    receiver.wait_for(before + 1, timeout=5.0)
    return time.monotonic() - started


def test_a_resume_on_one_replica_frees_the_lane_the_other_replica_paused(
        make_cluster: Callable[..., Cluster], receiver: Receiver) -> None:
    one, two = make_cluster(2, endpoint_yaml("crm", receiver.url + "/hooks"))
    _admin(one, "pause")
    assert two.post({"type": "license.created", "n": 0}).status_code == 202
    _admin(two, "resume")  # `one` still has its own lane flagged paused until it hears
    receiver.wait_for(1)
    assert two.terminate() == 0
    took = _delivered_by(one, receiver, 1)
    print(f"\nafter a resume elsewhere, the pausing replica delivered in {took * 1000:.0f} ms")


def test_a_pause_on_one_replica_holds_the_other_replica_s_lane(
        make_cluster: Callable[..., Cluster], receiver: Receiver) -> None:
    one, two = make_cluster(2, endpoint_yaml("crm", receiver.url + "/hooks"))
    _admin(two, "pause")
    assert two.terminate() == 0
    # `one` hears of the pause: its lane holds, so what it takes in waits...
    assert one.post({"type": "license.created", "n": 0}).status_code == 202
    delivery = httpx.get(f"{one.url}/v1/deliveries", timeout=5).json()["data"][0]
    assert delivery["status"] == "held"
    assert receiver.requests == []
    # ...until it resumes, when it is sent at once.
    _admin(one, "resume")
    receiver.wait_for(1)


def test_an_automatic_disable_is_lifted_on_every_replica_by_one_resume(
        make_cluster: Callable[..., Cluster]) -> None:
    gone = Receiver(lambda index, request: (410, {}, b"gone") if index == 0
                    else (200, {}, b"ok")).start()
    try:
        one, two = make_cluster(2, endpoint_yaml("crm", gone.url + "/hooks"))
        assert one.post({"type": "license.created", "n": 0}).status_code == 202
        gone.wait_for(1)
        # Whichever replica met the 410 disabled the endpoint: both must hold now.
        wait_until(lambda: _held_on(one) == "disabled", message="the disable on one")
        _admin(one, "resume")
        assert one.terminate() == 0
        took = _delivered_by(two, gone, 1)
        print(f"\nafter a disable and a resume, the other replica delivered in "
              f"{took * 1000:.0f} ms")
    finally:
        gone.stop()
