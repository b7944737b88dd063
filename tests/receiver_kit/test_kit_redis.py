"""RedisStore specifics against the real Redis server: client shapes, keys, failures."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from receiver_kit import ClaimResult, ClaimStatus, ConfigurationError, StoreError
from receiver_kit.idempotency.redis import RedisStore

pytestmark = pytest.mark.redis


def test_user_supplied_clients_any_decoding(redis_url, redis_prefix):
    """Clients with or without decode_responses work; the key holds the claim with its expiry."""
    for decode in (False, True):
        client = redis.Redis.from_url(redis_url, decode_responses=decode)
        store = RedisStore(client, prefix=redis_prefix, lease_s=30)
        claim = store.claim(f"evt_{decode}")
        assert claim.acquired
        assert 0 < client.pttl(store.key(f"evt_{decode}")) <= 30_000
        assert store.claim(f"evt_{decode}").status is ClaimStatus.IN_PROGRESS
        assert store.complete(claim)
        assert client.pttl(store.key(f"evt_{decode}")) > 30_000  # now the 7-day TTL
        assert store.claim(f"evt_{decode}").status is ClaimStatus.DUPLICATE
        client.close()


def test_sync_client_only_serves_async_calls_through_a_thread(redis_url, redis_prefix):
    """With only a sync client the async API still works (in a worker thread)."""
    client = redis.Redis.from_url(redis_url)
    store = RedisStore(client, prefix=redis_prefix)

    async def scenario() -> None:
        claim = await store.aclaim("evt_a")
        assert claim.acquired
        assert await store.arelease(claim)

    asyncio.run(scenario())
    client.close()


def test_async_client_only(redis_url, redis_prefix):
    """With only an async client, sync calls are a clear configuration error."""

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        store = RedisStore(async_client=client, prefix=redis_prefix)
        claim = await store.aclaim("evt_b")
        assert claim.acquired
        assert await store.acomplete(claim)
        assert (await store.aclaim("evt_b")).status is ClaimStatus.DUPLICATE
        with pytest.raises(ConfigurationError, match="async"):
            store.claim("evt_c")
        await client.aclose()

    asyncio.run(scenario())


def test_unreachable_redis_is_store_error():
    """A Redis that cannot be reached raises StoreError (503) naming the event, in every call."""
    store = RedisStore.from_url("redis://127.0.0.1:1/0", prefix="x:")
    held = ClaimResult("evt_1", ClaimStatus.ACQUIRED, "token")
    calls = [
        lambda: store.claim("evt_1"),
        lambda: store.complete(held),
        lambda: store.release(held),
        lambda: asyncio.run(store.aclaim("evt_1")),
        lambda: asyncio.run(store.acomplete(held)),
        lambda: asyncio.run(store.arelease(held)),
    ]
    for call in calls:
        with pytest.raises(StoreError) as info:
            call()
        assert info.value.status_code == 503
        assert info.value.event_id == "evt_1"
        assert isinstance(info.value.__cause__, redis.RedisError)


def test_needs_some_client():
    """A RedisStore without client, async client or URL is a configuration error."""
    with pytest.raises(ConfigurationError):
        RedisStore()
