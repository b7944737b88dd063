"""The tenant portal's links and sessions on PostgreSQL, shared by every replica.

A link used on one replica is used for all: the UPDATE that takes it waits
for any other transaction holding its row, then finds it taken. Sessions are
read from the table on each request, so a sign-out or a revocation made on
one replica ends the session on all of them at once.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from relay.storage.base import PortalSession
from relay.storage.portal_sql import (
    CREATE_LINK,
    END_SESSION,
    END_TENANT,
    FORGET_AFTER_S,
    FORGET_OLD,
    OPEN_LINK,
    SESSION,
    numbered,
)

__all__ = ["PortalMixin"]

T = TypeVar("T")


class PortalMixin:
    """The portal methods of `PostgresStorage`, which supplies the hooks."""

    @abstractmethod
    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        """Run a read on the pool and return its rows."""

    @abstractmethod
    async def _write(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], *,
                     durable: bool = True) -> T:
        """Run `fn` in a write transaction."""

    async def create_portal_link(self, link_hash: str, tenant: str, now: float,
                                 link_expires_at: float, session_s: float) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            await conn.execute(numbered(FORGET_OLD), now - FORGET_AFTER_S)
            await conn.execute(numbered(CREATE_LINK), link_hash, tenant, now, link_expires_at,
                               session_s)

        await self._write(run)

    async def open_portal_link(self, link_hash: str, session_hash: str,
                               now: float) -> PortalSession | None:
        async def run(conn: asyncpg.Connection) -> PortalSession | None:
            row = await conn.fetchrow(numbered(OPEN_LINK), session_hash, now, link_hash, now)
            return PortalSession(row[0], row[1]) if row else None

        return await self._write(run)

    async def portal_session(self, session_hash: str, now: float) -> PortalSession | None:
        rows = await self._fetch(numbered(SESSION), session_hash, now)
        return PortalSession(rows[0][0], rows[0][1]) if rows else None

    async def end_portal_sessions(self, now: float, *, session_hash: str | None = None,
                                  tenant: str | None = None) -> int:
        async def run(conn: asyncpg.Connection) -> int:
            if session_hash is not None:
                status = await conn.execute(numbered(END_SESSION), now, session_hash)
            else:
                status = await conn.execute(numbered(END_TENANT), now, tenant)
            return int(status.rsplit(" ", 1)[1])  # "UPDATE 3"

        return await self._write(run)
