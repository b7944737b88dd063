"""SQLite storage: one file in WAL mode, one writer, group commit.

SQLite allows one writer at a time, so every write goes through a single
connection and a single task, the committer. Callers queue a job and await
its future; the committer takes every job queued since its last round and runs
them all in one transaction, so a burst of 64 concurrent ingests costs one
`fsync`, not 64. `synchronous=FULL` makes each commit durable against power
loss, which is what a 202 at ingest promises.

Reads that do not need the writer's view (the next due time of an endpoint,
admin queries) use a second connection, which WAL lets run beside the writer.

A lock file next to the database keeps a second relay process off the same
file: two writers would each believe they own the deliveries in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, TypeVar

import aiosqlite
import structlog

from relay.exceptions import StorageError, StorageUnavailable, StoreLocked
from relay.models import (
    WAITING_STATUSES,
    AttemptResult,
    ClaimedDelivery,
    DeliveryStatus,
    IngestOutcome,
    NewEvent,
)
from relay.storage.base import Storage

__all__ = ["SQLiteStorage"]

log = structlog.get_logger("relay.storage")
T = TypeVar("T")

MAX_EVENTS_PER_ROUND = 5000
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit
_UNAVAILABLE_CODES = {
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM,
}


def wrap_error(exc: sqlite3.Error) -> StorageError:
    """Map a driver error to the relay's tree, once, at the boundary."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(exc)
    if primary in _UNAVAILABLE_CODES or any(
        text in message for text in ("disk is full", "locked", "readonly", "disk I/O")
    ):
        return StorageUnavailable(f"the database cannot take writes now: {message}")
    return StorageError(f"database error: {message}")


async def _fetchall(db: aiosqlite.Connection, sql: str, params: Any = ()) -> list[Any]:
    """One thread hop for a whole result set (cursor iteration costs one per row batch)."""
    return list(await db.execute_fetchall(sql, params))


@dataclass
class _Job:
    future: asyncio.Future[Any] = field(repr=False)


@dataclass
class _IngestJob(_Job):
    events: Sequence[NewEvent] = ()


@dataclass
class _RecordJob(_Job):
    results: Sequence[AttemptResult] = ()


@dataclass
class _CallJob(_Job):
    fn: Callable[[aiosqlite.Connection], Awaitable[Any]] | None = None


class SQLiteStorage(Storage):
    """The embedded default backend; see the module docstring for the design."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._queue: list[_Job] = []
        self._wakeup = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=FULL",
                "PRAGMA busy_timeout=5000",
                "PRAGMA cache_size=-32000",
                "PRAGMA temp_store=MEMORY",
            ):
                await self._writer.execute(pragma)
            await self._migrate(self._writer)
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
            await self._reader.execute("PRAGMA busy_timeout=5000")
            await self._reader.execute("PRAGMA query_only=ON")
        except sqlite3.Error as exc:
            await self._close_connections()
            self._release_lock()
            raise wrap_error(exc) from exc
        self._closing = False
        self._committer = asyncio.create_task(self._commit_loop(), name="sqlite-committer")

    async def close(self) -> None:
        self._closing = True
        if self._committer is not None:
            self._wakeup.set()
            # The committer drains the queue before it returns.
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
            self._committer = None
        await self._close_connections()
        self._release_lock()

    async def _close_connections(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await conn.close()
        self._reader = self._writer = None

    def _take_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "a+")  # noqa: SIM115 (held open for the process's life)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise StoreLocked(
                f"{self.path} is in use by another relay process (pid {owner}); "
                "SQLite storage serves one relay at a time (use PostgreSQL to run several)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor drops the flock
            self._lock_file = None

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        """Apply the numbered files of schema/sqlite/ that this database has not seen."""
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "applied_at REAL NOT NULL)"
        )
        rows = await _fetchall(db, "SELECT version FROM schema_version")
        applied = {row[0] for row in rows}
        folder = resources.files("relay.storage") / "schema" / "sqlite"
        scripts = sorted(
            (int(f.name.split("_", 1)[0]), f) for f in folder.iterdir() if f.name.endswith(".sql")
        )
        newest_known = scripts[-1][0] if scripts else 0
        if applied and max(applied) > newest_known:
            raise StorageError(
                f"{self.path} has schema version {max(applied)}, newer than this relay "
                f"understands ({newest_known}); upgrade the relay"
            )
        for version, script in scripts:
            if version in applied:
                continue
            sql = script.read_text(encoding="utf-8")
            await db.executescript(
                f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO schema_version VALUES "
                f"({version}, {time.time()});\nCOMMIT;"
            )
            log.info("schema_migrated", version=version, file=script.name)

    # -- the committer -------------------------------------------------------------------

    def _submit(self, job: _Job) -> asyncio.Future[Any]:
        if self._closing or self._writer is None:
            raise StorageUnavailable("the store is closed")
        self._queue.append(job)
        self._wakeup.set()
        return job.future

    async def _commit_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                jobs = self._take_round()
                await self._run_round(jobs)
            if self._closing:
                return

    def _take_round(self) -> list[_Job]:
        """Everything queued, but not so many events that one round delays the next."""
        taken, events = 0, 0
        for job in self._queue:
            if isinstance(job, _IngestJob):
                if events and events + len(job.events) > MAX_EVENTS_PER_ROUND:
                    break
                events += len(job.events)
            taken += 1
        jobs, self._queue = self._queue[:taken], self._queue[taken:]
        return jobs

    async def _run_round(self, jobs: list[_Job]) -> None:
        db = self._writer
        assert db is not None
        ingests = [j for j in jobs if isinstance(j, _IngestJob)]
        records = [j for j in jobs if isinstance(j, _RecordJob)]
        calls = [j for j in jobs if isinstance(j, _CallJob)]
        results: list[tuple[_Job, Any]] = []
        try:
            await db.execute("BEGIN IMMEDIATE")
            if ingests:
                results.extend(zip(ingests, await self._apply_ingests(db, ingests), strict=True))
            if records:
                await self._apply_records(db, [r for job in records for r in job.results])
                results.extend((job, None) for job in records)
            for call in calls:
                assert call.fn is not None
                results.append((call, await call.fn(db)))
            await db.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                await db.execute("ROLLBACK")
            error: BaseException = wrap_error(exc) if isinstance(exc, sqlite3.Error) else exc
            if isinstance(error, StorageError):
                log.warning("storage_write_failed", error=str(error), jobs=len(jobs))
            else:
                log.exception("storage_round_crashed", jobs=len(jobs))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        for job, value in results:
            if not job.future.done():
                job.future.set_result(value)

    async def _apply_ingests(
        self, db: aiosqlite.Connection, jobs: list[_IngestJob]
    ) -> list[list[IngestOutcome]]:
        keyed = list({e.id for job in jobs for e in job.events if e.keyed})
        stored: dict[str, tuple[bytes, str, int]] = {}
        for start in range(0, len(keyed), _CHUNK):
            chunk = keyed[start:start + _CHUNK]
            rows = await _fetchall(db,
                f"SELECT id, body, type, delivery_count FROM events WHERE id IN "  # noqa: S608
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                stored[row[0]] = (bytes(row[1]), row[2], row[3])
        event_rows: list[tuple[str, str, bytes, float, int]] = []
        delivery_rows: list[tuple[str, str, str, str, float, float, float]] = []
        held = await self._held_endpoints(db)
        outcomes: list[list[IngestOutcome]] = []
        for job in jobs:
            job_outcomes: list[IngestOutcome] = []
            job_events: list[NewEvent] = []
            job_stored: dict[str, tuple[bytes, str, int]] = {}
            for event in job.events:
                previous = stored.get(event.id) or job_stored.get(event.id)
                if previous is not None:
                    body, etype, count = previous
                    if body == event.body:
                        job_outcomes.append(IngestOutcome(event.id, etype, count, duplicate=True))
                    else:
                        job_outcomes.append(IngestOutcome(event.id, etype, count, conflict=True))
                    continue
                job_stored[event.id] = (event.body, event.type, len(event.endpoints))
                job_events.append(event)
                job_outcomes.append(IngestOutcome(event.id, event.type, len(event.endpoints)))
            if any(o.conflict for o in job_outcomes):
                outcomes.append(job_outcomes)  # all or nothing: store none of this job
                continue
            stored.update(job_stored)
            for event in job_events:
                event_rows.append(
                    (event.id, event.type, event.body, event.received_at, len(event.endpoints))
                )
                for name in event.endpoints:
                    status = DeliveryStatus.HELD if name in held else DeliveryStatus.PENDING
                    delivery_rows.append((
                        event.id, name, event.type, status, event.received_at,
                        event.received_at, event.received_at,
                    ))
            outcomes.append(job_outcomes)
        if event_rows:
            await db.executemany(
                "INSERT INTO events (id, type, body, received_at, delivery_count) "
                "VALUES (?, ?, ?, ?, ?)",
                event_rows,
            )
        if delivery_rows:
            await db.executemany(
                "INSERT INTO deliveries (event_id, endpoint, event_type, status, "
                "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                delivery_rows,
            )
        return outcomes

    async def _held_endpoints(self, db: aiosqlite.Connection) -> set[str]:
        rows = await _fetchall(db,
            "SELECT name FROM endpoint_state WHERE paused = 1 OR disabled_reason IS NOT NULL"
        )
        return {row[0] for row in rows}

    async def _apply_records(
        self, db: aiosqlite.Connection, results: Sequence[AttemptResult]
    ) -> None:
        await db.executemany(
            "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, "
            "response_body, error, request_headers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.delivery_id, r.attempt, r.started_at, r.duration_ms, r.status_code,
                 r.response_body, r.error, json.dumps(r.request_headers))
                for r in results
            ],
        )
        held = await self._held_endpoints(db)
        await db.executemany(
            "UPDATE deliveries SET status = ?, attempts = attempts + ?, next_attempt_at = ?, "
            "lease_until = NULL, updated_at = ?, last_attempt_at = ?, last_status_code = ?, "
            "last_error = ? WHERE id = ?",
            [
                (DeliveryStatus.HELD if r.endpoint in held and r.new_status in WAITING_STATUSES
                 else r.new_status, 1 if r.counts else 0, r.next_attempt_at,
                 r.started_at + r.duration_ms / 1000, r.started_at, r.status_code, r.error,
                 r.delivery_id)
                for r in results
            ],
        )
        # Endpoint health: one row per endpoint touched, whatever the batch size.
        latest: dict[str, AttemptResult] = {}
        for r in results:
            if r.counts:
                latest[r.endpoint] = r
        for name, r in latest.items():
            ok = r.new_status == DeliveryStatus.DELIVERED
            await db.execute(
                "INSERT INTO endpoint_state (name, last_attempt_at, last_success_at, "
                "failing_since) VALUES (?1, ?2, CASE WHEN ?3 THEN ?2 END, "
                "CASE WHEN ?3 THEN NULL ELSE ?2 END) "
                "ON CONFLICT (name) DO UPDATE SET last_attempt_at = ?2, "
                "last_success_at = CASE WHEN ?3 THEN ?2 ELSE last_success_at END, "
                "failing_since = CASE WHEN ?3 THEN NULL ELSE COALESCE(failing_since, ?2) END",
                (name, r.started_at, ok),
            )
        for r in results:
            if r.disable_reason:
                await self._disable(db, r.endpoint, r.disable_reason, r.started_at)

    async def _disable(
        self, db: aiosqlite.Connection, name: str, reason: str, now: float
    ) -> None:
        await db.execute(
            "INSERT INTO endpoint_state (name, disabled_reason, disabled_at) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (name) DO UPDATE SET disabled_reason = ?2, disabled_at = ?3",
            (name, reason, now),
        )
        await db.execute(
            "UPDATE deliveries SET status = 'held', updated_at = ? "
            "WHERE endpoint = ? AND status IN ('pending', 'scheduled')",
            (now, name),
        )

    async def _call(self, fn: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        result: T = await self._submit(_CallJob(loop.create_future(), fn))
        return result

    # -- Storage interface -------------------------------------------------------------

    async def ingest(self, events: Sequence[NewEvent]) -> list[IngestOutcome]:
        loop = asyncio.get_running_loop()
        outcome: list[IngestOutcome] = await self._submit(
            _IngestJob(loop.create_future(), events)
        )
        return outcome

    async def record(self, results: Sequence[AttemptResult]) -> None:
        if results:
            loop = asyncio.get_running_loop()
            await self._submit(_RecordJob(loop.create_future(), results))

    async def claim(
        self, endpoint: str, limit: int, now: float, lease_s: float, fifo: bool = False
    ) -> list[ClaimedDelivery]:
        async def run(db: aiosqlite.Connection) -> list[ClaimedDelivery]:
            if fifo:
                rows = await _fetchall(db,
                    "SELECT d.id, d.event_id, d.event_type, e.body, d.attempts, d.status, "
                    "d.next_attempt_at FROM deliveries d JOIN events e ON e.id = d.event_id "
                    "WHERE d.endpoint = ? AND d.status IN ('pending', 'scheduled', 'delivering') "
                    "ORDER BY d.id LIMIT 1",
                    (endpoint,),
                )
                rows = [r for r in rows if r[5] != "delivering" and r[6] <= now]
            else:
                rows = await _fetchall(db,
                    "SELECT d.id, d.event_id, d.event_type, e.body, d.attempts FROM deliveries d "
                    "JOIN events e ON e.id = d.event_id WHERE d.endpoint = ? "
                    "AND d.status IN ('pending', 'scheduled') AND d.next_attempt_at <= ? "
                    "ORDER BY d.next_attempt_at LIMIT ?",
                    (endpoint, now, limit),
                )
            if not rows:
                return []
            lease_until = now + lease_s
            await db.executemany(
                "UPDATE deliveries SET status = 'delivering', lease_until = ?, updated_at = ? "
                "WHERE id = ?",
                [(lease_until, now, row[0]) for row in rows],
            )
            return [
                ClaimedDelivery(row[0], row[1], row[2], endpoint, bytes(row[3]), row[4] + 1,
                                lease_until)
                for row in rows
            ]

        return await self._call(run)

    async def next_due_at(self, endpoint: str, fifo: bool = False) -> float | None:
        db = self._read()
        try:
            if fifo:
                rows = await _fetchall(db,
                    "SELECT status, next_attempt_at FROM deliveries WHERE endpoint = ? "
                    "AND status IN ('pending', 'scheduled', 'delivering') ORDER BY id LIMIT 1",
                    (endpoint,),
                )
                if not rows or rows[0][0] == "delivering":
                    return None
                return float(rows[0][1])
            rows = await _fetchall(db,
                "SELECT min(next_attempt_at) FROM deliveries WHERE endpoint = ? "
                "AND status IN ('pending', 'scheduled')",
                (endpoint,),
            )
        except sqlite3.Error as exc:
            raise wrap_error(exc) from exc
        value = next(iter(rows))[0] if rows else None
        return None if value is None else float(value)

    async def release(self, delivery_ids: Sequence[int], now: float) -> None:
        if not delivery_ids:
            return

        async def run(db: aiosqlite.Connection) -> None:
            await db.executemany(
                "UPDATE deliveries SET status = 'pending', lease_until = NULL, "
                "next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'delivering'",
                [(now, now, i) for i in delivery_ids],
            )

        await self._call(run)

    async def recover_interrupted(self, now: float) -> int:
        async def run(db: aiosqlite.Connection) -> int:
            rows = await _fetchall(db,
                "SELECT id, attempts FROM deliveries WHERE status = 'delivering'"
            )
            await self._requeue_interrupted(db, [(r[0], r[1]) for r in rows], now,
                                            "interrupted: the relay stopped during this attempt")
            return len(rows)

        return await self._call(run)

    async def reap_expired_leases(self, now: float) -> int:
        async def run(db: aiosqlite.Connection) -> int:
            rows = await _fetchall(db,
                "SELECT id, attempts FROM deliveries WHERE status = 'delivering' "
                "AND lease_until < ?",
                (now,),
            )
            await self._requeue_interrupted(db, [(r[0], r[1]) for r in rows], now,
                                            "interrupted: the attempt's lease expired")
            return len(rows)

        return await self._call(run)

    async def _requeue_interrupted(
        self, db: aiosqlite.Connection, rows: Iterable[tuple[int, int]], now: float, error: str
    ) -> None:
        """Log the lost attempt (it does not count against the schedule) and make it due."""
        rows = list(rows)
        if not rows:
            return
        await db.executemany(
            "INSERT INTO attempts (delivery_id, attempt, started_at, error) VALUES (?, ?, ?, ?)",
            [(i, attempts + 1, now, error) for i, attempts in rows],
        )
        await db.executemany(
            "UPDATE deliveries SET status = 'pending', lease_until = NULL, next_attempt_at = ?, "
            "updated_at = ? WHERE id = ?",
            [(now, now, i) for i, _ in rows],
        )

    async def held_endpoints(self) -> dict[str, str]:
        try:
            rows = await _fetchall(self._read(),
                "SELECT name, paused, disabled_reason FROM endpoint_state "
                "WHERE paused = 1 OR disabled_reason IS NOT NULL"
            )
        except sqlite3.Error as exc:
            raise wrap_error(exc) from exc
        return {row[0]: row[2] or "paused" for row in rows}

    async def check_writable(self) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO endpoint_state (name) VALUES ('__readyz__') "
                "ON CONFLICT (name) DO NOTHING"
            )
            await db.execute("DELETE FROM endpoint_state WHERE name = '__readyz__'")

        await self._call(run)

    def _read(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StorageUnavailable("the store is closed")
        return self._reader
