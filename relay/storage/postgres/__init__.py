"""The PostgreSQL backend: several relay processes sharing one queue (`pip install
license-webhook-relay[postgres]`). See `store.py` for how the work is shared."""

from __future__ import annotations

try:
    import asyncpg  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    from relay.exceptions import ConfigError

    raise ConfigError([
        "storage: postgresql:// needs the asyncpg driver: "
        "pip install 'license-webhook-relay[postgres]'"
    ]) from exc

from relay.storage.postgres.store import PostgresStorage

__all__ = ["PostgresStorage"]
