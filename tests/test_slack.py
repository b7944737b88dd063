"""`format: slack`: events as incoming-webhook messages, escaped, and still signed."""

from __future__ import annotations

import json
from collections.abc import Callable

from receiver_kit import Verifier
from relay.slack import MAX_PAYLOAD_CHARS, slack_text
from tests.conftest import SECRET, endpoint_yaml
from tests.support import Receiver, RelayThread


def test_operational_events_read_as_sentences_and_nothing_becomes_a_mention() -> None:
    body = json.dumps({"type": "endpoint.disabled", "data": {
        "endpoint": "crm", "tenant": "acme", "reason": "endpoint answered 410 Gone <!channel>",
        "suppressed": 2}}).encode()
    assert slack_text("endpoint.disabled", "relayop_x", body, operational=True) == (
        ":no_entry: Endpoint *crm* (tenant acme) was disabled: endpoint answered 410 Gone "
        "&lt;!channel&gt; (and 2 more like this since the last notice)")


def test_a_failed_delivery_says_its_attempts_once() -> None:
    data = {"endpoint": "crm", "delivery_id": 7, "event_id": "evt_1", "event_type": "order.paid",
            "attempts": 3, "error": "endpoint answered 503; gave up after 3 attempts"}
    body = json.dumps({"type": "delivery.failed", "data": data}).encode()
    assert slack_text("delivery.failed", "relayop_y", body, operational=True) == (
        ":x: Delivery 7 of order.paid `evt_1` to *crm* failed after 3 attempts: endpoint "
        "answered 503")


def test_a_platform_event_with_an_operational_type_is_shown_as_an_event() -> None:
    """Only the relay's own events (by id) are read as news about endpoints."""
    body = b'{"type": "endpoint.disabled", "data": {"endpoint": "x"}}'
    assert slack_text("endpoint.disabled", "evt_1", body, operational=False) == (
        "*endpoint.disabled* `evt_1`\n```" + body.decode() + "```")


def test_a_long_payload_is_cut() -> None:
    body = json.dumps({"type": "license.created", "notes": "x" * 5000}).encode()
    text = slack_text("license.created", "evt_2", body, operational=False)
    assert text.endswith("…```") and len(text) < MAX_PAYLOAD_CHARS + 100


def test_a_slack_endpoint_gets_a_message_signed_like_any_delivery(
        make_relay: Callable[..., RelayThread], receiver: Receiver) -> None:
    relay = make_relay(endpoint_yaml("chat", receiver.url + "/slack", format="slack"))
    response = relay.post(json.dumps({"type": "license.created", "id": "lic-1",
                                      "data": {"licenseKey": "K-1 & <b>"}}))
    assert response.status_code == 202
    [request] = receiver.wait_for(1)
    message = json.loads(request.body)
    assert list(message) == ["text"]
    assert message["text"].startswith("*license.created* `evt_")
    assert "K-1 &amp; &lt;b&gt;" in message["text"]
    event = Verifier(secret=SECRET).verify(request.body, request.headers)
    assert event.payload == message  # the signature covers the message sent
