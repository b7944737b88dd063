"""GET /v1/endpoints?status=: each page holds exactly the endpoints in that status, in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.admin.harness import DEAD_URL, Ops
from tests.conftest import endpoint_yaml

pytestmark = pytest.mark.both_backends


def walk(ops: Ops, limit: int, **filters: str) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; every endpoint seen, in order."""
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        response = ops.get("/v1/endpoints", **params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= limit
        seen += page["data"]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            return seen


def names(endpoints: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in endpoints]


def test_each_status_lists_its_endpoints_with_their_counts(states_relay: Ops) -> None:
    """The filter agrees with each endpoint's own answer, counts included, on every page."""
    every = walk(states_relay, 2)
    assert names(every) == ["good", "flaky", "broken", "paused", "slow"]
    for status in ("ok", "error", "paused", "disabled"):
        expected = [e for e in every if e["status"] == status]
        for limit in (1, 100):
            assert walk(states_relay, limit, status=status) == expected
    assert names(walk(states_relay, 1, status="error")) == ["flaky", "broken"]
    for endpoint in every:
        one = states_relay.get(f"/v1/endpoints/{endpoint['name']}").json()
        assert endpoint["counts"] == one["counts"] and endpoint["status"] == one["status"]


def test_status_tenant_and_source_combine_across_both_sources_and_the_store(
        make_ops: Callable[..., Ops]) -> None:
    """relay.yaml's, the API's, and an endpoint only the store still knows, filtered."""
    ops = make_ops(endpoint_yaml("on", DEAD_URL) + endpoint_yaml("off", DEAD_URL,
                                                                 enabled=False))
    for name, tenant in (("api-a", "acme"), ("api-b", "acme"), ("api-c", "globex")):
        created = ops.http.post("/v1/endpoints", json={
            "name": name, "url": "https://hooks.example.com/in", "tenant": tenant})
        assert created.status_code == 201, created.text
    assert ops.post("/v1/endpoints/api-b/pause").status_code == 200
    assert ops.http.delete("/v1/endpoints/api-c").status_code == 204
    ops.execute("INSERT INTO endpoint_state (name, paused) VALUES ('ghost', 1)")
    assert names(walk(ops, 1)) == ["on", "off", "api-a", "api-b", "ghost"]
    assert names(walk(ops, 1, status="ok")) == ["on", "api-a"]
    assert names(walk(ops, 1, status="paused")) == ["api-b"]
    assert names(walk(ops, 1, status="disabled")) == ["off", "ghost"]
    assert names(walk(ops, 1, status="paused", tenant="acme")) == ["api-b"]
    assert names(walk(ops, 1, status="ok", source="api")) == ["api-a"]
    assert names(walk(ops, 1, status="disabled", source="config")) == ["off"]
    assert walk(ops, 1, tenant="globex") == []  # deleted: gone from the list
    [ghost] = [e for e in walk(ops, 100) if e["name"] == "ghost"]
    assert ghost["configured"] is False and ghost["paused"] is True
