-- As SQLite's 0007: the `sources:` entry an event came through, NULL for
-- /v1/events. Read with the event, never searched: no index.
ALTER TABLE events ADD COLUMN source TEXT;

-- As SQLite's 0007: sources made through the admin API, their secrets sealed.
CREATE TABLE api_sources (
    name       TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    secrets    TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
