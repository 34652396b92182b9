// Package factorysvc is PROST's factory service: the consumer that starts a
// run for every factory.module.requested event, and the worker that drives
// each run through its stages as a durable workflow on DBOS Transact (a
// library keeping its state in PROST's Postgres, schema factory_dbos; see
// docs/decisions/0013-factory-on-dbos.md).
//
// A run is one workflow. Every stage is a sequence of steps; DBOS records the
// outcome of each step, so a worker killed at any point (kill -9) resumes the
// run, after a restart, at the step it was in: finished stages are never
// run again. One run per tenant and module is active at a time (a
// partitioned queue); an approval is a message the workflow waits for
// (Send/Recv); a rerun forks the workflow at the first step of a stage.
//
// The work itself is done by Executors (code generation, test generation,
// healing), gates (real tools run in a child process with an allow-listed
// environment: gitleaks, gosec, govulncheck, cyclonedx-gomod, go vet,
// staticcheck; PROST's contract gates; a load test against the built
// module) and deployers (a local process with its migrations, a health check
// and rollback; or a Dockerfile and compose service).
package factorysvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/lifecycle"
)

// ConsumerName is the factory consumer's durable name.
const ConsumerName = "factory-pipeline"

// DBOS names. AppVersion pins the workflows' application version: DBOS
// recovers only the workflows of the version it runs, so it changes only
// when the workflow's steps change shape.
const (
	AppName      = "prost-factory"
	AppVersion   = "factory-v1"
	DBOSSchema   = "factory_dbos"
	WorkflowName = "factory.run"
	QueueName    = "factory-runs"
	// ApprovalTopic is the topic decisions are sent on.
	ApprovalTopic = "approval"
)

// MaxTestAttempts is how many times the tests stage runs the tests: the
// first try and up to four healed ones.
const MaxTestAttempts = 5

// Defaults of Config.
const (
	DefaultExecutorTimeout = 10 * time.Minute
	DefaultTestTimeout     = 10 * time.Minute
	DefaultGateTimeout     = 10 * time.Minute
	DefaultApprovalTimeout = 7 * 24 * time.Hour
	DefaultHealthTimeout   = 30 * time.Second
	DefaultQueuePoll       = 250 * time.Millisecond
	DefaultGo              = "go"
)

// Config describes the service. Fields left zero take the defaults.
type Config struct {
	// Consumer is the consumer runtime's configuration; its Name is set to
	// ConsumerName.
	Consumer consumer.Config
	// Store tunes the factory store (partitions, the secrets key that seals
	// each tenant's signing key).
	Store factory.StoreConfig
	// SchemasDir holds the Pack0 schema (PROST_SCHEMAS_DIR). Required.
	SchemasDir string
	// WorkDir holds each run's work directory (PROST_FACTORY_WORK_DIR).
	// Defaults to <temp dir>/prost-factory.
	WorkDir string
	// ToolsDir caches the gate tools built from the module proxy and the
	// local vulnerability database (PROST_FACTORY_TOOLS_DIR). Defaults to
	// DefaultToolsDir().
	ToolsDir string
	// DeployDir holds the binaries of local deployments
	// (PROST_FACTORY_DEPLOY_DIR). Defaults to WorkDir/deploy.
	DeployDir string
	// ModuleDatabaseURL is the Postgres database the generated modules'
	// tests and local deployments use, each in a schema of its own
	// (PROST_FACTORY_DATABASE_URL), created on first use when it does not
	// exist. Without it the tests stage fails.
	ModuleDatabaseURL string
	// Go is the go command. Defaults to DefaultGo.
	Go string
	// ExecutorTimeout bounds one executor call, TestTimeout one test run,
	// GateTimeout one gate, HealthTimeout a deployment's health check.
	ExecutorTimeout, TestTimeout, GateTimeout, HealthTimeout time.Duration
	// ApprovalTimeout is how long a run waits for a decision
	// (PROST_FACTORY_APPROVAL_TIMEOUT). Defaults to DefaultApprovalTimeout.
	ApprovalTimeout time.Duration
	// Executors do codegen, testgen and healing. Defaults to the Generator
	// and the Healer.
	Executors Executors
	// Gates are the gates of each state, run in order in the gates stage.
	// Defaults to DefaultGates.
	Gates map[factory.State][]Gate
	// GateCommand starts a gate process (the tools run there). Defaults to
	// this executable.
	GateCommand []string
	// Registry is the schema registry the contracts gate checks the
	// module's event schemas against. nil skips that check.
	Registry *registry.Registry
	// QueuePoll is how often an idle worker looks for queued runs.
	QueuePoll time.Duration
	// WorkerID names this worker among those sharing the database
	// (PROST_FACTORY_WORKER_ID): a worker that starts resumes the unfinished
	// runs of its id, so give each worker its own, stable one. Defaults to
	// the host name.
	WorkerID string
	// Logger receives the service's logs. Defaults to discarding.
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.SchemasDir == "" {
		return errors.New("factory: SchemasDir is required (the Pack0 schema)")
	}
	if c.WorkDir == "" {
		c.WorkDir = filepath.Join(os.TempDir(), "prost-factory")
	}
	if c.ToolsDir == "" {
		c.ToolsDir = DefaultToolsDir()
	}
	if c.DeployDir == "" {
		c.DeployDir = filepath.Join(c.WorkDir, "deploy")
	}
	for _, d := range []*string{&c.WorkDir, &c.ToolsDir, &c.DeployDir} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return err
		}
		*d = abs
	}
	if c.Go == "" {
		c.Go = DefaultGo
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.ExecutorTimeout, DefaultExecutorTimeout}, {&c.TestTimeout, DefaultTestTimeout}, {&c.GateTimeout, DefaultGateTimeout},
		{&c.HealthTimeout, DefaultHealthTimeout}, {&c.ApprovalTimeout, DefaultApprovalTimeout}, {&c.QueuePoll, DefaultQueuePoll}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if c.Executors.Codegen == nil {
		c.Executors.Codegen = Generator{}
	}
	if c.Executors.Testgen == nil {
		c.Executors.Testgen = Generator{}
	}
	if c.Executors.Healer == nil {
		c.Executors.Healer = Healer{}
	}
	if c.Gates == nil {
		c.Gates = DefaultGates()
	}
	if len(c.GateCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("factory: find this executable for the gate processes: %w", err)
		}
		c.GateCommand = []string{exe}
	}
	if c.WorkerID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "factory"
		}
		c.WorkerID = h
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// DefaultToolsDir is where gate tools are cached when no ToolsDir is set:
// <user cache dir>/prost/factory-tools.
func DefaultToolsDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "prost", "factory-tools")
}

// Service runs the factory: its consumer, its workflows and its local
// deployments.
type Service struct {
	cfg      Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	dbosPool *pgxpool.Pool
	dbos     dbos.Context
	store    *factory.Store
	runs     *factory.Runs
	engine   *Engine
	schema   *factory.Pack0Schema
	consumer *consumer.Consumer
	deployer *LocalDeployer
	tools    *Tools
}

// New returns the service; run it with Run. It registers the factory's
// workflow and queue with DBOS (in the factory_dbos schema of pool's
// database, through a pool of its own).
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	schema, err := factory.LoadPack0Schema(cfg.SchemasDir)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, pool: pool, schema: schema}
	s.tools = &Tools{Dir: cfg.ToolsDir, Go: cfg.Go, Log: cfg.Logger}
	s.store = factory.NewStore(pool, cfg.Store)
	pc := pool.Config().Copy()
	pc.MaxConns, pc.MinConns = 8, 0
	if s.dbosPool, err = pgxpool.NewWithConfig(context.Background(), pc); err != nil {
		return nil, err
	}
	s.dbos, err = dbos.NewContext(context.Background(), dbos.Config{
		AppName: AppName, SystemDBPool: s.dbosPool, DatabaseSchema: DBOSSchema, ApplicationVersion: AppVersion,
		ExecutorID: cfg.WorkerID, Logger: cfg.Logger.With("component", "dbos"),
	})
	if err != nil {
		s.dbosPool.Close()
		return nil, fmt.Errorf("factory: dbos: %w", err)
	}
	dbos.RegisterWorkflow(s.dbos, s.pipeline, dbos.WithWorkflowName(WorkflowName))
	if _, err := registerQueue(s.dbos, cfg.QueuePoll); err != nil {
		s.dbosPool.Close()
		return nil, err
	}
	s.engine = &Engine{c: s.dbos}
	s.runs = factory.NewRuns(s.store, s.engine, cfg.Logger)
	s.deployer = &LocalDeployer{Dir: cfg.DeployDir, DatabaseURL: cfg.ModuleDatabaseURL, Store: s.store, HealthTimeout: cfg.HealthTimeout, Log: cfg.Logger}
	cc := cfg.Consumer
	cc.Name = ConsumerName
	// Only module requests start runs: JetStream filters the other events
	// out, so this consumer neither acknowledges nor records them.
	cc.Types = []string{factory.TypeModuleRequested}
	if cc.Logger == nil {
		cc.Logger = cfg.Logger
	}
	if s.consumer, err = consumer.New(pool, js, cc, s.runs.HandleEvents); err != nil {
		s.dbosPool.Close()
		return nil, err
	}
	return s, nil
}

func registerQueue(c dbos.Client, poll time.Duration) (dbos.Queue, error) {
	q, err := dbos.RegisterQueue(c, QueueName, dbos.WithPartitionConcurrency(1), dbos.WithQueueBasePollingInterval(poll))
	if err != nil {
		return nil, fmt.Errorf("factory: register queue: %w", err)
	}
	return q, nil
}

// Runs is the runs API of this service (its engine is the service's DBOS).
func (s *Service) Runs() *factory.Runs { return s.runs }

// Pack0Schema is the Pack0 schema the service's pack0 gate checks against.
func (s *Service) Pack0Schema() *factory.Pack0Schema { return s.schema }

// Engine is the service's engine.
func (s *Service) Engine() *Engine { return s.engine }

// Consumer is the factory consumer.
func (s *Service) Consumer() *consumer.Consumer { return s.consumer }

// Run launches DBOS (recovering the runs a previous worker left unfinished),
// restarts the active local deployments, and runs the consumer until ctx
// ends; then it stops the consumer, the workflows (a run stopped between two
// steps resumes there later) and the deployed modules.
func (s *Service) Run(ctx context.Context) error {
	defer s.dbosPool.Close()
	if err := os.MkdirAll(s.cfg.WorkDir, 0o750); err != nil {
		return err
	}
	g := lifecycle.Group{Logger: s.log, ShutdownTimeout: time.Minute}
	g.Add("factory-deployments", s.deployer)
	g.Add("factory-workflows", lifecycle.Func(func(ctx context.Context) error {
		if err := dbos.Launch(s.dbos); err != nil {
			return fmt.Errorf("factory: launch dbos: %w", err)
		}
		<-ctx.Done()
		if err := dbos.Shutdown(s.dbos, 30*time.Second); err != nil {
			s.log.Warn("factory: dbos shutdown", "error", err)
		}
		return nil
	}))
	g.Add("factory-consumer", s.consumer)
	return g.Run(ctx)
}
