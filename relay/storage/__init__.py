"""Storage backends behind one interface; `create_storage` picks one from the config."""

from __future__ import annotations

from relay.config import Config
from relay.exceptions import ConfigError
from relay.storage.base import Storage

__all__ = ["Storage", "create_storage"]


def create_storage(config: Config) -> Storage:
    """The backend named by `storage:` in relay.yaml (not yet opened)."""
    path = config.sqlite_path
    if path is None:
        raise ConfigError([f"storage: unsupported URL {config.storage!r}"])
    from relay.storage.sqlite import SQLiteStorage

    return SQLiteStorage(path)
