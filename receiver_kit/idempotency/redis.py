"""An idempotency store in Redis, shared by every host (extra ``[redis]``).

One key per event id, ``<prefix><event id>``, whose value is ``p:<token>``
while a worker processes it and ``d:<token>`` once done:

* `claim` is ``SET key p:<token> NX PX <lease>``: Redis itself decides which
  worker wins, and the lease is the key's expiry, so a dead worker's claim
  vanishes on time without any clean-up job. A Lua script does the ``SET NX``
  and, when it fails, reads the holder's state in the same atomic step.
* `complete` and `release` are Lua scripts that act only while the key still
  holds *our* ``p:<token>``: a worker whose lease expired cannot overwrite or
  delete the claim another worker has taken since.

Expiry uses the Redis server's clock, so it cannot be injected in tests.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from receiver_kit.exceptions import ConfigurationError, MissingDependencyError, StoreError
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

try:
    import redis
    import redis.asyncio
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("redis", "redis") from exc

__all__ = ["RedisStore"]

CLAIM_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 'acquired'
end
return redis.call('GET', KEYS[1])
"""
COMPLETE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] or current == ARGV[2] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
end
return 0
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore(IdempotencyStore):
    """Claims in Redis, atomic across processes and hosts.

    Build it from a URL (``RedisStore.from_url("redis://127.0.0.1:6379/0")``),
    which creates a sync client and, per event loop, an async client; or hand
    over your own `client` (``redis.Redis``) and/or `async_client`
    (``redis.asyncio.Redis``). With only a sync client, the async methods run
    it in a worker thread.
    """

    def __init__(
        self,
        client: redis.Redis | None = None,
        *,
        async_client: redis.asyncio.Redis | None = None,
        url: str | None = None,
        prefix: str = "receiver_kit:idempotency:",
        lease_s: float = DEFAULT_LEASE_S,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        super().__init__(lease_s=lease_s, ttl_s=ttl_s)
        if client is None and async_client is None and url is None:
            raise ConfigurationError("RedisStore needs a client, an async_client or a url")
        self.prefix = prefix
        self._url = url
        self._owns_client = client is None and url is not None
        self._client = client if client is not None else (
            redis.Redis.from_url(url) if url is not None else None
        )
        self._async_client = async_client
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, redis.asyncio.Redis
        ] = weakref.WeakKeyDictionary()
        self._lease_ms = max(1, round(self.lease_s * 1000))
        self._ttl_ms = max(1, round(self.ttl_s * 1000))

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        """A store with its own clients for `url` (``redis://``, ``rediss://``, ``unix://``)."""
        return cls(url=url, **kwargs)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r}, lease_s={self.lease_s:g}, ttl_s={self.ttl_s:g})"

    def key(self, event_id: str) -> str:
        """The Redis key holding `event_id`'s claim."""
        return self.prefix + event_id

    # -- sync ---------------------------------------------------------------

    def claim(self, event_id: str) -> ClaimResult:
        check_event_id(event_id)
        token = new_token()
        answer = self._eval(event_id, CLAIM_SCRIPT, "p:" + token, self._lease_ms)
        return _claim_result(event_id, token, answer)

    def complete(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        return bool(
            self._eval(claim.event_id, COMPLETE_SCRIPT, "p:" + token, "d:" + token, self._ttl_ms)
        )

    def release(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        return bool(self._eval(claim.event_id, RELEASE_SCRIPT, "p:" + token))

    # -- async --------------------------------------------------------------

    async def aclaim(self, event_id: str) -> ClaimResult:
        check_event_id(event_id)
        client = self._async()
        if client is None:
            return await super().aclaim(event_id)
        token = new_token()
        answer = await self._aeval(client, event_id, CLAIM_SCRIPT, "p:" + token, self._lease_ms)
        return _claim_result(event_id, token, answer)

    async def acomplete(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        client = self._async()
        if client is None:
            return await super().acomplete(claim)
        return bool(
            await self._aeval(
                client, claim.event_id, COMPLETE_SCRIPT, "p:" + token, "d:" + token, self._ttl_ms
            )
        )

    async def arelease(self, claim: ClaimResult) -> bool:
        token = check_claim(claim)
        client = self._async()
        if client is None:
            return await super().arelease(claim)
        return bool(await self._aeval(client, claim.event_id, RELEASE_SCRIPT, "p:" + token))

    # -- scripts ------------------------------------------------------------

    def _eval(self, event_id: str, script: str, *args: Any) -> Any:
        client = self._sync()
        with _store_errors(event_id):
            return client.eval(script, 1, self.key(event_id), *args)

    async def _aeval(
        self, client: redis.asyncio.Redis, event_id: str, script: str, *args: Any
    ) -> Any:
        with _store_errors(event_id):
            return await client.eval(script, 1, self.key(event_id), *args)

    # -- clients ------------------------------------------------------------

    def close(self) -> None:
        """Close the clients this store created (not the ones handed to it)."""
        if self._owns_client and self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        self.close()
        for client in list(self._async_clients.values()):
            await client.aclose()
        self._async_clients.clear()

    def _sync(self) -> redis.Redis:
        if self._client is None:
            raise ConfigurationError(
                "this RedisStore has only an async client: use the async methods "
                "or pass a sync client too"
            )
        return self._client

    def _async(self) -> redis.asyncio.Redis | None:
        """The async client for the running loop: a redis.asyncio connection
        belongs to the loop that opened it, so one client per loop."""
        if self._async_client is not None:
            return self._async_client
        if self._url is None:
            return None
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = redis.asyncio.Redis.from_url(self._url)
            self._async_clients[loop] = client
        return client


@contextmanager
def _store_errors(event_id: str) -> Iterator[None]:
    """Wrap the driver's errors once, at the store boundary."""
    try:
        yield
    except redis.RedisError as exc:
        raise StoreError(f"Redis idempotency store failed: {exc}", event_id) from exc


def _claim_result(event_id: str, token: str, answer: Any) -> ClaimResult:
    text = _text(answer)
    if text == "acquired":
        return ClaimResult(event_id, ClaimStatus.ACQUIRED, token)
    if text.startswith("d:"):
        return ClaimResult(event_id, ClaimStatus.DUPLICATE)
    return ClaimResult(event_id, ClaimStatus.IN_PROGRESS)
