"""Verifier: known answers, interop with standardwebhooks and svix, every rejection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
import standardwebhooks
import svix.webhooks

from receiver_kit import (
    ConfigurationError,
    InvalidSecretError,
    InvalidSignatureError,
    MalformedPayloadError,
    MissingHeaderError,
    StaleTimestampError,
    VerificationError,
    Verifier,
    WebhookEvent,
)
from receiver_kit.testing import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KAT_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
KAT_TS = 1614265330
KAT_BODY = b'{"test": 2432232314}'
KAT_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# The standardwebhooks test suite's secret is unprefixed; so is its wrong signature.
BARE_SECRET = SECRET.removeprefix("whsec_")
KAT_BAD_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
HEX_SECRET = "lic_hook_secret_7f3a"  # a raw platform secret, as in the x-webhook docs


def kat_headers() -> dict[str, str]:
    return {"webhook-id": KAT_ID, "webhook-timestamp": str(KAT_TS), "webhook-signature": KAT_SIG}


def at(ts: float) -> Verifier:
    return Verifier(SECRET, clock=lambda: ts)


def hex_headers(scheme: str, body: bytes, *, ts: int = KAT_TS, event: str | None = None):
    """Hex-scheme headers computed here with hmac, independently of the kit."""
    prefix = "X-Babel-" if scheme == "babel" else "X-Webhook-"
    id_header = "X-Babel-Webhook-Id" if scheme == "babel" else "X-Webhook-Id"
    headers = {
        id_header: "evt_123",
        prefix + "Timestamp": str(ts),
        prefix + "Signature": hmac.new(HEX_SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    if event is not None:
        headers[prefix + "Event"] = event
    return headers


# -- known answers -------------------------------------------------------------


def test_standard_webhooks_vector_verifies_through_injected_clock():
    """The reference vector verifies at its own timestamp, which standardwebhooks cannot do."""
    event = at(KAT_TS).verify(KAT_BODY, kat_headers())
    assert event == WebhookEvent(KAT_ID, None, KAT_TS, {"test": 2432232314}, KAT_BODY)
    assert event.payload == {"test": 2432232314}
    assert event.body is KAT_BODY


def test_standard_vector_reproduced_by_testing_sign():
    """receiver_kit.testing signs the reference vector byte for byte."""
    headers = sign(KAT_BODY, SECRET, msg_id=KAT_ID, timestamp=KAT_TS)
    assert headers["webhook-signature"] == KAT_SIG


@pytest.mark.parametrize("secret", [SECRET, BARE_SECRET], ids=["whsec_", "unprefixed"])
def test_reference_vectors_with_and_without_whsec_prefix(secret):
    """The reference suite's vectors hold for its secret with and without whsec_."""
    verifier = Verifier(secret, clock=lambda: KAT_TS)
    assert verifier.verify(KAT_BODY, kat_headers()).id == KAT_ID
    assert sign(KAT_BODY, secret, msg_id=KAT_ID, timestamp=KAT_TS)["webhook-signature"] == KAT_SIG
    with pytest.raises(InvalidSignatureError):
        verifier.verify(KAT_BODY, {**kat_headers(), "webhook-signature": KAT_BAD_SIG})


@pytest.mark.parametrize("scheme", ["x-webhook", "babel"])
def test_hex_schemes_known_answer(scheme):
    """Hex signatures computed independently with hmac verify; the event header gives the type."""
    body = b'{"event_type":"license.expiring","payload":{"license_id":123,"days_until_expiry":7}}'
    verifier = Verifier(HEX_SECRET, scheme=scheme, clock=lambda: KAT_TS)
    event = verifier.verify(body, hex_headers(scheme, body, event="license.expired"))
    assert event.id == "evt_123"
    assert event.type == "license.expired"  # the header wins over the payload
    assert event.timestamp == KAT_TS
    assert event.scheme == scheme
    assert event.data == {"license_id": 123, "days_until_expiry": 7}


def test_hex_scheme_type_falls_back_to_payload_and_timestamp_is_optional():
    """Without event and timestamp headers the type comes from the payload; no window check."""
    body = b'{"Id": 42, "EventType": "license.created"}'
    headers = hex_headers("babel", body)
    del headers["X-Babel-Timestamp"]
    event = Verifier(HEX_SECRET, scheme="babel", clock=lambda: 0).verify(body, headers)
    assert event.type == "license.created"
    assert event.timestamp is None


def test_hex_whsec_secret_is_used_as_utf8_not_decoded():
    """For the hex schemes a whsec_ secret is keyed by its UTF-8 bytes, as the relay signs."""
    body = b'{"type":"order.created"}'
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Webhook-Id": "e", "X-Webhook-Signature": mac}
    assert Verifier(SECRET, scheme="x-webhook").verify(body, headers).type == "order.created"


# -- interop ---------------------------------------------------------------------


def test_verifies_standardwebhooks_signatures():
    """A signature made by the standardwebhooks package verifies."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    body = '{"type":"license.created","data":{"licenseKey":"ABCD-1234"}}'
    signature = standardwebhooks.Webhook(SECRET).sign("evt_sw_1", now, body)
    headers = {
        "webhook-id": "evt_sw_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    event = Verifier(SECRET).verify(body.encode(), headers)
    assert event.type == "license.created"
    assert event.data == {"licenseKey": "ABCD-1234"}


def test_verifies_svix_signatures_with_svix_header_names_mapped():
    """A signature made by the svix package verifies (svix signs the same content)."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    body = '{"event":"license.validated","data":{}}'
    signature = svix.webhooks.Webhook(SECRET).sign("msg_svix_1", now, body)
    headers = {
        "Webhook-Id": "msg_svix_1",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": signature,
    }
    assert Verifier(SECRET).verify(body.encode(), headers).type == "license.validated"


def test_standardwebhooks_verifies_our_test_signatures():
    """The other direction: the reference library accepts what receiver_kit.testing signs."""
    body = b'{"type":"license.updated"}'
    headers = sign(body, SECRET, msg_id="evt_x")
    assert standardwebhooks.Webhook(SECRET).verify(body, headers) == {"type": "license.updated"}


# -- rotation, header shapes -----------------------------------------------------------


def test_any_of_several_signatures_may_match():
    """A header with signatures for several secrets verifies against any one of them."""
    other = "whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode()
    headers = sign(KAT_BODY, [other, SECRET], msg_id=KAT_ID, timestamp=KAT_TS)
    assert len(headers["webhook-signature"].split()) == 2
    assert at(KAT_TS).verify(KAT_BODY, headers).id == KAT_ID
    assert Verifier(other, clock=lambda: KAT_TS).verify(KAT_BODY, headers).id == KAT_ID


def test_any_of_several_secrets_may_match():
    """During a rotation the receiver holds old and new secrets; either signature passes."""
    new = "whsec_" + base64.b64encode(b"new-secret-new-secret-xx").decode()
    verifier = Verifier([new, SECRET], clock=lambda: KAT_TS)
    assert verifier.verify(KAT_BODY, kat_headers()).id == KAT_ID
    hex_verifier = Verifier(["new-one", HEX_SECRET], scheme="x-webhook", clock=lambda: KAT_TS)
    assert hex_verifier.verify(b"{}", hex_headers("x-webhook", b"{}")).id == "evt_123"


def test_unknown_versions_and_junk_entries_are_skipped():
    """Unknown signature versions and junk next to a valid v1 signature are ignored."""
    headers = kat_headers()
    headers["webhook-signature"] = f"v2,abc junk ,, v1,!!! {KAT_SIG}  v1a,x"
    assert at(KAT_TS).verify(KAT_BODY, headers).id == KAT_ID


@pytest.mark.parametrize(
    "headers",
    [
        {k.upper(): v for k, v in kat_headers().items()},
        {k.title(): v for k, v in kat_headers().items()},
        list(kat_headers().items()),
        [(k.encode(), v.encode()) for k, v in kat_headers().items()],
    ],
    ids=["upper", "title", "pairs", "raw-asgi-bytes"],
)
def test_header_lookup_is_case_insensitive_and_accepts_pairs(headers):
    """Headers in any case, as a list of pairs or as raw ASGI bytes, all work."""
    assert at(KAT_TS).verify(KAT_BODY, headers).id == KAT_ID


def test_hex_signature_accepts_uppercase_and_sha256_prefix():
    """Hex digests compare case-insensitively, with or without a sha256= prefix."""
    body = b'{"type":"a"}'
    headers = hex_headers("x-webhook", body)
    digest = headers["X-Webhook-Signature"]
    verifier = Verifier(HEX_SECRET, scheme="x-webhook", clock=lambda: KAT_TS)
    for variant in (digest.upper(), "sha256=" + digest):
        headers["X-Webhook-Signature"] = variant
        assert verifier.verify(body, headers).id == "evt_123"


def test_bytearray_and_memoryview_bodies_are_accepted_str_is_refused():
    """Buffers verify; a str body is a TypeError because it may not be the signed bytes."""
    verifier = at(KAT_TS)
    assert verifier.verify(bytearray(KAT_BODY), kat_headers()).body == KAT_BODY
    assert verifier.verify(memoryview(KAT_BODY), kat_headers()).body == KAT_BODY
    with pytest.raises(TypeError, match="raw request body"):
        verifier.verify(KAT_BODY.decode(), kat_headers())  # type: ignore[arg-type]


# -- rejections ------------------------------------------------------------------------


def test_tampered_body_is_invalid_signature():
    """One changed byte of the body fails the signature."""
    with pytest.raises(InvalidSignatureError):
        at(KAT_TS).verify(b'{"test": 2432232315}', kat_headers())


def test_wrong_secret_is_invalid_signature():
    """Another secret fails the signature, for every scheme."""
    wrong = "whsec_" + base64.b64encode(b"not-the-right-secret-xxx").decode()
    with pytest.raises(InvalidSignatureError):
        Verifier(wrong, clock=lambda: KAT_TS).verify(KAT_BODY, kat_headers())
    body = b"{}"
    for scheme in ("x-webhook", "babel"):
        with pytest.raises(InvalidSignatureError):
            Verifier("wrong", scheme=scheme, clock=lambda: KAT_TS).verify(
                    body, hex_headers(scheme, body)
                )


def test_signed_id_and_timestamp_cannot_be_swapped():
    """The standard scheme signs the id and timestamp: changing either fails."""
    headers = kat_headers()
    headers["webhook-id"] = "msg_other"
    with pytest.raises(InvalidSignatureError):
        at(KAT_TS).verify(KAT_BODY, headers)
    headers = kat_headers()
    headers["webhook-timestamp"] = str(KAT_TS + 1)
    with pytest.raises(InvalidSignatureError):
        at(KAT_TS).verify(KAT_BODY, headers)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_standard_header(missing):
    """Each required standard header, absent or empty, raises MissingHeaderError naming it."""
    for value in (None, ""):
        headers = kat_headers()
        if value is None:
            del headers[missing]
        else:
            headers[missing] = value
        with pytest.raises(MissingHeaderError) as info:
            at(KAT_TS).verify(KAT_BODY, headers)
        assert info.value.header == missing
        assert info.value.status_code == 401


@pytest.mark.parametrize(
    ("scheme", "missing"),
    [
        ("x-webhook", "X-Webhook-Id"),
        ("x-webhook", "X-Webhook-Signature"),
        ("babel", "X-Babel-Webhook-Id"),
        ("babel", "X-Babel-Signature"),
    ],
)
def test_missing_hex_header(scheme, missing):
    """Hex schemes require the id and signature headers."""
    headers = hex_headers(scheme, b"{}")
    del headers[missing]
    with pytest.raises(MissingHeaderError, match=missing):
        Verifier(HEX_SECRET, scheme=scheme, clock=lambda: KAT_TS).verify(b"{}", headers)


@pytest.mark.parametrize("offset", [-301, 301, -10**6, 10**6])
def test_stale_and_future_timestamps(offset):
    """Outside the 300 s window either way is StaleTimestampError, checked before the HMAC."""
    with pytest.raises(StaleTimestampError) as info:
        at(KAT_TS + offset).verify(KAT_BODY, kat_headers())
    assert info.value.timestamp == KAT_TS
    assert ("future" in str(info.value)) == (offset < 0)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_window_edges_are_inclusive(offset):
    """Exactly the tolerance away is still accepted."""
    assert at(KAT_TS + offset).verify(KAT_BODY, kat_headers()).id == KAT_ID


def test_tolerance_none_disables_the_window_and_custom_tolerance_applies():
    """tolerance=None verifies an old stored delivery; a narrower window rejects sooner."""
    assert Verifier(SECRET, tolerance=None).verify(KAT_BODY, kat_headers()).id == KAT_ID
    with pytest.raises(StaleTimestampError):
        Verifier(SECRET, tolerance=5, clock=lambda: KAT_TS + 6).verify(KAT_BODY, kat_headers())


def test_hex_timestamp_checked_when_present():
    """Hex schemes do not sign the timestamp but still enforce the window when it is sent."""
    verifier = Verifier(HEX_SECRET, scheme="x-webhook", clock=lambda: KAT_TS + 3600)
    with pytest.raises(StaleTimestampError):
        verifier.verify(b"{}", hex_headers("x-webhook", b"{}"))


@pytest.mark.parametrize(
    "timestamp",
    ["abc", "1614265330.5", "-1614265330", " 1614265330", "1_614_265_330", "١٢٣", "9" * 40],
)
def test_non_integer_timestamp_is_malformed(timestamp):
    """A timestamp that is not plain ASCII digits is MalformedPayloadError (400)."""
    headers = kat_headers()
    headers["webhook-timestamp"] = timestamp
    with pytest.raises(MalformedPayloadError) as info:
        at(KAT_TS).verify(KAT_BODY, headers)
    assert info.value.status_code == 400


@pytest.mark.parametrize("body", [b"", b"not json", b'{"a":', b"\xff\xfe\x00", b"[" * 100_000])
def test_signed_but_non_json_body_is_malformed(body):
    """A correctly signed body that is not JSON is MalformedPayloadError, not a crash."""
    headers = sign(body, SECRET, msg_id="e1", timestamp=KAT_TS)
    with pytest.raises(MalformedPayloadError):
        at(KAT_TS).verify(body, headers)


def test_no_v1_signature_message_differs_from_mismatch():
    """A header without any v1 signature says so; both are InvalidSignatureError."""
    headers = kat_headers()
    headers["webhook-signature"] = "garbage"
    with pytest.raises(InvalidSignatureError, match="no v1"):
        at(KAT_TS).verify(KAT_BODY, headers)


def test_errors_never_echo_secret_or_expected_signature():
    """No error message contains the secret, its key or the signature we expected."""
    key_b64 = SECRET.removeprefix("whsec_")
    expected = KAT_SIG.removeprefix("v1,")
    hex_expected = hmac.new(HEX_SECRET.encode(), KAT_BODY, hashlib.sha256).hexdigest()
    cases = [
        (at(KAT_TS), KAT_BODY + b" ", kat_headers()),
        (at(KAT_TS + 9999), KAT_BODY, kat_headers()),
        (at(KAT_TS), KAT_BODY, {**kat_headers(), "webhook-signature": "v1,AAAA"}),
        (Verifier(HEX_SECRET, scheme="x-webhook"), KAT_BODY, {"X-Webhook-Id": "e",
                                                            "X-Webhook-Signature": "00"}),
    ]
    for verifier, body, headers in cases:
        with pytest.raises(VerificationError) as info:
            verifier.verify(body, headers)
        text = str(info.value) + json.dumps(info.value.problem()) + repr(verifier)
        for secret_text in (SECRET, key_b64, expected, HEX_SECRET, hex_expected):
            assert secret_text not in text


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "scheme", "message"),
    [
        ("", "standard", "empty"),
        ("whsec_", "standard", "empty"),
        ("whsec_not*base64!", "standard", "not valid base64"),
        ("my-plain-secret", "standard", "not valid base64"),
        ("abcde", "standard", "not valid base64"),
        ("Zm9v_YmFyYmF6", "standard", "not valid base64"),
        ("cl\u00e9-secr\u00e8te", "standard", "not valid base64"),
        ("====", "standard", "empty"),
        ("whsec_abc\n", "standard", "whitespace"),
        ([], "standard", "no secret"),
        ([SECRET, ""], "standard", "secret #2"),
        ([SECRET, 3], "standard", "secret #2 is a int"),
        (42, "standard", "not int"),
        ("", "x-webhook", "empty"),
        (b"", "babel", "empty"),
    ],
)
def test_unusable_secret_fails_at_construction(secret, scheme, message):
    """Bad secrets raise InvalidSecretError (a ValueError) when the Verifier is built."""
    with pytest.raises(InvalidSecretError) as info:
        Verifier(secret, scheme=scheme)
    assert isinstance(info.value, ValueError)
    assert message.split()[0] in str(info.value) or message in str(info.value)
    if isinstance(secret, str) and len(secret.removeprefix("whsec_").strip()) > 3:
        assert secret.removeprefix("whsec_").strip() not in str(info.value)


def test_one_string_is_base64_for_standard_and_utf8_for_hex_schemes():
    """An unprefixed str is base64 for standard (not its UTF-8); hex schemes key the UTF-8."""
    body = b'{"type":"license.created"}'
    utf8_digest = hmac.new(BARE_SECRET.encode(), f"e1.{KAT_TS}.".encode() + body, hashlib.sha256)
    utf8_signed = {
        "webhook-id": "e1",
        "webhook-timestamp": str(KAT_TS),
        "webhook-signature": "v1," + base64.b64encode(utf8_digest.digest()).decode(),
    }
    with pytest.raises(InvalidSignatureError):
        Verifier(BARE_SECRET, clock=lambda: KAT_TS).verify(body, utf8_signed)
    signed = sign(body, SECRET, msg_id="e1", timestamp=KAT_TS)
    assert Verifier(BARE_SECRET, clock=lambda: KAT_TS).verify(body, signed).id == "e1"
    raw_key = base64.b64decode(BARE_SECRET)
    assert Verifier(raw_key, clock=lambda: KAT_TS).verify(body, signed).id == "e1"
    hex_signed = {"X-Webhook-Id": "e2",
                  "X-Webhook-Signature": hmac.new(BARE_SECRET.encode(), body, "sha256").hexdigest()}
    assert Verifier(BARE_SECRET, scheme="x-webhook").verify(body, hex_signed).id == "e2"


def test_unpadded_whsec_secret_is_accepted():
    """whsec_ values without base64 padding decode, as in the reference libraries."""
    key = base64.b64encode(b"0123456789abcdefghij").decode()  # ends with "="
    assert key.endswith("=")
    a = Verifier("whsec_" + key, clock=lambda: KAT_TS)
    b = Verifier("whsec_" + key.rstrip("="), clock=lambda: KAT_TS)
    headers = sign(KAT_BODY, "whsec_" + key, msg_id="e", timestamp=KAT_TS)
    assert a.verify(KAT_BODY, headers) == b.verify(KAT_BODY, headers)


@pytest.mark.parametrize(
    "kwargs",
    [{"scheme": "hmac"}, {"tolerance": -1}, {"tolerance": float("nan")}, {"tolerance": True},
     {"clock": 5}],
)
def test_bad_configuration(kwargs):
    """Unknown schemes, negative or non-numeric tolerances and bad clocks are ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Verifier(SECRET, **kwargs)


def test_check_signature_alone():
    """check_signature checks only the signature value, with the standard id and timestamp."""
    verifier = Verifier(SECRET)
    verifier.check_signature(KAT_BODY, KAT_SIG, msg_id=KAT_ID, timestamp=KAT_TS)
    with pytest.raises(InvalidSignatureError):
        verifier.check_signature(KAT_BODY, KAT_SIG, msg_id=KAT_ID, timestamp=KAT_TS + 1)
    with pytest.raises(TypeError):
        verifier.check_signature(KAT_BODY, KAT_SIG)
    hex_verifier = Verifier(HEX_SECRET, scheme="babel")
    good = hmac.new(HEX_SECRET.encode(), KAT_BODY, hashlib.sha256).hexdigest()
    hex_verifier.check_signature(KAT_BODY, good)
    with pytest.raises(InvalidSignatureError):
        hex_verifier.check_signature(KAT_BODY, good[:-1] + "0")


def test_event_type_from_payload_fields_in_order():
    """type, event, event_type, EventType are tried in order; non-strings are skipped."""
    cases = [
        ({"type": "a", "event": "b"}, "a"),
        ({"type": 3, "event": "b"}, "b"),
        ({"event_type": "c", "EventType": "d"}, "c"),
        ({"EventType": "d"}, "d"),
        ({"type": ""}, None),
        ([1, 2], None),
    ]
    for payload, expected in cases:
        body = json.dumps(payload).encode()
        headers = sign(body, SECRET, msg_id="e", timestamp=KAT_TS)
        assert at(KAT_TS).verify(body, headers).type == expected


def test_verifier_repr_hides_secrets():
    """repr shows scheme, secret count and tolerance only."""
    text = repr(Verifier([SECRET, SECRET]))
    assert text == "Verifier(scheme='standard', secrets=2, tolerance=300.0)"
