"""The storage interface: everything ingest, delivery and operators need from a database.

Kept narrow on purpose: a backend (SQLite today, PostgreSQL for scale-out) is
a handful of queries, and the rest of the relay never sees a driver type or an
SQL string. Every method is atomic. Ingest and attempt results are durable when
their coroutine returns; that is the promise behind a 202.

The second half of the interface serves the admin API, the metrics and
retention. Its reads must stay cheap on a store of millions of deliveries:
each is answered from an index, lists page by the integer delivery id or an
event's position (keyset, never OFFSET), and purges work in bounded batches so
ingest never waits long. The records it takes and gives are in
`relay.storage.records`, re-exported here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from relay.models import (
    AttemptRecord,
    AttemptResult,
    ClaimedDelivery,
    DeliveryStatus,
    IngestOutcome,
    NewEvent,
)
from relay.storage.records import (
    CreateOutcome,
    DeliveryFilter,
    DeliveryRecord,
    EndpointStats,
    EventFilter,
    EventRecord,
    EventSummary,
    PortalSession,
    PurgeResult,
    QueueStats,
    RetryOutcome,
    StoredEndpoint,
    StoredSource,
)

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
    "Storage",
    "StoredEndpoint",
    "StoredSource",
]

class Storage(ABC):
    """A durable queue of events and their deliveries."""

    # True when the store itself refuses a claim past an endpoint's
    # max_in_flight, counting the leased deliveries of every relay that shares
    # it (PostgreSQL): a lane at its limit then has nothing to claim ahead.
    leases_count_as_in_flight = False

    @abstractmethod
    async def open(self) -> None:
        """Connect, apply migrations and take whatever lock the backend needs."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and disconnect."""

    def set_wakeup(self, callback: Callable[[Iterable[str]], None]) -> None:  # noqa: B027
        """Call `callback(endpoint_names)` when another process makes deliveries due.

        A backend that several relays share (PostgreSQL: LISTEN/NOTIFY) wakes
        this relay's lanes with it; a store only this process writes has
        nothing to report, hence the no-op default. Set before `open()`.
        """

    @abstractmethod
    async def ingest(self, events: Sequence[NewEvent]) -> list[IngestOutcome]:
        """Store events and their deliveries, all or nothing, durably.

        An event whose id is already stored is not stored again: its outcome is
        `duplicate` when the body is byte-identical, `conflict` otherwise. If any
        event of the call conflicts, nothing of the call is stored.
        Raises `StorageUnavailable` when the store cannot take writes.
        """

    @abstractmethod
    async def claim(
        self, endpoint: str, limit: int, now: float, lease_s: float, fifo: bool = False,
        *, max_in_flight: int | None = None, rate_per_s: float | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries of `endpoint`, oldest due first.

        With `fifo`, only the endpoint's oldest unfinished delivery can be claimed,
        and only when no delivery of the endpoint is in flight.

        `max_in_flight` and `rate_per_s` are the endpoint's limits. A backend that
        several relay processes share must enforce them across all of them (the
        lanes only see their own process); the single-process SQLite backend
        leaves them to the lane, which already enforces them exactly.
        """

    @abstractmethod
    async def next_due_at(self, endpoint: str, fifo: bool = False) -> float | None:
        """When the endpoint's next waiting delivery falls due; None if there is none."""

    @abstractmethod
    async def record(self, results: Sequence[AttemptResult]) -> dict[str, str]:
        """Store attempts and move their deliveries to the state each result names.

        Also keeps each endpoint's health (`failing_since`), and disables an
        endpoint whose result asks for it (410 Gone) or that has failed without
        a success for its `disable_after_s`, holding its waiting deliveries.
        Returns the endpoints this call disabled, with the reason.
        """

    @abstractmethod
    async def sync_endpoints(self, active: Sequence[str], now: float,
                             only: Sequence[str] | None = None) -> None:
        """Match the stored deliveries to the endpoints the config now has.

        Waiting deliveries of endpoints not in `active` (removed from relay.yaml
        or `enabled: false`) become `held`, never dropped; held deliveries of an
        active endpoint that is neither paused nor disabled are due again.
        With `only`, just those endpoints are looked at (one API endpoint changed).
        """

    @abstractmethod
    async def release(self, claims: Sequence[tuple[int, float]], now: float, *,
                      hold: bool = False) -> None:
        """Give back claims that were never attempted, so they are due again at once.

        Each claim is (delivery id, the `lease_until` it was claimed with): one
        whose lease ran out meanwhile, and that may have been claimed again, is
        left alone. With `hold` (the endpoint is paused, disabled or removed)
        they become held; otherwise as `queries.RELEASED_STATUS` says.
        """

    @abstractmethod
    async def recover_interrupted(self, now: float) -> int:
        """After an unclean stop, make every delivery left in flight due again.

        Only safe when this process is the store's only user; returns how many.
        """

    @abstractmethod
    async def reap_expired_leases(self, now: float) -> int:
        """Make deliveries whose lease ran out due again; returns how many."""

    @abstractmethod
    async def check_writable(self) -> None:
        """Raise `StorageUnavailable` if a write would fail now (for /readyz)."""

    @abstractmethod
    async def held_endpoints(self) -> dict[str, str]:
        """Endpoints that must not be sent to, and why (`paused` or the disable reason)."""

    # -- operations: admin API, metrics, retention ---------------------------------------

    @abstractmethod
    async def list_deliveries(self, where: DeliveryFilter, limit: int) -> list[DeliveryRecord]:
        """Up to `limit` deliveries matching `where`, newest (largest id) first."""

    @abstractmethod
    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        """One delivery, or None."""

    @abstractmethod
    async def list_attempts(self, delivery_id: int) -> list[AttemptRecord]:
        """Every attempt of a delivery, oldest first."""

    @abstractmethod
    async def get_event(self, event_id: str) -> EventRecord | None:
        """One event, or None (it may have been purged by retention)."""

    @abstractmethod
    async def list_events(self, where: EventFilter, limit: int) -> list[EventSummary]:
        """Up to `limit` events matching `where`, newest (last stored) first.

        A tenant's page is a range of an index of tenanted events, whatever the
        size of the table; type and source narrow the walk of that index (or of
        the table) row by row. Raises `ValueError` for a `before` this backend
        did not issue.
        """

    @abstractmethod
    async def event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        """The deliveries of one event, in creation order."""

    @abstractmethod
    async def endpoint_stats(self, name: str | None = None,
                             names: Sequence[str] | None = None) -> dict[str, EndpointStats]:
        """Counts by state and health of one endpoint, of `names`, or of every one it knows.

        Without `name` or `names`, endpoints that are no longer configured but
        still have deliveries or state are included, so an operator can see
        what they left; that counts every delivery, so pages ask for `names`.
        """

    @abstractmethod
    async def endpoint_states(self) -> dict[str, EndpointStats]:
        """Every endpoint with a stored state (paused, disabled, failing, deleted...),
        nothing counted.

        What an endpoint's status is made of, one row per endpoint: the endpoint
        list filters by status on these and counts only the page it shows
        (`endpoint_stats(names=...)`). `counts`, `next_retry_at` and
        `last_error` are left empty.
        """

    @abstractmethod
    async def delivery_endpoints(self) -> set[str]:
        """Every endpoint name that has deliveries, one index seek per name.

        With `endpoint_states`, every endpoint the store knows: the endpoint list
        shows those neither relay.yaml nor the API has any more (their log is left).
        """

    @abstractmethod
    async def pause_endpoint(self, name: str, now: float) -> int:
        """Persist the paused flag and hold the endpoint's waiting deliveries; returns how many."""

    @abstractmethod
    async def resume_endpoint(self, name: str, now: float) -> int:
        """Clear the paused flag and any automatic disable; release its held deliveries.

        A released delivery waits for the time it was due before it was held (at
        once for one never attempted), so the queue resumes in its old order.
        Returns how many were released.
        """

    @abstractmethod
    async def recover_failed(self, endpoint: str, since: float, now: float) -> int:
        """Make the endpoint's deliveries that failed at or after `since` due now."""

    @abstractmethod
    async def retry_delivery(
        self, delivery_id: int, now: float
    ) -> tuple[RetryOutcome, DeliveryStatus | None]:
        """Make one delivery due now, unless it is in flight; returns what it was."""

    @abstractmethod
    async def queue_stats(self, endpoints: Sequence[str]) -> QueueStats:
        """Unfinished deliveries by endpoint and state, for these endpoints and any with state."""

    @abstractmethod
    async def purge_finished(self, cutoff: float, after_id: int, limit: int) -> PurgeResult:
        """One retention batch: look at up to `limit` deliveries with an id above `after_id`.

        Of those, delivered and failed ones not touched since `cutoff` are deleted
        with their attempts, then their events if no delivery of them is left.
        Waiting, held and in-flight deliveries are never deleted.
        """

    @abstractmethod
    async def purge_unrouted_events(self, cutoff: float, limit: int) -> int:
        """Delete up to `limit` events received before `cutoff` that had no delivery."""

    def set_hold_listener(  # noqa: B027
        self, callback: Callable[[Sequence[str] | None], None]
    ) -> None:
        """Call `callback(names)` when another process paused, resumed or disabled endpoints.

        `callback(None)` means "re-read every hold": announcements may have been
        lost (PostgreSQL: the LISTEN connection was down). Each relay keeps
        its lanes' holds in memory, so without this a lane paused here would
        stay idle after another relay resumed the endpoint. A store only this
        process writes has nothing to announce. Set before `open()`.
        """

    # -- endpoints made through the API ----------------------------------------------------

    def set_endpoint_listener(self, callback: Callable[[str], None]) -> None:  # noqa: B027
        """Call `callback(name)` when another process created, changed or deleted an endpoint.

        A store several relays share announces each change (PostgreSQL:
        NOTIFY), so every replica applies it within a moment; a store only
        this process writes has nothing to announce. Set before `open()`.
        """

    @abstractmethod
    async def create_endpoint(self, row: StoredEndpoint,
                              per_tenant: int | None = None) -> CreateOutcome:
        """Store a new API endpoint: `created`, or `exists` (its name is taken), or `limit`.

        `limit` when `per_tenant` is set and the row's tenant already has that
        many. Atomic against concurrent creates of the same name or tenant. A
        name used by a deleted endpoint starts afresh: no state, no health.
        """

    @abstractmethod
    async def update_endpoint(self, row: StoredEndpoint) -> bool:
        """Replace an API endpoint's stored fields and secrets; False when it does not exist."""

    @abstractmethod
    async def delete_endpoint(self, name: str, now: float) -> int | None:
        """Delete an API endpoint and cancel its waiting deliveries; how many, or None if unknown.

        Deliveries of it in flight are left to finish: when they end, or are given
        back unattempted, they become `cancelled` too, never due again.
        """

    @abstractmethod
    async def api_endpoints(self) -> list[StoredEndpoint]:
        """Every API endpoint, by name."""

    @abstractmethod
    async def api_endpoint(self, name: str) -> StoredEndpoint | None:
        """One API endpoint, or None."""

    # -- the tenant portal's links and sessions -------------------------------------------

    @abstractmethod
    async def create_portal_link(self, link_hash: str, tenant: str, now: float,
                                 link_expires_at: float, session_s: float) -> None:
        """Store a sign-in link (by its token's hash) that opens a `session_s` long session.

        Also forgets links and sessions that ended or expired a day ago or more.
        """

    @abstractmethod
    async def open_portal_link(self, link_hash: str, session_hash: str,
                               now: float) -> PortalSession | None:
        """Use a link once: its session starts now under `session_hash`.

        None when the link is unknown, expired, ended or used already; atomic, so
        of two uses at once (on any replicas) exactly one gets the session.
        """

    @abstractmethod
    async def portal_session(self, session_hash: str, now: float) -> PortalSession | None:
        """The session a cookie's token hash names, if it has not ended or expired."""

    @abstractmethod
    async def end_portal_sessions(self, now: float, *, session_hash: str | None = None,
                                  tenant: str | None = None) -> int:
        """End one session (sign-out) or all of a tenant's, unused links included; how many."""

    # -- sources made through the API ------------------------------------------------------

    def set_source_listener(self, callback: Callable[[], None]) -> None:  # noqa: B027
        """Call `callback()` when another process made, replaced or deleted an API source.

        As `set_endpoint_listener`: PostgreSQL announces each change (NOTIFY),
        and a reconnected listener calls it too, since announcements were lost.
        Set before `open()`.
        """

    @abstractmethod
    async def save_source(self, row: StoredSource, create: bool) -> bool:
        """Store an API source: with `create`, False when the name is taken; without it,
        replace one, False when there is none of that name."""

    @abstractmethod
    async def delete_source(self, name: str) -> bool:
        """Delete an API source; False when there is none of that name."""

    @abstractmethod
    async def api_sources(self) -> list[StoredSource]:
        """Every API source, by name."""
