-- name: InsertRun :execrows
INSERT INTO factory_runs (run_id, tenant_id, module, state, status, auto_deploy, deploy_target, dry_run, mvp, pack0,
    request_source, request_id, requested_by, rerun_of, rerun_from)
VALUES (@run_id, @tenant_id, @module, @state, @status, @auto_deploy, @deploy_target, @dry_run, @mvp, @pack0,
    @request_source, @request_id, @requested_by, sqlc.narg(rerun_of), @rerun_from)
ON CONFLICT DO NOTHING;

-- name: GetRun :one
SELECT * FROM factory_runs WHERE tenant_id = @tenant_id AND run_id = @run_id;

-- name: GetRunForUpdate :one
SELECT * FROM factory_runs WHERE tenant_id = @tenant_id AND run_id = @run_id FOR UPDATE;

-- name: ListRuns :many
SELECT run_id, tenant_id, module, state, status, stage, auto_deploy, deploy_target, dry_run, mvp,
    request_source, request_id, requested_by, rerun_of, rerun_from, error, created_at, updated_at, finished_at
FROM factory_runs
WHERE tenant_id = @tenant_id
  AND (sqlc.narg(module)::text IS NULL OR module = sqlc.narg(module)::text)
  AND (sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status)::text)
  AND (sqlc.narg(after_at)::timestamptz IS NULL
       OR (created_at, run_id) < (sqlc.narg(after_at)::timestamptz, sqlc.narg(after_id)::uuid))
ORDER BY created_at DESC, run_id DESC
LIMIT @max_rows;

-- name: LatestPack0 :one
SELECT pack0 FROM factory_runs
WHERE tenant_id = @tenant_id AND module = @module AND pack0 <> '{}'::jsonb
ORDER BY created_at DESC
LIMIT 1;

-- name: SetRunStatus :exec
UPDATE factory_runs SET status = @status,
    stage = CASE WHEN @stage::text = '' THEN stage ELSE @stage::text END,
    error = @error,
    mvp = mvp OR @mvp::boolean,
    updated_at = now(),
    finished_at = CASE WHEN @final::boolean THEN now() ELSE NULL END
WHERE tenant_id = @tenant_id AND run_id = @run_id AND finished_at IS NULL;

-- name: StartStage :one
INSERT INTO factory_stages (run_id, tenant_id, stage, position, status, executions, started_at)
VALUES (@run_id, @tenant_id, @stage, @position, 'running', 1, now())
ON CONFLICT (run_id, stage) DO UPDATE SET status = 'running', executions = factory_stages.executions + 1,
    error = '', finished_at = NULL
RETURNING executions;

-- name: FinishStage :exec
UPDATE factory_stages SET status = @status, detail = @detail, error = @error, finished_at = now()
WHERE run_id = @run_id AND tenant_id = @tenant_id AND stage = @stage;

-- name: SkipStage :exec
INSERT INTO factory_stages (run_id, tenant_id, stage, position, status, detail, error, started_at, finished_at)
VALUES (@run_id, @tenant_id, @stage, @position, 'skipped', @detail, '', now(), now())
ON CONFLICT (run_id, stage) DO NOTHING;

-- name: ListStages :many
SELECT * FROM factory_stages WHERE tenant_id = @tenant_id AND run_id = @run_id ORDER BY position;

-- name: CopyStages :exec
INSERT INTO factory_stages (run_id, tenant_id, stage, position, status, executions, reused, detail, error, started_at, finished_at)
SELECT @new_run_id, s.tenant_id, s.stage, s.position, s.status, 0, true, s.detail, s.error, s.started_at, s.finished_at
FROM factory_stages s
WHERE s.tenant_id = @tenant_id AND s.run_id = @run_id AND s.position < @before_position;

-- name: StartGate :exec
INSERT INTO factory_gates (run_id, tenant_id, gate, status, blocking, executions, started_at)
VALUES (@run_id, @tenant_id, @gate, 'running', @blocking, 1, now())
ON CONFLICT (run_id, gate) DO UPDATE SET status = 'running', executions = factory_gates.executions + 1,
    summary = '', findings = 0, finished_at = NULL;

-- name: FinishGate :exec
INSERT INTO factory_gates (run_id, tenant_id, gate, status, blocking, tool, executions, summary, findings, started_at, finished_at)
VALUES (@run_id, @tenant_id, @gate, @status, @blocking, @tool, 1, @summary, @findings, now(), now())
ON CONFLICT (run_id, gate) DO UPDATE SET status = @status, blocking = @blocking, tool = @tool, summary = @summary,
    findings = @findings, finished_at = now();

-- name: CopyGates :exec
INSERT INTO factory_gates (run_id, tenant_id, gate, status, blocking, tool, executions, summary, findings, started_at, finished_at)
SELECT @new_run_id, g.tenant_id, g.gate, g.status, g.blocking, g.tool, 0, g.summary, g.findings, g.started_at, g.finished_at
FROM factory_gates g WHERE g.tenant_id = @tenant_id AND g.run_id = @run_id AND g.gate = ANY(@gates::text[]);

-- name: CopyFindings :exec
INSERT INTO factory_findings (run_id, tenant_id, gate, rule, file, line, severity, message, blocking)
SELECT @new_run_id, f.tenant_id, f.gate, f.rule, f.file, f.line, f.severity, f.message, f.blocking
FROM factory_findings f WHERE f.tenant_id = @tenant_id AND f.run_id = @run_id AND f.gate = ANY(@gates::text[])
ORDER BY f.id;

-- name: ListGates :many
SELECT * FROM factory_gates WHERE tenant_id = @tenant_id AND run_id = @run_id ORDER BY started_at, gate;

-- name: DeleteFindings :exec
DELETE FROM factory_findings WHERE tenant_id = @tenant_id AND run_id = @run_id AND gate = @gate;

-- name: InsertFindings :copyfrom
INSERT INTO factory_findings (run_id, tenant_id, gate, rule, file, line, severity, message, blocking)
VALUES (@run_id, @tenant_id, @gate, @rule, @file, @line, @severity, @message, @blocking);

-- name: ListFindings :many
SELECT * FROM factory_findings
WHERE tenant_id = @tenant_id AND run_id = @run_id AND (sqlc.narg(gate)::text IS NULL OR gate = sqlc.narg(gate)::text)
ORDER BY id;

-- name: UpsertAttempt :exec
INSERT INTO factory_attempts (run_id, tenant_id, attempt, passed, output, healer, healed)
VALUES (@run_id, @tenant_id, @attempt, @passed, @output, @healer, @healed)
ON CONFLICT (run_id, attempt) DO UPDATE SET passed = @passed, output = @output,
    healer = CASE WHEN @healer::text = '' THEN factory_attempts.healer ELSE @healer::text END,
    healed = CASE WHEN @healed::text = '' THEN factory_attempts.healed ELSE @healed::text END,
    at = now();

-- name: SetAttemptHealed :exec
UPDATE factory_attempts SET healer = @healer, healed = @healed
WHERE tenant_id = @tenant_id AND run_id = @run_id AND attempt = @attempt;

-- name: ListAttempts :many
SELECT * FROM factory_attempts WHERE tenant_id = @tenant_id AND run_id = @run_id ORDER BY attempt;

-- name: InsertLog :exec
INSERT INTO factory_logs (run_id, tenant_id, stage, line) VALUES (@run_id, @tenant_id, @stage, @line);

-- name: ListLogs :many
SELECT * FROM factory_logs WHERE tenant_id = @tenant_id AND run_id = @run_id AND id > @after_id ORDER BY id LIMIT @max_rows;

-- name: PutBlob :exec
INSERT INTO factory_blobs (tenant_id, digest, content, size) VALUES (@tenant_id, @digest, @content, @size)
ON CONFLICT DO NOTHING;

-- name: PutArtifact :exec
INSERT INTO factory_artifacts (run_id, tenant_id, name, digest, media_type, stage, size)
VALUES (@run_id, @tenant_id, @name, @digest, @media_type, @stage, @size)
ON CONFLICT (run_id, name) DO UPDATE SET digest = @digest, media_type = @media_type, stage = @stage, size = @size, created_at = now();

-- name: GetArtifact :one
SELECT a.*, b.content FROM factory_artifacts a
LEFT JOIN factory_blobs b ON b.tenant_id = a.tenant_id AND b.digest = a.digest
WHERE a.tenant_id = @tenant_id AND a.run_id = @run_id AND a.name = @name;

-- name: ListArtifacts :many
SELECT * FROM factory_artifacts WHERE tenant_id = @tenant_id AND run_id = @run_id ORDER BY created_at, name;

-- name: ListArtifactsWithContent :many
SELECT a.*, b.content FROM factory_artifacts a
LEFT JOIN factory_blobs b ON b.tenant_id = a.tenant_id AND b.digest = a.digest
WHERE a.tenant_id = @tenant_id AND a.run_id = @run_id ORDER BY a.name;

-- name: CopyArtifacts :exec
INSERT INTO factory_artifacts (run_id, tenant_id, name, digest, media_type, stage, size, created_at)
SELECT @new_run_id, a.tenant_id, a.name, a.digest, a.media_type, a.stage, a.size, a.created_at
FROM factory_artifacts a WHERE a.tenant_id = @tenant_id AND a.run_id = @run_id AND a.stage = ANY(@stages::text[]);

-- name: InsertApproval :one
INSERT INTO factory_approvals (run_id, tenant_id, decision, actor, reason, automatic)
VALUES (@run_id, @tenant_id, @decision, @actor, @reason, @automatic)
RETURNING *;

-- name: ListApprovals :many
SELECT * FROM factory_approvals WHERE tenant_id = @tenant_id AND run_id = @run_id ORDER BY seq;

-- name: GetKey :one
SELECT * FROM factory_keys WHERE tenant_id = @tenant_id;

-- name: InsertKey :exec
INSERT INTO factory_keys (tenant_id, key_id, public_key, sealed_private) VALUES (@tenant_id, @key_id, @public_key, @sealed_private)
ON CONFLICT (tenant_id) DO NOTHING;

-- name: InsertDeployment :one
INSERT INTO factory_deployments (tenant_id, module, target, run_id, status, binary_digest, address, migrations, detail)
VALUES (@tenant_id, @module, @target, @run_id, @status, @binary_digest, @address, @migrations, @detail)
RETURNING *;

-- name: SetDeployment :exec
UPDATE factory_deployments SET status = @status, address = @address, detail = @detail, updated_at = now()
WHERE id = @id AND tenant_id = @tenant_id;

-- name: ActiveDeployment :one
SELECT * FROM factory_deployments WHERE tenant_id = @tenant_id AND module = @module AND target = @target AND status = 'active';

-- name: ActiveDeployments :many
SELECT * FROM factory_deployments WHERE target = @target AND status = 'active' ORDER BY id;

-- name: RunDeployment :one
SELECT * FROM factory_deployments WHERE tenant_id = @tenant_id AND run_id = @run_id ORDER BY id DESC LIMIT 1;

-- name: FindAuditEntry :one
SELECT seq, hash FROM audit_log
WHERE tenant_id = @tenant_id AND event_type = @event_type AND action = @action
ORDER BY seq DESC LIMIT 1;

-- name: CopyApprovals :exec
INSERT INTO factory_approvals (run_id, tenant_id, decision, actor, reason, automatic, decided_at)
SELECT @new_run_id, a.tenant_id, a.decision, a.actor, a.reason, a.automatic, a.decided_at
FROM factory_approvals a WHERE a.tenant_id = @tenant_id AND a.run_id = @run_id ORDER BY a.seq;
