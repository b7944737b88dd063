"""What every framework integration shares: answers, settings, claim bookkeeping.

Standard library only; each integration turns these values into its own
response objects. The request flow is the same everywhere, and each step is
written once here (`verified`, `claim_event`/`aclaim_event` giving an
`Admission`, `handler_raised`, `Admission.settle`):

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
    DuplicateEventError,
    InvalidSecretError,
    ReceiverKitError,
    StoreError,
    VerificationError,
)
from receiver_kit.idempotency import (
    DEFAULT_LEASE_S,
    DEFAULT_TTL_S,
    ClaimResult,
    IdempotencyStore,
    store_from_url,
)
from receiver_kit.idempotency.base import refusal
from receiver_kit.verification import DEFAULT_TOLERANCE_S, SCHEMES, HeadersLike, Verifier

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MISSING",
    "PROBLEM_CONTENT_TYPE",
    "Admission",
    "Answer",
    "KitSettings",
    "aclaim_event",
    "admit",
    "claim_event",
    "duplicate_body",
    "duplicate_id",
    "handler_failed",
    "handler_raised",
    "log_rejection",
    "logger",
    "problem_body",
    "read_settings",
    "too_large",
    "verified",
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


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer the kit gives itself, as any framework's response class takes it."""

    status: int
    body: bytes
    content_type: str = PROBLEM_CONTENT_TYPE

    @classmethod
    def problem(cls, document: Mapping[str, Any]) -> Answer:
        return cls(int(document["status"]), problem_body(document))

    @classmethod
    def of(cls, error: ReceiverKitError) -> Answer:
        """The duplicate body for a duplicate (the sender must see success), else the problem."""
        event_id = duplicate_id(error)
        if event_id is not None:
            return cls(200, duplicate_body(event_id), "application/json")
        return cls.problem(error.problem())


def duplicate_id(error: ReceiverKitError) -> str | None:
    """The event id when `error` says the event was already processed."""
    return error.event_id if isinstance(error, DuplicateEventError) else None


def log_rejection(error: ReceiverKitError, path: str) -> None:
    logger.warning("webhook rejected on %s: %s: %s", path, type(error).__name__, error.detail)


def verified(
    verifier: Verifier, body: bytes, headers: HeadersLike, path: str
) -> WebhookEvent | VerificationError:
    """The event, or the logged reason it is refused (401, 400 when malformed)."""
    try:
        return verifier.verify(body, headers)
    except VerificationError as error:
        log_rejection(error, path)
        return error


def handler_raised(
    event: WebhookEvent, exc: BaseException, *, passes_through: bool
) -> dict[str, Any] | None:
    """The 500 problem for an exception from the handler, or None when it must propagate.

    Only an `Exception` that nothing else answers becomes the kit's 500;
    cancellation, exits and what `passes_through` (the framework's own HTTP
    errors, an answer already started) propagate unchanged.
    """
    if passes_through or not isinstance(exc, Exception):
        return None
    logger.error("webhook handler failed for event %s", event.id, exc_info=exc)
    return handler_failed(event)


class Admission:
    """The idempotency side of one verified request.

    `refused` is what to answer instead of running the handler (duplicate,
    in progress, store failure). Otherwise the handler runs and `settle()`
    (or `asettle()`) completes the claim on success and releases it on
    failure, once: later calls, and every call without a store, do nothing.
    """

    __slots__ = ("_claim", "_store", "refused")

    def __init__(
        self,
        refused: ReceiverKitError | None = None,
        store: IdempotencyStore | None = None,
        claim: ClaimResult | None = None,
    ) -> None:
        self.refused = refused
        self._store = store
        self._claim = claim

    def settle(self, succeeded: bool) -> None:
        """Complete or release; a store failure here is logged, never raised.

        The handler has already run: when completing fails, its 2xx answer
        still goes out (the work is done and must not be retried), and the
        claim simply lapses when its lease expires.
        """
        held = self._take()
        if held is None:
            return
        store, claim = held
        try:
            if succeeded:
                _warn_if_lost(claim, store.complete(claim))
            else:
                store.release(claim)
        except StoreError:
            _log_unrecorded(claim)

    async def asettle(self, succeeded: bool) -> None:
        """Async `settle`."""
        held = self._take()
        if held is None:
            return
        store, claim = held
        try:
            if succeeded:
                _warn_if_lost(claim, await store.acomplete(claim))
            else:
                await store.arelease(claim)
        except StoreError:
            _log_unrecorded(claim)

    def _take(self) -> tuple[IdempotencyStore, ClaimResult] | None:
        store, claim, self._claim = self._store, self._claim, None
        return None if store is None or claim is None else (store, claim)


def admit(store: IdempotencyStore, claim: ClaimResult) -> Admission:
    """What a claim's answer means for the request: refuse it, or run and settle."""
    refused = refusal(claim)
    if refused is not None:
        return Admission(refused)
    return Admission(None, store, claim)


def claim_event(store: IdempotencyStore | None, event_id: str) -> Admission:
    """Claim `event_id` in `store` (none: nothing to claim) and decide what follows."""
    if store is None:
        return Admission()
    try:
        claim = store.claim(event_id)
    except ReceiverKitError as error:
        return _store_failed(event_id, error)
    return admit(store, claim)


async def aclaim_event(store: IdempotencyStore | None, event_id: str) -> Admission:
    """Async `claim_event`."""
    if store is None:
        return Admission()
    try:
        claim = await store.aclaim(event_id)
    except ReceiverKitError as error:
        return _store_failed(event_id, error)
    return admit(store, claim)


def _store_failed(event_id: str, error: ReceiverKitError) -> Admission:
    logger.error("event %s: idempotency store failed: %s", event_id, error)
    return Admission(error)


def _warn_if_lost(claim: ClaimResult, completed: bool) -> None:
    if not completed:
        logger.warning(
            "event %s: the claim expired while the handler ran and another worker "
            "took it; consider a longer lease", claim.event_id,
        )


def _log_unrecorded(claim: ClaimResult) -> None:
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
