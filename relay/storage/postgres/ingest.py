"""PostgreSQL ingest rounds: one call of `relay_ingest` (0010), or the long way for known ids.

A round whose event ids are all new is one statement that is its own
transaction: one round trip, where the statements run one by one took seven
(each a send, a wake-up and a receive on both sides). A round that meets an
id already stored goes through `_apply_ingests` inside the store's
transaction, which reads the stored events first to answer duplicates and
conflicts. `PostgresStorage` supplies the connections and the locks.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

import asyncpg

from relay.exceptions import StorageError
from relay.models import DeliveryStatus, IngestOutcome, NewEvent
from relay.storage.postgres.batching import IngestJob
from relay.storage.queries import sort_out_job

__all__ = ["INGEST_NOTIFY_EVERY_S", "IngestMixin", "Raced"]

INGEST_NOTIFY_EVERY_S = 0.1
_ALREADY_STORED = "RL001"  # relay_ingest: an event id of the round exists (0010)


class Raced(Exception):
    """Another relay committed one of this round's event ids first: run the round again."""


def _event_columns(events: list[NewEvent]) -> list[list[Any]]:
    """The events' columns both paths send, one array each, in `relay_ingest`'s order.

    Tenant, source and trace context go as an empty array when no event has
    one (the usual round): `unnest` pads it with NULLs, and the relay does
    not encode a NULL per event.
    """
    optional = [[e.tenant for e in events], [e.source for e in events],
                [e.trace_context for e in events]]
    return [[e.id for e in events], [e.type for e in events], [e.body for e in events],
            [e.received_at for e in events],
            *[column if any(v is not None for v in column) else [] for column in optional]]


def _delivery_columns(events: list[NewEvent]) -> tuple[list[int], list[str]]:
    """Each delivery as (1-based position of its event in `events`, endpoint), in order."""
    positions: list[int] = []
    endpoints: list[str] = []
    for n, event in enumerate(events, 1):
        for name in event.endpoints:
            positions.append(n)
            endpoints.append(name)
    return positions, endpoints


class IngestMixin:
    """How the store's ingest rounds are written; the hooks are the store's."""

    schema: str
    channel: str
    _notified_at: dict[str, float]  # endpoint -> last ingest NOTIFY (monotonic)

    @property
    @abstractmethod
    def _id_lock_key(self) -> str:
        """The advisory lock that orders delivery ids (see `committed_delivery_ids`)."""

    @abstractmethod
    async def _call(self, sql: str, *args: Any) -> list[Any]:
        """One statement in its own transaction."""

    @abstractmethod
    async def _lock_endpoints(self, conn: asyncpg.Connection, names: Iterable[str], *,
                              exclusive: bool, allocating: bool = False) -> None:
        """Take the endpoints' state locks in this transaction."""

    @abstractmethod
    async def _notify(self, conn: asyncpg.Connection, endpoints: Iterable[str]) -> None:
        """Wake other relays' lanes for these endpoints at commit."""

    async def _ingest_in_one_call(
        self, jobs: list[IngestJob], notices: set[str]
    ) -> list[list[IngestOutcome]] | None:
        """The round as one call of `relay_ingest` (0010): one round trip, its own commit.

        Returns None, having stored nothing, when one of the round's event ids
        is already stored: the transaction in `_apply_ingests` then reads the
        stored events and answers duplicates and conflicts.
        """
        outcomes: list[list[IngestOutcome]] = []
        fresh: list[NewEvent] = []
        seen: dict[str, tuple[bytes, str, int]] = {}  # ids repeated within the round
        for job in jobs:
            job_outcomes, job_fresh = sort_out_job(job.events, seen)
            outcomes.append(job_outcomes)
            fresh.extend(job_fresh)
        if not fresh:
            return outcomes
        names = sorted({name for e in fresh for name in e.endpoints})
        keys = sorted(f"relay:endpoint:{self.schema}:{name}" for name in names)
        if keys:
            keys.append(self._id_lock_key)
        candidates = sorted(self._due_notices(set(names)))
        try:
            held = await self._call(
                "SELECT * FROM relay_ingest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                "$12, $13)",
                keys, names, self.channel, candidates, *_event_columns(fresh),
                *_delivery_columns(fresh),
            )
        except StorageError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == _ALREADY_STORED:
                return None
            raise
        notices.update(set(candidates) - {row[0] for row in held})
        return outcomes

    async def _apply_ingests(
        self, conn: asyncpg.Connection, jobs: list[IngestJob], notices: set[str]
    ) -> list[list[IngestOutcome]]:
        keyed = sorted({e.id for job in jobs for e in job.events if e.keyed})
        stored: dict[str, tuple[bytes, str, int]] = {}
        if keyed:
            rows = await conn.fetch(
                "SELECT id, body, type, delivery_count FROM events WHERE id = ANY($1::text[])",
                keyed)
            stored = {row[0]: (bytes(row[1]), row[2], row[3]) for row in rows}
        names = {name for job in jobs for e in job.events for name in e.endpoints}
        await self._lock_endpoints(conn, names, exclusive=False, allocating=True)
        # Only the round's endpoints, by primary key: one statement, however many
        # endpoints the relay has (10,000 tenants' endpoints cost a scan each round).
        states = await conn.fetch(
            "SELECT name, deleted FROM endpoint_state WHERE name = ANY($1::text[]) "
            "AND (paused = 1 OR disabled_reason IS NOT NULL OR deleted = 1)", sorted(names))
        held = {row[0] for row in states}
        deleted = {row[0] for row in states if row[1] == 1}
        new_events: list[NewEvent] = []
        outcomes: list[list[IngestOutcome]] = []
        for job in jobs:
            job_outcomes, fresh = sort_out_job(job.events, stored)
            outcomes.append(job_outcomes)
            new_events.extend(fresh)
        if not new_events:
            return outcomes
        rows = [(e, name) for e in new_events for name in e.endpoints]
        bounds: dict[str, tuple[int, int]] = {}  # event id -> its deliveries' id range
        if rows:
            created = await conn.fetch(
                "INSERT INTO deliveries (event_id, endpoint, event_type, status, "
                "next_attempt_at, created_at, updated_at, tenant) "
                "SELECT u.event_id, u.endpoint, u.event_type, u.status, u.at, u.at, u.at, "
                "u.tenant FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                "$5::float8[], $6::text[]) "
                "WITH ORDINALITY AS u(event_id, endpoint, event_type, status, at, tenant, n) "
                "ORDER BY u.n RETURNING id, event_id",
                [e.id for e, _ in rows], [name for _, name in rows], [e.type for e, _ in rows],
                [DeliveryStatus.CANCELLED.value if name in deleted
                 else DeliveryStatus.HELD.value if name in held
                 else DeliveryStatus.PENDING.value for _, name in rows],
                [e.received_at for e, _ in rows], [e.tenant for e, _ in rows],
            )
            for delivery_id, event_id in created:
                low, high = bounds.get(event_id, (delivery_id, delivery_id))
                bounds[event_id] = (min(low, delivery_id), max(high, delivery_id))
        by_id = sorted(new_events, key=lambda e: e.id)
        inserted = await conn.fetch(
            "INSERT INTO events (id, type, body, received_at, tenant, source, trace_context, "
            "delivery_count, first_delivery_id, last_delivery_id) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::float8[], "
            "$5::text[], $6::text[], $7::text[], $8::int4[], $9::int8[], $10::int8[]) "
            "ORDER BY 1 ON CONFLICT (id) DO NOTHING RETURNING id",
            *_event_columns(by_id), [len(e.endpoints) for e in by_id],
            [bounds.get(e.id, (0, 0))[0] for e in by_id],  # (0, 0): no delivery, empty range
            [bounds.get(e.id, (0, 0))[1] for e in by_id],
        )
        if len(inserted) != len(by_id):
            raise Raced  # the whole transaction, deliveries too, is rolled back
        if rows:
            notices.update(self._due_notices({name for _, name in rows if name not in held}))
            await self._notify(conn, notices)  # marked as sent once the round commits
        return outcomes

    def _due_notices(self, endpoints: set[str]) -> set[str]:
        """The endpoints worth a NOTIFY from this ingest: not notified in the last moment.

        This relay's own lanes are woken in-process; the others need one
        notice to start claiming, after which they keep claiming while work
        is due, so a notice per endpoint per `INGEST_NOTIFY_EVERY_S` suffices.
        """
        now = time.monotonic()
        return {name for name in endpoints
                if now - self._notified_at.get(name, -INGEST_NOTIFY_EVERY_S)
                >= INGEST_NOTIFY_EVERY_S}

