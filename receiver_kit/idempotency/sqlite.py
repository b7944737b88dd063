"""An idempotency store in a SQLite file, shared by the processes of one host.

Every claim runs in a ``BEGIN IMMEDIATE`` transaction: SQLite's write lock is
taken before the row is read, so two processes (or threads) can never both
see "no claim" and both take it. The database is in WAL mode with a busy
timeout, so concurrent writers queue for the lock instead of failing. Each
thread (and each process after a fork) gets its own connection, because a
SQLite connection must not be shared across threads or inherited by a child.

``synchronous=NORMAL``: a commit survives a process crash but may be lost on
power failure; the cost of such a loss is one event processed twice.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from receiver_kit.exceptions import ConfigurationError, StoreError
from receiver_kit.idempotency.base import (
    DEFAULT_LEASE_S,
    DEFAULT_TTL_S,
    ClaimResult,
    ClaimStatus,
    IdempotencyStore,
    check_claim,
    check_event_id,
    new_token,
)

__all__ = ["SQLiteStore"]

_PURGE_EVERY = 512

SCHEMA = """
CREATE TABLE IF NOT EXISTS receiver_kit_idempotency (
    event_id   TEXT PRIMARY KEY,
    state      TEXT NOT NULL CHECK (state IN ('processing', 'done')),
    token      TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receiver_kit_idempotency_expires
    ON receiver_kit_idempotency (expires_at);
"""
SELECT_KEY = "SELECT state, token, expires_at FROM receiver_kit_idempotency WHERE event_id = ?"
UPSERT_KEY = (
    "INSERT INTO receiver_kit_idempotency (event_id, state, token, expires_at) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET "
    "state = excluded.state, token = excluded.token, expires_at = excluded.expires_at"
)
DELETE_CLAIM = (
    "DELETE FROM receiver_kit_idempotency "
    "WHERE event_id = ? AND token = ? AND state = 'processing'"
)
PURGE_EXPIRED = "DELETE FROM receiver_kit_idempotency WHERE expires_at <= ?"


class SQLiteStore(IdempotencyStore):
    """Claims in a SQLite database file; safe across threads and processes.

    The file (and its table) is created on first use, not at construction,
    so building the store at import time has no side effect. `clock` returns
    unix time and must agree between the processes sharing the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease_s: float = DEFAULT_LEASE_S,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(lease_s=lease_s, ttl_s=ttl_s)
        text = os.fspath(path)
        if not text or text == ":memory:" or text.startswith("file:"):
            raise ConfigurationError(
                "SQLiteStore needs a file path shared by the workers; "
                "use MemoryStore for an in-process store"
            )
        self.path = Path(text)
        self._clock = clock
        self._busy_timeout_s = float(busy_timeout_s)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_pid = os.getpid()
        self._generation = 0
        self._initialised_pid: int | None = None
        self._claims = 0

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, lease_s={self.lease_s:g}, ttl_s={self.ttl_s:g})"

    def claim(self, event_id: str) -> ClaimResult:
        check_event_id(event_id)
        token = new_token()
        with self._transaction() as conn:
            now = self._clock()
            self._claims += 1
            if self._claims % _PURGE_EVERY == 0:
                conn.execute(PURGE_EXPIRED, (now,))
            row = conn.execute(SELECT_KEY, (event_id,)).fetchone()
            if row is not None and row[2] > now:
                status = ClaimStatus.DUPLICATE if row[0] == "done" else ClaimStatus.IN_PROGRESS
                return ClaimResult(event_id, status)
            conn.execute(UPSERT_KEY, (event_id, "processing", token, now + self.lease_s))
        return ClaimResult(event_id, ClaimStatus.ACQUIRED, token)

    def complete(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        with self._transaction() as conn:
            now = self._clock()
            row = conn.execute(SELECT_KEY, (claim.event_id,)).fetchone()
            if row is not None and row[2] > now and row[1] != token:
                return False
            conn.execute(UPSERT_KEY, (claim.event_id, "done", token, now + self.ttl_s))
        return True

    def release(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        try:
            cursor = self._connection().execute(DELETE_CLAIM, (claim.event_id, token))
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite idempotency store failed: {exc}", claim.event_id) from exc
        return cursor.rowcount > 0

    def purge(self) -> int:
        """Delete expired keys now; returns how many. Claims also purge periodically."""
        with self._transaction() as conn:
            return conn.execute(PURGE_EXPIRED, (self._clock(),)).rowcount

    def close(self) -> None:
        """Close every connection this store opened, in any thread."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._generation += 1
        for conn in connections:
            with suppress(sqlite3.Error):  # closing is best effort
                conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite idempotency store failed: {exc}") from exc
        try:
            yield conn
        except BaseException as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"SQLite idempotency store failed: {exc}") from exc
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite idempotency store failed: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == pid and local.generation == self._generation:
            return conn
        try:
            conn = self._connect(pid)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite idempotency store {self.path}: {exc}") from exc
        local.conn, local.pid, local.generation = conn, pid, self._generation
        return conn

    def _connect(self, pid: int) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # used by one thread; closed by close() from any
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._lock:
            if self._initialised_pid != pid:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(SCHEMA)
                self._initialised_pid = pid
            if self._connections_pid != pid:
                # A forked child must not close the parent's connections.
                self._connections, self._connections_pid = [], pid
            self._connections.append(conn)
        return conn
