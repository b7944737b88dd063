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
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, TypeVar

import aiosqlite
import structlog

from relay.exceptions import StorageError, StorageUnavailable, StoreLocked
from relay.models import (
    WAITING_STATUSES,
    AttemptRecord,
    AttemptResult,
    ClaimedDelivery,
    DeliveryStatus,
    IngestOutcome,
    NewEvent,
)
from relay.storage.base import (
    DeliveryFilter,
    DeliveryRecord,
    EndpointStats,
    EventRecord,
    PurgeResult,
    QueueStats,
    RetryOutcome,
    Storage,
    disable_after_reason,
)
from relay.storage.queries import (
    ATTEMPT_COLUMNS,
    COMMIT_SKEW_S,
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    MAX_ID,
    QUEUED_STATUSES,
    READYZ_ROW,
    UNFINISHED,
    attempt_record,
    delivery_list_query,
    delivery_record,
    endpoint_stats,
    event_record,
)

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


def _rows(db: sqlite3.Connection, sql: str, params: Any = ()) -> list[Any]:
    """The writer's own reads, inside its transaction, on its thread."""
    return db.execute(sql, params).fetchall()


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
    fn: Callable[[sqlite3.Connection], Any] | None = None
    durable: bool = True


class SQLiteStorage(Storage):
    """The embedded default backend; see the module docstring for the design."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._writer: sqlite3.Connection | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._synchronous_full = True
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
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        try:
            self._writer = await self._in_writer(self._connect_writer)
            await self._in_writer(self._migrate, self._writer)
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
            await self._reader.execute("PRAGMA busy_timeout=5000")
            await self._reader.execute("PRAGMA query_only=ON")
        except sqlite3.Error as exc:
            await self._close_connections()
            self._release_lock()
            raise wrap_error(exc) from exc
        self._closing = False
        self._committer = asyncio.create_task(self._commit_loop(), name="sqlite-committer")

    def _connect_writer(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA busy_timeout=2000",  # an outside lock (backup, shell) answers 503 fast
            "PRAGMA cache_size=-8000",  # 8 MB: the hot pages; RSS stays flat once full
            "PRAGMA temp_store=MEMORY",
        ):
            db.execute(pragma)
        return db

    async def _in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the writer's thread: one hop, however many statements it runs."""
        assert self._writer_thread is not None
        return await asyncio.get_running_loop().run_in_executor(self._writer_thread, fn, *args)

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
        if self._reader is not None:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await self._reader.close()
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._in_writer(self._writer.close)
        if self._writer_thread is not None:
            self._writer_thread.shutdown(wait=True)
        self._reader = self._writer = self._writer_thread = None

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

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Apply the numbered files of schema/sqlite/ that this database has not seen."""
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "applied_at REAL NOT NULL)"
        )
        rows = _rows(db, "SELECT version FROM schema_version")
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
            db.executescript(
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
        try:
            results = await self._in_writer(self._round, jobs)
        except Exception as exc:
            error: BaseException = wrap_error(exc) if isinstance(exc, sqlite3.Error) else exc
            if isinstance(error, StorageError):
                log.warning("storage_write_failed", error=str(error), jobs=len(jobs))
            else:
                log.error("storage_round_crashed", jobs=len(jobs), exc_info=exc)
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        for job, value in results:
            if not job.future.done():
                job.future.set_result(value)

    def _round(self, jobs: list[_Job]) -> list[tuple[_Job, Any]]:
        """One transaction for every queued job, on the writer's thread.

        The whole round is one call so that the event loop pays one thread hop
        per commit, not one per statement; SQLite releases the GIL while it
        works, so ingest keeps parsing requests meanwhile.
        """
        db = self._writer
        assert db is not None
        ingests = [j for j in jobs if isinstance(j, _IngestJob)]
        records = [j for j in jobs if isinstance(j, _RecordJob)]
        calls = [j for j in jobs if isinstance(j, _CallJob)]
        results: list[tuple[_Job, Any]] = []
        durable = bool(ingests) or any(call.durable for call in calls)
        if durable != self._synchronous_full:
            # Only ingest (and operator actions) must survive a power loss when
            # their call returns. Claims and attempt results may not: losing
            # them means attempting a delivery again, which at-least-once
            # allows. A durable commit fsyncs the whole WAL, so it also makes
            # every earlier commit durable, in order.
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._synchronous_full = durable
        try:
            db.execute("BEGIN IMMEDIATE")
            if ingests:
                results.extend(zip(ingests, self._apply_ingests(db, ingests), strict=True))
            if records:
                disabled = self._apply_records(db, [r for job in records for r in job.results])
                results.extend((job, disabled) for job in records)
            for call in calls:
                assert call.fn is not None
                results.append((call, call.fn(db)))
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        return results

    def _apply_ingests(
        self, db: sqlite3.Connection, jobs: list[_IngestJob]
    ) -> list[list[IngestOutcome]]:
        keyed = list({e.id for job in jobs for e in job.events if e.keyed})
        stored: dict[str, tuple[bytes, str, int]] = {}
        for start in range(0, len(keyed), _CHUNK):
            chunk = keyed[start:start + _CHUNK]
            rows = _rows(db,
                f"SELECT id, body, type, delivery_count FROM events WHERE id IN "  # noqa: S608
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                stored[row[0]] = (bytes(row[1]), row[2], row[3])
        event_rows: list[tuple[str, str, bytes, float, int]] = []
        delivery_rows: list[tuple[str, str, str, str, float, float, float]] = []
        held = self._held_endpoints(db)
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
            db.executemany(
                "INSERT INTO events (id, type, body, received_at, delivery_count) "
                "VALUES (?, ?, ?, ?, ?)",
                event_rows,
            )
        if delivery_rows:
            db.executemany(
                "INSERT INTO deliveries (event_id, endpoint, event_type, status, "
                "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                delivery_rows,
            )
        return outcomes

    def _held_endpoints(self, db: sqlite3.Connection) -> set[str]:
        rows = _rows(db,
            "SELECT name FROM endpoint_state WHERE paused = 1 OR disabled_reason IS NOT NULL"
        )
        return {row[0] for row in rows}

    def _apply_records(
        self, db: sqlite3.Connection, results: Sequence[AttemptResult]
    ) -> dict[str, str]:
        db.executemany(
            "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, "
            "response_body, error, request_headers) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.delivery_id, r.attempt, r.started_at, r.duration_ms, r.status_code,
                 r.response_body, r.error, json.dumps(r.request_headers))
                for r in results
            ],
        )
        held = self._held_endpoints(db)
        db.executemany(
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
        disabled: dict[str, str] = {}
        for name, r in latest.items():
            ok = r.new_status == DeliveryStatus.DELIVERED
            rows = _rows(db,
                "INSERT INTO endpoint_state (name, last_attempt_at, last_success_at, "
                "failing_since) VALUES (?1, ?2, CASE WHEN ?3 THEN ?2 END, "
                "CASE WHEN ?3 THEN NULL ELSE ?2 END) "
                "ON CONFLICT (name) DO UPDATE SET last_attempt_at = ?2, "
                "last_success_at = CASE WHEN ?3 THEN ?2 ELSE last_success_at END, "
                "failing_since = CASE WHEN ?3 THEN NULL ELSE COALESCE(failing_since, ?2) END "
                "RETURNING failing_since, disabled_reason",
                (name, r.started_at, ok),
            )
            failing_since, already_disabled = rows[0]
            if (not ok and already_disabled is None and r.disable_after_s is not None
                    and failing_since is not None
                    and r.started_at - failing_since >= r.disable_after_s):
                disabled[name] = disable_after_reason(failing_since, r.disable_after_s)
        for r in results:
            if r.disable_reason:
                disabled[r.endpoint] = r.disable_reason
        for name, reason in disabled.items():
            self._disable(db, name, reason, latest[name].started_at
                                if name in latest else time.time())
        return disabled

    def _disable(
        self, db: sqlite3.Connection, name: str, reason: str, now: float
    ) -> None:
        db.execute(
            "INSERT INTO endpoint_state (name, disabled_reason, disabled_at) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (name) DO UPDATE SET disabled_reason = ?2, disabled_at = ?3",
            (name, reason, now),
        )
        db.execute(
            "UPDATE deliveries SET status = 'held', updated_at = ? "
            "WHERE endpoint = ? AND status IN ('pending', 'scheduled')",
            (now, name),
        )

    async def _call(self, fn: Callable[[sqlite3.Connection], T], durable: bool = True) -> T:
        """Run `fn` in the next round; `durable=False` lets the round skip its fsync."""
        loop = asyncio.get_running_loop()
        result: T = await self._submit(_CallJob(loop.create_future(), fn, durable))
        return result

    # -- Storage interface -------------------------------------------------------------

    async def ingest(self, events: Sequence[NewEvent]) -> list[IngestOutcome]:
        loop = asyncio.get_running_loop()
        outcome: list[IngestOutcome] = await self._submit(
            _IngestJob(loop.create_future(), events)
        )
        return outcome

    async def record(self, results: Sequence[AttemptResult]) -> dict[str, str]:
        if not results:
            return {}
        loop = asyncio.get_running_loop()
        disabled: dict[str, str] = await self._submit(_RecordJob(loop.create_future(), results))
        return disabled

    async def claim(
        self, endpoint: str, limit: int, now: float, lease_s: float, fifo: bool = False,
        *, max_in_flight: int | None = None, rate_per_s: float | None = None,
    ) -> list[ClaimedDelivery]:
        def run(db: sqlite3.Connection) -> list[ClaimedDelivery]:
            if fifo:
                rows = _rows(db,
                    "SELECT d.id, d.event_id, d.event_type, e.body, d.attempts, d.status, "
                    "d.next_attempt_at FROM deliveries d JOIN events e ON e.id = d.event_id "
                    "WHERE d.endpoint = ? AND d.status IN ('pending', 'scheduled', 'delivering') "
                    "ORDER BY d.id LIMIT 1",
                    (endpoint,),
                )
                rows = [r for r in rows if r[5] != "delivering" and r[6] <= now]
            else:
                rows = _rows(db,
                    "SELECT d.id, d.event_id, d.event_type, e.body, d.attempts FROM deliveries d "
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
            return [
                ClaimedDelivery(row[0], row[1], row[2], endpoint, bytes(row[3]), row[4] + 1,
                                lease_until)
                for row in rows
            ]

        return await self._call(run, durable=False)

    async def next_due_at(self, endpoint: str, fifo: bool = False) -> float | None:
        reader = self._read()
        try:
            if fifo:
                rows = await _fetchall(reader,
                    "SELECT status, next_attempt_at FROM deliveries WHERE endpoint = ? "
                    "AND status IN ('pending', 'scheduled', 'delivering') ORDER BY id LIMIT 1",
                    (endpoint,),
                )
                if not rows or rows[0][0] == "delivering":
                    return None
                return float(rows[0][1])
            rows = await _fetchall(reader,
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

        def run(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE deliveries SET status = 'pending', lease_until = NULL, "
                "next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'delivering'",
                [(now, now, i) for i in delivery_ids],
            )

        await self._call(run, durable=False)

    async def recover_interrupted(self, now: float) -> int:
        def run(db: sqlite3.Connection) -> int:
            rows = _rows(db,
                "SELECT id, attempts FROM deliveries WHERE status = 'delivering'"
            )
            self._requeue_interrupted(db, [(r[0], r[1]) for r in rows], now,
                                            "interrupted: the relay stopped during this attempt")
            return len(rows)

        return await self._call(run)

    async def reap_expired_leases(self, now: float) -> int:
        def run(db: sqlite3.Connection) -> int:
            rows = _rows(db,
                "SELECT id, attempts FROM deliveries WHERE status = 'delivering' "
                "AND lease_until < ?",
                (now,),
            )
            self._requeue_interrupted(db, [(r[0], r[1]) for r in rows], now,
                                            "interrupted: the attempt's lease expired")
            return len(rows)

        return await self._call(run, durable=False)

    def _requeue_interrupted(
        self, db: sqlite3.Connection, rows: Iterable[tuple[int, int]], now: float, error: str
    ) -> None:
        """Log the lost attempt (it does not count against the schedule) and make it due."""
        rows = list(rows)
        if not rows:
            return
        db.executemany(
            "INSERT INTO attempts (delivery_id, attempt, started_at, error) VALUES (?, ?, ?, ?)",
            [(i, attempts + 1, now, error) for i, attempts in rows],
        )
        db.executemany(
            "UPDATE deliveries SET status = 'pending', lease_until = NULL, next_attempt_at = ?, "
            "updated_at = ? WHERE id = ?",
            [(now, now, i) for i, _ in rows],
        )

    async def sync_endpoints(self, active: Sequence[str], now: float) -> None:
        def run(db: sqlite3.Connection) -> None:
            marks = ",".join("?" * len(active))
            db.execute(
                "UPDATE deliveries SET status = 'held', updated_at = ? "  # noqa: S608
                f"WHERE status IN ('pending', 'scheduled') AND endpoint NOT IN ({marks})",
                (now, *active),
            )
            held = self._held_endpoints(db)
            released = [name for name in active if name not in held]
            db.executemany(
                "UPDATE deliveries SET status = CASE WHEN attempts > 0 THEN 'scheduled' "
                "ELSE 'pending' END, updated_at = ? WHERE endpoint = ? AND status = 'held'",
                [(now, name) for name in released],
            )

        await self._call(run)

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
        def run(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO endpoint_state (name) VALUES ('__readyz__') "
                "ON CONFLICT (name) DO NOTHING"
            )
            db.execute("DELETE FROM endpoint_state WHERE name = '__readyz__'")

        await self._call(run)

    def _read(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StorageUnavailable("the store is closed")
        return self._reader

    async def _query(self, sql: str, params: Any = ()) -> list[Any]:
        """A read on the reader connection, driver errors wrapped."""
        try:
            return await _fetchall(self._read(), sql, params)
        except sqlite3.Error as exc:
            raise wrap_error(exc) from exc

    # -- operations: admin API, metrics, retention ---------------------------------------

    async def list_deliveries(self, where: DeliveryFilter, limit: int) -> list[DeliveryRecord]:
        low_id = high_id = None
        if where.since is not None:
            # A delivery created before since - skew was committed before any created
            # at or after since, so its id is a safe exclusive lower bound.
            rows = await self._query(
                "SELECT id FROM deliveries WHERE created_at < ? ORDER BY created_at DESC LIMIT 1",
                (where.since - COMMIT_SKEW_S,),
            )
            low_id = rows[0][0] if rows else None
        if where.until is not None:
            rows = await self._query(
                "SELECT id FROM deliveries WHERE created_at > ? ORDER BY created_at LIMIT 1",
                (where.until + COMMIT_SKEW_S,),
            )
            high_id = rows[0][0] if rows else None
        sql, params = delivery_list_query(where, limit, low_id, high_id)
        return [delivery_record(row) for row in await self._query(sql, params)]

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        rows = await self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?",  # noqa: S608
            (delivery_id,),
        )
        return delivery_record(rows[0]) if rows else None

    async def list_attempts(self, delivery_id: int) -> list[AttemptRecord]:
        rows = await self._query(
            f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = ? "  # noqa: S608
            "ORDER BY id", (delivery_id,))
        return [attempt_record(row) for row in rows]

    async def get_event(self, event_id: str) -> EventRecord | None:
        rows = await self._query(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))  # noqa: S608
        return event_record(rows[0]) if rows else None

    async def event_deliveries(self, event_id: str) -> list[DeliveryRecord]:
        rows = await self._query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = ? "  # noqa: S608
            "ORDER BY id",
            (event_id,),
        )
        return [delivery_record(row) for row in rows]

    async def endpoint_stats(self, name: str | None = None) -> dict[str, EndpointStats]:
        async def fetch(sql: str, params: list[Any]) -> list[Any]:
            return await self._query(sql, params)

        return await endpoint_stats(fetch, name)

    async def pause_endpoint(self, name: str, now: float) -> int:
        def run(db: sqlite3.Connection) -> int:
            db.execute(
                "INSERT INTO endpoint_state (name, paused) VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET paused = 1",
                (name,),
            )
            cursor = db.execute(
                "UPDATE deliveries SET status = 'held', updated_at = ? "
                "WHERE endpoint = ? AND status IN ('pending', 'scheduled')",
                (now, name),
            )
            return cursor.rowcount

        return await self._call(run)

    async def resume_endpoint(self, name: str, now: float) -> int:
        def run(db: sqlite3.Connection) -> int:
            # A disable is lifted too, and with it the failing streak that caused it,
            # so `disable_after` counts afresh from the next failure.
            db.execute(
                "UPDATE endpoint_state SET paused = 0, disabled_reason = NULL, "
                "disabled_at = NULL, failing_since = CASE WHEN disabled_reason IS NULL "
                "THEN failing_since END WHERE name = ?",
                (name,),
            )
            cursor = db.execute(
                "UPDATE deliveries SET status = CASE WHEN attempts > 0 THEN 'scheduled' "
                "ELSE 'pending' END, next_attempt_at = COALESCE(next_attempt_at, ?1), "
                "updated_at = ?1 WHERE endpoint = ?2 AND status = 'held'",
                (now, name),
            )
            return cursor.rowcount

        return await self._call(run)

    async def recover_failed(self, endpoint: str, since: float, now: float) -> int:
        def run(db: sqlite3.Connection) -> int:
            status = "held" if endpoint in self._held_endpoints(db) else "scheduled"
            cursor = db.execute(
                "UPDATE deliveries SET status = ?, next_attempt_at = ?, updated_at = ? "
                "WHERE endpoint = ? AND status = 'failed' AND updated_at >= ?",
                (status, now, now, endpoint, since),
            )
            return cursor.rowcount

        return await self._call(run)

    async def retry_delivery(
        self, delivery_id: int, now: float
    ) -> tuple[RetryOutcome, DeliveryStatus | None]:
        def run(db: sqlite3.Connection) -> tuple[RetryOutcome, DeliveryStatus | None]:
            rows = _rows(db,
                "SELECT status, endpoint, attempts FROM deliveries WHERE id = ?", (delivery_id,)
            )
            if not rows:
                return "not_found", None
            status, endpoint, attempts = DeliveryStatus(rows[0][0]), rows[0][1], rows[0][2]
            if status == DeliveryStatus.DELIVERING:
                return "in_flight", status
            if endpoint in self._held_endpoints(db):
                new_status = DeliveryStatus.HELD
            else:
                new_status = DeliveryStatus.SCHEDULED if attempts else DeliveryStatus.PENDING
            db.execute(
                "UPDATE deliveries SET status = ?, next_attempt_at = ?, updated_at = ? "
                "WHERE id = ?",
                (new_status, now, now, delivery_id),
            )
            return "queued", status

        return await self._call(run)

    async def queue_stats(self, endpoints: Sequence[str]) -> QueueStats:
        failing_rows = await self._query(
            "SELECT name, failing_since FROM endpoint_state WHERE name != ?", (READYZ_ROW,)
        )
        names = sorted(set(endpoints) | {row[0] for row in failing_rows})
        depth: dict[tuple[str, str], int] = {}
        oldest: dict[str, float] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start:start + _CHUNK]
            rows = await self._query(
                "SELECT endpoint, status, count(*) FROM deliveries WHERE endpoint IN "  # noqa: S608
                f"({','.join('?' * len(chunk))}) AND status IN ('pending', 'scheduled', "
                "'delivering', 'held') GROUP BY endpoint, status",
                chunk,
            )
            for endpoint, status, count in rows:
                depth[(endpoint, status)] = count
        for name in names:
            if not any(depth.get((name, s)) for s in ("pending", "scheduled", "delivering")):
                continue
            rows = await self._query(
                "SELECT created_at FROM deliveries WHERE endpoint = ? "  # noqa: S608
                f"AND status IN {UNFINISHED} ORDER BY id LIMIT 1",
                (name,),
            )
            if rows:
                oldest[name] = rows[0][0]
        return QueueStats(
            depth={(n, s): depth.get((n, s), 0) for n in names for s in QUEUED_STATUSES},
            oldest_waiting_at=oldest,
            failing_since={row[0]: row[1] for row in failing_rows if row[1] is not None},
        )

    async def purge_finished(self, cutoff: float, after_id: int, limit: int) -> PurgeResult:
        def run(db: sqlite3.Connection) -> PurgeResult:
            # Deliveries created after cutoff + skew were committed after every one
            # created before cutoff: the walk can stop below the first of them.
            first_young = _rows(db,
                "SELECT id FROM deliveries WHERE created_at > ? ORDER BY created_at LIMIT 1",
                (cutoff + COMMIT_SKEW_S,),
            )
            stop = first_young[0][0] if first_young else MAX_ID
            rows = _rows(db,
                "SELECT id, event_id, status, updated_at FROM deliveries "
                "WHERE id > ? AND id < ? ORDER BY id LIMIT ?",
                (after_id, stop, limit),
            )
            if not rows:
                return PurgeResult(last_id=after_id, done=True)
            doomed = [(row[0], row[1]) for row in rows
                      if row[2] in ("delivered", "failed") and row[3] < cutoff]
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
                    "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
                    event_ids,
                )
                events = cursor.rowcount
            return PurgeResult(deliveries=len(doomed), attempts=attempts, events=events,
                               last_id=rows[-1][0], done=len(rows) < limit)

        return await self._call(run)

    async def purge_unrouted_events(self, cutoff: float, limit: int) -> int:
        def run(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events "
                "WHERE delivery_count = 0 AND received_at < ? ORDER BY received_at LIMIT ?)",
                (cutoff, limit),
            )
            return cursor.rowcount

        return await self._call(run)
