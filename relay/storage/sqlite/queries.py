"""SQL only the SQLite backend needs, spelled with SQLite's `?1`.

The time bounds and the fifo head, which both schemas find without an index
of their own, are written once in `relay/storage/queries.py`; so is an
event's id range, which replaced the index on `deliveries.event_id` in both
(SQLite 0003, PostgreSQL 0010). The event list pages by rowid.
"""

from __future__ import annotations

from typing import Any

from relay.storage.base import EventFilter
from relay.storage.queries import (
    AFTER,
    event_filter_terms,
    event_summary_columns,
    fifo_head_id,
    id_at_time,
)

__all__ = ["AFTER", "EVENT_ROWID_AT_TIME", "FIFO_HEAD_ID", "ID_AT_TIME", "event_page_query"]

# Deliveries by creation time (the delivery list's since/until, retention).
ID_AT_TIME = id_at_time("?1")
# Events by receipt time (the event list's since/until): the writer stores them in
# commit order, so their rowids grow with it as delivery ids do.
EVENT_ROWID_AT_TIME = id_at_time("?1", table="events", key="rowid", time="received_at")


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
