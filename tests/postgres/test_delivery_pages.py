"""`GET /v1/deliveries` pages on PostgreSQL never skip a delivery committed out of id order.

Ids come from a sequence; another relay's ingest may hold a smaller id while
this one commits a larger. A first page cut at the larger id would leave the
smaller one out of every page that follows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from relay.storage.base import DeliveryFilter
from relay.storage.postgres import PostgresStorage
from tests.postgres.pg import PG_URL, schema_url
from tests.storage.contract import event

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(schema: str) -> AsyncIterator[PostgresStorage]:
    storage = PostgresStorage(schema_url(schema), pool_size=4)
    await storage.open()
    yield storage
    await storage.close()


async def _waiting_for_a_lock(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))


async def test_a_first_page_includes_a_smaller_id_committed_after_a_larger(
        store: PostgresStorage, schema: str) -> None:
    await store.ingest([event("evt_1", "crm")])
    other = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
    watcher = await asyncpg.connect(PG_URL)
    try:
        # Another relay's ingest, half done: it has taken its id and not committed.
        slow = other.transaction()
        await slow.start()
        await other.execute("SELECT pg_advisory_xact_lock_shared(hashtext($1))",
                            f"relay:delivery-ids:{schema}")
        await other.execute(
            "INSERT INTO deliveries (event_id, endpoint, event_type, status, "
            "next_attempt_at, created_at, updated_at) "
            "VALUES ('evt_2', 'crm', 'license.created', 'pending', 0, 0, 0)")
        await store.ingest([event("evt_3", "crm")])  # committed with the larger id
        pages: list[list[int]] = []

        async def first_page() -> None:
            pages.append([d.id for d in await store.list_deliveries(DeliveryFilter(), 2)])

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first_page)
            with anyio.fail_after(10):
                while not await _waiting_for_a_lock(watcher):  # noqa: ASYNC110 (polled)
                    await anyio.sleep(0.01)
            assert pages == []  # the page waits for the smaller id's transaction...
            await slow.commit()
        # ...and then shows it: newest first, nothing left for the next page to miss.
        assert pages == [[3, 2]]
        rest = await store.list_deliveries(DeliveryFilter(before_id=2), 10)
        assert [d.id for d in rest] == [1]
    finally:
        await other.close()
        await watcher.close()


async def test_later_pages_and_an_empty_store_need_no_wait(store: PostgresStorage) -> None:
    assert await store.list_deliveries(DeliveryFilter(), 10) == []
    assert await store.committed_delivery_ids() == 0
    await store.ingest([event("evt_1", "a", "b")])
    assert await store.committed_delivery_ids() == 2
    assert [d.id for d in await store.list_deliveries(DeliveryFilter(before_id=2), 10)] == [1]
