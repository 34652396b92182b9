package factory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/factory/internal/factorydb"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

// StoreConfig tunes a Store. The zero value is usable.
type StoreConfig struct {
	// Partitions is the gateway's PROST_PARTITIONS: the factory's events are
	// published on the partition of their run. Defaults to DefaultPartitions.
	Partitions int
	// SecretsKey (PROST_SECRETS_KEY) seals each tenant's signing key. Without
	// it no run can sign its manifest (verification needs only public keys).
	SecretsKey *secretbox.Key
}

// Store keeps runs and everything they record. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	q    *factorydb.Queries
	cfg  StoreConfig
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool, cfg StoreConfig) *Store {
	if cfg.Partitions <= 0 {
		cfg.Partitions = subjects.DefaultPartitions
	}
	return &Store{pool: pool, q: factorydb.New(pool), cfg: cfg}
}

// Pool is the store's pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// RunKey identifies a run for the steps that record it.
type RunKey struct {
	ID       uuid.UUID `json:"id"`
	TenantID uuid.UUID `json:"tenant_id"`
	Module   string    `json:"module"`
	State    State     `json:"state"`
}

// Key is the run's RunKey.
func (r *Run) Key() RunKey {
	return RunKey{ID: r.ID, TenantID: r.TenantID, Module: r.Module, State: r.State}
}

func runFromRow(r factorydb.FactoryRun) *Run {
	run := &Run{ID: r.RunID, TenantID: r.TenantID, Module: r.Module, State: State(r.State), Status: Status(r.Status),
		Stage: Stage(r.Stage), AutoDeploy: r.AutoDeploy, DeployTarget: Target(r.DeployTarget), DryRun: r.DryRun, MVP: r.Mvp,
		RequestedBy: r.RequestedBy, Request: EventRef{Source: r.RequestSource, ID: r.RequestID}, RerunOf: r.RerunOf,
		RerunFrom: Stage(r.RerunFrom), Error: r.Error, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt}
	if len(r.Pack0) > 0 && string(r.Pack0) != "{}" {
		run.Pack0 = r.Pack0
	}
	return run
}

// insertRun stores run in tx; false when a run for the same request exists.
func (s *Store) insertRun(ctx context.Context, tx pgx.Tx, run *Run) (bool, error) {
	pack0 := []byte(run.Pack0)
	if len(pack0) == 0 {
		pack0 = []byte("{}")
	}
	n, err := factorydb.New(tx).InsertRun(ctx, factorydb.InsertRunParams{
		RunID: run.ID, TenantID: run.TenantID, Module: run.Module, State: string(run.State), Status: string(run.Status),
		AutoDeploy: run.AutoDeploy, DeployTarget: string(run.DeployTarget), DryRun: run.DryRun, Mvp: run.MVP, Pack0: pack0,
		RequestSource: run.Request.Source, RequestID: run.Request.ID, RequestedBy: run.RequestedBy,
		RerunOf: run.RerunOf, RerunFrom: string(run.RerunFrom),
	})
	if err != nil {
		return false, fmt.Errorf("factory: store run: %w", err)
	}
	return n == 1, nil
}

// Run returns one run of a tenant, with its stages, gates and deployment.
func (s *Store) Run(ctx context.Context, tenant, id uuid.UUID) (*Run, error) {
	r, err := s.q.GetRun(ctx, factorydb.GetRunParams{TenantID: tenant, RunID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrRunNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("factory: read run: %w", err)
	}
	run := runFromRow(r)
	stages, err := s.q.ListStages(ctx, factorydb.ListStagesParams{TenantID: tenant, RunID: id})
	if err != nil {
		return nil, fmt.Errorf("factory: read stages: %w", err)
	}
	for _, st := range stages {
		rec := StageRecord{Stage: Stage(st.Stage), Status: st.Status, Executions: int(st.Executions), Reused: st.Reused,
			Error: st.Error, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}
		if len(st.Detail) > 0 && string(st.Detail) != "{}" {
			rec.Detail = st.Detail
		}
		run.Stages = append(run.Stages, rec)
	}
	gates, err := s.q.ListGates(ctx, factorydb.ListGatesParams{TenantID: tenant, RunID: id})
	if err != nil {
		return nil, fmt.Errorf("factory: read gates: %w", err)
	}
	for _, g := range gates {
		run.Gates = append(run.Gates, GateRecord{Gate: g.Gate, Status: g.Status, Blocking: g.Blocking, Tool: g.Tool,
			Executions: int(g.Executions), Summary: g.Summary, Findings: int(g.Findings), StartedAt: g.StartedAt, FinishedAt: g.FinishedAt})
	}
	d, err := s.q.RunDeployment(ctx, factorydb.RunDeploymentParams{TenantID: tenant, RunID: id})
	switch {
	case err == nil:
		run.Deployment = deploymentFromRow(d)
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("factory: read deployment: %w", err)
	}
	return run, nil
}

// SetStatus moves a run to status (and stage, unless empty), recording
// errMsg; mvp marks it an MVP build.
func (s *Store) SetStatus(ctx context.Context, k RunKey, status Status, stage Stage, errMsg string, mvp bool) error {
	err := s.q.SetRunStatus(ctx, factorydb.SetRunStatusParams{Status: string(status), Stage: string(stage), Error: errMsg,
		Mvp: mvp, Final: status.Final(), TenantID: k.TenantID, RunID: k.ID})
	if err != nil {
		return fmt.Errorf("factory: set run status: %w", err)
	}
	return nil
}

// event builds one of the factory's events about run k: published on the
// run's partition (its id is the partition key), so a run's events stay in
// order in the stream.
func (s *Store) event(k RunKey, typ, id string, data any) (eventstore.NewEvent, error) {
	body, err := json.Marshal(data)
	if err != nil {
		return eventstore.NewEvent{}, err
	}
	return s.stored(k.TenantID, k.ID, cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: id, Source: Source, Type: typ,
		Subject: k.ID.String(), Time: time.Now().UTC(), DataContentType: "application/json", Data: body})
}

// stored is the stored form of ev, an event of tenant about run.
func (s *Store) stored(tenant, run uuid.UUID, ev cloudevent.Event) (eventstore.NewEvent, error) {
	ev.SetExtension("tenantid", tenant.String())
	ev.SetExtension("partitionkey", run.String())
	if err := ev.Validate(); err != nil {
		return eventstore.NewEvent{}, err
	}
	return eventstore.NewEvent{TenantID: tenant, Source: ev.Source, ID: ev.ID, Type: ev.Type, Subject: ev.Subject,
		Time: ev.Time, PartitionKey: run.String(), Envelope: ev.AppendJSON(nil),
		OutboxSubject: subjects.Event(tenant, subjects.Partition(run.String(), s.cfg.Partitions), ev.Type)}, nil
}

// emit appends events in tx: written with the step that caused them, each
// with an id derived from the run and the step, so a step repeated after a
// crash records its event once.
func (s *Store) emit(ctx context.Context, tx pgx.Tx, evs ...eventstore.NewEvent) error {
	if _, err := eventstore.AppendTx(ctx, tx, evs); err != nil {
		return fmt.Errorf("factory: emit: %w", err)
	}
	return eventstore.NotifyTx(ctx, tx)
}

// StageEvent is the data of the factory.stage.* events.
type StageEvent struct {
	RunID  uuid.UUID       `json:"run_id"`
	Module string          `json:"module"`
	State  State           `json:"state"`
	Stage  Stage           `json:"stage"`
	Error  string          `json:"error,omitempty"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

// GateEvent is the data of the factory.gate.* events.
type GateEvent struct {
	RunID    uuid.UUID `json:"run_id"`
	Module   string    `json:"module"`
	State    State     `json:"state"`
	Gate     string    `json:"gate"`
	Blocking bool      `json:"blocking"`
	Tool     string    `json:"tool,omitempty"`
	Findings int       `json:"findings"`
	Summary  string    `json:"summary"`
}

// StartStage records that a stage of run k started: the stage row (its
// executions counted), the run's status (running, or awaiting_approval), a
// log line and the factory.stage.started event, in one transaction. It
// returns how many times the stage has started.
func (s *Store) StartStage(ctx context.Context, k RunKey, st Stage, status Status) (int, error) {
	ev, err := s.event(k, TypeStageStarted, k.ID.String()+"/"+string(st)+"/started",
		StageEvent{RunID: k.ID, Module: k.Module, State: k.State, Stage: st})
	if err != nil {
		return 0, err
	}
	var n int32
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := factorydb.New(tx)
		var err error
		if n, err = q.StartStage(ctx, factorydb.StartStageParams{RunID: k.ID, TenantID: k.TenantID, Stage: string(st), Position: int32(st.Position())}); err != nil {
			return err
		}
		if err := q.SetRunStatus(ctx, factorydb.SetRunStatusParams{Status: string(status), Stage: string(st), TenantID: k.TenantID, RunID: k.ID}); err != nil {
			return err
		}
		line := "stage " + string(st) + " started"
		if n > 1 {
			line += fmt.Sprintf(" (execution %d: the previous one was interrupted)", n)
		}
		if err := q.InsertLog(ctx, factorydb.InsertLogParams{RunID: k.ID, TenantID: k.TenantID, Stage: string(st), Line: line}); err != nil {
			return err
		}
		return s.emit(ctx, tx, ev)
	})
	if err != nil {
		return 0, fmt.Errorf("factory: start stage %s: %w", st, err)
	}
	return int(n), nil
}

// FinishStage records how a stage of run k ended, with the
// factory.stage.succeeded or factory.stage.failed event.
func (s *Store) FinishStage(ctx context.Context, k RunKey, st Stage, ok bool, detail any, errMsg string) error {
	typ, status, verb := TypeStageSucceeded, "succeeded", "succeeded"
	if !ok {
		typ, status, verb = TypeStageFailed, "failed", "failed"
	}
	det := []byte("{}")
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		det = b
	}
	data := StageEvent{RunID: k.ID, Module: k.Module, State: k.State, Stage: st, Error: errMsg}
	if string(det) != "{}" && string(det) != "null" {
		data.Detail = det
	}
	ev, err := s.event(k, typ, k.ID.String()+"/"+string(st)+"/"+verb, data)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := factorydb.New(tx)
		if err := q.FinishStage(ctx, factorydb.FinishStageParams{Status: status, Detail: det, Error: errMsg, RunID: k.ID,
			TenantID: k.TenantID, Stage: string(st)}); err != nil {
			return err
		}
		line := "stage " + string(st) + " " + verb
		if errMsg != "" {
			line += ": " + errMsg
		}
		if err := q.InsertLog(ctx, factorydb.InsertLogParams{RunID: k.ID, TenantID: k.TenantID, Stage: string(st), Line: truncate(line, 4000)}); err != nil {
			return err
		}
		return s.emit(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("factory: finish stage %s: %w", st, err)
	}
	return nil
}

// SkipStage records a stage the run does not go through (a dry run's
// approval, manifest and deploy), with the reason. It emits no event.
func (s *Store) SkipStage(ctx context.Context, k RunKey, st Stage, reason string) error {
	det, _ := json.Marshal(map[string]string{"reason": reason})
	err := s.q.SkipStage(ctx, factorydb.SkipStageParams{RunID: k.ID, TenantID: k.TenantID, Stage: string(st), Position: int32(st.Position()), Detail: det})
	if err == nil {
		err = s.Log(ctx, k, st, "stage "+string(st)+" skipped: "+reason)
	}
	return err
}

// StartGate records that a gate of run k started.
func (s *Store) StartGate(ctx context.Context, k RunKey, gate string, blocking bool) error {
	return s.q.StartGate(ctx, factorydb.StartGateParams{RunID: k.ID, TenantID: k.TenantID, Gate: gate, Blocking: blocking})
}

// FinishGate records a gate's verdict and findings (replacing those of an
// earlier execution) with the factory.gate.passed or factory.gate.failed
// event, in one transaction.
func (s *Store) FinishGate(ctx context.Context, k RunKey, res GateResult) error {
	typ, status, verb := TypeGatePassed, "passed", "passed"
	if !res.Passed {
		typ, status, verb = TypeGateFailed, "failed", "failed"
	}
	if res.Skipped {
		status = "skipped"
	}
	ev, err := s.event(k, typ, k.ID.String()+"/gate/"+res.Gate+"/"+verb, GateEvent{RunID: k.ID, Module: k.Module, State: k.State,
		Gate: res.Gate, Blocking: res.Blocking, Tool: res.Tool, Findings: len(res.Findings), Summary: truncate(res.Summary, 1000)})
	if err != nil {
		return err
	}
	rows := make([]factorydb.InsertFindingsParams, len(res.Findings))
	for i, f := range res.Findings {
		rows[i] = factorydb.InsertFindingsParams{RunID: k.ID, TenantID: k.TenantID, Gate: res.Gate, Rule: truncate(f.Rule, 200),
			File: truncate(f.File, 1000), Line: int32(f.Line), Severity: truncate(f.Severity, 50), Message: truncate(f.Message, 4000), Blocking: f.Blocking}
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := factorydb.New(tx)
		if err := q.DeleteFindings(ctx, factorydb.DeleteFindingsParams{TenantID: k.TenantID, RunID: k.ID, Gate: res.Gate}); err != nil {
			return err
		}
		if len(rows) > 0 {
			if _, err := q.InsertFindings(ctx, rows); err != nil {
				return err
			}
		}
		if err := q.FinishGate(ctx, factorydb.FinishGateParams{RunID: k.ID, TenantID: k.TenantID, Gate: res.Gate, Status: status,
			Blocking: res.Blocking, Tool: res.Tool, Summary: truncate(res.Summary, 4000), Findings: int32(len(res.Findings))}); err != nil {
			return err
		}
		line := "gate " + res.Gate + " " + verb + ": " + res.Summary
		if err := q.InsertLog(ctx, factorydb.InsertLogParams{RunID: k.ID, TenantID: k.TenantID, Stage: "", Line: truncate(line, 4000)}); err != nil {
			return err
		}
		return s.emit(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("factory: finish gate %s: %w", res.Gate, err)
	}
	return nil
}

// Log appends a line to run k's log.
func (s *Store) Log(ctx context.Context, k RunKey, st Stage, line string) error {
	return s.q.InsertLog(ctx, factorydb.InsertLogParams{RunID: k.ID, TenantID: k.TenantID, Stage: string(st), Line: truncate(line, 4000)})
}

// RecordAttempt records one try of the tests stage (replacing an earlier
// record of the same attempt).
func (s *Store) RecordAttempt(ctx context.Context, k RunKey, a Attempt) error {
	return s.q.UpsertAttempt(ctx, factorydb.UpsertAttemptParams{RunID: k.ID, TenantID: k.TenantID, Attempt: int32(a.Attempt),
		Passed: a.Passed, Output: truncate(a.Output, 64<<10), Healer: a.Healer, Healed: truncate(a.Healed, 4000)})
}

// RecordHeal records what healed an attempt.
func (s *Store) RecordHeal(ctx context.Context, k RunKey, attempt int, healer, healed string) error {
	return s.q.SetAttemptHealed(ctx, factorydb.SetAttemptHealedParams{TenantID: k.TenantID, RunID: k.ID, Attempt: int32(attempt),
		Healer: healer, Healed: truncate(healed, 4000)})
}

// Digest is the hex sha256 of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// PutArtifact stores content as run k's artifact name, made by stage st.
func (s *Store) PutArtifact(ctx context.Context, k RunKey, st Stage, name, mediaType string, content []byte) (Artifact, error) {
	a := Artifact{Name: name, Digest: Digest(content), MediaType: mediaType, Stage: st, Size: int64(len(content)), CreatedAt: time.Now()}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := factorydb.New(tx)
		if err := q.PutBlob(ctx, factorydb.PutBlobParams{TenantID: k.TenantID, Digest: a.Digest, Content: content, Size: a.Size}); err != nil {
			return err
		}
		return q.PutArtifact(ctx, factorydb.PutArtifactParams{RunID: k.ID, TenantID: k.TenantID, Name: name, Digest: a.Digest,
			MediaType: mediaType, Stage: string(st), Size: a.Size})
	})
	if err != nil {
		return Artifact{}, fmt.Errorf("factory: store artifact %s: %w", name, err)
	}
	return a, nil
}

// Artifact returns a run's artifact and its stored content.
func (s *Store) Artifact(ctx context.Context, tenant, run uuid.UUID, name string) (Artifact, []byte, error) {
	r, err := s.q.GetArtifact(ctx, factorydb.GetArtifactParams{TenantID: tenant, RunID: run, Name: name})
	if errors.Is(err, pgx.ErrNoRows) {
		return Artifact{}, nil, ErrArtifactNotFound
	}
	if err != nil {
		return Artifact{}, nil, fmt.Errorf("factory: read artifact: %w", err)
	}
	return Artifact{Name: r.Name, Digest: r.Digest, MediaType: r.MediaType, Stage: Stage(r.Stage), Size: r.Size, CreatedAt: r.CreatedAt}, r.Content, nil
}

// Artifacts lists a run's artifacts.
func (s *Store) Artifacts(ctx context.Context, tenant, run uuid.UUID) ([]Artifact, error) {
	rows, err := s.q.ListArtifacts(ctx, factorydb.ListArtifactsParams{TenantID: tenant, RunID: run})
	if err != nil {
		return nil, fmt.Errorf("factory: list artifacts: %w", err)
	}
	out := make([]Artifact, len(rows))
	for i, r := range rows {
		out[i] = Artifact{Name: r.Name, Digest: r.Digest, MediaType: r.MediaType, Stage: Stage(r.Stage), Size: r.Size, CreatedAt: r.CreatedAt}
	}
	return out, nil
}

// Findings lists a run's findings, of one gate when gate is not "".
func (s *Store) Findings(ctx context.Context, tenant, run uuid.UUID, gate string) ([]Finding, error) {
	var g *string
	if gate != "" {
		g = &gate
	}
	rows, err := s.q.ListFindings(ctx, factorydb.ListFindingsParams{TenantID: tenant, RunID: run, Gate: g})
	if err != nil {
		return nil, fmt.Errorf("factory: list findings: %w", err)
	}
	out := make([]Finding, len(rows))
	for i, r := range rows {
		out[i] = Finding{Gate: r.Gate, Rule: r.Rule, File: r.File, Line: int(r.Line), Severity: r.Severity, Message: r.Message, Blocking: r.Blocking}
	}
	return out, nil
}

// Attempts lists the tries of a run's tests stage.
func (s *Store) Attempts(ctx context.Context, tenant, run uuid.UUID) ([]Attempt, error) {
	rows, err := s.q.ListAttempts(ctx, factorydb.ListAttemptsParams{TenantID: tenant, RunID: run})
	if err != nil {
		return nil, fmt.Errorf("factory: list attempts: %w", err)
	}
	out := make([]Attempt, len(rows))
	for i, r := range rows {
		out[i] = Attempt{Attempt: int(r.Attempt), Passed: r.Passed, Output: r.Output, Healer: r.Healer, Healed: r.Healed, At: r.At}
	}
	return out, nil
}

// Logs returns up to limit lines of a run's log after line id after.
func (s *Store) Logs(ctx context.Context, tenant, run uuid.UUID, after int64, limit int) ([]LogLine, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.q.ListLogs(ctx, factorydb.ListLogsParams{TenantID: tenant, RunID: run, AfterID: after, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("factory: read logs: %w", err)
	}
	out := make([]LogLine, len(rows))
	for i, r := range rows {
		out[i] = LogLine{ID: r.ID, Stage: Stage(r.Stage), Line: r.Line, At: r.At}
	}
	return out, nil
}

// Approvals lists the decisions recorded on a run.
func (s *Store) Approvals(ctx context.Context, tenant, run uuid.UUID) ([]Approval, error) {
	rows, err := s.q.ListApprovals(ctx, factorydb.ListApprovalsParams{TenantID: tenant, RunID: run})
	if err != nil {
		return nil, fmt.Errorf("factory: read approvals: %w", err)
	}
	out := make([]Approval, len(rows))
	for i, r := range rows {
		out[i] = Approval{Decision: r.Decision, Actor: r.Actor, Reason: r.Reason, Automatic: r.Automatic, DecidedAt: r.DecidedAt}
	}
	return out, nil
}

// RecordApproval appends a decision on run k in tx.
func (s *Store) RecordApproval(ctx context.Context, tx pgx.Tx, k RunKey, a Approval) (Approval, error) {
	r, err := factorydb.New(tx).InsertApproval(ctx, factorydb.InsertApprovalParams{RunID: k.ID, TenantID: k.TenantID,
		Decision: a.Decision, Actor: a.Actor, Reason: a.Reason, Automatic: a.Automatic})
	if err != nil {
		return Approval{}, fmt.Errorf("factory: record approval: %w", err)
	}
	a.DecidedAt = r.DecidedAt
	return a, nil
}

func deploymentFromRow(d factorydb.FactoryDeployment) *Deployment {
	return &Deployment{ID: d.ID, Module: d.Module, Target: Target(d.Target), RunID: d.RunID, Status: d.Status,
		BinaryDigest: d.BinaryDigest, Address: d.Address, Migrations: int(d.Migrations), Detail: d.Detail,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

// ActiveDeployment is a tenant's active deployment of module on target, or
// nil.
func (s *Store) ActiveDeployment(ctx context.Context, tenant uuid.UUID, module string, target Target) (*Deployment, error) {
	d, err := s.q.ActiveDeployment(ctx, factorydb.ActiveDeploymentParams{TenantID: tenant, Module: module, Target: string(target)})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("factory: read deployment: %w", err)
	}
	return deploymentFromRow(d), nil
}

// ActiveDeployments lists every tenant's active deployments on target, with
// their tenants.
func (s *Store) ActiveDeployments(ctx context.Context, target Target) ([]*Deployment, []uuid.UUID, error) {
	rows, err := s.q.ActiveDeployments(ctx, string(target))
	if err != nil {
		return nil, nil, fmt.Errorf("factory: list deployments: %w", err)
	}
	ds := make([]*Deployment, len(rows))
	ts := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ds[i], ts[i] = deploymentFromRow(r), r.TenantID
	}
	return ds, ts, nil
}

// RecordDeployment stores a deployment of run k. Making one active
// supersedes the module's active deployment on the same target, in the same
// transaction.
func (s *Store) RecordDeployment(ctx context.Context, k RunKey, d Deployment) (*Deployment, error) {
	var out *Deployment
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := factorydb.New(tx)
		if d.Status == DeploymentActive {
			prev, err := q.ActiveDeployment(ctx, factorydb.ActiveDeploymentParams{TenantID: k.TenantID, Module: k.Module, Target: string(d.Target)})
			switch {
			case err == nil:
				if err := q.SetDeployment(ctx, factorydb.SetDeploymentParams{ID: prev.ID, TenantID: k.TenantID, Status: DeploymentSuperseded,
					Address: "", Detail: "superseded by run " + k.ID.String()}); err != nil {
					return err
				}
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
		}
		r, err := q.InsertDeployment(ctx, factorydb.InsertDeploymentParams{TenantID: k.TenantID, Module: k.Module, Target: string(d.Target),
			RunID: k.ID, Status: d.Status, BinaryDigest: d.BinaryDigest, Address: d.Address, Migrations: int32(d.Migrations), Detail: truncate(d.Detail, 4000)})
		if err != nil {
			return err
		}
		out = deploymentFromRow(r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("factory: record deployment: %w", err)
	}
	return out, nil
}

// SetDeployment changes a deployment's status, address and detail.
func (s *Store) SetDeployment(ctx context.Context, tenant uuid.UUID, id int64, status, address, detail string) error {
	return s.q.SetDeployment(ctx, factorydb.SetDeploymentParams{ID: id, TenantID: tenant, Status: status, Address: address, Detail: truncate(detail, 4000)})
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
