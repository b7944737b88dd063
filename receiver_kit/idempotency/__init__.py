"""Idempotency stores: process each event id once, across retries and workers.

==================  ==========================================================
store               shared by
==================  ==========================================================
`MemoryStore`       the threads and tasks of one process
`SQLiteStore`       the processes of one host (one SQLite file)
`RedisStore`        every host that reaches the Redis server (extra ``[redis]``)
`DjangoStore`       every host on the Django database
                    (``receiver_kit.contrib.django``)
==================  ==========================================================

`store_from_url()` builds one from a settings string, which is how the Flask
and Django integrations read their configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from receiver_kit.exceptions import ConfigurationError
from receiver_kit.idempotency.base import (
    DEFAULT_LEASE_S,
    DEFAULT_TTL_S,
    ClaimResult,
    ClaimStatus,
    IdempotencyStore,
)
from receiver_kit.idempotency.memory import MemoryStore
from receiver_kit.idempotency.sqlite import SQLiteStore

if TYPE_CHECKING:
    from receiver_kit.idempotency.redis import RedisStore

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_TTL_S",
    "ClaimResult",
    "ClaimStatus",
    "IdempotencyStore",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "store_from_url",
]


def __getattr__(name: str) -> Any:
    # RedisStore imports redis: only on demand, so the core stays stdlib-only.
    if name == "RedisStore":
        from receiver_kit.idempotency.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store_from_url(
    url: str, *, lease_s: float = DEFAULT_LEASE_S, ttl_s: float = DEFAULT_TTL_S
) -> IdempotencyStore:
    """Build a store from a URL.

    * ``memory://``: `MemoryStore`
    * ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``: `SQLiteStore`
    * ``redis://host:6379/0``, ``rediss://...``, ``unix://...``: `RedisStore`

    The Django database store is configured by the Django integration
    (``"django"`` in its settings), because it needs Django set up.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a store URL must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "memory" or url == "memory":
        return MemoryStore(lease_s=lease_s, ttl_s=ttl_s)
    if scheme == "sqlite" and sep:
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ConfigurationError(
                f"store URL {url!r} names no file: use sqlite:///relative.db "
                "or sqlite:////absolute/path.db"
            )
        return SQLiteStore(path, lease_s=lease_s, ttl_s=ttl_s)
    if scheme in {"redis", "rediss", "unix"} and sep:
        from receiver_kit.idempotency.redis import RedisStore

        return RedisStore.from_url(url, lease_s=lease_s, ttl_s=ttl_s)
    raise ConfigurationError(
        f"unsupported idempotency store URL {_redact(url)!r}: "
        "use memory://, sqlite:///path.db or redis://host:port/db"
    )


def _redact(url: str) -> str:
    """Hide a password in a URL before it goes into an error message."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:***@{host}"
