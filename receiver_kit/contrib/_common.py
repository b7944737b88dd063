"""What every framework integration shares: answers, settings, claim bookkeeping.

Standard library only; each integration turns these values into its own
response objects. The request flow is the same everywhere:

1. read the raw body, verify it: a `VerificationError` answers 401 (400 when
   malformed) as an RFC 9457 problem;
2. claim the event id: ``duplicate`` answers 200 without running the handler,
   ``in_progress`` answers 409, a failing store answers 503;
3. run the handler: a 2xx answer completes the claim, any other answer or an
   exception releases it so the sender's retry processes the event; an
   exception answers 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from receiver_kit.events import WebhookEvent
from receiver_kit.exceptions import (
    PROBLEM_TYPE_BASE,
    ConfigurationError,
    EventInProgressError,
    InvalidSecretError,
    ReceiverKitError,
    StoreError,
)
from receiver_kit.idempotency import (
    DEFAULT_LEASE_S,
    DEFAULT_TTL_S,
    ClaimResult,
    ClaimStatus,
    IdempotencyStore,
    store_from_url,
)
from receiver_kit.verification import DEFAULT_TOLERANCE_S, SCHEMES, Verifier

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MISSING",
    "PROBLEM_CONTENT_TYPE",
    "KitSettings",
    "afinish",
    "duplicate_body",
    "finish",
    "handler_failed",
    "log_rejection",
    "logger",
    "problem_body",
    "read_settings",
    "refusal",
    "too_large",
]

logger = logging.getLogger("receiver_kit")

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
#: The relay forwards the platform's body byte for byte and ingests up to
#: 1 MiB by default; 10 MiB leaves room for a raised ingest limit.
DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
MISSING: Final[Any] = object()


def problem_body(problem: Mapping[str, Any]) -> bytes:
    return json.dumps(problem, separators=(",", ":")).encode()


def duplicate_body(event_id: str) -> bytes:
    """The 200 answer to an already-processed event: the sender's job is done."""
    return problem_body({"id": event_id, "status": "duplicate", "duplicate": True})


def handler_failed(event: WebhookEvent) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_BASE + "handler-failed",
        "title": "Webhook handler failed",
        "status": 500,
        "detail": f"processing event {event.id} failed; it will be processed on the next delivery",
    }


def too_large(limit: int) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_BASE + "too-large",
        "title": "Webhook body too large",
        "status": 413,
        "detail": f"the body exceeds this receiver's limit of {limit} bytes",
    }


def refusal(claim: ClaimResult) -> ReceiverKitError | None:
    """The error for a claim that was not acquired, or None when it was."""
    if claim.status is ClaimStatus.IN_PROGRESS:
        return EventInProgressError(
            f"event {claim.event_id} is being processed by another worker; retry later",
            claim.event_id,
        )
    return None


def log_rejection(error: ReceiverKitError, path: str) -> None:
    logger.warning("webhook rejected on %s: %s: %s", path, type(error).__name__, error.detail)


def finish(store: IdempotencyStore, claim: ClaimResult, succeeded: bool) -> None:
    """Complete or release; a store failure here is logged, never raised.

    The handler has already run: when completing fails, its 2xx answer still
    goes out (the work is done and must not be retried), and the claim simply
    lapses when its lease expires.
    """
    try:
        if succeeded:
            if not store.complete(claim):
                logger.warning(
                    "event %s: the claim expired while the handler ran and another worker "
                    "took it; consider a longer lease", claim.event_id,
                )
        else:
            store.release(claim)
    except StoreError:
        logger.exception("event %s: could not record the outcome in the store", claim.event_id)


async def afinish(store: IdempotencyStore, claim: ClaimResult, succeeded: bool) -> None:
    """Async `finish`."""
    try:
        if succeeded:
            if not await store.acomplete(claim):
                logger.warning(
                    "event %s: the claim expired while the handler ran and another worker "
                    "took it; consider a longer lease", claim.event_id,
                )
        else:
            await store.arelease(claim)
    except StoreError:
        logger.exception("event %s: could not record the outcome in the store", claim.event_id)


@dataclass(frozen=True, slots=True)
class KitSettings:
    """A verifier and a store built from framework settings."""

    verifier: Verifier
    store: IdempotencyStore | None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def read_settings(
    lookup: Callable[[str], Any],
    *,
    prefix: str,
    default_store: Callable[[float, float], IdempotencyStore | None],
    store_factory: Callable[[str, float, float], IdempotencyStore] | None = None,
    verifier: Verifier | None = None,
) -> KitSettings:
    """Build `KitSettings` from ``SECRET``, ``SCHEME``, ``TOLERANCE``, ``STORE``,
    ``LEASE``, ``TTL`` and ``MAX_BODY_BYTES``.

    `lookup(key)` returns the value or `MISSING`. A ``STORE`` string goes to
    `store_factory` (default: `store_from_url`). Errors name the setting as
    the user wrote it (`prefix` + key) and never echo a secret. A `verifier`
    built in code replaces ``SECRET``, ``SCHEME`` and ``TOLERANCE``.
    """

    def name(key: str) -> str:
        return prefix + key

    lease_s = _seconds(lookup("LEASE"), DEFAULT_LEASE_S, name("LEASE"))
    ttl_s = _seconds(lookup("TTL"), DEFAULT_TTL_S, name("TTL"))
    if verifier is None:
        verifier = _read_verifier(lookup, name)

    store_setting = lookup("STORE")
    store: IdempotencyStore | None
    if store_setting is MISSING:
        store = default_store(lease_s, ttl_s)
    elif store_setting is None or store_setting is False:
        store = None
    elif isinstance(store_setting, IdempotencyStore):
        store = store_setting
    elif isinstance(store_setting, str):
        factory = store_factory or _from_url
        try:
            store = factory(store_setting, lease_s, ttl_s)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{name('STORE')}: {exc}") from None
    else:
        raise ConfigurationError(
            f"{name('STORE')} must be a store URL, an IdempotencyStore or None, "
            f"not {type(store_setting).__name__}"
        )

    max_body = lookup("MAX_BODY_BYTES")
    if max_body is MISSING or max_body is None:
        max_body = DEFAULT_MAX_BODY_BYTES
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body <= 0:
        raise ConfigurationError(f"{name('MAX_BODY_BYTES')} must be a positive int of bytes")
    return KitSettings(verifier, store, max_body)


def _read_verifier(lookup: Callable[[str], Any], name: Callable[[str], str]) -> Verifier:
    secret = lookup("SECRET")
    if secret is MISSING or secret in (None, "", [], ()):
        raise ConfigurationError(
            f"{name('SECRET')} is not set: the receiver cannot verify deliveries without it"
        )
    scheme = lookup("SCHEME")
    scheme = "standard" if scheme is MISSING or scheme is None else scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"{name('SCHEME')}: unknown signature scheme {scheme!r}; "
            f"expected one of {', '.join(SCHEMES)}"
        )
    tolerance = lookup("TOLERANCE")
    tolerance = DEFAULT_TOLERANCE_S if tolerance is MISSING else tolerance
    try:
        return Verifier(secret, scheme=scheme, tolerance=tolerance)
    except InvalidSecretError as exc:
        raise InvalidSecretError(f"{name('SECRET')}: {exc}") from None
    except ConfigurationError as exc:
        raise ConfigurationError(f"{name('TOLERANCE')}: {exc}") from None


def _from_url(url: str, lease_s: float, ttl_s: float) -> IdempotencyStore:
    return store_from_url(url, lease_s=lease_s, ttl_s=ttl_s)


def _seconds(value: Any, default: float, setting: str) -> float:
    if value is MISSING or value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"{setting} must be a positive number of seconds, not {value!r}")
    return float(value)
