package factorysvc_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/streams"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// holdGate blocks the first time it runs (after leaving a marker), so the
// test can kill the worker in the middle of a gate; once the marker exists
// it passes at once.
type holdGate struct{ marker string }

func (holdGate) Name() string   { return "hold" }
func (holdGate) Blocking() bool { return true }

func (g holdGate) Run(ctx context.Context, _ *factorysvc.Service, _ factorysvc.GateInput) (factory.GateResult, *factorysvc.GateExtra, error) {
	res := factory.GateResult{Gate: "hold", Passed: true, Blocking: true, Summary: "held once", Tool: "test"}
	if _, err := os.Stat(g.marker); err == nil {
		return res, nil, nil
	}
	if err := os.WriteFile(g.marker, []byte("held"), 0o600); err != nil {
		return res, nil, err
	}
	<-ctx.Done()
	return res, nil, ctx.Err()
}

// TestWorkerProcess is the factory worker the kill test runs as a child
// process (and kills with SIGKILL); it does nothing in a normal test run.
func TestWorkerProcess(t *testing.T) {
	if os.Getenv(workerEnv) == "" {
		t.Skip("run by TestKillWorkerDuringGate")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("FACTORY_TEST_DB"))
	require.NoError(t, err)
	defer pool.Close()
	nc, err := nats.Connect(os.Getenv("FACTORY_TEST_NATS"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	db := &prosttest.Database{URL: os.Getenv("FACTORY_TEST_DB"), Pool: pool}
	cfg := config(t, db)
	cfg.WorkDir = os.Getenv("FACTORY_TEST_WORKDIR")
	codegen, testgen := tinyExecutors("durable", "", "", plainNote, nil, os.Getenv("FACTORY_TEST_LOG"))
	cfg.Executors = factorysvc.Executors{Codegen: codegen, Testgen: testgen}
	cfg.Gates = map[factory.State][]factorysvc.Gate{factory.Pressao: {
		factorysvc.ToolGate{GateName: factory.GateSecrets, Block: true}, holdGate{marker: os.Getenv("FACTORY_TEST_HOLD")}, factorysvc.ContractsGate{},
	}}
	svc, err := factorysvc.New(pool, js, cfg)
	require.NoError(t, err)
	require.NoError(t, svc.Run(ctx))
}

// worker is a child process running TestWorkerProcess.
type worker struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startWorker(t *testing.T, env []string, logPath string) *worker {
	t.Helper()
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test, even one that panics
	require.NoError(t, cmd.Start())
	w := &worker{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = out.Close()
		close(w.done)
	}()
	t.Cleanup(func() { w.kill(syscall.SIGKILL) })
	return w
}

func (w *worker) kill(sig syscall.Signal) {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(sig)
	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

// runEvents are the factory events of a run in the tenant's stream (the
// outbox-fed event store), in order: "type stage-or-gate".
func runEvents(t *testing.T, pool *pgxpool.Pool, tenant, run uuid.UUID) []string {
	t.Helper()
	var out []string
	cursor := ""
	for {
		page, err := eventstore.List(context.Background(), pool, eventstore.ListParams{TenantID: tenant, Cursor: cursor, Limit: 1000})
		require.NoError(t, err)
		for _, b := range page.Items {
			ev, err := cloudevent.ParseStructured(b)
			require.NoError(t, err)
			if ev.Subject != run.String() {
				continue
			}
			var d struct {
				Stage string `json:"stage"`
				Gate  string `json:"gate"`
			}
			require.NoError(t, json.Unmarshal(ev.Data, &d))
			out = append(out, ev.Type+" "+d.Stage+d.Gate)
		}
		if !page.HasMore {
			return out
		}
		cursor = page.NextCursor
	}
}

// A worker killed with SIGKILL in the middle of a gate: after a restart the
// run completes without running its finished stages (or finished gates)
// again; rerun --from gates then runs only the gates and the later stages.
func TestKillWorkerDuringGate(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a worker process")
	}
	db := prosttest.NewDatabase(t)
	ns := prosttest.NATS(t)
	nc, err := nats.Connect(ns.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	cfgs, err := streams.Load("../../nats/streams")
	require.NoError(t, err)
	require.NoError(t, streams.Ensure(t.Context(), js, cfgs, streams.Options{}))
	ctx := context.Background()
	engine, err := factorysvc.NewEngine(ctx, db.URL, testLogger())
	require.NoError(t, err)
	t.Cleanup(engine.Close)
	store := factory.NewStore(db.Pool, factory.StoreConfig{SecretsKey: &testSecretsKey})
	runs := factory.NewRuns(store, engine, testLogger())

	dir := t.TempDir()
	execLog, hold := filepath.Join(dir, "executors.log"), filepath.Join(dir, "hold")
	env := []string{workerEnv + "=1", "FACTORY_TEST_DB=" + db.URL, "FACTORY_TEST_NATS=" + ns.URL(),
		"FACTORY_TEST_WORKDIR=" + filepath.Join(dir, "work"), "FACTORY_TEST_LOG=" + execLog, "FACTORY_TEST_HOLD=" + hold,
		"PROST_FACTORY_TOOLS_DIR=" + toolsDir(), "FACTORY_TEST_SECRETS_KEY=" + testSecretsKeyText}
	workerLog := filepath.Join(dir, "worker.log")
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(workerLog)
			t.Logf("worker output:\n%s", b)
		}
	}()
	first := startWorker(t, env, workerLog)
	tenant := uuid.New()
	run, err := runs.Start(ctx, tenant, factory.Request{Module: "durable", Pack0: tinyPack0(t, "durable"), State: factory.Pressao,
		AutoDeploy: true, DeployTarget: factory.TargetCompose})
	require.NoError(t, err)

	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(hold); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the run never reached the hold gate")
		time.Sleep(50 * time.Millisecond)
	}
	first.kill(syscall.SIGKILL)
	got, err := runs.Get(ctx, tenant, run.ID)
	require.NoError(t, err)
	require.Equal(t, factory.StatusRunning, got.Status)
	require.Equal(t, factory.StageGates, got.Stage)
	require.Equal(t, "running", gate(got, "hold").Status, "killed in the middle of the hold gate")

	second := startWorker(t, env, workerLog)
	h := &harness{t: t, runs: runs, store: store, tenant: tenant}
	done := h.waitFinal(run.ID, 2*time.Minute)
	require.Equal(t, factory.StatusSucceeded, done.Status, done.Error)
	require.Equal(t, 1, countLines(t, execLog, "test-codegen"), "codegen ran again")
	require.Equal(t, 1, countLines(t, execLog, "test-testgen"), "testgen ran again")
	for _, st := range []factory.Stage{factory.StagePack0, factory.StageCodegen, factory.StageTestgen, factory.StageTests, factory.StageGates} {
		require.Equal(t, 1, stage(done, st).Executions, "stage %s started again", st)
	}
	require.Equal(t, 1, gate(done, factory.GateSecrets).Executions, "a finished gate ran again")
	require.Equal(t, 2, gate(done, "hold").Executions, "the interrupted gate runs again")
	attempts, err := store.Attempts(ctx, tenant, run.ID)
	require.NoError(t, err)
	require.Len(t, attempts, 1)
	want := []string{
		"factory.stage.started pack0", "factory.gate.passed pack0", "factory.stage.succeeded pack0",
		"factory.stage.started codegen", "factory.stage.succeeded codegen",
		"factory.stage.started testgen", "factory.stage.succeeded testgen",
		"factory.stage.started tests", "factory.gate.passed tests", "factory.stage.succeeded tests",
		"factory.stage.started gates", "factory.gate.passed secrets", "factory.gate.passed hold", "factory.gate.passed contracts", "factory.stage.succeeded gates",
		"factory.stage.started approval", "factory.stage.succeeded approval",
		"factory.stage.started manifest", "factory.stage.succeeded manifest",
		"factory.stage.started deploy", "factory.stage.succeeded deploy",
	}
	require.Equal(t, want, runEvents(t, db.Pool, tenant, run.ID))
	rep, err := store.Verify(ctx, tenant, run.ID)
	require.NoError(t, err)
	require.True(t, rep.OK, "%v", rep.Failures)

	// rerun --from gates
	rerun, err := runs.Rerun(ctx, tenant, run.ID, factory.StageGates, "tester")
	require.NoError(t, err)
	require.Equal(t, run.ID, *rerun.RerunOf)
	rdone := h.waitFinal(rerun.ID, 2*time.Minute)
	require.Equal(t, factory.StatusSucceeded, rdone.Status, rdone.Error)
	require.Equal(t, 1, countLines(t, execLog, "test-codegen"), "the rerun generated code again")
	require.Equal(t, 1, countLines(t, execLog, "test-testgen"), "the rerun generated tests again")
	for _, st := range []factory.Stage{factory.StagePack0, factory.StageCodegen, factory.StageTestgen, factory.StageTests} {
		s := stage(rdone, st)
		require.True(t, s.Reused, "stage %s", st)
		require.Equal(t, 0, s.Executions, "stage %s ran in the rerun", st)
	}
	for _, st := range []factory.Stage{factory.StageGates, factory.StageApproval, factory.StageManifest, factory.StageDeploy} {
		require.Equal(t, 1, stage(rdone, st).Executions, "stage %s", st)
		require.False(t, stage(rdone, st).Reused)
	}
	require.Equal(t, want[10:], runEvents(t, db.Pool, tenant, rerun.ID), "the rerun emits events of the gates and later stages only")
	rep, err = store.Verify(ctx, tenant, rerun.ID)
	require.NoError(t, err)
	require.True(t, rep.OK, "%v", rep.Failures)

	second.kill(syscall.SIGTERM)
	require.True(t, second.cmd.ProcessState.Success(), "the worker did not stop cleanly: %s", second.cmd.ProcessState)
}
