"""Migrations: several relays starting at once on an empty schema migrate it once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.exceptions import StorageError
from relay.storage.migrations import schema_scripts
from relay.storage.postgres import PostgresStorage
from tests.conftest import endpoint_yaml
from tests.postgres.conftest import Cluster
from tests.postgres.pg import PgClient, schema_url

pytestmark = pytest.mark.postgres


def test_three_relays_starting_at_once_migrate_the_schema_once(
    make_cluster: Callable[..., Cluster], pg: PgClient, schema: str, tmp_path: Path,
) -> None:
    """Each shipped version is applied by exactly one of three relays started together."""
    make_cluster(3, endpoint_yaml("a", "http://127.0.0.1:9/hooks"), log_level="info")
    versions = [version for version, _, _ in schema_scripts("postgres")]
    assert pg.fetch("SELECT version FROM schema_version ORDER BY 1", schema=schema) == [
        (v,) for v in versions]
    logs = "".join((tmp_path / f"relay-{n}.log").read_text() for n in range(3))
    assert logs.count("schema_migrated") == len(versions)
    assert pg.fetch("SELECT count(*) FROM deliveries", schema=schema) == [(0,)]


def test_a_schema_newer_than_the_relay_is_refused(pg: PgClient, schema: str) -> None:
    """A database migrated by a newer relay is not touched by an older one."""
    async def scenario() -> None:
        storage = PostgresStorage(schema_url(schema))
        await storage.open()
        await storage.close()
        pg.fetch("INSERT INTO schema_version VALUES (9999, 0)", schema=schema)
        with pytest.raises(StorageError, match="newer than this relay understands"):
            await PostgresStorage(schema_url(schema)).open()

    asyncio.run(scenario())


def test_a_missing_schema_is_named() -> None:
    """A search_path naming no existing schema fails with a message that says so."""
    async def scenario() -> None:
        with pytest.raises(StorageError, match="CREATE SCHEMA"):
            await PostgresStorage(schema_url("public").replace(
                "search_path=public", "search_path=rt_does_not_exist")).open()

    asyncio.run(scenario())
