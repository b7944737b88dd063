"""Versioned migrations from schema/postgres/, safe when several relays start at once.

Every relay applies the numbered `.sql` files its database has not seen. The
first to arrive takes a session advisory lock keyed on the schema; the others
wait for it, then find the versions already recorded in `schema_version` and
apply nothing. Each file runs in its own transaction with its version row, so
a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import time

import asyncpg
import structlog

from relay.exceptions import StorageError
from relay.storage.migrations import schema_scripts, too_new

__all__ = ["migrate"]

log = structlog.get_logger("relay.storage")


async def migrate(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Bring the schema up to date under an advisory lock; returns the versions applied."""
    key = f"relay:migrate:{schema}"
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", key)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "applied_at DOUBLE PRECISION NOT NULL)"
        )
        applied = {row[0] for row in await conn.fetch("SELECT version FROM schema_version")}
        scripts = schema_scripts("postgres")
        refusal = too_new(applied, scripts, f"the database schema {schema!r}")
        if refusal is not None:
            raise StorageError(refusal)
        done = []
        for version, name, sql in scripts:
            if version in applied:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_version VALUES ($1, $2)",
                                   version, time.time())
            log.info("schema_migrated", version=version, file=name, schema=schema)
            done.append(version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
