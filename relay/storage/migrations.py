"""The shipped schema files, and the check both backends make before applying them.

Each backend has its own folder of numbered `.sql` files under `schema/` and
applies them its own way (an advisory lock on PostgreSQL, the writer process's
connection on SQLite); which files exist, and refusing a database that a newer
relay already migrated, are the same for both.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Literal

__all__ = ["schema_scripts", "too_new"]


def schema_scripts(dialect: Literal["sqlite", "postgres"]) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every shipped migration for `dialect`, oldest first."""
    folder = resources.files("relay.storage") / "schema" / dialect
    return sorted(
        (int(f.name.split("_", 1)[0]), f.name, f.read_text(encoding="utf-8"))
        for f in folder.iterdir() if f.name.endswith(".sql")
    )


def too_new(applied: Iterable[int], scripts: list[tuple[int, str, str]],
            database: str) -> str | None:
    """Why `database` cannot be used, if it has a version this relay does not know."""
    applied = list(applied)
    newest_known = scripts[-1][0] if scripts else 0
    if applied and max(applied) > newest_known:
        return (f"{database} has schema version {max(applied)}, newer than this relay "
                f"understands ({newest_known}); upgrade the relay")
    return None
