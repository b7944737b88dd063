-- The `sources:` entry an event came through (SPEC section 9); NULL for
-- /v1/events, the default source, so rows stored before sources existed say
-- where they came from too. Read with the event, never searched: no index.
ALTER TABLE events ADD COLUMN source TEXT;

-- Sources made through the admin API (relay.yaml's are not stored): their
-- fields as JSON, never a secret, and their secrets, tokens and passwords
-- sealed under secrets_key (relay/secrets_at_rest.py).
CREATE TABLE api_sources (
    name       TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    secrets    TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
