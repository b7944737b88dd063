"""test, pause/resume, recover and retry through the admin API, with real deliveries."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.admin.harness import ADMIN_YAML, DEAD_URL, Ops, Switch, always, receiver, start_ops
from tests.conftest import endpoint_yaml
from tests.support import db_rows, wait_until

pytestmark = pytest.mark.both_backends


def test_test_event_reaches_a_live_receiver(make_ops: Callable[..., Ops]) -> None:
    """`test` sends a signed webhook.test through the normal path and answers delivered."""
    live = receiver()
    ops = make_ops(endpoint_yaml("live", live.url + "/hooks", events=["license.*"]),
                   {"live": live})
    response = ops.post("/v1/endpoints/live/test")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "delivered"
    delivery = answer["delivery"]
    assert delivery["status"] == "delivered"
    assert delivery["endpoint"] == "live"
    assert delivery["event_type"] == "webhook.test"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    [request] = live.wait_for(1)
    assert request.header("webhook-id") == answer["event_id"]
    assert (request.header("webhook-signature") or "").startswith("v1,")
    assert json.loads(request.body)["type"] == "webhook.test"
    # the test event is an event like any other: stored, listed, inspectable
    event = ops.get(f"/v1/events/{answer['event_id']}").json()
    assert event["type"] == "webhook.test"
    assert len(event["deliveries"]) == 1


def test_test_event_against_a_dead_receiver_records_the_failure(
    make_ops: Callable[..., Ops]
) -> None:
    """A refused connection is recorded as the attempt's error and the delivery retries."""
    ops = make_ops(endpoint_yaml("dead", DEAD_URL, retry_schedule=["1h"]))
    response = ops.post("/v1/endpoints/dead/test")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "failed"
    delivery = answer["delivery"]
    assert delivery["status"] == "scheduled"
    assert delivery["next_attempt_at"]
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"]
    stored = ops.get(f"/v1/deliveries/{delivery['id']}").json()
    assert stored["attempts"][0]["error"] == attempt["error"]
    endpoint = ops.get("/v1/endpoints/dead").json()
    assert endpoint["status"] == "error"
    assert endpoint["counts"]["scheduled"] == 1


def test_test_refuses_unknown_and_paused_endpoints(make_ops: Callable[..., Ops]) -> None:
    """404 for an endpoint not in relay.yaml, 409 while it is paused."""
    ops = make_ops(endpoint_yaml("a", DEAD_URL))
    assert ops.post("/v1/endpoints/nope/test").status_code == 404
    ops.post("/v1/endpoints/a/pause")
    response = ops.post("/v1/endpoints/a/test")
    assert response.status_code == 409
    assert response.json()["type"] == "urn:relay:problem:endpoint-held"
    assert "relay resume a" in response.json()["detail"]


def test_pause_holds_survives_a_restart_and_resume_sends_in_order(
    make_ops: Callable[..., Ops], tmp_path: Path
) -> None:
    """Paused deliveries are held (also across a restart) and go out in order on resume."""
    sink = receiver()
    endpoints = endpoint_yaml("fifo", sink.url + "/hooks", ordering="fifo")
    db = tmp_path / "paused.db"
    first = make_ops(endpoints, db=db)
    paused = first.post("/v1/endpoints/fifo/pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    assert paused.json()["held"] == 0
    for n in range(5):
        first.send(n=n)
    first.wait_counts("fifo", held=5)
    first.relay.stop()
    second = make_ops(endpoints, {"sink": sink}, db=db)
    assert second.get("/v1/endpoints/fifo").json()["status"] == "paused"
    for n in range(5, 8):
        second.send(n=n)
    second.wait_counts("fifo", held=8)
    time.sleep(0.3)
    assert sink.requests == []  # nothing leaks while paused
    resumed = second.post("/v1/endpoints/fifo/resume")
    assert resumed.status_code == 200
    assert resumed.json()["released"] == 8
    assert resumed.json()["status"] == "ok"
    second.wait_counts("fifo", delivered=8)
    assert [json.loads(b)["data"]["n"] for b in sink.bodies()] == list(range(8))


def test_pause_of_an_endpoint_with_a_backlog(make_ops: Callable[..., Ops]) -> None:
    """Pausing holds the scheduled retries too; resume keeps them scheduled, not due at once."""
    ops = make_ops(endpoint_yaml("down", DEAD_URL, retry_schedule=["1h"]))
    ops.send()
    ops.send()
    ops.wait_counts("down", scheduled=2)
    assert ops.post("/v1/endpoints/down/pause").json()["held"] == 2
    ops.wait_counts("down", held=2, scheduled=0)
    assert ops.post("/v1/endpoints/down/resume").json()["released"] == 2
    ops.wait_counts("down", scheduled=2, held=0)
    assert ops.post("/v1/endpoints/nope/pause").status_code == 404


def test_recover_requeues_exactly_the_failed_deliveries_since(
    make_ops: Callable[..., Ops]
) -> None:
    """Only this endpoint's deliveries that failed after `since` are requeued; they deliver."""
    switch = Switch(500, b'{"error": "bug in handler"}')
    flip = receiver(switch)
    other = receiver(always(500))
    ops = make_ops(endpoint_yaml("flip", flip.url + "/hooks")
                   + endpoint_yaml("other", other.url + "/hooks"),
                   {"flip": flip, "other": other})
    for n in range(5):
        ops.send(n=n)
    ops.wait_counts("flip", failed=5)
    ops.wait_counts("other", failed=5)
    flip_ids = [int(d["id"][4:]) for d in
                ops.get("/v1/deliveries", endpoint="flip").json()["data"]]
    old = sorted(flip_ids)[:2]  # these two failed "three hours ago"
    ops.execute("UPDATE deliveries SET updated_at = updated_at - 10800 WHERE id IN (?, ?)",
                tuple(old))
    switch.status, switch.body = 200, b"fixed"
    response = ops.post("/v1/endpoints/flip/recover", {"since": "2h"})
    assert response.status_code == 200, response.text
    assert response.json()["requeued"] == 3
    ops.wait_counts("flip", delivered=3, failed=2)
    still_failed = [int(d["id"][4:]) for d in
                    ops.get("/v1/deliveries", endpoint="flip", status="failed").json()["data"]]
    assert sorted(still_failed) == old
    assert ops.counts("other")["failed"] == 5  # another endpoint's failures are untouched
    recovered = ops.get(f"/v1/deliveries/dlv_{max(flip_ids)}").json()
    assert [a["status_code"] for a in recovered["attempts"]] == [500, 500, 500, 200]
    # an ISO time works too, and asking again finds nothing more to do
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
    assert ops.post("/v1/endpoints/flip/recover", {"since": since}).json()["requeued"] == 0


def test_recover_needs_a_valid_since(make_ops: Callable[..., Ops]) -> None:
    """A missing or unreadable `since` is a 400 naming it; an unknown endpoint a 404."""
    ops = make_ops(endpoint_yaml("a", DEAD_URL))
    for body in (None, {}, {"since": ""}, {"since": "last week"}, {"since": 5}):
        response = ops.post("/v1/endpoints/a/recover", body)
        assert response.status_code == 400, body
        assert response.json()["parameter"] == "since"
    assert ops.post("/v1/endpoints/b/recover", {"since": "1h"}).status_code == 404


def test_retry_is_409_in_flight_then_makes_a_delivery_due(
    make_ops: Callable[..., Ops]
) -> None:
    """Retrying an in-flight delivery is refused; a failed or delivered one goes again."""
    switch = Switch(200)
    hangs: list[bool] = [True]

    def responder(index: int, request: object) -> object:
        if hangs[0]:
            hangs[0] = False
            return ("hang", 1.5)
        return switch(index, request)

    slow = receiver(responder)
    ops = make_ops(endpoint_yaml("slow", slow.url + "/hooks"), {"slow": slow})
    ops.send()
    ops.wait_counts("slow", delivering=1)
    [delivery] = ops.get("/v1/deliveries").json()["data"]
    busy = ops.post(f"/v1/deliveries/{delivery['id']}/retry")
    assert busy.status_code == 409
    assert busy.json()["type"] == "urn:relay:problem:delivery-in-flight"
    ops.wait_counts("slow", delivered=1)
    again = ops.post(f"/v1/deliveries/{delivery['id']}/retry")
    assert again.status_code == 200, again.text
    assert again.json()["previous_status"] == "delivered"
    wait_until(lambda: len(slow.requests) == 2, 10, message="the resend")
    ops.wait_counts("slow", delivered=1)
    attempts = ops.get(f"/v1/deliveries/{delivery['id']}").json()["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert ops.post("/v1/deliveries/dlv_424242/retry").status_code == 404


def test_retry_of_a_failed_delivery_delivers_it(make_ops: Callable[..., Ops]) -> None:
    """After the receiver is fixed, retrying one failed delivery delivers only that one."""
    switch = Switch(500)
    flip = receiver(switch)
    ops = make_ops(endpoint_yaml("flip", flip.url + "/hooks"), {"flip": flip})
    ops.send(n=1)
    ops.send(n=2)
    ops.wait_counts("flip", failed=2)
    switch.status = 200
    [newest, _] = ops.get("/v1/deliveries").json()["data"]
    response = ops.post(f"/v1/deliveries/{newest['id']}/retry")
    assert response.status_code == 200
    assert response.json()["previous_status"] == "failed"
    ops.wait_counts("flip", delivered=1, failed=1)
    assert ops.get(f"/v1/deliveries/{newest['id']}").json()["status"] == "delivered"
    ops.post("/v1/endpoints/flip/pause")
    held = ops.post(f"/v1/deliveries/{newest['id']}/retry")
    assert held.status_code == 409
    assert "paused" in held.json()["detail"]


def test_410_disables_and_resume_enables_again(make_ops: Callable[..., Ops]) -> None:
    """An endpoint that answered 410 is `disabled` with the reason until it is resumed."""
    switch = Switch(410)
    gone = receiver(switch)
    ops = make_ops(endpoint_yaml("gone", gone.url + "/hooks"), {"gone": gone})
    ops.send(n=1)
    ops.wait_counts("gone", failed=1)
    ops.send(n=2)
    ops.wait_counts("gone", held=1)
    endpoint = ops.get("/v1/endpoints/gone").json()
    assert endpoint["status"] == "disabled"
    assert "410" in endpoint["status_reason"]
    assert "410" in endpoint["disabled_reason"]
    switch.status = 200
    resumed = ops.post("/v1/endpoints/gone/resume").json()
    assert resumed["status"] == "ok"
    assert resumed["released"] == 1
    ops.wait_counts("gone", delivered=1, failed=1, held=0)


def test_endpoints_removed_from_the_config_are_still_listed(tmp_path: Path) -> None:
    """Deliveries of an endpoint dropped from relay.yaml stay visible, marked as such."""
    endpoints = endpoint_yaml("kept", DEAD_URL, retry_schedule=["1h"])
    first = start_ops(tmp_path, endpoints + endpoint_yaml("dropped", DEAD_URL,
                                                          retry_schedule=["1h"]), {})
    try:
        first.send()
        first.wait_counts("dropped", scheduled=1)
    finally:
        first.close()
        first.relay.stop()
    second = start_ops(tmp_path, endpoints, {}, ADMIN_YAML)
    try:
        listed = {e["name"]: e for e in second.get("/v1/endpoints").json()["data"]}
        assert list(listed) == ["kept", "dropped"]
        dropped = listed["dropped"]
        assert dropped["configured"] is False
        assert dropped["status"] == "disabled"
        assert dropped["counts"]["held"] == 1  # SPEC 4: held, not dropped
        assert dropped["url"] is None
        assert second.get("/v1/endpoints/dropped").json() == dropped
        assert second.post("/v1/endpoints/dropped/pause").status_code == 404
        [orphan] = second.get("/v1/deliveries", endpoint="dropped").json()["data"]
        refused = second.post(f"/v1/deliveries/{orphan['id']}/retry")
        assert refused.status_code == 409
        assert refused.json()["type"] == "urn:relay:problem:endpoint-not-configured"
        rows = db_rows(second.relay.db, "SELECT count(*) FROM deliveries")
        assert rows == [(2,)]
    finally:
        second.close()
        second.relay.stop()
