-- The W3C trace context (`traceparent[ tracestate]`) of the ingest span that
-- stored the event (relay/telemetry.py), so that its delivery attempts, hours
-- later or after a restart, are children of that span. NULL when tracing was
-- off: a NULL column costs an ingest nothing. Read with the claim, never
-- searched: no index.
ALTER TABLE events ADD COLUMN trace_context TEXT;
