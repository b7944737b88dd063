-- As SQLite's 0006. A link's UPDATE takes its row lock, so two replicas cannot both use it.
-- The tenant portal's sign-in links and the sessions they open (relay/http/portal/).
-- Only SHA-256 hashes of the link and session tokens are kept: a copy of this
-- table signs no one in. A link is used by setting `session_hash`, once, with
-- a conditional UPDATE, so a second use finds it taken; `ended_at` is set at
-- sign-out and when the tenant's sessions are revoked (links not yet used too).
CREATE TABLE portal_sessions (
    link_hash       TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    link_expires_at DOUBLE PRECISION NOT NULL,
    session_s       DOUBLE PRECISION NOT NULL,
    session_hash    TEXT UNIQUE,
    expires_at      DOUBLE PRECISION,
    ended_at        DOUBLE PRECISION
);
CREATE INDEX portal_sessions_tenant ON portal_sessions (tenant) WHERE ended_at IS NULL;
