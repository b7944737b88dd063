"""Idempotent ingest across relays: one key posted to two relays at once is one event."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import endpoint_yaml
from tests.postgres.conftest import Cluster
from tests.postgres.pg import PgClient
from tests.postgres.receiver import FastReceiver
from tests.support import wait_until

pytestmark = pytest.mark.postgres


def test_same_key_to_two_relays_at_once_gives_one_event(
    make_cluster: Callable[..., Cluster], fast_receiver: FastReceiver, pg: PgClient,
    schema: str,
) -> None:
    """100 keys, each posted to both relays at the same instant: one 202 and one duplicate."""
    relays = make_cluster(2, endpoint_yaml("sink", fast_receiver.url + "/sink"))
    keys = [f"order-{n}" for n in range(100)]

    def race(key: str) -> list[int]:
        barrier = threading.Barrier(2)
        body = json.dumps({"type": "order.created", "orderId": key})

        def post(url: str) -> int:
            barrier.wait()
            response = httpx.post(url + "/v1/events", content=body, timeout=30,
                                  headers={"Content-Type": "application/json",
                                           "Idempotency-Key": key})
            return response.status_code

        with ThreadPoolExecutor(2) as pool:
            return sorted(pool.map(post, [relay.url for relay in relays]))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(race, keys))
    assert answers == [[200, 202]] * len(keys)
    assert pg.fetch("SELECT count(*) FROM events", schema=schema) == [(100,)]
    assert pg.fetch("SELECT count(*) FROM deliveries", schema=schema) == [(100,)]
    wait_until(lambda: len(fast_receiver.log("/sink").ids) >= 100, message="100 deliveries")
    assert sorted(fast_receiver.log("/sink").ids) == sorted(keys)


def test_same_key_different_bodies_to_two_relays_is_one_event_and_a_conflict(
    make_cluster: Callable[..., Cluster], fast_receiver: FastReceiver, pg: PgClient,
    schema: str,
) -> None:
    """Two bodies under one key at once: the first stored wins, the other gets 409."""
    relays = make_cluster(2, endpoint_yaml("sink", fast_receiver.url + "/sink"))
    barrier = threading.Barrier(2)

    def post(index: int) -> int:
        barrier.wait()
        response = httpx.post(relays[index].url + "/v1/events", timeout=30,
                              content=json.dumps({"type": "order.created", "v": index}),
                              headers={"Content-Type": "application/json",
                                       "Idempotency-Key": "contested"})
        return response.status_code

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(post, [0, 1])) == [202, 409]
    assert pg.fetch("SELECT count(*) FROM events", schema=schema) == [(1,)]
