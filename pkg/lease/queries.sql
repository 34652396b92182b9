-- name: Stamp :exec
-- Stamps this instance as alive.
INSERT INTO lease_members (grp, instance, seen_at) VALUES (@grp, @instance, now())
ON CONFLICT (grp, instance) DO UPDATE SET seen_at = now();

-- name: Forget :exec
-- Forgets the members not seen for longer than a TTL.
DELETE FROM lease_members
WHERE grp = @grp AND seen_at < now() - (sqlc.arg(ttl_ms)::bigint * interval '1 millisecond');

-- name: Alive :one
-- Counts the live members of a group.
SELECT count(*)::int AS alive FROM lease_members
WHERE grp = @grp AND seen_at >= now() - (sqlc.arg(ttl_ms)::bigint * interval '1 millisecond');

-- name: Leave :exec
DELETE FROM lease_members WHERE grp = @grp AND instance = @instance;

-- name: EnsurePartitions :exec
INSERT INTO partition_leases (grp, partition)
SELECT @grp, p FROM generate_series(0, sqlc.arg(partitions)::int - 1) AS p
ON CONFLICT (grp, partition) DO NOTHING;

-- name: Renew :many
-- Extends every lease this instance still holds and returns them: a
-- partition missing from the answer was taken over and must stop at once.
UPDATE partition_leases SET expires_at = now() + (sqlc.arg(ttl_ms)::bigint * interval '1 millisecond')
WHERE grp = @grp AND owner = sqlc.arg(instance)::text
RETURNING partition, epoch;

-- name: Acquire :many
-- Takes up to n partitions that are free or whose lease expired. The epoch
-- moves with every change of owner. SKIP LOCKED lets instances acquire at
-- the same time without waiting on each other; a row locked FOR SHARE by a
-- worker's transaction (Hold) is skipped too, so a takeover never happens
-- under a transaction of the previous owner.
UPDATE partition_leases l SET owner = sqlc.arg(instance)::text, epoch = l.epoch + 1, taken_at = now(), expires_at = now() + (sqlc.arg(ttl_ms)::bigint * interval '1 millisecond')
FROM (
    SELECT f.partition FROM partition_leases f
    WHERE f.grp = @grp AND f.partition < sqlc.arg(partitions)::int
      AND (f.owner IS NULL OR f.expires_at < now())
    ORDER BY f.partition
    LIMIT sqlc.arg(n)::int
    FOR UPDATE SKIP LOCKED
) free
WHERE l.grp = @grp AND l.partition = free.partition
RETURNING l.partition, l.epoch;

-- name: Release :exec
UPDATE partition_leases SET owner = NULL, expires_at = NULL
WHERE grp = @grp AND partition = @partition AND owner = sqlc.arg(instance)::text AND epoch = @epoch;

-- name: Hold :one
-- Fencing: inside a worker's transaction, locks the lease row FOR SHARE if
-- this instance still holds it with this epoch. An acquirer's UPDATE waits
-- for (or skips) the row until that transaction ends.
SELECT true AS held FROM partition_leases
WHERE grp = @grp AND partition = @partition AND owner = sqlc.arg(instance)::text AND epoch = @epoch
FOR SHARE;

-- name: Owners :many
-- Who holds what, for operators (prost status, /readyz details).
SELECT partition, owner, epoch, expires_at FROM partition_leases
WHERE grp = @grp ORDER BY partition;
