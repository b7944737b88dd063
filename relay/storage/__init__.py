"""Storage backends behind one interface; `create_storage` picks one from the config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay.exceptions import ConfigError
from relay.storage.base import Storage

if TYPE_CHECKING:  # the SQLite writer process imports this package, and needs no config
    from relay.config import Config

__all__ = ["Storage", "create_storage"]


def create_storage(config: Config) -> Storage:
    """The backend named by `storage:` in relay.yaml (not yet opened).

    The PostgreSQL backend is imported only when asked for, so the asyncpg
    extra stays optional for the SQLite default.
    """
    path = config.sqlite_path
    if path is not None:
        from relay.storage.sqlite import SQLiteStorage

        return SQLiteStorage(path)
    postgres = config.postgres
    if postgres is not None:
        from relay.storage.postgres import PostgresStorage

        return PostgresStorage(postgres.dsn, pool_size=postgres.pool_size,
                               timeout_s=postgres.timeout_s)
    raise ConfigError([f"storage: unsupported URL {config.storage!r}"])
