-- The trace context of each event, carried by the relay into the JetStream
-- message headers so consumers continue the ingest request's trace.
ALTER TABLE outbox ADD COLUMN traceparent text, ADD COLUMN tracestate text;
