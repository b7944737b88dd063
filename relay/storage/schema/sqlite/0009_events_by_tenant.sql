-- The event list read per tenant (GET /v1/events?tenant=): newest first by
-- rowid, which the writer assigns in commit order. An index's entries end in
-- the rowid, so this one's are (tenant, rowid) and a tenant's page is one
-- backward range of it, stopped after the page. Only tenanted events are in
-- it: ingest without a tenant writes no page of it.
CREATE INDEX events_tenant ON events (tenant) WHERE tenant IS NOT NULL;
