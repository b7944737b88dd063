-- Indexes for the admin API's delivery list, the metrics scrape and retention.
--
-- The list is newest first and pages by id (keyset), so each filter gets an
-- index that ends in `id`: SQLite walks it backwards from the cursor and stops
-- after one page, whatever the size of the table. No filter at all walks the
-- table itself (id is its rowid).
CREATE INDEX deliveries_endpoint_id ON deliveries (endpoint, id);
CREATE INDEX deliveries_status_id ON deliveries (status, id);
CREATE INDEX deliveries_endpoint_status_id ON deliveries (endpoint, status, id);
CREATE INDEX deliveries_type_id ON deliveries (event_type, id);
-- `since`/`until` become id bounds through this one (creation time grows with
-- the id, up to the time a commit waits); retention finds its first survivor
-- with it too.
CREATE INDEX deliveries_created_at ON deliveries (created_at);
-- Events that matched no endpoint: retention deletes them by age alone.
CREATE INDEX events_unrouted ON events (received_at) WHERE delivery_count = 0;

-- Without statistics SQLite breaks ties between indexes of equal shape in
-- favour of the newest, and deliveries_endpoint_id has the shape of the
-- partial indexes that serve the delivery lanes. Recreating those last keeps
-- the lanes on the small partial indexes (a fifo lane's head lookup must not
-- walk every delivered row of its endpoint).
DROP INDEX deliveries_unfinished;
CREATE INDEX deliveries_unfinished ON deliveries (endpoint, id)
    WHERE status IN ('pending', 'scheduled', 'delivering');
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at)
    WHERE status IN ('pending', 'scheduled');
