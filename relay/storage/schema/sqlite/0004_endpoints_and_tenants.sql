-- Endpoints made through the API (relay.yaml's are not stored): the fields
-- their creator gave, as JSON, and their secrets sealed under secrets_key
-- (relay/secrets_at_rest.py), which this database never holds.
CREATE TABLE api_endpoints (
    name       TEXT PRIMARY KEY,
    tenant     TEXT,
    spec       TEXT NOT NULL,
    secrets    TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX api_endpoints_tenant ON api_endpoints (tenant) WHERE tenant IS NOT NULL;

-- A deleted endpoint's row stays until its name is used again: deliveries of
-- it that an attempt in flight or a claim given back would make due again
-- become `cancelled` instead.
ALTER TABLE endpoint_state ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

-- The platform's customer an event is about, copied on its deliveries so the
-- delivery log can be read per tenant. The index holds tenanted rows only.
ALTER TABLE events ADD COLUMN tenant TEXT;
ALTER TABLE deliveries ADD COLUMN tenant TEXT;
CREATE INDEX deliveries_tenant_id ON deliveries (tenant, id) WHERE tenant IS NOT NULL;
