"""The operators' half of the SQLite storage: admin API, metrics and retention.

The same queries as the PostgreSQL backend, in SQLite's dialect and on its
lighter schema (`queries.py` has what replaces the indexes it does not keep).
Reads run on the relay's reader connection; the operator actions are writes
like any other, made by the writer process. Kept apart from the queue
(`store.py`), which ingest and delivery use.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import astuple
from typing import Any, ParamSpec, TypeVar

from relay.models import AttemptRecord, DeliveryStatus
from relay.storage.base import (
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
from relay.storage.portal_sql import SESSION
from relay.storage.queries import (
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
    event_record,
    event_summary,
)
from relay.storage.sqlite.endpoint_writes import ENDPOINT_COLUMNS, SOURCE_COLUMNS
from relay.storage.sqlite.ops import (
    CREATE_ENDPOINT,
    CREATE_PORTAL_LINK,
    DELETE_ENDPOINT,
    DELETE_SOURCE,
    END_PORTAL_SESSIONS,
    OPEN_PORTAL_LINK,
    PAUSE_ENDPOINT,
    PURGE_FINISHED,
    PURGE_UNROUTED_EVENTS,
    RECOVER_FAILED,
    RESUME_ENDPOINT,
    RETRY_DELIVERY,
    SAVE_SOURCE,
    UPDATE_ENDPOINT,
    Op,
)
from relay.storage.sqlite.queries import (
    AFTER,
    EVENT_ROWID_AT_TIME,
    FIFO_HEAD_ID,
    ID_AT_TIME,
    event_page_query,
)

__all__ = ["OperationsMixin"]

P = ParamSpec("P")
R = TypeVar("R")
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


class OperationsMixin:
    """Admin, metrics and retention queries; `SQLiteStorage` supplies the connections.

    The hooks below are what the queries need from the store; they are
    abstract so that a class mixing this in without providing them cannot be
    instantiated (`SQLiteStorage` derives from the `Storage` ABC).
    """

    @abstractmethod
    async def _query(self, sql: str, params: Any = ()) -> list[Any]:
        """Run a read on the reader connection and return its rows."""

    @abstractmethod
    def _write(self, op: Op[P, R], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[R]:
        """Queue one write for the writer process; the future has its answer."""

    async def list_deliveries(self, where: DeliveryFilter, limit: int) -> list[DeliveryRecord]:
        low_id = high_id = None
        # Time filters become exclusive id bounds (no index on created_at); the
        # exact times are still checked row by row.
        if where.since is not None:
            rows = await self._query(ID_AT_TIME, (where.since - COMMIT_SKEW_S,))
            low_id = rows[0][0] - 1
        if where.until is not None:
            rows = await self._query(ID_AT_TIME, (where.until + COMMIT_SKEW_S + AFTER,))
            high_id = rows[0][1]
        sql, params = delivery_page_query(where, limit, low_id, high_id)
        return [delivery_record(row) for row in await self._query(sql, params)]

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        rows = await self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?",  # noqa: S608
            (delivery_id,),
        )
        return delivery_record(rows[0]) if rows else None

    async def list_attempts(self, delivery_id: int) -> list[AttemptRecord]:
        rows = await self._query(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = ? "  # noqa: S608
            "ORDER BY id", (delivery_id,))
        return [attempt_record(row) for row in rows]

    async def get_event(self, event_id: str) -> EventRecord | None:
        rows = await self._query(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))  # noqa: S608
        return event_record(rows[0]) if rows else None

    async def list_events(self, where: EventFilter, limit: int) -> list[EventSummary]:
        low = high = None
        # As the delivery list's: time filters become exclusive rowid bounds.
        if where.since is not None:
            rows = await self._query(EVENT_ROWID_AT_TIME, (where.since - COMMIT_SKEW_S,))
            low = rows[0][0] - 1
        if where.until is not None:
            rows = await self._query(EVENT_ROWID_AT_TIME,
                                     (where.until + COMMIT_SKEW_S + AFTER,))
            high = rows[0][1]
        sql, params = event_page_query(where, limit, low, high)
        return [event_summary(row, str(row[7])) for row in await self._query(sql, params)]

    async def event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        where = event_deliveries_where("(SELECT first_delivery_id FROM events WHERE id = ?1)",
                                       "(SELECT last_delivery_id FROM events WHERE id = ?1)",
                                       "?1")
        rows = await self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {where} ORDER BY id",  # noqa: S608
            (event_id,),
        )
        return [delivery_record(row) for row in rows]

    async def _fetch_list(self, sql: str, params: list[Any]) -> list[Any]:
        """`_query` as the shared queries call it (`queries.Fetch`)."""
        return await self._query(sql, params)

    async def endpoint_stats(self, name: str | None = None,
                             names: Sequence[str] | None = None) -> dict[str, EndpointStats]:
        return await endpoint_stats(self._fetch_list, name, names)

    async def endpoint_states(self) -> dict[str, EndpointStats]:
        return await endpoint_states(self._fetch_list)

    async def delivery_endpoints(self) -> set[str]:
        return await delivery_endpoints(self._fetch_list)

    async def pause_endpoint(self, name: str, now: float) -> int:
        return await self._write(PAUSE_ENDPOINT, name, now)

    async def resume_endpoint(self, name: str, now: float) -> int:
        return await self._write(RESUME_ENDPOINT, name, now)

    async def recover_failed(self, endpoint: str, since: float, now: float) -> int:
        return await self._write(RECOVER_FAILED, endpoint, since, now)

    async def retry_delivery(
        self, delivery_id: int, now: float
    ) -> tuple[RetryOutcome, DeliveryStatus | None]:
        return await self._write(RETRY_DELIVERY, delivery_id, now)

    async def queue_stats(self, endpoints: Sequence[str]) -> QueueStats:
        failing_rows = await self._query(
            "SELECT name, failing_since FROM endpoint_state WHERE name != ?", (READYZ_ROW,)
        )
        names = sorted(set(endpoints) | {row[0] for row in failing_rows})
        depth: dict[tuple[str, str], int] = {}
        oldest: dict[str, float] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start:start + _CHUNK]
            rows = await self._query(
                "SELECT endpoint, status, count(*) FROM deliveries WHERE endpoint IN "  # noqa: S608
                f"({','.join('?' * len(chunk))}) AND status IN ('pending', 'scheduled', "
                "'delivering', 'held') GROUP BY endpoint, status",
                chunk,
            )
            for endpoint, status, count in rows:
                depth[(endpoint, status)] = count
        for name in names:
            if not any(depth.get((name, s)) for s in ("pending", "scheduled", "delivering")):
                continue
            rows = await self._query(
                f"SELECT created_at FROM deliveries WHERE id = {FIFO_HEAD_ID}",  # noqa: S608
                (name,),
            )
            if rows:
                oldest[name] = rows[0][0]
        return QueueStats(
            depth={(n, s): depth.get((n, s), 0) for n in names for s in QUEUED_STATUSES},
            oldest_waiting_at=oldest,
            failing_since={row[0]: row[1] for row in failing_rows if row[1] is not None},
        )

    async def purge_finished(self, cutoff: float, after_id: int, limit: int) -> PurgeResult:
        return await self._write(PURGE_FINISHED, cutoff, after_id, limit)

    async def purge_unrouted_events(self, cutoff: float, limit: int) -> int:
        return await self._write(PURGE_UNROUTED_EVENTS, cutoff, limit)

    # -- endpoints made through the API

    async def create_endpoint(self, row: StoredEndpoint,
                              per_tenant: int | None = None) -> CreateOutcome:
        return await self._write(CREATE_ENDPOINT, astuple(row), per_tenant)

    async def update_endpoint(self, row: StoredEndpoint) -> bool:
        return await self._write(UPDATE_ENDPOINT, astuple(row))

    async def delete_endpoint(self, name: str, now: float) -> int | None:
        return await self._write(DELETE_ENDPOINT, name, now)

    async def api_endpoints(self) -> list[StoredEndpoint]:
        rows = await self._query(
            f"SELECT {ENDPOINT_COLUMNS} FROM api_endpoints ORDER BY name")  # noqa: S608
        return [StoredEndpoint(*row) for row in rows]

    async def api_endpoint(self, name: str) -> StoredEndpoint | None:
        rows = await self._query(
            f"SELECT {ENDPOINT_COLUMNS} FROM api_endpoints WHERE name = ?",  # noqa: S608
            (name,))
        return StoredEndpoint(*rows[0]) if rows else None

    # -- the tenant portal ---------------------------------------------------------------

    async def create_portal_link(self, link_hash: str, tenant: str, now: float,
                                 link_expires_at: float, session_s: float) -> None:
        await self._write(CREATE_PORTAL_LINK, link_hash, tenant, now, link_expires_at,
                          session_s)

    async def open_portal_link(self, link_hash: str, session_hash: str,
                               now: float) -> PortalSession | None:
        opened = await self._write(OPEN_PORTAL_LINK, link_hash, session_hash, now)
        return PortalSession(*opened) if opened else None

    async def portal_session(self, session_hash: str, now: float) -> PortalSession | None:
        rows = await self._query(SESSION, (session_hash, now))
        return PortalSession(str(rows[0][0]), float(rows[0][1])) if rows else None

    async def end_portal_sessions(self, now: float, *, session_hash: str | None = None,
                                  tenant: str | None = None) -> int:
        return await self._write(END_PORTAL_SESSIONS, now, session_hash, tenant)

    # -- sources made through the API

    async def save_source(self, row: StoredSource, create: bool) -> bool:
        return await self._write(SAVE_SOURCE, astuple(row), create)

    async def delete_source(self, name: str) -> bool:
        return await self._write(DELETE_SOURCE, name)

    async def api_sources(self) -> list[StoredSource]:
        rows = await self._query(
            f"SELECT {SOURCE_COLUMNS} FROM api_sources ORDER BY name")  # noqa: S608
        return [StoredSource(*row) for row in rows]
