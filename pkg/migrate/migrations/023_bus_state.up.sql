-- The bus is derived state (issue 12): Postgres holds every event, and
-- JetStream only a copy that PROST can rebuild. These tables let PROST notice
-- a stream that lost messages it had acknowledged, and record each rebuild.
-- See pkg/busstate and docs/runbooks/disaster-recovery.md.

-- What PROST last saw of each stream it watches. created is the stream's
-- creation time as JetStream reports it: its identity (a stream deleted and
-- declared again, or one on a wiped or new server, has another). last_seq and
-- last_time are its last message at the last check; acked_seq is the highest
-- sequence JetStream acknowledged to the relay (written with the rows it
-- marks published), so a stream that ends before it lost acknowledged
-- messages. rebuild_since is where a rebuild must start to republish every
-- event a loss at this moment could take from a consumer.
CREATE TABLE bus_streams (
    stream        text        PRIMARY KEY,
    created       timestamptz NOT NULL,
    last_seq      bigint      NOT NULL DEFAULT 0,
    last_time     timestamptz,
    acked_seq     bigint      NOT NULL DEFAULT 0,
    rebuild_since timestamptz NOT NULL,
    checked_at    timestamptz NOT NULL DEFAULT now()
);

-- Every loss PROST detected and every rebuild an operator asked for. The
-- relay's leader works through the open ones (finished_at IS NULL) in id
-- order, republishing the events stored since `since`, not before
-- not_before (after a purge, JetStream would drop copies within its
-- duplicate window); cursor is where it is, so a new leader resumes there.
CREATE TABLE bus_rebuilds (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream       text        NOT NULL,
    cause        text        NOT NULL CHECK (cause IN ('loss', 'request')),
    reason       text        NOT NULL,
    since        timestamptz NOT NULL,
    not_before   timestamptz,
    requested_by text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    resolved_by  bigint,
    republished  bigint      NOT NULL DEFAULT 0,
    refused      bigint      NOT NULL DEFAULT 0,
    cursor       text        NOT NULL DEFAULT '',
    last_error   text        NOT NULL DEFAULT ''
);
CREATE INDEX bus_rebuilds_open ON bus_rebuilds (id) WHERE finished_at IS NULL;

-- prost audit verify checks that every stored event has its audit entry,
-- leaving out the events the bus refused for good; finding those among a
-- page of events takes this index (refused rows are rare: inserting a new
-- outbox row never touches it).
CREATE INDEX outbox_refused ON outbox (event_seq) WHERE refused_at IS NOT NULL;
