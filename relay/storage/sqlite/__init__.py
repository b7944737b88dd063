"""The SQLite backend: one database file in WAL mode, written by a process of its own.

`store.py` is the relay's side (`SQLiteStorage`: the lock file, the reader
connection, the pipe to the writer), with the admin API's half in
`operations.py`; `writer.py` is the writer process (`python -m
relay.storage.sqlite.writer`), which makes every write (`writes.py`), each
named in the table of `ops.py`; `frames.py` is what crosses the pipe between
them and `errors.py` how its errors do; `queries.py` holds the SQL only this
backend needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relay.storage.sqlite.store import SQLiteStorage

__all__ = ["SQLiteStorage"]


def __getattr__(name: str) -> Any:
    """`SQLiteStorage`, imported on first use.

    The writer process runs from this package and needs none of the relay
    side's imports (aiosqlite, structlog): importing them would cost it about
    0.2 s at every start and 9 MB for its life.
    """
    if name == "SQLiteStorage":
        from relay.storage.sqlite.store import SQLiteStorage

        return SQLiteStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
