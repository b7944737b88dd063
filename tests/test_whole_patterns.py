"""Every pattern that validates input matches the whole string: a final newline is refused.

A `$` matches before a final newline, so `order.created\\n` used to pass the
event-type check, be acknowledged with 202, and then fail every attempt
(a newline cannot go into the signature headers). Nothing a 2xx accepts may
be undeliverable by construction.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from relay.config import parse_config
from relay.exceptions import ConfigError
from relay.http.params import parse_time
from relay.http.problems import Problem
from relay.http.serialization import parse_delivery_id
from relay.routing import pattern_matches
from relay.units import parse_duration, parse_rate, parse_size
from tests.conftest import SECRET, endpoint_yaml
from tests.support import Receiver, RelayThread

TRAILING = ["\n", "\r\n", "\r", "\x00", " x"]


@pytest.fixture
def keyed_relay(make_relay: Callable[..., RelayThread], receiver: Receiver) -> RelayThread:
    return make_relay(endpoint_yaml("all", receiver.url + "/hooks"),
                      "ingest:\n  id_field: eventId\n")


def _stored(relay: RelayThread) -> int:
    count: int = relay.rows("SELECT count(*) FROM events")[0][0]
    return count


@pytest.mark.parametrize("tail", TRAILING)
def test_an_event_type_with_a_trailing_character_is_refused(
        keyed_relay: RelayThread, tail: str) -> None:
    for path, body in (("/v1/events", {"type": "order.created" + tail}),
                       ("/v1/events/batch", [{"type": "order.created" + tail}])):
        response = keyed_relay.post(json.dumps(body), path=path)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        if path == "/v1/events":
            assert response.json()["type"] == "urn:relay:problem:invalid-event-type"
    assert _stored(keyed_relay) == 0


@pytest.mark.parametrize("tail", TRAILING)
def test_an_id_field_with_a_trailing_character_is_refused(
        keyed_relay: RelayThread, tail: str) -> None:
    response = keyed_relay.post(json.dumps({"type": "a.b", "eventId": "idnl" + tail}))
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "urn:relay:problem:invalid-idempotency-key"
    assert _stored(keyed_relay) == 0


def test_what_is_accepted_is_delivered(keyed_relay: RelayThread, receiver: Receiver) -> None:
    """The answer is valid JSON and the event reaches the endpoint with its id."""
    response = keyed_relay.post(json.dumps({"type": "order.created", "eventId": 'q"\\x'}))
    assert response.status_code == 202
    assert response.json()["id"] == 'q"\\x'
    [request] = receiver.wait_for(1)
    assert request.header("webhook-id") == 'q"\\x'


@pytest.mark.parametrize("tail", TRAILING)
def test_config_names_and_patterns_are_whole(tail: str) -> None:
    for endpoint in ({"name": "crm" + tail}, {"name": "crm", "events": ["license.*" + tail]}):
        fields = {"url": "https://crm.example/hooks", "secret": SECRET, **endpoint}
        with pytest.raises(ConfigError):
            parse_config("endpoints:\n  - " + json.dumps(fields) + "\n")
    with pytest.raises(ConfigError):
        parse_config("events: [" + json.dumps("license.created" + tail) + "]\n")


@pytest.mark.parametrize("tail", ["\n", " x", "\x00"])
def test_admin_filters_and_units_are_whole(tail: str) -> None:
    assert parse_delivery_id("dlv_12" + tail) is None
    assert parse_delivery_id("dlv_12") == 12
    with pytest.raises(ValueError, match="expected"):
        parse_duration("5s" + tail + "5")
    with pytest.raises(ValueError, match="expected"):
        parse_size("1MiB" + tail + "1")
    with pytest.raises(ValueError, match="expected"):
        parse_rate("5/s" + tail + "1")
    with pytest.raises(Problem):
        parse_time("2h" + tail + "1", 0.0, "since")


def test_unicode_digits_are_not_digits() -> None:
    """`\\d` matches any script's digits, which the units must not take as numbers."""
    with pytest.raises(ValueError, match="expected"):
        parse_duration("\u0665s")  # ARABIC-INDIC DIGIT FIVE
    assert parse_delivery_id("dlv_\u0661") is None


def test_glob_patterns_match_whole_types() -> None:
    assert pattern_matches("license.*", "license.created")
    assert not pattern_matches("license.created", "license.created\n")
    assert not pattern_matches("*.created", "license.created\nx")
    assert pattern_matches("*", "a.b")


def test_delivery_ids_with_a_newline_are_not_found(keyed_relay: RelayThread) -> None:
    response = httpx.get(keyed_relay.url + "/v1/deliveries/dlv_1%0A", timeout=30)
    assert response.status_code == 404
