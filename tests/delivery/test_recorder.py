"""The recorder: attempt outcomes stored in batches, retried while their lease lasts."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from relay.delivery.recorder import Finished, Recorder
from relay.models import AttemptResult, ClaimedDelivery, NewEvent
from relay.storage.sqlite import SQLiteStorage


def statuses(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT status FROM deliveries ORDER BY id")]
    finally:
        db.close()


async def claimed_deliveries(storage: SQLiteStorage, count: int,
                             lease_s: float = 60.0) -> list[ClaimedDelivery]:
    now = time.time()
    await storage.ingest([NewEvent(f"evt_{i}", "license.created", b"{}", ("sink",), now, True)
                          for i in range(count)])
    return await storage.claim("sink", count, now, lease_s)


def delivered(claimed: ClaimedDelivery) -> AttemptResult:
    return AttemptResult(claimed.id, "sink", claimed.attempt, time.time(), 1.0, 200, b"ok", None)


def with_store(path: Path, body: Callable[[SQLiteStorage], Awaitable[None]]) -> None:
    """Run `body` against an open SQLite store at `path`, closed afterwards."""

    async def scenario() -> None:
        storage = SQLiteStorage(path)
        await storage.open()
        try:
            await body(storage)
        finally:
            await storage.close()

    asyncio.run(scenario())


async def writer_gone(storage: SQLiteStorage) -> None:
    """Kill the SQLite writer and wait until the store has noticed."""
    assert storage._process is not None
    storage._process.kill()
    for _ in range(500):
        if storage._to_writer is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the store never noticed its writer died")


def test_outcomes_of_one_loop_turn_are_stored_by_one_call(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    calls: list[int] = []
    seen: list[Sequence[Finished]] = []

    async def body(storage: SQLiteStorage) -> None:
        record = storage.record

        async def counting(results: Sequence[AttemptResult]) -> dict[str, str]:
            calls.append(len(results))
            return await record(results)

        storage.record = counting  # type: ignore[method-assign]
        claims = await claimed_deliveries(storage, 3)
        recorder = Recorder(storage, lambda batch, disabled: seen.append(batch))
        for claimed in claims:
            recorder.add(delivered(claimed), claimed)
        await recorder.drain(10.0)

    with_store(path, body)
    assert calls == [3]
    assert [len(batch) for batch in seen] == [3]
    assert statuses(path) == ["delivered"] * 3


def test_a_failed_store_is_retried_until_the_writer_is_back(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    seen: list[Sequence[Finished]] = []

    async def body(storage: SQLiteStorage) -> None:
        [claimed] = await claimed_deliveries(storage, 1)
        await writer_gone(storage)
        recorder = Recorder(storage, lambda batch, disabled: seen.append(batch))
        recorder.add(delivered(claimed), claimed)
        await asyncio.sleep(0.05)
        assert not seen  # the first try failed: the writer is restarting
        await recorder.drain(20.0)

    with_store(path, body)
    assert len(seen) == 1
    assert statuses(path) == ["delivered"]


def test_an_outcome_whose_lease_ran_out_is_left_to_the_reaper(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    seen: list[Sequence[Finished]] = []

    async def body(storage: SQLiteStorage) -> None:
        [claimed] = await claimed_deliveries(storage, 1, lease_s=0.1)
        await writer_gone(storage)
        recorder = Recorder(storage, lambda batch, disabled: seen.append(batch))
        recorder.add(delivered(claimed), claimed)
        await recorder.drain(5.0)

    with_store(path, body)
    assert not seen
    # Still leased: the reaper (or the next start) makes it due again.
    assert statuses(path) == ["delivering"]


def test_lanes_wait_while_too_many_outcomes_are_unstored(tmp_path: Path) -> None:
    """room() blocks past `limit` unstored outcomes and opens once they are stored."""
    path = tmp_path / "relay.db"

    async def body(storage: SQLiteStorage) -> None:
        claims = await claimed_deliveries(storage, 3)
        await writer_gone(storage)  # records fail until the writer is back
        recorder = Recorder(storage, lambda batch, disabled: None, limit=2)
        for claimed in claims:
            recorder.add(delivered(claimed), claimed)
        waiter = asyncio.create_task(recorder.room())
        await asyncio.sleep(0.1)
        assert not waiter.done()  # 3 unstored, limit 2
        await asyncio.wait_for(waiter, 20)  # the writer restarted and took them
        assert recorder.unstored == 0
        await asyncio.wait_for(recorder.room(), 0.1)  # below the limit: no wait

    with_store(path, body)
    assert statuses(path) == ["delivered"] * 3
