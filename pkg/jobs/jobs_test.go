package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/jobs/internal/jobsdb"
)

func TestDefaultBackoff(t *testing.T) {
	t.Parallel()
	for _, attempt := range []int{-1, 0, 1, 2, 3, 10, 25} {
		a := float64(max(attempt, 1))
		base := time.Duration(a * a * a * a * float64(time.Second))
		lo, hi := base*9/10, base*11/10
		seen := map[time.Duration]bool{}
		for range 200 {
			d := DefaultBackoff(attempt)
			require.GreaterOrEqual(t, d, lo, "attempt %d", attempt)
			require.LessOrEqual(t, d, hi, "attempt %d", attempt)
			seen[d] = true
		}
		require.Greater(t, len(seen), 1, "attempt %d: no jitter", attempt)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Config
		want func(t *testing.T, c Config)
	}{
		{"zero value", Config{}, func(t *testing.T, c Config) {
			require.Equal(t, 4, c.Workers)
			require.Equal(t, time.Second, c.PollInterval)
			require.Equal(t, time.Minute, c.JobTimeout)
			require.Equal(t, 2*time.Minute, c.StaleAfter)
			require.Equal(t, 30*time.Second, c.RescueInterval)
			require.Contains(t, c.WorkerID, "-"+strconv.Itoa(os.Getpid())+"-")
			require.NotNil(t, c.Logger)
			require.NotNil(t, c.Backoff)
			require.Nil(t, c.OnDiscard)
		}},
		{"stale after follows job timeout", Config{JobTimeout: 10 * time.Second}, func(t *testing.T, c Config) {
			require.Equal(t, 70*time.Second, c.StaleAfter)
			require.Equal(t, 30*time.Second, c.RescueInterval)
		}},
		{"short stale after rescues often", Config{JobTimeout: time.Second, StaleAfter: 2 * time.Second}, func(t *testing.T, c Config) {
			require.Equal(t, time.Second, c.RescueInterval)
		}},
		{"explicit values kept", Config{Workers: 9, WorkerID: "w1", RescueInterval: time.Hour}, func(t *testing.T, c Config) {
			require.Equal(t, 9, c.Workers)
			require.Equal(t, "w1", c.WorkerID)
			require.Equal(t, time.Hour, c.RescueInterval)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tt.in.withDefaults()
			require.NoError(t, err)
			tt.want(t, c)
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Config
	}{
		{"negative workers", Config{Workers: -1}},
		{"negative poll interval", Config{PollInterval: -time.Second}},
		{"negative job timeout", Config{JobTimeout: -time.Second}},
		{"negative stale after", Config{StaleAfter: -time.Second}},
		{"negative rescue interval", Config{RescueInterval: -time.Second}},
		{"stale after equal to job timeout", Config{JobTimeout: time.Minute, StaleAfter: time.Minute}},
		{"stale after below default job timeout", Config{StaleAfter: 30 * time.Second}},
		{"worker id too long", Config{WorkerID: strings.Repeat("w", maxWorkerIDLen+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewClient(testDB.Pool, tt.in)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
	_, err := NewClient(nil, Config{})
	require.ErrorIs(t, err, ErrInvalid)
}

func TestClientLifecycleErrors(t *testing.T) {
	t.Parallel()
	ok := func(context.Context, *Job) error { return nil }
	c, err := NewClient(testDB.Pool, Config{})
	require.NoError(t, err)
	require.NoError(t, c.Stop(t.Context()), "stop before start")
	require.Error(t, c.Start(t.Context()), "start without handlers")
	require.ErrorIs(t, c.Register("", ok), ErrInvalid)
	require.ErrorIs(t, c.Register(strings.Repeat("k", MaxKindLen+1), ok), ErrInvalid)
	require.ErrorIs(t, c.Register(testKind(t), nil), ErrInvalid)
	require.NoError(t, c.Register(testKind(t), ok))
	require.Error(t, c.Register(testKind(t), ok), "duplicate kind")
	require.NoError(t, c.Start(context.Background()))
	require.Error(t, c.Start(context.Background()), "second start")
	require.Error(t, c.Register(testKind(t)+"/late", ok), "register after start")
	require.NoError(t, c.Stop(t.Context()))
	require.NoError(t, c.Stop(t.Context()), "second stop")
}

func TestInsertValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    InsertParams
	}{
		{"empty kind", InsertParams{}},
		{"long kind", InsertParams{Kind: strings.Repeat("k", MaxKindLen+1)}},
		{"invalid args", InsertParams{Kind: testKind(t), Args: json.RawMessage(`{"a":`)}},
		{"negative max attempts", InsertParams{Kind: testKind(t), MaxAttempts: -1}},
		{"NUL in unique key", InsertParams{Kind: testKind(t), UniqueKey: "a\x00b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, inserted, err := Insert(t.Context(), testDB.Pool, tt.p)
			require.ErrorIs(t, err, ErrInvalid)
			require.False(t, inserted)
		})
	}
	jobs, err := reader(t).List(t.Context(), ListParams{Kind: testKind(t)})
	require.NoError(t, err)
	require.Empty(t, jobs)
}

func TestInsertDefaults(t *testing.T) {
	t.Parallel()
	before := time.Now()
	j := insert(t, InsertParams{Kind: testKind(t)})
	require.Positive(t, j.ID)
	require.Equal(t, StateAvailable, j.State)
	require.JSONEq(t, `{}`, string(j.Args))
	require.Equal(t, DefaultMaxAttempts, j.MaxAttempts)
	require.Zero(t, j.Attempt)
	require.Zero(t, j.Priority)
	require.Nil(t, j.TenantID)
	require.Empty(t, j.UniqueKey)
	require.Empty(t, j.Errors)
	require.Nil(t, j.AttemptedAt)
	require.Nil(t, j.FinishedAt)
	require.Nil(t, j.LockedAt)
	require.WithinDuration(t, before, j.ScheduledAt, 5*time.Second)

	later := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	s := insert(t, InsertParams{Kind: testKind(t), ScheduledAt: later, MaxAttempts: 3, Priority: -2})
	require.Equal(t, StateScheduled, s.State)
	require.True(t, later.Equal(s.ScheduledAt), "scheduled_at %s, want %s", s.ScheduledAt, later)
	require.Equal(t, 3, s.MaxAttempts)
	require.Equal(t, int16(-2), s.Priority)
}

func TestInsertUsesCallerTransaction(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := reader(t)
	for _, commit := range []bool{false, true} {
		tx, err := testDB.Pool.Begin(ctx)
		require.NoError(t, err)
		j, inserted, err := Insert(ctx, tx, InsertParams{Kind: testKind(t)})
		require.NoError(t, err)
		require.True(t, inserted)
		_, err = r.Get(ctx, j.ID)
		require.ErrorIs(t, err, ErrNotFound, "visible before commit")
		if commit {
			require.NoError(t, tx.Commit(ctx))
			_, err = r.Get(ctx, j.ID)
			require.NoError(t, err)
		} else {
			require.NoError(t, tx.Rollback(ctx))
			_, err = r.Get(ctx, j.ID)
			require.ErrorIs(t, err, ErrNotFound)
		}
	}
}

func TestRunCompletes(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	seen := &recorder[Job]{}
	c := startClient(t, Config{}, map[string]Handler{testKind(t): func(_ context.Context, j *Job) error {
		seen.add(*j)
		return nil
	}})
	j := insert(t, InsertParams{Kind: testKind(t), TenantID: &tenant, Args: json.RawMessage(`{"n": 7}`)})
	done := waitState(t, j.ID, StateCompleted)

	runs := seen.get()
	require.Len(t, runs, 1)
	run := runs[0]
	require.Equal(t, StateRunning, run.State)
	require.Equal(t, 1, run.Attempt)
	require.Equal(t, c.WorkerID(), run.LockedBy)
	require.NotNil(t, run.LockedAt)
	require.NotNil(t, run.AttemptedAt)
	require.JSONEq(t, `{"n": 7}`, string(run.Args))
	require.Equal(t, tenant, *run.TenantID)

	require.Equal(t, 1, done.Attempt)
	require.NotNil(t, done.FinishedAt)
	require.Nil(t, done.LockedAt)
	require.Empty(t, done.LockedBy)
	require.Empty(t, done.Errors)
	require.Empty(t, done.LastError)
}

func TestScheduledAtRespected(t *testing.T) {
	t.Parallel()
	startClient(t, Config{}, map[string]Handler{testKind(t): func(context.Context, *Job) error { return nil }})
	at := time.Now().Add(1500 * time.Millisecond)
	later := insert(t, InsertParams{Kind: testKind(t), ScheduledAt: at})
	now := insert(t, InsertParams{Kind: testKind(t)})
	waitState(t, now.ID, StateCompleted)

	j, err := reader(t).Get(t.Context(), later.ID)
	require.NoError(t, err)
	if time.Now().Before(at) {
		require.Equal(t, StateScheduled, j.State, "claimed before scheduled_at")
	}
	j = waitState(t, later.ID, StateCompleted)
	require.False(t, j.AttemptedAt.Before(at), "attempted at %s, scheduled at %s", j.AttemptedAt, at)
}

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	type want struct {
		id       int64
		priority int16
	}
	var jobs []want
	for _, p := range []int16{3, 1, 2, 1, 0, 3, -1, 2} {
		j := insert(t, InsertParams{Kind: testKind(t), Priority: p})
		jobs = append(jobs, want{j.ID, p})
	}
	slices.SortStableFunc(jobs, func(a, b want) int { return int(a.priority) - int(b.priority) })
	var expected []int64
	for _, j := range jobs {
		expected = append(expected, j.id)
	}

	order := &recorder[int64]{}
	startClient(t, Config{Workers: 1}, map[string]Handler{testKind(t): func(_ context.Context, j *Job) error {
		order.add(j.ID)
		return nil
	}})
	waitState(t, expected[len(expected)-1], StateCompleted)
	require.Equal(t, expected, order.get())
}

func TestUniqueKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	kind, other := testKind(t), testKind(t)+"/other"
	t1, t2 := uuid.New(), uuid.New()

	first := insert(t, InsertParams{Kind: kind, UniqueKey: "k"})
	tests := []struct {
		name         string
		p            InsertParams
		wantInserted bool
	}{
		{"same key refused", InsertParams{Kind: kind, UniqueKey: "k"}, false},
		{"same key refused whatever the args", InsertParams{Kind: kind, UniqueKey: "k", Args: json.RawMessage(`{"x":1}`)}, false},
		{"other kind", InsertParams{Kind: other, UniqueKey: "k"}, true},
		{"a tenant", InsertParams{Kind: kind, TenantID: &t1, UniqueKey: "k"}, true},
		{"same tenant refused", InsertParams{Kind: kind, TenantID: &t1, UniqueKey: "k"}, false},
		{"other tenant", InsertParams{Kind: kind, TenantID: &t2, UniqueKey: "k"}, true},
		{"other key", InsertParams{Kind: kind, UniqueKey: "k2"}, true},
		{"no key is never unique", InsertParams{Kind: kind}, true},
		{"no key twice", InsertParams{Kind: kind}, true},
	}
	for _, tt := range tests {
		j, inserted, err := Insert(ctx, testDB.Pool, tt.p)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.wantInserted, inserted, tt.name)
		if !inserted {
			require.Equal(t, tt.p.UniqueKey, j.UniqueKey, tt.name)
			require.Equal(t, tt.p.TenantID, j.TenantID, tt.name)
		}
	}
	again, inserted, err := Insert(ctx, testDB.Pool, InsertParams{Kind: kind, UniqueKey: "k"})
	require.NoError(t, err)
	require.False(t, inserted)
	require.Equal(t, first.ID, again.ID)

	// Concurrent inserts of a new key: exactly one wins, all see its id.
	var wins atomic.Int32
	ids := make([]int64, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			j, inserted, err := Insert(ctx, testDB.Pool, InsertParams{Kind: kind, UniqueKey: "race"})
			if err == nil {
				ids[i] = j.ID
				if inserted {
					wins.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}

	// Refused while running; free again once completed.
	running, release := make(chan int64, 1), make(chan struct{})
	uniqueKind := testKind(t) + "/run"
	startClient(t, Config{}, map[string]Handler{uniqueKind: func(_ context.Context, j *Job) error {
		running <- j.ID
		<-release
		return nil
	}})
	j := insert(t, InsertParams{Kind: uniqueKind, UniqueKey: "once"})
	require.Equal(t, j.ID, <-running)
	dup, inserted, err := Insert(ctx, testDB.Pool, InsertParams{Kind: uniqueKind, UniqueKey: "once"})
	require.NoError(t, err)
	require.False(t, inserted)
	require.Equal(t, j.ID, dup.ID)
	require.Equal(t, StateRunning, dup.State)
	close(release)
	waitState(t, j.ID, StateCompleted)
	next, inserted, err := Insert(ctx, testDB.Pool, InsertParams{Kind: uniqueKind, UniqueKey: "once"})
	require.NoError(t, err)
	require.True(t, inserted)
	require.NotEqual(t, j.ID, next.ID)
	require.Equal(t, next.ID, <-running)
}

func TestRetriesBackOffThenDiscard(t *testing.T) {
	t.Parallel()
	var backoffs recorder[int]
	backoff := func(attempt int) time.Duration {
		backoffs.add(attempt)
		return time.Duration(attempt) * 150 * time.Millisecond
	}
	var attempts recorder[Job]
	var discards recorder[Job]
	c := startClient(t, Config{
		Backoff:   backoff,
		OnDiscard: func(_ context.Context, j *Job) { discards.add(*j) },
	}, map[string]Handler{testKind(t): func(_ context.Context, j *Job) error {
		attempts.add(*j)
		return fmt.Errorf("boom %d", j.Attempt)
	}})
	j := insert(t, InsertParams{Kind: testKind(t), MaxAttempts: 3})
	done := waitState(t, j.ID, StateDiscarded)

	require.Equal(t, 3, done.Attempt)
	require.NotNil(t, done.FinishedAt)
	require.Nil(t, done.LockedAt)
	require.Equal(t, "boom 3", done.LastError)
	require.Len(t, done.Errors, 3)
	for i, e := range done.Errors {
		require.Equal(t, i+1, e.Attempt)
		require.Equal(t, fmt.Sprintf("boom %d", i+1), e.Error)
		require.Equal(t, c.WorkerID(), e.Worker)
	}
	require.Equal(t, []int{1, 2}, backoffs.get(), "no backoff after the last attempt")

	runs := attempts.get()
	require.Len(t, runs, 3)
	for i := 1; i < len(runs); i++ {
		require.Equal(t, i+1, runs[i].Attempt)
		// Both times are from the database clock.
		gap := runs[i].AttemptedAt.Sub(done.Errors[i-1].At)
		require.GreaterOrEqual(t, gap, time.Duration(i)*150*time.Millisecond, "attempt %d came too early", i+1)
	}

	require.Eventually(t, func() bool { return len(discards.get()) == 1 }, 30*time.Second, 10*time.Millisecond)
	d := discards.get()[0]
	require.Equal(t, j.ID, d.ID)
	require.Equal(t, StateDiscarded, d.State)
	require.Len(t, d.Errors, 3)
}

// RetryIn: the handler's own delay replaces Config.Backoff, and the attempt
// still counts.
func TestRetryIn(t *testing.T) {
	t.Parallel()
	var runs recorder[Job]
	startClient(t, Config{Backoff: func(int) time.Duration { return time.Hour }}, map[string]Handler{testKind(t): func(_ context.Context, j *Job) error {
		runs.add(*j)
		if j.Attempt == 1 {
			return RetryIn(errors.New("come back later"), 400*time.Millisecond)
		}
		return nil
	}})
	j := insert(t, InsertParams{Kind: testKind(t), MaxAttempts: 2})
	done := waitState(t, j.ID, StateCompleted)
	require.Equal(t, 2, done.Attempt)
	require.Len(t, done.Errors, 1)
	require.Equal(t, "come back later", done.Errors[0].Error)
	got := runs.get()
	require.Len(t, got, 2)
	gap := got[1].AttemptedAt.Sub(done.Errors[0].At)
	require.GreaterOrEqual(t, gap, 400*time.Millisecond)
	require.Less(t, gap, time.Minute, "Config.Backoff (an hour) was not used")
	require.ErrorContains(t, RetryIn(nil, time.Second), "retry")
}

func TestCancel(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	startClient(t, Config{}, map[string]Handler{testKind(t): func(context.Context, *Job) error {
		runs.Add(1)
		return Cancel(errors.New("tenant is gone"))
	}})
	j := insert(t, InsertParams{Kind: testKind(t), MaxAttempts: 5})
	done := waitState(t, j.ID, StateCancelled)
	require.Equal(t, 1, done.Attempt)
	require.NotNil(t, done.FinishedAt)
	require.Contains(t, done.LastError, "tenant is gone")
	require.Len(t, done.Errors, 1)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, int32(1), runs.Load())

	require.ErrorContains(t, Cancel(nil), "cancelled")
	inner := errors.New("inner")
	require.ErrorIs(t, Cancel(inner), inner)
}

func TestSnooze(t *testing.T) {
	t.Parallel()
	var runs recorder[Job]
	startClient(t, Config{}, map[string]Handler{testKind(t): func(_ context.Context, j *Job) error {
		runs.add(*j)
		if len(runs.get()) == 1 {
			return Snooze(300 * time.Millisecond)
		}
		return nil
	}})
	j := insert(t, InsertParams{Kind: testKind(t), MaxAttempts: 1})
	done := waitState(t, j.ID, StateCompleted)
	require.Equal(t, 1, done.Attempt, "a snooze does not count as an attempt")
	require.Empty(t, done.Errors)
	got := runs.get()
	require.Len(t, got, 2)
	require.Equal(t, 1, got[0].Attempt)
	require.Equal(t, 1, got[1].Attempt)
	require.GreaterOrEqual(t, got[1].AttemptedAt.Sub(*got[0].AttemptedAt), 300*time.Millisecond)
}

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	startClient(t, Config{Backoff: func(int) time.Duration { return 0 }}, map[string]Handler{
		testKind(t): func(_ context.Context, j *Job) error {
			if j.Attempt == 1 {
				panic("kaboom")
			}
			return nil
		},
	})
	j := insert(t, InsertParams{Kind: testKind(t)})
	done := waitState(t, j.ID, StateCompleted)
	require.Equal(t, 2, done.Attempt)
	require.Len(t, done.Errors, 1)
	require.Contains(t, done.Errors[0].Error, "handler panicked: kaboom")
}

func TestJobTimeout(t *testing.T) {
	t.Parallel()
	var discarded atomic.Int64
	startClient(t, Config{
		JobTimeout: 200 * time.Millisecond,
		StaleAfter: 10 * time.Second,
		OnDiscard:  func(_ context.Context, j *Job) { discarded.Store(j.ID) },
	}, map[string]Handler{testKind(t): func(ctx context.Context, _ *Job) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	j := insert(t, InsertParams{Kind: testKind(t), MaxAttempts: 1})
	done := waitState(t, j.ID, StateDiscarded)
	require.Contains(t, done.LastError, "deadline exceeded")
	require.Eventually(t, func() bool { return discarded.Load() == j.ID }, 30*time.Second, 10*time.Millisecond)
}

func TestCompleteTx(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, err := testDB.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS jobs_test_effects (job_id bigint PRIMARY KEY)`)
	require.NoError(t, err)
	var lost error
	startClient(t, Config{}, map[string]Handler{testKind(t): func(ctx context.Context, j *Job) error {
		return pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO jobs_test_effects (job_id) VALUES ($1)`, j.ID); err != nil {
				return err
			}
			if err := CompleteTx(ctx, tx, j); err != nil {
				return err
			}
			stale := *j
			stale.Attempt++ // a run that does not hold the lock
			lost = CompleteTx(ctx, tx, &stale)
			return nil
		})
	}})
	j := insert(t, InsertParams{Kind: testKind(t)})
	done := waitState(t, j.ID, StateCompleted)
	require.Equal(t, 1, done.Attempt)
	var n int
	require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT count(*) FROM jobs_test_effects WHERE job_id = $1`, j.ID).Scan(&n))
	require.Equal(t, 1, n)
	require.ErrorIs(t, lost, ErrLockLost)
	require.ErrorIs(t, CompleteTx(ctx, testDB.Pool, &done), ErrLockLost)
}

// TestRescueStale claims jobs as a "ghost" worker that never finishes them:
// the rescuer must take back its kinds' jobs (and only those) once their
// locks are stale, and the ghost's late writes must change nothing.
func TestRescueStale(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	retryKind, lastKind, foreignKind := testKind(t)+"/retry", testKind(t)+"/last", testKind(t)+"/foreign"
	retry := insert(t, InsertParams{Kind: retryKind})
	last := insert(t, InsertParams{Kind: lastKind, MaxAttempts: 1})
	foreign := insert(t, InsertParams{Kind: foreignKind})
	q := jobsdb.New(testDB.Pool)
	claimed, err := q.ClaimJobs(ctx, jobsdb.ClaimJobsParams{Worker: "ghost", Kinds: []string{retryKind, lastKind, foreignKind}, MaxJobs: 10})
	require.NoError(t, err)
	require.Len(t, claimed, 3)

	var discards recorder[Job]
	var ran recorder[Job]
	ok := func(_ context.Context, j *Job) error { ran.add(*j); return nil }
	startClient(t, Config{
		JobTimeout:     300 * time.Millisecond,
		StaleAfter:     time.Second,
		RescueInterval: 100 * time.Millisecond,
		OnDiscard:      func(_ context.Context, j *Job) { discards.add(*j) },
	}, map[string]Handler{retryKind: ok, lastKind: ok})

	r := waitState(t, retry.ID, StateCompleted)
	require.Equal(t, 2, r.Attempt)
	require.Len(t, r.Errors, 1)
	require.Equal(t, "ghost", r.Errors[0].Worker)
	require.Contains(t, r.Errors[0].Error, "stale")

	l := waitState(t, last.ID, StateDiscarded)
	require.Equal(t, 1, l.Attempt)
	require.Contains(t, l.LastError, "stale")
	require.Eventually(t, func() bool { return len(discards.get()) == 1 }, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, last.ID, discards.get()[0].ID)

	for _, j := range ran.get() {
		require.Equal(t, retry.ID, j.ID, "only the retryable job runs again")
	}

	f, err := reader(t).Get(ctx, foreign.ID)
	require.NoError(t, err)
	require.Equal(t, StateRunning, f.State, "a kind this client does not run is not rescued by it")
	require.Equal(t, "ghost", f.LockedBy)

	// The ghost wakes up: its completion and failure are fenced off.
	ids, err := q.CompleteJobs(ctx, jobsdb.CompleteJobsParams{Worker: "ghost", Ids: []int64{retry.ID, last.ID}, Attempts: []int32{1, 1}})
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = q.FailJob(ctx, jobsdb.FailJobParams{Worker: "ghost", ID: retry.ID, Attempt: 1, Error: "late"})
	require.ErrorIs(t, err, pgx.ErrNoRows)
}

func TestListFiltersAndPagination(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b := testKind(t)+"/a", testKind(t)+"/b"
	tenant := uuid.New()
	var aIDs []int64
	for i := range 5 {
		p := InsertParams{Kind: a}
		if i < 3 {
			p.TenantID = &tenant
		}
		aIDs = append(aIDs, insert(t, p).ID)
	}
	aIDs = append(aIDs, insert(t, InsertParams{Kind: a, ScheduledAt: time.Now().Add(time.Hour)}).ID)
	for range 3 {
		insert(t, InsertParams{Kind: b})
	}
	r := reader(t)
	tests := []struct {
		name string
		p    ListParams
		want int
	}{
		{"kind", ListParams{Kind: a}, 6},
		{"kind and tenant", ListParams{Kind: a, TenantID: &tenant}, 3},
		{"tenant", ListParams{TenantID: &tenant}, 3},
		{"kind and state", ListParams{Kind: a, State: StateScheduled}, 1},
		{"other kind, available", ListParams{Kind: b, State: StateAvailable}, 3},
		{"nothing completed", ListParams{Kind: b, State: StateCompleted}, 0},
		{"limit", ListParams{Kind: a, Limit: 4}, 4},
		{"huge limit is capped, not refused", ListParams{Kind: a, Limit: 5000}, 6},
	}
	for _, tt := range tests {
		got, err := r.List(ctx, tt.p)
		require.NoError(t, err, tt.name)
		require.Len(t, got, tt.want, tt.name)
	}

	var paged []int64
	p := ListParams{Kind: a, Limit: 2}
	for {
		page, err := r.List(ctx, p)
		require.NoError(t, err)
		for _, j := range page {
			paged = append(paged, j.ID)
		}
		if len(page) < p.Limit {
			break
		}
		p.AfterID = page[len(page)-1].ID
	}
	require.Equal(t, aIDs, paged)

	for _, bad := range []ListParams{{State: "bogus"}, {Limit: -1}, {AfterID: -1}} {
		_, err := r.List(ctx, bad)
		require.ErrorIs(t, err, ErrInvalid)
	}
	st, err := ParseState("discarded")
	require.NoError(t, err)
	require.Equal(t, StateDiscarded, st)
	require.True(t, st.Final())
	_, err = ParseState("done")
	require.ErrorContains(t, err, "available, scheduled")
}

func TestGetAndRetry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	r := reader(t)
	_, err := r.Get(ctx, -1)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = r.Retry(ctx, -1)
	require.ErrorIs(t, err, ErrNotFound)

	// A discarded job comes back with one more attempt and its errors kept.
	startClient(t, Config{}, map[string]Handler{testKind(t): func(_ context.Context, j *Job) error {
		if j.Attempt == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}})
	j := insert(t, InsertParams{Kind: testKind(t), MaxAttempts: 1})
	waitState(t, j.ID, StateDiscarded)
	back, err := r.Retry(ctx, j.ID)
	require.NoError(t, err)
	require.Contains(t, []State{StateAvailable, StateRunning, StateCompleted}, back.State)
	require.Equal(t, 2, back.MaxAttempts)
	require.Nil(t, back.FinishedAt)
	require.Len(t, back.Errors, 1)
	done := waitState(t, j.ID, StateCompleted)
	require.Equal(t, 2, done.Attempt)
	_, err = r.Retry(ctx, j.ID)
	require.ErrorIs(t, err, ErrNotRetryable, "completed")

	// A scheduled job (no client runs this kind) becomes runnable now.
	idle := testKind(t) + "/idle"
	later := insert(t, InsertParams{Kind: idle, ScheduledAt: time.Now().Add(time.Hour)})
	now, err := r.Retry(ctx, later.ID)
	require.NoError(t, err)
	require.Equal(t, StateAvailable, now.State)
	require.WithinDuration(t, time.Now(), now.ScheduledAt, 5*time.Second)

	// A running job is not retried.
	claimed, err := jobsdb.New(testDB.Pool).ClaimJobs(ctx, jobsdb.ClaimJobsParams{Worker: "ghost", Kinds: []string{idle}, MaxJobs: 1})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	_, err = r.Retry(ctx, claimed[0].ID)
	require.ErrorIs(t, err, ErrNotRetryable, "running")

	// A finished job whose unique key another unfinished job took cannot
	// come back while that job is unfinished.
	conflict := testKind(t) + "/conflict"
	old := insert(t, InsertParams{Kind: conflict, UniqueKey: "c"})
	_, err = testDB.Pool.Exec(ctx, `UPDATE jobs SET state = 'cancelled', finished_at = now() WHERE id = $1`, old.ID)
	require.NoError(t, err)
	insert(t, InsertParams{Kind: conflict, UniqueKey: "c"})
	_, err = r.Retry(ctx, old.ID)
	require.ErrorIs(t, err, ErrUniqueConflict)
}

func TestStopWaitsForRunningJobs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	started := make(chan struct{})
	var finished atomic.Bool
	c, err := NewClient(testDB.Pool, Config{PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, c.Register(testKind(t), func(context.Context, *Job) error {
		close(started)
		time.Sleep(500 * time.Millisecond) // ignores its context on purpose
		finished.Store(true)
		return nil
	}))
	require.NoError(t, c.Start(context.Background()))
	j := insert(t, InsertParams{Kind: testKind(t)})
	<-started
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, c.Stop(stopCtx))
	require.True(t, finished.Load(), "Stop returned before the running job finished")
	got, err := c.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, StateCompleted, got.State, "completion written before Stop returned")

	// Stopped: new jobs are not claimed.
	after := insert(t, InsertParams{Kind: testKind(t)})
	time.Sleep(200 * time.Millisecond)
	got, err = c.Get(ctx, after.ID)
	require.NoError(t, err)
	require.Equal(t, StateAvailable, got.State)
}

func TestStopDeadlineCancelsJobs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	started := make(chan struct{})
	c, err := NewClient(testDB.Pool, Config{PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, c.Register(testKind(t), func(ctx context.Context, _ *Job) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}))
	require.NoError(t, c.Start(context.Background()))
	j := insert(t, InsertParams{Kind: testKind(t)})
	<-started
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Stop(short), context.DeadlineExceeded)
	long, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	require.NoError(t, c.Stop(long), "a second Stop waits for the cancelled jobs")
	got, err := c.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, StateRetryable, got.State)
	require.Contains(t, got.LastError, "context canceled")
}

func TestWake(t *testing.T) {
	t.Parallel()
	ran := make(chan int64, 2)
	// A job waiting before the start is claimed by the first (immediate)
	// poll: once it ran, that poll is over and the next is an hour away,
	// however slowly the client started.
	first := insert(t, InsertParams{Kind: testKind(t)})
	c := startClient(t, Config{PollInterval: time.Hour}, map[string]Handler{testKind(t): func(_ context.Context, j *Job) error {
		ran <- j.ID
		return nil
	}})
	select {
	case id := <-ran:
		require.Equal(t, first.ID, id)
	case <-time.After(30 * time.Second):
		t.Fatal("the first poll did not claim the waiting job")
	}
	j, inserted, err := c.Insert(t.Context(), InsertParams{Kind: testKind(t)})
	require.NoError(t, err)
	require.True(t, inserted)
	select {
	case id := <-ran:
		require.Equal(t, j.ID, id)
	case <-time.After(30 * time.Second):
		t.Fatal("Client.Insert did not wake the client")
	}

	other := insert(t, InsertParams{Kind: testKind(t)}) // package Insert: no wake by itself
	c.Wake()
	select {
	case id := <-ran:
		require.Equal(t, other.ID, id)
	case <-time.After(30 * time.Second):
		t.Fatal("Wake did not wake the client")
	}
}
