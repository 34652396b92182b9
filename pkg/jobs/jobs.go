package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prost-platform/prost/pkg/jobs/internal/jobsdb"
)

// State is where a job is in its life; see the package documentation.
type State string

// The states of a job.
const (
	StateAvailable State = "available"
	StateScheduled State = "scheduled"
	StateRunning   State = "running"
	StateRetryable State = "retryable"
	StateCompleted State = "completed"
	StateDiscarded State = "discarded"
	StateCancelled State = "cancelled"
)

// States lists every State, waiting states first and final states last.
var States = []State{
	StateAvailable, StateScheduled, StateRunning, StateRetryable,
	StateCompleted, StateDiscarded, StateCancelled,
}

// ParseState returns the State named s, or an error naming the valid states.
func ParseState(s string) (State, error) {
	for _, st := range States {
		if string(st) == s {
			return st, nil
		}
	}
	names := make([]string, len(States))
	for i, st := range States {
		names[i] = string(st)
	}
	return "", fmt.Errorf("jobs: unknown state %q (want one of %s)", s, strings.Join(names, ", "))
}

// Final reports whether s is a final state (completed, discarded, cancelled).
func (s State) Final() bool {
	return s == StateCompleted || s == StateDiscarded || s == StateCancelled
}

const (
	// DefaultMaxAttempts is the number of attempts a job gets unless
	// InsertParams.MaxAttempts says otherwise.
	DefaultMaxAttempts = 25
	// MaxKindLen is the longest kind accepted, in bytes.
	MaxKindLen = 128
	// maxErrorLen caps the error text stored per attempt, in bytes.
	maxErrorLen = 4096
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: no job has the given id.
	ErrNotFound = errors.New("jobs: job not found")
	// ErrNotRetryable: Retry was asked for a job that is running or completed.
	ErrNotRetryable = errors.New("jobs: job cannot be retried in its state")
	// ErrUniqueConflict: Retry would make a job unfinished while another
	// unfinished job holds its unique key.
	ErrUniqueConflict = errors.New("jobs: another unfinished job holds the unique key")
	// ErrLockLost: CompleteTx found the run no longer holding its lock (it
	// was rescued as stale, or already finished).
	ErrLockLost = errors.New("jobs: the run no longer holds the job's lock")
	// ErrInvalid wraps every validation error of InsertParams, ListParams
	// and Config.
	ErrInvalid = errors.New("jobs: invalid")
)

// AttemptError is one failed attempt, as recorded in a job's errors.
type AttemptError struct {
	// Attempt is the attempt number that failed (1-based).
	Attempt int `json:"attempt"`
	// At is when the failure was recorded (database clock).
	At time.Time `json:"at"`
	// Error is the handler's error text, or the rescuer's note for a stale lock.
	Error string `json:"error"`
	// Worker is the WorkerID that ran the attempt.
	Worker string `json:"worker,omitempty"`
}

// Job is one row of the jobs table. Handlers receive a *Job for the run they
// execute; it is theirs to read but changing it changes nothing stored.
type Job struct {
	// ID is assigned by the database and increases with insertion order.
	ID int64 `json:"id"`
	// TenantID is the tenant the job works for; nil for platform jobs.
	TenantID *uuid.UUID `json:"tenant_id"`
	// Kind selects the Handler.
	Kind string `json:"kind"`
	// Args is the JSON the job was inserted with (a JSON object "{}" when none).
	Args json.RawMessage `json:"args"`
	// State is the job's state when this copy was read.
	State State `json:"state"`
	// Priority orders claiming: lower runs first.
	Priority int16 `json:"priority"`
	// Attempt counts claims, minus snoozes. A handler sees 1 on its first run.
	Attempt int `json:"attempt"`
	// MaxAttempts is the attempt after whose failure the job is discarded.
	MaxAttempts int `json:"max_attempts"`
	// ScheduledAt is when the job becomes (or became) runnable.
	ScheduledAt time.Time `json:"scheduled_at"`
	// CreatedAt is when the job was inserted.
	CreatedAt time.Time `json:"created_at"`
	// AttemptedAt is when the latest attempt was claimed; nil before any.
	AttemptedAt *time.Time `json:"attempted_at,omitempty"`
	// FinishedAt is set exactly in the final states.
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// LockedAt and LockedBy are set exactly in the running state: when the
	// job was claimed and by which WorkerID.
	LockedAt *time.Time `json:"locked_at,omitempty"`
	LockedBy string     `json:"locked_by,omitempty"`
	// LastError is the latest attempt's error text; empty when none failed.
	LastError string `json:"last_error,omitempty"`
	// Errors lists every failed attempt, oldest first.
	Errors []AttemptError `json:"errors"`
	// UniqueKey is empty when the job is not unique.
	UniqueKey string `json:"unique_key,omitempty"`

	// completedTx is set by CompleteTx (from the handler, which returns
	// before the worker reads it), to tell an expected no-op completion from
	// a lost lock.
	completedTx bool
}

func fromRow(r jobsdb.Job) Job {
	j := Job{
		ID:          r.ID,
		TenantID:    r.TenantID,
		Kind:        r.Kind,
		Args:        json.RawMessage(r.Args),
		State:       State(r.State),
		Priority:    r.Priority,
		Attempt:     int(r.Attempt),
		MaxAttempts: int(r.MaxAttempts),
		ScheduledAt: r.ScheduledAt,
		CreatedAt:   r.CreatedAt,
		AttemptedAt: r.AttemptedAt,
		FinishedAt:  r.FinishedAt,
		LockedAt:    r.LockedAt,
		LockedBy:    deref(r.LockedBy),
		LastError:   deref(r.LastError),
		UniqueKey:   deref(r.UniqueKey),
	}
	if len(r.Errors) > 0 && string(r.Errors) != "[]" {
		if err := json.Unmarshal(r.Errors, &j.Errors); err != nil {
			// The column is an array (CHECK) that only this package writes; keep
			// whatever is there readable rather than failing the caller.
			j.Errors = []AttemptError{{Error: "jobs: unreadable errors column: " + string(r.Errors)}}
		}
	}
	return j
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// DB is what Insert and CompleteTx write with: a pgx.Tx, a *pgxpool.Pool or
// a *pgx.Conn.
type DB = jobsdb.DBTX

// InsertParams describes a job to enqueue. Kind is required; every other
// field has a usable zero value.
type InsertParams struct {
	// TenantID is the tenant the job works for. nil (the default) for
	// platform jobs.
	TenantID *uuid.UUID
	// Kind selects the Handler; 1 to MaxKindLen bytes. Required.
	Kind string
	// Args is passed to the handler as Job.Args. Must be valid JSON when
	// set; nil stores an empty object.
	Args json.RawMessage
	// Priority orders claiming: lower runs first. Defaults to 0.
	Priority int16
	// ScheduledAt delays the job: it is not claimed before this time. The
	// zero value (the default) means now, by the database clock.
	ScheduledAt time.Time
	// MaxAttempts is how many attempts the job gets before it is discarded.
	// Defaults to DefaultMaxAttempts (25); must not be negative.
	MaxAttempts int
	// UniqueKey, when not empty, makes the job unique per (TenantID, Kind,
	// UniqueKey) among unfinished jobs: Insert returns the unfinished job that
	// holds the key instead of inserting another. Empty (the default) means
	// not unique.
	UniqueKey string
}

// Validate reports every problem with p, joined, each wrapping ErrInvalid.
func (p InsertParams) Validate() error {
	var errs []error
	if p.Kind == "" || len(p.Kind) > MaxKindLen {
		errs = append(errs, fmt.Errorf("%w: kind must be 1 to %d bytes, got %d", ErrInvalid, MaxKindLen, len(p.Kind)))
	}
	if len(p.Args) > 0 && !json.Valid(p.Args) {
		errs = append(errs, fmt.Errorf("%w: args are not valid JSON", ErrInvalid))
	}
	if p.MaxAttempts < 0 || p.MaxAttempts > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("%w: max attempts %d out of range", ErrInvalid, p.MaxAttempts))
	}
	if strings.ContainsRune(p.UniqueKey, 0) || strings.ContainsRune(p.Kind, 0) {
		errs = append(errs, fmt.Errorf("%w: kind and unique key must not contain NUL", ErrInvalid))
	}
	return errors.Join(errs...)
}

// Insert enqueues a job using db, normally the caller's transaction, so the
// job exists exactly when the caller's work commits (and a waiting Client
// picks it up at its next poll, or at once after Client.Wake).
//
// When p.UniqueKey is set and an unfinished job already holds (tenant, kind,
// key), Insert returns that job with inserted = false and changes nothing.
// A concurrent insert of the same key in an uncommitted transaction makes
// Insert wait for that transaction to end.
func Insert(ctx context.Context, db DB, p InsertParams) (job Job, inserted bool, err error) {
	if err := p.Validate(); err != nil {
		return Job{}, false, err
	}
	args := []byte(p.Args)
	if len(args) == 0 {
		args = []byte("{}")
	}
	maxAttempts := p.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = DefaultMaxAttempts
	}
	params := jobsdb.InsertJobParams{
		TenantID:    p.TenantID,
		Kind:        p.Kind,
		Args:        args,
		Priority:    p.Priority,
		MaxAttempts: int32(maxAttempts), //nolint:gosec // range checked by Validate
		UniqueKey:   nonEmpty(p.UniqueKey),
	}
	if !p.ScheduledAt.IsZero() {
		at := p.ScheduledAt
		params.ScheduledAt = &at
	}
	q := jobsdb.New(db)
	// A conflicting job can finish between the insert and the read that
	// fetches it; then the key is free and the insert is tried again.
	for range 3 {
		row, err := q.InsertJob(ctx, params)
		if err == nil {
			return fromRow(row), true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Job{}, false, fmt.Errorf("jobs: insert %s: %w", p.Kind, err)
		}
		row, err = q.GetActiveByUniqueKey(ctx, jobsdb.GetActiveByUniqueKeyParams{
			TenantID: p.TenantID, Kind: p.Kind, UniqueKey: p.UniqueKey,
		})
		if err == nil {
			return fromRow(row), false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Job{}, false, fmt.Errorf("jobs: insert %s: read the job holding unique key: %w", p.Kind, err)
		}
	}
	return Job{}, false, fmt.Errorf("jobs: insert %s: unique key %q kept changing hands (is the transaction REPEATABLE READ?)", p.Kind, p.UniqueKey)
}

// CompleteTx marks the run j completed using db, normally the transaction
// that also holds the handler's effects, so the effects and the completion
// commit together (the job cannot be re-run after its effects committed).
// j must be the *Job the handler received. It returns ErrLockLost when the run
// no longer holds the lock; the handler should then roll back and return the
// error. After a successful CompleteTx the handler returns nil as usual.
func CompleteTx(ctx context.Context, db DB, j *Job) error {
	if j.LockedBy == "" || j.Attempt < 1 || j.Attempt > math.MaxInt32 {
		return fmt.Errorf("jobs: complete job %d: %w", j.ID, ErrLockLost)
	}
	ids, err := jobsdb.New(db).CompleteJobs(ctx, jobsdb.CompleteJobsParams{
		Worker:   j.LockedBy,
		Ids:      []int64{j.ID},
		Attempts: []int32{int32(j.Attempt)},
	})
	if err != nil {
		return fmt.Errorf("jobs: complete job %d: %w", j.ID, err)
	}
	if len(ids) == 0 {
		return fmt.Errorf("jobs: complete job %d: %w", j.ID, ErrLockLost)
	}
	j.completedTx = true
	return nil
}

// Handler runs one attempt of a job. ctx ends when Config.JobTimeout passes
// or the client is shut down hard. Returning nil completes the job; an error
// fails the attempt (retried with backoff while attempts remain); Cancel(err)
// and Snooze(d) are the other outcomes. A panic is recovered and fails the
// attempt. Handlers run concurrently, up to Config.Workers at once.
type Handler func(ctx context.Context, j *Job) error

type cancelError struct{ err error }

func (e *cancelError) Error() string {
	if e.err == nil {
		return "jobs: cancelled by handler"
	}
	return "jobs: cancelled by handler: " + e.err.Error()
}

func (e *cancelError) Unwrap() error { return e.err }

// Cancel wraps err (which may be nil) so that a Handler returning it finishes
// the job as cancelled: no retry, however many attempts remain. err is
// recorded as the attempt's error.
func Cancel(err error) error { return &cancelError{err: err} }

type snoozeError struct{ d time.Duration }

func (e *snoozeError) Error() string { return fmt.Sprintf("jobs: snoozed for %s", e.d) }

// Snooze makes a Handler returning it put the job back to run again after d
// (0 when negative). The attempt is not counted: a job can snooze any number
// of times without using up MaxAttempts, and nothing is added to its errors.
func Snooze(d time.Duration) error { return &snoozeError{d: max(d, 0)} }

type retryInError struct {
	err error
	d   time.Duration
}

func (e *retryInError) Error() string { return e.err.Error() }

func (e *retryInError) Unwrap() error { return e.err }

// RetryIn wraps err so that a Handler returning it fails the attempt like
// any error (counted, recorded, discarded when no attempt is left) but
// schedules the next attempt after d (0 when negative) instead of
// Config.Backoff: for a job with its own retry schedule, or one told when
// to come back (an HTTP Retry-After).
func RetryIn(err error, d time.Duration) error {
	if err == nil {
		err = errors.New("jobs: retry requested")
	}
	return &retryInError{err: err, d: max(d, 0)}
}

// DefaultBackoff is the default Config.Backoff: attempt^4 seconds with ±10%
// jitter (1s, 16s, 81s, 256s, ... about 3.8 days after attempt 24), so
// jobs that failed together do not retry together. attempt is the attempt
// that just failed, starting at 1; values below 1 count as 1.
func DefaultBackoff(attempt int) time.Duration {
	a := float64(max(attempt, 1))
	secs := a * a * a * a
	jitter := 0.9 + 0.2*rand.Float64() //nolint:gosec // jitter, not a secret
	return time.Duration(secs * jitter * float64(time.Second))
}

// errorText renders err for storage: at most maxErrorLen bytes of valid
// UTF-8 without NUL (which text and jsonb refuse).
func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

// isUniqueViolation reports whether err is Postgres' unique_violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
