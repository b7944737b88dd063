-- As SQLite's 0009: the event list read per tenant (GET /v1/events?tenant=).
-- PostgreSQL's events have no insertion order, so the list is newest first by
-- (received_at, id): a tenant's page is a backward range of this index, ties in
-- received_at sorted by id within the page. Only tenanted events are in it, so
-- ingest without a tenant (bench/replicas.py) writes nothing more; the id is
-- left out of the key to keep each entry, and each tenanted ingest, small.
CREATE INDEX events_tenant ON events (tenant, received_at) WHERE tenant IS NOT NULL;
