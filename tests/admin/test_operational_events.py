"""Operational events: the relay tells `operations.notify` about endpoints in trouble."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from receiver_kit import Verifier
from tests.admin.harness import ADMIN_YAML, Ops, Switch, always, receiver
from tests.conftest import SECRET, endpoint_yaml
from tests.support import Receiver, wait_until

pytestmark = pytest.mark.both_backends


def operations_yaml(failing_after: str = "300ms", min_interval: str = "1h") -> str:
    return (ADMIN_YAML + "operations:\n  notify: [ops, chat]\n"
            f"  failing_after: {failing_after}\n  min_interval: {min_interval}\n")


def notices(target: Receiver, kind: str | None = None) -> list[dict[str, Any]]:
    """The operational events `target` received, verified, oldest first."""
    found = []
    for request in list(target.requests):
        event = Verifier(secret=SECRET).verify(request.body, request.headers)
        if kind is None or event.type == kind:
            found.append(json.loads(request.body))
    return found


def wait_notice(target: Receiver, kind: str, count: int = 1) -> list[dict[str, Any]]:
    wait_until(lambda: len(notices(target, kind)) >= count, 15,
               message=f"{count} {kind} event(s) (got {[n['type'] for n in notices(target)]})")
    return notices(target, kind)


@pytest.fixture
def trouble(make_ops: Callable[..., Ops]) -> Ops:
    """`crm` answers 503 until its switch is flipped; `ops` and `chat` (Slack) are notified."""
    crm = Switch(503, b"maintenance")
    receivers = {"crm": receiver(crm), "ops": receiver(), "chat": receiver()}
    ops = make_ops(
        endpoint_yaml("crm", receivers["crm"].url + "/hooks", events=["license.*"])
        + endpoint_yaml("ops", receivers["ops"].url + "/ops", events=[])
        + endpoint_yaml("chat", receivers["chat"].url + "/slack", events=[], format="slack"),
        receivers, operations_yaml())
    ops.switch = crm  # type: ignore[attr-defined]
    return ops


def test_failing_failed_and_recovered_reach_the_notified_endpoints(trouble: Ops) -> None:
    """Signed like any delivery; Slack gets a sentence; a recovery follows the failure."""
    event_id = trouble.send(licenseKey="K-1")
    [failing] = wait_notice(trouble.receivers["ops"], "endpoint.failing")
    assert failing["data"]["endpoint"] == "crm" and failing["data"]["suppressed"] == 0
    assert failing["data"]["last_error"] == "endpoint answered 503"
    [failed] = wait_notice(trouble.receivers["ops"], "delivery.failed")
    [(delivery_id,)] = trouble.relay.rows(
        "SELECT id FROM deliveries WHERE event_id = ? AND endpoint = 'crm'", (event_id,))
    assert failed["data"] == {
        "endpoint": "crm", "tenant": None, "delivery_id": delivery_id, "event_id": event_id,
        "event_type": "license.created", "attempts": 3, "status_code": 503,
        "error": "endpoint answered 503; gave up after 3 attempts", "suppressed": 0}
    wait_until(lambda: len(trouble.receivers["chat"].requests) >= 2, 15,
               message="two Slack messages")
    texts = [json.loads(r.body)["text"] for r in trouble.receivers["chat"].requests]
    assert any(t.startswith(":warning: Endpoint *crm* has had no successful delivery since ")
               for t in texts), texts
    assert (f":x: Delivery {delivery_id} of license.created `{event_id}` to *crm* failed after "
            "3 attempts: endpoint answered 503") in texts, texts
    trouble.switch.status = 200  # type: ignore[attr-defined]
    trouble.send(licenseKey="K-2")
    [recovered] = wait_notice(trouble.receivers["ops"], "endpoint.recovered")
    assert recovered["data"]["failing_since"] == failing["data"]["failing_since"]
    assert not trouble.receivers["crm"].requests or all(
        json.loads(r.body)["type"] == "license.created" for r in trouble.receivers["crm"].requests)


def test_a_flapping_endpoint_makes_one_event_per_interval(trouble: Ops) -> None:
    """Three failed deliveries within `min_interval`: one delivery.failed is stored."""
    for n in range(3):
        trouble.send(licenseKey=f"K-{n}")
    trouble.wait_counts("crm", timeout=15, failed=3)
    wait_notice(trouble.receivers["ops"], "delivery.failed")
    stored = trouble.relay.rows("SELECT count(*) FROM events WHERE type = 'delivery.failed'")
    assert stored == [(1,)]


def test_operational_events_never_loop(make_ops: Callable[..., Ops]) -> None:
    """`ops` itself fails: news of it goes to `chat` only, and its failures raise no more."""
    receivers = {"crm": receiver(always(503)), "ops": receiver(always(500)),
                 "chat": receiver()}
    ops = make_ops(
        endpoint_yaml("crm", receivers["crm"].url + "/hooks", events=["license.*"])
        + endpoint_yaml("ops", receivers["ops"].url + "/ops", events=[])
        + endpoint_yaml("chat", receivers["chat"].url + "/chat", events=[]),
        receivers, operations_yaml())
    ops.send(licenseKey="K-1")
    about_ops = wait_until_found(receivers["chat"], "endpoint.failing", "ops")
    assert about_ops["data"]["last_error"] == "endpoint answered 500"
    ops.wait_counts("ops", timeout=15, failed=2)  # crm's failing and failed, to ops
    rows = ops.relay.rows("SELECT e.type, d.endpoint FROM deliveries d "
                          "JOIN events e ON e.id = d.event_id WHERE d.endpoint = 'ops'")
    assert sorted(rows) == [("delivery.failed", "ops"), ("endpoint.failing", "ops")]
    failed = ops.relay.rows("SELECT body FROM events WHERE type = 'delivery.failed'")
    assert [json.loads(bytes(body))["data"]["endpoint"] for (body,) in failed] == ["crm"]


def wait_until_found(target: Receiver, kind: str, endpoint: str) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        return [n for n in notices(target, kind) if n["data"]["endpoint"] == endpoint]

    wait_until(lambda: bool(found()), 15, message=f"{kind} about {endpoint}")
    return found()[0]


def test_disable_and_the_endpoint_api_are_announced(make_ops: Callable[..., Ops]) -> None:
    """410 Gone disables; create, update and delete through the API are each an event."""
    receivers = {"gone": receiver(always(410)), "ops": receiver(), "chat": receiver()}
    ops = make_ops(
        endpoint_yaml("gone", receivers["gone"].url + "/hooks", events=["license.*"])
        + endpoint_yaml("ops", receivers["ops"].url + "/ops", events=[])
        + endpoint_yaml("chat", receivers["chat"].url + "/chat", events=[]),
        receivers, operations_yaml())
    ops.send(licenseKey="K-1")
    [disabled] = wait_notice(receivers["ops"], "endpoint.disabled")
    assert disabled["data"]["endpoint"] == "gone"
    assert disabled["data"]["reason"] == "endpoint answered 410 Gone"
    made = ops.http.post("/v1/endpoints", json={
        "name": "acme-crm", "url": "https://crm.acme.example/hooks", "tenant": "acme",
        "events": ["license.*"]})
    assert made.status_code == 201, made.text
    assert ops.http.patch("/v1/endpoints/acme-crm",
                          json={"events": ["order.*"]}).status_code == 200
    assert ops.http.delete("/v1/endpoints/acme-crm").status_code in (200, 204)
    created = wait_notice(receivers["ops"], "endpoint.created")[0]["data"]
    updated = wait_notice(receivers["ops"], "endpoint.updated")[0]["data"]
    deleted = wait_notice(receivers["ops"], "endpoint.deleted")[0]["data"]
    assert created == {"endpoint": "acme-crm", "tenant": "acme",
                       "url": "https://crm.acme.example/hooks", "events": ["license.*"]}
    assert updated["changed"] == ["events"] and updated["events"] == ["order.*"]
    assert deleted["endpoint"] == "acme-crm" and deleted["tenant"] == "acme"


def test_a_reload_announces_the_endpoints_it_adds_changes_and_removes(
        make_ops: Callable[..., Ops]) -> None:
    """relay.yaml's endpoints change by reload: the same three events as the API's."""
    receivers = {"ops": receiver(), "chat": receiver()}
    ops_yaml = endpoint_yaml("ops", receivers["ops"].url + "/ops", events=[])
    chat_yaml = endpoint_yaml("chat", receivers["chat"].url + "/chat", events=[])
    ops = make_ops(ops_yaml + chat_yaml
                   + endpoint_yaml("crm", "https://crm.example/hooks", events=["license.*"])
                   + endpoint_yaml("old", "https://old.example/hooks"),
                   receivers, operations_yaml())
    text = ops.config_path.read_text()
    start = text.index("endpoints:\n") + len("endpoints:\n")
    end = text.index("\n", text.index('"name": "old"')) + 1
    ops.config_path.write_text(
        text[:start] + ops_yaml + chat_yaml
        + endpoint_yaml("crm", "https://crm.example/hooks", events=["order.*"],
                        filter='data.seats >= 10', secret="whsec_" + "QUJD" * 8)
        + endpoint_yaml("billing", "https://billing.example/hooks", tenant="acme")
        + text[end:])
    reloaded = ops.cli("reload")
    assert reloaded.code == 0, reloaded.err
    created = wait_notice(receivers["ops"], "endpoint.created")
    updated = wait_notice(receivers["ops"], "endpoint.updated")
    deleted = wait_notice(receivers["ops"], "endpoint.deleted")
    assert [n["data"] for n in created] == [{
        "endpoint": "billing", "tenant": "acme", "url": "https://billing.example/hooks",
        "events": ["*"]}]
    assert [n["data"] for n in updated] == [{
        "endpoint": "crm", "tenant": None, "url": "https://crm.example/hooks",
        "events": ["order.*"], "changed": ["events", "filter", "secret"]}]
    assert [n["data"]["endpoint"] for n in deleted] == ["old"]
    assert "QUJD" not in json.dumps(updated)
    # The unchanged `ops` and `chat` were not announced; `chat` heard of all three.
    wait_until(lambda: len(receivers["chat"].requests) >= 3, 15, message="three for chat")
    assert len(notices(receivers["ops"])) == 3


def test_a_deleted_endpoint_is_not_announced_failing(make_ops: Callable[..., Ops]) -> None:
    """`doomed` fails, then is deleted before `failing_after`: its pending endpoint.failing
    is dropped. `later`, failing after the deletion, is announced, and would be second."""
    receivers = {"ops": receiver(), "chat": receiver(), "down": receiver(always(503))}
    ops = make_ops(endpoint_yaml("ops", receivers["ops"].url + "/ops", events=[])
                   + endpoint_yaml("chat", receivers["chat"].url + "/chat", events=[]),
                   receivers, operations_yaml(failing_after="2s"))
    for name, events in (("doomed", ["license.*"]), ("later", ["order.*"])):
        made = ops.http.post("/v1/endpoints", json={
            "name": name, "url": receivers["down"].url + "/" + name, "allow_http": True,
            "events": events})
        assert made.status_code == 201, made.text

    def attempts(endpoint: str) -> int:
        return int(ops.relay.rows(
            "SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
            "WHERE d.endpoint = ?", (endpoint,))[0][0])

    ops.send(licenseKey="K-1")
    wait_until(lambda: attempts("doomed") >= 1, message="doomed's first failed attempt")
    assert ops.http.delete("/v1/endpoints/doomed").status_code in (200, 204)
    ops.send("order.paid", orderId="O-1")
    about_later = wait_until_found(receivers["ops"], "endpoint.failing", "later")
    assert about_later["data"]["last_error"].startswith("endpoint answered 503")
    failing = ops.relay.rows("SELECT body FROM events WHERE type = 'endpoint.failing'")
    assert [json.loads(bytes(body))["data"]["endpoint"] for (body,) in failing] == ["later"]
