"""SQL only the SQLite backend needs: what replaces the indexes its schema does not keep.

SQLite's schema does without an index on `deliveries.event_id` (0003), which
PostgreSQL keeps: an event's deliveries are the id range the writer records
on the event. The time bounds and the fifo head, which both schemas now find
without an index of their own, are written once in `relay/storage/queries.py`
and spelled here with SQLite's `?1`.
"""

from __future__ import annotations

from relay.storage.queries import AFTER, MAX_ID, fifo_head_id, id_at_time

__all__ = ["AFTER", "FIFO_HEAD_ID", "ID_AT_TIME", "event_deliveries_where"]

# The id bounds at time ?1 (see `queries.id_at_time`).
ID_AT_TIME = id_at_time("?1")


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
