-- Partition leases: how N instances of one worker group (a consumer, the
-- relay) share its partitions so that each partition is worked by exactly
-- one instance at a time (pkg/lease).
--
-- lease_members is who is alive: each instance stamps seen_at every
-- interval; a member not seen for a TTL is gone. partition_leases is who
-- owns what: owner and epoch change together when a partition is taken, and
-- a worker checks (owner, epoch) with FOR SHARE inside the transaction that
-- applies its work, so a takeover waits for that transaction and a worker
-- that lost its lease cannot commit afterwards (fencing).
CREATE TABLE lease_members (
    grp      text        NOT NULL,
    instance text        NOT NULL,
    seen_at  timestamptz NOT NULL,
    PRIMARY KEY (grp, instance)
);

CREATE TABLE partition_leases (
    grp        text        NOT NULL,
    partition  int         NOT NULL CHECK (partition >= 0),
    owner      text,
    epoch      bigint      NOT NULL DEFAULT 0,
    expires_at timestamptz,
    -- when the current owner took the partition
    taken_at   timestamptz,
    PRIMARY KEY (grp, partition)
);
