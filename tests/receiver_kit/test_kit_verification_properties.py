"""Property tests: whatever arrives, the verifier answers with the right VerificationError."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import standardwebhooks
import svix.webhooks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver_kit import (
    InvalidSecretError,
    InvalidSignatureError,
    MalformedPayloadError,
    MissingHeaderError,
    StaleTimestampError,
    VerificationError,
    Verifier,
)
from receiver_kit.testing import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = 1_700_000_000
PROPERTY = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

standard = Verifier(SECRET, clock=lambda: NOW)
hexes = {
    s: Verifier("platform-secret", scheme=s, clock=lambda: NOW) for s in ("x-webhook", "babel")
}

# Text as HTTP stacks deliver it (latin-1 decoded bytes) and arbitrary Python text.
header_text = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.lists(
        st.tuples(
            st.sampled_from(["v1", "v0", "v2", "", "V1", "v1 "]),
            st.sampled_from([",", "", ",,", ", "]),
            st.text(max_size=60),
        ),
        max_size=6,
    ).map(lambda parts: " ".join(a + b + c for a, b, c in parts)),
)


@PROPERTY
@given(signature=header_text, body=st.binary(max_size=300))
def test_garbage_standard_signature_is_invalid_signature(signature, body):
    """Any signature header that is not the right one raises InvalidSignatureError only."""
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    if not signature.strip():
        with pytest.raises(MissingHeaderError) if not signature else _any_verification():
            standard.verify(body, headers)
        return
    with pytest.raises(InvalidSignatureError):
        standard.verify(body, headers)


@PROPERTY
@given(scheme=st.sampled_from(["x-webhook", "babel"]), signature=header_text,
       body=st.binary(max_size=300))
def test_garbage_hex_signature_is_invalid_signature(scheme, signature, body):
    """The hex schemes likewise reject any wrong signature header with InvalidSignatureError."""
    prefix = "X-Babel-" if scheme == "babel" else "X-Webhook-"
    id_name = "X-Babel-Webhook-Id" if scheme == "babel" else "X-Webhook-Id"
    good = hmac.new(b"platform-secret", body, hashlib.sha256).hexdigest()
    if good in signature.lower():
        return
    headers = {id_name: "evt_1", prefix + "Signature": signature}
    with pytest.raises(MissingHeaderError if not signature else InvalidSignatureError):
        hexes[scheme].verify(body, headers)


@PROPERTY
@given(
    headers=st.dictionaries(
        st.one_of(
            st.sampled_from(["webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE", "x-other"]),
            st.text(max_size=20),
        ),
        header_text,
        max_size=6,
    ),
    body=st.binary(max_size=200),
)
def test_arbitrary_headers_only_raise_verification_errors(headers, body):
    """Arbitrary header sets never leak ValueError, IndexError, UnicodeError or binascii.Error."""
    for verifier in (standard, *hexes.values()):
        with _any_verification():
            verifier.verify(body, headers)


@PROPERTY
@given(body=st.binary(min_size=1, max_size=300), flip=st.integers(min_value=0))
def test_any_tampered_byte_is_invalid_signature(body, flip):
    """Changing any one byte of a signed body breaks the signature."""
    headers = sign(body, SECRET, msg_id="evt_1", timestamp=NOW)
    index = flip % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(InvalidSignatureError):
        standard.verify(tampered, headers)


@PROPERTY
@given(offset=st.integers(min_value=-(10**9), max_value=10**9))
def test_timestamps_outside_the_window_are_stale(offset):
    """Any timestamp more than 300 s away, past or future, is StaleTimestampError."""
    ts = NOW + offset
    if ts < 0:
        return
    body = b'{"type":"license.expired"}'
    headers = sign(body, SECRET, msg_id="evt_1", timestamp=ts)
    if abs(offset) <= 300:
        assert standard.verify(body, headers).timestamp == ts
    else:
        with pytest.raises(StaleTimestampError):
            standard.verify(body, headers)


@PROPERTY
@given(timestamp=header_text.filter(lambda t: t and not (t.isascii() and t.isdigit())))
def test_non_numeric_timestamps_are_malformed(timestamp):
    """Any timestamp header that is not ASCII digits is MalformedPayloadError."""
    headers = {"webhook-id": "e", "webhook-timestamp": timestamp, "webhook-signature": "v1,x"}
    with pytest.raises(MalformedPayloadError):
        standard.verify(b"{}", headers)


@PROPERTY
@given(body=st.binary(max_size=300))
def test_signed_bytes_either_parse_or_are_malformed(body):
    """A correctly signed body verifies when it is JSON and is MalformedPayloadError otherwise."""
    headers = sign(body, SECRET, msg_id="evt_1", timestamp=NOW)
    try:
        event = standard.verify(body, headers)
    except MalformedPayloadError:
        return
    assert event.body == body


# -- secrets: the kit keys them as standardwebhooks and svix do --------------------------


@st.composite
def key_spellings(draw: st.DrawFn) -> tuple[str, str]:
    """Two spellings of one random key: with or without whsec_ and base64 padding."""
    encoded = base64.b64encode(draw(st.binary(min_size=1, max_size=64))).decode()

    def spelling() -> str:
        text = encoded.rstrip("=") if draw(st.booleans()) else encoded
        return "whsec_" + text if draw(st.booleans()) else text

    return spelling(), spelling()


json_bodies = st.dictionaries(
    st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=20)), max_size=4
).map(lambda d: json.dumps(d, ensure_ascii=False).encode())


def _accepts(verify: Callable[[], object], rejection: type[Exception]) -> bool:
    try:
        verify()
    except rejection:
        return False
    return True


@PROPERTY
@given(keys=key_spellings(), other=key_spellings(), same=st.booleans(), body=json_bodies)
def test_kit_and_reference_libraries_agree_on_standard_secrets(keys, other, same, body):
    """Prefixed or not, padded or not: kit, standardwebhooks and svix accept the same deliveries."""
    secret, signer = keys if same else (keys[0], other[1])
    now = int(time.time())
    when = datetime.fromtimestamp(now, tz=UTC)
    signature = standardwebhooks.Webhook(signer).sign("msg_1", when, body.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    kit = Verifier(secret, clock=lambda: now)
    verdicts = [
        _accepts(lambda: kit.verify(body, headers), VerificationError),
        _accepts(lambda: standardwebhooks.Webhook(secret).verify(body, headers),
                 standardwebhooks.WebhookVerificationError),
        _accepts(lambda: svix.webhooks.Webhook(secret).verify(body, headers),
                 svix.webhooks.WebhookVerificationError),
    ]
    assert verdicts == [verdicts[1]] * 3, (secret, signer, verdicts)
    ours = sign(body, secret, msg_id="msg_1", timestamp=now)
    standardwebhooks.Webhook(secret).verify(body, ours)
    svix.webhooks.Webhook(secret).verify(body, ours)


secret_texts = st.one_of(
    st.text(alphabet="ABCXYZabcxyz0189+/=-_*! \n\u00e9", max_size=40),
    st.text(max_size=24),
).flatmap(lambda text: st.sampled_from([text, "whsec_" + text]))


@PROPERTY
@given(secret=secret_texts)
def test_kit_keys_any_secret_as_the_reference_or_refuses_it(secret):
    """Any string: the kit derives the reference's key, or raises InvalidSecretError.

    It refuses only what the reference refuses too, or would key by silently dropping
    characters outside the base64 alphabet (or, like every kit secret, surrounding space).
    """
    try:
        kit_headers = sign(b"{}", secret, msg_id="msg_1", timestamp=NOW)
    except InvalidSecretError:
        try:
            standardwebhooks.Webhook(secret)
        except Exception:
            return
        encoded = secret.removeprefix("whsec_")
        assert secret != secret.strip() or not re.fullmatch(r"[A-Za-z0-9+/]*=*", encoded)
        return
    when = datetime.fromtimestamp(NOW, tz=UTC)
    for reference in (standardwebhooks.Webhook(secret), svix.webhooks.Webhook(secret)):
        assert reference.sign("msg_1", when, "{}") == kit_headers["webhook-signature"]


class _any_verification:
    """Context manager: the block may pass or raise a VerificationError, nothing else."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        return exc is None or isinstance(exc, VerificationError)
