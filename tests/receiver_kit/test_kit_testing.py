"""receiver_kit.testing: what users sign their own test requests with."""

from __future__ import annotations

import json
import time

import pytest

from receiver_kit import ConfigurationError, Verifier
from receiver_kit.testing import SignedRequest, new_event_id, sign, signed_request

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize("scheme", ["standard", "x-webhook", "babel"])
def test_signed_request_round_trips_through_the_verifier(scheme):
    """For every scheme, what signed_request builds, Verifier accepts."""
    secret = SECRET if scheme == "standard" else "platform-secret"
    payload = {"event_type": "license.expiring", "payload": {"license_id": 123}}
    request = signed_request(payload, secret, scheme=scheme, msg_id="evt_1")
    assert isinstance(request, SignedRequest)
    body, headers = request
    assert json.loads(body) == payload
    assert headers["Content-Type"] == "application/json"
    event = Verifier(secret, scheme=scheme).verify(body, headers)
    assert (event.id, event.type) == ("evt_1", "license.expiring")


def test_hex_schemes_fill_the_event_header_from_the_payload_or_argument():
    """X-Webhook-Event comes from event_type= or else the payload's type field."""
    _, headers = signed_request({"event": "license.validated"}, "s", scheme="x-webhook")
    assert headers["X-Webhook-Event"] == "license.validated"
    _, headers = signed_request({"event": "a"}, "s", scheme="x-webhook", event_type="b")
    assert headers["X-Webhook-Event"] == "b"
    headers = sign(b"{}", "s", scheme="babel")
    assert "X-Babel-Event" not in headers


def test_defaults_are_a_fresh_id_and_now():
    """msg_id defaults to a new evt_ id, timestamp to now."""
    headers = sign(b"{}", SECRET)
    assert headers["webhook-id"].startswith("evt_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert new_event_id() != new_event_id()


def test_str_bodies_are_utf8_and_rotation_signs_with_every_secret():
    """A str body is signed as UTF-8; a list of secrets yields one signature each (standard)."""
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    headers = sign("{\"name\":\"Jürgen\"}", [SECRET, other], msg_id="e", timestamp=1)
    assert len(headers["webhook-signature"].split()) == 2
    verifier = Verifier(other, tolerance=None)
    assert verifier.verify("{\"name\":\"Jürgen\"}".encode(), headers).payload == {"name": "Jürgen"}
    hex_headers = sign(b"{}", ["first", "second"], scheme="x-webhook")
    assert len(hex_headers["X-Webhook-Signature"].split()) == 1
    Verifier("first", scheme="x-webhook").verify(b"{}", hex_headers)


def test_unknown_scheme_is_a_configuration_error():
    """sign() refuses unknown schemes like the Verifier does."""
    with pytest.raises(ConfigurationError):
        sign(b"{}", SECRET, scheme="md5")
