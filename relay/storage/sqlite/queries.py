"""SQL only the SQLite backend needs: what replaces the indexes its schema does not keep.

SQLite's schema does without an index on `deliveries.event_id` (0003), which
PostgreSQL keeps: an event's deliveries are the id range the writer records
on the event. The time bounds and the fifo head, which both schemas find
without an index of their own, are written once in `relay/storage/queries.py`
and spelled here with SQLite's `?1`; the event list pages by rowid.
"""

from __future__ import annotations

from typing import Any

from relay.storage.base import EventFilter
from relay.storage.queries import (
    AFTER,
    MAX_ID,
    event_filter_terms,
    event_summary_columns,
    fifo_head_id,
    id_at_time,
)

__all__ = ["AFTER", "EVENT_ROWID_AT_TIME", "FIFO_HEAD_ID", "ID_AT_TIME",
           "event_deliveries_where", "event_page_query"]

# Deliveries by creation time (the delivery list's since/until, retention).
ID_AT_TIME = id_at_time("?1")
# Events by receipt time (the event list's since/until): the writer stores them in
# commit order, so their rowids grow with it as delivery ids do.
EVENT_ROWID_AT_TIME = id_at_time("?1", table="events", key="rowid", time="received_at")


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


# The id of the head of endpoint ?1's fifo queue (see `queries.fifo_head_id`).
FIFO_HEAD_ID = fifo_head_id("?1")


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
