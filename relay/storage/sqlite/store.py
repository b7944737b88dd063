"""SQLite storage: one file in WAL mode, written by one process, read by many.

SQLite allows one writer at a time, so every write goes to a single writer,
which runs in a process of its own (`writer.py` explains why not a
thread). Callers await a future; the writes queued during
one turn of the event loop travel to the writer together (a write finding the
writer idle leaves at once), and the writer runs everything waiting in its
pipe as one transaction, so a burst of 64 concurrent ingests costs one
`fsync`, not 64. `synchronous=FULL` makes each
ingest commit durable against power loss, which is what a 202 promises.

Reads (the next due time of an endpoint, admin queries) use a connection of
this process, which WAL lets run beside the writer.

A lock file next to the database keeps a second relay process off the same
file: two writers would each believe they own the deliveries in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import aiosqlite
import structlog

from relay.exceptions import StorageUnavailable, StoreLocked
from relay.models import AttemptResult, ClaimedDelivery, IngestOutcome, NewEvent
from relay.storage.base import Storage
from relay.storage.sqlite.errors import rebuild_error, wrap_error
from relay.storage.sqlite.frames import Job, event_fields, pack, result_fields, unpack_frames
from relay.storage.sqlite.operations import OperationsMixin
from relay.storage.sqlite.ops import (
    CHECK_WRITABLE,
    CLAIM,
    INGEST,
    REAP_EXPIRED_LEASES,
    RECORD,
    RECOVER_INTERRUPTED,
    RELEASE,
    SYNC_ENDPOINTS,
    Op,
)
from relay.storage.sqlite.queries import FIFO_HEAD_ID

__all__ = ["SQLiteStorage"]

log = structlog.get_logger("relay.storage")
P = ParamSpec("P")
R = TypeVar("R")

RESTART_DELAY_S = 0.5


async def _fetchall(db: aiosqlite.Connection, sql: str, params: Any = ()) -> list[Any]:
    """One thread hop for a whole result set (cursor iteration costs one per row batch)."""
    return list(await db.execute_fetchall(sql, params))


class _WriterPipe(asyncio.Protocol):
    """Reads the writer's answers off its stdout and settles the waiting futures."""

    def __init__(self, store: SQLiteStorage) -> None:
        self.store = store
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for batch_id, ok, payload in unpack_frames(self.buffer):
            self.store._answer(batch_id, ok, payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.store._writer_gone()


class SQLiteStorage(OperationsMixin, Storage):
    """The embedded default backend; see the module docstring for the design."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._reader: aiosqlite.Connection | None = None
        self._lock_file: IO[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._to_writer: asyncio.WriteTransport | None = None
        self._from_writer: asyncio.BaseTransport | None = None
        self._writer_exited: asyncio.Future[None] | None = None
        self._outbox: list[Job] = []
        self._outbox_futures: list[asyncio.Future[Any]] = []
        self._waiting: dict[int, list[asyncio.Future[Any]]] = {}
        self._batch_id = 0
        self._closing = False
        self._restarting: asyncio.Task[None] | None = None
        self._open = False  # opened and not closing: a writer that exits is restarted

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            await self._start_writer()
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
            await self._reader.execute("PRAGMA busy_timeout=5000")
            await self._reader.execute("PRAGMA query_only=ON")
        except BaseException as exc:
            await self._stop_writer()
            if self._reader is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await self._reader.close()
                self._reader = None
            self._release_lock()
            if isinstance(exc, sqlite3.Error):
                raise wrap_error(exc) from exc
            raise
        self._closing = False
        self._open = True

    async def _start_writer(self) -> None:
        """Spawn the writer process; it migrates the schema, then says it is ready."""
        loop = asyncio.get_running_loop()
        # Popen returns as soon as the child is forked: no need for a thread.
        process = subprocess.Popen(  # noqa: ASYNC220, S603 (our own module, no shell)
            [sys.executable, "-m", "relay.storage.sqlite.writer", str(self.path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        self._process = process
        self._writer_exited = loop.create_future()
        ready = loop.create_future()
        self._waiting[0] = [ready]
        self._from_writer, _ = await loop.connect_read_pipe(
            lambda: _WriterPipe(self), process.stdout)
        self._to_writer, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
        for name in await ready:
            log.info("schema_migrated", file=name, version=int(name.split("_", 1)[0]))

    async def _stop_writer(self) -> None:
        """Close the writer's stdin (it finishes what it holds, then exits) and reap it."""
        if self._to_writer is not None:
            self._to_writer.close()
            self._to_writer = None
        if self._writer_exited is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._writer_exited), 30)
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            await asyncio.get_running_loop().run_in_executor(None, process.wait)

    def _writer_gone(self) -> None:
        """The writer's stdout closed: it exited, on request or not."""
        process = self._process
        code = process.poll() if process is not None else None
        error = StorageUnavailable(
            f"the SQLite writer process exited (code {code}); the write was not confirmed")
        for futures in self._waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self._waiting.clear()
        for transport in (self._from_writer, self._to_writer):
            if transport is not None:
                transport.close()
        self._from_writer = self._to_writer = None
        if self._writer_exited is not None and not self._writer_exited.done():
            self._writer_exited.set_result(None)
        if self._open and not self._closing:
            # Killed (OOM, an operator): writes answer 503 until a new one is up.
            log.error("sqlite_writer_exited", code=code, restart_in_s=RESTART_DELAY_S)
            self._restarting = asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        await asyncio.sleep(RESTART_DELAY_S)
        if self._closing:
            return
        process, self._process = self._process, None
        if process is not None:
            await asyncio.get_running_loop().run_in_executor(None, process.wait)
        try:
            await self._start_writer()
        except Exception as exc:
            log.error("sqlite_writer_restart_failed", error=str(exc))
            await self._stop_writer()
            self._restarting = asyncio.get_running_loop().create_task(self._restart())
            return
        log.info("sqlite_writer_restarted")

    async def close(self) -> None:
        self._closing = True
        self._open = False
        if self._restarting is not None:
            self._restarting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._restarting
            self._restarting = None
        self._flush()
        pending = [f for futures in self._waiting.values() for f in futures]
        if pending:
            await asyncio.wait(pending)  # the writer answers everything it was sent
        await self._stop_writer()
        if self._reader is not None:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await self._reader.close()
            self._reader = None
        self._release_lock()

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

    # -- the writer --------------------------------------------------------------------

    def _write(self, op: Op[P, R], *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[R]:
        """Queue one write for the writer, which gets it at once if it has nothing else.

        `op` names the write and types its arguments and answer (`ops.py`);
        they travel positionally.

        When the writer holds none of our writes it would sit idle: this write
        leaves now and its round starts at once. Otherwise the writes of this
        loop turn gather and leave together at its end; the writer joins every
        batch waiting in its pipe into its next round anyway. (Sending at once
        when idle was worth about 4 % of ingest throughput.)
        """
        if self._closing:
            raise StorageUnavailable("the store is closed")
        if self._to_writer is None:
            raise StorageUnavailable("the SQLite writer process is restarting")
        if kwargs:
            raise TypeError(f"{op.name}: the writer's ops take positional arguments only")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._outbox.append((op.name, args))
        self._outbox_futures.append(future)
        if not self._waiting:
            self._flush()
        elif len(self._outbox) == 1:
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        if not self._outbox:
            return
        jobs, futures = self._outbox, self._outbox_futures
        self._outbox, self._outbox_futures = [], []
        if self._to_writer is None or self._to_writer.is_closing():
            error = StorageUnavailable("the SQLite writer process is not running")
            for future in futures:
                future.set_exception(error)
            return
        self._batch_id += 1
        self._waiting[self._batch_id] = futures
        self._to_writer.write(pack((self._batch_id, jobs)))

    def _answer(self, batch_id: int, ok: bool, payload: Any) -> None:
        futures = self._waiting.pop(batch_id, ())
        if ok:
            if batch_id == 0:
                payload = [payload]
            for future, value in zip(futures, payload, strict=True):
                if not future.done():
                    future.set_result(value)
            return
        kind, _, message = payload
        if kind == "crash":
            log.error("storage_round_crashed", traceback=message)
        error = rebuild_error(*payload)
        if batch_id:
            log.warning("storage_write_failed", error=str(error), jobs=len(futures))
        for future in futures:
            if not future.done():
                future.set_exception(error)

    # -- Storage interface -------------------------------------------------------------

    async def ingest(self, events: Sequence[NewEvent]) -> list[IngestOutcome]:
        answer = await self._write(INGEST, [event_fields(e) for e in events])
        if answer is None:  # every event was new
            return [IngestOutcome(e.id, e.type, len(e.endpoints)) for e in events]
        return [IngestOutcome(*fields) for fields in answer]

    async def record(self, results: Sequence[AttemptResult]) -> dict[str, str]:
        if not results:
            return {}
        return await self._write(RECORD, [result_fields(r) for r in results])

    async def claim(
        self, endpoint: str, limit: int, now: float, lease_s: float, fifo: bool = False,
        *, max_in_flight: int | None = None, rate_per_s: float | None = None,
    ) -> list[ClaimedDelivery]:
        rows = await self._write(CLAIM, endpoint, limit, now, lease_s, fifo)
        return [ClaimedDelivery(*row) for row in rows]

    async def next_due_at(self, endpoint: str, fifo: bool = False) -> float | None:
        reader = self._read()
        try:
            if fifo:
                rows = await _fetchall(reader,
                    "SELECT status, next_attempt_at FROM deliveries "  # noqa: S608
                    f"WHERE id = {FIFO_HEAD_ID}", (endpoint,),
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

    async def release(self, claims: Sequence[tuple[int, float]], now: float, *,
                      hold: bool = False) -> None:
        if claims:
            await self._write(RELEASE, list(claims), now, hold)

    async def recover_interrupted(self, now: float) -> int:
        return await self._write(RECOVER_INTERRUPTED, now)

    async def reap_expired_leases(self, now: float) -> int:
        return await self._write(REAP_EXPIRED_LEASES, now)

    async def sync_endpoints(self, active: Sequence[str], now: float,
                             only: Sequence[str] | None = None) -> None:
        await self._write(SYNC_ENDPOINTS, list(active), now, None if only is None else list(only))

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
        await self._write(CHECK_WRITABLE)

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
