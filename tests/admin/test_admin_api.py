"""The admin API's read routes against a relay with deliveries in every state."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from tests.admin.harness import Ops

pytestmark = pytest.mark.both_backends

STATE_OF = {"good": "delivered", "flaky": "scheduled", "broken": "failed", "paused": "held"}


def iso_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_endpoints_show_status_times_and_counts(states_relay: Ops) -> None:
    """Each endpoint has its status, last sent and next retry times, and counts by state."""
    response = states_relay.get("/v1/endpoints")
    assert response.status_code == 200
    endpoints = {e["name"]: e for e in response.json()["data"]}
    assert list(endpoints) == ["good", "flaky", "broken", "paused", "slow"]  # config order
    assert {name: e["status"] for name, e in endpoints.items()} == {
        "good": "ok", "flaky": "error", "broken": "error", "paused": "paused", "slow": "ok",
    }
    for name, state in STATE_OF.items():
        counts = endpoints[name]["counts"]
        assert counts[state] == 2
        assert sum(counts.values()) == 2
    assert endpoints["slow"]["counts"]["delivered"] == 1
    assert endpoints["slow"]["counts"]["pending"] == 1
    flaky = endpoints["flaky"]
    assert flaky["failing_since"] is not None
    assert flaky["last_delivered_at"] is None
    # retry_schedule [1h]: the next retry is about an hour after the last attempt
    assert 3500 < iso_time(flaky["next_retry_at"]) - iso_time(flaky["last_sent_at"]) < 3700
    assert "503" in flaky["last_error"]
    assert "500" in endpoints["broken"]["status_reason"]  # what the endpoint answers
    good = endpoints["good"]
    assert good["last_sent_at"]
    assert good["last_delivered_at"]
    assert good["next_retry_at"] is None
    assert endpoints["paused"]["last_sent_at"] is None
    assert good["url"].endswith("/hooks")
    assert good["events"] == ["*"]
    assert good["configured"] is True
    assert "secret" not in json.dumps(response.json()).lower()


def test_one_endpoint_and_an_unknown_one(states_relay: Ops) -> None:
    """GET /v1/endpoints/{name} is the list's entry; an unknown name is a 404 problem."""
    listed = {e["name"]: e for e in states_relay.get("/v1/endpoints").json()["data"]}
    one = states_relay.get("/v1/endpoints/broken")
    assert one.status_code == 200
    assert one.json() == listed["broken"]
    missing = states_relay.get("/v1/endpoints/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "urn:relay:problem:unknown-endpoint"
    assert "nope" in missing.json()["detail"]


@pytest.mark.parametrize("state", ["delivered", "scheduled", "failed", "held", "pending"])
def test_deliveries_filtered_by_status(states_relay: Ops, state: str) -> None:
    """?status= returns exactly the deliveries in that state, newest first."""
    data = states_relay.get("/v1/deliveries", status=state).json()["data"]
    expected = {"delivered": 3, "scheduled": 2, "failed": 2, "held": 2, "pending": 1}[state]
    assert len(data) == expected
    assert all(d["status"] == state for d in data)
    ids = [int(d["id"].removeprefix("dlv_")) for d in data]
    assert ids == sorted(ids, reverse=True)


def test_deliveries_filtered_by_endpoint_type_and_time(states_relay: Ops) -> None:
    """endpoint, type, since and until narrow the list and combine."""
    every = states_relay.get("/v1/deliveries").json()["data"]
    assert len(every) == 10
    assert {d["endpoint"] for d in states_relay.get(
        "/v1/deliveries", endpoint="broken").json()["data"]} == {"broken"}
    orders = states_relay.get("/v1/deliveries", type="order.created").json()["data"]
    assert len(orders) == 5
    assert {d["event_type"] for d in orders} == {"order.created"}
    assert {d["event_id"] for d in orders} == {states_relay.events[1]}
    both = states_relay.get("/v1/deliveries", endpoint="good", status="delivered",
                            type="order.created").json()["data"]
    assert len(both) == 1
    assert len(states_relay.get("/v1/deliveries", since="1h").json()["data"]) == 10
    assert states_relay.get("/v1/deliveries", since="2999-01-01T00:00:00Z").json()["data"] == []
    assert states_relay.get("/v1/deliveries", until="2000-01-01T00:00:00Z").json()["data"] == []
    first_created = min(iso_time(d["created_at"]) for d in every)
    exact = datetime.fromtimestamp(first_created, UTC).isoformat()
    assert len(states_relay.get("/v1/deliveries", until=exact).json()["data"]) == 5
    assert states_relay.get("/v1/deliveries", endpoint="no-such").json()["data"] == []


@pytest.mark.parametrize(("params", "parameter"), [
    ({"status": "lost"}, "status"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"since": "yesterday"}, "since"),
    ({"since": "3600"}, "since"),
    ({"until": "soon"}, "until"),
    ({"since": "1h", "until": "2h"}, "until"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"stauts": "failed"}, "stauts"),
])
def test_bad_filters_are_400_naming_the_parameter(
    states_relay: Ops, params: dict[str, str], parameter: str
) -> None:
    """A wrong filter is refused, not ignored, and the problem names the parameter."""
    response = states_relay.get("/v1/deliveries", **params)
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "urn:relay:problem:invalid-parameter"
    assert problem["parameter"] == parameter
    assert problem["detail"].startswith(f"{parameter}:")


def test_a_failed_delivery_shows_every_attempt(states_relay: Ops) -> None:
    """Each attempt has its time, duration, status, response text, error and masked headers."""
    [failed, _] = states_relay.get("/v1/deliveries", endpoint="broken").json()["data"]
    response = states_relay.get(f"/v1/deliveries/{failed['id']}")
    assert response.status_code == 200
    delivery = response.json()
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == 3
    assert delivery["last_status_code"] == 500
    assert "gave up after 3 attempts" in delivery["last_error"]
    attempts = delivery["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    for attempt in attempts:
        assert attempt["status_code"] == 500
        assert attempt["response"] == '{"error": "database is down"}'
        assert attempt["duration_ms"] >= 0
        assert attempt["started_at"].endswith("Z")
        headers = attempt["request_headers"]
        assert headers["webhook-id"] == delivery["event_id"]
        assert headers["webhook-signature"] == "v1,…"  # stored masked, never the signature
    starts = [iso_time(a["started_at"]) for a in attempts]
    assert starts == sorted(starts)
    assert starts[2] - starts[0] >= 0.25  # retry_schedule [100ms, 200ms]


def test_scheduled_and_pending_deliveries(states_relay: Ops) -> None:
    """A scheduled delivery says when it is retried; a pending one has no attempt yet."""
    [scheduled, _] = states_relay.get("/v1/deliveries", endpoint="flaky").json()["data"]
    detail = states_relay.get(f"/v1/deliveries/{scheduled['id']}").json()
    assert detail["status"] == "scheduled"
    assert detail["next_attempt_at"] is not None
    assert [a["status_code"] for a in detail["attempts"]] == [503]
    assert detail["attempts"][0]["response"] == '{"error": "maintenance"}'
    [pending] = states_relay.get("/v1/deliveries", status="pending").json()["data"]
    detail = states_relay.get(f"/v1/deliveries/{pending['id']}").json()
    assert detail["attempts"] == []
    assert detail["attempt_count"] == 0
    [held, _] = states_relay.get("/v1/deliveries", status="held").json()["data"]
    assert held["next_attempt_at"] is None  # nothing is due while the endpoint is paused


def test_delivery_ids_accept_the_bare_number_and_404_otherwise(states_relay: Ops) -> None:
    """dlv_7 and 7 are the same delivery; unknown and malformed ids are 404 problems."""
    [newest] = states_relay.get("/v1/deliveries", limit=1).json()["data"]
    number = newest["id"].removeprefix("dlv_")
    assert states_relay.get(f"/v1/deliveries/{number}").json()["id"] == newest["id"]
    for bad in ("dlv_999999", "dlv_x", "evt_1"):
        response = states_relay.get(f"/v1/deliveries/{bad}")
        assert response.status_code == 404
        assert response.json()["type"] == "urn:relay:problem:unknown-delivery"


def test_an_event_with_its_payload_and_deliveries(states_relay: Ops) -> None:
    """GET /v1/events/{id} shows the payload as received and one delivery per endpoint."""
    event_id = states_relay.events[0]
    response = states_relay.get(f"/v1/events/{event_id}")
    assert response.status_code == 200
    event = response.json()
    assert event["id"] == event_id
    assert event["type"] == "license.created"
    assert event["payload"] == {"type": "license.created", "data": {"n": 1}}
    by_endpoint = {d["endpoint"]: d["status"] for d in event["deliveries"]}
    assert by_endpoint == {"good": "delivered", "flaky": "scheduled", "broken": "failed",
                           "paused": "held", "slow": "delivered"}
    missing = states_relay.get("/v1/events/evt_nope")
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:relay:problem:unknown-event"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/endpoints"),
    ("GET", "/v1/endpoints/good"),
    ("POST", "/v1/endpoints/good/test"),
    ("POST", "/v1/endpoints/good/pause"),
    ("POST", "/v1/endpoints/good/resume"),
    ("POST", "/v1/endpoints/good/recover"),
    ("GET", "/v1/deliveries"),
    ("GET", "/v1/deliveries/dlv_1"),
    ("POST", "/v1/deliveries/dlv_1/retry"),
    ("GET", "/v1/events/evt_x"),
    ("GET", "/metrics"),
])
def test_every_admin_route_needs_the_admin_token(
    states_relay: Ops, method: str, path: str
) -> None:
    """Without the token, or with the ingest one, each admin route answers 401."""
    url = states_relay.relay.url + path
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = httpx.request(method, url, headers=headers, timeout=10)
        assert response.status_code == 401, (path, headers)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "admin.token" in response.json()["detail"]
    assert httpx.get(states_relay.relay.url + "/healthz", timeout=10).status_code == 200
