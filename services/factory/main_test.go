package factorysvc_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// workerEnv marks the test binary re-executed as a factory worker (the
// kill -9 test).
const workerEnv = "FACTORY_TEST_WORKER"

func TestMain(m *testing.M) {
	// The tool gates run in a child process: this test binary.
	factorysvc.MaybeGateProcess()
	prosttest.Main(m, nil, prosttest.UnlessEnv(workerEnv))
}

// harness is a factory service on a database of its own.
type harness struct {
	t      *testing.T
	db     *prosttest.Database
	svc    *factorysvc.Service
	runs   *factory.Runs
	store  *factory.Store
	tenant uuid.UUID
	cancel context.CancelFunc
	done   chan error
}

// testLogger logs when PROST_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("PROST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// toolsDir is shared by every test run, so the tools are built once.
func toolsDir() string {
	if d := os.Getenv("PROST_FACTORY_TOOLS_DIR"); d != "" {
		return d
	}
	return factorysvc.DefaultToolsDir()
}

// testSecretsKeyText seals the tenants' signing keys; worker processes get
// the parent's in FACTORY_TEST_SECRETS_KEY.
var testSecretsKeyText = func() string {
	if v := os.Getenv("FACTORY_TEST_SECRETS_KEY"); v != "" {
		return v
	}
	_, s := secretbox.NewKey()
	return s
}()

var testSecretsKey, _ = secretbox.ParseKey(testSecretsKeyText)

// config is a service configuration for db.
func config(t *testing.T, db *prosttest.Database) factorysvc.Config {
	reg, err := registry.New(db.Pool, registry.Config{PlatformDir: "../../schemas"})
	require.NoError(t, err)
	return factorysvc.Config{
		Store:             factory.StoreConfig{SecretsKey: &testSecretsKey},
		SchemasDir:        "../../schemas",
		WorkDir:           t.TempDir(),
		ToolsDir:          toolsDir(),
		ModuleDatabaseURL: db.URL,
		Registry:          reg,
		QueuePoll:         50 * time.Millisecond,
		HealthTimeout:     20 * time.Second,
		Logger:            testLogger(),
	}
}

// start runs a factory service on a database of the test's own.
func start(t *testing.T, tweak func(*factorysvc.Config)) *harness {
	t.Helper()
	db := prosttest.NewDatabase(t)
	js := prosttest.Bus(t)
	cfg := config(t, db)
	if tweak != nil {
		tweak(&cfg)
	}
	svc, err := factorysvc.New(db.Pool, js, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, db: db, svc: svc, runs: svc.Runs(), store: svc.Runs().Store(), tenant: uuid.New(), cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- svc.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		require.NoError(h.t, err)
	case <-time.After(90 * time.Second):
		h.t.Error("the factory service did not stop")
	}
}

// pack0 reads a Pack0 file as JSON.
func pack0(t *testing.T, path string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	js, err := factory.Pack0JSON(b)
	require.NoError(t, err)
	return js
}

// samplePack0 is examples/pack0/inventory.yaml.
func samplePack0(t *testing.T) json.RawMessage {
	return pack0(t, filepath.Join("..", "..", "examples", "pack0", "inventory.yaml"))
}

// wait polls the run until cond holds or the deadline passes.
func (h *harness) wait(id uuid.UUID, within time.Duration, what string, cond func(*factory.Run) bool) *factory.Run {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		run, err := h.runs.Get(context.Background(), h.tenant, id)
		require.NoError(h.t, err)
		if cond(run) {
			return run
		}
		if time.Now().After(deadline) {
			logs, _ := h.store.Logs(context.Background(), h.tenant, id, 0, 1000)
			for _, l := range logs {
				h.t.Log(l.Stage, l.Line)
			}
			h.t.Fatalf("run %s: %s not reached within %s; it is %s at %s (%s)", id, what, within, run.Status, run.Stage, run.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *harness) waitFinal(id uuid.UUID, within time.Duration) *factory.Run {
	return h.wait(id, within, "the end", func(r *factory.Run) bool { return r.Status.Final() })
}

func gate(run *factory.Run, name string) *factory.GateRecord {
	for i := range run.Gates {
		if run.Gates[i].Gate == name {
			return &run.Gates[i]
		}
	}
	return nil
}

func stage(run *factory.Run, st factory.Stage) *factory.StageRecord {
	for i := range run.Stages {
		if run.Stages[i].Stage == st {
			return &run.Stages[i]
		}
	}
	return nil
}

func mustUUID(s string) uuid.UUID { return uuid.MustParse(s) }
