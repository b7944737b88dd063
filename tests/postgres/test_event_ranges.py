"""An event's deliveries are the id range it keeps (0010), not an index on event_id.

Every way a delivery row is written (the one-call round, the long way for
known ids, rounds of two relays interleaving their ids) must leave each event
with bounds that cover its deliveries, so the event page and retention find
exactly them; a schema of the previous version gets its bounds on upgrade.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from relay.models import NewEvent
from relay.storage.migrations import schema_scripts
from relay.storage.queries import DELIVERY_COLUMNS, event_deliveries_where
from tests.postgres.pg import PG_URL, PgClient, migrate_schema, opened_store

pytestmark = pytest.mark.postgres


def event(key: str, endpoints: tuple[str, ...] = ("a",), body: bytes = b"{}") -> NewEvent:
    return NewEvent(key, "license.created", body, endpoints, 1000.0, True, tenant=None)


def uncovered(pg: PgClient, schema: str) -> list[tuple[Any, ...]]:
    """Deliveries outside their event's range, and events whose range is not (0, 0)
    although they have none: both must be empty."""
    return pg.fetch(
        "SELECT d.id, d.event_id FROM deliveries d JOIN events e ON e.id = d.event_id "
        "WHERE d.id NOT BETWEEN e.first_delivery_id AND e.last_delivery_id "
        "UNION ALL SELECT NULL, e.id FROM events e WHERE e.delivery_count = 0 "
        "AND (e.first_delivery_id, e.last_delivery_id) IS DISTINCT FROM (0, 0)",
        schema=schema)


def test_both_ingest_paths_record_each_events_range(pg: PgClient, schema: str) -> None:
    async def scenario() -> dict[str, list[str]]:
        async with opened_store(schema) as store:
            # One call of relay_ingest: several events, several endpoints, one unrouted.
            await store.ingest([event("one", ("a", "b", "c")), event("two", ("b",)),
                                event("none", ())])
            await store.pause_endpoint("b", 1000.0)
            # A known id sends the round the long way (_apply_ingests).
            await store.ingest([event("one", ("a", "b", "c")), event("three", ("a", "b"))])
            return {key: [f"{d.endpoint}:{d.status.value}"
                          for d in await store.event_deliveries(key)]
                    for key in ("one", "two", "three", "none", "missing")}

    assert asyncio.run(scenario()) == {
        "one": ["a:pending", "b:held", "c:pending"], "two": ["b:held"],  # paused since
        "three": ["a:pending", "b:held"], "none": [], "missing": []}
    assert uncovered(pg, schema) == []


def test_interleaved_rounds_of_two_relays_keep_every_range_exact(
    pg: PgClient, schema: str
) -> None:
    """Two relays' rounds take ids from one sequence at once, so a range may hold
    the other's deliveries: the event page must still list only its own."""
    endpoints = tuple(f"ep{n}" for n in range(5))

    async def scenario() -> None:
        async with opened_store(schema) as one, opened_store(schema) as other:
            stores = [one, other]
            await asyncio.gather(*[
                stores[n % 2].ingest([event(f"e{n}-{k}", endpoints) for k in range(20)])
                for n in range(40)])
            for key in ("e0-0", "e1-19", "e38-7", "e39-19"):
                assert [d.endpoint for d in await one.event_deliveries(key)] == list(
                    endpoints), key

    asyncio.run(scenario())
    assert uncovered(pg, schema) == []
    assert pg.fetch("SELECT count(*) FROM deliveries", schema=schema) == [(40 * 20 * 5,)]


def test_retention_removes_an_event_once_its_last_delivery_in_range_is_gone(
    pg: PgClient, schema: str
) -> None:
    async def scenario() -> int:
        async with opened_store(schema) as store:
            await store.ingest([event("kept", ("a", "b")), event("gone", ("a",))])
            pg.fetch("UPDATE deliveries SET status = 'delivered', updated_at = 1 "
                     "WHERE event_id = 'gone' OR endpoint = 'a'", schema=schema)
            result = await store.purge_finished(cutoff=2000.0, after_id=0, limit=100)
            return result.events

    assert asyncio.run(scenario()) == 1  # "kept" still has its delivery to b
    assert pg.fetch("SELECT id FROM events", schema=schema) == [("kept",)]


def test_the_upgrade_to_0010_records_the_ranges_of_stored_events(
    pg: PgClient, schema: str
) -> None:
    """A schema of version 9, with events written by 0009's relay_ingest, is migrated:
    the index goes, the bounds are filled from the stored deliveries, and 0009's
    function still works for a replica of the previous version."""
    async def scenario() -> list[str]:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'SET search_path TO "{schema}"')
            await conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                               "applied_at DOUBLE PRECISION NOT NULL)")
            for version, _, sql in schema_scripts("postgres"):
                if version < 10:
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_version VALUES ($1, 0)", version)
            await previous_ingest(conn, [("old1", ["a", "b"]), ("old2", ["a"])])
        finally:
            await conn.close()
        async with opened_store(schema) as store:
            conn = await asyncpg.connect(PG_URL)
            try:
                await conn.execute(f'SET search_path TO "{schema}"')
                await previous_ingest(conn, [("old3", ["b"])])  # a replica not yet upgraded
            finally:
                await conn.close()
            return [f"{key}:{d.endpoint}" for key in ("old1", "old2", "old3")
                    for d in await store.event_deliveries(key)]

    assert asyncio.run(scenario()) == ["old1:a", "old1:b", "old2:a", "old3:b"]
    assert pg.fetch("SELECT id, first_delivery_id IS NOT NULL FROM events ORDER BY id",
                    schema=schema) == [("old1", True), ("old2", True), ("old3", False)]
    assert pg.fetch("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 "
                    "AND indexname = 'deliveries_event'", (schema,)) == [(0,)]


async def previous_ingest(conn: asyncpg.Connection, events: list[tuple[str, list[str]]]
                          ) -> None:
    """One round as a relay of the previous version sends it (0009's 17 arguments)."""
    rows = [(key, name) for key, names in events for name in names]
    await conn.fetch(
        "SELECT * FROM relay_ingest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
        "$13, $14, $15, $16, $17)",
        [], sorted({name for _, name in rows}), f"c_{uuid.uuid4().hex}", [],
        [k for k, _ in events], ["license.created"] * len(events), [b"{}"] * len(events),
        [1000.0] * len(events), [len(n) for _, n in events], [None] * len(events),
        [None] * len(events), [None] * len(events),
        [k for k, _ in rows], [n for _, n in rows], ["license.created"] * len(rows),
        [1000.0] * len(rows), [None] * len(rows))


def test_an_events_deliveries_are_a_primary_key_range_not_a_scan(
    pg: PgClient, schema: str
) -> None:
    migrate_schema(schema)
    pg.fetch("INSERT INTO deliveries (event_id, endpoint, event_type, status, created_at, "
             "updated_at) SELECT 'e' || (n / 3), 'ep', 't', 'delivered', n, n "
             "FROM generate_series(3, 30002) AS n", schema=schema)
    pg.fetch("INSERT INTO events (id, type, body, received_at, delivery_count, "
             "first_delivery_id, last_delivery_id) SELECT event_id, 't', '{}', 0, count(*), "
             "min(id), max(id) FROM deliveries GROUP BY event_id", schema=schema)
    pg.fetch("ANALYZE", schema=schema)
    # The statement event_deliveries runs (queries.event_deliveries_where).
    where = event_deliveries_where("(SELECT first_delivery_id FROM events WHERE id = $1)",
                                   "(SELECT last_delivery_id FROM events WHERE id = $1)", "$1")
    sql = f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE {where} ORDER BY id"
    plan = str(pg.fetch("EXPLAIN (FORMAT JSON) " + sql, ("e5000",), schema=schema)[0][0])
    assert "deliveries_pkey" in plan and "Seq Scan" not in plan, plan
    assert [row[1] for row in pg.fetch(sql, ("e5000",), schema=schema)] == ["e5000"] * 3
