"""What the SQLite schema does without an index (0003) is still found exactly."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from pathlib import Path

import pytest

from relay.models import NewEvent, new_event_id
from relay.storage.migrations import schema_scripts
from relay.storage.sqlite import SQLiteStorage
from relay.storage.sqlite.queries import AFTER, ID_AT_TIME
from relay.storage.sqlite.writer import connect, migrate


def migrated(path: Path) -> sqlite3.Connection:
    db = connect(path)
    migrate(db, path)
    return db


@pytest.mark.parametrize("seed", range(5))
def test_time_bounds_hold_with_commit_skew_and_gaps(tmp_path: Path, seed: int) -> None:
    """Rows committed out of creation order and holes left by retention never break a bound."""
    rng = random.Random(seed)
    db = migrated(tmp_path / "relay.db")
    skew = 2.0
    clock, rows = 1000.0, []
    for _ in range(3000):
        clock += rng.random() * 0.05
        created = clock - rng.random() * skew  # committed up to `skew` after its creation
        rows.append(("e", "a", "t", "delivered", created, created, created))
    db.executemany(
        "INSERT INTO deliveries (event_id, endpoint, event_type, status, next_attempt_at, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("DELETE FROM deliveries WHERE id % 5 = 0 OR id BETWEEN 700 AND 1400")
    for _ in range(200):
        when = rng.uniform(990.0, clock + 10.0)
        lo = db.execute(ID_AT_TIME, (when - skew,)).fetchone()[0]
        hi = db.execute(ID_AT_TIME, (when + skew + AFTER,)).fetchone()[1]
        # since=when: nothing created at or after it lies below lo
        assert db.execute("SELECT count(*) FROM deliveries WHERE created_at >= ? AND id < ?",
                          (when, lo)).fetchone()[0] == 0
        # until=when: nothing created at or before it lies at or above hi
        assert db.execute("SELECT count(*) FROM deliveries WHERE created_at <= ? AND id >= ?",
                          (when, hi)).fetchone()[0] == 0
        # and the bounds are tight enough to be worth it: within a skew's worth of rows
        assert db.execute("SELECT count(*) FROM deliveries WHERE id >= ? AND created_at < ?",
                          (lo, when - 2 * skew)).fetchone()[0] == 0
    db.close()


def test_time_bounds_of_an_empty_table(tmp_path: Path) -> None:
    """No deliveries: the bounds exclude nothing and find nothing."""
    db = migrated(tmp_path / "relay.db")
    assert db.execute(ID_AT_TIME, (time.time(),)).fetchone() == (0, 1)
    db.close()


def test_an_events_deliveries_are_its_own_whatever_the_batch(tmp_path: Path) -> None:
    """Deliveries of events ingested together are told apart by each event's id range."""
    names = ("a", "b", "c")

    async def scenario() -> dict[str, list[tuple[str, str]]]:
        storage = SQLiteStorage(tmp_path / "relay.db")
        await storage.open()
        try:
            now = time.time()
            events = [NewEvent(new_event_id(now), "license.created", b"{}",
                               names[: 1 + i % 3], now, False) for i in range(300)]
            events.append(NewEvent(new_event_id(now), "license.created", b"{}", (), now, False))
            await asyncio.gather(storage.ingest(events[:150]), storage.ingest(events[150:]))
            found = {}
            for e in events:
                found[e.id] = [(d.event_id, d.endpoint) for d in
                               await storage.event_deliveries(e.id)]
            return found
        finally:
            await storage.close()

    found = asyncio.run(scenario())
    assert len(found) == 301
    for event_id, deliveries in found.items():
        assert all(owner == event_id for owner, _ in deliveries)
    assert sorted(len(d) for d in found.values()) == [0] + [1] * 100 + [2] * 100 + [3] * 100


def test_the_migration_gives_existing_events_their_delivery_ranges(tmp_path: Path) -> None:
    """A database from before 0003 keeps answering which deliveries an event has."""
    path = tmp_path / "relay.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                "applied_at REAL NOT NULL)")
    for version, _, sql in schema_scripts("sqlite"):
        if version < 3:
            old.executescript(f"BEGIN;\n{sql}\nINSERT INTO schema_version VALUES "
                              f"({version}, 0);\nCOMMIT;")
    now = time.time()
    for i in range(20):
        old.execute("INSERT INTO events (id, type, body, received_at, delivery_count) "
                    "VALUES (?, 't', x'7b7d', ?, ?)", (f"evt_{i}", now, i % 3))
        for name in ("a", "b")[: i % 3]:
            old.execute("INSERT INTO deliveries (event_id, endpoint, event_type, status, "
                        "next_attempt_at, created_at, updated_at) VALUES (?, ?, 't', "
                        "'delivered', ?, ?, ?)", (f"evt_{i}", name, now, now, now))
    old.close()

    async def scenario() -> dict[str, list[str]]:
        storage = SQLiteStorage(path)
        await storage.open()
        try:
            return {f"evt_{i}": [d.endpoint for d in await storage.event_deliveries(f"evt_{i}")]
                    for i in range(20)}
        finally:
            await storage.close()

    found = asyncio.run(scenario())
    assert found == {f"evt_{i}": ["a", "b"][: i % 3] for i in range(20)}



def test_an_event_without_a_recorded_range_is_still_found_and_kept(tmp_path: Path) -> None:
    """Rows written by another tool (no delivery range): lookups and retention stay right."""
    path = tmp_path / "relay.db"
    migrated(path).close()
    old = time.time() - 3600
    db = sqlite3.connect(path)
    db.execute("INSERT INTO events (id, type, body, received_at, delivery_count) "
               "VALUES ('evt_outside', 't', x'7b7d', ?, 2)", (old,))
    for status in ("delivered", "pending"):
        db.execute("INSERT INTO deliveries (event_id, endpoint, event_type, status, "
                   "next_attempt_at, created_at, updated_at) VALUES ('evt_outside', 'a', 't', "
                   "?, ?, ?, ?)", (status, old, old, old))
    db.commit()
    db.close()

    async def scenario() -> tuple[list[str], int, int]:
        storage = SQLiteStorage(path)
        await storage.open()
        try:
            found = [d.status.value for d in await storage.event_deliveries("evt_outside")]
            purged = await storage.purge_finished(time.time() - 60, 0, 100)
            left = await storage.get_event("evt_outside")
            return found, purged.deliveries, 0 if left is None else 1
        finally:
            await storage.close()

    # The delivered one is purged; the event stays while its pending one waits.
    assert asyncio.run(scenario()) == (["delivered", "pending"], 1, 1)
