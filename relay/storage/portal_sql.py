"""The SQL of the tenant portal's links and sessions, one text for both backends.

Written with `?` placeholders; PostgreSQL's module numbers them (`$1`...).
The use of a link is one conditional UPDATE: whichever transaction sets
`session_hash` first wins, and the other's WHERE no longer matches.
"""

from __future__ import annotations

__all__ = ["CREATE_LINK", "END_SESSION", "END_TENANT", "FORGET_AFTER_S", "FORGET_OLD",
           "OPEN_LINK", "SESSION", "numbered"]

FORGET_AFTER_S = 86400.0  # ended or expired this long ago: nothing to check against

CREATE_LINK = ("INSERT INTO portal_sessions (link_hash, tenant, created_at, link_expires_at, "
               "session_s) VALUES (?, ?, ?, ?, ?)")
FORGET_OLD = ("DELETE FROM portal_sessions WHERE coalesce(ended_at, expires_at, "
              "link_expires_at) < ?")
OPEN_LINK = ("UPDATE portal_sessions SET session_hash = ?, expires_at = ? + session_s "
             "WHERE link_hash = ? AND session_hash IS NULL AND ended_at IS NULL "
             "AND link_expires_at > ? RETURNING tenant, expires_at")
SESSION = ("SELECT tenant, expires_at FROM portal_sessions WHERE session_hash = ? "
           "AND ended_at IS NULL AND expires_at > ?")
END_SESSION = ("UPDATE portal_sessions SET ended_at = ? WHERE session_hash = ? "
               "AND ended_at IS NULL")
END_TENANT = "UPDATE portal_sessions SET ended_at = ? WHERE tenant = ? AND ended_at IS NULL"


def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2`... (none of these texts holds a `?` else)."""
    parts = sql.split("?")
    return "".join(part + (f"${i}" if i < len(parts) else "")
                   for i, part in enumerate(parts, 1))
