"""Every delivery-list filter is served by an index: no full scan, no sort, no OFFSET."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.models import DeliveryStatus
from relay.storage.base import DeliveryFilter, EventFilter
from relay.storage.migrations import schema_scripts
from relay.storage.queries import (
    delivery_list_query,
    delivery_page_query,
    event_deliveries_where,
)
from relay.storage.sqlite import SQLiteStorage
from relay.storage.sqlite.queries import (
    EVENT_ROWID_AT_TIME,
    FIFO_HEAD_ID,
    ID_AT_TIME,
    event_page_query,
)

pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("plans") / "relay.db"

    async def migrate() -> None:
        storage = SQLiteStorage(path)
        await storage.open()
        await storage.close()

    asyncio.run(migrate())
    conn = sqlite3.connect(path)
    yield conn
    conn.close()


def plan(db: sqlite3.Connection, sql: str, params: Any = ()) -> str:
    return " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))


FAILED = DeliveryStatus.FAILED
FILTERS = {
    "status": (DeliveryFilter(status=FAILED), "deliveries_status_id"),
    "type": (DeliveryFilter(event_type="license.created"), "deliveries_type_id"),
    "endpoint+status": (DeliveryFilter(endpoint="a", status=FAILED),
                        "deliveries_endpoint_status_id"),
    "status+time": (DeliveryFilter(status=FAILED, since=1.0, until=2.0),
                    "deliveries_status_id"),
    "time": (DeliveryFilter(since=1.0, until=2.0), "INTEGER PRIMARY KEY"),
    "cursor": (DeliveryFilter(before_id=500), "INTEGER PRIMARY KEY"),
    "endpoint+type": (DeliveryFilter(endpoint="a", event_type="x"), "deliveries_"),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_filter_walks_an_index_newest_first(db: sqlite3.Connection, name: str) -> None:
    """The plan searches an index ending in id, so a page stops after `limit` rows."""
    where, index = FILTERS[name]
    bounds = (10, 20) if where.since is not None else (None, None)
    sql, params = delivery_page_query(where, 51, *bounds)
    assert (sql, params) == delivery_list_query(where, 51, *bounds)  # the shared query
    text = plan(db, sql, params)
    assert text.startswith("SEARCH deliveries USING"), text
    assert index in text, text
    assert "TEMP B-TREE" not in text, text
    assert "OFFSET" not in sql


@pytest.mark.parametrize("where", [
    DeliveryFilter(endpoint="a"), DeliveryFilter(endpoint="a", before_id=500),
    DeliveryFilter(endpoint="a", since=1.0, until=2.0),
], ids=["endpoint", "endpoint+cursor", "endpoint+time"])
def test_an_endpoints_page_is_one_bounded_walk_per_status(
    db: sqlite3.Connection, where: DeliveryFilter
) -> None:
    """No (endpoint, id) index (0005): each status's walk of (endpoint, status, id)
    stops after one page, and the pages are merged, never the endpoint's rows sorted."""
    bounds = (10, 20) if where.since is not None else (None, None)
    sql, params = delivery_page_query(where, 51, *bounds)
    text = plan(db, sql, params)
    searches = [part for part in text.split(" | ") if part.startswith(("SEARCH", "SCAN"))]
    walks = [s for s in searches if "deliveries" in s]
    assert len(walks) == len(DeliveryStatus), text
    assert all(s.startswith("SEARCH deliveries USING INDEX deliveries_endpoint_status_id "
                            "(endpoint=? AND status=?") for s in walks), text
    assert "MERGE (UNION ALL)" in text, text


def test_an_endpoints_page_is_its_newest_deliveries_across_statuses(tmp_path: Path) -> None:
    """The merged walks answer what one walk of an (endpoint, id) index did."""
    db = sqlite3.connect(tmp_path / "list.db")
    db.execute("CREATE TABLE deliveries (id INTEGER PRIMARY KEY, event_id, event_type, "
               "endpoint, status, attempts, next_attempt_at, created_at, updated_at, "
               "last_attempt_at, last_status_code, last_error, tenant)")
    db.execute("CREATE INDEX deliveries_endpoint_status_id ON deliveries (endpoint, status, id)")
    statuses = list(DeliveryStatus)
    rows = [(i, f"e{i}", "t", "ab"[i % 2], statuses[(i * 7) % len(statuses)], 0, 0, i, i,
             None, None, None, None) for i in range(1, 400)]
    db.executemany(f"INSERT INTO deliveries VALUES ({', '.join('?' * 13)})", rows)
    for where in (DeliveryFilter(endpoint="a"), DeliveryFilter(endpoint="b", before_id=301)):
        sql, params = delivery_page_query(where, 25)
        got = [row[0] for row in db.execute(sql, params)]
        expected = sorted((r[0] for r in rows if r[3] == where.endpoint
                           and r[0] < (where.before_id or 10**9)), reverse=True)[:25]
        assert got == expected


def test_no_filter_reads_the_table_backwards_without_sorting(db: sqlite3.Connection) -> None:
    """The unfiltered list walks the rowid from the end: no sort, stopped by LIMIT."""
    sql, params = delivery_list_query(DeliveryFilter(), 51)
    text = plan(db, sql, params)
    assert text == "SCAN deliveries", text


@pytest.mark.parametrize(("sql", "index"), [
    ("SELECT endpoint, status, count(*) FROM deliveries WHERE endpoint = ? "
     "GROUP BY endpoint, status", "COVERING INDEX deliveries_endpoint_status_id"),
    ("SELECT endpoint, status, count(*) FROM deliveries WHERE endpoint IN (?, ?) AND status "
     "IN ('pending', 'scheduled', 'delivering', 'held') GROUP BY endpoint, status",
     "COVERING INDEX deliveries_endpoint_status_id"),
    ("SELECT rowid FROM events WHERE delivery_count = 0 AND received_at < ? "
     "ORDER BY received_at LIMIT 500", "events_unrouted"),
])
def test_time_bounds_counts_and_retention_use_indexes(
    db: sqlite3.Connection, sql: str, index: str
) -> None:
    """Time-to-id bounds, queue counts and unrouted-event purges are index searches."""
    text = plan(db, sql, (1.0,) * sql.count("?"))
    assert text.startswith("SEARCH"), text
    assert index in text, text


def test_a_time_becomes_an_id_bound_by_seeks_not_scans(db: sqlite3.Connection) -> None:
    """The binary search behind since/until and retention only seeks the rowid."""
    text = plan(db, ID_AT_TIME, (1.0,))
    assert "SCAN deliveries" not in text, text
    assert "SEARCH probe USING INTEGER PRIMARY KEY (rowid=?)" in text, text


@pytest.mark.parametrize("sql", [
    f"SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = {FIFO_HEAD_ID}",
    f"SELECT status, next_attempt_at FROM deliveries WHERE id = {FIFO_HEAD_ID}",
])
def test_a_fifo_head_is_three_index_seeks(db: sqlite3.Connection, sql: str) -> None:
    """A fifo lane's head: one seek per unfinished status, not a walk of its rows."""
    text = plan(db, sql, ("a",))
    assert text.count("SEARCH deliveries USING COVERING INDEX deliveries_endpoint_status_id "
                      "(endpoint=? AND status=?)") == 3, text
    assert "SCAN" not in text and "TEMP B-TREE" not in text, text


def test_an_events_deliveries_are_a_rowid_range(db: sqlite3.Connection) -> None:
    """GET /v1/events/{id} and retention find an event's deliveries by its id range."""
    where = event_deliveries_where("(SELECT first_delivery_id FROM events WHERE id = ?1)",
                                   "(SELECT last_delivery_id FROM events WHERE id = ?1)", "?1")
    text = plan(db, f"SELECT id FROM deliveries WHERE {where}", ("x",))
    assert text.startswith("SEARCH deliveries USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)")
    purge = plan(db, "DELETE FROM events WHERE id IN (?, ?) AND NOT EXISTS (SELECT 1 FROM "
                 "deliveries WHERE " + event_deliveries_where(
                     "events.first_delivery_id", "events.last_delivery_id", "events.id") + ")",
                 ("x", "y"))
    assert "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in purge, purge


@pytest.mark.parametrize(("sql", "index"), [
    ("SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.endpoint = ? "
     "AND d.status IN ('pending', 'scheduled') AND d.next_attempt_at <= ? "
     "ORDER BY d.next_attempt_at LIMIT ?", "deliveries_due"),
    ("SELECT min(next_attempt_at) FROM deliveries WHERE endpoint = ? "
     "AND status IN ('pending', 'scheduled')", "deliveries_due"),
])
def test_the_lanes_keep_their_partial_indexes(db: sqlite3.Connection, sql: str,
                                              index: str) -> None:
    """The admin indexes do not steal the claims' queries from the partial index."""
    text = plan(db, sql, tuple("a" if i == 0 else 1.0 for i in range(sql.count("?"))))
    assert index in text, text


def test_the_migrations_are_recorded(db: sqlite3.Connection) -> None:
    """Each schema file is applied once, in order."""
    versions = [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY 1")]
    shipped = [version for version, _, _ in schema_scripts("sqlite")]
    assert versions == shipped and shipped[:6] == [1, 2, 3, 4, 5, 6] and 7 in shipped


EVENT_PAGES = {
    "tenant": (EventFilter(tenant="acme"), None,
               "SEARCH events USING INDEX events_tenant (tenant=?)"),
    "tenant+cursor": (EventFilter(tenant="acme", before="500"), None,
                      "SEARCH events USING INDEX events_tenant (tenant=? AND rowid<?)"),
    "tenant+type+source": (EventFilter(tenant="acme", event_type="a.b", source=""), None,
                           "SEARCH events USING INDEX events_tenant (tenant=?)"),
    "tenant+time": (EventFilter(tenant="acme", since=1.0, until=2.0), (10, 20),
                    "SEARCH events USING INDEX events_tenant (tenant=? AND rowid>? AND "
                    "rowid<?)"),
    "time": (EventFilter(since=1.0, until=2.0), (10, 20),
             "SEARCH events USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
    "cursor": (EventFilter(before="500"), None,
               "SEARCH events USING INTEGER PRIMARY KEY (rowid<?)"),
    "none": (EventFilter(), None, "SCAN events"),
}


@pytest.mark.parametrize("name", list(EVENT_PAGES))
def test_an_event_page_is_one_backward_walk(db: sqlite3.Connection, name: str) -> None:
    """A tenant's events are a range of events_tenant (0009), in rowid order: no scan of
    the table, no sort; without a tenant the rowid itself is walked."""
    where, bounds, expected = EVENT_PAGES[name]
    sql, params = event_page_query(where, 51, *(bounds or (None, None)))
    text = plan(db, sql, params)
    assert text == expected, text
    assert "OFFSET" not in sql


def test_an_event_time_bound_is_a_binary_search_of_the_rowid(db: sqlite3.Connection) -> None:
    """since/until of the event list need no index on received_at: rowid seeks only."""
    text = plan(db, EVENT_ROWID_AT_TIME, (1.0,))
    assert "SCAN events" not in text, text
    assert "SEARCH probe USING INTEGER PRIMARY KEY (rowid=?)" in text, text
