-- As SQLite's 0008: the W3C trace context (`traceparent[ tracestate]`) of the
-- ingest span that stored the event, NULL when tracing was off. Read with the
-- claim, never searched: no index.
ALTER TABLE events ADD COLUMN trace_context TEXT;

-- relay_claim as in 0001, its fifo head found by three seeks, and returning the
-- event's trace context as one more column, so the attempt's span continues
-- the ingest's on whichever replica claims it, in the claim's one round trip.
-- A function's result type cannot be changed in place: it is dropped and made
-- again, in the migration's transaction.
DROP FUNCTION relay_claim(TEXT, INTEGER, DOUBLE PRECISION, DOUBLE PRECISION, BOOLEAN, INTEGER,
                          DOUBLE PRECISION, TEXT, DOUBLE PRECISION, TEXT);

-- One claim in one round trip: called by every relay's lanes, so its cost is
-- the relay's throughput. Leases up to p_limit due deliveries of an endpoint
-- within the limits every relay shares, serialised per endpoint by an advisory
-- lock held until the claim commits. Returns the leased rows; or no row when
-- nothing is due; or one row with only `blocked_until` set when a shared limit
-- (fifo head in flight, max_in_flight, rate) stops the claim until then.
CREATE FUNCTION relay_claim(
    p_endpoint TEXT, p_limit INTEGER, p_now DOUBLE PRECISION, p_lease_until DOUBLE PRECISION,
    p_fifo BOOLEAN, p_max_in_flight INTEGER, p_rate DOUBLE PRECISION, p_lock_key TEXT,
    p_blocked_wait DOUBLE PRECISION, p_owner TEXT
) RETURNS TABLE (
    id BIGINT, event_id TEXT, event_type TEXT, body BYTEA, attempts INTEGER,
    next_attempt_at DOUBLE PRECISION, blocked_until DOUBLE PRECISION, trace_context TEXT
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_wanted INTEGER := p_limit;
    head RECORD;
    v_head_id BIGINT;
    v_in_flight INTEGER;
    v_tokens DOUBLE PRECISION;
    v_stamp DOUBLE PRECISION;
    v_burst DOUBLE PRECISION;
    v_claimed INTEGER;
BEGIN
    -- A claim lost in a database crash only means the delivery is claimed
    -- again, which at-least-once allows: no need to wait for the WAL flush.
    PERFORM set_config('synchronous_commit', 'off', true);
    IF p_fifo OR p_max_in_flight IS NOT NULL OR p_rate IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext(p_lock_key));
    END IF;
    IF EXISTS (SELECT 1 FROM endpoint_state s WHERE s.name = p_endpoint
               AND (s.paused = 1 OR s.disabled_reason IS NOT NULL)) THEN
        -- Paused or disabled, maybe by another relay: send nothing, and hold
        -- what an ingest racing the pause queued.
        UPDATE deliveries d SET status = 'held', updated_at = p_now
            WHERE d.endpoint = p_endpoint AND d.status IN ('pending', 'scheduled');
        RETURN;
    END IF;
    IF p_fifo THEN
        -- Three seeks of (endpoint, status, id), one per unfinished status: the
        -- index on unfinished rows alone goes in 0008 (queries.fifo_head_id).
        SELECT d.id, d.status, d.next_attempt_at INTO head FROM deliveries d
            WHERE d.id = (SELECT min(h.head) FROM (
                SELECT min(u.id) AS head FROM deliveries u
                    WHERE u.endpoint = p_endpoint AND u.status = 'pending'
                UNION ALL SELECT min(u.id) FROM deliveries u
                    WHERE u.endpoint = p_endpoint AND u.status = 'scheduled'
                UNION ALL SELECT min(u.id) FROM deliveries u
                    WHERE u.endpoint = p_endpoint AND u.status = 'delivering') AS h);
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF head.status = 'delivering' THEN
            RETURN QUERY SELECT NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BYTEA, NULL::INTEGER,
                NULL::DOUBLE PRECISION, p_now + p_blocked_wait, NULL::TEXT;
            RETURN;
        END IF;
        IF head.next_attempt_at > p_now THEN
            RETURN;
        END IF;
        v_wanted := 1;
        v_head_id := head.id;
    ELSIF p_max_in_flight IS NOT NULL THEN
        SELECT count(*) INTO v_in_flight FROM deliveries d
            WHERE d.endpoint = p_endpoint AND d.status = 'delivering' AND d.lease_until >= p_now;
        v_wanted := least(v_wanted, p_max_in_flight - v_in_flight);
        IF v_wanted <= 0 THEN
            RETURN QUERY SELECT NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BYTEA, NULL::INTEGER,
                NULL::DOUBLE PRECISION, p_now + p_blocked_wait, NULL::TEXT;
            RETURN;
        END IF;
    END IF;
    IF p_rate IS NOT NULL THEN
        v_burst := greatest(1.0, p_rate);
        SELECT r.tokens, r.updated_at INTO v_tokens, v_stamp FROM endpoint_rate r
            WHERE r.name = p_endpoint;
        IF NOT FOUND THEN  -- a new bucket starts full, as a lane's own does
            v_tokens := v_burst;
            v_stamp := p_now;
        ELSE
            v_tokens := least(v_burst, v_tokens + greatest(p_now - v_stamp, 0) * p_rate);
            v_stamp := greatest(p_now, v_stamp);
        END IF;
        v_wanted := least(v_wanted, floor(v_tokens)::INTEGER);
        IF v_wanted <= 0 THEN
            RETURN QUERY SELECT NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BYTEA, NULL::INTEGER,
                NULL::DOUBLE PRECISION, p_now + (1 - v_tokens) / p_rate, NULL::TEXT;
            RETURN;
        END IF;
    END IF;
    -- SKIP LOCKED: rows another relay (or an operator's write) holds are
    -- passed over, never waited for.
    RETURN QUERY
        UPDATE deliveries d SET status = 'delivering', lease_until = p_lease_until,
            lease_owner = p_owner, updated_at = p_now
        FROM events e
        WHERE e.id = d.event_id AND d.id IN (
            SELECT c.id FROM deliveries c
            WHERE c.endpoint = p_endpoint AND c.status IN ('pending', 'scheduled')
              AND c.next_attempt_at <= p_now AND (v_head_id IS NULL OR c.id = v_head_id)
            ORDER BY c.next_attempt_at, c.id LIMIT v_wanted FOR UPDATE SKIP LOCKED)
        RETURNING d.id, d.event_id, d.event_type, e.body, d.attempts, d.next_attempt_at,
            NULL::DOUBLE PRECISION, e.trace_context;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;
    IF p_rate IS NOT NULL AND v_claimed > 0 THEN
        INSERT INTO endpoint_rate (name, tokens, updated_at)
            VALUES (p_endpoint, v_tokens - v_claimed, v_stamp)
            ON CONFLICT (name) DO UPDATE SET tokens = EXCLUDED.tokens,
                updated_at = EXCLUDED.updated_at;
    END IF;
END;
$$;
