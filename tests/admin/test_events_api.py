"""GET /v1/events: the events received, newest first, per tenant, in stable pages."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from relay.http import schemas
from relay.http.params import encode_cursor, encode_event_cursor
from tests.admin.harness import DEAD_URL, Ops
from tests.conftest import endpoint_yaml

pytestmark = pytest.mark.both_backends


def send(ops: Ops, event_type: str, tenant: str | None = None, **data: Any) -> str:
    headers = {"X-Tenant": tenant} if tenant else {}
    response = ops.relay.post(json.dumps({"type": event_type, "data": data}), headers)
    assert response.status_code == 202, response.text
    event_id: str = response.json()["id"]
    return event_id


def listed(ops: Ops, **params: Any) -> list[str]:
    response = ops.get("/v1/events", **params)
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["data"]]


def walk(ops: Ops, limit: int, **filters: str) -> list[str]:
    """Follow next_cursor to the end; the ids seen, in order."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        response = ops.get("/v1/events", **params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= limit
        ids += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            return ids


@pytest.fixture
def ops(make_ops: Callable[..., Ops]) -> Ops:
    """A relay whose one endpoint takes license events only, paused: nothing is sent."""
    ops = make_ops(endpoint_yaml("a", DEAD_URL, events=["license.*"]))
    assert ops.post("/v1/endpoints/a/pause").status_code == 200
    return ops


def test_the_list_is_newest_first_without_payloads(ops: Ops) -> None:
    """Each item is the event's answer without payload and deliveries, plus a count."""
    first = send(ops, "license.created", "acme", key="ABCD")
    second = send(ops, "order.created", None, n=2)
    response = ops.get("/v1/events")
    assert response.status_code == 200, response.text
    page = schemas.EventPageOut.model_validate(response.json())
    assert [e.id for e in page.data] == [second, first]
    assert not page.has_more and page.next_cursor is None
    for item in response.json()["data"]:
        one = ops.get(f"/v1/events/{item['id']}").json()
        assert "payload" not in item and "deliveries" not in item
        assert {k: one[k] for k in item if k != "delivery_count"} == {
            k: v for k, v in item.items() if k != "delivery_count"}
        assert item["delivery_count"] == len(one["deliveries"])
    assert [e.delivery_count for e in page.data] == [0, 1]  # order.created: no endpoint
    assert [(e.tenant, e.source) for e in page.data] == [(None, "default"), ("acme", "default")]


def test_a_tenant_sees_only_its_own_events(ops: Ops) -> None:
    """?tenant=T lists T's events, never another tenant's nor untenanted ones."""
    mine = [send(ops, "license.created", "acme", n=n) for n in range(3)]
    theirs = [send(ops, "license.created", "globex", n=n) for n in range(3)]
    untenanted = send(ops, "license.created", None)
    assert listed(ops, tenant="acme") == mine[::-1]
    assert listed(ops, tenant="globex") == theirs[::-1]
    assert listed(ops, tenant="initech") == []
    assert listed(ops) == [untenanted, *theirs[::-1], *mine[::-1]]
    assert listed(ops, tenant="acme", type="license.created", limit=2) == mine[::-1][:2]
    assert set(walk(ops, 2, tenant="acme")) == set(mine)


def test_filters_by_type_source_and_time(ops: Ops) -> None:
    """type, source (default: /v1/events) and since/until narrow the list."""
    license_event = send(ops, "license.created", "acme")
    order = send(ops, "order.created", "acme")
    assert listed(ops, type="order.created") == [order]
    assert listed(ops, source="default") == [order, license_event]
    assert listed(ops, source="babel") == []
    received = ops.get(f"/v1/events/{license_event}").json()["received_at"]
    assert license_event in listed(ops, until=received)  # an answer's time includes it
    assert listed(ops, since="1h") == [order, license_event]
    assert listed(ops, until="1h") == []


def test_pages_repeat_and_skip_nothing_while_events_arrive(ops: Ops) -> None:
    """Small pages over 300 events, all and one tenant's, while a tenant's events arrive."""
    for start in range(0, 300, 100):
        items = [{"type": "license.created", "data": {"n": n}} for n in range(start,
                                                                               start + 100)]
        tenant = "acme" if start < 200 else "globex"
        response = ops.relay.post(json.dumps(items), {"X-Tenant": tenant},
                                  path="/v1/events/batch")
        assert response.status_code == 202, response.text
    before = listed(ops, limit=500)
    assert len(before) == 300
    stop = threading.Event()
    arrived = [0]

    def keep_sending() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                response = client.post(ops.relay.url + "/v1/events", content=json.dumps(
                    {"type": "license.updated"}), headers={
                        "Content-Type": "application/json", "X-Tenant": "acme"})
                assert response.status_code == 202
                arrived[0] += 1

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        every, acme = walk(ops, 7), walk(ops, 9, tenant="acme")
    finally:
        stop.set()
        sender.join()
    assert arrived[0] > 0
    for seen in (every, acme):
        assert len(seen) == len(set(seen))
    old = set(before)
    assert [e for e in every if e in old] == before
    assert [e for e in acme if e in old] == before[100:]  # acme's are the older 200


@pytest.mark.parametrize(("params", "parameter"), [
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"since": "yesterday"}, "since"),
    ({"since": "1h", "until": "2h"}, "until"),
    ({"cursor": "garbage!"}, "cursor"),
    ({"cursor": encode_cursor(5)}, "cursor"),  # the delivery list's
    ({"cursor": encode_event_cursor("no such position")}, "cursor"),
    ({"endpoint": "a"}, "endpoint"),
    ({"status": "failed"}, "status"),
])
def test_bad_parameters_are_problems(ops: Ops, params: dict[str, str], parameter: str) -> None:
    """Each bad parameter is a 400 problem naming it."""
    response = ops.get("/v1/events", **params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["parameter"] == parameter, problem
    assert problem["type"] == "urn:relay:problem:invalid-parameter"


def test_the_list_is_behind_the_admin_token_and_ingest_still_posts(ops: Ops) -> None:
    """GET /v1/events is the admin API's; POST stays ingest's, other methods 405."""
    send(ops, "license.created")
    anonymous = httpx.get(ops.relay.url + "/v1/events", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    put = httpx.put(ops.relay.url + "/v1/events", content=b"{}", timeout=10)
    assert put.status_code == 405
    assert len(listed(ops)) == 1


def test_the_cli_lists_a_tenants_events(ops: Ops) -> None:
    """`relay events --tenant T` prints T's events, newest first; --json the API's page."""
    mine = send(ops, "license.created", "acme")
    theirs = send(ops, "order.created", "globex")
    shown = ops.cli("events", "--tenant", "acme")
    assert shown.code == 0, shown.err
    assert mine in shown.out and theirs not in shown.out
    assert "license.created" in shown.out and "acme" in shown.out
    as_json = ops.cli("events", "--json", "--type", "order.created")
    assert as_json.code == 0, as_json.err
    assert [e["id"] for e in as_json.json()["data"]] == [theirs]
    none = ops.cli("events", "--tenant", "initech")
    assert none.code == 0 and "no events match" in none.out
    bad = ops.cli("events", "--since", "yesterday")
    assert bad.code != 0 and "since" in bad.err
