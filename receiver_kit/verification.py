"""Signature verification for the relay's three schemes (SPEC section 3).

* ``standard``: headers ``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``; the signature is ``v1,`` + base64 HMAC-SHA256 of
  ``{id}.{timestamp}.{body}``, keyed with the secret base64-decoded after an
  optional ``whsec_``, as the Standard Webhooks and Svix libraries key it;
  several space-separated signatures may be sent (one per secret during a
  rotation).
* ``x-webhook``: headers ``X-Webhook-Id``, ``X-Webhook-Event``,
  ``X-Webhook-Timestamp``, ``X-Webhook-Signature``; the signature is the
  lowercase hex HMAC-SHA256 of the raw body, keyed with the secret's UTF-8.
* ``babel``: as ``x-webhook`` with ``X-Babel-Webhook-Id``, ``X-Babel-Event``,
  ``X-Babel-Timestamp``, ``X-Babel-Signature``.

Why the code looks the way it does:

* The body is hashed as the bytes received, never decoded to ``str`` and
  re-encoded: that copy is what makes other verifiers slow on large bodies,
  and any re-serialisation would break the signature anyway.
* Each secret's HMAC key schedule is prepared once (``hmac.new(key)``) and
  ``.copy()``-ed per request; the digest is computed once per secret and then
  compared, in constant time, against every candidate in the header.
* Every way a header can be wrong ends in a `VerificationError` subclass:
  unparseable signatures are simply candidates that match nothing, so no
  ``ValueError``, ``IndexError`` or ``binascii.Error`` escapes.
* Configuration errors (an empty secret, a `standard` secret that is not
  base64, an unknown scheme) are raised by the constructor, so a deployment
  with a broken secret fails at start-up rather than rejecting every delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from receiver_kit.events import WebhookEvent, event_type_from_payload
from receiver_kit.exceptions import (
    ConfigurationError,
    InvalidSecretError,
    InvalidSignatureError,
    MalformedPayloadError,
    MissingHeaderError,
    StaleTimestampError,
)

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SCHEMES",
    "HeadersLike",
    "SchemeHeaders",
    "SchemeName",
    "SecretsLike",
    "Verifier",
]

SchemeName: TypeAlias = Literal["standard", "x-webhook", "babel"]
SecretsLike: TypeAlias = "str | bytes | Sequence[str | bytes]"
#: A header mapping (case-insensitive or not) or an iterable of (name, value)
#: pairs, as ASGI servers and WSGI environments provide them.
HeadersLike: TypeAlias = "Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]"

#: Five minutes either way, as the Standard Webhooks reference libraries use.
DEFAULT_TOLERANCE_S: Final = 300.0

_WHSEC_PREFIX: Final = "whsec_"
_MAX_TIMESTAMP_DIGITS: Final = 15


@dataclass(frozen=True, slots=True)
class SchemeHeaders:
    """The header names of one scheme, in their canonical spelling."""

    id: str
    event: str | None
    timestamp: str
    signature: str


SCHEMES: Final[Mapping[str, SchemeHeaders]] = {
    "standard": SchemeHeaders("webhook-id", None, "webhook-timestamp", "webhook-signature"),
    "x-webhook": SchemeHeaders(
        "X-Webhook-Id", "X-Webhook-Event", "X-Webhook-Timestamp", "X-Webhook-Signature"
    ),
    "babel": SchemeHeaders(
        "X-Babel-Webhook-Id", "X-Babel-Event", "X-Babel-Timestamp", "X-Babel-Signature"
    ),
}


def _secret_keys(secret: SecretsLike, scheme: str) -> list[bytes]:
    """Turn the configured secret(s) into HMAC keys, or raise `InvalidSecretError`.

    `standard` keys a ``str`` secret as the Standard Webhooks reference
    libraries do: an optional ``whsec_`` is stripped and the rest
    base64-decoded, so a receiver keeps the secret it used with them, prefixed
    or not. The hex schemes use the UTF-8 bytes of the whole string,
    ``whsec_`` included, because that is what the relay signs with. ``bytes``
    are the key itself in every scheme.
    """
    if isinstance(secret, str | bytes | bytearray):
        items: Sequence[object] = [secret]
    elif isinstance(secret, Sequence):
        items = secret
    else:
        raise InvalidSecretError(
            f"secret must be a str, bytes or a list of them, not {type(secret).__name__}"
        )
    if not items:
        raise InvalidSecretError("no secret given: pass at least one secret")
    keys: list[bytes] = []
    for position, item in enumerate(items, start=1):
        which = "the secret" if len(items) == 1 else f"secret #{position}"
        if isinstance(item, bytes | bytearray):
            key = bytes(item)
        elif isinstance(item, str):
            if item != item.strip():
                raise InvalidSecretError(
                    f"{which} has leading or trailing whitespace (a newline from a file?)"
                )
            if scheme == "standard":
                key = _standard_key(item, which)
            else:
                try:
                    key = item.encode("utf-8")
                except UnicodeEncodeError:
                    raise InvalidSecretError(f"{which} is not encodable as UTF-8") from None
        else:
            raise InvalidSecretError(f"{which} is a {type(item).__name__}, expected str or bytes")
        if not key:
            raise InvalidSecretError(f"{which} is empty")
        keys.append(key)
    return keys


def _standard_key(secret: str, which: str) -> bytes:
    """Base64 after an optional ``whsec_``, padding optional, as the reference libraries.

    Stricter than the Python reference in one way: that library drops
    characters outside the base64 alphabet (``-``, ``_``, ``*``...) without a
    word and keys with what is left, where the Go reference refuses the
    secret. Refusing at construction gives one clear error instead of
    signatures that match only some implementations.
    """
    encoded = secret.removeprefix(_WHSEC_PREFIX).rstrip("=")
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecretError(
            f"{which} is not valid base64 (after an optional whsec_ prefix), as the "
            "standard scheme requires; pass bytes to use a raw key"
        ) from None


def _lowered(headers: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in headers.items():
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        out.setdefault(key.lower(), value)
    return out


def _pairs(headers: Iterable[tuple[str | bytes, str | bytes]]) -> dict[str, Any]:
    """A list of (name, value) pairs, e.g. raw ASGI headers: the first value of a name wins."""
    out: dict[str, Any] = {}
    try:
        for name, value in headers:
            key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
            out.setdefault(key.lower(), value)
    except (TypeError, ValueError):
        raise MalformedPayloadError(
            "headers must be a mapping or an iterable of (name, value) pairs"
        ) from None
    return out


def _text(value: Any, name: str) -> str:
    """A header value as ``str``: ASGI and some WSGI stacks hand over bytes."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, list | tuple) and value:
        return _text(value[0], name)
    raise MalformedPayloadError(f"header {name} is not text")


def _parse_timestamp(raw: str, name: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > _MAX_TIMESTAMP_DIGITS:
        shown = raw if len(raw) <= 32 else raw[:29] + "..."
        raise MalformedPayloadError(
            f"header {name} must be a unix timestamp in whole seconds, got {shown!r}"
        )
    return int(raw)


class Verifier:
    """Checks that a delivery was signed by the relay (or a platform) with our secret.

    ``Verifier(secret, scheme="standard", tolerance=300, clock=time.time)``

    * `secret`: one secret or a list of them (newest first during a key
      rotation); a delivery is accepted when any signature in its header
      matches any secret. For `standard`, a ``str`` secret is base64-decoded
      after an optional ``whsec_``, as in Standard Webhooks; the hex schemes
      use its UTF-8 bytes as they are; ``bytes`` are the raw key.
    * `tolerance`: seconds the timestamp may differ from `clock()` in either
      direction; ``None`` disables the window (for replaying stored
      deliveries). The hex schemes do not sign the timestamp, but it is still
      checked when the header is present.
    * `clock`: returns the current unix time; inject one in tests.

    A `Verifier` holds only prepared HMAC states, is immutable once built and
    safe to share between threads and tasks.
    """

    __slots__ = ("_clock", "_hex", "_macs", "_names", "scheme", "tolerance")

    def __init__(
        self,
        secret: SecretsLike,
        scheme: SchemeName | str = "standard",
        tolerance: float | None = DEFAULT_TOLERANCE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if scheme not in SCHEMES:
            raise ConfigurationError(
                f"unknown signature scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
            )
        if tolerance is not None and (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, int | float)
            or not math.isfinite(tolerance)
            or tolerance < 0
        ):
            raise ConfigurationError(
                f"tolerance must be a number of seconds >= 0, or None, not {tolerance!r}"
            )
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning unix time in seconds")
        self.scheme: str = scheme
        self.tolerance: float | None = None if tolerance is None else float(tolerance)
        self._clock = clock
        self._hex = scheme != "standard"
        self._macs = tuple(
            hmac.new(key, digestmod=hashlib.sha256) for key in _secret_keys(secret, scheme)
        )
        names = SCHEMES[scheme]
        self._names = (
            (names.id.lower(), names.id),
            None if names.event is None else (names.event.lower(), names.event),
            (names.timestamp.lower(), names.timestamp),
            (names.signature.lower(), names.signature),
        )

    def __repr__(self) -> str:
        return (
            f"Verifier(scheme={self.scheme!r}, secrets={len(self._macs)}, "
            f"tolerance={self.tolerance!r})"
        )

    @property
    def headers(self) -> SchemeHeaders:
        """The header names of this verifier's scheme."""
        return SCHEMES[self.scheme]

    def verify(self, body: bytes, headers: HeadersLike) -> WebhookEvent:
        """Verify one delivery and return it parsed, or raise a `VerificationError`.

        `body` must be the raw request body, before any JSON parsing: a parsed
        and re-serialised body does not carry the same bytes. `headers` may be
        any mapping (looked up case-insensitively) or a list of pairs.

        Checks, in order: required headers present (`MissingHeaderError`),
        timestamp an integer (`MalformedPayloadError`) and within tolerance
        (`StaleTimestampError`), a signature matches (`InvalidSignatureError`),
        body is JSON (`MalformedPayloadError`).
        """
        if type(body) is not bytes:
            body = _as_body(body)
        if not isinstance(headers, Mapping):
            headers = _pairs(headers)
        id_names, event_names, ts_names, sig_names = self._names
        cache: list[dict[str, Any]] = []

        msg_id = _find(headers, id_names, cache)
        if not msg_id:
            raise MissingHeaderError(id_names[1])
        msg_id = _text(msg_id, id_names[1])
        ts_raw = _find(headers, ts_names, cache)
        signature = _find(headers, sig_names, cache)

        timestamp: int | None = None
        if self._hex:
            if not signature:
                raise MissingHeaderError(sig_names[1])
            if ts_raw:
                timestamp = _parse_timestamp(_text(ts_raw, ts_names[1]), ts_names[1])
                if self.tolerance is not None:
                    self._check_window(timestamp)
            self._check_hex(body, _text(signature, sig_names[1]))
        else:
            if not ts_raw:
                raise MissingHeaderError(ts_names[1])
            if not signature:
                raise MissingHeaderError(sig_names[1])
            ts_raw = _text(ts_raw, ts_names[1])
            timestamp = _parse_timestamp(ts_raw, ts_names[1])
            if self.tolerance is not None:
                self._check_window(timestamp)
            self._check_standard(body, msg_id, ts_raw, _text(signature, sig_names[1]))

        try:
            # Decoding first is faster than json.loads(bytes), which detects
            # the encoding in Python; JSON between systems is UTF-8 (RFC 8259).
            payload = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            raise MalformedPayloadError("the body is not valid JSON (UTF-8)") from None

        event_type: str | None = None
        if event_names is not None:
            header_type = _find(headers, event_names, cache)
            if header_type:
                event_type = _text(header_type, event_names[1])
        if event_type is None:
            event_type = event_type_from_payload(payload)
        return WebhookEvent(msg_id, event_type, timestamp, payload, body, self.scheme, headers)

    def check_signature(
        self,
        body: bytes,
        signature: str,
        *,
        msg_id: str | None = None,
        timestamp: str | int | None = None,
    ) -> None:
        """Check only a signature header value against the body; no clock, no JSON.

        For callers that already hold the header values (and for the
        benchmark). `standard` signs the id and timestamp too, so both are
        required there; the hex schemes ignore them. Raises
        `InvalidSignatureError` when nothing matches.
        """
        if type(body) is not bytes:
            body = _as_body(body)
        if self._hex:
            self._check_hex(body, signature)
            return
        if msg_id is None or timestamp is None:
            raise TypeError("the standard scheme signs msg_id and timestamp: pass both")
        self._check_standard(body, msg_id, str(timestamp), signature)

    def _check_window(self, timestamp: int) -> None:
        now = self._clock()
        tolerance = self.tolerance
        assert tolerance is not None
        if timestamp < now - tolerance or timestamp > now + tolerance:
            raise StaleTimestampError(timestamp, now, tolerance)

    def _check_standard(self, body: bytes, msg_id: str, ts_raw: str, header: str) -> None:
        try:
            prefix = f"{msg_id}.{ts_raw}.".encode()
        except UnicodeEncodeError:
            # Lone surrogates: no sender could have signed this id.
            raise InvalidSignatureError("no signature matches the configured secret") from None
        expected: list[bytes] = []
        for base in self._macs:
            mac = base.copy()
            mac.update(prefix)
            mac.update(body)
            expected.append(base64.b64encode(mac.digest()))
        seen_v1 = False
        for part in header.split():
            version, comma, value = part.partition(",")
            if not comma or version != "v1" or not value.isascii():
                continue
            seen_v1 = True
            candidate = value.encode("ascii")
            for digest in expected:
                if hmac.compare_digest(digest, candidate):
                    return
        if not seen_v1:
            raise InvalidSignatureError(
                "the webhook-signature header holds no v1,<base64> signature"
            )
        raise InvalidSignatureError("no signature matches the configured secret")

    def _check_hex(self, body: bytes, header: str) -> None:
        expected: list[str] = []
        for base in self._macs:
            mac = base.copy()
            mac.update(body)
            expected.append(mac.hexdigest())
        for part in header.split():
            candidate = part.lower()
            if candidate.startswith("sha256="):
                candidate = candidate[7:]
            if not candidate.isascii():
                continue
            for digest in expected:
                if hmac.compare_digest(digest, candidate):
                    return
        raise InvalidSignatureError("no signature matches the configured secret")


def _find(
    headers: Mapping[Any, Any], names: tuple[str, str], cache: list[dict[str, Any]]
) -> Any:
    """Look a header up case-insensitively, cheaply in the common cases.

    Case-insensitive mappings (Starlette, Werkzeug, Django) and dicts keyed in
    lowercase or canonical spelling answer on the first or second ``get``;
    only other spellings pay for one lowercased copy, built once per request.
    """
    lower, canonical = names
    value = headers.get(lower)
    if value is None:
        if canonical != lower:
            value = headers.get(canonical)
            if value is not None:
                return value
        if not cache:
            cache.append(_lowered(headers))
        value = cache[0].get(lower)
    return value


def _as_body(body: Any) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        raise TypeError(
            "pass the raw request body as bytes: a str has been decoded (and perhaps "
            "re-serialised) and may no longer be the bytes that were signed"
        )
    raise TypeError(f"body must be bytes, not {type(body).__name__}")
