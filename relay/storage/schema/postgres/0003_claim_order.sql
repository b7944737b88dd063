-- A claim takes an endpoint's due deliveries in (next_attempt_at, id) order.
-- With the index on (endpoint, next_attempt_at) alone, rows due at the same
-- instant (a batch ingested together, a backlog released by a resume) are not
-- in id order within the index, so PostgreSQL sorted every due row of the
-- endpoint on each claim: 36 ms per claim of 64 with a 20,000-delivery backlog,
-- against 0.2 ms with id in the key. SQLite's index has the rowid at its end,
-- which is the same order, so it needs no change.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at, id)
    WHERE status IN ('pending', 'scheduled');
