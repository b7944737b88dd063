"""Signature headers for the three schemes of SPEC section 3.

Pure functions of (secrets, event id, timestamp, body): the delivery worker
calls `Signer.headers()` for each attempt, so a rotated secret applies from the
next attempt. HMAC keys are prepared once per endpoint (`hmac.new(key)` then
`.copy()`), because deriving the key schedule on every delivery is wasted work
on the hot path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Sequence

from relay.config import Scheme, standard_secret_key

__all__ = ["Signer", "generate_secret", "secret_key"]

# Header names per scheme: (id, event type, timestamp, signature).
HEADER_NAMES: dict[Scheme, tuple[str, str | None, str, str]] = {
    "standard": ("webhook-id", None, "webhook-timestamp", "webhook-signature"),
    "x-webhook": ("X-Webhook-Id", "X-Webhook-Event", "X-Webhook-Timestamp", "X-Webhook-Signature"),
    "babel": ("X-Babel-Webhook-Id", "X-Babel-Event", "X-Babel-Timestamp", "X-Babel-Signature"),
}


def generate_secret() -> str:
    """A new Standard Webhooks secret: `whsec_` + base64 of 24 random bytes (as Svix)."""
    return "whsec_" + base64.b64encode(_secrets.token_bytes(24)).decode()


def secret_key(secret: str, scheme: Scheme) -> bytes:
    """The HMAC key of one secret, derived exactly as the config check validated it.

    `standard`: base64 after an optional `whsec_` (`standard_secret_key`), as Standard
    Webhooks receivers derive it; the hex schemes: the string's UTF-8 bytes as they are.
    """
    if scheme == "standard":
        return standard_secret_key(secret)
    return secret.encode()


class Signer:
    """Builds one endpoint's signature headers; holds prepared HMAC states, never logs them."""

    __slots__ = ("_hmacs", "scheme")

    def __init__(self, scheme: Scheme, secrets: Sequence[str]) -> None:
        self.scheme = scheme
        keys = [secret_key(s, scheme) for s in secrets]
        if scheme != "standard":
            keys = keys[:1]  # hex schemes carry one signature: the newest secret's
        self._hmacs = [hmac.new(key, digestmod=hashlib.sha256) for key in keys]

    def __repr__(self) -> str:
        return f"Signer(scheme={self.scheme!r}, secrets={len(self._hmacs)})"

    def headers(
        self, event_id: str, event_type: str, timestamp: int, body: bytes
    ) -> dict[str, str]:
        id_name, type_name, ts_name, sig_name = HEADER_NAMES[self.scheme]
        headers = {id_name: event_id, ts_name: str(timestamp)}
        if type_name is not None:
            headers[type_name] = event_type
        if not self._hmacs:
            return headers
        if self.scheme == "standard":
            prefix = f"{event_id}.{timestamp}.".encode()
            signatures = []
            for base in self._hmacs:
                mac = base.copy()
                mac.update(prefix)
                mac.update(body)
                signatures.append("v1," + binascii.b2a_base64(mac.digest(), newline=False).decode())
            headers[sig_name] = " ".join(signatures)
        else:
            mac = self._hmacs[0].copy()
            mac.update(body)
            headers[sig_name] = mac.hexdigest()
        return headers
