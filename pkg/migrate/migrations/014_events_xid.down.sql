DROP FUNCTION prost_events_horizon();
DROP INDEX events_tenant_xid_seq;
ALTER TABLE events DROP COLUMN xid;
