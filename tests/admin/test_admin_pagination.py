"""Keyset pagination of the delivery list: complete and stable while deliveries arrive."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.admin.harness import DEAD_URL, Ops
from tests.conftest import endpoint_yaml

pytestmark = pytest.mark.both_backends


def walk(ops: Ops, limit: int, **filters: str) -> tuple[list[int], int]:
    """Follow next_cursor to the end; returns the ids seen and how many pages it took."""
    ids: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        response = ops.get("/v1/deliveries", **params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["data"]) <= limit
        ids += [int(d["id"].removeprefix("dlv_")) for d in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            return ids, pages


def test_walking_1000_deliveries_while_new_ones_arrive(make_ops: Callable[..., Ops]) -> None:
    """Small pages over 1,000 deliveries skip nothing and repeat nothing under new ingest."""
    ops = make_ops(endpoint_yaml("a", DEAD_URL) + endpoint_yaml("b", DEAD_URL))
    for name in ("a", "b"):  # held deliveries stay put, so the list only grows
        assert ops.post(f"/v1/endpoints/{name}/pause").status_code == 200
    ops.send_batch(1000)
    ops.wait_counts("a", held=1000)
    stop = threading.Event()
    arrived = [0]

    def keep_sending() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                response = client.post(ops.relay.url + "/v1/events", content=json.dumps(
                    {"type": "license.updated"}), headers={"Content-Type": "application/json"})
                assert response.status_code == 202
                arrived[0] += 1

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        ids, pages = walk(ops, 37, endpoint="a")
        everything, _ = walk(ops, 50)
    finally:
        stop.set()
        sender.join()
    assert arrived[0] > 0, "no delivery arrived during the walk"
    assert ids == sorted(ids, reverse=True), "not newest first"
    assert len(ids) == len(set(ids)), "a delivery was repeated"
    stored = [row[0] for row in ops.relay.rows(
        "SELECT id FROM deliveries WHERE endpoint = 'a' AND id <= ? ORDER BY id DESC", (ids[0],))]
    assert ids == stored, "a delivery was skipped"
    assert len(ids) >= 1000
    assert pages >= 1000 // 37
    assert everything == sorted(set(everything), reverse=True)
    assert set(ids) <= set(everything)


def test_filters_hold_across_pages(make_ops: Callable[..., Ops]) -> None:
    """Filters hold across every page, and the last page says there is no more."""
    ops = make_ops(endpoint_yaml("a", DEAD_URL) + endpoint_yaml("b", DEAD_URL))
    for name in ("a", "b"):
        ops.post(f"/v1/endpoints/{name}/pause")
    ops.send_batch(30, "license.created")
    ops.send_batch(20, "order.created")
    ops.wait_counts("b", held=50)
    ids, pages = walk(ops, 7, endpoint="b", type="order.created", status="held")
    assert len(ids) == 20
    assert pages == 3
    rows = ops.relay.rows("SELECT id FROM deliveries WHERE endpoint = 'b' AND "
                          "event_type = 'order.created' ORDER BY id DESC")
    assert ids == [r[0] for r in rows]
    first = ops.get("/v1/deliveries", limit=100, endpoint="a").json()
    assert first["next_cursor"] is None
    assert len(first["data"]) == 50
    assert first["has_more"] is False
