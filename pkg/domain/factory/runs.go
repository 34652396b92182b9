package factory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/factory/internal/factorydb"
	"github.com/prost-platform/prost/pkg/problem"
)

// Engine drives runs: services/factory implements it with durable workflows
// (DBOS) on PROST's Postgres. The calls that take a transaction act when it
// commits, together with the caller's writes.
type Engine interface {
	// Enqueue starts run's saga in tx. A run waits in its queue while
	// another run of the same tenant and module is active.
	Enqueue(ctx context.Context, tx pgx.Tx, run *Run) error
	// Decide hands a decision to run, waiting at its approval stage, in tx.
	Decide(ctx context.Context, tx pgx.Tx, run *Run, a Approval) error
	// Cancel stops run at its next step.
	Cancel(ctx context.Context, run *Run) error
	// Rerun starts rerun, a new run, as a fork of orig from stage from: the
	// stages before it are not run again.
	Rerun(ctx context.Context, orig, rerun *Run, from Stage) error
}

// Runs is the factory's API: start, read, decide, cancel and rerun runs, and
// verify their PEC chain. It is safe for concurrent use.
type Runs struct {
	store  *Store
	engine Engine
	log    *slog.Logger
}

// NewRuns returns the runs API over store. With a nil engine, runs can be
// read and verified but not started, decided, cancelled or rerun
// (ErrNoEngine).
func NewRuns(store *Store, engine Engine, log *slog.Logger) *Runs {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runs{store: store, engine: engine, log: log}
}

// Store is the store the runs live in.
func (r *Runs) Store() *Store { return r.store }

// Start records req (as a factory.module.requested event in the tenant's
// stream) and starts its run, in one transaction. The factory consumer
// sees the event later and, finding the run, does nothing.
func (r *Runs) Start(ctx context.Context, tenant uuid.UUID, req Request) (*Run, error) {
	if r.engine == nil {
		return nil, ErrNoEngine
	}
	if err := req.Normalize(); err != nil {
		return nil, err
	}
	if err := r.fillPack0(ctx, tenant, &req); err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	evID := id.String()
	run := newRun(RunIDFor(tenant, Source, evID), tenant, req, EventRef{Source: Source, ID: evID})
	data, _ := json.Marshal(req)
	ne, err := r.store.stored(tenant, run.ID, cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: evID, Source: Source,
		Type: TypeModuleRequested, Subject: req.Module, Time: time.Now().UTC(), DataContentType: "application/json", Data: data})
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, r.store.pool, func(tx pgx.Tx) error {
		if _, err := r.store.insertRun(ctx, tx, run); err != nil {
			return err
		}
		if err := r.store.emit(ctx, tx, ne); err != nil {
			return err
		}
		return r.engine.Enqueue(ctx, tx, run)
	})
	if err != nil {
		return nil, fmt.Errorf("factory: start run: %w", err)
	}
	return r.store.Run(ctx, tenant, run.ID)
}

func newRun(id, tenant uuid.UUID, req Request, ev EventRef) *Run {
	return &Run{ID: id, TenantID: tenant, Module: req.Module, State: req.State, Status: StatusQueued,
		AutoDeploy: req.AutoDeploy, DeployTarget: req.DeployTarget, DryRun: req.DryRun, MVP: req.State == Pressao,
		Pack0: req.Pack0, Request: ev, RequestedBy: req.RequestedBy}
}

// fillPack0 takes the Pack0 of the module's latest run when req has none.
func (r *Runs) fillPack0(ctx context.Context, tenant uuid.UUID, req *Request) error {
	if len(req.Pack0) > 0 {
		return nil
	}
	p, err := r.store.q.LatestPack0(ctx, factorydb.LatestPack0Params{TenantID: tenant, Module: req.Module})
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNoPack0
	}
	if err != nil {
		return fmt.Errorf("factory: read the module's Pack0: %w", err)
	}
	req.Pack0 = p
	return nil
}

// HandleEvents is the factory consumer's handler: every
// factory.module.requested event starts one run, whose id derives from the
// event (RunIDFor), in the consumer's transaction. A request that cannot be
// run (no Pack0, a malformed request) is recorded as a failed run saying
// why, so the requester can see it.
func (r *Runs) HandleEvents(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
	for _, m := range msgs {
		ev, err := cloudevent.ParseStructured(m.Data)
		if err != nil || ev.Type != TypeModuleRequested {
			continue
		}
		tv, _ := ev.Extension("tenantid")
		ts, _ := tv.(string)
		tenant, err := uuid.Parse(ts)
		if err != nil {
			r.log.Warn("factory: a module request without a tenant is skipped", "event_id", ev.ID, "event_source", ev.Source)
			continue
		}
		var req Request
		var reason string
		if err := json.Unmarshal(ev.Data, &req); err != nil {
			reason = "the request's data is not a module request: " + err.Error()
		} else if err := req.Normalize(); err != nil {
			reason = describe(err)
		} else if err := r.fillPack0(ctx, tenant, &req); err != nil {
			reason = describe(err)
		}
		if req.State == "" {
			req.State = Normal
		}
		if req.DeployTarget == "" {
			req.DeployTarget = TargetLocal
		}
		if !moduleRe.MatchString(req.Module) {
			req.Module = "invalid"
		}
		run := newRun(RunIDFor(tenant, ev.Source, ev.ID), tenant, req, EventRef{Source: ev.Source, ID: ev.ID})
		if reason != "" || r.engine == nil {
			if reason == "" {
				reason = "the factory engine is not running"
			}
			run.Status, run.Error = StatusFailed, reason
		}
		created, err := r.store.insertRun(ctx, tx, run)
		if err != nil {
			return err
		}
		if !created {
			continue // this event's run exists: a redelivery, or POST /v1/factory/runs started it
		}
		if run.Status == StatusFailed {
			if err := factorydb.New(tx).SetRunStatus(ctx, factorydb.SetRunStatusParams{Status: string(StatusFailed), Error: reason,
				Final: true, TenantID: tenant, RunID: run.ID}); err != nil {
				return err
			}
			r.log.Warn("factory: module request refused", "tenant", tenant, "run_id", run.ID, "reason", reason)
			continue
		}
		if err := r.engine.Enqueue(ctx, tx, run); err != nil {
			return fmt.Errorf("factory: start run %s: %w", run.ID, err)
		}
	}
	return nil
}

// describe is an error's message with its field details.
func describe(err error) string {
	p := problem.From(err)
	var parts []string
	for _, f := range p.Errors {
		parts = append(parts, f.Field+": "+f.Detail)
	}
	if len(parts) == 0 {
		return p.Detail
	}
	return p.Detail + ": " + strings.Join(parts, "; ")
}

// Get returns a run with its stages, gates and deployment.
func (r *Runs) Get(ctx context.Context, tenant, id uuid.UUID) (*Run, error) {
	return r.store.Run(ctx, tenant, id)
}

// ListParams selects a page of a tenant's runs, newest first.
type ListParams struct {
	Module string
	Status Status
	Cursor string
	// Limit defaults to 50; at most 1,000.
	Limit int
}

// Page is a page of runs.
type Page struct {
	Items      []*Run
	NextCursor string
}

// List returns a page of a tenant's runs, newest first.
func (r *Runs) List(ctx context.Context, tenant uuid.UUID, p ListParams) (Page, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	p.Limit = min(p.Limit, 1000)
	arg := factorydb.ListRunsParams{TenantID: tenant, MaxRows: int32(p.Limit + 1)}
	if p.Module != "" {
		arg.Module = &p.Module
	}
	if p.Status != "" {
		s := string(p.Status)
		arg.Status = &s
	}
	if p.Cursor != "" {
		c, err := cursor.ParseString("r", p.Cursor)
		if err != nil {
			return Page{}, err
		}
		at, id, ok := strings.Cut(c, "|")
		t, terr := time.Parse(time.RFC3339Nano, at)
		u, uerr := uuid.Parse(id)
		if !ok || terr != nil || uerr != nil {
			return Page{}, cursor.ErrInvalid
		}
		arg.AfterAt, arg.AfterID = &t, &u
	}
	rows, err := r.store.q.ListRuns(ctx, arg)
	if err != nil {
		return Page{}, fmt.Errorf("factory: list runs: %w", err)
	}
	var page Page
	if len(rows) > p.Limit {
		rows = rows[:p.Limit]
		last := rows[len(rows)-1]
		page.NextCursor = cursor.String("r", last.CreatedAt.UTC().Format(time.RFC3339Nano)+"|"+last.RunID.String())
	}
	page.Items = make([]*Run, len(rows))
	for i, x := range rows {
		page.Items[i] = runFromRow(factorydb.FactoryRun{RunID: x.RunID, TenantID: x.TenantID, Module: x.Module, State: x.State,
			Status: x.Status, Stage: x.Stage, AutoDeploy: x.AutoDeploy, DeployTarget: x.DeployTarget, DryRun: x.DryRun, Mvp: x.Mvp,
			RequestSource: x.RequestSource, RequestID: x.RequestID, RequestedBy: x.RequestedBy, RerunOf: x.RerunOf,
			RerunFrom: x.RerunFrom, Error: x.Error, CreatedAt: x.CreatedAt, UpdatedAt: x.UpdatedAt, FinishedAt: x.FinishedAt})
	}
	return page, nil
}

// Decide records a decision on a run waiting at its approval stage (an
// approval record: who, when, what) and hands it to the run, in one
// transaction. A run that is not waiting is ErrNotAwaitingApproval.
func (r *Runs) Decide(ctx context.Context, tenant, id uuid.UUID, a Approval) (*Run, error) {
	if r.engine == nil {
		return nil, ErrNoEngine
	}
	if a.Decision != DecisionApprove && a.Decision != DecisionReject {
		return nil, problem.InvalidField("decision", "approve or reject")
	}
	if strings.TrimSpace(a.Actor) == "" {
		return nil, problem.InvalidField("actor", "required: who decides")
	}
	if len(a.Actor) > 200 || len(a.Reason) > 2000 {
		return nil, problem.Errorf(problem.Invalid, "actor is at most 200 characters and reason at most 2000")
	}
	err := pgx.BeginFunc(ctx, r.store.pool, func(tx pgx.Tx) error {
		row, err := factorydb.New(tx).GetRunForUpdate(ctx, factorydb.GetRunForUpdateParams{TenantID: tenant, RunID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrRunNotFound
		}
		if err != nil {
			return err
		}
		run := runFromRow(row)
		if run.Status != StatusAwaitingApproval {
			return fmt.Errorf("%w (it is %s)", ErrNotAwaitingApproval, run.Status)
		}
		rec, err := r.store.RecordApproval(ctx, tx, run.Key(), a)
		if err != nil {
			return err
		}
		if err := r.store.q.WithTx(tx).InsertLog(ctx, factorydb.InsertLogParams{RunID: id, TenantID: tenant, Stage: string(StageApproval),
			Line: truncate(fmt.Sprintf("%s by %s: %s", rec.Decision, rec.Actor, rec.Reason), 4000)}); err != nil {
			return err
		}
		return r.engine.Decide(ctx, tx, run, rec)
	})
	if err != nil {
		var pe *problem.Error
		if errors.As(err, &pe) || errors.Is(err, ErrNotAwaitingApproval) {
			return nil, err
		}
		return nil, fmt.Errorf("factory: decide: %w", err)
	}
	return r.store.Run(ctx, tenant, id)
}

// Cancel stops a run that has not ended; it stops at its next step.
func (r *Runs) Cancel(ctx context.Context, tenant, id uuid.UUID, actor string) (*Run, error) {
	if r.engine == nil {
		return nil, ErrNoEngine
	}
	run, err := r.store.Run(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if run.Status.Final() {
		return nil, fmt.Errorf("%w (it %s)", ErrRunFinished, run.Status)
	}
	if err := r.engine.Cancel(ctx, run); err != nil {
		return nil, fmt.Errorf("factory: cancel: %w", err)
	}
	msg := "cancelled"
	if actor != "" {
		msg += " by " + actor
	}
	if err := r.store.SetStatus(ctx, run.Key(), StatusCancelled, "", msg, false); err != nil {
		return nil, err
	}
	_ = r.store.Log(ctx, run.Key(), run.Stage, msg)
	return r.store.Run(ctx, tenant, id)
}

// Rerun starts a new run of an ended run's request from stage from: the new
// run reuses the stages before it (their records and artifacts are copied,
// marked reused) and runs from and every later stage again.
func (r *Runs) Rerun(ctx context.Context, tenant, id uuid.UUID, from Stage, actor string) (*Run, error) {
	if r.engine == nil {
		return nil, ErrNoEngine
	}
	orig, err := r.store.Run(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if !orig.Status.Final() {
		return nil, fmt.Errorf("%w (it is %s)", ErrRunActive, orig.Status)
	}
	if from.Position() < 0 {
		return nil, problem.InvalidField("from", "one of "+stageList())
	}
	reached := from == StagePack0
	for _, st := range orig.Stages {
		if st.Stage == from && st.Status != "skipped" {
			reached = true
		}
	}
	if !reached {
		return nil, problem.Errorf(problem.Conflict, "run %s never reached stage %s: rerun it from an earlier stage", id, from).
			WithField("from", "a stage the run went through")
	}
	nid, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	req := Request{Module: orig.Module, State: orig.State, AutoDeploy: orig.AutoDeploy, DeployTarget: orig.DeployTarget,
		DryRun: orig.DryRun, RequestedBy: actor, Pack0: orig.Pack0}
	if req.RequestedBy == "" {
		req.RequestedBy = orig.RequestedBy
	}
	rerun := newRun(nid, tenant, req, EventRef{Source: Source, ID: "rerun/" + nid.String()})
	rerun.RerunOf, rerun.RerunFrom = &orig.ID, from
	var before []string
	var gates []string
	for _, st := range Stages[:from.Position()] {
		before = append(before, string(st))
		switch st {
		case StagePack0:
			gates = append(gates, GatePack0)
		case StageTests:
			gates = append(gates, GateTests)
		case StageGates:
			for _, g := range orig.Gates {
				if g.Gate != GatePack0 && g.Gate != GateTests {
					gates = append(gates, g.Gate)
				}
			}
		}
	}
	err = pgx.BeginFunc(ctx, r.store.pool, func(tx pgx.Tx) error {
		q := factorydb.New(tx)
		if _, err := r.store.insertRun(ctx, tx, rerun); err != nil {
			return err
		}
		if err := q.CopyStages(ctx, factorydb.CopyStagesParams{NewRunID: nid, TenantID: tenant, RunID: id, BeforePosition: int32(from.Position())}); err != nil {
			return err
		}
		if err := q.CopyGates(ctx, factorydb.CopyGatesParams{NewRunID: nid, TenantID: tenant, RunID: id, Gates: gates}); err != nil {
			return err
		}
		if err := q.CopyFindings(ctx, factorydb.CopyFindingsParams{NewRunID: nid, TenantID: tenant, RunID: id, Gates: gates}); err != nil {
			return err
		}
		if err := q.CopyArtifacts(ctx, factorydb.CopyArtifactsParams{NewRunID: nid, TenantID: tenant, RunID: id, Stages: before}); err != nil {
			return err
		}
		if from.Position() > StageApproval.Position() {
			if err := q.CopyApprovals(ctx, factorydb.CopyApprovalsParams{NewRunID: nid, TenantID: tenant, RunID: id}); err != nil {
				return err
			}
		}
		return q.InsertLog(ctx, factorydb.InsertLogParams{RunID: nid, TenantID: tenant, Stage: string(from),
			Line: fmt.Sprintf("rerun of %s from stage %s: the stages before it are reused", id, from)})
	})
	if err != nil {
		return nil, fmt.Errorf("factory: rerun: %w", err)
	}
	if err := r.engine.Rerun(ctx, orig, rerun, from); err != nil {
		_ = r.store.SetStatus(ctx, rerun.Key(), StatusFailed, "", "the rerun could not start: "+err.Error(), false)
		return nil, fmt.Errorf("factory: rerun: %w", err)
	}
	return r.store.Run(ctx, tenant, nid)
}
