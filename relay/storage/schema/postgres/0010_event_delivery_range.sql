-- One index fewer on every delivery, and a leaner ingest call.
--
-- deliveries_event (event_id) was written by every ingest and read only to
-- find one event's deliveries (the admin API's event page, retention). An
-- event's deliveries are inserted by one statement, so their ids lie between
-- two bounds the event now keeps, as on SQLite (0003 there): the lookup is a
-- primary-key range where event_id then decides
-- (queries.event_deliveries_where). Another round inserting at the same time
-- can take ids inside the range; the event_id check drops those rows. An
-- event without deliveries keeps (0, 0), an empty range. A bound left NULL (an event written by a replica of the previous version during a
-- rolling upgrade) widens to the whole table: slower, still right.
ALTER TABLE events ADD COLUMN first_delivery_id BIGINT, ADD COLUMN last_delivery_id BIGINT;
UPDATE events e SET first_delivery_id = d.lo, last_delivery_id = d.hi
    FROM (SELECT event_id, min(id) AS lo, max(id) AS hi FROM deliveries GROUP BY event_id) d
    WHERE d.event_id = e.id;
DROP INDEX deliveries_event;

-- relay_ingest, second form (0009's stays for replicas of the previous
-- version until they are upgraded). What changed, each measured per round:
-- * a delivery names its event by position in the event arrays, so its type,
--   time and tenant are not sent a second time (three arrays fewer to encode
--   in the relay, whose one core is what ingest on PostgreSQL is bound by);
-- * tenant, source and trace context may be sent empty when no event of the
--   round has one: unnest pads a shorter array with NULLs;
-- * delivery_count is counted here, and the events row is written after its
--   deliveries, with their id bounds, in one statement;
-- * the NOTIFY and the held-endpoint answer are skipped when empty (most
--   rounds), each a statement's start-up saved.
CREATE FUNCTION relay_ingest(
    p_lock_keys TEXT[], p_names TEXT[], p_channel TEXT, p_notify TEXT[],
    e_id TEXT[], e_type TEXT[], e_body BYTEA[], e_at DOUBLE PRECISION[],
    e_tenant TEXT[], e_source TEXT[], e_trace TEXT[],
    d_event INTEGER[], d_endpoint TEXT[]
) RETURNS TABLE (held TEXT, deleted BOOLEAN) LANGUAGE plpgsql AS $$
DECLARE
    v_held TEXT[];
    v_deleted TEXT[];
    v_inserted INTEGER;
BEGIN
    -- Shared: ingests never wait for each other; a pause or a delivery-page
    -- watermark (exclusive) waits for this round to commit.
    PERFORM pg_advisory_xact_lock_shared(hashtext(k)) FROM unnest(p_lock_keys) AS k;
    SELECT coalesce(array_agg(s.name), '{}'),
           coalesce(array_agg(s.name) FILTER (WHERE s.deleted = 1), '{}')
        INTO v_held, v_deleted FROM endpoint_state s
        WHERE s.name = ANY(p_names)
          AND (s.paused = 1 OR s.disabled_reason IS NOT NULL OR s.deleted = 1);
    WITH e AS (
        SELECT * FROM unnest(e_id, e_type, e_body, e_at, e_tenant, e_source, e_trace)
            WITH ORDINALITY AS e(id, type, body, at, tenant, source, trace, n)
    ), d AS (
        INSERT INTO deliveries (event_id, endpoint, event_type, status, next_attempt_at,
                                created_at, updated_at, tenant)
        SELECT e.id, u.ep, e.type,
               CASE WHEN u.ep = ANY(v_deleted) THEN 'cancelled'
                    WHEN u.ep = ANY(v_held) THEN 'held' ELSE 'pending' END,
               e.at, e.at, e.at, e.tenant
        FROM unnest(d_event, d_endpoint) WITH ORDINALITY AS u(event_n, ep, n)
        JOIN e ON e.n = u.event_n
        ORDER BY u.n  -- ids in the order the relay gave: a fifo endpoint's order
        RETURNING id, event_id
    ), b AS (
        SELECT event_id, min(id) AS lo, max(id) AS hi, count(*) AS k FROM d GROUP BY event_id
    ), stored AS (
        INSERT INTO events (id, type, body, received_at, delivery_count, tenant, source,
                            trace_context, first_delivery_id, last_delivery_id)
        SELECT e.id, e.type, e.body, e.at, coalesce(b.k, 0), e.tenant, e.source, e.trace,
               coalesce(b.lo, 0), coalesce(b.hi, 0)  -- no delivery: the empty range
        FROM e LEFT JOIN b ON b.event_id = e.id
        ORDER BY e.id
        ON CONFLICT (id) DO NOTHING RETURNING 1
    )
    SELECT count(*) INTO v_inserted FROM stored;
    IF v_inserted <> cardinality(e_id) THEN
        RAISE EXCEPTION 'an event id of this ingest round is already stored'
            USING ERRCODE = 'RL001';
    END IF;
    IF cardinality(p_notify) > 0 THEN
        -- Other relays' lanes: one notification per hundred endpoints due
        -- (names are at most 64 bytes; PostgreSQL takes 8000 per payload).
        PERFORM pg_notify(p_channel, string_agg(x.name, ',' ORDER BY x.name))
            FROM (SELECT t.name, (row_number() OVER (ORDER BY t.name) - 1) / 100 AS chunk
                  FROM unnest(p_notify) AS t(name) WHERE NOT t.name = ANY(v_held)) AS x
            GROUP BY x.chunk;
    END IF;
    IF cardinality(v_held) > 0 THEN
        RETURN QUERY SELECT h, h = ANY(v_deleted) FROM unnest(v_held) AS h;
    END IF;
END;
$$;
