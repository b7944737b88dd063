"""asyncpg's exceptions, mapped once onto the relay's tree (`relay.exceptions`).

Anything that says "the database cannot take this write now" becomes
`StorageUnavailable`, which ingest answers with 503 and `Retry-After`: the
server is unreachable or restarting, read-only (a standby after failover),
out of disk or connections, or a statement or lock wait ran out of time.
Everything else is a `StorageError`. Deadlocks and serialization failures are
not mapped here: the storage retries the transaction that hit them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg

from relay.exceptions import StorageError, StorageUnavailable

__all__ = ["RETRYABLE", "wrap_error", "wrap_exceptions"]

# A transaction that lost a race with another relay: run it again.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)

_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,       # class 08: the connection failed or was lost
    asyncpg.ReadOnlySQLTransactionError,   # a standby, or default_transaction_read_only
    asyncpg.InsufficientResourcesError,    # class 53: disk full, out of memory, connections
    asyncpg.OperatorInterventionError,     # class 57: shutdown, restart, statement timeout
    asyncpg.LockNotAvailableError,         # lock_timeout
    asyncpg.ObjectInUseError,
)


def wrap_error(exc: BaseException) -> StorageError:
    """The relay error for a driver, socket or timeout error."""
    if isinstance(exc, StorageError):
        return exc
    message = str(exc) or type(exc).__name__
    lost = isinstance(exc, asyncpg.InterfaceError) and "clos" in message  # connection or pool
    # A connection cut in the middle of an operation can leave asyncpg's protocol
    # in a state it refuses to leave ("cannot switch to state 12"): the store
    # drops that connection (store.py), and the write may succeed on another.
    lost = lost or isinstance(exc, asyncpg.InternalClientError)
    if lost or isinstance(exc, (*_UNAVAILABLE, OSError, TimeoutError)):
        return StorageUnavailable(f"PostgreSQL cannot take writes now: {message}")
    return StorageError(f"database error: {message}")


@contextlib.contextmanager
def wrap_exceptions() -> Iterator[None]:
    """Re-raise driver, socket and timeout errors as `StorageError`s (the boundary)."""
    try:
        yield
    except StorageError:
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
            OSError, TimeoutError) as exc:
        raise wrap_error(exc) from exc
