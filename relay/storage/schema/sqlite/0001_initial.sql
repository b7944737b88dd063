-- Events as the platform sent them, byte-exact. `id` is the idempotency key
-- (Idempotency-Key header, the configured id field, or a generated evt_ id).
CREATE TABLE events (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    body           BLOB NOT NULL,
    received_at    REAL NOT NULL,
    delivery_count INTEGER NOT NULL
);
CREATE INDEX events_received_at ON events (received_at);

-- One row per (event, endpoint). The integer id orders deliveries by commit,
-- which is what cursor pagination relies on; AUTOINCREMENT so that an id is
-- never reused after retention deletes rows.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         TEXT NOT NULL,
    endpoint         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL,
    lease_until      REAL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    last_attempt_at  REAL,
    last_status_code INTEGER,
    last_error       TEXT
);
-- "Next due delivery of this endpoint": O(log n) whatever the backlog, and
-- small, since only waiting rows are in it.
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at)
    WHERE status IN ('pending', 'scheduled');
-- The head of a fifo endpoint's queue: the oldest unfinished delivery.
CREATE INDEX deliveries_unfinished ON deliveries (endpoint, id)
    WHERE status IN ('pending', 'scheduled', 'delivering');
-- Leases to recover after a crash or reap when a result could not be stored.
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'delivering';
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    delivery_id     INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    duration_ms     REAL,
    status_code     INTEGER,
    response_body   BLOB,
    error           TEXT,
    request_headers TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- What the relay learned about each endpoint at run time (config holds the rest).
CREATE TABLE endpoint_state (
    name             TEXT PRIMARY KEY,
    paused           INTEGER NOT NULL DEFAULT 0,
    disabled_reason  TEXT,
    disabled_at      REAL,
    failing_since    REAL,
    last_attempt_at  REAL,
    last_success_at  REAL
);
