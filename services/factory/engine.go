package factorysvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// Engine is the factory.Engine on DBOS: it enqueues, decides, cancels and
// forks runs. The service has one on its own DBOS context; a process that
// serves the API without running the factory makes one with NewEngine.
type Engine struct {
	c      dbos.Client
	closer func()
}

var _ factory.Engine = (*Engine)(nil)

// NewEngine connects a DBOS client to databaseURL (creating or migrating the
// factory's DBOS schema first), for a process that starts runs but does not
// run them. Close it when done.
func NewEngine(ctx context.Context, databaseURL string, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := dbos.Migrate(ctx, databaseURL, dbos.WithMigrateSchema(DBOSSchema), dbos.WithMigrateLogger(log)); err != nil {
		return nil, fmt.Errorf("factory: migrate the dbos schema: %w", err)
	}
	c, err := dbos.NewClient(ctx, dbos.ClientConfig{AppName: AppName, DatabaseURL: databaseURL, DatabaseSchema: DBOSSchema, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("factory: dbos client: %w", err)
	}
	if _, err := registerQueue(c, DefaultQueuePoll); err != nil {
		_ = c.Shutdown(c, 5*time.Second)
		return nil, err
	}
	return &Engine{c: c, closer: func() { _ = c.Shutdown(c, 5*time.Second) }}, nil
}

// Run waits for ctx to end, then closes the engine: a lifecycle component
// for processes that made it with NewEngine.
func (e *Engine) Run(ctx context.Context) error {
	<-ctx.Done()
	e.Close()
	return nil
}

// Close releases a client made by NewEngine.
func (e *Engine) Close() {
	if e.closer != nil {
		e.closer()
	}
}

// partition is the queue partition of a run: one active run per tenant and
// module.
func partition(run *factory.Run) string { return run.TenantID.String() + "/" + run.Module }

// runInput is the workflow's input. The run is the workflow's id; the rest
// is read from the run's record.
type runInput struct {
	TenantID string `json:"tenant_id"`
}

// runResult is the workflow's result.
type runResult struct {
	Status factory.Status `json:"status"`
	Error  string         `json:"error,omitempty"`
}

// Enqueue starts run's workflow in tx (its id is the run's id).
func (e *Engine) Enqueue(ctx context.Context, tx pgx.Tx, run *factory.Run) error {
	_, err := dbos.Enqueue[runResult](e.c, QueueName, WorkflowName, runInput{TenantID: run.TenantID.String()},
		dbos.WithEnqueueWorkflowID(run.ID.String()), dbos.WithEnqueueQueuePartitionKey(partition(run)),
		dbos.WithEnqueueApplicationVersion(AppVersion), dbos.WithEnqueueApplicationName(AppName), dbos.WithEnqueueTransaction(tx))
	return err
}

// Decide sends a decision to the run's workflow in tx.
func (e *Engine) Decide(ctx context.Context, tx pgx.Tx, run *factory.Run, a factory.Approval) error {
	return dbos.Send(e.c, run.ID.String(), a, ApprovalTopic, dbos.WithSendTransaction(tx))
}

// Cancel cancels the run's workflow: it stops at its next step.
func (e *Engine) Cancel(ctx context.Context, run *factory.Run) error {
	return dbos.CancelWorkflow(e.c, run.ID.String())
}

// ErrStageNotReached: the original run never started the stage to rerun
// from.
var ErrStageNotReached = errors.New("the run's workflow never reached that stage")

// Rerun forks orig's workflow at the first step of stage from, as the
// workflow of rerun: the steps before it are copied, not run again.
func (e *Engine) Rerun(ctx context.Context, orig, rerun *factory.Run, from factory.Stage) error {
	steps, err := dbos.GetWorkflowSteps(e.c, orig.ID.String())
	if err != nil {
		return err
	}
	start := -1
	for _, st := range steps {
		if st.StepName == stageStep(from) {
			start = st.StepID
			break
		}
	}
	if start < 0 {
		return fmt.Errorf("%w: %s", ErrStageNotReached, from)
	}
	_, err = dbos.ForkWorkflow[runResult](e.c, dbos.ForkWorkflowInput{
		OriginalWorkflowID: orig.ID.String(), ForkedWorkflowID: rerun.ID.String(), StartStep: uint(start),
		QueueName: QueueName, QueuePartitionKey: partition(rerun), ApplicationVersion: AppVersion,
	})
	return err
}

// stageStep is the name of a stage's first step.
func stageStep(st factory.Stage) string { return "stage:" + string(st) }
