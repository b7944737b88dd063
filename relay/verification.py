"""Is this request really the platform's? Each source's check, built once per config.

Pure: a check takes the request's headers (lowercased names) and its raw
body, and returns or raises `Refused`. The relay's own three schemes are
checked by the receiver kit's `Verifier` (`check_signature`), so a relay
taking another relay's deliveries verifies them exactly as an integrator
would; `hmac` covers the other platforms' conventions. Every comparison is
constant-time, and every digest is computed from HMAC states prepared when
the config was loaded.

Only a timestamp that is signed is held to the tolerance: `standard` and
`hmac` with `signed: timestamp.body`. The hex schemes' timestamp headers are
not signed, so anyone replaying a request could rewrite them; refusing on
them would only refuse the platform's own late retries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping

from receiver_kit.exceptions import VerificationError
from receiver_kit.verification import SCHEMES, Verifier
from relay.config.sources import VerifyConfig

__all__ = ["Check", "Refused", "build_check"]

Headers = Mapping[str, str]
Check = Callable[[Headers, bytes, float], None]
_MAX_TIMESTAMP_DIGITS = 15


class Refused(Exception):
    """The request did not prove it comes from the platform; `reason` labels the metric."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _header(headers: Headers, name: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise Refused("missing", f"no {name} header: the request is not signed as this "
                                 "source expects")
    return value


def _timestamp(raw: str, name: str, now: float, tolerance: float) -> None:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > _MAX_TIMESTAMP_DIGITS:
        raise Refused("timestamp", f"{name} must be a unix time in whole seconds")
    if abs(int(raw) - now) > tolerance:
        raise Refused("timestamp", f"{name} is more than {tolerance:g} s from the relay's "
                                   "clock; a replayed or delayed request is refused")


def _relay_scheme(verify: VerifyConfig) -> Check:
    """`babel`, `x-webhook`, `standard`: the receiver kit's checks of SPEC section 3."""
    scheme = verify.scheme
    verifier = Verifier(list(verify.secrets), scheme, tolerance=None)
    names = SCHEMES[scheme]
    tolerance = verify.tolerance_s

    def check(headers: Headers, body: bytes, now: float) -> None:
        signature = _header(headers, names.signature)
        try:
            if scheme != "standard":
                verifier.check_signature(body, signature)
                return
            msg_id = _header(headers, names.id)
            stamp = _header(headers, names.timestamp)
            _timestamp(stamp, names.timestamp, now, tolerance)
            verifier.check_signature(body, signature, msg_id=msg_id, timestamp=stamp)
        except VerificationError:
            raise Refused("signature", f"the {names.signature} header does not match the "
                                       "body signed with this source's secret") from None

    return check


def _generic_hmac(verify: VerifyConfig) -> Check:
    """A platform's own HMAC convention: which header, digest, encoding, prefix, content."""
    digest = hashlib.sha256 if verify.algorithm == "sha256" else hashlib.sha512
    macs = [hmac.new(secret.encode(), digestmod=digest) for secret in verify.secrets]
    header = verify.header
    assert header is not None  # VerifyConfig requires it for hmac
    prefix, hexadecimal = verify.prefix, verify.encoding == "hex"
    stamp_header = verify.timestamp_header if verify.signed == "timestamp.body" else None
    tolerance = verify.tolerance_s

    def check(headers: Headers, body: bytes, now: float) -> None:
        given = _header(headers, header).strip()
        if prefix:
            if not given.startswith(prefix):
                raise Refused("signature", f"the {header} header does not start with "
                                           f"{prefix!r}")
            given = given[len(prefix):]
        lead = b""
        if stamp_header is not None:
            stamp = _header(headers, stamp_header)
            _timestamp(stamp, stamp_header, now, tolerance)
            lead = stamp.encode() + b"."
        try:
            candidate = (given.lower().encode("ascii") if hexadecimal
                         else base64.b64decode(given, validate=True))
        except (UnicodeEncodeError, binascii.Error, ValueError):
            candidate = b""
        matched = False
        for base in macs:
            mac = base.copy()
            mac.update(lead)
            mac.update(body)
            expected = mac.hexdigest().encode() if hexadecimal else mac.digest()
            matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise Refused("signature", f"the {header} header does not match the body signed "
                                       "with this source's secret")

    return check


def _credentials(expected: list[bytes], kind: str) -> Check:
    """`bearer` and `basic`: the Authorization header against any configured credential."""

    def check(headers: Headers, body: bytes, now: float) -> None:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != kind.lower() or not given.strip():
            raise Refused("missing", f"send `Authorization: {kind} ...`; this source "
                                     "requires it")
        candidate = given.strip().encode("latin-1")
        matched = False
        for credential in expected:
            matched |= hmac.compare_digest(credential, candidate)
        if not matched:
            raise Refused("signature", f"the {kind} credentials are not this source's")

    return check


def _accept(headers: Headers, body: bytes, now: float) -> None:
    """`none`: the config allows it on loopback listeners only."""


def build_check(verify: VerifyConfig) -> Check:
    """The check of one source's `verify`, with its keys prepared."""
    scheme = verify.scheme
    if scheme in SCHEMES:
        return _relay_scheme(verify)
    if scheme == "hmac":
        return _generic_hmac(verify)
    if scheme == "bearer":
        return _credentials([t.encode() for t in verify.tokens], "Bearer")
    if scheme == "basic":
        user = verify.username or ""
        return _credentials([base64.b64encode(f"{user}:{p}".encode()) for p in verify.passwords],
                            "Basic")
    return _accept
