DROP FUNCTION prost_events_horizon();
CREATE INDEX events_tenant_seq ON events (tenant_id, seq);
CREATE INDEX events_tenant_type_seq ON events (tenant_id, type, seq);
CREATE INDEX events_tenant_source_seq ON events (tenant_id, source, seq);
DROP INDEX events_tenant_source_xid_seq;
DROP INDEX events_tenant_type_xid_seq;
DROP INDEX events_tenant_xid_seq;
ALTER TABLE events DROP COLUMN xid;
