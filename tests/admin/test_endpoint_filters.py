"""Content filters end to end: relay.yaml's and the API's endpoints get only matching events."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.admin.harness import ADMIN_YAML, Ops, receiver
from tests.conftest import endpoint_yaml

pytestmark = pytest.mark.both_backends

PRO = 'data.productId == "prod_42" and data.seats >= 10'


@pytest.fixture
def ops(make_ops: Callable[..., Ops]) -> Ops:
    """`pro` takes big prod_42 licenses only, `all` takes everything."""
    pro, every = receiver(), receiver()
    return make_ops(endpoint_yaml("pro", pro.url + "/hooks", filter=PRO)
                    + endpoint_yaml("all", every.url + "/hooks"),
                    {"pro": pro, "all": every}, ADMIN_YAML)


def deliveries_of(ops: Ops, event_id: str) -> list[str]:
    return sorted(row[0] for row in ops.relay.rows(
        "SELECT endpoint FROM deliveries WHERE event_id = ?", (event_id,)))


def test_only_matching_events_are_stored_for_a_filtered_endpoint(ops: Ops) -> None:
    """The filter runs at ingest: a non-matching event makes no delivery row for it at all."""
    big = ops.send(productId="prod_42", seats=25)
    small = ops.send(productId="prod_42", seats=2)
    other = ops.send(productId="prod_7", seats=25)
    assert deliveries_of(ops, big) == ["all", "pro"]
    assert deliveries_of(ops, small) == ["all"]
    assert deliveries_of(ops, other) == ["all"]
    ops.receivers["all"].wait_for(3)
    [request] = ops.receivers["pro"].wait_for(1)
    assert json.loads(request.body)["data"]["seats"] == 25
    ops.wait_counts("pro", delivered=1)
    assert ops.get("/v1/endpoints/pro").json()["filter"] == PRO


def test_a_batch_is_filtered_event_by_event(ops: Ops) -> None:
    items = [{"type": "license.created", "data": {"productId": "prod_42", "seats": n}}
             for n in (5, 50, 500)]
    response = ops.relay.post(json.dumps(items), path="/v1/events/batch")
    assert response.status_code == 202, response.text
    assert [r["deliveries"] for r in response.json()["results"]] == [1, 2, 2]


def test_the_api_takes_checks_and_changes_a_filter(ops: Ops) -> None:
    """One schema: the API refuses a bad filter naming the field, and a PATCH reroutes at once."""
    target = receiver()
    ops.receivers["api"] = target
    bad = ops.http.post("/v1/endpoints", json={
        "name": "de", "url": target.url + "/hooks", "allow_http": True,
        "filter": "data.customer.country = 'DE'"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    [error] = bad.json()["errors"]
    assert error["field"] == "filter"
    assert "unexpected '=' at character 23 (equality is `==`)" in error["message"]
    made = ops.http.post("/v1/endpoints", json={
        "name": "de", "url": target.url + "/hooks", "allow_http": True,
        "filter": 'data.customer.country in ["DE", "AT"]'})
    assert made.status_code == 201, made.text
    assert made.json()["filter"] == 'data.customer.country in ["DE", "AT"]'
    german = ops.send(customer={"country": "DE"})
    french = ops.send(customer={"country": "FR"})
    assert "de" in deliveries_of(ops, german) and "de" not in deliveries_of(ops, french)
    changed = ops.http.patch("/v1/endpoints/de", json={"filter": 'data.customer.country == "FR"'})
    assert changed.status_code == 200, changed.text
    french = ops.send(customer={"country": "FR"})
    assert "de" in deliveries_of(ops, french)
    cleared = ops.http.patch("/v1/endpoints/de", json={"filter": None})
    assert cleared.status_code == 200 and cleared.json()["filter"] is None
    anything = ops.send(customer={"country": "US"})
    assert "de" in deliveries_of(ops, anything)
