"""A synchronous PostgreSQL client for tests: schemas per test, and reads like `db_rows`.

Tests are plain synchronous functions, so one background thread runs an event
loop with one asyncpg connection, and every call hops onto it. Each relay a
test starts gets its own schema (selected with `?search_path=` in the storage
URL), so tests are isolated from each other and from parallel runs; schemas
are dropped when the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import threading
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from relay.storage.postgres import PostgresStorage

__all__ = ["PG_URL", "PgClient", "client", "require_postgres", "schema_for", "schema_url"]

PG_URL = os.environ.get("RELAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")
_PARAM = re.compile(r"\?")


class PgClient:
    """One connection on a private event loop thread; safe to call from any thread."""

    def __init__(self, url: str = PG_URL) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="pg-test-client")
        self._thread.start()
        self._lock = threading.Lock()
        self._conn: asyncpg.Connection | None = None
        self.schemas: set[str] = set()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        with self._lock:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.url, timeout=3)
        return self._conn

    def ping(self) -> None:
        async def run() -> None:
            await (await self._connection()).execute("SELECT 1")

        self._run(run(), timeout=10)

    def fetch(self, sql: str, params: tuple[Any, ...] = (), schema: str | None = None
              ) -> list[tuple[Any, ...]]:
        """Run one statement (SQLite-style `?` placeholders are accepted) and return rows."""
        count = iter(range(1, 1000))
        sql = _PARAM.sub(lambda _m: f"${next(count)}", sql)

        async def once() -> list[tuple[Any, ...]]:
            conn = await self._connection()
            if schema is None:  # also for what cannot run in a transaction (CREATE DATABASE)
                return [tuple(row) for row in await conn.fetch(sql, *params)]
            async with conn.transaction():
                await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                return [tuple(row) for row in await conn.fetch(sql, *params)]

        async def run() -> list[tuple[Any, ...]]:
            try:
                return await once()
            except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError,
                    asyncpg.AdminShutdownError, ConnectionError):
                self._conn = None  # the server restarted (tests/postgres/test_restart.py)
                return await once()

        return self._run(run())

    def create_schema(self, schema: str) -> None:
        if schema not in self.schemas:
            self.fetch(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            self.schemas.add(schema)

    def drop_schema(self, schema: str) -> None:
        self.fetch(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.schemas.discard(schema)

    def close(self) -> None:
        for schema in sorted(self.schemas):
            self.drop_schema(schema)
        if self._conn is not None:
            self._run(self._conn.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


_client: PgClient | None = None
_unreachable: str | None = None


def client() -> PgClient:
    """The session's client, connecting on first use; skips (fails on CI) without a server."""
    global _client, _unreachable
    if _client is None and _unreachable is None:
        candidate = PgClient()
        try:
            candidate.ping()
            _client = candidate
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            candidate.close()
            _unreachable = f"PostgreSQL is not reachable at {PG_URL}: {exc}"
    if _client is None:
        require_postgres()
    assert _client is not None
    return _client


def require_postgres() -> None:
    """Skip the test when PostgreSQL is down; on CI (CI=true) fail it instead."""
    if _unreachable is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{_unreachable} (CI=true: PostgreSQL tests must not be skipped)")
    pytest.skip(_unreachable)


def close_client() -> None:
    """Drop every schema this session made and disconnect (end of session)."""
    global _client
    if _client is not None:
        _client.close()
        _client = None


def schema_for(key: str | Path) -> str:
    """A stable schema name for a test's database path (or any key)."""
    return "rt_" + hashlib.sha1(str(key).encode()).hexdigest()[:24]


def schema_url(schema: str, **options: str) -> str:
    """A storage URL for `schema`, created if needed; extra options go in the query."""
    client().create_schema(schema)
    query = "&".join([f"search_path={schema}", *(f"{k}={v}" for k, v in options.items())])
    return f"{PG_URL}?{query}"


@contextlib.asynccontextmanager
async def opened_store(schema: str, **options: Any) -> AsyncIterator[PostgresStorage]:
    """A relay's store on `schema`, migrated and open for the block, closed after it."""
    store = PostgresStorage(schema_url(schema), **options)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def migrate_schema(schema: str) -> None:
    """Create the relay's tables in `schema`, as a relay's first start does."""
    async def run() -> None:
        async with opened_store(schema, pool_size=1):
            pass

    asyncio.run(run())
