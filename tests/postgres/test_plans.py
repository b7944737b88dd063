"""PostgreSQL serves the queries whose indexes 0008 dropped from the indexes it kept.

0008 removed four indexes from deliveries so that every state change writes
fewer entries. These tests EXPLAIN the queries that used them, on a schema
with a realistic spread (ANALYZEd, so the planner sees the real row counts),
and check each is an index search without a sort of an endpoint's history.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from relay.models import DeliveryStatus
from relay.storage.base import DeliveryFilter
from relay.storage.queries import AFTER, delivery_page_query, fifo_head_id, id_at_time
from tests.postgres.pg import PgClient, client, migrate_schema

pytestmark = pytest.mark.postgres

ROWS = 30_000


@pytest.fixture(scope="module")
def filled(pg_module: PgClient) -> Iterator[str]:
    """A migrated schema with ROWS deliveries over 30 endpoints, each with every status."""
    name = f"plans_{uuid.uuid4().hex[:16]}"
    pg_module.create_schema(name)
    migrate_schema(name)
    statuses = [s.value for s in DeliveryStatus]
    pg_module.fetch(
        "INSERT INTO deliveries (event_id, endpoint, event_type, status, attempts, "
        "next_attempt_at, lease_until, created_at, updated_at) "
        "SELECT 'e' || n, 'ep' || (n % 30), 'license.created', "
        "($1::text[])[1 + (n / 30) % 7], 0, n, "
        "CASE WHEN ($1::text[])[1 + (n / 30) % 7] = 'delivering' THEN n END, n, n "
        "FROM generate_series(1, $2) AS n", (statuses, ROWS), schema=name)
    pg_module.fetch("ANALYZE deliveries", schema=name)
    yield name
    pg_module.drop_schema(name)


@pytest.fixture(scope="module")
def pg_module() -> PgClient:
    return client()


def plan(pg: PgClient, schema: str, sql: str, params: tuple[Any, ...]) -> str:
    """The plan as JSON text: node types and index names are plain substrings of it."""
    return str(pg.fetch("EXPLAIN (FORMAT JSON) " + sql, params, schema=schema)[0][0])


def test_the_indexes_0008_dropped_are_gone(pg_module: PgClient, filled: str) -> None:
    names = {row[0] for row in pg_module.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'deliveries' "
        "AND schemaname = $1", (filled,))}
    assert not names & {"deliveries_endpoint_id", "deliveries_unfinished",
                        "deliveries_leased", "deliveries_created_at"}, names
    assert "deliveries_endpoint_status_id" in names and "deliveries_in_flight" in names


def test_one_endpoints_page_walks_endpoint_status_id_without_sorting_its_history(
    pg_module: PgClient, filled: str
) -> None:
    """The endpoint's page: one index walk per status, each stopped by its LIMIT."""
    sql, params = delivery_page_query(DeliveryFilter(endpoint="ep3"), 51,
                                      placeholder=lambda n: f"${n}")
    text = plan(pg_module, filled, sql, tuple(params))
    assert text.count("deliveries_endpoint_status_id") == len(DeliveryStatus), text
    assert '"Seq Scan"' not in text, text
    got = [row[0] for row in pg_module.fetch(sql, tuple(params), schema=filled)]
    expected = [row[0] for row in pg_module.fetch(
        "SELECT id FROM deliveries WHERE endpoint = 'ep3' ORDER BY id DESC LIMIT 51",
        schema=filled)]
    assert got == expected


@pytest.mark.parametrize("sql", [
    f"SELECT status, next_attempt_at FROM deliveries WHERE id = {fifo_head_id('$1')}",
    f"SELECT created_at FROM deliveries WHERE id = {fifo_head_id('$1')}",
])
def test_a_fifo_head_is_three_seeks(pg_module: PgClient, filled: str, sql: str) -> None:
    text = plan(pg_module, filled, sql, ("ep7",))
    assert text.count("deliveries_endpoint_status_id") == 3, text
    assert '"Seq Scan"' not in text and '"Sort"' not in text, text
    head = pg_module.fetch(sql.replace("status, next_attempt_at", "id").replace(
        "created_at", "id"), ("ep7",), schema=filled)
    oldest = pg_module.fetch(
        "SELECT min(id) FROM deliveries WHERE endpoint = 'ep7' "
        "AND status IN ('pending', 'scheduled', 'delivering')", schema=filled)
    assert head == oldest


def test_the_reaper_reads_only_the_attempts_in_flight(pg_module: PgClient, filled: str) -> None:
    text = plan(pg_module, filled,
                "SELECT id FROM deliveries WHERE status = 'delivering' AND lease_until < $1 "
                "ORDER BY id", (1e12,))
    assert '"Seq Scan"' not in text, text


ID_AT_TIME = id_at_time("$1::float8")


def test_a_time_becomes_id_bounds_by_seeks_not_scans(pg_module: PgClient, filled: str) -> None:
    text = plan(pg_module, filled, ID_AT_TIME, (15_000.0,))
    assert '"Seq Scan"' not in text and '"Sort"' not in text, text
    lo, hi = pg_module.fetch(ID_AT_TIME, (15_000.0,), schema=filled)[0]
    assert (lo, hi) == (15_000, 15_000)  # created_at = id in this schema


def test_time_bounds_hold_with_commit_skew_and_gaps(pg: PgClient, schema: str) -> None:
    """Rows committed out of creation order and holes left by retention never break a bound."""
    migrate_schema(schema)
    assert pg.fetch(ID_AT_TIME, (1000.0,), schema=schema) == [(0, 1)]  # nothing yet
    rng = random.Random(7)
    skew, clock, created = 2.0, 1000.0, []
    for _ in range(3000):
        clock += rng.random() * 0.05
        created.append(clock - rng.random() * skew)  # committed up to `skew` after it
    pg.fetch("INSERT INTO deliveries (event_id, endpoint, event_type, status, next_attempt_at, "
             "created_at, updated_at) SELECT 'e', 'a', 't', 'delivered', c, c, c "
             "FROM unnest($1::float8[]) WITH ORDINALITY AS u(c, n) ORDER BY n",
             (created,), schema=schema)
    pg.fetch("DELETE FROM deliveries WHERE id % 5 = 0 OR id BETWEEN 700 AND 1400", schema=schema)
    for _ in range(60):
        when = rng.uniform(990.0, clock + 10.0)
        lo = pg.fetch(ID_AT_TIME, (when - skew,), schema=schema)[0][0]
        hi = pg.fetch(ID_AT_TIME, (when + skew + AFTER,), schema=schema)[0][1]
        # since=when: nothing created at or after it lies below lo; until=when:
        # nothing created at or before it at or above hi; and lo is tight.
        assert pg.fetch("SELECT count(*) FROM deliveries WHERE created_at >= $1 AND id < $2",
                        (when, lo), schema=schema) == [(0,)]
        assert pg.fetch("SELECT count(*) FROM deliveries WHERE created_at <= $1 AND id >= $2",
                        (when, hi), schema=schema) == [(0,)]
        assert pg.fetch("SELECT count(*) FROM deliveries WHERE id >= $1 AND created_at < $2",
                        (lo, when - 2 * skew), schema=schema) == [(0,)]
