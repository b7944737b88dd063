"""`GET /v1/events` on PostgreSQL: a tenant's page is a range of events_tenant (0007).

The events have no insertion order there, so the list is newest first by
(received_at, id); these plans show a page read from an index in that order,
stopped by its LIMIT, deep pages included (the cursor bounds the walk).
"""

from __future__ import annotations

import pytest

from relay.storage.base import EventFilter
from relay.storage.postgres.operations import event_page_sql
from tests.postgres.pg import PgClient, migrate_schema
from tests.storage.contract import T0

pytestmark = pytest.mark.postgres


@pytest.fixture
def events_schema(pg: PgClient, schema: str) -> str:
    """The relay's events table and indexes, with 20,000 events: a tenth of tenant cus_7
    (whose pages must neither scan the table nor sort its history), half of cus_big,
    a fifth of 100 small tenants, a fifth without one; and planner statistics."""
    migrate_schema(schema)
    pg.fetch("INSERT INTO events (id, type, body, received_at, delivery_count, tenant) "
             "SELECT 'evt_' || n, 'license.created', '\\x7b7d'::bytea, $1 + n, 1, "
             "CASE WHEN n % 2 = 0 THEN 'cus_big' WHEN n % 10 = 1 THEN 'cus_7' "
             "WHEN n % 10 IN (3, 7) THEN 'cus_' || (n % 100) + 1000 END "
             "FROM generate_series(1, 20000) AS n", (T0,), schema=schema)
    pg.fetch("ANALYZE events", schema=schema)
    return schema


def plan(pg: PgClient, schema: str, where: EventFilter) -> str:
    sql, params = event_page_sql(where, 51)
    rows = pg.fetch("EXPLAIN " + sql, tuple(params), schema=schema)
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("where", [
    EventFilter(tenant="cus_7"),
    EventFilter(tenant="cus_7", before=f"{T0 + 107!r}:evt_107"),
    EventFilter(tenant="cus_7", event_type="license.created"),
], ids=["tenant", "tenant+cursor", "tenant+type"])
def test_a_tenants_page_walks_events_tenant_backwards(
        pg: PgClient, events_schema: str, where: EventFilter) -> None:
    """No scan of the table and no sort of the tenant's events: a backward index range."""
    text = plan(pg, events_schema, where)
    assert "Index Scan Backward using events_tenant" in text, text
    assert "Seq Scan" not in text, text
    assert text.startswith("Limit"), text  # stopped after the page...
    assert "Sort" not in text, text  # ...in (received_at, id) order already


@pytest.mark.parametrize("where", [
    EventFilter(tenant="cus_big"),
    EventFilter(tenant="cus_7", since=T0, until=T0 + 9000),
], ids=["large-tenant", "tenant+time"])
def test_other_tenant_pages_are_bounded_walks_too(
        pg: PgClient, events_schema: str, where: EventFilter) -> None:
    """Where the planner prefers walking receipt time and filtering (half the events are
    cus_big's; a time window), it is still an index walk stopped after the page."""
    text = plan(pg, events_schema, where)
    assert "Index Scan Backward" in text and "Seq Scan" not in text, text
    assert text.startswith("Limit") and "  Sort  " not in text, text


@pytest.mark.parametrize("where", [
    EventFilter(), EventFilter(before=f"{T0 + 15000!r}:evt_15000"),
], ids=["first", "deep"])
def test_any_page_walks_the_receipt_time_backwards(
        pg: PgClient, events_schema: str, where: EventFilter) -> None:
    """Without a tenant, events_received_at in order: a deep page starts at its cursor."""
    text = plan(pg, events_schema, where)
    assert "Index Scan Backward using events_received_at" in text, text
    assert "Seq Scan" not in text, text
    if where.before is not None:
        assert "Index Cond: ((received_at <=" in text, text  # starts at the cursor
