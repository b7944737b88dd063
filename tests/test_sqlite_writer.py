"""The SQLite writer process: group commit across the pipe, crashes, restarts, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relay.exceptions import StorageError, StorageUnavailable
from relay.models import NewEvent, new_event_id
from relay.storage.sqlite import SQLiteStorage
from relay.storage.sqlite.frames import event_fields, pack, unpack_frames
from relay.storage.sqlite.ops import INGEST, OPS, Batched
from relay.storage.sqlite.writes import WriteOps
from tests.support import RelayProcess, base_config, free_port


def event(key: str | None = None, endpoints: tuple[str, ...] = ("a",)) -> NewEvent:
    now = time.time()
    return NewEvent(key or new_event_id(now), "license.created",
                    b'{"type": "license.created"}', endpoints, now, key is not None)


def stored(path: Path) -> tuple[int, int]:
    db = sqlite3.connect(path)
    try:
        return (db.execute("SELECT count(*) FROM events").fetchone()[0],
                db.execute("SELECT count(*) FROM deliveries").fetchone()[0])
    finally:
        db.close()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


def test_frames_round_trip_and_wait_for_their_whole_payload() -> None:
    data = pack((1, [("ingest", ([b"x" * 70_000],), True)])) + pack((2, []))
    buffer = bytearray(data[:1000])
    assert unpack_frames(buffer) == []  # a partial frame stays in the buffer
    buffer += data[1000:]
    assert unpack_frames(buffer) == [(1, [("ingest", ([b"x" * 70_000],), True)]), (2, [])]
    assert buffer == b""


def test_every_write_is_in_the_op_table_under_its_own_name() -> None:
    """The writer finds a job's handler by the name that crossed the pipe: none may be missing."""
    public = {name for cls in WriteOps.__mro__[:-1] for name in vars(cls)
              if not name.startswith("_")}
    public -= {"held_endpoints", "deleted_endpoints", "forget_held",  # helpers, not writes
               "db"}
    assert set(OPS) == public
    for name, op in OPS.items():
        handler = op.run_all if isinstance(op, Batched) else op.run
        assert handler is getattr(WriteOps, name)


def test_concurrent_writes_share_batches_and_all_commit(tmp_path: Path) -> None:
    """Writes queued in one loop turn travel together; each gets its own answer."""
    path = tmp_path / "relay.db"

    async def scenario() -> list[int]:
        storage = SQLiteStorage(path)
        await storage.open()
        sizes: list[int] = []
        original = storage._flush

        def counting() -> None:
            sizes.append(len(storage._outbox))
            original()

        storage._flush = counting  # type: ignore[method-assign]
        try:
            outcomes = await asyncio.gather(*(storage.ingest([event()]) for _ in range(50)),
                                            storage.ingest([event("k1")]),
                                            storage.ingest([event("k1")]))
        finally:
            await storage.close()
        assert [o[0].duplicate for o in outcomes[-2:]] == [False, True]
        return sizes

    sizes = asyncio.run(scenario())
    assert sum(sizes) == 52
    assert max(sizes) > 1
    assert stored(path) == (51, 51)


def test_a_killed_writer_fails_its_writes_then_comes_back(tmp_path: Path) -> None:
    """SIGKILL the writer: waiting writes fail with 503's error, the next ones succeed."""
    path = tmp_path / "relay.db"

    async def scenario() -> None:
        storage = SQLiteStorage(path)
        await storage.open()
        try:
            await storage.ingest([event("before")])
            assert storage._process is not None
            storage._process.kill()
            async def until_refused() -> None:
                for _ in range(200):  # until the relay notices the writer is gone
                    await storage.ingest([event()])
                    await asyncio.sleep(0.01)

            with pytest.raises(StorageUnavailable):
                await until_refused()
            deadline = time.monotonic() + 20
            while True:
                try:
                    await storage.ingest([event("after")])
                    break
                except StorageUnavailable:
                    assert time.monotonic() < deadline, "the writer never came back"
                    await asyncio.sleep(0.1)
        finally:
            await storage.close()

    asyncio.run(scenario())
    db = sqlite3.connect(path)
    ids = {row[0] for row in db.execute("SELECT id FROM events")}
    db.close()
    assert {"before", "after"} <= ids
    assert db_ok(path)


def db_ok(path: Path) -> bool:
    db = sqlite3.connect(path)
    try:
        return bool(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
    finally:
        db.close()


def test_open_reports_a_schema_newer_than_the_relay(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
    db.execute("INSERT INTO schema_version VALUES (999, 0)")
    db.commit()
    db.close()

    async def scenario() -> None:
        storage = SQLiteStorage(path)
        with pytest.raises(StorageError, match="newer than this relay"):
            await storage.open()
        assert storage._process is None
        # The lock was released: a second attempt fails the same way, not as "in use".
        with pytest.raises(StorageError, match="newer than this relay"):
            await SQLiteStorage(path).open()

    asyncio.run(scenario())


def test_the_writer_ignores_sigint_and_exits_when_its_pipe_closes(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group; the writer must keep serving the relay."""
    process = subprocess.Popen(
        [sys.executable, "-m", "relay.storage.sqlite.writer", str(tmp_path / "relay.db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        buffer = bytearray()
        while not unpack_frames(buffer):  # the ready frame
            buffer += os.read(process.stdout.fileno(), 65536)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)
        # The fields as the store sends them, whatever columns an event gains.
        event = NewEvent(new_event_id(), "t.x", b"{}", ("a",), time.time(), False)
        process.stdin.write(pack((7, [(INGEST.name, ([event_fields(event)],))])))
        process.stdin.flush()
        answers: list[object] = []
        while not answers:
            answers = unpack_frames(buffer)
            if not answers:
                buffer += os.read(process.stdout.fileno(), 65536)
        assert answers == [(7, True, [None])]
        process.stdin.close()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:  # a failed assertion must not leave the writer running
            process.kill()
            process.wait()
        process.stdin.close()
        process.stdout.close()


def test_the_writer_exits_when_the_relay_is_killed(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "relay.yaml"
    config.write_text(base_config(port, tmp_path / "relay.db", "endpoints: []\n"))
    relay = RelayProcess(config, port, tmp_path / "relay.log").start()
    assert relay.proc is not None
    writers = children(relay.proc.pid)
    assert len(writers) == 1
    relay.kill()
    deadline = time.monotonic() + 10
    while alive(writers[0]):
        assert time.monotonic() < deadline, "the writer outlived the relay"
        time.sleep(0.05)
