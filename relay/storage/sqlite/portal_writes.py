"""The SQLite writer's writes of the tenant portal: links made, used once, sessions ended.

A mixin of `WriteOps`, like the endpoint writes: nothing here is on the
delivery path. The SQL is the one both backends share (`portal_sql`).
"""

from __future__ import annotations

import sqlite3

from relay.storage.portal_sql import (
    CREATE_LINK,
    END_SESSION,
    END_TENANT,
    FORGET_AFTER_S,
    FORGET_OLD,
    OPEN_LINK,
)

__all__ = ["PortalWrites"]


class PortalWrites:
    db: sqlite3.Connection

    def create_portal_link(self, link_hash: str, tenant: str, now: float,
                           link_expires_at: float, session_s: float) -> None:
        self.db.execute(FORGET_OLD, (now - FORGET_AFTER_S,))
        self.db.execute(CREATE_LINK, (link_hash, tenant, now, link_expires_at, session_s))

    def open_portal_link(self, link_hash: str, session_hash: str,
                         now: float) -> tuple[str, float] | None:
        rows = self.db.execute(OPEN_LINK, (session_hash, now, link_hash, now)).fetchall()
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    def end_portal_sessions(self, now: float, session_hash: str | None,
                            tenant: str | None) -> int:
        if session_hash is not None:
            return self.db.execute(END_SESSION, (now, session_hash)).rowcount
        return self.db.execute(END_TENANT, (now, tenant)).rowcount
