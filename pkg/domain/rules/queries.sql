-- name: CreateRule :one
INSERT INTO rules (rule_id, tenant_id, name, current_version, webhook_secret)
VALUES (@rule_id, @tenant_id, @name, 1, sqlc.narg(webhook_secret))
RETURNING *;

-- name: InsertVersion :one
INSERT INTO rule_versions (rule_id, version, tenant_id, document)
VALUES (@rule_id, @version, @tenant_id, @document)
RETURNING *;

-- name: GetRule :one
SELECT * FROM rules WHERE tenant_id = @tenant_id AND rule_id = @rule_id;

-- name: GetRuleForUpdate :one
SELECT * FROM rules WHERE tenant_id = @tenant_id AND rule_id = @rule_id FOR UPDATE;

-- name: GetRuleWithDocument :one
SELECT r.*, v.document, v.created_at AS version_created_at
FROM rules r JOIN rule_versions v ON v.rule_id = r.rule_id AND v.version = r.current_version
WHERE r.tenant_id = @tenant_id AND r.rule_id = @rule_id;

-- name: ListRules :many
SELECT r.*, v.document, v.created_at AS version_created_at
FROM rules r JOIN rule_versions v ON v.rule_id = r.rule_id AND v.version = r.current_version
WHERE r.tenant_id = @tenant_id
  AND (sqlc.narg(after_id)::uuid IS NULL OR r.rule_id > sqlc.narg(after_id)::uuid)
ORDER BY r.rule_id
LIMIT @max_rows;

-- name: UpdateRuleHead :one
UPDATE rules SET name = @name, current_version = @current_version,
    webhook_secret = COALESCE(sqlc.narg(webhook_secret), webhook_secret), updated_at = now()
WHERE tenant_id = @tenant_id AND rule_id = @rule_id
RETURNING *;

-- name: SetRuleStatus :one
-- Enabling a rule also turns its webhook back on and forgets its overruns;
-- either way the reason of an automatic disable is cleared.
UPDATE rules SET status = @status, updated_at = now(), overruns = 0, disabled_reason = NULL,
    webhook_status = CASE WHEN @status::text = 'active' THEN 'active' ELSE webhook_status END,
    webhook_disabled_at = CASE WHEN @status::text = 'active' THEN NULL ELSE webhook_disabled_at END,
    webhook_disabled_reason = CASE WHEN @status::text = 'active' THEN NULL ELSE webhook_disabled_reason END
WHERE tenant_id = @tenant_id AND rule_id = @rule_id
RETURNING *;

-- name: DisableWebhook :exec
UPDATE rules SET webhook_status = 'disabled', webhook_disabled_at = now(),
    webhook_disabled_reason = @reason, updated_at = now()
WHERE tenant_id = @tenant_id AND rule_id = @rule_id AND webhook_status = 'active';

-- name: GetVersion :one
SELECT * FROM rule_versions WHERE tenant_id = @tenant_id AND rule_id = @rule_id AND version = @version;

-- name: ListVersions :many
SELECT * FROM rule_versions WHERE tenant_id = @tenant_id AND rule_id = @rule_id
ORDER BY version;

-- name: ActiveRuleVersions :many
-- The version headers of every active rule of the given tenants: the engine
-- picks, per event, the version in force when the event was recorded.
SELECT v.rule_id, v.tenant_id, v.version, v.created_at, r.current_version, r.webhook_status, r.overruns
FROM rules r JOIN rule_versions v ON v.rule_id = r.rule_id
WHERE r.tenant_id = ANY(@tenant_ids::uuid[]) AND r.status = 'active'
ORDER BY v.rule_id, v.version;

-- name: GetVersionDocument :one
SELECT document FROM rule_versions WHERE rule_id = @rule_id AND version = @version;

-- name: DecisionExists :one
SELECT EXISTS (SELECT 1 FROM decisions
               WHERE tenant_id = @tenant_id AND rule_id = @rule_id AND event_source = @event_source AND event_id = @event_id);

-- name: InsertDecision :one
INSERT INTO decisions (decision_id, tenant_id, rule_id, rule_version, event_id, event_source, event_type, inputs, actions, status)
VALUES (@decision_id, @tenant_id, @rule_id, @rule_version, @event_id, @event_source, @event_type, @inputs, @actions, @status)
RETURNING *;

-- name: ListDecisions :many
SELECT d.*
FROM decisions d
WHERE d.tenant_id = @tenant_id
  AND d.seq > @after_seq
  AND (sqlc.narg(rule_id)::uuid IS NULL OR d.rule_id = sqlc.narg(rule_id)::uuid)
  AND (sqlc.narg(event_id)::text IS NULL OR d.event_id = sqlc.narg(event_id)::text)
ORDER BY d.seq
LIMIT @max_rows;

-- name: DeliveriesOf :many
SELECT * FROM webhook_deliveries WHERE decision_id = ANY(@decision_ids::uuid[]);

-- name: GetDelivery :one
SELECT * FROM webhook_deliveries WHERE webhook_id = @webhook_id;

-- name: RecordDelivery :exec
-- Records a webhook message's outcome; a delivered message is never changed
-- again.
INSERT INTO webhook_deliveries (webhook_id, tenant_id, rule_id, decision_id, url, status, http_status, attempts, job_id, last_error)
VALUES (@webhook_id, @tenant_id, @rule_id, @decision_id, @url, @status, sqlc.narg(http_status), @attempts, sqlc.narg(job_id), sqlc.narg(last_error))
ON CONFLICT (webhook_id) DO UPDATE
SET status = EXCLUDED.status, http_status = EXCLUDED.http_status, attempts = EXCLUDED.attempts,
    job_id = EXCLUDED.job_id, last_error = EXCLUDED.last_error, updated_at = now()
WHERE webhook_deliveries.status <> 'delivered';

-- name: GetEventEnvelope :one
SELECT envelope::text AS envelope FROM events WHERE tenant_id = @tenant_id AND source = @source AND id = @id;

-- name: LockTenantRules :exec
-- Serialises the creation of one tenant's rules, so its rule limit holds.
SELECT pg_advisory_xact_lock(hashtextextended('prost-rules:' || (@tenant_id::uuid)::text, 0));

-- name: CountRules :one
SELECT count(*) FROM rules WHERE tenant_id = @tenant_id;

-- name: RecordOverrun :one
-- One more evaluation of the rule in a row overran an event's time budget;
-- at max_overruns the rule is disabled with the reason.
UPDATE rules SET overruns = overruns + 1,
    status = CASE WHEN overruns + 1 >= @max_overruns::int THEN 'disabled' ELSE status END,
    disabled_reason = CASE WHEN overruns + 1 >= @max_overruns::int THEN @reason::text ELSE disabled_reason END,
    updated_at = now()
WHERE tenant_id = @tenant_id AND rule_id = @rule_id
RETURNING overruns, status;

-- name: ResetOverruns :exec
-- The rules evaluated within the budget again.
UPDATE rules SET overruns = 0 WHERE rule_id = ANY(@rule_ids::uuid[]) AND overruns > 0;

-- name: RuleGenerations :many
-- Where each tenant's rules stand (tenants whose rules never changed have
-- no row: generation 0).
SELECT tenant_id, gen FROM rule_generations WHERE tenant_id = ANY(@tenant_ids::uuid[]);
