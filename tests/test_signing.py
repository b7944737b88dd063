"""Signature headers: checked by third-party code and independent HMAC computations."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import svix.webhooks
from standardwebhooks import Webhook

from relay.config import parse_config
from relay.exceptions import ConfigError
from relay.signing import Signer, generate_secret

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BARE_SECRET = SECRET.removeprefix("whsec_")  # as the standardwebhooks test suite spells it
PADDED = base64.b64encode(b"a twenty byte key...").decode()  # ends with "="
BODY = b'{"type":"license.created","data":{"licenseKey":"ABCD-1234","seats":5}}'


def test_standard_known_answer() -> None:
    """The Standard Webhooks reference vector comes out exactly."""
    headers = Signer("standard", [SECRET]).headers(
        "msg_p5jXN8AQM9LWM0D4loKWxJek", "x", 1614265330, b'{"test": 2432232314}'
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("secret", [BARE_SECRET, PADDED, PADDED.rstrip("="),
                                    "whsec_" + PADDED.rstrip("=")])
def test_secret_spelled_as_receivers_have_it_signs_what_they_verify(secret: str) -> None:
    """A relay.yaml secret without whsec_ or padding signs as the reference libraries key it."""
    config = parse_config(
        f"endpoints:\n  - {{name: a, url: 'https://a.example', secret: '{secret}'}}\n", env={}
    )
    endpoint = config.endpoints[0]
    assert endpoint.secrets == (secret,)
    now = int(time.time())
    headers = Signer(endpoint.signature, endpoint.secrets).headers("evt_5", "t", now, BODY)
    canonical = "whsec_" + secret.removeprefix("whsec_").rstrip("=")
    for spelling in (secret, canonical):
        assert Webhook(spelling).verify(BODY, headers)["data"]["seats"] == 5
        svix.webhooks.Webhook(spelling).verify(BODY, headers)


def test_standard_verifies_with_standardwebhooks() -> None:
    """The `standardwebhooks` reference library accepts our signature."""
    import time

    now = int(time.time())
    headers = Signer("standard", [SECRET]).headers("evt_1", "license.created", now, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    payload = Webhook(SECRET).verify(BODY, headers)
    assert payload["data"]["licenseKey"] == "ABCD-1234"


def test_rotation_signs_with_every_standard_secret() -> None:
    """Two secrets give two signatures; a receiver on either secret verifies."""
    import time

    new = generate_secret()
    now = int(time.time())
    headers = Signer("standard", [new, SECRET]).headers("evt_2", "order.created", now, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, SECRET):
        Webhook(secret).verify(BODY, headers)


@pytest.mark.parametrize(("scheme", "prefix"), [("x-webhook", "X-Webhook"),
                                                ("babel", "X-Babel")])
def test_hex_schemes_match_an_independent_hmac(scheme: str, prefix: str) -> None:
    """Hex schemes: lowercase hex HMAC-SHA256 of the raw body, with the newest secret."""
    headers = Signer(scheme, ["newest-secret", "older-secret"]).headers(  # type: ignore[arg-type]
        "evt_3", "license.expired", 1700000000, BODY
    )
    expected = hmac.new(b"newest-secret", BODY, hashlib.sha256).hexdigest()
    assert headers[f"{prefix}-Signature"] == expected
    assert headers[f"{prefix}-Event"] == "license.expired"
    assert headers[f"{prefix}-Timestamp"] == "1700000000"
    id_header = "X-Babel-Webhook-Id" if scheme == "babel" else "X-Webhook-Id"
    assert headers[id_header] == "evt_3"


def test_hex_scheme_without_secret_sends_no_signature() -> None:
    """With no secret, the hex schemes still identify the event but do not sign."""
    headers = Signer("x-webhook", []).headers("evt_4", "order.created", 1, BODY)
    assert "X-Webhook-Signature" not in headers
    assert headers["X-Webhook-Id"] == "evt_4"


def test_keygen_secret_is_usable() -> None:
    """`relay keygen` output is a whsec_ secret with a 24-byte key, unique per call."""
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 24
    assert generate_secret() != secret
    assert "whsec" not in repr(Signer("standard", [secret]))


@pytest.mark.parametrize("secret", [
    SECRET, BARE_SECRET, PADDED, PADDED.rstrip("="), "whsec_" + PADDED, SECRET + "==",
    "whsec_abc-def_ghi*jkl", "not base64 at all", " " + SECRET, SECRET + "\n", "whsec_",
    "whsec_" + base64.b64encode(b"8 bytes!").decode(),
])
def test_relay_and_receiver_kit_read_a_standard_secret_by_one_rule(secret: str) -> None:
    """What the relay signs with is what the kit verifies with, and both refuse the same."""
    from receiver_kit import InvalidSecretError, Verifier

    quoted = json.dumps(secret)
    config = f"endpoints:\n  - {{name: a, url: 'https://a.example', secret: {quoted}}}\n"
    try:
        endpoint = parse_config(config, env={}).endpoints[0]
    except ConfigError as exc:
        relay_error = exc.errors[0]
    else:
        relay_error = None
    try:
        verifier = Verifier(secret, scheme="standard")
    except InvalidSecretError:
        assert relay_error is not None, "the kit refused a secret the relay signs with"
        return
    if relay_error is not None:  # only the signer's length floor may differ
        assert "too short" in relay_error, relay_error
        return
    now = int(time.time())
    headers = Signer(endpoint.signature, endpoint.secrets).headers("evt_7", "t", now, BODY)
    assert verifier.verify(BODY, headers).id == "evt_7"
    assert Webhook(secret.strip()).verify(BODY, headers)["data"]["seats"] == 5
