"""Receive the relay's webhook deliveries safely: verify, then process each event once.

::

    from receiver_kit import Verifier, VerificationError, WebhookEvent

    verifier = Verifier(secret="whsec_...", scheme="standard", tolerance=300)
    event: WebhookEvent = verifier.verify(body, headers)   # raw body bytes, any header mapping

The core (this package, `receiver_kit.idempotency` without Redis, and
`receiver_kit.testing`) imports only the standard library. Framework
integrations live in `receiver_kit.contrib` and need their extra.
"""

from __future__ import annotations

from receiver_kit.events import WebhookEvent
from receiver_kit.exceptions import (
    ConfigurationError,
    DuplicateEventError,
    EventInProgressError,
    IdempotencyError,
    InvalidSecretError,
    InvalidSignatureError,
    MalformedPayloadError,
    MissingDependencyError,
    MissingHeaderError,
    ReceiverKitError,
    StaleTimestampError,
    StoreError,
    VerificationError,
)
from receiver_kit.idempotency import (
    ClaimResult,
    ClaimStatus,
    IdempotencyStore,
    MemoryStore,
    SQLiteStore,
    store_from_url,
)
from receiver_kit.verification import SCHEMES, SchemeName, Verifier

__all__ = [
    "SCHEMES",
    "ClaimResult",
    "ClaimStatus",
    "ConfigurationError",
    "DuplicateEventError",
    "EventInProgressError",
    "IdempotencyError",
    "IdempotencyStore",
    "InvalidSecretError",
    "InvalidSignatureError",
    "MalformedPayloadError",
    "MemoryStore",
    "MissingDependencyError",
    "MissingHeaderError",
    "ReceiverKitError",
    "SQLiteStore",
    "SchemeName",
    "StaleTimestampError",
    "StoreError",
    "VerificationError",
    "Verifier",
    "WebhookEvent",
    "store_from_url",
]
