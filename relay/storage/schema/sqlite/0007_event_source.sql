-- The `sources:` entry an event came through (SPEC section 9); NULL for
-- /v1/events, the default source, so rows stored before sources existed say
-- where they came from too. Read with the event, never searched: no index.
ALTER TABLE events ADD COLUMN source TEXT;
