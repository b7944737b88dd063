"""The idempotency store interface every backend implements.

A store answers one question per delivery, atomically across every worker
that shares it: *may I process this event id now?*

=================  =============================================================
`claim()` answer   meaning
=================  =============================================================
``acquired``       nobody has processed it: process it, then `complete()` on
                   success or `release()` on failure
``in_progress``    another worker holds a live claim: answer 409, the sender
                   retries later
``duplicate``      already processed successfully: answer 200, do nothing
=================  =============================================================

Two failure modes of existing idempotency helpers shaped this interface:

* the claim is held for the whole time the handler runs, not released before
  it starts, so two concurrent duplicates never both run;
* an exception releases the claim, so the sender's retry processes the event
  instead of being told "in progress" forever.

An ``acquired`` claim is a *lease* (`lease_s`, default 60 s): if the worker
dies mid-processing, the claim expires and a retry can take it. Each claim
carries a random token, and `complete()`/`release()` act only while the
stored claim still carries it, so a worker whose lease expired cannot
overwrite the claim another worker has taken since. Completed keys are kept
for `ttl_s` (default 7 days, longer than the relay's whole retry schedule).
"""

from __future__ import annotations

import abc
import asyncio
import enum
import math
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Final

from receiver_kit.exceptions import ConfigurationError, DuplicateEventError, EventInProgressError

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_TTL_S",
    "ClaimResult",
    "ClaimStatus",
    "IdempotencyStore",
]

#: How long an in-flight claim survives its worker: far above a handler's
#: normal run time (the relay gives up on an attempt after 10 s), short enough
#: that a crashed worker delays the event by one retry at most.
DEFAULT_LEASE_S: Final = 60.0
#: How long a processed id is remembered: longer than the relay's retry
#: schedule (about 33 hours) with a wide margin.
DEFAULT_TTL_S: Final = 7 * 24 * 3600.0


class ClaimStatus(enum.StrEnum):
    """The three answers of `IdempotencyStore.claim`."""

    ACQUIRED = "acquired"
    IN_PROGRESS = "in_progress"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The outcome of one claim; pass it back to `complete()` or `release()`."""

    event_id: str
    status: ClaimStatus
    token: str | None = None

    @property
    def acquired(self) -> bool:
        """True when this caller now owns the event and must process it."""
        return self.status is ClaimStatus.ACQUIRED


def new_token() -> str:
    """A random claim token: unguessable, so no other worker can forge ours."""
    return secrets.token_hex(16)


def check_event_id(event_id: str) -> str:
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("event_id must be a non-empty str")
    return event_id


def check_claim(claim: ClaimResult) -> str:
    """The token of an acquired claim; anything else is a caller's mistake."""
    if not isinstance(claim, ClaimResult) or claim.token is None:
        raise ValueError("complete() and release() take the acquired ClaimResult of claim()")
    return claim.token


def _check_seconds(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


class IdempotencyStore(abc.ABC):
    """One claim per event id, shared by every worker that uses the same backend.

    Subclasses implement `claim`, `complete` and `release` (and their async
    twins when they have a native async driver; the defaults run the sync
    methods in a worker thread). `processing()` and `aprocessing()` wrap the
    protocol in a context manager that completes on success and releases on
    any exception, including cancellation.
    """

    def __init__(self, *, lease_s: float = DEFAULT_LEASE_S, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.lease_s = _check_seconds("lease_s", lease_s)
        self.ttl_s = _check_seconds("ttl_s", ttl_s)

    @abc.abstractmethod
    def claim(self, event_id: str) -> ClaimResult:
        """Try to take the event; see the module docstring for the three answers."""

    @abc.abstractmethod
    def complete(self, claim: ClaimResult) -> bool:
        """Mark a claimed event as processed, kept for `ttl_s`.

        Returns False when the claim is no longer ours (our lease expired and
        another worker took the event): the caller's work is done anyway, but
        the other worker's claim is left alone.
        """

    @abc.abstractmethod
    def release(self, claim: ClaimResult) -> bool:
        """Give a claimed event back unprocessed, so the next delivery processes it.

        Returns False when the claim was no longer ours.
        """

    async def aclaim(self, event_id: str) -> ClaimResult:
        """Async `claim`."""
        return await asyncio.to_thread(self.claim, event_id)

    async def acomplete(self, claim: ClaimResult) -> bool:
        """Async `complete`."""
        return await asyncio.to_thread(self.complete, claim)

    async def arelease(self, claim: ClaimResult) -> bool:
        """Async `release`."""
        return await asyncio.to_thread(self.release, claim)

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections held by the store."""

    async def aclose(self) -> None:
        """Async `close`."""
        self.close()

    @contextmanager
    def processing(self, event_id: str) -> Iterator[ClaimResult]:
        """Claim `event_id` for the duration of the block.

        Raises `DuplicateEventError` (already processed: answer 200) or
        `EventInProgressError` (answer 409) instead of entering the block, so
        a forgotten check cannot process a duplicate. The claim is completed
        when the block exits normally and released when it raises.
        """
        claim = self.claim(event_id)
        _raise_unless_acquired(claim)
        try:
            yield claim
        except BaseException:
            self.release(claim)
            raise
        self.complete(claim)

    @asynccontextmanager
    async def aprocessing(self, event_id: str) -> AsyncIterator[ClaimResult]:
        """Async `processing()`; a cancelled task releases its claim too."""
        claim = await self.aclaim(event_id)
        _raise_unless_acquired(claim)
        try:
            yield claim
        except BaseException:
            await asyncio.shield(self.arelease(claim))
            raise
        await self.acomplete(claim)


def refusal(claim: ClaimResult) -> DuplicateEventError | EventInProgressError | None:
    """Why a claim does not let its caller process the event, or None when it does.

    The one mapping from `claim()` answers to errors: `processing()` raises
    it, the framework integrations answer it (200 duplicate, 409).
    """
    if claim.status is ClaimStatus.DUPLICATE:
        return DuplicateEventError(f"event {claim.event_id} was already processed", claim.event_id)
    if claim.status is ClaimStatus.IN_PROGRESS:
        return EventInProgressError(
            f"event {claim.event_id} is being processed by another worker; retry later",
            claim.event_id,
        )
    return None


def _raise_unless_acquired(claim: ClaimResult) -> None:
    refused = refusal(claim)
    if refused is not None:
        raise refused
