-- The transaction that stored each event (pg_current_xact_id()). Readers of
-- a tenant's events page in (xid, seq) order and stop before the oldest
-- transaction of this database still running: a transaction that commits
-- later always has a larger xid than any row handed out, so a poller
-- resuming from its cursor never skips an event that committed late (seq
-- alone is assigned before commit, and can). Events stored before this
-- migration have xid 0.
ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE events ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
-- The reads' indexes follow the new order; the (tenant, seq) ones they
-- replace would only cost ingest.
CREATE INDEX events_tenant_xid_seq ON events (tenant_id, xid, seq);
CREATE INDEX events_tenant_type_xid_seq ON events (tenant_id, type, xid, seq);
CREATE INDEX events_tenant_source_xid_seq ON events (tenant_id, source, xid, seq);
DROP INDEX events_tenant_seq;
DROP INDEX events_tenant_type_seq;
DROP INDEX events_tenant_source_seq;

-- The horizon of the calling statement's snapshot: the oldest transaction
-- still running in it, leaving out those pg_stat_activity shows in another
-- database (they cannot write this database's rows); the snapshot's xmax
-- when none is left. STABLE: it sees the caller's snapshot.
CREATE FUNCTION prost_events_horizon() RETURNS xid8
LANGUAGE sql STABLE AS $$
    WITH snap AS (SELECT pg_current_snapshot() AS s)
    SELECT coalesce(
        (SELECT min(x) FROM snap, pg_snapshot_xip(snap.s) AS x
         WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                           WHERE a.backend_xid = x::xid AND a.datname <> current_database())),
        (SELECT pg_snapshot_xmax(snap.s) FROM snap))
$$;
