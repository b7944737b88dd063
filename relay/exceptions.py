"""Errors raised by the relay.

Every error the relay raises on purpose derives from `RelayError`, so a caller
can catch the family without catching programming mistakes::

    RelayError
    ├── ConfigError            relay.yaml is invalid; names every bad key path
    └── StorageError           the store failed; wraps the driver's exception
        ├── StorageUnavailable the store cannot take writes now (disk full,
        │                      locked, read-only); ingest answers 503
        └── StoreLocked        another relay process owns this SQLite file

Driver exceptions (sqlite3, asyncpg) are wrapped once, at the storage
boundary, so nothing above `relay.storage` imports a driver.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigError", "RelayError", "StorageError", "StorageUnavailable", "StoreLocked"]


class RelayError(Exception):
    """Base class of every error the relay raises deliberately."""


class ConfigError(RelayError):
    """The configuration is invalid.

    `errors` holds one `"key.path: what is wrong"` line per problem, so a user
    fixes every mistake in one edit instead of one per run.
    """

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class StorageError(RelayError):
    """The store failed in a way the caller cannot fix by retrying at once."""


class StorageUnavailable(StorageError):
    """The store cannot accept writes right now; the client should retry later."""


class StoreLocked(StorageError):
    """Another relay process already serves this SQLite database."""
