"""The operators' half of the PostgreSQL storage: admin API, metrics and retention.

The same queries as the SQLite backend, in PostgreSQL's dialect, each served
by an index of `0001_initial.sql`. Kept apart from the queue (`store.py`)
because nothing here takes part in sharing work between relays, except that
writes which make many deliveries due again (resume, recover) NOTIFY the
other relays so their lanes do not wait for their next poll.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import asyncpg

from relay.models import FINAL_STATUSES, FINISHED_SQL, AttemptRecord, DeliveryStatus
from relay.storage.base import (
    DeliveryFilter,
    DeliveryRecord,
    EndpointStats,
    EventFilter,
    EventRecord,
    EventSummary,
    PurgeResult,
    QueueStats,
    RetryOutcome,
)
from relay.storage.postgres.listener import HOLD_CHANGED
from relay.storage.queries import (
    AFTER,
    ATTEMPT_COLUMNS,
    COMMIT_SKEW_S,
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    QUEUED_STATUSES,
    READYZ_ROW,
    attempt_record,
    delivery_endpoints,
    delivery_page_query,
    delivery_record,
    endpoint_states,
    endpoint_stats,
    event_deliveries_where,
    event_filter_terms,
    event_record,
    event_summary,
    event_summary_columns,
    fifo_head_id,
    id_at_time,
)

__all__ = ["OperationsMixin", "event_page_sql"]

_ID_AT_TIME = id_at_time("$1::float8")

T = TypeVar("T")


class OperationsMixin:
    """Admin, metrics and retention queries; `PostgresStorage` supplies the connections.

    The hooks below are what the queries need from the store; they are
    abstract so that a class mixing this in without providing them cannot be
    instantiated (`PostgresStorage` derives from the `Storage` ABC).
    """

    schema: str  # the relay's tables' schema, set by `open()`

    @abstractmethod
    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        """Run a read on the pool and return its rows."""

    @abstractmethod
    async def _write(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], *,
                     durable: bool = True) -> T:
        """Run `fn` in a write transaction (batched with others when `durable` is False)."""

    @abstractmethod
    async def _notify(self, conn: asyncpg.Connection, endpoints: Iterable[str]) -> None:
        """Wake the lanes of other relays for these endpoints when the transaction commits."""

    @staticmethod
    @abstractmethod
    async def _held_names(conn: asyncpg.Connection) -> set[str]:
        """Endpoints that are paused or disabled."""

    @abstractmethod
    async def _lock_endpoints(self, conn: asyncpg.Connection, names: Iterable[str], *,
                              exclusive: bool) -> None:
        """Take the endpoints' advisory locks for this transaction (see store.py)."""

    # -- reads ---------------------------------------------------------------------------

    @property
    def _id_lock_key(self) -> str:
        return f"relay:delivery-ids:{self.schema}"

    async def committed_delivery_ids(self) -> int:
        """The largest delivery id up to which every delivery is committed, or never will be.

        Ids come from a sequence and several transactions (on several relays)
        insert at once, so a delivery can become visible after one with a
        larger id; a page cut at the largest visible id could skip it for
        good. Every transaction that inserts deliveries holds this lock
        shared until it commits; taking it exclusive waits for those in
        progress (a group-commit round, milliseconds), and any id allocated
        later is larger than the sequence's value read here.
        """
        async def run(conn: asyncpg.Connection) -> int:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._id_lock_key)
            last = await conn.fetchval(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence('deliveries', 'id'))")
            return int(last or 0)

        return await self._write(run, durable=False)

    async def list_deliveries(self, where: DeliveryFilter, limit: int) -> list[DeliveryRecord]:
        low_id = high_id = None
        if where.before_id is None:
            # A first page: only what no transaction still in progress can add to.
            high_id = await self.committed_delivery_ids() + 1
        # Time filters become exclusive id bounds (no index on created_at); the
        # exact times are still checked row by row.
        if where.since is not None:
            rows = await self._fetch(_ID_AT_TIME, where.since - COMMIT_SKEW_S)
            low_id = rows[0][0] - 1
        if where.until is not None:
            rows = await self._fetch(_ID_AT_TIME, where.until + COMMIT_SKEW_S + AFTER)
            high_id = rows[0][1] if high_id is None else min(rows[0][1], high_id)
        sql, params = delivery_page_query(where, limit, low_id, high_id,
                                          placeholder=lambda n: f"${n}")
        return [delivery_record(row) for row in await self._fetch(sql, *params)]

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        rows = await self._fetch(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1",  # noqa: S608
            delivery_id)
        return delivery_record(rows[0]) if rows else None

    async def list_attempts(self, delivery_id: int) -> list[AttemptRecord]:
        rows = await self._fetch(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = $1 "  # noqa: S608
            "ORDER BY id", delivery_id)
        return [attempt_record(row) for row in rows]

    async def get_event(self, event_id: str) -> EventRecord | None:
        rows = await self._fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id = $1", event_id)  # noqa: S608
        return event_record(rows[0]) if rows else None

    async def list_events(self, where: EventFilter, limit: int) -> list[EventSummary]:
        sql, params = event_page_sql(where, limit)
        return [event_summary(row, f"{row[2]!r}:{row[0]}")
                for row in await self._fetch(sql, *params)]

    async def event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        where = event_deliveries_where("(SELECT first_delivery_id FROM events WHERE id = $1)",
                                       "(SELECT last_delivery_id FROM events WHERE id = $1)",
                                       "$1")
        rows = await self._fetch(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {where} ORDER BY id",  # noqa: S608
            event_id)
        return [delivery_record(row) for row in rows]

    async def _question_marks(self, sql: str, params: list[Any]) -> list[Any]:
        """Run SQL written with `?` (the queries both backends share, `queries.Fetch`)."""
        numbered = iter(range(1, len(params) + 1))
        return await self._fetch(re.sub(r"\?", lambda _: f"${next(numbered)}", sql), *params)

    async def endpoint_stats(self, name: str | None = None,
                             names: Sequence[str] | None = None) -> dict[str, EndpointStats]:
        return await endpoint_stats(self._question_marks, name, names)

    async def endpoint_states(self) -> dict[str, EndpointStats]:
        return await endpoint_states(self._question_marks)

    async def delivery_endpoints(self) -> set[str]:
        return await delivery_endpoints(self._question_marks)

    async def queue_stats(self, endpoints: Sequence[str]) -> QueueStats:
        failing_rows = await self._fetch(
            "SELECT name, failing_since FROM endpoint_state WHERE name <> $1", READYZ_ROW)
        names = sorted(set(endpoints) | {row[0] for row in failing_rows})
        depth: dict[tuple[str, str], int] = {}
        rows = await self._fetch(
            "SELECT endpoint, status, count(*) FROM deliveries WHERE endpoint = ANY($1::text[]) "
            "AND status IN ('pending', 'scheduled', 'delivering', 'held') "
            "GROUP BY endpoint, status", names)
        for endpoint, status, count in rows:
            depth[(endpoint, status)] = int(count)
        oldest: dict[str, float] = {}
        for name in names:
            if not any(depth.get((name, s)) for s in ("pending", "scheduled", "delivering")):
                continue
            first = await self._fetch(
                "SELECT created_at FROM deliveries "  # noqa: S608
                f"WHERE id = {fifo_head_id('$1')}", name)
            if first:
                oldest[name] = first[0][0]
        return QueueStats(
            depth={(n, s): depth.get((n, s), 0) for n in names for s in QUEUED_STATUSES},
            oldest_waiting_at=oldest,
            failing_since={row[0]: row[1] for row in failing_rows if row[1] is not None},
        )

    # -- operator writes -----------------------------------------------------------------

    async def pause_endpoint(self, name: str, now: float) -> int:
        async def run(conn: asyncpg.Connection) -> int:
            # Waits for ingests and attempts being written to the endpoint, so
            # the UPDATE below holds every delivery they leave waiting.
            await self._lock_endpoints(conn, [name], exclusive=True)
            await conn.execute(
                "INSERT INTO endpoint_state (name, paused) VALUES ($1, 1) "
                "ON CONFLICT (name) DO UPDATE SET paused = 1", name)
            status = await conn.execute(
                "UPDATE deliveries SET status = 'held', updated_at = $1 "
                "WHERE endpoint = $2 AND status IN ('pending', 'scheduled')", now, name)
            await self._notify(conn, [HOLD_CHANGED + name])  # every relay's lane holds
            return _rowcount(status)

        return await self._write(run)

    async def resume_endpoint(self, name: str, now: float) -> int:
        async def run(conn: asyncpg.Connection) -> int:
            # A disable is lifted too, and with it the failing streak that caused it,
            # so `disable_after` counts afresh from the next failure.
            await conn.execute(
                "UPDATE endpoint_state SET paused = 0, disabled_reason = NULL, "
                "disabled_at = NULL, failing_since = CASE WHEN disabled_reason IS NULL "
                "THEN failing_since END WHERE name = $1", name)
            status = await conn.execute(
                "UPDATE deliveries SET status = CASE WHEN attempts > 0 THEN 'scheduled' "
                "ELSE 'pending' END, next_attempt_at = COALESCE(next_attempt_at, $1), "
                "updated_at = $1 WHERE endpoint = $2 AND status = 'held'", now, name)
            await self._notify(conn, [name, HOLD_CHANGED + name])
            return _rowcount(status)

        return await self._write(run)

    async def recover_failed(self, endpoint: str, since: float, now: float) -> int:
        async def run(conn: asyncpg.Connection) -> int:
            held = endpoint in await self._held_names(conn)
            status = await conn.execute(
                "UPDATE deliveries SET status = $1, next_attempt_at = $2, updated_at = $2 "
                "WHERE endpoint = $3 AND status = 'failed' AND updated_at >= $4",
                "held" if held else "scheduled", now, endpoint, since)
            if not held:
                await self._notify(conn, [endpoint])
            return _rowcount(status)

        return await self._write(run)

    async def retry_delivery(
        self, delivery_id: int, now: float
    ) -> tuple[RetryOutcome, DeliveryStatus | None]:
        async def run(conn: asyncpg.Connection) -> tuple[RetryOutcome, DeliveryStatus | None]:
            row = await conn.fetchrow(
                "SELECT status, endpoint, attempts FROM deliveries WHERE id = $1 FOR UPDATE",
                delivery_id)
            if row is None:
                return "not_found", None
            status, endpoint, attempts = DeliveryStatus(row[0]), row[1], row[2]
            if status == DeliveryStatus.DELIVERING:
                return "in_flight", status
            if endpoint in await self._held_names(conn):
                new_status = DeliveryStatus.HELD
            else:
                # No NOTIFY for one delivery: the relay that took the request wakes
                # its own lane, after it has answered with the new state.
                new_status = DeliveryStatus.SCHEDULED if attempts else DeliveryStatus.PENDING
            await conn.execute(
                "UPDATE deliveries SET status = $1, next_attempt_at = $2, updated_at = $2 "
                "WHERE id = $3", new_status.value, now, delivery_id)
            return "queued", status

        return await self._write(run)

    # -- retention -----------------------------------------------------------------------

    async def purge_finished(self, cutoff: float, after_id: int, limit: int) -> PurgeResult:
        async def run(conn: asyncpg.Connection) -> PurgeResult:
            # Deliveries created after cutoff + skew were committed after every one
            # created before cutoff: the walk can stop below the first of them.
            bounds = await conn.fetchrow(_ID_AT_TIME, cutoff + COMMIT_SKEW_S + AFTER)
            rows = await conn.fetch(
                "SELECT id, event_id, status, updated_at FROM deliveries "
                "WHERE id > $1 AND id < $2 ORDER BY id LIMIT $3", after_id, bounds[1], limit)
            if not rows:
                return PurgeResult(last_id=after_id, done=True)
            doomed = [(row[0], row[1]) for row in rows
                      if row[2] in FINAL_STATUSES and row[3] < cutoff]
            attempts = events = deleted = 0
            if doomed:
                # Re-checked: another relay may have requeued one since the read above.
                gone = await conn.fetch(
                    "DELETE FROM deliveries WHERE id = ANY($1::int8[]) "  # noqa: S608
                    f"AND status IN {FINISHED_SQL} RETURNING id",
                    [d for d, _ in doomed])
                deleted = len(gone)
                attempts = _rowcount(await conn.execute(
                    "DELETE FROM attempts WHERE delivery_id = ANY($1::int8[])",
                    [row[0] for row in gone]))
                alive = event_deliveries_where("events.first_delivery_id",
                                               "events.last_delivery_id", "events.id", table="d")
                events = _rowcount(await conn.execute(
                    "DELETE FROM events WHERE id = ANY($1::text[]) AND NOT EXISTS "  # noqa: S608
                    f"(SELECT 1 FROM deliveries d WHERE {alive})",
                    sorted({e for _, e in doomed})))
            return PurgeResult(deliveries=deleted, attempts=attempts, events=events,
                               last_id=rows[-1][0], done=len(rows) < limit)

        return await self._write(run)

    async def purge_unrouted_events(self, cutoff: float, limit: int) -> int:
        async def run(conn: asyncpg.Connection) -> int:
            return _rowcount(await conn.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events "
                "WHERE delivery_count = 0 AND received_at < $1 ORDER BY received_at LIMIT $2)",
                cutoff, limit))

        return await self._write(run)


def event_page_sql(where: EventFilter, limit: int) -> tuple[str, list[Any]]:
    """One page of the event list, newest first by (received_at, id) (pure, to EXPLAIN).

    The events have no insertion order here. The cursor's time is also a plain
    bound, which an index on received_at (events_received_at, or events_tenant
    after the tenant, 0007) starts its backward walk from; the row comparison
    breaks ties. `where.before` must be a position `list_events` gave: anything
    else raises `ValueError`.
    """
    terms, params = event_filter_terms(where, placeholder=lambda n: f"${n}")
    if where.before is not None:
        params += list(_event_position(where.before))
        a, b = len(params) - 1, len(params)
        terms.append(f"received_at <= ${a} AND (received_at, id) < (${a}, ${b})")
    sql = f"SELECT {event_summary_columns('octet_length')} FROM events"  # noqa: S608
    if terms:
        sql += " WHERE " + " AND ".join(terms)
    params.append(limit)
    return sql + f" ORDER BY received_at DESC, id DESC LIMIT ${len(params)}", params


_POSITION = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?):(.+)", re.DOTALL)


def _event_position(position: str) -> tuple[float, str]:
    """(received_at, id) from a position `list_events` gave; `ValueError` for any other."""
    match = _POSITION.fullmatch(position)
    if match is None:
        raise ValueError(f"not a PostgreSQL event position: {position!r}")
    return float(match.group(1)), match.group(2)


def _rowcount(status: str) -> int:
    """The row count of a command tag such as `UPDATE 3` or `DELETE 0`."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
