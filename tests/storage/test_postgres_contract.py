"""The storage contract on PostgreSQL: one schema per test, dropped afterwards.

Skipped without a server on 127.0.0.1:5432 (RELAY_TEST_POSTGRES names another),
failed instead under CI=true (`tests/postgres/pg.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import anyio
import pytest

from relay.storage.base import Storage
from relay.storage.postgres import PostgresStorage
from tests.postgres.pg import client, schema_url
from tests.storage.contract import StorageContract


@pytest.mark.postgres
class TestPostgresStorage(StorageContract):
    shares_limits = True  # relays share the queue, so the claim counts every lease
    recovers_live_leases = False  # other relays may be mid-attempt on theirs
    wakes_other_instances = True  # LISTEN/NOTIFY

    @pytest.fixture
    def make_store(self) -> Iterator[Callable[[], Storage]]:
        schema = f"rt_contract_{uuid.uuid4().hex[:16]}"
        url = schema_url(schema)  # skips, or fails under CI=true, without a server
        yield lambda: PostgresStorage(url, pool_size=4)
        client().drop_schema(schema)

    async def opened(self, store: Storage) -> Storage:
        """Open, and wait for the LISTEN connection: until it is up, lanes are told to poll."""
        await store.open()
        assert isinstance(store, PostgresStorage)
        with anyio.fail_after(10):
            while not store.listening:  # noqa: ASYNC110 (the listener sets no event)
                await anyio.sleep(0.01)
        return store
