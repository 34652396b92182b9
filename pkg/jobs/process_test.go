package jobs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// The environment of a helper process (TestHelperProcess).
const (
	envHelperMode = "PROST_JOBS_HELPER_MODE" // "count" or "block"
	envHelperDB   = "PROST_JOBS_HELPER_DB"
	envHelperID   = "PROST_JOBS_HELPER_WORKER"
	envHelperKind = "PROST_JOBS_HELPER_KIND"
)

// TestHelperProcess is not a test: it is the worker process that the
// multi-process tests start by re-executing the test binary. It runs a Client
// on the parent's database until SIGTERM, then stops it gracefully.
//
//   - count: each job records (job id, worker) in jobs_test_runs, counting
//     repeated runs of a job.
//   - block: each job records (job id, worker) in jobs_test_blocked, then
//     blocks until its context ends.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelperMode)
	if mode == "" {
		t.Skip("worker process for the multi-process tests")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // never outlive a dead parent for long
	defer cancel()
	pool, err := pgxpool.New(ctx, os.Getenv(envHelperDB))
	require.NoError(t, err)
	defer pool.Close()
	worker := os.Getenv(envHelperID)

	var h Handler
	switch mode {
	case "count":
		h = func(ctx context.Context, j *Job) error {
			_, err := pool.Exec(ctx, `INSERT INTO jobs_test_runs (job_id, worker) VALUES ($1, $2)
				ON CONFLICT (job_id) DO UPDATE SET runs = jobs_test_runs.runs + 1`, j.ID, worker)
			return err
		}
	case "block":
		h = func(ctx context.Context, j *Job) error {
			if _, err := pool.Exec(ctx, `INSERT INTO jobs_test_blocked (job_id, worker) VALUES ($1, $2)`, j.ID, worker); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		}
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
	c, err := NewClient(pool, Config{WorkerID: worker, Workers: 4, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, c.Register(os.Getenv(envHelperKind), h))
	require.NoError(t, c.Start(context.Background()))
	fmt.Println("ready")
	<-ctx.Done()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelStop()
	require.NoError(t, c.Stop(stopCtx))
}

// helper is a running TestHelperProcess.
type helper struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// startHelper starts a worker process and waits until its client runs.
func startHelper(t *testing.T, mode, worker, kind string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(os.Environ(),
		envHelperMode+"="+mode, envHelperDB+"="+testDB.URL, envHelperID+"="+worker, envHelperKind+"="+kind)
	h := &helper{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = h.out, h.out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", worker, h.out.String())
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(h.out.String(), "ready\n") },
		60*time.Second, 20*time.Millisecond, "helper %s never became ready: %s", worker, h.out.String())
	return h
}

// TestTwoProcessesNeverRunAJobTwice runs two worker processes against a few
// thousand jobs: every job must run exactly once, and both processes must run
// some.
func TestTwoProcessesNeverRunAJobTwice(t *testing.T) {
	t.Parallel()
	const n = 3000
	ctx := t.Context()
	kind := testKind(t)
	_, err := testDB.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS jobs_test_runs (
		job_id bigint PRIMARY KEY,
		worker text   NOT NULL,
		runs   int    NOT NULL DEFAULT 1)`)
	require.NoError(t, err)

	a := startHelper(t, "count", "proc-a", kind)
	b := startHelper(t, "count", "proc-b", kind)

	start := time.Now()
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		for range n {
			if _, _, err := Insert(ctx, tx, InsertParams{Kind: kind}); err != nil {
				return err
			}
		}
		return nil
	}))
	inserted := time.Since(start)

	require.Eventually(t, func() bool {
		var done int
		err := testDB.Pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE kind = $1 AND state = 'completed'`, kind).Scan(&done)
		return err == nil && done == n
	}, 2*time.Minute, 50*time.Millisecond)
	ran := time.Since(start) - inserted
	t.Logf("%d jobs: inserted in %s, run by two processes in %s (%.0f jobs/s)", n, inserted, ran, float64(n)/ran.Seconds())

	for _, h := range []*helper{a, b} {
		require.NoError(t, h.cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, h.cmd.Wait(), "helper exit: %s", h.out.String())
	}

	var rows, maxRuns, workers int
	require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT count(*), coalesce(max(runs), 0), count(DISTINCT worker)
		FROM jobs_test_runs r JOIN jobs j ON j.id = r.job_id WHERE j.kind = $1`, kind).Scan(&rows, &maxRuns, &workers))
	require.Equal(t, n, rows, "every job ran")
	require.Equal(t, 1, maxRuns, "no job ran twice")
	require.Equal(t, 2, workers, "both processes ran jobs")

	perWorker := map[string]int{}
	r, err := testDB.Pool.Query(ctx, `SELECT r.worker, count(*) FROM jobs_test_runs r
		JOIN jobs j ON j.id = r.job_id WHERE j.kind = $1 GROUP BY r.worker`, kind)
	require.NoError(t, err)
	var w string
	var c int
	_, err = pgx.ForEachRow(r, []any{&w, &c}, func() error { perWorker[w] = c; return nil })
	require.NoError(t, err)
	t.Logf("jobs per process: %v", perWorker)

	var bad int
	require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT count(*) FROM jobs
		WHERE kind = $1 AND (state <> 'completed' OR attempt <> 1 OR errors <> '[]')`, kind).Scan(&bad))
	require.Zero(t, bad, "every job completed on its first attempt")
}

// TestKilledWorkerJobIsReclaimed SIGKILLs a worker process in the middle of a
// job; a client with a short StaleAfter must take the job back and run it.
func TestKilledWorkerJobIsReclaimed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	kind := testKind(t)
	_, err := testDB.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS jobs_test_blocked (job_id bigint PRIMARY KEY, worker text NOT NULL)`)
	require.NoError(t, err)

	victim := startHelper(t, "block", "victim", kind)
	j := insert(t, InsertParams{Kind: kind})
	require.Eventually(t, func() bool {
		var n int
		err := testDB.Pool.QueryRow(ctx, `SELECT count(*) FROM jobs_test_blocked WHERE job_id = $1`, j.ID).Scan(&n)
		return err == nil && n == 1
	}, 30*time.Second, 20*time.Millisecond, "the victim never started the job")

	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	err = victim.cmd.Wait()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	require.Equal(t, syscall.SIGKILL, exitErr.Sys().(syscall.WaitStatus).Signal())
	killedAt := time.Now()

	locked, err := reader(t).Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, StateRunning, locked.State)
	require.Equal(t, "victim", locked.LockedBy)
	require.Equal(t, 1, locked.Attempt)

	var ran recorder[Job]
	startClient(t, Config{
		WorkerID:       "rescuer",
		JobTimeout:     500 * time.Millisecond,
		StaleAfter:     time.Second,
		RescueInterval: 100 * time.Millisecond,
	}, map[string]Handler{kind: func(_ context.Context, j *Job) error {
		ran.add(*j)
		return nil
	}})
	done := waitState(t, j.ID, StateCompleted)
	t.Logf("reclaimed and completed %s after the kill", time.Since(killedAt).Round(time.Millisecond))

	require.Equal(t, 2, done.Attempt)
	require.Len(t, done.Errors, 1)
	require.Equal(t, 1, done.Errors[0].Attempt)
	require.Equal(t, "victim", done.Errors[0].Worker)
	require.Contains(t, done.Errors[0].Error, "stale")
	runs := ran.get()
	require.Len(t, runs, 1)
	require.Equal(t, 2, runs[0].Attempt)
	require.Equal(t, "rescuer", runs[0].LockedBy)
}
