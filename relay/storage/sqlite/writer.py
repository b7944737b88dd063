"""The SQLite backend's writer: a process of its own that makes every write.

Why a process and not a thread: Python's sqlite3 releases the GIL while
SQLite works, but takes it back after every statement, and a thread waiting
for the GIL behind a busy event loop waits up to the switch interval (5 ms)
each time. Measured at ingest under load, a writer thread spent two thirds of
its time waiting for the GIL, and the event loop sat idle waiting for the
writer. A process has its own GIL: the relay's event loop parses requests on
one core while this process commits on the other.

The relay sends batches of writes on this process's stdin, each naming an op
of `ops.py`, and reads the answers on its stdout (`frames.py`). Every batch
waiting in the pipe when a round starts joins that round: one transaction
and one fsync for all of them (group commit), up to MAX_EVENTS_PER_ROUND
events.

The process ignores SIGINT and SIGTERM (a Ctrl-C or a service manager signals
the whole group, and the relay still needs its writer to shut down cleanly)
and exits when its stdin closes, that is when the relay is gone.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sqlite3
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from relay.gc_tuning import tune_gc
from relay.storage.migrations import schema_scripts, too_new
from relay.storage.sqlite.errors import SchemaTooNew, describe_error
from relay.storage.sqlite.frames import Job, pack, unpack_frames
from relay.storage.sqlite.ops import BATCHED, INGEST, OPS, SINGLES
from relay.storage.sqlite.writes import WriteOps

__all__ = ["MAX_EVENTS_PER_ROUND", "Writer", "connect", "main", "migrate", "serve"]

MAX_EVENTS_PER_ROUND = 5000
# Reads of the pipe: small enough for malloc's heap (a 1 MiB read cost an mmap
# and an munmap every time), large enough for a round of ingests in one call.
_READ_SIZE = 1 << 16


# -- connection and schema ---------------------------------------------------------------


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    # Rounds come in a few hundred shapes (multi-row inserts of each size up to
    # 256 rows); the statement cache keeps them prepared.
    db = sqlite3.connect(path, isolation_level=None, cached_statements=1024)
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA busy_timeout=2000",  # an outside lock (backup, shell) answers 503 fast
        "PRAGMA cache_size=-8000",  # 8 MB: the hot pages; RSS stays flat once full
        "PRAGMA temp_store=MEMORY",
    ):
        db.execute(pragma)
    return db


def migrate(db: sqlite3.Connection, path: str | os.PathLike[str]) -> list[str]:
    """Apply the numbered files of schema/sqlite/ this database has not seen; return them."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "applied_at REAL NOT NULL)"
    )
    applied = {row[0] for row in db.execute("SELECT version FROM schema_version")}
    scripts = schema_scripts("sqlite")
    refusal = too_new(applied, scripts, str(path))
    if refusal is not None:
        raise SchemaTooNew(refusal)
    done = []
    for version, name, sql in scripts:
        if version in applied:
            continue
        db.executescript(
            f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO schema_version VALUES "
            f"({version}, {time.time()});\nCOMMIT;"
        )
        done.append(name)
    return done


# -- rounds ------------------------------------------------------------------------------


class Writer:
    """Makes rounds of writes: each round one transaction, its ops found in `ops.py`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.ops = WriteOps(db)
        self._synchronous_full = True

    def run_round(self, jobs: Sequence[Job]) -> list[Any]:
        """One transaction for all `jobs`; all of them commit, or none and this raises."""
        # Rounds of many small jobs are the hot path: these loops call nothing per job.
        db = self.db
        durable = any(OPS[job[0]].durable for job in jobs)
        if durable != self._synchronous_full:
            # Durable if any of its ops must be (ops.py says which). A durable
            # commit fsyncs the whole WAL, so it also makes every earlier
            # commit durable, in order.
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._synchronous_full = durable
        results: list[Any] = [None] * len(jobs)
        db.execute("BEGIN IMMEDIATE")
        try:
            for batched in BATCHED:
                indexes = [i for i, job in enumerate(jobs) if job[0] == batched.name]
                if indexes:
                    answers = batched.run_all(self.ops, [jobs[i][1][0] for i in indexes])
                    for i, answer in zip(indexes, answers, strict=True):
                        results[i] = answer
            for i, (name, args) in enumerate(jobs):
                if name in SINGLES:
                    results[i] = SINGLES[name].run(self.ops, *args)
            db.execute("COMMIT")
        except BaseException:
            self.ops.forget_held()
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        return results


# -- the process -------------------------------------------------------------------------


def _rounds(batches: list[Any]) -> Iterable[list[Any]]:
    """Group batches into rounds of at most MAX_EVENTS_PER_ROUND events (one batch may exceed)."""
    current: list[Any] = []
    events = 0
    for batch in batches:
        size = sum(len(args[0]) for name, args in batch[1] if name == INGEST.name)
        if current and events + size > MAX_EVENTS_PER_ROUND:
            yield current
            current, events = [], 0
        current.append(batch)
        events += size
    if current:
        yield current


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def serve(path: str, infd: int = 0, outfd: int = 1) -> int:
    try:
        db = connect(path)
        applied = migrate(db, path)
    except Exception as exc:  # reported to the relay, which raises it from open()
        _write_all(outfd, pack((0, False, describe_error(exc))))
        return 1
    _write_all(outfd, pack((0, True, applied)))
    writer = Writer(db)
    tune_gc()
    buffer = bytearray()
    while True:
        chunk = os.read(infd, _READ_SIZE)
        if not chunk:
            break  # the relay closed the pipe or died
        buffer += chunk
        # A full read may have left more waiting: it all joins the next round.
        while len(chunk) == _READ_SIZE and select.select([infd], [], [], 0)[0]:
            chunk = os.read(infd, _READ_SIZE)
            buffer += chunk
        replies: list[bytes] = []
        for batches in _rounds(unpack_frames(buffer)):
            jobs = [job for batch in batches for job in batch[1]]
            try:
                results = writer.run_round(jobs)
            except Exception as exc:
                error = describe_error(exc)
                replies.extend(pack((batch[0], False, error)) for batch in batches)
                continue
            start = 0
            for batch_id, batch_jobs in batches:
                replies.append(pack((batch_id, True, results[start:start + len(batch_jobs)])))
                start += len(batch_jobs)
        if replies:
            _write_all(outfd, b"".join(replies))
    db.close()
    return 0


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        sys.exit(serve(sys.argv[1]))
    except BrokenPipeError:
        sys.exit(0)  # the relay is gone


if __name__ == "__main__":
    main()
