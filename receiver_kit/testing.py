"""Build signed deliveries in tests, exactly as the relay signs them.

Test your own webhook handler without a running relay::

    from receiver_kit.testing import signed_request

    body, headers = signed_request({"type": "license.created", "data": {"key": "AB-12"}},
                                   secret="whsec_...")
    response = client.post("/webhooks", content=body, headers=headers)

`sign()` signs bytes you already have; `signed_request()` serialises a payload
first. Both sign with every secret of a list for `standard` (as the relay does
during a rotation) and with the first one for the hex schemes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any, NamedTuple

from receiver_kit.events import event_type_from_payload
from receiver_kit.exceptions import ConfigurationError
from receiver_kit.verification import SCHEMES, SchemeName, SecretsLike, _secret_keys

__all__ = ["SignedRequest", "new_event_id", "sign", "signed_request"]


class SignedRequest(NamedTuple):
    """A body and the headers that sign it; unpacks as ``body, headers``."""

    body: bytes
    headers: dict[str, str]


def new_event_id() -> str:
    """A fresh id in the relay's ``evt_...`` form."""
    return "evt_" + secrets.token_hex(12)


def sign(
    body: bytes | str,
    secret: SecretsLike,
    *,
    scheme: SchemeName | str = "standard",
    msg_id: str | None = None,
    timestamp: int | None = None,
    event_type: str | None = None,
) -> dict[str, str]:
    """The headers the relay would send with `body`, for `scheme`.

    `msg_id` defaults to a new ``evt_...`` id and `timestamp` to now. For the
    hex schemes `event_type` fills the event header (``X-Webhook-Event``);
    `standard` has no event header and ignores it. A ``str`` body is encoded
    as UTF-8. ``Content-Type: application/json`` is included.
    """
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unknown signature scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
        )
    raw = body.encode() if isinstance(body, str) else bytes(body)
    keys = _secret_keys(secret, scheme)
    msg_id = new_event_id() if msg_id is None else msg_id
    ts = int(time.time()) if timestamp is None else int(timestamp)
    names = SCHEMES[scheme]
    headers = {"Content-Type": "application/json", names.id: msg_id, names.timestamp: str(ts)}
    if scheme == "standard":
        signed = f"{msg_id}.{ts}.".encode() + raw
        headers[names.signature] = " ".join(
            "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            for key in keys
        )
    else:
        if event_type is not None and names.event is not None:
            headers[names.event] = event_type
        headers[names.signature] = hmac.new(keys[0], raw, hashlib.sha256).hexdigest()
    return headers


def signed_request(
    payload: Any,
    secret: SecretsLike,
    *,
    scheme: SchemeName | str = "standard",
    msg_id: str | None = None,
    timestamp: int | None = None,
    event_type: str | None = None,
) -> SignedRequest:
    """Serialise `payload` as compact JSON and sign it; returns ``(body, headers)``.

    When `event_type` is not given, the hex schemes' event header is filled
    from the payload's ``type``/``event``/``event_type``/``EventType`` field,
    as the relay does.
    """
    body = json.dumps(payload, separators=(",", ":")).encode()
    if event_type is None:
        event_type = event_type_from_payload(payload)
    headers = sign(
        body, secret, scheme=scheme, msg_id=msg_id, timestamp=timestamp, event_type=event_type
    )
    return SignedRequest(body, headers)
