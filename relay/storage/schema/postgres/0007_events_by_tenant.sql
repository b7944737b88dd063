-- As SQLite's 0009: the event list read per tenant (GET /v1/events?tenant=).
-- PostgreSQL's events have no insertion order, so the list is newest first by
-- (received_at, id), and a tenant's page is a backward range of this index in
-- exactly that order: no sort, stopped after the page (without the id in the
-- key, ties had to be sorted, and the planner preferred filtering the walk of
-- events_received_at). Only tenanted events are in it, so ingest without a
-- tenant (bench/replicas.py) writes nothing more than before.
CREATE INDEX events_tenant ON events (tenant, received_at, id) WHERE tenant IS NOT NULL;
