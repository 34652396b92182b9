-- Reads of a tenant's events filtered by time or source use indexes
-- (GET /v1/events?since= and ?source=): recorded_at finds the first
-- sequence number to read from, source narrows the scan.
CREATE INDEX events_tenant_recorded ON events (tenant_id, recorded_at, seq);
CREATE INDEX events_tenant_source_seq ON events (tenant_id, source, seq);
