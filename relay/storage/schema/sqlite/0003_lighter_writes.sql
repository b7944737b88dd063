-- Every index on a table is written by every insert into it, and each index
-- whose key holds `status` again by every claim and every attempt result. On
-- SQLite a commit writes each page it touched to the WAL, so each index costs
-- an ingest round two or three pages whatever the number of events in it
-- (measured: 13 B-trees took 39 pages for a round of 22 events, 8 take 27).
-- These four indexes had substitutes that cost nothing at write time:
--
-- * deliveries_event: an event's deliveries are inserted together, in one
--   transaction, so their ids form a range; the event keeps its bounds and the
--   lookup is a rowid range check (queries.event_deliveries_where).
-- * deliveries_created_at: ids grow with commit time and a delivery is
--   committed within COMMIT_SKEW_S of its creation, so a time is turned into an
--   id bound by a binary search over the rowid (queries.ID_AT_TIME).
-- * deliveries_unfinished: a fifo lane's head is the smallest id among its
--   pending, scheduled and delivering rows, three seeks into
--   deliveries_endpoint_status_id (queries.FIFO_HEAD_ID).
-- * events_received_at: no query filters events by time except retention's,
--   which has events_unrouted.
ALTER TABLE events ADD COLUMN first_delivery_id INTEGER;
ALTER TABLE events ADD COLUMN last_delivery_id INTEGER;
UPDATE events SET
    first_delivery_id = (SELECT min(id) FROM deliveries WHERE event_id = events.id),
    last_delivery_id = (SELECT max(id) FROM deliveries WHERE event_id = events.id)
WHERE delivery_count > 0;
DROP INDEX deliveries_event;
DROP INDEX deliveries_created_at;
DROP INDEX deliveries_unfinished;
DROP INDEX events_received_at;
