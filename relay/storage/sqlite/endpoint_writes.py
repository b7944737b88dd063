"""The SQLite writer's writes of API endpoints (create, update, delete, cancelling) and sources.

A mixin of `WriteOps`, kept apart because nothing here is on the delivery
path: these run when an operator or a tenant changes an endpoint.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from relay.storage.base import CreateOutcome, StoredEndpoint, StoredSource

__all__ = ["ENDPOINT_COLUMNS", "SOURCE_COLUMNS", "EndpointWrites"]

ENDPOINT_COLUMNS = "name, tenant, spec, secrets, created_at, updated_at"
SOURCE_COLUMNS = "name, spec, secrets, created_at, updated_at"


class EndpointWrites:
    db: sqlite3.Connection
    # The endpoint-state caches `WriteOps` keeps; an endpoint write changes them.
    _held: set[str] | None
    _deleted: set[str] | None

    def forget_held(self) -> None:
        """Drop the cached endpoint states: a rolled-back pause, disable or delete must not stay."""
        self._held = self._deleted = None

    def create_endpoint(self, row: tuple[Any, ...], per_tenant: int | None) -> CreateOutcome:
        endpoint = StoredEndpoint(*row)
        if per_tenant is not None and endpoint.tenant is not None:
            (count,) = self.db.execute(
                "SELECT count(*) FROM api_endpoints WHERE tenant = ?", (endpoint.tenant,)
            ).fetchone()
            if count >= per_tenant:
                return "limit"
        cursor = self.db.execute(
            f"INSERT INTO api_endpoints ({ENDPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "  # noqa: S608
            "ON CONFLICT (name) DO NOTHING", row)
        if cursor.rowcount == 0:
            return "exists"
        # A name once used by a deleted endpoint starts afresh.
        self.db.execute("DELETE FROM endpoint_state WHERE name = ?", (endpoint.name,))
        self.forget_held()
        return "created"

    def update_endpoint(self, row: tuple[Any, ...]) -> bool:
        endpoint = StoredEndpoint(*row)
        cursor = self.db.execute(
            "UPDATE api_endpoints SET tenant = ?, spec = ?, secrets = ?, updated_at = ? "
            "WHERE name = ?",
            (endpoint.tenant, endpoint.spec, endpoint.secrets, endpoint.updated_at,
             endpoint.name))
        return cursor.rowcount > 0

    def delete_endpoint(self, name: str, now: float) -> int | None:
        cursor = self.db.execute("DELETE FROM api_endpoints WHERE name = ?", (name,))
        if cursor.rowcount == 0:
            return None
        self.forget_held()
        self.db.execute(
            "INSERT INTO endpoint_state (name, deleted) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET deleted = 1, paused = 0, disabled_reason = NULL",
            (name,))
        cursor = self.db.execute(
            "UPDATE deliveries SET status = 'cancelled', updated_at = ? "
            "WHERE endpoint = ? AND status IN ('pending', 'scheduled', 'held')", (now, name))
        return cursor.rowcount

    def save_source(self, row: tuple[Any, ...], create: bool) -> bool:
        if create:
            cursor = self.db.execute(
                f"INSERT INTO api_sources ({SOURCE_COLUMNS}) VALUES (?, ?, ?, ?, ?) "  # noqa: S608
                "ON CONFLICT (name) DO NOTHING", row)
        else:
            source = StoredSource(*row)
            cursor = self.db.execute(
                "UPDATE api_sources SET spec = ?, secrets = ?, updated_at = ? WHERE name = ?",
                (source.spec, source.secrets, source.updated_at, source.name))
        return cursor.rowcount > 0

    def delete_source(self, name: str) -> bool:
        return self.db.execute("DELETE FROM api_sources WHERE name = ?", (name,)).rowcount > 0
