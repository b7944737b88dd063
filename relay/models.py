"""The records the relay stores and passes between ingest, storage and delivery.

Plain dataclasses with slots (frozen where they are not made per event or per
attempt): they cross the storage interface, so they hold only values (no
connections, no driver types), which is what lets the SQLite and PostgreSQL
backends be swapped without touching ingest or delivery.
Times are Unix seconds as floats.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "AttemptRecord",
    "AttemptResult",
    "ClaimedDelivery",
    "DeliveryStatus",
    "IngestOutcome",
    "NewEvent",
    "new_event_id",
]


class DeliveryStatus(StrEnum):
    PENDING = "pending"        # due now or at next_attempt_at, never attempted
    DELIVERING = "delivering"  # claimed by a worker, attempt in flight (leased)
    SCHEDULED = "scheduled"    # an attempt failed; waiting for its retry
    DELIVERED = "delivered"    # a 2xx was received
    FAILED = "failed"          # permanent error or attempts exhausted
    HELD = "held"              # endpoint paused, disabled or removed; sent on resume
    CANCELLED = "cancelled"    # its endpoint was deleted (API endpoints); kept for the log


WAITING_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SCHEDULED)
FINAL_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)
# What retention may delete once old enough: the states nothing ever leaves.
FINISHED_SQL = "('delivered', 'failed', 'cancelled')"

_random_hex: list[str] = []
os.register_at_fork(after_in_child=_random_hex.clear)  # a forked child draws its own


def new_event_id(now: float | None = None) -> str:
    """`evt_` + 12 hex digits of milliseconds + 16 random: sortable by time, unguessable.

    The random part comes from the OS 512 ids at a time: one getrandom call
    per id was a visible share of ingest's cost per request.
    """
    millis = int((time.time() if now is None else now) * 1000)
    if not _random_hex:
        pool = os.urandom(8 * 512).hex()
        _random_hex.extend(pool[i:i + 16] for i in range(0, len(pool), 16))
    return f"evt_{millis:012x}{_random_hex.pop()}"


# The records made for every event and every attempt (NewEvent, IngestOutcome,
# ClaimedDelivery, AttemptResult, and the sender's SendResult) are not frozen:
# a frozen dataclass sets each field through object.__setattr__, which made
# their construction 2-7 times slower, thousands of times a second. Treat them
# as read-only all the same.
@dataclass(slots=True)
class NewEvent:
    """An event accepted by ingest, not yet stored."""

    id: str
    type: str
    body: bytes
    endpoints: tuple[str, ...]
    received_at: float
    keyed: bool  # the id came from the client, so a duplicate must be detected
    tenant: str | None = None  # the platform's customer the event is about
    source: str | None = None  # the `sources:` entry it came through; None: /v1/events
    # W3C `traceparent[ tracestate]` of its ingest span (relay.telemetry); None: not traced
    trace_context: str | None = None


@dataclass(slots=True)
class IngestOutcome:
    """What storing one event did: the answer ingest gives for it."""

    id: str
    type: str
    deliveries: int
    duplicate: bool = False
    conflict: bool = False  # the id exists with a different body


@dataclass(slots=True)
class ClaimedDelivery:
    """A delivery a worker now owns until `lease_until`, with what it needs to send it."""

    id: int
    event_id: str
    event_type: str
    endpoint: str
    body: bytes
    attempt: int  # 1-based number of the attempt about to be made
    lease_until: float
    trace_context: str | None = None  # the event's, for the attempt's span (relay.telemetry)


@dataclass(slots=True)
class AttemptResult:
    """The outcome of one attempt, and what the delivery becomes after it."""

    delivery_id: int
    endpoint: str
    attempt: int
    started_at: float
    duration_ms: float
    status_code: int | None
    response_body: bytes
    error: str | None
    request_headers: dict[str, str] = field(default_factory=dict)
    new_status: DeliveryStatus = DeliveryStatus.DELIVERED
    next_attempt_at: float | None = None
    counts: bool = True  # False for an attempt cut short by shutdown or a crash
    disable_reason: str | None = None  # set to disable the endpoint (410 Gone)
    disable_after_s: float | None = None  # disable once failing for this long


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One stored attempt, as the admin API shows it."""

    attempt: int
    started_at: float
    duration_ms: float | None
    status_code: int | None
    response_body: str
    error: str | None
    request_headers: dict[str, str]
