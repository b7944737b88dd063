"""The writes of the SQLite backend, made by the writer process inside its rounds.

Each public method of `WriteOps` is one op of `ops.py`. `ingest` and
`record` take the jobs of a whole round at once: one multi-row INSERT per
table for every event queued, one `executemany` for every attempt.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from relay.models import (
    FINAL_STATUSES,
    WAITING_STATUSES,
    AttemptResult,
    DeliveryStatus,
    NewEvent,
)
from relay.storage.base import PurgeResult, RetryOutcome
from relay.storage.health import Health, endpoints_to_disable, latest_attempts
from relay.storage.queries import (
    COMMIT_SKEW_S,
    HELD_STATUS,
    RELEASED_STATUS,
    event_deliveries_where,
    sort_out_job,
)
from relay.storage.sqlite.endpoint_writes import EndpointWrites
from relay.storage.sqlite.frames import (
    ClaimRow,
    EventFields,
    OutcomeFields,
    ResultFields,
    event_fields,
    outcome_fields,
)
from relay.storage.sqlite.portal_writes import PortalWrites
from relay.storage.sqlite.queries import AFTER, FIFO_HEAD_ID, ID_AT_TIME

__all__ = ["MAX_ROWS_PER_INSERT", "WriteOps"]

MAX_ROWS_PER_INSERT = 256
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


def _rows(db: sqlite3.Connection, sql: str, params: Any = ()) -> list[Any]:
    return db.execute(sql, params).fetchall()


def _insert_rows(db: sqlite3.Connection, into: str, rows: Sequence[Sequence[Any]]) -> int:
    """INSERT `rows` with one multi-row statement per 256 rows; the last rowid.

    One statement per 256 rows, not one step per row. The rows get
    consecutive rowids in their order: this process is the only writer.
    """
    if not rows:
        return 0
    one = "(" + ",".join("?" * len(rows[0])) + ")"
    last = 0
    for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
        chunk = rows[start:start + MAX_ROWS_PER_INSERT]
        cursor = db.execute(f"{into} VALUES {','.join([one] * len(chunk))}",
                            [value for row in chunk for value in row])
        last = cursor.lastrowid or 0
    return last


def _waiting_as(status: DeliveryStatus, held: bool, deleted: bool) -> DeliveryStatus:
    """What an attempt's new state is stored as: a wait of a held endpoint is held, of a
    deleted one cancelled."""
    if status not in WAITING_STATUSES or not (held or deleted):
        return status
    return DeliveryStatus.CANCELLED if deleted else DeliveryStatus.HELD


class WriteOps(EndpointWrites, PortalWrites):
    """Every write of the SQLite backend, on the writer process's connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        # The paused or disabled endpoints, read once per change, not once per round.
        # Every write goes through this process, and each op that pauses,
        # resumes or disables an endpoint clears it; so does a failed round.
        self._held: set[str] | None = None
        self._deleted: set[str] | None = None  # deleted API endpoints, cached the same way

    def ingest(self, jobs: list[list[EventFields]]) -> list[list[OutcomeFields] | None]:
        """Store each job's events; per job, None when all were new, else every outcome.

        A job is all or nothing: one conflicting id stores none of its events.
        A job is a list of `NewEvent` field tuples. Only events whose id came from
        the client (keyed) can already exist; a job without one skips the check.
        """
        keyed = list({fields[0] for job in jobs for fields in job if fields[5]})
        stored: dict[str, tuple[bytes, str, int]] = {}
        for start in range(0, len(keyed), _CHUNK):
            chunk = keyed[start:start + _CHUNK]
            for row in _rows(self.db,
                    "SELECT id, body, type, delivery_count FROM events WHERE id IN "  # noqa: S608
                    f"({','.join('?' * len(chunk))})", chunk):
                stored[row[0]] = (bytes(row[1]), row[2], row[3])
        event_rows: list[list[Any]] = []
        delivery_rows: list[tuple[Any, ...]] = []
        held, deleted = self.held_endpoints(), self.deleted_endpoints()
        pending, on_hold = DeliveryStatus.PENDING.value, DeliveryStatus.HELD.value
        cancelled = DeliveryStatus.CANCELLED.value
        answers: list[list[OutcomeFields] | None] = []
        for job in jobs:
            fresh: Iterable[tuple[Any, ...]] = job
            answer = None
            if keyed and any(fields[5] for fields in job):
                outcomes, accepted = sort_out_job([NewEvent(*fields) for fields in job], stored)
                if len(accepted) != len(job):
                    answer = [outcome_fields(o) for o in outcomes]
                fresh = [event_fields(e) for e in accepted]
            answers.append(answer)
            for (event_id, event_type, body, endpoints, received_at, _, tenant, source,
                 trace_context) in fresh:
                # Bounds (0, 0), an empty range, unless it has deliveries (below).
                event_rows.append([event_id, event_type, body, received_at, len(endpoints),
                                   0, 0, tenant, source, trace_context])
                for name in endpoints:
                    status = (pending if name not in held and name not in deleted
                              else cancelled if name in deleted else on_hold)
                    delivery_rows.append((event_id, name, event_type, status, received_at,
                                          received_at, received_at, tenant))
        # Deliveries first: each multi-row INSERT numbers its rows consecutively,
        # so every event learns the id range of its deliveries (0003).
        last_id = _insert_rows(self.db, "INSERT INTO deliveries (event_id, endpoint, event_type, "
                               "status, next_attempt_at, created_at, updated_at, tenant)",
                               delivery_rows)
        next_id = last_id - len(delivery_rows) + 1
        for row in event_rows:
            if row[4]:
                row[5], row[6] = next_id, next_id + row[4] - 1
                next_id += row[4]
        _insert_rows(self.db, "INSERT INTO events (id, type, body, received_at, delivery_count, "
                     "first_delivery_id, last_delivery_id, tenant, source, trace_context)",
                 event_rows)
        return answers

    def held_endpoints(self) -> set[str]:
        """Endpoints paused or disabled, cached: only this process changes them."""
        if self._held is None:
            rows = _rows(self.db,
                "SELECT name FROM endpoint_state WHERE paused = 1 OR disabled_reason IS NOT NULL"
            )
            self._held = {row[0] for row in rows}
        return self._held

    def deleted_endpoints(self) -> set[str]:
        """API endpoints deleted (and not made again): their deliveries end cancelled."""
        if self._deleted is None:
            rows = _rows(self.db, "SELECT name FROM endpoint_state WHERE deleted = 1")
            self._deleted = {row[0] for row in rows}
        return self._deleted

    def record(self, jobs: list[list[ResultFields]]) -> list[dict[str, str]]:
        """Store every job's attempt results; each job gets the endpoints the round disabled."""
        disabled = self._record([AttemptResult(*fields) for job in jobs for fields in job])
        return [disabled] * len(jobs)

    def _record(self, results: list[AttemptResult]) -> dict[str, str]:
        db = self.db
        db.executemany(
            "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, "
            "response_body, error, request_headers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.delivery_id, r.attempt, r.started_at, r.duration_ms, r.status_code,
                 r.response_body, r.error, json.dumps(r.request_headers))
                for r in results
            ],
        )
        held, deleted = self.held_endpoints(), self.deleted_endpoints()
        db.executemany(
            "UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt_at = ?, "
            "lease_until = NULL, updated_at = ?, last_attempt_at = ?, last_status_code = ?, "
            "last_error = ? WHERE id = ?",
            [
                (_waiting_as(r.new_status, r.endpoint in held, r.endpoint in deleted),
                 1 if r.counts else 0, r.next_attempt_at,
                 r.started_at + r.duration_ms / 1000, r.started_at, r.status_code, r.error,
                 r.delivery_id)
                for r in results
            ],
        )
        latest = latest_attempts(results)
        health: dict[str, Health] = {}
        for attempt in latest:
            rows = _rows(db,
                "INSERT INTO endpoint_state (name, last_attempt_at, last_success_at, "
                "failing_since) VALUES (?1, ?2, CASE WHEN ?3 THEN ?2 END, "
                "CASE WHEN ?3 THEN NULL ELSE ?2 END) "
                "ON CONFLICT (name) DO UPDATE SET last_attempt_at = ?2, "
                "last_success_at = CASE WHEN ?3 THEN ?2 ELSE last_success_at END, "
                "failing_since = CASE WHEN ?3 THEN NULL ELSE COALESCE(failing_since, ?2) END "
                "RETURNING failing_since, disabled_reason",
                (attempt.endpoint, attempt.at, attempt.ok),
            )
            health[attempt.endpoint] = Health(*rows[0])
        disabled: dict[str, str] = {}
        for name, (reason, at) in endpoints_to_disable(results, latest, health).items():
            self._disable(name, reason, at)
            disabled[name] = reason
        return disabled

    def _disable(self, name: str, reason: str, now: float) -> None:
        self._held = None
        self.db.execute(
            "INSERT INTO endpoint_state (name, disabled_reason, disabled_at) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (name) DO UPDATE SET disabled_reason = ?2, disabled_at = ?3",
            (name, reason, now),
        )
        self.db.execute(
            "UPDATE deliveries SET status = 'held', updated_at = ? "
            "WHERE endpoint = ? AND status IN ('pending', 'scheduled')",
            (now, name),
        )

    # -- the delivery engine's other writes

    def claim(self, endpoint: str, limit: int, now: float, lease_s: float,
              fifo: bool) -> list[ClaimRow]:
        db = self.db
        if fifo:
            rows = _rows(db,
                "SELECT d.id, d.event_id, d.event_type, e.body, d.attempts, d.status, "  # noqa: S608
                "d.next_attempt_at, e.trace_context FROM deliveries d "
                "JOIN events e ON e.id = d.event_id "
                f"WHERE d.id = {FIFO_HEAD_ID}",
                (endpoint,),
            )
            rows = [(*r[:5], r[7]) for r in rows if r[5] != "delivering" and r[6] <= now]
        else:
            rows = _rows(db,
                "SELECT d.id, d.event_id, d.event_type, e.body, d.attempts, e.trace_context "
                "FROM deliveries d "
                "JOIN events e ON e.id = d.event_id WHERE d.endpoint = ? "
                "AND d.status IN ('pending', 'scheduled') AND d.next_attempt_at <= ? "
                "ORDER BY d.next_attempt_at LIMIT ?",
                (endpoint, now, limit),
            )
        if not rows:
            return []
        lease_until = now + lease_s
        db.executemany(
            "UPDATE deliveries SET status = 'delivering', lease_until = ?, updated_at = ? "
            "WHERE id = ?",
            [(lease_until, now, row[0]) for row in rows],
        )
        return [(row[0], row[1], row[2], endpoint, bytes(row[3]), row[4] + 1, lease_until,
                 row[5]) for row in rows]

    def release(self, claims: Sequence[tuple[int, float]], now: float, hold: bool) -> None:
        status = HELD_STATUS if hold else RELEASED_STATUS
        self.db.executemany(
            f"UPDATE deliveries SET status = {status}, lease_until = NULL, "  # noqa: S608
            "next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'delivering' "
            "AND lease_until = ?",
            [(now, now, delivery_id, lease) for delivery_id, lease in claims],
        )

    def recover_interrupted(self, now: float) -> int:
        rows = _rows(self.db, "SELECT id, attempts FROM deliveries WHERE status = 'delivering'")
        self._requeue_interrupted(
            [(r[0], r[1]) for r in rows], now,
            "interrupted: the relay stopped during this attempt or just before it")
        return len(rows)

    def reap_expired_leases(self, now: float) -> int:
        rows = _rows(self.db,
            "SELECT id, attempts FROM deliveries WHERE status = 'delivering' "
            "AND lease_until < ?",
            (now,),
        )
        self._requeue_interrupted([(r[0], r[1]) for r in rows], now,
                                  "interrupted: the attempt's lease expired")
        return len(rows)

    def _requeue_interrupted(self, rows: Iterable[tuple[int, int]], now: float,
                             error: str) -> None:
        """Log the lost attempt (it does not count against the schedule) and make it due."""
        rows = list(rows)
        if not rows:
            return
        self.db.executemany(
            "INSERT INTO attempts (delivery_id, attempt, started_at, error) VALUES (?, ?, ?, ?)",
            [(i, attempts + 1, now, error) for i, attempts in rows],
        )
        self.db.executemany(
            f"UPDATE deliveries SET status = {RELEASED_STATUS}, lease_until = NULL, "  # noqa: S608
            "next_attempt_at = ?, updated_at = ? WHERE id = ?",
            [(now, now, i) for i, _ in rows],
        )

    def sync_endpoints(self, active: Sequence[str], now: float,
                       only: Sequence[str] | None = None) -> None:
        if only is None:
            marks = ",".join("?" * len(active))
            self.db.execute(
                "UPDATE deliveries SET status = 'held', updated_at = ? "  # noqa: S608
                f"WHERE status IN ('pending', 'scheduled') AND endpoint NOT IN ({marks})",
                (now, *active),
            )
        else:
            on = set(active)
            self.db.executemany(
                "UPDATE deliveries SET status = 'held', updated_at = ? "
                "WHERE endpoint = ? AND status IN ('pending', 'scheduled')",
                [(now, name) for name in only if name not in on],
            )
            active = [name for name in only if name in on]
        held = self.held_endpoints()
        released = [name for name in active if name not in held]
        self.db.executemany(
            "UPDATE deliveries SET status = CASE WHEN attempts > 0 THEN 'scheduled' "
            "ELSE 'pending' END, updated_at = ? WHERE endpoint = ? AND status = 'held'",
            [(now, name) for name in released],
        )

    def check_writable(self) -> None:
        self.db.execute(
            "INSERT INTO endpoint_state (name) VALUES ('__readyz__') "
            "ON CONFLICT (name) DO NOTHING"
        )
        self.db.execute("DELETE FROM endpoint_state WHERE name = '__readyz__'")

    # -- operator actions

    def pause_endpoint(self, name: str, now: float) -> int:
        self._held = None
        self.db.execute(
            "INSERT INTO endpoint_state (name, paused) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET paused = 1",
            (name,),
        )
        cursor = self.db.execute(
            "UPDATE deliveries SET status = 'held', updated_at = ? "
            "WHERE endpoint = ? AND status IN ('pending', 'scheduled')",
            (now, name),
        )
        return cursor.rowcount

    def resume_endpoint(self, name: str, now: float) -> int:
        # A disable is lifted too, and with it the failing streak that caused it,
        # so `disable_after` counts afresh from the next failure.
        self._held = None
        self.db.execute(
            "UPDATE endpoint_state SET paused = 0, disabled_reason = NULL, "
            "disabled_at = NULL, failing_since = CASE WHEN disabled_reason IS NULL "
            "THEN failing_since END WHERE name = ?",
            (name,),
        )
        cursor = self.db.execute(
            "UPDATE deliveries SET status = CASE WHEN attempts > 0 THEN 'scheduled' "
            "ELSE 'pending' END, next_attempt_at = COALESCE(next_attempt_at, ?1), "
            "updated_at = ?1 WHERE endpoint = ?2 AND status = 'held'",
            (now, name),
        )
        return cursor.rowcount

    def recover_failed(self, endpoint: str, since: float, now: float) -> int:
        status = "held" if endpoint in self.held_endpoints() else "scheduled"
        cursor = self.db.execute(
            "UPDATE deliveries SET status = ?, next_attempt_at = ?, updated_at = ? "
            "WHERE endpoint = ? AND status = 'failed' AND updated_at >= ?",
            (status, now, now, endpoint, since),
        )
        return cursor.rowcount

    def retry_delivery(self, delivery_id: int,
                       now: float) -> tuple[RetryOutcome, DeliveryStatus | None]:
        rows = _rows(self.db,
            "SELECT status, endpoint, attempts FROM deliveries WHERE id = ?", (delivery_id,)
        )
        if not rows:
            return "not_found", None
        status, endpoint, attempts = DeliveryStatus(rows[0][0]), rows[0][1], rows[0][2]
        if status == DeliveryStatus.DELIVERING:
            return "in_flight", status
        if endpoint in self.held_endpoints():
            new_status = DeliveryStatus.HELD
        else:
            new_status = DeliveryStatus.SCHEDULED if attempts else DeliveryStatus.PENDING
        self.db.execute(
            "UPDATE deliveries SET status = ?, next_attempt_at = ?, updated_at = ? "
            "WHERE id = ?",
            (new_status.value, now, now, delivery_id),
        )
        return "queued", status

    # -- retention

    def purge_finished(self, cutoff: float, after_id: int, limit: int) -> PurgeResult:
        db = self.db
        # Deliveries created after cutoff + skew were committed after every one
        # created before cutoff: the walk can stop below the first of them.
        stop = _rows(db, ID_AT_TIME, (cutoff + COMMIT_SKEW_S + AFTER,))[0][1]
        rows = _rows(db,
            "SELECT id, event_id, status, updated_at FROM deliveries "
            "WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
            (after_id, stop, limit),
        )
        if not rows:
            return PurgeResult(last_id=after_id, done=True)
        doomed = [(row[0], row[1]) for row in rows
                  if row[2] in FINAL_STATUSES and row[3] < cutoff]
        attempts = events = 0
        if doomed:
            marks = ",".join("?" * len(doomed))
            ids = [d for d, _ in doomed]
            cursor = db.execute(
                f"DELETE FROM attempts WHERE delivery_id IN ({marks})", ids  # noqa: S608
            )
            attempts = cursor.rowcount
            db.execute(f"DELETE FROM deliveries WHERE id IN ({marks})", ids)  # noqa: S608
            event_ids = sorted({e for _, e in doomed})
            cursor = db.execute(
                f"DELETE FROM events WHERE id IN ({','.join('?' * len(event_ids))}) "  # noqa: S608
                "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE "
                + event_deliveries_where("events.first_delivery_id", "events.last_delivery_id",
                                         "events.id") + ")",
                event_ids,
            )
            events = cursor.rowcount
        return PurgeResult(deliveries=len(doomed), attempts=attempts, events=events,
                           last_id=rows[-1][0], done=len(rows) < limit)

    def purge_unrouted_events(self, cutoff: float, limit: int) -> int:
        cursor = self.db.execute(
            "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events "
            "WHERE delivery_count = 0 AND received_at < ? ORDER BY received_at LIMIT ?)",
            (cutoff, limit),
        )
        return cursor.rowcount


