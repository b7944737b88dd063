"""Retention: old delivered and failed work is purged in batches; waiting work never is."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import relay.retention
from relay.models import AttemptResult, DeliveryStatus, NewEvent
from relay.retention import Retention
from relay.storage.base import Storage
from tests.admin.harness import DEAD_URL, Ops, receiver
from tests.conftest import endpoint_yaml
from tests.support import db_rows, make_storage, wait_until

pytestmark = pytest.mark.both_backends

NOW = 1_800_000_000.0
DAY = 86400.0
OLD = NOW - 40 * DAY
RECENT = NOW - DAY


async def put(storage: Storage, event_id: str, endpoints: Sequence[str], at: float) -> None:
    """Ingest an event as if it arrived at `at` (the old clock)."""
    [outcome] = await storage.ingest([NewEvent(event_id, "license.created", b"{}",
                                               tuple(endpoints), at, keyed=True)])
    assert not outcome.duplicate


async def attempt(storage: Storage, endpoint: str, at: float,
                  status: DeliveryStatus, count: int = 1) -> list[int]:
    """Claim and record `count` attempts of an endpoint's due deliveries, at time `at`."""
    claimed = await storage.claim(endpoint, count, at + 1, 60)
    await storage.record([
        AttemptResult(c.id, endpoint, c.attempt, at, 5.0, 200 if status == "delivered" else 500,
                      b"", None, {}, status,
                      NOW + DAY if status == DeliveryStatus.SCHEDULED else None)
        for c in claimed
    ])
    return [c.id for c in claimed]


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    return db_rows(db, sql)


def test_purge_removes_old_finished_work_and_keeps_everything_waiting(tmp_path: Path) -> None:
    """Old delivered/failed rows go with attempts and orphaned events; the rest stays."""
    db = tmp_path / "retention.db"

    async def scenario() -> relay.retention.PurgeTotals:
        storage = make_storage(db)
        await storage.open()
        try:
            await storage.pause_endpoint("h", OLD)
            await put(storage, "done", ["a", "b"], OLD)
            await attempt(storage, "a", OLD, DeliveryStatus.DELIVERED)
            await attempt(storage, "b", OLD, DeliveryStatus.FAILED)
            await put(storage, "half", ["a", "c"], OLD)  # c never attempted: pending
            await attempt(storage, "a", OLD, DeliveryStatus.DELIVERED)
            await put(storage, "retrying", ["a"], OLD)
            await attempt(storage, "a", OLD, DeliveryStatus.SCHEDULED)
            await put(storage, "unrouted-old", [], OLD)
            await put(storage, "paused", ["h"], OLD)
            await put(storage, "redelivered", ["d"], OLD)  # delivered again yesterday
            await attempt(storage, "d", RECENT, DeliveryStatus.DELIVERED)
            for n in range(25):  # enough to take several batches
                await put(storage, f"bulk-{n}", ["e"], OLD)
            await attempt(storage, "e", OLD, DeliveryStatus.DELIVERED, count=25)
            await put(storage, "fresh", ["a"], RECENT)
            await attempt(storage, "a", RECENT, DeliveryStatus.DELIVERED)
            await put(storage, "unrouted-fresh", [], RECENT)
            retention = Retention(storage, lambda: 30 * DAY, clock=lambda: NOW, batch_size=4)
            return await retention.purge()
        finally:
            await storage.close()

    totals = asyncio.run(scenario())
    assert totals.deliveries == 2 + 1 + 25
    assert totals.attempts == 2 + 1 + 25
    assert totals.events == 1 + 25 + 1  # "done", the bulk, "unrouted-old"
    assert totals.batches >= 8  # 33 old rows, 4 at a time, then the unrouted events
    left = {row[0] for row in rows(db, "SELECT id FROM events")}
    assert left == {"half", "retrying", "paused", "redelivered", "fresh", "unrouted-fresh"}
    kept = rows(db, "SELECT event_id, endpoint, status FROM deliveries ORDER BY id")
    assert kept == [
        ("half", "c", "pending"), ("retrying", "a", "scheduled"), ("paused", "h", "held"),
        ("redelivered", "d", "delivered"), ("fresh", "a", "delivered"),
    ]
    orphans = rows(db, "SELECT count(*) FROM attempts WHERE delivery_id NOT IN "
                       "(SELECT id FROM deliveries)")
    assert orphans == [(0,)]
    assert rows(db, "SELECT count(*) FROM attempts") == [(3,)]


def test_ingest_is_not_blocked_while_a_purge_runs(tmp_path: Path) -> None:
    """An ingest during a long purge commits between two batches, not after the purge."""

    async def scenario() -> tuple[bool, int]:
        storage = make_storage(tmp_path / "busy.db")
        await storage.open()
        try:
            events = [NewEvent(f"old-{n}", "license.created", b"{}", ("a",), OLD, True)
                      for n in range(3000)]
            await storage.ingest(events)
            await attempt(storage, "a", OLD, DeliveryStatus.DELIVERED, count=3000)
            retention = Retention(storage, lambda: 30 * DAY, clock=lambda: NOW, batch_size=100)
            purge = asyncio.create_task(retention.purge())
            await asyncio.sleep(0.05)
            await put(storage, "during", ["a"], NOW)
            blocked = purge.done()
            totals = await purge
            return blocked, totals.deliveries
        finally:
            await storage.close()

    blocked, purged = asyncio.run(scenario())
    assert not blocked, "the ingest waited for the whole purge"
    assert purged == 3000


def test_the_relay_purges_in_the_background(
    make_ops: Callable[..., Ops], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running relay's retention task purges delivered rows and keeps held ones."""
    monkeypatch.setattr(relay.retention, "FIRST_RUN_DELAY_S", 0.2)
    monkeypatch.setattr(relay.retention, "INTERVAL_S", 0.2)
    sink = receiver()
    ops = make_ops(endpoint_yaml("good", sink.url + "/hooks", events=["license.*"])
                   + endpoint_yaml("parked", DEAD_URL, events=["order.*"]),
                   {"sink": sink}, extra="admin: {token: t0p-admin-token}\nretention: 1s\n")
    ops.post("/v1/endpoints/parked/pause")
    delivered = [ops.send("license.created", n=n) for n in range(3)]
    held = ops.send("order.created")
    ops.wait_counts("good", delivered=3)

    def purged() -> bool:
        return ops.relay.rows("SELECT event_id, status FROM deliveries") == [(held, "held")]

    wait_until(purged, 10, message="the delivered rows to be purged")
    assert ops.relay.rows("SELECT id FROM events") == [(held,)]
    assert ops.relay.rows("SELECT count(*) FROM attempts") == [(0,)]
    for event_id in delivered:
        assert ops.get(f"/v1/events/{event_id}").status_code == 404
    assert json.loads(ops.relay.post(json.dumps({"type": "x"})).text)["duplicate"] is False
