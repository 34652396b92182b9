// Package outbox relays the transactional outbox to NATS JetStream.
//
// One relay at a time is the leader: it holds a Postgres session advisory
// lock on a dedicated connection, so any number of relays can run (for
// availability) while exactly one publishes, and the lock is released by
// Postgres the moment the leader's connection dies, however it dies.
//
// The leader reads the oldest unpublished rows in outbox order, publishes them
// asynchronously with Nats-Msg-Id set to the event's stable id, waits for every
// acknowledgement, and only then marks the acknowledged rows published. A
// relay that dies between publish and mark leaves the rows unmarked; the next
// leader publishes them again and JetStream drops the copies within the
// stream's duplicate window (consumers are idempotent beyond it). When a
// publish fails, only the rows before the first failure are marked, so a
// retry never runs ahead of an earlier failure. A row the bus refuses for
// good (larger than the stream's maximum message size, an invalid subject:
// see Refused) is moved to the dead-letter queue with the reason, and the
// rows after it go on.
//
// Per-key order survives failures because a row is published only once the
// previous row with the same partition key is acknowledged: JetStream can
// store a publish late (a stream leader change can hold it for seconds after
// the relay gave up on it), but then only a copy of a row whose successors
// of its key were never sent, so it cannot land behind them.
//
// New rows are noticed through LISTEN prost_outbox (sent by the ingest
// transaction), an in-process Wake, or, as a fallback that never depends on
// either, polling every PollInterval.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/outbox/internal/outboxdb"
	"github.com/prost-platform/prost/pkg/subjects"
)

// DefaultLockKey is the advisory lock that elects the leader ("prost-rl").
const DefaultLockKey int64 = 0x70726f73742d726c

// Defaults of Config.
const (
	DefaultBatchSize    = 1000
	DefaultPollInterval = 500 * time.Millisecond
	DefaultAckTimeout   = 10 * time.Second
	DefaultRetention    = 72 * time.Hour
	DefaultDrainTimeout = 2 * time.Second
)

// Config tunes a Relay. The zero value is usable.
type Config struct {
	// BatchSize is the number of rows read and published per round.
	// Defaults to DefaultBatchSize.
	BatchSize int
	// PollInterval is the longest a new row waits when no notification
	// arrives, and how often a standby relay tries to become the leader.
	// Defaults to DefaultPollInterval.
	PollInterval time.Duration
	// AckTimeout bounds the wait for JetStream's acknowledgements of one
	// round. Defaults to DefaultAckTimeout.
	AckTimeout time.Duration
	// Retention is how long published rows stay in the outbox before the
	// leader prunes them (the events table keeps every event forever).
	// Defaults to DefaultRetention.
	Retention time.Duration
	// DrainTimeout is how long a leader keeps publishing once Run's context
	// ended, so that what the last requests committed is on the bus before
	// the process exits (what it does not publish, the next leader does).
	// Defaults to DefaultDrainTimeout; negative switches draining off.
	DrainTimeout time.Duration
	// LockKey is the advisory lock key relays elect their leader with.
	// Defaults to DefaultLockKey.
	LockKey int64
	// Signer signs every message (PROST_BUS_KEY) so consumers can tell it
	// from a forged one; nil publishes unsigned messages, which consumers
	// with a signer dead-letter.
	Signer *busauth.Signer
	// Stream names the stream the rows go to, for the dead letters of
	// refused rows. Defaults to "PROST_EVENTS".
	Stream string
	// Logger receives leadership changes and failures. Defaults to discarding.
	Logger *slog.Logger
	// Guard, when set, runs before every round, with newLeader true on the
	// first round of a leadership; pkg/busstate checks the stream there, and
	// rebuilds what it lost, before anything newer is published. An error
	// ends the leadership like a failed round (retried after PollInterval).
	Guard func(ctx context.Context, newLeader bool) error
	// Acked, when set, runs in the transaction that marks a round's rows
	// published, with the highest sequence JetStream acknowledged in the
	// round (pkg/busstate records it, to notice a stream that later ends
	// before it).
	Acked func(ctx context.Context, tx pgx.Tx, seq uint64) error

	// beforeMark, set only by tests, runs after the acks and before the rows
	// are marked; an error ends the round as a crash would.
	beforeMark func(ids []int64) error
}

// Relay publishes outbox rows to JetStream. Run it with Run.
type Relay struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	cfg  Config
	wake chan struct{}

	published atomic.Int64
	refused   atomic.Int64
	reordered atomic.Int64
	leader    atomic.Bool
}

// New returns a Relay that reads from pool and publishes with js.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) *Relay {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.LockKey == 0 {
		cfg.LockKey = DefaultLockKey
	}
	if cfg.Stream == "" {
		cfg.Stream = "PROST_EVENTS"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{pool: pool, js: js, cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake asks the relay to look for new rows now. It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Published is the number of rows this relay has published and marked.
func (r *Relay) Published() int64 { return r.published.Load() }

// Refused is the number of rows the bus refused for good, which this relay
// dead-lettered.
func (r *Relay) Refused() int64 { return r.refused.Load() }

// Reordered counts rows that JetStream stored ahead of an earlier row of
// their partition key whose publish failed. Rows of a key are never in
// flight together (see round), so it stays 0; it is kept for the
// prost_relay_reordered_total metric.
func (r *Relay) Reordered() int64 { return r.reordered.Load() }

// Leader reports whether this relay currently holds the leader lock.
func (r *Relay) Leader() bool { return r.leader.Load() }

// Run relays until ctx ends, then, as the leader, publishes what is pending
// for up to DrainTimeout, and returns nil. Errors (a lost database
// connection, NATS unavailable) are logged and retried after PollInterval.
func (r *Relay) Run(ctx context.Context) error {
	go r.listen(ctx)
	for {
		err := r.lead(ctx)
		r.leader.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, errNotLeader) {
			r.cfg.Logger.Warn("relay round failed; retrying", "error", err, "retry_in", r.cfg.PollInterval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

var errNotLeader = errors.New("another relay is the leader")

// errAcked marks a publish JetStream acknowledged (see round).
var errAcked = errors.New("acknowledged")

// orderKey is what a row's publish must stay in order with: its tenant and
// partition key. An event without a key is ordered with nothing ("").
func orderKey(row outboxdb.PendingBatchRow) string {
	if row.PartitionKey == nil || *row.PartitionKey == "" {
		return ""
	}
	return row.TenantID.String() + "\x00" + *row.PartitionKey
}

// lead takes the leader lock on a dedicated connection and relays until an
// error or ctx ends. The connection is closed, not returned to the pool, so
// the session lock goes with it.
func (r *Relay) lead(ctx context.Context) error {
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	q := outboxdb.New(conn)
	got, err := q.TryAdvisoryLock(ctx, r.cfg.LockKey)
	if err != nil {
		return fmt.Errorf("leader lock: %w", err)
	}
	if !got {
		return errNotLeader
	}
	r.leader.Store(true)
	r.cfg.Logger.Info("relay is the leader")
	defer r.cfg.Logger.Info("relay stopped leading")

	lastPrune := time.Time{}
	for first := true; ; first = false {
		if ctx.Err() != nil {
			r.drain(context.WithoutCancel(ctx), conn)
			return nil
		}
		if r.cfg.Guard != nil {
			if err := r.cfg.Guard(ctx, first); err != nil {
				return fmt.Errorf("bus guard: %w", err)
			}
		}
		n, err := r.round(ctx, conn)
		if err != nil {
			return err
		}
		if time.Since(lastPrune) > time.Minute {
			lastPrune = time.Now()
			if pruned, err := q.PrunePublished(ctx, outboxdb.PrunePublishedParams{
				Before: time.Now().Add(-r.cfg.Retention), MaxRows: 10_000,
			}); err != nil {
				r.cfg.Logger.Warn("outbox prune failed", "error", err)
			} else if pruned > 0 {
				r.cfg.Logger.Debug("outbox pruned", "rows", pruned)
			}
		}
		if n == r.cfg.BatchSize {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

// drain publishes pending rows until none is left or DrainTimeout passed.
func (r *Relay) drain(ctx context.Context, conn *pgx.Conn) {
	if r.cfg.DrainTimeout < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DrainTimeout)
	defer cancel()
	for ctx.Err() == nil {
		n, err := r.round(ctx, conn)
		if err != nil || n == 0 {
			return
		}
	}
}

// round publishes one batch and returns how many rows it read.
func (r *Relay) round(ctx context.Context, conn *pgx.Conn) (int, error) {
	q := outboxdb.New(conn)
	rows, err := q.PendingBatch(ctx, int32(r.cfg.BatchSize))
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(rows) == 0 {
		return 0, nil
	}
	// futures[i] is the publish of rows[i] (nil when it was refused before
	// it was sent); results[i] is nil until it resolved, then errAcked or
	// its error.
	futures := make([]jetstream.PubAckFuture, len(rows))
	results := make([]error, len(rows))
	var ackedSeq uint64 // the highest sequence acknowledged (Config.Acked)
	wait := func(i int) error {
		if results[i] != nil {
			return results[i]
		}
		timeout := time.NewTimer(r.cfg.AckTimeout)
		defer timeout.Stop()
		select {
		case ack := <-futures[i].Ok():
			results[i] = errAcked
			if ack != nil && ack.Stream == r.cfg.Stream {
				ackedSeq = max(ackedSeq, ack.Sequence)
			}
		case err := <-futures[i].Err():
			results[i] = err
		case <-timeout.C:
			results[i] = errors.New("timed out waiting for JetStream acknowledgements")
		case <-ctx.Done():
			return ctx.Err()
		}
		return results[i]
	}
	// inFlight is the last row published per partition key: the next row of
	// the key waits for it, so a key never has two rows in flight (see the
	// package doc). Rows of different keys are pipelined. A row the bus
	// refused for good does not hold back the rows after it.
	inFlight := map[string]int{}
	var pubErr error
	sent := 0
publish:
	for i, row := range rows {
		key := orderKey(row)
		if j, ok := inFlight[key]; ok && key != "" {
			if err := wait(j); err != errAcked && !Refused(err) {
				pubErr = err
				break publish
			}
		}
		msg := Message(row.Subject, row.Envelope, deref(row.Traceparent), deref(row.Tracestate))
		msgID := subjects.MsgID(row.TenantID, row.Source, row.EventID)
		if reason := refusal(msg); reason != "" {
			results[i] = refusedError{reason}
			sent++
			continue
		}
		if r.cfg.Signer != nil {
			r.cfg.Signer.Sign(msg.Header, msg.Subject, msgID, msg.Data)
		}
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(msgID))
		if err != nil {
			if Refused(err) {
				results[i] = err
				sent++
				continue
			}
			pubErr = err
			break
		}
		inFlight[key] = i
		futures[i] = f
		sent++
	}
	if ctx.Err() != nil {
		return 0, nil
	}
	// Settle in outbox order: acknowledged rows are marked published, rows
	// refused for good are dead-lettered, and the first other failure ends
	// the round: the rows after it stay pending, so a retry never runs
	// ahead of an earlier failure.
	var published []int64
	var refused []int
	for i := range sent {
		err := wait(i)
		switch {
		case err == errAcked:
			published = append(published, rows[i].ID)
			continue
		case ctx.Err() != nil:
			return 0, nil
		case Refused(err):
			refused = append(refused, i)
			continue
		}
		if pubErr == nil {
			pubErr = err
		}
		break
	}
	if len(published) > 0 && r.cfg.beforeMark != nil {
		if err := r.cfg.beforeMark(published); err != nil {
			return 0, err
		}
	}
	if len(published) > 0 || len(refused) > 0 {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tq := outboxdb.New(tx)
			if len(published) > 0 {
				if err := tq.MarkPublished(ctx, published); err != nil {
					return fmt.Errorf("mark published: %w", err)
				}
			}
			for _, i := range refused {
				if err := r.deadLetter(ctx, tx, rows[i], results[i]); err != nil {
					return err
				}
			}
			if r.cfg.Acked != nil && ackedSeq > 0 {
				if err := r.cfg.Acked(ctx, tx, ackedSeq); err != nil {
					return fmt.Errorf("record acknowledged sequence: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		r.published.Add(int64(len(published)))
		r.refused.Add(int64(len(refused)))
		for _, i := range refused {
			r.cfg.Logger.Error("relay: the bus refused an outbox row for good; it is dead-lettered and the rows after it go on",
				"outbox_id", rows[i].ID, "tenant", rows[i].TenantID, "event_id", rows[i].EventID, "subject", truncate(rows[i].Subject, 200),
				"error", results[i])
		}
	}
	if pubErr != nil {
		return 0, fmt.Errorf("publish: %w", pubErr)
	}
	return len(rows), nil
}

// deadLetter stores a refused row in the DLQ (consumer dlq.ConsumerRelay,
// with the refusal as its error) and marks it refused, in tx.
func (r *Relay) deadLetter(ctx context.Context, tx pgx.Tx, row outboxdb.PendingBatchRow, cause error) error {
	_, err := dlq.DeadLetter(ctx, tx, dlq.Failure{
		Consumer: dlq.ConsumerRelay, MsgID: subjects.MsgID(row.TenantID, row.Source, row.EventID),
		Subject: row.Subject, Stream: r.cfg.Stream, Deliveries: 1,
		Err: "the bus refused the message for good: " + cause.Error(), Event: row.Envelope,
	}, dlq.ReasonPermanent)
	if err != nil {
		return fmt.Errorf("dead-letter refused outbox row %d: %w", row.ID, err)
	}
	if err := outboxdb.New(tx).MarkRefused(ctx, row.ID); err != nil {
		return fmt.Errorf("mark outbox row %d refused: %w", row.ID, err)
	}
	return nil
}

// refusedError is a refusal found before publishing.
type refusedError struct{ reason string }

func (e refusedError) Error() string { return e.reason }

// Refused reports whether a publish error means the bus will never take
// the message, whatever the retries: larger than the stream's
// max_msg_size (JetStream error 10054) or the server's max_payload, an
// invalid subject or header, or a subject too long to send.
func Refused(err error) bool {
	if err == nil {
		return false
	}
	var re refusedError
	if errors.As(err, &re) {
		return true
	}
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) || errors.Is(err, nats.ErrBadHeaderMsg) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// listen wakes the relay on NOTIFY prost_outbox, reconnecting as needed.
func (r *Relay) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		r.cfg.Logger.Debug("outbox listener reconnecting", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context) error {
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN prost_outbox"); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		r.Wake()
	}
}

// Stats is the outbox backlog.
type Stats struct {
	// Pending is the number of rows not yet published.
	Pending int64
	// OldestAge is how long the oldest pending row has waited.
	OldestAge time.Duration
}

// PendingStats reports the outbox backlog.
func PendingStats(ctx context.Context, pool *pgxpool.Pool) (Stats, error) {
	s, err := outboxdb.New(pool).PendingStats(ctx)
	if err != nil {
		return Stats{}, err
	}
	return Stats{Pending: s.Pending, OldestAge: time.Duration(s.OldestAgeSeconds * float64(time.Second))}, nil
}
