"""API endpoints on two replicas: a change made on one takes effect on the other at once."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from receiver_kit import Verifier
from tests.postgres.conftest import Cluster
from tests.support import Receiver, wait_until

pytestmark = pytest.mark.postgres


def _seen_within(relay_url: str, name: str, expect: int, limit_s: float) -> float:
    """How long until GET /v1/endpoints/NAME on `relay_url` answers `expect`."""
    started = time.monotonic()
    wait_until(lambda: httpx.get(f"{relay_url}/v1/endpoints/{name}",
                                 timeout=5).status_code == expect,
               timeout=limit_s, interval=0.01,
               message=f"{name} answering {expect} on the other replica")
    return time.monotonic() - started


def test_create_update_delete_reach_the_other_replica_within_a_second(
        make_cluster: Callable[..., Cluster], receiver: Receiver) -> None:
    one, two = make_cluster(2, "  []\n")
    response = httpx.post(f"{one.url}/v1/endpoints", timeout=10, json={
        "name": "crm", "url": receiver.url + "/hooks", "allow_http": True,
        "events": ["license.*"], "tenant": "acme"})
    assert response.status_code == 201, response.text
    secret = response.json()["secret"]
    assert _seen_within(two.url, "crm", 200, 1.0) < 1.0
    # The other replica routes and signs with it, straight away.
    answer = httpx.post(f"{two.url}/v1/events", timeout=10, headers={"X-Tenant": "acme"},
                        json={"type": "license.created"})
    assert answer.json()["deliveries"] == 1
    [request] = receiver.wait_for(1)
    Verifier(secret=secret).verify(request.body, request.headers)
    patched = httpx.patch(f"{one.url}/v1/endpoints/crm", json={"events": ["order.*"]},
                          timeout=10)
    assert patched.status_code == 200
    wait_until(lambda: httpx.get(f"{two.url}/v1/endpoints/crm", timeout=5).json()["events"]
               == ["order.*"], timeout=1.0, interval=0.01, message="the change on two")
    assert httpx.delete(f"{one.url}/v1/endpoints/crm", timeout=10).status_code == 204
    assert _seen_within(two.url, "crm", 404, 1.0) < 1.0
