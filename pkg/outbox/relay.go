// Package outbox relays the transactional outbox to NATS JetStream.
//
// One relay at a time is the leader: it holds a Postgres session advisory
// lock on a dedicated connection, so any number of relays can run (for
// availability) while exactly one publishes, and the lock is released by
// Postgres the moment the leader's connection dies, however it dies.
//
// The leader reads the oldest unpublished rows in outbox order, publishes them
// with Nats-Msg-Id set to the event's stable id, and marks the rows JetStream
// acknowledged published. A relay that dies between publish and mark leaves
// the rows unmarked; the next leader publishes them again and JetStream drops
// the copies within the stream's duplicate window (consumers are idempotent
// beyond it). When a publish fails, only the rows before the first failure
// are marked, so a retry never runs ahead of an earlier failure. A row the
// bus refuses for good (larger than the stream's maximum message size, an
// invalid subject: see Refused) is moved to the dead-letter queue with the
// reason, and the rows after it go on.
//
// Rounds are pipelined: while one round is being published the leader reads
// the next, and the marks (one UPDATE per round) run behind both on a
// connection of their own. A read returns only rows no earlier read of the
// leadership returned: those after the last row read, and those before it
// that the earlier read's snapshot could not see (their transaction
// committed later), found by the transaction id each outbox row keeps. So
// nothing read is read again while it is in flight or unmarked, and nothing
// that commits late is skipped.
//
// A round of AtomicMinRows rows or more is published as an atomic batch
// when the stream allows them (allow_atomic): JetStream stores the batch
// whole or not at all, in order, with one flush to disk for all of it
// where a message published alone costs one flush each (sync_interval
// always). One round is published at a time, so per-key order holds
// whatever fails. A batch JetStream refuses (a message of it was stored
// before, within the duplicate window, by a round whose answer was lost;
// a message the stream refuses) is published again one message at a time.
//
// One message at a time, per-key order survives failures because a row is
// published only once the previous row with the same partition key is
// acknowledged: JetStream can store a publish late (a stream leader change
// can hold it for seconds after the relay gave up on it), but then only a
// copy of a row whose successors of its key were never sent, so it cannot
// land behind them.
//
// New rows are noticed through LISTEN prost_outbox (sent by the ingest
// transaction), an in-process Wake, or, as a fallback that never depends on
// either, polling every PollInterval.
package outbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
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
	DefaultBatchSize     = 1000
	DefaultMaxBatchBytes = 8 << 20
	DefaultAtomicMinRows = 32
	DefaultPollInterval  = 500 * time.Millisecond
	DefaultAckTimeout    = 5 * time.Second
	DefaultRetention     = 72 * time.Hour
	DefaultDrainTimeout  = 2 * time.Second
)

// Config tunes a Relay. The zero value is usable.
type Config struct {
	// BatchSize is the number of rows read and published per round.
	// Defaults to DefaultBatchSize.
	BatchSize int
	// MaxBatchBytes bounds the envelopes read per round (a round always
	// holds at least one row). With the round being published, the next
	// one read ahead and markQueue rounds waiting for their marks (ids
	// only), it bounds what the relay holds in memory. Defaults to
	// DefaultMaxBatchBytes.
	MaxBatchBytes int64
	// AtomicMinRows is the fewest rows a round publishes as an atomic
	// batch, when the stream allows them (allow_atomic); smaller rounds are
	// published one message at a time, which is quicker for a few.
	// Defaults to DefaultAtomicMinRows; negative never uses atomic batches.
	AtomicMinRows int
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
	// ackedSeq is the highest stream sequence JetStream acknowledged to
	// this relay (Config.Acked records it with the marks).
	ackedSeq  atomic.Uint64
	reordered atomic.Int64
	batches   atomic.Int64
	fallbacks atomic.Int64
	singles   atomic.Int64
	leader    atomic.Bool
}

// New returns a Relay that reads from pool and publishes with js.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) *Relay {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.AtomicMinRows == 0 {
		cfg.AtomicMinRows = DefaultAtomicMinRows
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
// flight together (see publishSingles) and a batch is stored whole or not at all, so it stays 0; it is kept for the
// prost_relay_reordered_total metric.
func (r *Relay) Reordered() int64 { return r.reordered.Load() }

// Batches is the number of atomic batches this relay published.
func (r *Relay) Batches() int64 { return r.batches.Load() }

// Fallbacks is the number of atomic batches JetStream refused that this
// relay published again one message at a time (a duplicate after a retry,
// a message the stream refuses).
func (r *Relay) Fallbacks() int64 { return r.fallbacks.Load() }

// Singles is the number of messages this relay published one at a time.
func (r *Relay) Singles() int64 { return r.singles.Load() }

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

	l := &leader{r: r, conn: conn, atomic: r.atomicAllowed(ctx)}
	l.marks = newMarker(r, context.WithoutCancel(ctx))
	defer l.marks.stop()

	lastPrune := time.Time{}
	for first := true; ; first = false {
		if ctx.Err() != nil {
			l.drain(context.WithoutCancel(ctx))
			return nil
		}
		// pump returns with nothing in flight, so the guard (a rebuild of
		// the bus) never runs beside a publish of this leader.
		if r.cfg.Guard != nil {
			if err := r.cfg.Guard(ctx, first); err != nil {
				if ctx.Err() != nil {
					continue
				}
				return fmt.Errorf("bus guard: %w", err)
			}
		}
		full, err := l.pump(ctx)
		if ctx.Err() != nil {
			continue // drain what is left
		}
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
		if full {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-time.After(r.cfg.PollInterval):
		}
	}
}

// atomicAllowed reports whether the stream takes atomic batches
// (allow_atomic, nats-server 2.12 and later) and the relay may use them.
func (r *Relay) atomicAllowed(ctx context.Context) bool {
	if r.cfg.AtomicMinRows < 0 {
		return false
	}
	s, err := r.js.Stream(ctx, r.cfg.Stream)
	if err != nil {
		r.cfg.Logger.Warn("relay: cannot read the stream's configuration; publishing one message at a time", "stream", r.cfg.Stream, "error", err)
		return false
	}
	return s.CachedInfo().Config.AllowAtomicPublish
}

// leader is one leadership of a relay: the lock connection its reads go
// through, where its pipelined reads have got to, and the marks in
// progress.
type leader struct {
	r      *Relay
	conn   *pgx.Conn
	atomic bool
	marks  *marker

	// after is the last row id read and seen the snapshot of the read that
	// returned it; after 0 means the next read takes every pending row,
	// which it may only once nothing read before is in flight or unmarked.
	after int64
	seen  string
}

// emptySnapshot stands for "no earlier read" in PendingBatch's @seen.
const emptySnapshot = "1:1:"

// pump relays rounds until one is not full, and reports whether the last
// one was (more rows are then likely waiting). While a round is being
// published it reads the next one, and marks run behind both (see marker):
// the reads never return a row an earlier read returned, however far the
// marks lag. A failure stops the pipeline; what was acknowledged before it
// is still marked, the rest is read again by the next round.
func (l *leader) pump(ctx context.Context) (bool, error) {
	if err := l.marks.err(); err != nil {
		return false, err
	}
	if l.marks.idle() {
		// Nothing in flight or unmarked: read from the start, which costs
		// nothing more now and picks up any row that became pending again
		// (an operator clearing published_at to publish it once more).
		l.after, l.seen = 0, ""
	}
	rows, err := l.read(ctx)
	if err != nil {
		return false, err
	}
	for len(rows) > 0 {
		full := l.full(rows)
		pub := l.publish(ctx, rows)
		var next []outboxdb.PendingBatchRow
		var readErr error
		ahead := full && l.after != 0
		if ahead {
			next, readErr = l.read(ctx)
		}
		out := pub.wait()
		l.marks.submit(out)
		if err := out.failure(); err != nil {
			l.after, l.seen = 0, ""
			return false, fmt.Errorf("publish: %w", err)
		}
		if readErr != nil {
			l.after, l.seen = 0, ""
			return false, readErr
		}
		if !full {
			return false, nil
		}
		if !ahead {
			if next, err = l.read(ctx); err != nil {
				return false, err
			}
		}
		if err := l.marks.err(); err != nil {
			return false, err
		}
		rows = next
	}
	return false, nil
}

// full reports whether a round took all the rows or bytes it may: more are
// probably waiting.
func (l *leader) full(rows []outboxdb.PendingBatchRow) bool {
	if len(rows) >= l.r.cfg.BatchSize {
		return true
	}
	n := 0
	for _, row := range rows {
		n += len(row.Envelope)
	}
	return int64(n) >= l.r.cfg.MaxBatchBytes/2
}

// read returns the next round: the oldest pending rows no earlier read of
// this leadership returned.
func (l *leader) read(ctx context.Context) ([]outboxdb.PendingBatchRow, error) {
	if l.after == 0 {
		// Nothing read before may still be in flight or unmarked: a read
		// from the start would return it again.
		if err := l.marks.wait(); err != nil {
			return nil, err
		}
	}
	seen := l.seen
	if seen == "" {
		seen = emptySnapshot
	}
	rows, err := outboxdb.New(l.conn).PendingBatch(ctx, outboxdb.PendingBatchParams{
		After: l.after, Seen: seen, MaxRows: int32(l.r.cfg.BatchSize), MaxBytes: l.r.cfg.MaxBatchBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	if last := rows[len(rows)-1].ID; last > l.after {
		// Every pending row up to last that this read's snapshot sees is
		// in this round or an earlier one; those it does not see are
		// found by the next read through its snapshot.
		l.after, l.seen = last, rows[0].Snapshot
	} else {
		// Only rows that committed late, perhaps not all of them (the
		// round was full): after this round settles, read from the start.
		l.after, l.seen = 0, ""
	}
	return rows, nil
}

// drain publishes pending rows until none is left or DrainTimeout passed.
func (l *leader) drain(ctx context.Context) {
	if l.r.cfg.DrainTimeout < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, l.r.cfg.DrainTimeout)
	defer cancel()
	l.after, l.seen = 0, ""
	for ctx.Err() == nil {
		full, err := l.pump(ctx)
		if err != nil || !full {
			return
		}
	}
}

// publishing is a round being published.
type publishing struct {
	done chan struct{}
	out  outcome
}

func (p *publishing) wait() outcome {
	<-p.done
	return p.out
}

// publish starts publishing a round: as atomic batches when the stream
// takes them and the round has at least AtomicMinRows rows (a batch costs
// JetStream one flush to disk, a message published alone one each; below
// that many rows single messages are quicker), else one message at a time.
func (l *leader) publish(ctx context.Context, rows []outboxdb.PendingBatchRow) *publishing {
	p := &publishing{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if l.atomic && len(rows) >= l.r.cfg.AtomicMinRows {
			p.out = l.publishAtomic(ctx, rows)
		} else {
			p.out = outcome{rows: rows, results: l.r.publishSingles(ctx, rows)}
		}
	}()
	return p
}

// outcome is a published round: results[i] is errAcked when JetStream
// stored rows[i], a refusal for good (see Refused), another error when its
// publish failed, or nil when it was not sent.
type outcome struct {
	rows    []outboxdb.PendingBatchRow
	results []error
}

// settle walks the round in outbox order: acknowledged rows are to be
// marked published and refused rows dead-lettered, up to the first row
// that failed or was not sent; the rows from there on stay pending, so a
// retry never runs ahead of an earlier failure.
func (o outcome) settle() (published []int64, refused []int, failed error) {
	for i, err := range o.results {
		switch {
		case err == errAcked:
			published = append(published, o.rows[i].ID)
		case Refused(err):
			refused = append(refused, i)
		case err == nil:
			return published, refused, errNotSent
		default:
			return published, refused, err
		}
	}
	return published, refused, nil
}

// failure is the error that stopped the round, or nil.
func (o outcome) failure() error {
	_, _, err := o.settle()
	return err
}

var errNotSent = errors.New("a row was not sent")

// message is the signed message of a row.
func (r *Relay) message(row outboxdb.PendingBatchRow) (*nats.Msg, string) {
	msg := Message(row.Subject, row.Envelope, deref(row.Traceparent), deref(row.Tracestate))
	msgID := subjects.MsgID(row.TenantID, row.Source, row.EventID)
	if r.cfg.Signer != nil {
		r.cfg.Signer.Sign(msg.Header, msg.Subject, msgID, msg.Data)
	}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	return msg, msgID
}

// publishAtomic publishes a round as atomic batches of at most
// MaxAtomicBatch messages, one after the other: JetStream stores a batch
// whole or not at all, in order, after one flush to disk, so per-key order
// holds across failures without waiting per key. A batch JetStream refuses
// (it holds a message stored before, within the duplicate window, after a
// retry; or a message the stream refuses) is published again one message
// at a time, which keeps one copy of each and finds the refused message.
// An error without an answer (a timeout, a lost connection) ends the round:
// the batch may still be stored, and its retry is then refused as a
// duplicate and published message by message, each one dropped as a copy.
func (l *leader) publishAtomic(ctx context.Context, rows []outboxdb.PendingBatchRow) outcome {
	out := outcome{rows: rows, results: make([]error, len(rows))}
	var idx []int
	var msgs []*nats.Msg
	for i, row := range rows {
		msg, _ := l.r.message(row)
		if reason := refusal(msg); reason != "" {
			out.results[i] = refusedError{reason}
			continue
		}
		idx = append(idx, i)
		msgs = append(msgs, msg)
	}
	for start := 0; start < len(msgs); start += MaxAtomicBatch {
		end := min(start+MaxAtomicBatch, len(msgs))
		err := l.r.commitBatch(ctx, msgs[start:end])
		if err == nil {
			l.r.batches.Add(1)
			for _, i := range idx[start:end] {
				out.results[i] = errAcked
			}
			continue
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) && !errors.Is(err, errNotAtomic) {
			out.results[idx[start]] = err
			return out
		}
		if errors.Is(err, errNotAtomic) {
			l.atomic = false
			l.r.cfg.Logger.Warn("relay: the server does not store atomic batches; publishing one message at a time", "error", err)
		}
		l.r.fallbacks.Add(1)
		sub := make([]outboxdb.PendingBatchRow, 0, end-start)
		for _, i := range idx[start:end] {
			sub = append(sub, rows[i])
		}
		res := l.r.publishSingles(ctx, sub)
		for j, i := range idx[start:end] {
			out.results[i] = res[j]
		}
		if (outcome{rows: sub, results: res}).failure() != nil {
			return out
		}
	}
	return out
}

// batchID is a fresh atomic batch id: 72 random bits, 12 characters (the
// stream keeps the header with every message of the batch).
func batchID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// MaxAtomicBatch is the most messages nats-server takes in one atomic batch
// (its max_batch_size default).
const MaxAtomicBatch = 1000

// errNotAtomic is a commit answered without the batch's count: a server
// that does not know atomic batches stored the messages one by one.
var errNotAtomic = errors.New("the server answered the batch's commit without its count")

// Headers of an atomic batch (ADR-50).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// commitBatch publishes msgs as one atomic batch and waits for the commit's
// answer. The messages before the last are sent without a reply subject:
// a problem with any of them makes the commit fail.
func (r *Relay) commitBatch(ctx context.Context, msgs []*nats.Msg) error {
	nc := r.js.Conn()
	id := batchID()
	for j, m := range msgs {
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(j+1))
		if j == len(msgs)-1 {
			m.Header.Set(hdrBatchCommit, "1")
			break
		}
		if err := nc.PublishMsg(m); err != nil {
			return err
		}
	}
	actx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	resp, err := nc.RequestMsgWithContext(actx, msgs[len(msgs)-1])
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return errors.New("timed out waiting for JetStream to commit an atomic batch")
		}
		return err
	}
	var ack struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
		Seq    uint64              `json:"seq"`
		Batch  string              `json:"batch"`
		Count  int                 `json:"count"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("atomic batch commit: %w", err)
	}
	if ack.Error != nil {
		return ack.Error
	}
	if ack.Batch != id || ack.Count != len(msgs) {
		return errNotAtomic
	}
	if ack.Stream == r.cfg.Stream {
		r.noteAcked(ack.Seq)
	}
	return nil
}

// noteAcked raises ackedSeq to seq.
func (r *Relay) noteAcked(seq uint64) {
	for {
		cur := r.ackedSeq.Load()
		if seq <= cur || r.ackedSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// publishSingles publishes rows one message at a time, asynchronously, and
// returns each row's result (see outcome). A row is published only once the
// previous row with its partition key is acknowledged (see the package
// doc); rows of different keys, and rows without a key, are pipelined. A
// row the bus refused for good does not hold back the rows after it.
func (r *Relay) publishSingles(ctx context.Context, rows []outboxdb.PendingBatchRow) []error {
	futures := make([]jetstream.PubAckFuture, len(rows))
	results := make([]error, len(rows))
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
				r.noteAcked(ack.Sequence)
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
	inFlight := map[string]int{}
	sent := 0
publish:
	for i, row := range rows {
		key := orderKey(row)
		if j, ok := inFlight[key]; ok && key != "" {
			if err := wait(j); err != errAcked && !Refused(err) {
				break publish
			}
		}
		msg, _ := r.message(row)
		if reason := refusal(msg); reason != "" {
			results[i] = refusedError{reason}
			sent++
			continue
		}
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			results[i] = err
			sent++
			if Refused(err) {
				continue
			}
			break
		}
		inFlight[key] = i
		futures[i] = f
		sent++
	}
	for i := range sent {
		if err := wait(i); err != errAcked && !Refused(err) {
			if results[i] == nil {
				results[i] = err // the context ended
			}
			break
		}
	}
	r.singles.Add(int64(sent))
	return results
}

// marker marks published rounds in the order they were published, on a
// pool connection of its own, behind the publishing: a round's rows are
// marked published (and its refused rows dead-lettered) in one
// transaction. A relay that dies before its marks leaves the rows pending;
// the next leader publishes them again and JetStream drops the copies. At
// most markQueue rounds wait, which bounds the relay's memory.
type marker struct {
	r      *Relay
	ctx    context.Context
	in     chan outcome
	done   chan struct{}
	queue  sync.WaitGroup
	queued atomic.Int64

	mu     sync.Mutex
	failed error
}

// markQueue is how many published rounds may wait for their marks.
const markQueue = 2

func newMarker(r *Relay, ctx context.Context) *marker {
	m := &marker{r: r, ctx: ctx, in: make(chan outcome, markQueue), done: make(chan struct{})}
	go m.run()
	return m
}

func (m *marker) run() {
	defer close(m.done)
	for out := range m.in {
		if m.err() == nil {
			if err := m.mark(out); err != nil {
				m.mu.Lock()
				m.failed = err
				m.mu.Unlock()
			}
		}
		m.queued.Add(-1)
		m.queue.Done()
	}
}

// idle reports whether no round waits for its marks.
func (m *marker) idle() bool { return m.queued.Load() == 0 }

// submit queues a round's marks; it waits while markQueue rounds wait.
func (m *marker) submit(out outcome) {
	m.queue.Add(1)
	m.queued.Add(1)
	m.in <- out
}

// wait returns once every submitted round is marked, with the first error.
func (m *marker) wait() error {
	m.queue.Wait()
	return m.err()
}

func (m *marker) err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

// stop marks what was submitted and ends the marker.
func (m *marker) stop() {
	close(m.in)
	<-m.done
}

// markTimeout bounds one round's marks.
const markTimeout = 30 * time.Second

func (m *marker) mark(out outcome) error {
	published, refused, _ := out.settle()
	if len(published) == 0 && len(refused) == 0 {
		return nil
	}
	r := m.r
	if len(published) > 0 && r.cfg.beforeMark != nil {
		if err := r.cfg.beforeMark(published); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(m.ctx, markTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		tq := outboxdb.New(tx)
		if len(published) > 0 {
			if err := tq.MarkPublished(ctx, published); err != nil {
				return fmt.Errorf("mark published: %w", err)
			}
		}
		for _, i := range refused {
			if err := r.deadLetter(ctx, tx, out.rows[i], out.results[i]); err != nil {
				return err
			}
		}
		if seq := r.ackedSeq.Load(); r.cfg.Acked != nil && len(published) > 0 && seq > 0 {
			if err := r.cfg.Acked(ctx, tx, seq); err != nil {
				return fmt.Errorf("record acknowledged sequence: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.published.Add(int64(len(published)))
	r.refused.Add(int64(len(refused)))
	for _, i := range refused {
		row := out.rows[i]
		r.cfg.Logger.Error("relay: the bus refused an outbox row for good; it is dead-lettered and the rows after it go on",
			"outbox_id", row.ID, "tenant", row.TenantID, "event_id", row.EventID, "subject", truncate(row.Subject, 200),
			"error", out.results[i])
	}
	return nil
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
