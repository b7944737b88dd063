"""SQLite's errors at both ends of the pipe, mapped once to the relay's tree.

The writer process describes an error in plain values, (kind, SQLite error
code, message), and the relay rebuilds it as a `StorageError`, or
`StorageUnavailable` (503) when the database cannot take writes now; the
relay's reader connection maps its own driver errors the same way.
"""

from __future__ import annotations

import sqlite3
import traceback

from relay.exceptions import StorageError, StorageUnavailable

__all__ = [
    "ErrorDescription", "SchemaTooNew", "describe_error", "rebuild_error", "storage_error",
    "wrap_error",
]

# (kind, code, message): kind is "sqlite" (a driver error, with its code),
# "schema" (`SchemaTooNew`) or "crash" (anything else; the message is the traceback).
ErrorDescription = tuple[str, int | None, str]

_UNAVAILABLE_CODES = {
    sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM,
}


class SchemaTooNew(Exception):
    """The database was migrated by a newer relay."""


def storage_error(code: int | None, message: str) -> StorageError:
    """Map a SQLite error (its code and message) to the relay's tree, once, at the boundary."""
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _UNAVAILABLE_CODES or any(
        text in message for text in ("disk is full", "locked", "readonly", "disk I/O")
    ):
        return StorageUnavailable(f"the database cannot take writes now: {message}")
    return StorageError(f"database error: {message}")


def wrap_error(exc: sqlite3.Error) -> StorageError:
    return storage_error(getattr(exc, "sqlite_errorcode", None), str(exc))


def describe_error(exc: BaseException) -> ErrorDescription:
    """What the relay needs to rebuild an error of the writer process."""
    if isinstance(exc, sqlite3.Error):
        return "sqlite", getattr(exc, "sqlite_errorcode", None), str(exc)
    if isinstance(exc, SchemaTooNew):
        return "schema", None, str(exc)
    return "crash", None, "".join(traceback.format_exception(exc))


def rebuild_error(kind: str, code: int | None, message: str) -> StorageError:
    """The relay's error for a `describe_error` answer; a crash's traceback is left out."""
    if kind == "sqlite":
        return storage_error(code, message)
    if kind == "schema":
        return StorageError(message)
    return StorageError("the SQLite writer failed on this write; the error is logged")
