"""The SQL of the relay's named queries that both backends share.

The two backends differ in how they run SQL, not in what the admin API asks
of them, so the list query is built once here; only the placeholder style
differs (`?` for SQLite, `$n` for PostgreSQL). The queries only SQLite needs
(its schema does without some of PostgreSQL's indexes) are in
`relay/storage/sqlite/queries.py`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from relay.models import AttemptRecord, DeliveryStatus, IngestOutcome, NewEvent
from relay.storage.base import (
    DeliveryFilter,
    DeliveryRecord,
    EndpointStats,
    EventFilter,
    EventRecord,
    EventSummary,
)

__all__ = [
    "AFTER",
    "ATTEMPT_COLUMNS",
    "COMMIT_SKEW_S",
    "DELIVERY_COLUMNS",
    "EVENT_COLUMNS",
    "HELD_STATUS",
    "MAX_ID",
    "QUEUED_STATUSES",
    "READYZ_ROW",
    "RELEASED_STATUS",
    "UNFINISHED",
    "attempt_record",
    "delivery_endpoints",
    "delivery_list_query",
    "delivery_page_query",
    "delivery_record",
    "endpoint_states",
    "endpoint_stats",
    "event_deliveries_where",
    "event_filter_terms",
    "event_record",
    "event_summary",
    "event_summary_columns",
    "fifo_head_id",
    "id_at_time",
]

# How much later than its creation time a delivery may be committed (and so get
# its id). Time filters become id bounds widened by this much, then the exact
# time is checked row by row; a commit that waited longer could be missed at
# the edge of a `since`/`until` window, nothing else.
COMMIT_SKEW_S = 60.0
UNFINISHED = "('pending', 'scheduled', 'delivering')"
QUEUED_STATUSES = ("pending", "scheduled", "delivering", "held")
DELIVERY_COLUMNS = (
    "id, event_id, event_type, endpoint, status, attempts, next_attempt_at, created_at, "
    "updated_at, last_attempt_at, last_status_code, last_error, tenant"
)
# A time bound a hair later than `until`, so that "created at or after" becomes "after".
AFTER = 1e-6
READYZ_ROW = "__readyz__"  # the endpoint_state row /readyz writes and deletes
_NAMES_PER_QUERY = 500  # names per IN (...) list, well under SQLite's variable limit
MAX_ID = 2**63 - 1


# What a claim given back without an attempt, or one whose lease ran out,
# becomes: held if its endpoint is paused or disabled meanwhile, else due again
# as it was (a retry stays one).
RELEASED_STATUS = (
    "COALESCE((SELECT CASE WHEN s.deleted = 1 THEN 'cancelled' "
    "WHEN s.paused = 1 OR s.disabled_reason IS NOT NULL THEN 'held' END "
    "FROM endpoint_state s WHERE s.name = deliveries.endpoint), "
    "CASE WHEN attempts > 0 THEN 'scheduled' ELSE 'pending' END)"
)
# What a claim given back as held becomes: cancelled if its endpoint was deleted.
HELD_STATUS = (
    "COALESCE((SELECT 'cancelled' FROM endpoint_state s WHERE s.name = deliveries.endpoint "
    "AND s.deleted = 1), 'held')"
)


ATTEMPT_COLUMNS = (
    "attempt, started_at, duration_ms, status_code, response_body, error, request_headers"
)
EVENT_COLUMNS = "id, type, body, received_at, delivery_count, tenant, source"


def attempt_record(row: Any) -> AttemptRecord:
    """An `AttemptRecord` from a row selected with `ATTEMPT_COLUMNS`."""
    return AttemptRecord(
        attempt=row[0], started_at=row[1], duration_ms=row[2], status_code=row[3],
        response_body=bytes(row[4] or b"").decode("utf-8", errors="replace"),
        error=row[5], request_headers=json.loads(row[6]) if row[6] else {},
    )


def event_record(row: Any) -> EventRecord:
    """An `EventRecord` from a row selected with `EVENT_COLUMNS`."""
    return EventRecord(row[0], row[1], bytes(row[2]), row[3], row[4], row[5], row[6])


def event_summary_columns(length: str) -> str:
    """The event list's columns: no body, its size by the backend's `length` function.

    Both functions read the stored size (SQLite's record header, PostgreSQL's
    TOAST pointer), not the body.
    """
    return f"id, type, received_at, delivery_count, tenant, source, {length}(body)"


def event_summary(row: Any, position: str) -> EventSummary:
    """An `EventSummary` from a row selected with `event_summary_columns`."""
    return EventSummary(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]), position)


def event_filter_terms(where: EventFilter,
                       placeholder: Callable[[int], str] | None = None,
                       ) -> tuple[list[str], list[Any]]:
    """The event list's equality and time filters, as SQL terms and their parameters.

    The cursor is each backend's own (its position), so it is not among them.
    """
    placeholder = placeholder or _question_mark
    terms: list[str] = []
    params: list[Any] = []
    for column, value in (("tenant", where.tenant), ("type", where.event_type),
                          ("source", where.source or None)):
        if value is not None:
            params.append(value)
            terms.append(f"{column} = {placeholder(len(params))}")
    if where.source == "":
        terms.append("source IS NULL")
    for term, bound in (("received_at >=", where.since), ("received_at <=", where.until)):
        if bound is not None:
            params.append(float(bound))
            terms.append(f"{term} {placeholder(len(params))}")
    return terms, params


def delivery_record(row: Any) -> DeliveryRecord:
    """A `DeliveryRecord` from a row selected with `DELIVERY_COLUMNS`."""
    return DeliveryRecord(
        id=row[0], event_id=row[1], event_type=row[2], endpoint=row[3],
        status=DeliveryStatus(row[4]), attempts=row[5], next_attempt_at=row[6],
        created_at=row[7], updated_at=row[8], last_attempt_at=row[9],
        last_status_code=row[10], last_error=row[11], tenant=row[12],
    )


def _question_mark(position: int) -> str:
    return "?"


def delivery_list_query(
    where: DeliveryFilter, limit: int, low_id: int | None = None, high_id: int | None = None,
    placeholder: Callable[[int], str] = _question_mark,
) -> tuple[str, list[Any]]:
    """The SQL of one page of the delivery list (a pure function, so tests can EXPLAIN it).

    `low_id`/`high_id` are exclusive id bounds derived from the time filters;
    every filter is an equality on a column that leads an index ending in `id`,
    so the newest-first walk needs no sort and stops after `limit` rows.
    `placeholder(n)` spells the n-th (1-based) parameter in the backend's style.
    """
    terms: list[str] = []
    params: list[Any] = []

    def add(term: str, value: Any) -> None:
        params.append(value)
        terms.append(term.replace("?", placeholder(len(params))))

    for column, value in (("endpoint", where.endpoint), ("status", where.status),
                          ("event_type", where.event_type), ("tenant", where.tenant)):
        if value is not None:
            add(f"{column} = ?", str(value))
    bounds: tuple[tuple[str, float | None], ...] = (
        ("id < ?", where.before_id), ("id > ?", low_id), ("id < ?", high_id),
        ("created_at >= ?", where.since), ("created_at <= ?", where.until),
    )
    for term, bound in bounds:
        if bound is not None:
            add(term, int(bound) if term.startswith("id") else float(bound))
    sql = f"SELECT {DELIVERY_COLUMNS} FROM deliveries"  # noqa: S608 (fixed column names)
    if terms:
        sql += " WHERE " + " AND ".join(terms)
    params.append(limit)
    sql += f" ORDER BY id DESC LIMIT {placeholder(len(params))}"
    return sql, params


def delivery_page_query(
    where: DeliveryFilter, limit: int, low_id: int | None = None, high_id: int | None = None,
    placeholder: Callable[[int], str] = _question_mark,
) -> tuple[str, list[Any]]:
    """One page of the delivery list, as both schemas' indexes serve it.

    Neither schema keeps an (endpoint, id) index (SQLite 0005, PostgreSQL
    0008): every write would maintain it for the one page that needs it. So a
    page filtered by endpoint and not by status is one newest-first walk of
    (endpoint, status, id) per status, each stopped after `limit` rows,
    merged: at most seven times a page read, whatever the endpoint's history.
    With another equality too (type, tenant) the plain query walks that one's
    index; every other filter is the plain query.
    """
    if where.endpoint is None or (where.status, where.event_type, where.tenant) != (
            None, None, None):
        return delivery_list_query(where, limit, low_id, high_id, placeholder)
    parts: list[str] = []
    params: list[Any] = []
    for n, status in enumerate(DeliveryStatus):
        sql, part_params = delivery_list_query(replace(where, status=status), limit, low_id,
                                               high_id, _shifted(placeholder, len(params)))
        parts.append(f"SELECT * FROM ({sql}) AS s{n}")  # noqa: S608 (built from fixed SQL)
        params += part_params
    params.append(limit)
    page = " UNION ALL ".join(parts) + f" ORDER BY id DESC LIMIT {placeholder(len(params))}"
    return page, params


def _shifted(placeholder: Callable[[int], str], offset: int) -> Callable[[int], str]:
    """`placeholder` for a query whose parameters follow `offset` others."""
    return lambda position: placeholder(position + offset)


def event_deliveries_where(first: str, last: str, event_id: str,
                           table: str = "deliveries") -> str:
    """The condition on `table` that selects one event's deliveries (0003).

    An event's deliveries are inserted together, so their ids form the range
    it keeps (`first`, `last`: SQL for its bounds): a primary-key range check,
    where the event id then decides (on PostgreSQL another round's deliveries
    can take ids inside the range; they fail that check). A bound never
    recorded (NULL: a row written before the range was, or by a replica of an
    older version) widens to the whole table.
    """
    return (f"{table}.id BETWEEN coalesce({first}, 0) AND coalesce({last}, {MAX_ID}) "
            f"AND {table}.event_id = {event_id}")


def fifo_head_id(endpoint: str) -> str:
    """The id of the head of `endpoint`'s fifo queue (SQL for its parameter), as a subquery.

    The head is its oldest unfinished delivery: three seeks into (endpoint,
    status, id), one per unfinished status, rather than an index of its own
    that every ingest, claim and outcome would write to.
    """
    return (
        "(SELECT min(head) FROM ("  # noqa: S608 (a placeholder, not a value)
        f"SELECT min(id) AS head FROM deliveries WHERE endpoint = {endpoint} "
        "AND status = 'pending' "
        f"UNION ALL SELECT min(id) FROM deliveries WHERE endpoint = {endpoint} "
        "AND status = 'scheduled' "
        f"UNION ALL SELECT min(id) FROM deliveries WHERE endpoint = {endpoint} "
        "AND status = 'delivering') AS heads)"
    )


def id_at_time(when: str, *, table: str = "deliveries", key: str = "id",
               time: str = "created_at") -> str:
    """SQL for `key` bounds at time `when` (a parameter), by seeks of `key` only.

    Neither schema indexes `created_at` (SQLite 0003, PostgreSQL 0008): an
    index that every state change of a delivery would write again, for the
    time filters and retention alone. Ids grow with commit time and a
    delivery is committed within COMMIT_SKEW_S of its creation, so a binary
    search over the ids, one seek per step, finds where a time falls. The
    query returns (lo, hi): every row with key < lo was stored before `when`
    + skew, every row with key >= hi at or after `when` - skew. SQLite's event
    list uses it on `events` (rowid, received_at), which hold the same way.
    """
    return f"""
WITH RECURSIVE step(lo, hi) AS (
    SELECT coalesce((SELECT min({key}) FROM {table}), 0),
           coalesce((SELECT max({key}) FROM {table}), 0) + 1
    UNION ALL
    SELECT CASE WHEN probe.{time} < {when} THEN probe.{key} + 1 ELSE step.lo END,
           CASE WHEN probe.{time} < {when} THEN step.hi ELSE (step.lo + step.hi) / 2 END
    FROM step JOIN {table} AS probe
        ON probe.{key} = (SELECT min({key}) FROM {table} WHERE {key} >= (step.lo + step.hi) / 2)
    WHERE step.lo < step.hi
)
SELECT max(lo), min(hi) FROM step
"""  # noqa: S608 (a placeholder and fixed names, not values)


# A backend's read: (SQL with `?` placeholders, parameters) -> rows.
Fetch = Callable[[str, list[Any]], Awaitable[list[Any]]]

_STATE_SQL = (
    "SELECT name, paused, disabled_reason, disabled_at, failing_since, last_attempt_at, "
    "last_success_at, deleted FROM endpoint_state"
)


async def endpoint_stats(fetch: Fetch, name: str | None = None,
                         names: Sequence[str] | None = None) -> dict[str, EndpointStats]:
    """Per-endpoint counts by state, next retry, health and last error, for the admin API.

    Of one endpoint (`name`), of a few (`names`: a page of the endpoint list),
    or of every endpoint the store knows. Written once for both backends:
    `fetch` runs SQL written with `?` and translates the placeholders if its
    driver needs to.
    """
    if name is not None:
        names = [name]
    if names is None:
        # One walk of the covering (endpoint, status, id) index.
        count_rows = await fetch(
            "SELECT endpoint, status, count(*) FROM deliveries GROUP BY endpoint, status", [])
        state_rows = await fetch(_STATE_SQL + " WHERE name <> ?", [READYZ_ROW])
    else:
        count_rows, state_rows = [], []
        for start in range(0, len(names), _NAMES_PER_QUERY):
            chunk = list(names[start:start + _NAMES_PER_QUERY])
            marks = ", ".join("?" * len(chunk))
            # Each name is one range of (endpoint, status, id): the page's rows only.
            count_rows += await fetch(
                "SELECT endpoint, status, count(*) FROM deliveries "  # noqa: S608
                f"WHERE endpoint IN ({marks}) GROUP BY endpoint, status", chunk)
            state_rows += await fetch(_STATE_SQL + f" WHERE name IN ({marks})", chunk)
    counts: dict[str, dict[str, int]] = {}
    for endpoint, status, count in count_rows:
        counts.setdefault(endpoint, {})[status] = int(count)
    states = {row[0]: row for row in state_rows}
    result: dict[str, EndpointStats] = {}
    for endpoint in sorted(set(counts) | set(states)):
        by_status = {s.value: 0 for s in DeliveryStatus}
        by_status.update(counts.get(endpoint, {}))
        next_retry = None
        if by_status["scheduled"]:
            rows = await fetch(
                "SELECT min(next_attempt_at) FROM deliveries WHERE endpoint = ? "
                "AND status = 'scheduled'", [endpoint])
            next_retry = rows[0][0] if rows else None
        row = states.get(endpoint)
        last_error = None
        if row is not None and row[4] is not None:  # failing: say what it answers
            last_error = await _last_error(fetch, endpoint)
        result[endpoint] = EndpointStats(
            name=endpoint, counts=by_status, next_retry_at=next_retry, last_error=last_error,
            **({} if row is None else _state_fields(row)),
        )
    return result


def _state_fields(row: Any) -> dict[str, Any]:
    """An endpoint_state row (`_STATE_SQL`) as `EndpointStats` fields."""
    return {"paused": bool(row[1]), "disabled_reason": row[2], "disabled_at": row[3],
            "failing_since": row[4], "last_attempt_at": row[5], "last_success_at": row[6],
            "deleted": bool(row[7])}


# Every endpoint name the deliveries hold, one index seek each (a loose index
# scan of (endpoint, status, id)): thousands of seeks, not millions of rows.
_DELIVERY_ENDPOINTS = """
WITH RECURSIVE seen(name) AS (
    SELECT min(endpoint) FROM deliveries
    UNION ALL
    SELECT (SELECT min(endpoint) FROM deliveries WHERE endpoint > seen.name)
    FROM seen WHERE seen.name IS NOT NULL
)
SELECT name FROM seen WHERE name IS NOT NULL
"""


async def endpoint_states(fetch: Fetch) -> dict[str, EndpointStats]:
    """Every endpoint with a stored state, nothing counted (`Storage.endpoint_states`)."""
    rows = await fetch(_STATE_SQL + " WHERE name <> ?", [READYZ_ROW])
    return {row[0]: EndpointStats(row[0], **_state_fields(row)) for row in rows}


async def delivery_endpoints(fetch: Fetch) -> set[str]:
    """Every endpoint name the deliveries hold (`Storage.delivery_endpoints`)."""
    return {row[0] for row in await fetch(_DELIVERY_ENDPOINTS, [])}


async def _last_error(fetch: Fetch, endpoint: str) -> str | None:
    """The error of the newest scheduled or failed delivery: two index probes."""
    latest: tuple[float, str] | None = None
    for status in ("scheduled", "failed"):
        rows = await fetch(
            "SELECT last_attempt_at, last_error FROM deliveries WHERE endpoint = ? "
            "AND status = ? ORDER BY id DESC LIMIT 1", [endpoint, status])
        if rows and rows[0][1] is not None and (
                latest is None or (rows[0][0] or 0.0) > latest[0]):
            latest = (rows[0][0] or 0.0, rows[0][1])
    return latest[1] if latest else None


def sort_out_job(
    events: Sequence[NewEvent], stored: dict[str, tuple[bytes, str, int]]
) -> tuple[list[IngestOutcome], list[NewEvent]]:
    """One ingest call's outcomes, and the events it stores, against `stored`.

    `stored` maps the ids already in the database (or accepted earlier in this
    round) to (body, type, delivery count). A reused id with the same body is
    a duplicate, with another body a conflict; one conflict stores none of the
    call's events (all or nothing). An accepted call's events join `stored`.
    """
    outcomes: list[IngestOutcome] = []
    fresh: list[NewEvent] = []
    seen: dict[str, tuple[bytes, str, int]] = {}
    for event in events:
        previous = stored.get(event.id) or seen.get(event.id)
        if previous is not None:
            body, etype, count = previous
            same = body == event.body
            outcomes.append(IngestOutcome(event.id, etype, count, duplicate=same,
                                          conflict=not same))
            continue
        seen[event.id] = (event.body, event.type, len(event.endpoints))
        fresh.append(event)
        outcomes.append(IngestOutcome(event.id, event.type, len(event.endpoints)))
    if any(o.conflict for o in outcomes):
        return outcomes, []
    stored.update(seen)
    return outcomes, fresh
