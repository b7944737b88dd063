"""API endpoints (and API sources) on PostgreSQL: stored once, announced to every replica.

Each write NOTIFYs `@name` on the relays' channel (`listener.py`) as it
commits, so the other replicas load that one row and apply it within a
moment. A delete takes the endpoint's lock exclusively, as a pause does, so
every ingest round that was queueing deliveries for it commits first and its
deliveries are cancelled too, and later rounds see it deleted.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import astuple
from typing import Any, TypeVar

import asyncpg

from relay.storage.base import CreateOutcome, StoredEndpoint, StoredSource
from relay.storage.postgres.listener import ENDPOINT_CHANGED, SOURCE_CHANGED

__all__ = ["EndpointsMixin"]

T = TypeVar("T")
_COLUMNS = "name, tenant, spec, secrets, created_at, updated_at"
_SOURCE_COLUMNS = "name, spec, secrets, created_at, updated_at"


class EndpointsMixin:
    """The endpoint methods of `PostgresStorage`, which supplies the hooks."""

    @abstractmethod
    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        """Run a read on the pool and return its rows."""

    @abstractmethod
    async def _write(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], *,
                     durable: bool = True) -> T:
        """Run `fn` in a write transaction."""

    @abstractmethod
    async def _notify(self, conn: asyncpg.Connection, endpoints: Iterable[str]) -> None:
        """NOTIFY these names on the relays' channel when the transaction commits."""

    @abstractmethod
    async def _lock_endpoints(self, conn: asyncpg.Connection, names: Iterable[str], *,
                              exclusive: bool) -> None:
        """Take the endpoints' state locks."""

    schema: str
    _sources_changed: Callable[[], None] | None = None

    def set_source_listener(self, callback: Callable[[], None]) -> None:
        self._sources_changed = callback

    def _sources_heard(self, names: Iterable[str] | None) -> list[str]:
        """A notification's names without its `^name`s, which have the API's sources read
        again (once); None, after a reconnection: read them again anyway."""
        given = None if names is None else list(names)
        rest = [n for n in given or () if not n.startswith(SOURCE_CHANGED)]
        if (given is None or len(rest) != len(given)) and self._sources_changed is not None:
            self._sources_changed()
        return rest

    async def create_endpoint(self, row: StoredEndpoint,
                              per_tenant: int | None = None) -> CreateOutcome:
        async def run(conn: asyncpg.Connection) -> CreateOutcome:
            if per_tenant is not None and row.tenant is not None:
                # One tenant's creates queue here, so two cannot both pass the count.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                                   f"relay:tenant:{self.schema}:{row.tenant}")
                count = await conn.fetchval(
                    "SELECT count(*) FROM api_endpoints WHERE tenant = $1", row.tenant)
                if count >= per_tenant:
                    return "limit"
            created = await conn.fetchval(
                f"INSERT INTO api_endpoints ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) "  # noqa: S608
                "ON CONFLICT (name) DO NOTHING RETURNING name", *astuple(row))
            if created is None:
                return "exists"
            await conn.execute("DELETE FROM endpoint_state WHERE name = $1", row.name)
            await self._notify(conn, [ENDPOINT_CHANGED + row.name])
            return "created"

        return await self._write(run)

    async def update_endpoint(self, row: StoredEndpoint) -> bool:
        async def run(conn: asyncpg.Connection) -> bool:
            updated = await conn.fetchval(
                "UPDATE api_endpoints SET tenant = $2, spec = $3, secrets = $4, "
                "updated_at = $5 WHERE name = $1 RETURNING name",
                row.name, row.tenant, row.spec, row.secrets, row.updated_at)
            if updated is None:
                return False
            await self._notify(conn, [ENDPOINT_CHANGED + row.name])
            return True

        return await self._write(run)

    async def delete_endpoint(self, name: str, now: float) -> int | None:
        async def run(conn: asyncpg.Connection) -> int | None:
            await self._lock_endpoints(conn, [name], exclusive=True)
            gone = await conn.fetchval(
                "DELETE FROM api_endpoints WHERE name = $1 RETURNING name", name)
            if gone is None:
                return None
            await conn.execute(
                "INSERT INTO endpoint_state (name, deleted) VALUES ($1, 1) "
                "ON CONFLICT (name) DO UPDATE SET deleted = 1, paused = 0, "
                "disabled_reason = NULL", name)
            rows = await conn.fetch(
                "UPDATE deliveries SET status = 'cancelled', updated_at = $1 "
                "WHERE endpoint = $2 AND status IN ('pending', 'scheduled', 'held') "
                "RETURNING id", now, name)
            await self._notify(conn, [ENDPOINT_CHANGED + name])
            return len(rows)

        return await self._write(run)

    async def api_endpoints(self) -> list[StoredEndpoint]:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM api_endpoints ORDER BY name")  # noqa: S608
        return [StoredEndpoint(*row) for row in rows]

    async def api_endpoint(self, name: str) -> StoredEndpoint | None:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM api_endpoints WHERE name = $1", name)  # noqa: S608
        return StoredEndpoint(*rows[0]) if rows else None

    async def save_source(self, row: StoredSource, create: bool) -> bool:
        async def run(conn: asyncpg.Connection) -> bool:
            if create:
                saved = await conn.fetchval(
                    f"INSERT INTO api_sources ({_SOURCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5) "  # noqa: S608
                    "ON CONFLICT (name) DO NOTHING RETURNING name", *astuple(row))
            else:
                saved = await conn.fetchval(
                    "UPDATE api_sources SET spec = $2, secrets = $3, updated_at = $4 "
                    "WHERE name = $1 RETURNING name",
                    row.name, row.spec, row.secrets, row.updated_at)
            if saved is not None:
                await self._notify(conn, [SOURCE_CHANGED + row.name])
            return saved is not None

        return await self._write(run)

    async def delete_source(self, name: str) -> bool:
        async def run(conn: asyncpg.Connection) -> bool:
            gone = await conn.fetchval("DELETE FROM api_sources WHERE name = $1 RETURNING name",
                                       name)
            if gone is not None:
                await self._notify(conn, [SOURCE_CHANGED + name])
            return gone is not None

        return await self._write(run)

    async def api_sources(self) -> list[StoredSource]:
        rows = await self._fetch(f"SELECT {_SOURCE_COLUMNS} FROM api_sources ORDER BY name")  # noqa: S608
        return [StoredSource(*row) for row in rows]
