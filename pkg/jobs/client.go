package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/jobs/internal/jobsdb"
)

const (
	// writeTimeout bounds each database write that records a run's outcome.
	writeTimeout = 30 * time.Second
	// maxCompleteBatch caps the runs completed by one UPDATE.
	maxCompleteBatch = 1000
	// rescueBatch caps the jobs one rescue statement releases.
	rescueBatch = 1000
	// maxWorkerIDLen is the longest WorkerID accepted, in bytes.
	maxWorkerIDLen = 200
)

// Config tunes a Client. The zero value is usable: every field has a default.
type Config struct {
	// Workers is how many jobs the client runs at once. Defaults to 4.
	Workers int
	// PollInterval is how often the client looks for runnable jobs when it
	// has free workers and nothing woke it. Defaults to 1s.
	PollInterval time.Duration
	// JobTimeout bounds each attempt: the handler's context ends after it.
	// Defaults to 1 minute.
	JobTimeout time.Duration
	// StaleAfter is how old a running job's lock must be before the rescuer
	// takes the job back from its (presumed dead) worker. Must be longer than
	// JobTimeout. Defaults to JobTimeout + 1 minute.
	StaleAfter time.Duration
	// RescueInterval is how often the client's rescuer runs. Defaults to
	// StaleAfter/2, at most 30s.
	RescueInterval time.Duration
	// WorkerID names this client in locked_by and in recorded errors; it
	// should be unique among running clients. Defaults to
	// "<hostname>-<pid>-<8 random hex digits>".
	WorkerID string
	// Logger receives the client's logs. Defaults to a logger that discards
	// everything (never slog.Default).
	Logger *slog.Logger
	// Backoff returns how long a job waits before its next attempt after
	// attempt number attempt (1-based) failed. Defaults to DefaultBackoff:
	// attempt^4 seconds ±10%. Negative results count as 0.
	Backoff func(attempt int) time.Duration
	// OnDiscard, when set, is called once for every job this client discards
	// (failed with no attempts left, by a handler or by the rescuer), after
	// the discard committed, with the job as stored. It runs on the worker or
	// rescuer goroutine with a context bounded by JobTimeout; a panic in it is
	// recovered and logged. Defaults to nil: nothing is called.
	OnDiscard func(ctx context.Context, j *Job)
	// StopTimeout is how long Run waits, once its context ends, for running
	// jobs to finish before it cancels their contexts. Defaults to
	// DefaultStopTimeout.
	StopTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultWorkers      = 4
	DefaultPollInterval = time.Second
	DefaultJobTimeout   = time.Minute
	DefaultStopTimeout  = 15 * time.Second
)

// withDefaults validates c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"PollInterval", c.PollInterval}, {"JobTimeout", c.JobTimeout}, {"StaleAfter", c.StaleAfter}, {"RescueInterval", c.RescueInterval},
		{"StopTimeout", c.StopTimeout}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%w: %s must not be negative, got %s", ErrInvalid, f.name, f.v))
		}
	}
	if c.Workers < 0 || c.Workers > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("%w: Workers out of range: %d", ErrInvalid, c.Workers))
	}
	if len(c.WorkerID) > maxWorkerIDLen {
		errs = append(errs, fmt.Errorf("%w: WorkerID longer than %d bytes", ErrInvalid, maxWorkerIDLen))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.JobTimeout == 0 {
		c.JobTimeout = DefaultJobTimeout
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = c.JobTimeout + time.Minute
	}
	if c.StaleAfter <= c.JobTimeout {
		return c, fmt.Errorf("%w: StaleAfter (%s) must be longer than JobTimeout (%s)", ErrInvalid, c.StaleAfter, c.JobTimeout)
	}
	if c.RescueInterval == 0 {
		c.RescueInterval = min(c.StaleAfter/2, 30*time.Second)
	}
	if c.WorkerID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "unknown"
		}
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.WorkerID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
		if len(c.WorkerID) > maxWorkerIDLen {
			c.WorkerID = c.WorkerID[len(c.WorkerID)-maxWorkerIDLen:]
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	return c, nil
}

// Client runs jobs of its registered kinds and reads and retries jobs of any
// kind. Register handlers, then Run it until its context ends. A Client that
// never runs still serves Insert, Get, List and Retry. All methods are safe
// for concurrent use. A Client runs once: it cannot run again after Run
// returned.
type Client struct {
	pool *pgxpool.Pool
	q    *jobsdb.Queries
	cfg  Config
	log  *slog.Logger

	mu       sync.Mutex
	handlers map[string]Handler
	started  bool

	kinds       []string
	wake        chan struct{}
	stopping    chan struct{}
	stopOnce    sync.Once
	done        chan struct{} // closed when every goroutine of the client ended
	cancelJobs  context.CancelFunc
	workers     sync.WaitGroup
	completions chan completion
}

type completion struct {
	job *Job
}

// NewClient returns a Client that works on the database behind pool, which
// must have the jobs table (migration 005). cfg is validated and defaulted;
// an invalid cfg returns an error wrapping ErrInvalid.
func NewClient(pool *pgxpool.Pool, cfg Config) (*Client, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: nil pool", ErrInvalid)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{
		pool:     pool,
		q:        jobsdb.New(pool),
		cfg:      cfg,
		log:      cfg.Logger.With(slog.String("worker", cfg.WorkerID)),
		handlers: map[string]Handler{},
		wake:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// WorkerID is the id the client locks jobs with (Config.WorkerID or its default).
func (c *Client) WorkerID() string { return c.cfg.WorkerID }

// Register makes the client run jobs of kind with h. It must be called
// before Run; registering a kind twice, an empty or over-long kind, or a
// nil handler is an error.
func (c *Client) Register(kind string, h Handler) error {
	if kind == "" || len(kind) > MaxKindLen {
		return fmt.Errorf("%w: kind must be 1 to %d bytes", ErrInvalid, MaxKindLen)
	}
	if h == nil {
		return fmt.Errorf("%w: nil handler for kind %q", ErrInvalid, kind)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return fmt.Errorf("jobs: register %q: client already started", kind)
	}
	if _, ok := c.handlers[kind]; ok {
		return fmt.Errorf("jobs: register %q: kind already registered", kind)
	}
	c.handlers[kind] = h
	return nil
}

// Run claims and runs jobs of the registered kinds, and rescues their stale
// locks, until ctx ends; then it stops gracefully: it stops claiming, waits
// up to Config.StopTimeout for running jobs to finish and their outcomes to
// be written, then cancels the jobs' contexts and waits for their handlers to
// return. It returns nil after a clean stop, and an error when the client
// cannot run (no kind registered, already run) or the running jobs had to
// be cancelled.
func (c *Client) Run(ctx context.Context) error {
	if err := c.start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.StopTimeout)
	defer cancel()
	if err := c.stop(sctx); err != nil {
		// The jobs' contexts are cancelled: wait for their handlers.
		<-c.done
		return err
	}
	return nil
}

// start begins claiming and running jobs of the registered kinds, and
// rescuing their stale locks, in background goroutines, and returns at once.
// Cancelling ctx is a hard stop: claiming ends and running jobs' contexts are
// cancelled (their outcomes are still recorded); stop is the graceful way.
// start fails when no kind is registered or the client was already started.
func (c *Client) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("jobs: client already started")
	}
	if len(c.handlers) == 0 {
		return errors.New("jobs: start: no handler registered")
	}
	c.started = true
	c.kinds = slices.Sorted(maps.Keys(c.handlers))
	jobCtx, cancel := context.WithCancel(ctx)
	c.cancelJobs = cancel
	c.completions = make(chan completion, maxCompleteBatch)

	fetcherDone := make(chan struct{})
	rescuerDone := make(chan struct{})
	completerDone := make(chan struct{})
	go func() {
		defer close(fetcherDone)
		c.fetchLoop(jobCtx)
	}()
	go func() {
		defer close(rescuerDone)
		c.rescueLoop(jobCtx)
	}()
	go func() {
		defer close(completerDone)
		c.completeLoop(jobCtx)
	}()
	go func() {
		<-fetcherDone
		c.workers.Wait() // no new worker starts once the fetcher is gone
		close(c.completions)
		<-completerDone
		<-rescuerDone
		cancel()
		close(c.done)
	}()
	c.log.Info("jobs: client started", slog.Any("kinds", c.kinds), slog.Int("workers", c.cfg.Workers))
	return nil
}

// stop shuts the client down gracefully: it stops claiming and rescuing,
// waits for running jobs to finish and for their outcomes to be written, and
// returns nil. If ctx ends first, stop cancels the running jobs' contexts and
// returns ctx's error at once; the jobs' outcomes are still written in the
// background as their handlers return, and calling stop again waits for that.
// A job whose handler ignores its context keeps its lock until it returns or
// is rescued after StaleAfter. stop on a client never started returns nil.
func (c *Client) stop(ctx context.Context) error {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		return nil
	}
	c.stopOnce.Do(func() { close(c.stopping) })
	select {
	case <-c.done:
		c.log.Info("jobs: client stopped")
		return nil
	case <-ctx.Done():
		c.cancelJobs()
		return fmt.Errorf("jobs: stop: %w", ctx.Err())
	}
}

// Wake makes the client look for runnable jobs now instead of at its next
// poll, for example after committing a transaction that inserted jobs. It
// never blocks; wakes that arrive while one is pending are merged.
func (c *Client) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Insert enqueues a job with the client's pool (see the package function
// Insert for the guarantees) and wakes the client when it runs p.Kind.
func (c *Client) Insert(ctx context.Context, p InsertParams) (Job, bool, error) {
	j, inserted, err := Insert(ctx, c.pool, p)
	if err == nil && inserted {
		c.mu.Lock()
		_, ok := c.handlers[p.Kind]
		c.mu.Unlock()
		if ok {
			c.Wake()
		}
	}
	return j, inserted, err
}

// fetchLoop claims jobs whenever there are free workers and a reason to look:
// the poll timer, a wake, or a worker freed after a full claim (more jobs are
// probably waiting).
func (c *Client) fetchLoop(ctx context.Context) {
	free := c.cfg.Workers
	finished := make(chan struct{}, c.cfg.Workers) // one send per worker, never blocks
	poll := time.NewTimer(0)
	defer poll.Stop()
	claimNow := false
	for {
		if claimNow && free > 0 {
			want := free
			claimed, err := c.claim(ctx, want)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Error("jobs: claim", slog.Any("error", err))
				}
			}
			for _, j := range claimed {
				free--
				c.workers.Add(1)
				go c.work(ctx, j, finished)
			}
			// A full batch means more jobs are probably waiting: claim again as
			// soon as a worker frees. Otherwise wait for the poll or a wake.
			claimNow = err == nil && len(claimed) == want
			poll.Reset(c.cfg.PollInterval)
		}
		select {
		case <-c.stopping:
			return
		case <-ctx.Done():
			return
		case <-c.wake:
			claimNow = true
		case <-poll.C:
			claimNow = true
		case <-finished:
			free++
		drain:
			for {
				select {
				case <-finished:
					free++
				default:
					break drain
				}
			}
		}
	}
}

// claim claims up to n jobs. The statement runs to its end even when ctx is
// cancelled meanwhile (a claim the server committed must not be lost); jobs
// claimed after ctx ended are handed back at once without using an attempt.
func (c *Client) claim(ctx context.Context, n int) ([]*Job, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	rows, err := c.q.ClaimJobs(wctx, jobsdb.ClaimJobsParams{
		Worker:  c.cfg.WorkerID,
		Kinds:   c.kinds,
		MaxJobs: int32(n), //nolint:gosec // n <= Workers, range checked
	})
	if err != nil {
		return nil, err
	}
	jobs := make([]*Job, len(rows))
	for i, r := range rows {
		j := fromRow(r)
		jobs[i] = &j
	}
	if ctx.Err() != nil {
		for _, j := range jobs {
			c.snooze(ctx, j, 0)
		}
		return nil, ctx.Err()
	}
	return jobs, nil
}

// work runs one claimed job and records its outcome.
func (c *Client) work(ctx context.Context, j *Job, finished chan<- struct{}) {
	defer c.workers.Done()
	defer func() { finished <- struct{}{} }()
	c.mu.Lock()
	h := c.handlers[j.Kind]
	c.mu.Unlock()

	start := time.Now()
	err := c.runHandler(ctx, h, j)
	log := c.log.With(slog.Int64("job_id", j.ID), slog.String("kind", j.Kind), slog.Int("attempt", j.Attempt))
	if err == nil {
		log.Debug("jobs: job succeeded", slog.Duration("took", time.Since(start)))
		c.completions <- completion{job: j}
		return
	}
	var ce *cancelError
	var se *snoozeError
	switch {
	case errors.As(err, &se):
		log.Debug("jobs: job snoozed", slog.Duration("for", se.d))
		c.snooze(ctx, j, se.d)
	case errors.As(err, &ce):
		log.Info("jobs: job cancelled", slog.Any("error", err))
		c.cancelRun(ctx, j, err)
	default:
		log.Warn("jobs: job failed", slog.Any("error", err), slog.Duration("took", time.Since(start)))
		c.fail(ctx, j, err)
	}
}

// runHandler calls h with the job timeout, turning a panic into an error.
func (c *Client) runHandler(ctx context.Context, h Handler, j *Job) (err error) {
	jctx, cancel := context.WithTimeout(ctx, c.cfg.JobTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("jobs: handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return h(jctx, j)
}

// writeCtx is the context for recording an outcome: not cancelled with the
// jobs (the outcome of a finished run must be written), but bounded.
func writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
}

func (c *Client) fail(ctx context.Context, j *Job, runErr error) {
	wctx, cancel := writeCtx(ctx)
	defer cancel()
	var backoff time.Duration
	if j.Attempt < j.MaxAttempts { // else the job is discarded: no next attempt
		var ri *retryInError
		if errors.As(runErr, &ri) {
			backoff = ri.d
		} else {
			backoff = max(c.cfg.Backoff(j.Attempt), 0)
		}
	}
	row, err := c.q.FailJob(wctx, jobsdb.FailJobParams{
		BackoffSecs: backoff.Seconds(),
		Error:       errorText(runErr),
		Worker:      c.cfg.WorkerID,
		ID:          j.ID,
		Attempt:     int32(j.Attempt), //nolint:gosec // read from an integer column
	})
	if err != nil {
		c.writeFailed(j, "fail", err)
		return
	}
	if State(row.State) == StateDiscarded {
		out := fromRow(row)
		c.log.Warn("jobs: job discarded", slog.Int64("job_id", j.ID), slog.String("kind", j.Kind), slog.Int("attempts", out.Attempt))
		c.discarded(ctx, &out)
	}
}

func (c *Client) cancelRun(ctx context.Context, j *Job, runErr error) {
	wctx, cancel := writeCtx(ctx)
	defer cancel()
	_, err := c.q.CancelRunningJob(wctx, jobsdb.CancelRunningJobParams{
		Error:   errorText(runErr),
		Worker:  c.cfg.WorkerID,
		ID:      j.ID,
		Attempt: int32(j.Attempt), //nolint:gosec // read from an integer column
	})
	if err != nil {
		c.writeFailed(j, "cancel", err)
	}
}

func (c *Client) snooze(ctx context.Context, j *Job, d time.Duration) {
	wctx, cancel := writeCtx(ctx)
	defer cancel()
	_, err := c.q.SnoozeJob(wctx, jobsdb.SnoozeJobParams{
		SnoozeSecs: d.Seconds(),
		ID:         j.ID,
		Attempt:    int32(j.Attempt), //nolint:gosec // read from an integer column
		Worker:     c.cfg.WorkerID,
	})
	if err != nil {
		c.writeFailed(j, "snooze", err)
	}
}

// writeFailed logs a failed outcome write. No row means the run lost its lock
// (rescued as stale, or completed by CompleteTx): nothing to do. Any other
// error leaves the job running until the rescuer takes it back.
func (c *Client) writeFailed(j *Job, op string, err error) {
	log := c.log.With(slog.Int64("job_id", j.ID), slog.String("kind", j.Kind), slog.Int("attempt", j.Attempt))
	switch {
	case errors.Is(err, pgx.ErrNoRows) && j.completedTx:
	case errors.Is(err, pgx.ErrNoRows):
		log.Warn("jobs: run lost its lock before its outcome was written; outcome dropped", slog.String("outcome", op))
	default:
		log.Error("jobs: write outcome; the job stays locked until rescued", slog.String("outcome", op), slog.Any("error", err))
	}
}

// discarded calls OnDiscard for j, recovering a panic.
func (c *Client) discarded(ctx context.Context, j *Job) {
	if c.cfg.OnDiscard == nil {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.JobTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("jobs: OnDiscard panicked", slog.Int64("job_id", j.ID), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		}
	}()
	c.cfg.OnDiscard(hctx, j)
}

// completeLoop writes successful runs in batches: it takes whatever queued
// up while the previous batch was written, up to maxCompleteBatch, and
// completes it with one UPDATE. It ends when completions is closed, after
// the last worker finished.
func (c *Client) completeLoop(ctx context.Context) {
	batch := make([]completion, 0, maxCompleteBatch)
	for first := range c.completions {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxCompleteBatch {
			select {
			case x, ok := <-c.completions:
				if !ok {
					break fill
				}
				batch = append(batch, x)
			default:
				break fill
			}
		}
		c.flush(ctx, batch)
	}
}

func (c *Client) flush(ctx context.Context, batch []completion) {
	p := jobsdb.CompleteJobsParams{
		Worker:   c.cfg.WorkerID,
		Ids:      make([]int64, len(batch)),
		Attempts: make([]int32, len(batch)),
	}
	for i, b := range batch {
		p.Ids[i] = b.job.ID
		p.Attempts[i] = int32(b.job.Attempt) //nolint:gosec // read from an integer column
	}
	var done []int64
	var err error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		wctx, cancel := writeCtx(ctx)
		done, err = c.q.CompleteJobs(wctx, p)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		c.log.Error("jobs: complete jobs; they stay locked until rescued and will run again",
			slog.Int("jobs", len(batch)), slog.Any("error", err))
		return
	}
	if len(done) == len(batch) {
		return
	}
	ok := make(map[int64]bool, len(done))
	for _, id := range done {
		ok[id] = true
	}
	for _, b := range batch {
		if !ok[b.job.ID] && !b.job.completedTx {
			c.log.Warn("jobs: run lost its lock before its completion was written; the job runs again",
				slog.Int64("job_id", b.job.ID), slog.String("kind", b.job.Kind), slog.Int("attempt", b.job.Attempt))
		}
	}
}

// rescueLoop releases stale locks of the client's kinds now and every
// RescueInterval until the client stops.
func (c *Client) rescueLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.stopping:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.rescue(ctx)
		t.Reset(c.cfg.RescueInterval)
	}
}

func (c *Client) rescue(ctx context.Context) {
	for {
		rows, err := c.q.RescueStaleJobs(ctx, jobsdb.RescueStaleJobsParams{
			StaleSecs: c.cfg.StaleAfter.Seconds(),
			Kinds:     c.kinds,
			MaxJobs:   rescueBatch,
		})
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("jobs: rescue stale jobs", slog.Any("error", err))
			}
			return
		}
		for _, r := range rows {
			j := fromRow(r)
			c.log.Warn("jobs: rescued job with a stale lock", slog.Int64("job_id", j.ID), slog.String("kind", j.Kind),
				slog.Int("attempt", j.Attempt), slog.String("state", string(j.State)), slog.String("error", j.LastError))
			if j.State == StateDiscarded {
				c.discarded(ctx, &j)
			}
		}
		if len(rows) < rescueBatch {
			return
		}
	}
}

// Get returns the job with id, or an error wrapping ErrNotFound.
func (c *Client) Get(ctx context.Context, id int64) (Job, error) {
	row, err := c.q.GetJob(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("jobs: get %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("jobs: get %d: %w", id, err)
	}
	return fromRow(row), nil
}

// Retry makes the job with id available to run now: a discarded or cancelled
// job comes back (given one more attempt when it had none left), and a
// retryable or scheduled job stops waiting. Its errors are kept. It returns
// the job as updated, or an error wrapping ErrNotFound, ErrNotRetryable (the
// job is running or completed) or ErrUniqueConflict (another unfinished job
// now holds its unique key).
func (c *Client) Retry(ctx context.Context, id int64) (Job, error) {
	row, err := c.q.RetryJob(ctx, id)
	switch {
	case err == nil:
		return fromRow(row), nil
	case isUniqueViolation(err):
		return Job{}, fmt.Errorf("jobs: retry %d: %w", id, ErrUniqueConflict)
	case !errors.Is(err, pgx.ErrNoRows):
		return Job{}, fmt.Errorf("jobs: retry %d: %w", id, err)
	}
	j, err := c.Get(ctx, id)
	if err != nil {
		return Job{}, fmt.Errorf("jobs: retry: %w", err)
	}
	return Job{}, fmt.Errorf("jobs: retry %d: %w: %s", id, ErrNotRetryable, j.State)
}

// ListParams filters and pages List. The zero value lists the first 50 jobs.
type ListParams struct {
	// State keeps jobs in this state; empty (the default) keeps all.
	State State
	// Kind keeps jobs of this kind; empty (the default) keeps all.
	Kind string
	// TenantID keeps the jobs of this tenant; nil (the default) keeps all.
	TenantID *uuid.UUID
	// Limit caps the jobs returned. Defaults to 50; values above 1000 count
	// as 1000.
	Limit int
	// AfterID returns jobs with a larger id: pass the last id of the previous
	// page. Defaults to 0, the first page.
	AfterID int64
}

// List returns jobs matching p in id order, one page at a time (keyset
// pagination: a page is never shifted by inserts). A short page is the last.
func (c *Client) List(ctx context.Context, p ListParams) ([]Job, error) {
	var errs []error
	if p.State != "" {
		if _, err := ParseState(string(p.State)); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrInvalid, err))
		}
	}
	if p.Limit < 0 {
		errs = append(errs, fmt.Errorf("%w: negative limit %d", ErrInvalid, p.Limit))
	}
	if p.AfterID < 0 {
		errs = append(errs, fmt.Errorf("%w: negative after id %d", ErrInvalid, p.AfterID))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	limit := p.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	rows, err := c.q.ListJobs(ctx, jobsdb.ListJobsParams{
		State:    nonEmpty(string(p.State)),
		Kind:     nonEmpty(p.Kind),
		TenantID: p.TenantID,
		AfterID:  p.AfterID,
		MaxRows:  int32(limit), //nolint:gosec // 1..1000
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	out := make([]Job, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, nil
}
