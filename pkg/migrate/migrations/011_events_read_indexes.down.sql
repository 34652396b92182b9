DROP INDEX IF EXISTS events_tenant_source_seq;
DROP INDEX IF EXISTS events_tenant_recorded;
