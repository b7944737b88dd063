"""The records the storage interface takes and gives: plain frozen dataclasses.

Kept apart from `Storage` itself (`relay.storage.base`, which re-exports
them) so the interface reads as its methods; nothing here knows a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from relay.models import DeliveryStatus

__all__ = [
    "CreateOutcome",
    "DeliveryFilter",
    "DeliveryRecord",
    "EndpointStats",
    "EventFilter",
    "EventRecord",
    "EventSummary",
    "PortalSession",
    "PurgeResult",
    "QueueStats",
    "RetryOutcome",
    "StoredEndpoint",
    "StoredSource",
]

RetryOutcome = Literal["queued", "in_flight", "not_found"]
CreateOutcome = Literal["created", "exists", "limit"]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One stored delivery, as the admin API lists it (times are Unix seconds)."""

    id: int
    event_id: str
    event_type: str
    endpoint: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float | None
    created_at: float
    updated_at: float
    last_attempt_at: float | None
    last_status_code: int | None
    last_error: str | None
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """What `list_deliveries` returns: every field set narrows the list.

    `since`/`until` bound the creation time (inclusive); `before_id` is the
    keyset cursor: only deliveries with a smaller id, so a page never repeats
    or skips rows while new deliveries (always with larger ids) arrive.
    """

    endpoint: str | None = None
    status: DeliveryStatus | None = None
    event_type: str | None = None
    tenant: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event with its body exactly as the platform sent it."""

    id: str
    type: str
    body: bytes
    received_at: float
    delivery_count: int
    tenant: str | None = None
    source: str | None = None  # the `sources:` entry it came through; None: /v1/events


@dataclass(frozen=True, slots=True)
class EventSummary:
    """One event as the event list shows it: its size instead of its body.

    `position` is its place in the list, as its backend spells it (SQLite: the
    rowid; PostgreSQL: receipt time and id); `EventFilter.before` takes it back
    to page on from there. Callers pass it through and never read it.
    """

    id: str
    type: str
    received_at: float
    delivery_count: int
    tenant: str | None
    source: str | None
    size_bytes: int
    position: str


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What `list_events` returns: every field set narrows the list.

    `source` is a `sources:` entry's name; the empty string selects the events
    of /v1/events, stored without one. `since`/`until` bound the receipt time
    (inclusive). `before` is the keyset cursor, the `position` of the previous
    page's last event: only events listed after it, so a page never repeats one
    and never skips one stored before the first page was read.
    """

    tenant: str | None = None
    event_type: str | None = None
    source: str | None = None
    since: float | None = None
    until: float | None = None
    before: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """What the store knows about an endpoint at run time (relay.yaml holds the rest)."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)  # by delivery status
    paused: bool = False
    disabled_reason: str | None = None
    disabled_at: float | None = None
    failing_since: float | None = None
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    next_retry_at: float | None = None  # earliest scheduled retry
    last_error: str | None = None  # while failing: the error of its newest failing delivery
    deleted: bool = False  # an API endpoint that was deleted: only its log is left


@dataclass(frozen=True, slots=True)
class StoredEndpoint:
    """An endpoint made through the API, as the store keeps it.

    `spec` is a JSON object of the fields its creator gave (never a secret);
    `secrets` is the sealed list of its secrets (`relay.secrets_at_rest`),
    which the store cannot read.
    """

    name: str
    tenant: str | None
    spec: str = field(repr=False)
    secrets: str = field(repr=False)
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class PortalSession:
    """A tenant portal session the store vouches for: whose, and until when."""

    tenant: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class StoredSource:
    """A source made through the admin API: its fields as JSON (no secret), secrets sealed."""

    name: str
    spec: str = field(repr=False)
    secrets: str = field(repr=False)
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The unfinished work, for the metrics scrape."""

    depth: dict[tuple[str, str], int]  # (endpoint, status) -> deliveries, unfinished states
    oldest_waiting_at: dict[str, float]  # endpoint -> creation time of its oldest unfinished
    failing_since: dict[str, float]


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What one retention batch removed, and where the next batch starts."""

    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    last_id: int = 0  # the largest delivery id this batch looked at
    done: bool = True  # no delivery old enough is left after `last_id`
