-- An ingest round in one round trip: the shared locks, the held endpoints,
-- the events, their deliveries and the NOTIFYs, as one statement that is its
-- own transaction. Run as separate statements inside BEGIN ... COMMIT, the
-- same round took seven round trips, and on a virtual machine each one is a
-- send, an epoll wake-up and a receive on both sides: they cost the relay
-- more CPU per event than the rows themselves cost PostgreSQL.
--
-- When an event id of the round is already stored (a client's retry, a
-- platform's redelivery, another relay's race) the function raises RL001
-- and changes nothing; the relay then runs the round the long way, which
-- reads the stored events first and answers duplicates and conflicts.
CREATE FUNCTION relay_ingest(
    p_lock_keys TEXT[], p_names TEXT[], p_channel TEXT, p_notify TEXT[],
    e_id TEXT[], e_type TEXT[], e_body BYTEA[], e_at DOUBLE PRECISION[],
    e_count INTEGER[], e_tenant TEXT[], e_source TEXT[], e_trace TEXT[],
    d_event TEXT[], d_endpoint TEXT[], d_type TEXT[], d_at DOUBLE PRECISION[],
    d_tenant TEXT[]
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
    INSERT INTO events (id, type, body, received_at, delivery_count, tenant, source,
                        trace_context)
        SELECT * FROM unnest(e_id, e_type, e_body, e_at, e_count, e_tenant, e_source, e_trace)
        ORDER BY 1 ON CONFLICT (id) DO NOTHING;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    IF v_inserted <> cardinality(e_id) THEN
        RAISE EXCEPTION 'an event id of this ingest round is already stored'
            USING ERRCODE = 'RL001';
    END IF;
    INSERT INTO deliveries (event_id, endpoint, event_type, status, next_attempt_at,
                            created_at, updated_at, tenant)
        SELECT u.ev, u.ep, u.ty,
               CASE WHEN u.ep = ANY(v_deleted) THEN 'cancelled'
                    WHEN u.ep = ANY(v_held) THEN 'held' ELSE 'pending' END,
               u.at, u.at, u.at, u.te
        FROM unnest(d_event, d_endpoint, d_type, d_at, d_tenant)
            WITH ORDINALITY AS u(ev, ep, ty, at, te, n)
        ORDER BY u.n;
    -- Other relays' lanes: one notification per hundred endpoints due (names
    -- are at most 64 bytes; PostgreSQL takes 8000 per payload).
    PERFORM pg_notify(p_channel, string_agg(x.name, ',' ORDER BY x.name))
        FROM (SELECT t.name, (row_number() OVER (ORDER BY t.name) - 1) / 100 AS chunk
              FROM unnest(p_notify) AS t(name) WHERE NOT t.name = ANY(v_held)) AS x
        GROUP BY x.chunk;
    RETURN QUERY SELECT h, h = ANY(v_deleted) FROM unnest(v_held) AS h;
END;
$$;
