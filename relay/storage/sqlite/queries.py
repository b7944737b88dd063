"""SQL only the SQLite backend needs: what replaces the indexes its schema does not keep.

SQLite's schema does without some of PostgreSQL's indexes (0003): an index on
`created_at`, one on `deliveries.event_id`, one that finds a fifo queue's
head. These queries get the same answers from the rowid and the
(endpoint, status, id) index instead. What both backends share is in
`relay/storage/queries.py`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from relay.models import DeliveryStatus
from relay.storage.base import DeliveryFilter, EventFilter
from relay.storage.queries import (
    MAX_ID,
    delivery_list_query,
    event_filter_terms,
    event_summary_columns,
)

__all__ = ["AFTER", "EVENT_ROWID_AT_TIME", "FIFO_HEAD_ID", "ID_AT_TIME",
           "delivery_page_query", "event_deliveries_where", "event_page_query"]

def _id_at_time(table: str, key: str, time: str) -> str:
    """The smallest `key` whose `time` is not before ?1, as bounds that need no index
    on `time`: a binary search over the rowid, one seek per step.

    Returns (lo, hi): every row with key < lo was stored before ?1 + skew, every
    row with key >= hi at or after ?1 - skew (keys grow with commit time, and a
    row is committed within COMMIT_SKEW_S of its time).
    """
    return f"""
WITH RECURSIVE step(lo, hi) AS (
    SELECT coalesce((SELECT min({key}) FROM {table}), 0),
           coalesce((SELECT max({key}) FROM {table}), 0) + 1
    UNION ALL
    SELECT CASE WHEN probe.{time} < ?1 THEN probe.{key} + 1 ELSE step.lo END,
           CASE WHEN probe.{time} < ?1 THEN step.hi ELSE (step.lo + step.hi) / 2 END
    FROM step JOIN {table} AS probe
        ON probe.{key} = (SELECT min({key}) FROM {table} WHERE {key} >= (step.lo + step.hi) / 2)
    WHERE step.lo < step.hi
)
SELECT max(lo), min(hi) FROM step
"""  # noqa: S608 (fixed table and column names)


# Deliveries by creation time (the delivery list's since/until, retention).
ID_AT_TIME = _id_at_time("deliveries", "id", "created_at")
# Events by receipt time (the event list's since/until): the writer stores them in
# commit order, so their rowids grow with it as delivery ids do.
EVENT_ROWID_AT_TIME = _id_at_time("events", "rowid", "received_at")
# A time bound a hair later than `until`, so that "created at or after" becomes "after".
AFTER = 1e-6


def event_deliveries_where(first: str, last: str, event_id: str,
                           table: str = "deliveries") -> str:
    """The condition on `table` that selects one event's deliveries (0003).

    An event's deliveries are inserted together, so their ids form the range
    it keeps (`first`, `last`: SQL for its bounds): a rowid range check, where
    the event id then decides. A bound never recorded (NULL: a row written by
    something other than the relay's writer) widens to the whole table.
    """
    return (f"{table}.id BETWEEN coalesce({first}, 0) AND coalesce({last}, {MAX_ID}) "
            f"AND {table}.event_id = {event_id}")


# The id of the head of endpoint ?1's fifo queue: its oldest unfinished delivery,
# three seeks into deliveries_endpoint_status_id (one per unfinished status).
FIFO_HEAD_ID = (
    "(SELECT min(head) FROM ("
    "SELECT min(id) AS head FROM deliveries WHERE endpoint = ?1 AND status = 'pending' "
    "UNION ALL SELECT min(id) FROM deliveries WHERE endpoint = ?1 AND status = 'scheduled' "
    "UNION ALL SELECT min(id) FROM deliveries WHERE endpoint = ?1 AND status = 'delivering'))"
)


def delivery_page_query(where: DeliveryFilter, limit: int, low_id: int | None = None,
                        high_id: int | None = None) -> tuple[str, list[Any]]:
    """One page of the delivery list, as SQLite's indexes serve it.

    The schema has no (endpoint, id) index (0005), so a page filtered by
    endpoint and not by status is one newest-first walk of (endpoint, status,
    id) per status, each stopped after `limit` rows, merged: at most seven
    times a page read, whatever the endpoint's history. With another
    equality too (type, tenant) the shared query walks that one's index, as
    it did before; every other filter is the shared query.
    """
    if where.endpoint is None or (where.status, where.event_type, where.tenant) != (
            None, None, None):
        return delivery_list_query(where, limit, low_id, high_id)
    parts: list[str] = []
    params: list[Any] = []
    for status in DeliveryStatus:
        sql, part_params = delivery_list_query(replace(where, status=status), limit,
                                               low_id, high_id)
        parts.append(f"SELECT * FROM ({sql})")  # noqa: S608 (built from fixed SQL)
        params += part_params
    return " UNION ALL ".join(parts) + " ORDER BY id DESC LIMIT ?", [*params, limit]


def event_page_query(where: EventFilter, limit: int, low: int | None = None,
                     high: int | None = None) -> tuple[str, list[Any]]:
    """One page of the event list, newest first by rowid (a pure function, to EXPLAIN).

    `low`/`high` are exclusive rowid bounds from the time filters. A tenant's
    page walks events_tenant backwards (its entries end in the rowid, 0009);
    any other page walks the table itself. `where.before` must be a rowid as
    `position` gave it: anything else raises `ValueError`.
    """
    terms, params = event_filter_terms(where)
    before = None
    if where.before is not None:
        if not (where.before.isascii() and where.before.isdigit()):
            raise ValueError(f"not an SQLite event position: {where.before!r}")
        before = int(where.before)
    for term, bound in (("rowid < ?", before), ("rowid > ?", low), ("rowid < ?", high)):
        if bound is not None:
            params.append(bound)
            terms.append(term)
    sql = f"SELECT {event_summary_columns('length')}, rowid FROM events"  # noqa: S608
    if terms:
        sql += " WHERE " + " AND ".join(terms)
    params.append(limit)
    return sql + " ORDER BY rowid DESC LIMIT ?", params
