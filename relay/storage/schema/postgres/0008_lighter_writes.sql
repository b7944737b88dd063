-- Fewer indexes on deliveries, so each ingest, claim and recorded outcome
-- writes fewer index entries: status is in most keys, so every change of a
-- delivery's state is a new tuple with an entry in every index.
--
-- * deliveries_endpoint_id (endpoint, id): the delivery list of one endpoint
--   now walks (endpoint, status, id) once per status and merges the walks
--   (queries.delivery_page_query), as SQLite has since its 0005.
-- * deliveries_unfinished (endpoint, id) for unfinished rows: a fifo queue's
--   head is now three seeks of (endpoint, status, id) (queries.fifo_head_id),
--   in relay_claim (0006), next_due_at and the queue gauges.
-- * deliveries_leased (lease_until) for rows in flight: the reaper's scan of
--   expired leases reads deliveries_in_flight, which holds only the attempts
--   in flight.
-- * deliveries_created_at: time filters and retention turn a time into id
--   bounds by a binary search of the primary key (queries.id_at_time), as
--   SQLite has since its 0003.
--
-- Measured with 10,000 deliveries drained by one relay: 20-25% fewer WAL
-- bytes per delivery, and less PostgreSQL CPU per delivery.
DROP INDEX deliveries_endpoint_id;
DROP INDEX deliveries_unfinished;
DROP INDEX deliveries_leased;
DROP INDEX deliveries_created_at;
