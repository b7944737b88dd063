-- As SQLite's 0007: the `sources:` entry an event came through, NULL for
-- /v1/events. Read with the event, never searched: no index.
ALTER TABLE events ADD COLUMN source TEXT;
