"""Delivery against real receivers: signatures, retries, failures, isolation."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import pytest
from standardwebhooks import Webhook

from tests.conftest import SECRET, endpoint_yaml
from tests.support import Received, Receiver, RelayThread, wait_until

pytestmark = pytest.mark.both_backends

BODY = b'{"type": "license.expired", "data": {"licenseKey": "ABCD-1234"}}'


def attempts(relay: RelayThread, delivery_id: int = 1) -> list[tuple[int, int | None, str | None]]:
    return relay.rows("SELECT attempt, status_code, error FROM attempts WHERE delivery_id = ? "
                      "ORDER BY id", (delivery_id,))


def test_standard_delivery_verifies_with_standardwebhooks(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """A delivered request verifies with the reference library, headers and all."""
    relay = make_relay(endpoint_yaml("crm", receiver.url + "/hooks/license",
                                     headers={"X-Team": "licensing"}))
    event_id = relay.post(BODY).json()["id"]
    [request] = receiver.wait_for(1)
    assert request.path == "/hooks/license"
    assert Webhook(SECRET).verify(request.body, request.headers)["data"]["licenseKey"] \
        == "ABCD-1234"
    assert request.header("webhook-id") == event_id
    assert abs(int(request.header("webhook-timestamp") or 0) - time.time()) < 10
    assert request.header("x-team") == "licensing"
    relay.wait_statuses({"delivered": 1})


def test_hex_scheme_delivery(make_relay: Callable[..., RelayThread], receiver: Receiver) -> None:
    """x-webhook deliveries carry the event type and a hex HMAC of the exact body."""
    relay = make_relay(endpoint_yaml("audit", receiver.url, signature="x-webhook",
                                     secret=["audit-secret", "old-secret"]))
    relay.post(BODY)
    [request] = receiver.wait_for(1)
    assert request.header("x-webhook-event") == "license.expired"
    assert request.header("x-webhook-signature") == hmac.new(
        b"audit-secret", BODY, hashlib.sha256).hexdigest()


def test_500_then_200_is_delivered_on_attempt_2(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """A 500 is retried after the first delay with the same id, and then delivered."""
    receiver = make_receiver(lambda i, r: (500, {}, b"boom") if i == 0 else (200, {}, b"ok"))
    relay = make_relay(endpoint_yaml("crm", receiver.url))
    relay.post(BODY)
    first, second = receiver.wait_for(2)
    relay.wait_statuses({"delivered": 1})
    assert first.header("webhook-id") == second.header("webhook-id")
    assert first.body == second.body == BODY
    assert 0.08 <= second.at - first.at < 2.0
    assert attempts(relay) == [(1, 500, "endpoint answered 500"), (2, 200, None)]
    assert relay.rows("SELECT response_body FROM attempts ORDER BY id LIMIT 1") == [(b"boom",)]


def test_exhausted_schedule_ends_failed(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """With [100ms, 200ms], three failed attempts end the delivery as failed."""
    receiver = make_receiver(lambda i, r: (503, {}, b"down"))
    relay = make_relay(endpoint_yaml("crm", receiver.url))
    relay.post(BODY)
    relay.wait_statuses({"failed": 1})
    assert [a[:2] for a in attempts(relay)] == [(1, 503), (2, 503), (3, 503)]
    assert attempts(relay)[-1][2] == "endpoint answered 503; gave up after 3 attempts"
    assert len(receiver.requests) == 3


def test_client_errors_retry_by_default_and_fail_when_configured(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """400 is retried by default; with retry_client_errors: false it fails at once."""
    receiver = make_receiver(lambda i, r: (400, {}, b"bad") if i == 0 else (200, {}, b""))
    relay = make_relay(endpoint_yaml("default", receiver.url))
    relay.post(BODY)
    relay.wait_statuses({"delivered": 1})
    strict_receiver = make_receiver(lambda i, r: (400, {}, b"bad"))
    strict = make_relay(endpoint_yaml("strict", strict_receiver.url, retry_client_errors=False))
    strict.post(BODY)
    strict.wait_statuses({"failed": 1})
    time.sleep(0.4)
    assert len(strict_receiver.requests) == 1


def test_gone_fails_at_once_and_disables_the_endpoint(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """410 fails the delivery without retry and holds the endpoint's later deliveries."""
    receiver = make_receiver(lambda i, r: (410, {}, b"gone"))
    relay = make_relay(endpoint_yaml("old", receiver.url))
    relay.post(BODY)
    relay.wait_statuses({"failed": 1})
    # On PostgreSQL the disable commits just after the attempt (its own transaction).
    wait_until(lambda: relay.rows(
        "SELECT disabled_reason FROM endpoint_state WHERE name = 'old'") == [
        ("endpoint answered 410 Gone",)], message="the endpoint disabled")
    relay.post(b'{"type": "license.created"}')
    relay.wait_statuses({"failed": 1, "held": 1})
    time.sleep(0.3)
    assert len(receiver.requests) == 1


def test_retry_after_is_waited_for(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """A 429 with Retry-After: 1 delays the retry past the 100 ms schedule."""
    receiver = make_receiver(
        lambda i, r: (429, {"Retry-After": "1"}, b"slow down") if i == 0 else (200, {}, b""))
    relay = make_relay(endpoint_yaml("crm", receiver.url))
    relay.post(BODY)
    first, second = receiver.wait_for(2, timeout=10)
    assert second.at - first.at >= 0.95
    relay.wait_statuses({"delivered": 1})


def test_timeouts_and_resets_are_retried(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """A hung request times out, a reset connection errors; both are retried."""
    def script(index: int, request: Received) -> object:
        return [("hang", 2.0), "reset", (200, {}, b"ok")][index]

    receiver = make_receiver(script)
    relay = make_relay(endpoint_yaml("crm", receiver.url, timeout="500ms"))
    relay.post(BODY)
    relay.wait_statuses({"delivered": 1}, timeout=15)
    rows = attempts(relay)
    assert [r[1] for r in rows] == [None, None, 200]
    assert rows[0][2] == "timed out after 0.5s"
    assert rows[1][2] is not None and rows[1][2] != rows[0][2]


def test_refused_connection_is_retried_then_fails(
    make_relay: Callable[..., RelayThread]
) -> None:
    """Nothing listening: every attempt records a connection error, then failed."""
    relay = make_relay(endpoint_yaml("dead", "http://127.0.0.1:9/nothing"))
    relay.post(BODY)
    relay.wait_statuses({"failed": 1})
    rows = attempts(relay)
    assert len(rows) == 3 and all(r[1] is None and r[2] for r in rows)


def test_redirects_are_not_followed(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """A 302 is a failed attempt; the Location is never requested."""
    target = make_receiver()
    receiver = make_receiver(lambda i, r: (302, {"Location": target.url + "/x"}, b""))
    relay = make_relay(endpoint_yaml("moved", receiver.url, retry_schedule=[]))
    relay.post(BODY)
    relay.wait_statuses({"failed": 1})
    assert attempts(relay)[0][1] == 302
    assert target.requests == []


def test_response_excerpt_is_capped_at_4_kib(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """Only the first 4 KiB of an answer are kept."""
    receiver = make_receiver(lambda i, r: (500, {}, b"e" * 100_000))
    relay = make_relay(endpoint_yaml("big", receiver.url, retry_schedule=[]))
    relay.post(BODY)
    relay.wait_statuses({"failed": 1})
    assert relay.rows("SELECT length(response_body) FROM attempts") == [(4096,)]


def test_a_slow_endpoint_does_not_delay_others(
    make_relay: Callable[..., RelayThread], make_receiver: Callable[..., Receiver]
) -> None:
    """While one endpoint hangs on every request, the other's deliveries keep flowing."""
    slow = make_receiver(lambda i, r: ("hang", 3.0))
    fast = make_receiver()
    relay = make_relay(
        # The timeout outlasts the hang: a retry never starts while the receiver still
        # holds the abandoned request, which it would count as a third one in flight.
        endpoint_yaml("slow", slow.url, max_in_flight=2, timeout="4s")
        + endpoint_yaml("fast", fast.url),
        extra="",
    )
    for i in range(20):
        assert relay.post(f'{{"type": "order.created", "n": {i}}}').status_code == 202
    fast.wait_for(20, timeout=2.5)
    assert slow.max_in_flight <= 2


def test_attempt_headers_are_stored_with_signatures_masked(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """The stored request headers show the scheme but never a usable signature."""
    relay = make_relay(endpoint_yaml("crm", receiver.url))
    relay.post(BODY)
    relay.wait_statuses({"delivered": 1})
    [(stored,)] = relay.rows("SELECT request_headers FROM attempts")
    [request] = receiver.requests
    signature = request.header("webhook-signature") or ""
    assert signature and signature not in stored
    assert '"webhook-signature": "v1,\\u2026"' in stored


def test_many_events_all_delivered_once(
    make_relay: Callable[..., RelayThread], receiver: Receiver
) -> None:
    """500 events to two endpoints: 1,000 deliveries, each exactly once."""
    relay = make_relay(endpoint_yaml("a", receiver.url + "/a")
                       + endpoint_yaml("b", receiver.url + "/b"))
    batch = "[" + ",".join(f'{{"type": "telemetry.received", "n": {i}}}'
                           for i in range(500)) + "]"
    assert relay.post(batch, path="/v1/events/batch").status_code == 202
    receiver.wait_for(1000, timeout=30)
    relay.wait_statuses({"delivered": 1000})
    seen = {(r.path, r.header("webhook-id")) for r in receiver.requests}
    assert len(seen) == 1000 == len(receiver.requests)
    wait_until(lambda: relay.state.dispatcher.slots.used == 0, message="slots released")
