"""SQL only the SQLite backend needs: what replaces the indexes its schema does not keep.

SQLite's schema does without some of PostgreSQL's indexes (0003): an index on
`created_at`, one on `deliveries.event_id`, one that finds a fifo queue's
head. These queries get the same answers from the rowid and the
(endpoint, status, id) index instead. What both backends share is in
`relay/storage/queries.py`.
"""

from __future__ import annotations

from relay.storage.queries import MAX_ID, fifo_head_id

__all__ = ["AFTER", "FIFO_HEAD_ID", "ID_AT_TIME", "event_deliveries_where"]

# The smallest id whose creation time is not before ?1, as bounds that need no
# index on created_at: a binary search over the rowid, one seek per step.
# Returns (lo, hi): every delivery with id < lo was created before ?1 + skew,
# every delivery with id >= hi at or after ?1 - skew (ids grow with commit
# time, and a delivery is committed within COMMIT_SKEW_S of its creation).
ID_AT_TIME = """
WITH RECURSIVE step(lo, hi) AS (
    SELECT coalesce((SELECT min(id) FROM deliveries), 0),
           coalesce((SELECT max(id) FROM deliveries), 0) + 1
    UNION ALL
    SELECT CASE WHEN probe.created_at < ?1 THEN probe.id + 1 ELSE step.lo END,
           CASE WHEN probe.created_at < ?1 THEN step.hi ELSE (step.lo + step.hi) / 2 END
    FROM step JOIN deliveries AS probe
        ON probe.id = (SELECT min(id) FROM deliveries WHERE id >= (step.lo + step.hi) / 2)
    WHERE step.lo < step.hi
)
SELECT max(lo), min(hi) FROM step
"""
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


# The id of the head of endpoint ?1's fifo queue (see `queries.fifo_head_id`).
FIFO_HEAD_ID = fifo_head_id("?1")
