// Package consumer is the runtime every PROST consumer (governance, rules,
// billing, factory) is built on: durable JetStream pull consumers whose
// handler runs inside a Postgres transaction together with the consumer's
// idempotency record.
//
// Guarantees:
//
//   - Effectively once: for each message the runtime inserts (consumer,
//     message id) into consumer_processed in the same transaction as the
//     handler's writes, and acknowledges the message only after that
//     transaction committed. A redelivered message whose record exists is
//     acknowledged and skipped, so a crash anywhere (before commit, between
//     commit and ack, a lost ack) never applies a message twice nor loses it.
//     The message id is the Prost-Msg-Id header of a replay, else the
//     Nats-Msg-Id the relay sets (the event's stable id). A consumer whose
//     handler is idempotent by keys of its own (Config.Idempotent: the
//     audit and billing consumers) writes no record; its handler
//     recognises a message it applied before, in the same transaction as
//     its writes, with the same guarantee. With
//     Config.Relevant only the messages it keeps are recorded; the others had
//     no effect, are acknowledged with the batch, and are decided again if
//     they come again.
//   - Types: with Config.Types the durables filter on those event types, so
//     no other event is delivered.
//   - Per-key order: with Partitions > 1 the runtime runs one durable consumer
//     per partition (subject prost.events.*.<n>.>) and one worker per
//     partition that handles its messages strictly in stream order. Events
//     with the same partition key are in the same partition, so they are
//     applied in the order they were accepted; different partitions proceed
//     in parallel. Each lane starts by resetting its durable to the ack
//     floor, and starts again after a NATS reconnect or a change of the
//     durable's leader, so what a killed instance held, or what was lost in
//     flight, is redelivered at once and in order rather than after AckWait
//     behind later messages.
//   - Tenant lanes: with TenantLanes > 1 a tenant whose message fails moves
//     from the durable's main worker to a retry worker with its later
//     messages, so one tenant's messages are still applied in stream order
//     while a failing message holds back only its own tenant (and tenants
//     failing in the same retry worker).
//   - Retries: when a message fails, the messages before it are committed and
//     acknowledged, and the failed one is retried by its worker after the
//     next delay of the Backoff schedule (its later messages wait behind it:
//     that is what per-key order means). The wait blocks only that worker,
//     and the runtime tells JetStream the messages are still in progress
//     meanwhile. After MaxDeliver failed attempts, once the retry Budget (a
//     time from the first failure) is spent, or at once for an error no retry
//     can fix (see IsPermanent), the message is stored in the dead-letter
//     queue (pkg/dlq) and then terminated, and the worker moves on.
//   - Authenticity: with Config.Signer, a message whose signature (set by
//     the relay and by DLQ replays, see pkg/busauth) is missing or does not
//     verify is dead-lettered at intake, before any handler sees it, so a
//     message forged by someone with bus access is never applied.
//   - Instances: any number of instances of one consumer may run. Each
//     lane (a partition's durable, the replay durable) is leased to one
//     instance at a time (pkg/lease: leases in Postgres with fair shares),
//     and every transaction proves its lane's lease (lease.Hold) before it
//     commits, so a lane is never applied by two instances at once, even
//     around a takeover. An instance joining gets its share within about
//     two lease intervals; the lanes of an instance that died are taken
//     over once its leases expire (Config.LeaseTTL plus an interval). The
//     new owner starts the lane at its ack floor, so what the dead one held
//     comes again first and in order.
//   - Replays: a second durable consumer per runtime reads the replay subject
//     of this consumer only (prost.replay.<name>.>, stream PROST_REPLAY), so a
//     replayed dead letter reaches the consumer that failed it and no other.
//   - Lost durables: a lane whose durable is deleted, or lost with its
//     stream (a wiped or new NATS server), notices it (at once when a pull
//     says so, else within DurableCheckInterval), is named by Missing (and
//     so by readiness) and declares it again; the new durable delivers the
//     stream from its start, and what was applied is skipped by the
//     idempotency record, which is never pruned (pkg/busstate rebuilds
//     what the stream itself lost).
//   - Batching: messages that arrive together are handled in one transaction
//     (a worker with fewer than BatchSize waits up to Config.Linger for
//     more, and stops waiting once none has come for Config.LingerQuiet);
//     if it fails, they are retried one at a time so one bad message
//     never fails the others.
//   - Shutdown: when Run's context ends, the runtime stops pulling, finishes
//     the transaction in flight, hands back (Nak, in order) what it holds, and
//     returns.
package consumer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/consumer/internal/consumerdb"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/lease"
	"github.com/prost-platform/prost/pkg/subjects"
	"github.com/prost-platform/prost/pkg/telemetry"
)

// Message is one delivered event.
type Message struct {
	// ID is the idempotency key: the Prost-Msg-Id header of a replay, the
	// Nats-Msg-Id header, or the stream and sequence when neither is set.
	ID      string
	Subject string
	Header  nats.Header
	// Data is the structured-mode CloudEvent JSON.
	Data []byte
	// Stream and StreamSeq locate the message; NumDelivered counts the
	// broker's deliveries (1 = first).
	Stream       string
	StreamSeq    uint64
	NumDelivered uint64
	// Replay is true for a message replayed from the dead-letter queue.
	Replay bool

	msg jetstream.Msg
	ctx context.Context // carries the span of the message's handling
	// failedHere is set once an attempt at the message failed in this
	// process, so its failure count is cleared when it finally succeeds.
	failedHere bool
	// handoff is the error of the attempt that failed on a lane's main
	// worker, which handed the message to a retry worker to go on from
	// there (Config.TenantLanes).
	handoff error
	// firstFailure is when it first failed in this process: the retry
	// budget's start when the database cannot say.
	firstFailure time.Time
	// seen is set by an Idempotent handler that found the message applied
	// before (Seen).
	seen bool
}

// Seen tells the runtime that the handler of an Idempotent consumer found
// this message applied before and changed nothing for it, so it is counted
// as skipped rather than applied. Only a handler calls it, inside its
// transaction; if the transaction then fails, the mark is cleared with the
// next attempt.
func (m *Message) Seen() { m.seen = true }

// Tenant is the tenant its subject names (the third token of an event
// subject, or of the original subject of a replay), and false when that is
// not a tenant id.
func (m *Message) Tenant() (uuid.UUID, bool) {
	t, err := uuid.Parse(tenantToken(originalSubject(m)))
	return t, err == nil
}

// EventType is the event type its subject names (the tokens after the
// partition, joined by dots), and false when the subject names none plainly
// (not an event subject, or a token of the type had to be escaped).
func (m *Message) EventType() (string, bool) {
	rest, ok := strings.CutPrefix(originalSubject(m), subjects.Root+".")
	if !ok {
		return "", false
	}
	parts := strings.SplitN(rest, ".", 3) // tenant, partition, type tokens
	if len(parts) < 3 || strings.Contains(parts[2], "%") {
		return "", false
	}
	return parts[2], true
}

// Tenants lists the distinct tenants msgs' subjects name, in order of first
// appearance.
func Tenants(msgs []*Message) []uuid.UUID {
	seen := make(map[uuid.UUID]bool)
	var out []uuid.UUID
	for _, m := range msgs {
		if t, ok := m.Tenant(); ok && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// Keep returns, in order, the messages of msgs that keep reports for their
// tenant and event type (typed false: the subject names no plain type, see
// EventType), and those whose subject names no tenant: a Config.Relevant
// keeps what it is unsure of.
func Keep(msgs []*Message, keep func(tenant uuid.UUID, eventType string, typed bool) bool) []*Message {
	var out []*Message
	for _, m := range msgs {
		t, ok := m.Tenant()
		if !ok {
			out = append(out, m)
			continue
		}
		if typ, typed := m.EventType(); keep(t, typ, typed) {
			out = append(out, m)
		}
	}
	return out
}

// Context returns a context carrying the span of this message's handling,
// a child of the trace the event was ingested in. Handlers that publish or
// call out use it to continue the trace.
func (m *Message) Context() context.Context {
	if m.ctx == nil {
		return context.Background()
	}
	return m.ctx
}

// Handler applies msgs inside tx. It sees each message at most once per
// successful commit; returning an error rolls tx back.
type Handler func(ctx context.Context, tx pgx.Tx, msgs []*Message) error

// permanentError marks an error that no retry can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the runtime dead-letters the message at once instead
// of retrying it.
func Permanent(err error) error { return permanentError{err} }

// idempotencyKey is the constraint of the idempotency record: a conflict on
// it is a race with another instance, which a retry settles.
const idempotencyKey = "consumer_processed_pkey"

// IsPermanent reports whether no retry can fix err, so that the message is
// dead-lettered after its first attempt:
//
//   - err was wrapped with Permanent;
//   - err is a PostgreSQL data exception (SQLSTATE class 22: a NUL byte in
//     text, a number out of range, an invalid value) or integrity
//     violation (class 23: a unique, foreign key, not-null or check
//     constraint), other than a conflict on the idempotency record: the
//     same message meets the same data every time;
//   - err is a JSON decoding error (*json.SyntaxError,
//     *json.UnmarshalTypeError): a payload the handler cannot decode. A
//     handler decoding another format wraps its error with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	if errors.As(err, &p) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		switch pe.Code[:2] {
		case "22":
			return true
		case "23":
			return pe.ConstraintName != idempotencyKey
		}
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te)
}

// Retry budgets: how long a message may be retried, from its first failure,
// before it is dead-lettered whatever attempts its schedule has left.
const (
	// DefaultRetryBudget is RetryPolicy.Budget's default.
	DefaultRetryBudget = 15 * time.Minute
	// DevRetryBudget is the budget `prost dev` gives every consumer (unless
	// PROST_RETRY_BUDGET says otherwise): a developer sees a failing
	// message in the dead-letter queue within a minute.
	DevRetryBudget = 30 * time.Second
)

// TenantLane is FNV-1a of tenant (the tenant token of a subject), modulo
// lanes: with Config.TenantLanes n, a failing tenant's messages are retried
// by worker 1 + TenantLane(tenant, n-1).
func TenantLane(tenant string, lanes int) int { return subjects.Partition(tenant, lanes) }

// RetryPolicy is how a consumer retries a failing message.
type RetryPolicy struct {
	// MaxDeliver is the most attempts at one message before it is
	// dead-lettered. Defaults to 10.
	MaxDeliver int `json:"max_deliver"`
	// Backoff is the wait before the n-th retry (the last entry repeats).
	// Defaults to 1s, 5s, 30s, 2m, 10m.
	Backoff []time.Duration `json:"-"`
	// AckWait is how long the broker waits for an ack (or an in-progress
	// signal) before redelivering to another instance. Defaults to 30s.
	AckWait time.Duration `json:"-"`
	// Budget is the most time a message is retried, counted from its first
	// failure (as recorded in consumer_failures, so a restart does not
	// reset it): once spent, the message is dead-lettered (reason
	// retry_budget) whatever MaxDeliver and Backoff have left, and the wait
	// before its last attempt is cut to what remains. It bounds how long a
	// failing message holds back the messages behind it. Defaults to
	// DefaultRetryBudget (15 minutes); negative means no budget.
	Budget time.Duration `json:"-"`
}

// Config describes a consumer. Name is required.
type Config struct {
	// Name is the durable consumer name (with Partitions > 1, the prefix of
	// one durable per partition), the idempotency namespace and the replay
	// address. Letters, digits, '-' and '_' only.
	Name string
	// Stream is the JetStream stream. Defaults to "PROST_EVENTS".
	Stream string
	// Partitions is the number of partitions events are spread over; it must
	// match the gateway's PROST_PARTITIONS. With 1 (the default) one durable
	// consumer reads FilterSubjects in stream order.
	Partitions int
	// FilterSubjects selects messages when Partitions is 1. Defaults to every
	// event subject. With Partitions > 1 it must be empty.
	FilterSubjects []string
	// Types, when set, are the only event types this consumer is given:
	// each lane's durable filters on them (prost.events.*.<partition>.<type
	// tokens>), so JetStream never delivers, and the consumer never
	// acknowledges or records, any other event. It cannot be combined with
	// FilterSubjects. Empty: every event.
	Types []string
	// Relevant, when set, picks, inside each transaction and before the
	// idempotency record is written, the messages the handler would act
	// on; only those are recorded and handed to it, and the others are
	// acknowledged with the batch. It must read what decides (rules,
	// subscriptions) through tx, so it agrees with what the handler would
	// see, and keep a message whenever unsure. A message left out has had
	// no effect, so applying it later, if it comes again, is still once.
	// A consumer that acts on few events (rules, subscriptions) then writes
	// nothing for the rest: a batch with nothing relevant (and nothing
	// retried) runs a read-only transaction, which Postgres commits without
	// a flush to disk. nil: every message is relevant.
	Relevant func(ctx context.Context, tx pgx.Tx, msgs []*Message) ([]*Message, error)
	// Idempotent says the handler is idempotent by keys of its own: a
	// message applied again, in a later transaction, changes nothing (the
	// audit consumer finds the event's entry under its tenant's chain-head
	// lock; the billing consumer's usage rows conflict on their primary
	// key). The runtime then writes no idempotency record for this
	// consumer, which saves a row, an index entry and a statement per
	// message, and hands a redelivered message to the handler again: the
	// handler must recognise it, and calls Message.Seen so it is counted
	// as skipped. Copies of one message in one batch are still handed over
	// once. Default false: the runtime records every message it applies in
	// consumer_processed and never hands over one it recorded.
	Idempotent bool
	// BatchSize caps the messages handled in one transaction. Defaults to 100.
	BatchSize int
	// Linger is how long a worker holding fewer than BatchSize messages
	// waits, from the arrival of the oldest, for more before it handles
	// them: under a steady trickle (events accepted one at a time, spread
	// over partitions) it turns a transaction per message into one per
	// few, at the price of up to Linger of latency per consumer. Defaults
	// to DefaultLinger; negative handles at once what has arrived.
	Linger time.Duration
	// LingerQuiet ends a worker's Linger early once no message has arrived
	// for LingerQuiet: the relay publishes what it read in one round, which
	// reaches a consumer as one burst, so a burst that has stopped arriving
	// is whole and waiting longer only adds latency. Defaults to
	// DefaultLingerQuiet; negative lingers the whole Linger.
	LingerQuiet time.Duration
	// Concurrency caps the transactions this consumer runs at once across
	// its partitions. Defaults to 4.
	Concurrency int
	// TenantLanes is how many ordered workers each durable has: with more
	// than one, a main worker applies every tenant's messages in batches,
	// and a tenant (the tenant token of the subject: prost.events.<tenant>.…
	// or prost.replay.<consumer>.<tenant>.…) whose message fails there with
	// an error a retry could fix moves, with its later messages, to retry
	// worker 1 + TenantLane(tenant, TenantLanes-1) until that worker has
	// applied all it holds. One tenant's messages are in one worker at a
	// time and applied in stream order; a message that keeps failing holds
	// back only its tenant's later messages and those of tenants failing in
	// the same retry worker. Defaults to 1: one worker per durable, every
	// message in stream order.
	TenantLanes int
	// MaxAckPending caps the messages each durable has delivered and not yet
	// settled. A worker held back by a failing message keeps the messages
	// of its tenants that arrive meanwhile (in memory, told to the broker
	// as in progress); when they reach this cap, every worker of the
	// durable waits. Defaults to 2 × BatchSize × TenantLanes.
	MaxAckPending int
	// Retry is the retry policy.
	Retry RetryPolicy
	// NoReplay switches off the replay consumer. Defaults to false.
	NoReplay bool
	// Signer, when set, verifies every message's signature (see
	// pkg/busauth) before the handler can see it: a message that is
	// unsigned or does not verify is dead-lettered at once (reason
	// permanent) and never handled. nil trusts every message.
	Signer *busauth.Signer
	// LeaseTTL is how long an instance's lease on a lane lasts without
	// renewal: the time after which a dead instance's lanes are taken over.
	// Defaults to lease.DefaultTTL (10s).
	LeaseTTL time.Duration
	// Instance names this instance in the leases. Defaults to
	// host-pid-random.
	Instance string
	// Logger receives failures. Defaults to discarding.
	Logger *slog.Logger
	// DurableCheckInterval is how often each lane makes sure its durable
	// still exists (it also checks at once when a pull says it was deleted
	// or nobody answers). Defaults to DefaultDurableCheckInterval.
	DurableCheckInterval time.Duration
}

// DefaultLinger: see Config.Linger. In `make bench`'s single-event step
// (~1,000 events/s over 4 partitions) the five consumers ran a transaction
// per message or two without it.
const DefaultLinger = 20 * time.Millisecond

// DefaultLingerQuiet: see Config.LingerQuiet.
const DefaultLingerQuiet = 3 * time.Millisecond

// DefaultDurableCheckInterval: see Config.DurableCheckInterval.
const DefaultDurableCheckInterval = 30 * time.Second

// redeclareDelay is how long a lane whose durable was deleted waits before
// declaring it again: a durable deleted with its stream is then declared
// once the stream is back, rather than failing in a loop.
const redeclareDelay = time.Second

// Consumer runs a Handler over durable JetStream consumers.
type Consumer struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	cfg  Config
	h    Handler
	sem  chan struct{}
	// spanName names the span of each message handled: "consume <name>".
	spanName string

	processed    atomic.Int64
	skipped      atomic.Int64
	failed       atomic.Int64
	deadLettered atomic.Int64
	// missing holds the lanes whose durable is gone ("stream/durable"),
	// until they declared it again.
	missing sync.Map

	strandedMu sync.Mutex
	stranded   []string
}

// New returns a Consumer. It talks to no server until Run.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config, h Handler) (*Consumer, error) {
	if cfg.Name == "" {
		return nil, errors.New("consumer: Name is required")
	}
	if subjects.Token(cfg.Name) != cfg.Name {
		return nil, fmt.Errorf("consumer: Name %q may hold only letters, digits, '-' and '_'", cfg.Name)
	}
	if h == nil {
		return nil, errors.New("consumer: a handler is required")
	}
	if cfg.Stream == "" {
		cfg.Stream = "PROST_EVENTS"
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.Partitions > 1 && len(cfg.FilterSubjects) > 0 {
		return nil, errors.New("consumer: FilterSubjects cannot be combined with Partitions > 1")
	}
	if len(cfg.Types) > 0 && len(cfg.FilterSubjects) > 0 {
		return nil, errors.New("consumer: Types cannot be combined with FilterSubjects")
	}
	for _, t := range cfg.Types {
		if t == "" {
			return nil, errors.New("consumer: an empty event type in Types")
		}
	}
	if len(cfg.FilterSubjects) == 0 && len(cfg.Types) == 0 {
		cfg.FilterSubjects = []string{subjects.All}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	switch {
	case cfg.Linger == 0:
		cfg.Linger = DefaultLinger
	case cfg.Linger < 0:
		cfg.Linger = 0
	}
	switch {
	case cfg.LingerQuiet == 0:
		cfg.LingerQuiet = DefaultLingerQuiet
	case cfg.LingerQuiet < 0:
		cfg.LingerQuiet = 0
	}
	if cfg.TenantLanes <= 0 {
		cfg.TenantLanes = 1
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = 2 * cfg.BatchSize * cfg.TenantLanes
	}
	if cfg.Retry.Budget == 0 {
		cfg.Retry.Budget = DefaultRetryBudget
	}
	if cfg.Retry.AckWait <= 0 {
		cfg.Retry.AckWait = 30 * time.Second
	}
	if cfg.Retry.MaxDeliver <= 0 {
		cfg.Retry.MaxDeliver = 10
	}
	if len(cfg.Retry.Backoff) == 0 {
		cfg.Retry.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DurableCheckInterval <= 0 {
		cfg.DurableCheckInterval = DefaultDurableCheckInterval
	}
	return &Consumer{pool: pool, js: js, cfg: cfg, h: h, sem: make(chan struct{}, cfg.Concurrency), spanName: "consume " + cfg.Name}, nil
}

// Processed counts messages applied.
func (c *Consumer) Processed() int64 { return c.processed.Load() }

// Skipped counts redelivered messages that had already been applied.
func (c *Consumer) Skipped() int64 { return c.skipped.Load() }

// Failed counts failed attempts.
func (c *Consumer) Failed() int64 { return c.failed.Load() }

// DeadLettered counts messages moved to the dead-letter queue.
func (c *Consumer) DeadLettered() int64 { return c.deadLettered.Load() }

// Name is the consumer's name.
func (c *Consumer) Name() string { return c.cfg.Name }

// Durables lists the durable JetStream consumers this runtime reads, by stream.
func (c *Consumer) Durables() map[string][]string {
	out := map[string][]string{}
	for _, lane := range c.lanes() {
		out[lane.stream] = append(out[lane.stream], lane.durable)
	}
	return out
}

// Missing names the durables of this consumer that are gone (deleted, or
// lost with their stream) and not yet declared again, as
// "<stream>/<durable>", sorted. Readiness reports them.
func (c *Consumer) Missing() []string {
	var out []string
	c.missing.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}

// Stranded names the durables of this consumer on its stream that no lane
// reads any more and that still hold messages (pending or unacknowledged),
// as "<stream>/<durable>", sorted: left by a run with another Partitions
// (PROST_PARTITIONS changed without draining first, docs/delivery.md). Run
// looks for them once when it starts and logs each as an error, and
// prost_consumer_stranded_durables counts them; their messages reach this
// consumer only if Partitions is set back.
func (c *Consumer) Stranded() []string {
	c.strandedMu.Lock()
	defer c.strandedMu.Unlock()
	return slices.Clone(c.stranded)
}

// checkStranded finds the durables Stranded reports. It tries until it has
// listed the stream's durables once (NATS may not answer yet when Run
// starts); a stream that does not exist strands nothing.
func (c *Consumer) checkStranded(ctx context.Context, lanes []lane) {
	read := map[string]bool{}
	for _, l := range lanes {
		read[l.durable] = true
	}
	for {
		found, err := c.findStranded(ctx, read)
		if err == nil {
			slices.Sort(found)
			c.strandedMu.Lock()
			c.stranded = found
			c.strandedMu.Unlock()
			return
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return
		}
		c.cfg.Logger.Debug("consumer: listing durables to find stranded ones failed; trying again", "consumer", c.cfg.Name, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

func (c *Consumer) findStranded(ctx context.Context, read map[string]bool) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return nil, err
	}
	var found []string
	infos := st.ListConsumers(ctx)
	for ci := range infos.Info() {
		if read[ci.Name] || !c.ownsDurable(ci.Name) || ci.NumPending+uint64(ci.NumAckPending) == 0 {
			continue
		}
		found = append(found, c.cfg.Stream+"/"+ci.Name)
		c.cfg.Logger.Error("consumer: a durable no lane reads holds messages this consumer has not applied; PROST_PARTITIONS changed without draining first (docs/delivery.md)",
			"consumer", c.cfg.Name, "stream", c.cfg.Stream, "durable", ci.Name, "partitions", c.cfg.Partitions,
			"pending", ci.NumPending, "unacknowledged", ci.NumAckPending)
	}
	return found, infos.Err()
}

// ownsDurable reports whether durable is a name this consumer's lanes take
// with some partition count: Name itself or Name-p<n>.
func (c *Consumer) ownsDurable(durable string) bool {
	if durable == c.cfg.Name {
		return true
	}
	n, ok := strings.CutPrefix(durable, c.cfg.Name+"-p")
	if !ok || n == "" {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 31)
	return err == nil
}

// lane is one durable consumer and the worker that reads it in order.
type lane struct {
	stream, durable string
	filters         []string
}

func (c *Consumer) lanes() []lane {
	var out []lane
	// filters selects the events of partition p ("*": every partition).
	filters := func(p string) []string {
		if len(c.cfg.Types) == 0 {
			return []string{subjects.Root + ".*." + p + ".>"}
		}
		var f []string
		for _, t := range c.cfg.Types {
			f = append(f, subjects.Root+".*."+p+"."+subjects.TypeTokens(t))
		}
		return f
	}
	switch {
	case c.cfg.Partitions > 1:
		for p := range c.cfg.Partitions {
			out = append(out, lane{c.cfg.Stream, c.cfg.Name + "-p" + strconv.Itoa(p), filters(strconv.Itoa(p))})
		}
	case len(c.cfg.Types) > 0:
		out = append(out, lane{c.cfg.Stream, c.cfg.Name, filters("*")})
	default:
		out = append(out, lane{c.cfg.Stream, c.cfg.Name, c.cfg.FilterSubjects})
	}
	if !c.cfg.NoReplay {
		out = append(out, lane{"PROST_REPLAY", c.cfg.Name + "-replay", []string{dlq.ReplayFilter(c.cfg.Name)}})
	}
	return out
}

// Run takes this instance's share of the lanes (see the package doc),
// declares their durable consumers and processes messages until ctx ends; it
// then drains, hands its lanes back and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	lanes := c.lanes()
	go c.checkStranded(ctx, lanes)
	g, err := lease.New(c.pool, lease.Config{
		Group: "consumer:" + c.cfg.Name, Partitions: len(lanes), Instance: c.cfg.Instance,
		TTL: c.cfg.LeaseTTL, Logger: c.cfg.Logger.With("consumer", c.cfg.Name),
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.cfg.Name, err)
	}
	return g.Run(ctx, func(ctx context.Context, held lease.Lease) {
		ctx = context.WithValue(ctx, leaseKey{}, held)
		for restart := false; ; {
			if restart = c.runLane(ctx, lanes[held.Partition], restart); !restart || ctx.Err() != nil {
				return
			}
		}
	})
}

// leaseKey carries a lane's lease in its context, for apply to prove it.
type leaseKey struct{}

// runLane reads one durable in order until ctx ends. It returns true when
// the lane must start again (see disrupted below); it is then called with
// restarted set.
func (c *Consumer) runLane(ctx context.Context, l lane, restarted bool) (restart bool) {
	log := c.cfg.Logger.With("consumer", c.cfg.Name, "durable", l.durable)
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = c.js.CreateOrUpdateConsumer(ctx, l.stream, jetstream.ConsumerConfig{
			Durable:        l.durable,
			FilterSubjects: l.filters,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        c.cfg.Retry.AckWait,
			// The runtime counts attempts and dead-letters itself; the
			// broker's limit is a backstop for a consumer that keeps dying
			// mid-message (its advisory is logged).
			MaxDeliver:    c.cfg.Retry.MaxDeliver + 5,
			MaxAckPending: c.cfg.MaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err == nil {
			c.missing.Delete(l.stream + "/" + l.durable)
			break
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			c.missing.Store(l.stream+"/"+l.durable, struct{}{})
		}
		log.Warn("consumer: declare failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	// Deliveries in flight when the connection to NATS dropped, or when the
	// durable's leader changed (a replicated consumer), are lost; JetStream
	// redelivers them only after AckWait, behind later messages. After
	// either event the lane starts again, which resets the durable to its
	// ack floor (below) before it handles anything delivered since. (Handing
	// back what it holds is not enough: the server can redeliver those
	// mixed with later messages.)
	nc := c.js.Conn()
	reconnects := nc.Stats().Reconnects
	var leaderChanged atomic.Bool
	if sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED."+l.stream+"."+l.durable,
		func(*nats.Msg) { leaderChanged.Store(true) }); err == nil {
		defer func() { _ = sub.Unsubscribe() }()
	}
	disrupted := func() bool { return leaderChanged.Load() || nc.Stats().Reconnects != reconnects }

	// Messages delivered and never acknowledged were held by an instance of
	// this consumer that is gone (killed mid-batch), or lost in flight
	// (above). JetStream would redeliver them only after AckWait, behind the
	// later messages this lane is about to receive: per-key order would
	// break. So every lane starts by resetting its durable to the ack floor:
	// everything after the floor is delivered again, in stream order, and
	// what was applied already is skipped by the idempotency record. First
	// the server must drop pull requests nobody listens to any more (see the
	// hand-back below), or it would deliver to them again.
	_, _ = cons.Info(ctx)
	unacked := 0
	if ci := cons.CachedInfo(); ci != nil {
		unacked = ci.NumAckPending
	}
	for attempt := 1; ; attempt++ {
		r, err := c.js.ResetConsumer(ctx, l.stream, l.durable)
		if err == nil {
			if unacked > 0 || restarted {
				log.Info("consumer: reset to the ack floor to redeliver unacknowledged messages in order",
					"unacked", unacked, "from_stream_seq", r.ResetSeq)
			}
			break
		}
		// A server without the consumer reset API (an older release)
		// answers a bad request: go on without it, as before.
		if attempt == 3 || ctx.Err() != nil || errors.Is(err, jetstream.ErrBadRequest) {
			log.Warn("consumer: cannot reset to the ack floor; unacknowledged messages come back after ack_wait, possibly out of order",
				"unacked", unacked, "error", err)
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}

	// A durable can vanish under a running lane: deleted by someone with bus
	// access, or lost with its stream (a wiped or new server). The lane
	// checks that it exists when a pull says it was deleted or nobody
	// answers it, and every DurableCheckInterval, and declares it again.
	check := make(chan struct{}, 1)
	checkNow := func() {
		select {
		case check <- struct{}{}:
		default:
		}
	}
	checkTick := time.NewTicker(c.cfg.DurableCheckInterval)
	defer checkTick.Stop()

	// A lane holds at most two batches: one pulled by the client library
	// and one queued here, while the one before is handled (four held ~40
	// MiB over a process's lanes while a backlog was caught up).
	buf := make(chan jetstream.Msg, c.cfg.BatchSize)
	stopping := make(chan struct{})
	var lateMu sync.Mutex
	var late []jetstream.Msg // delivered once stopping began; handed back below
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case buf <- m:
		case <-stopping:
			lateMu.Lock()
			late = append(late, m)
			lateMu.Unlock()
		}
	},
		jetstream.PullMaxMessages(c.cfg.BatchSize),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Debug("consumer: pull", "error", err)
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
				errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) {
				checkNow()
			}
		}))
	if err != nil {
		log.Error("consumer: consume failed", "error", err)
		return
	}
	var unsettled []*Message // what the workers still held when the lane stopped
	defer func() {
		close(stopping)
		// Drain, not Stop: Stop discards the messages the client library
		// has already pulled, leaving them to AckWait; drained, they reach
		// the callback, which keeps them for the hand-back.
		cc.Drain()
		<-cc.Closed()
		// Hand back everything still held only now that this lane no
		// longer pulls: a message handed back earlier could be redelivered
		// to it and end up behind the ones that follow it.
		held := make([]jetstream.Msg, 0, len(unsettled)+len(buf))
		for _, m := range unsettled {
			held = append(held, m.msg)
		}
		for len(buf) > 0 {
			held = append(held, <-buf)
		}
		lateMu.Lock()
		held = append(held, late...)
		lateMu.Unlock()
		if len(held) == 0 {
			return
		}
		// The server keeps this lane's last pull request after the
		// subscription is gone, and a redelivery it tries to hand to that
		// request goes to the back of the queue, out of order. Asking for
		// the consumer's info makes the server drop requests nobody listens
		// to any more.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = cons.Info(ictx)
		cancel()
		handBack(held)
	}()

	// The dispatcher below hands each delivery, in stream order, to the
	// worker of its tenant; each worker applies its messages in that order.
	// lctx ends the workers when the lane stops or must start again.
	lctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var restartOnce atomic.Bool
	lost := func() bool {
		if !disrupted() {
			return false
		}
		if restartOnce.CompareAndSwap(false, true) {
			log.Warn("consumer: NATS reconnected or the consumer leader changed; restarting the lane to keep order")
			stopWorkers()
		}
		return true
	}
	r := newRouter(c.cfg.TenantLanes)
	workers := r.workers
	held := make([][]*Message, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if held[i] = c.work(lctx, w, log, lost); held[i] != nil {
				// The worker gave up messages it holds: the lane stops
				// (shutting down, restarting, or its lease was lost).
				stopWorkers()
			}
		}()
	}
	defer func() {
		// Runs before the hand-back above: gather what every worker still
		// holds or has queued.
		stopWorkers()
		wg.Wait()
		for i, w := range workers {
			unsettled = append(unsettled, held[i]...)
			unsettled = append(unsettled, w.drain()...)
		}
	}()
	for {
		select {
		case <-lctx.Done():
			return restartOnce.Load()
		case <-checkTick.C:
			checkNow()
		case <-check:
			if !durableGone(lctx, cons) {
				continue
			}
			c.missing.Store(l.stream+"/"+l.durable, struct{}{})
			log.Error("consumer: its durable consumer is gone (deleted, or lost with its stream); declaring it again",
				"stream", l.stream)
			stopWorkers()
			select {
			case <-ctx.Done():
				return
			case <-time.After(redeclareDelay):
			}
			return true
		case m := <-buf:
			if msg := c.intake(lctx, m, log); msg != nil {
				r.push(msg)
			}
		}
	}
}

// worker is one ordered lane of a durable: a queue of the messages of its
// tenants, in stream order, that one goroutine applies.
type worker struct {
	mu      sync.Mutex
	q       []*Message
	arrived []time.Time // when each of q arrived, for Config.Linger
	wake    chan struct{}
	// quarantine, on a main worker with retry workers beside it, takes a
	// failing message (its handoff set) and what is behind it in its batch.
	quarantine func(held []*Message)
	// release, on a retry worker, gives its tenants back to the main
	// worker once it has nothing left to apply.
	release func()
}

// router spreads a durable's messages over its workers (Config.TenantLanes).
// Every tenant's messages go to the main worker (0), which applies them in
// batches as large as the traffic allows, whatever the number of tenants.
// When a message fails there with an error a retry could fix, its tenant
// moves to a retry worker (1 to n-1, by a hash of the tenant) with the
// failing message and everything of the tenant behind it; its later
// messages follow it there until that worker has applied all it holds, and
// then the tenant goes back to the main worker. A failing tenant so holds
// back only the tenants failing in the same retry worker, and every tenant's
// messages are applied in stream order: they are in one worker at a time,
// and move only when nothing of the tenant is in flight elsewhere.
type router struct {
	mu      sync.Mutex // before any worker's mu
	workers []*worker
	moved   map[string]int // tenant token -> retry worker
}

func newRouter(lanes int) *router {
	r := &router{workers: make([]*worker, max(lanes, 1)), moved: map[string]int{}}
	for i := range r.workers {
		w := &worker{wake: make(chan struct{}, 1)}
		if lanes > 1 {
			if i == 0 {
				w.quarantine = func(held []*Message) { r.quarantine(held) }
			} else {
				w.release = func() { r.release(i) }
			}
		}
		r.workers[i] = w
	}
	return r
}

// push queues m for the worker its tenant is in.
func (r *router) push(m *Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	if len(r.moved) > 0 {
		k = r.moved[tenantToken(originalSubject(m))]
	}
	r.workers[k].push(m)
}

// quarantine moves the tenant of held[0] (which failed on the main worker)
// to its retry worker: held's messages of that tenant and those queued on
// the main worker, in order. held's other messages go back to the front of
// the main worker's queue, to be applied at once.
func (r *router) quarantine(held []*Message) {
	token := tenantToken(originalSubject(held[0]))
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 1 + TenantLane(token, len(r.workers)-1)
	r.moved[token] = k
	var move, stay []*Message
	for _, m := range held {
		if tenantToken(originalSubject(m)) == token {
			move = append(move, m)
		} else {
			stay = append(stay, m)
		}
	}
	main := r.workers[0]
	main.mu.Lock()
	q := make([]*Message, 0, len(stay)+len(main.q))
	arrived := make([]time.Time, 0, cap(q))
	for _, m := range stay {
		q, arrived = append(q, m), append(arrived, time.Time{}) // taken again without lingering
	}
	for i, m := range main.q {
		if tenantToken(originalSubject(m)) == token {
			move = append(move, m)
		} else {
			q, arrived = append(q, m), append(arrived, main.arrived[i])
		}
	}
	main.q, main.arrived = q, arrived
	main.mu.Unlock()
	for _, m := range move {
		r.workers[k].push(m)
	}
}

// release gives retry worker k's tenants back to the main worker if k holds
// nothing more. Only k's goroutine calls it, between batches, so nothing of
// those tenants is in flight.
func (r *router) release(k int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.workers[k]
	w.mu.Lock()
	empty := len(w.q) == 0
	w.mu.Unlock()
	if !empty {
		return
	}
	for token, at := range r.moved {
		if at == k {
			delete(r.moved, token)
		}
	}
}

func (w *worker) push(m *Message) {
	w.mu.Lock()
	w.q = append(w.q, m)
	w.arrived = append(w.arrived, time.Now())
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take removes and returns up to n queued messages.
func (w *worker) take(n int) []*Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := min(n, len(w.q))
	out := slices.Clone(w.q[:k])
	if k == len(w.q) {
		w.q, w.arrived = nil, nil
	} else {
		w.q, w.arrived = w.q[k:], w.arrived[k:]
	}
	return out
}

// ready reports how long to wait before a batch is worth taking: zero when
// n messages are queued or the oldest has waited linger, else the rest of
// its linger. An empty queue waits for a push (ok false).
func (w *worker) ready(n int, linger, quiet time.Duration) (wait time.Duration, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.q) == 0 {
		return 0, false
	}
	if len(w.q) >= n || linger <= 0 {
		return 0, true
	}
	wait = linger - time.Since(w.arrived[0])
	if quiet > 0 {
		wait = min(wait, quiet-time.Since(w.arrived[len(w.arrived)-1]))
	}
	return max(0, wait), true
}

// queued returns the messages waiting, without removing them.
func (w *worker) queued() []*Message {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.q)
}

func (w *worker) drain() []*Message { return w.take(int(^uint(0) >> 1)) }

// tenantToken is the third token of an event subject (its tenant), or the
// whole subject when it has fewer.
func tenantToken(subject string) string {
	rest, ok := strings.CutPrefix(subject, subjects.Root+".")
	if !ok {
		return subject
	}
	tenant, _, _ := strings.Cut(rest, ".")
	return tenant
}

// work applies w's messages in order, in batches, until ctx ends. It returns
// what it still held then (for the lane to hand back), or the batch it did
// not start because lost reported the lane must start again.
func (c *Consumer) work(ctx context.Context, w *worker, log *slog.Logger, lost func() bool) []*Message {
	var linger *time.Timer
	for ctx.Err() == nil {
		wait, ok := w.ready(c.cfg.BatchSize, c.cfg.Linger, c.cfg.LingerQuiet)
		if !ok {
			select {
			case <-ctx.Done():
			case <-w.wake:
			}
			continue
		}
		if wait > 0 {
			// Wait for the batch to fill or the oldest to have waited
			// Linger; a push wakes this to look again.
			if linger == nil {
				linger = time.NewTimer(wait)
				defer linger.Stop()
			} else {
				linger.Reset(wait)
			}
			select {
			case <-ctx.Done():
			case <-w.wake:
			case <-linger.C:
			}
			continue
		}
		batch := w.take(c.cfg.BatchSize)
		if lost() {
			return batch
		}
		if unsettled := c.handle(ctx, w, batch, log); unsettled != nil {
			return unsettled
		}
		if w.release != nil {
			w.release()
		}
	}
	return nil
}

// durableGone reports whether cons no longer exists on the server.
func durableGone(ctx context.Context, cons jetstream.Consumer) bool {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := cons.Info(ictx)
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// intake turns a delivery into a Message, or returns nil when the message's
// signature does not verify (Config.Signer): such a message is dead-lettered
// at once and no handler ever sees it.
func (c *Consumer) intake(ctx context.Context, jm jetstream.Msg, log *slog.Logger) *Message {
	m := toMessage(jm)
	if c.cfg.Signer == nil {
		return m
	}
	err := c.cfg.Signer.Verify(m.Header, m.Subject, m.ID, m.Data)
	if err == nil {
		return m
	}
	c.failed.Add(1)
	for {
		// What the message claims (its tenant) is not trusted: the entry is
		// for operators, under no tenant.
		id, derr := dlq.DeadLetter(context.WithoutCancel(ctx), c.pool, dlq.Failure{
			Consumer: c.cfg.Name, MsgID: m.ID, Subject: m.Subject, Stream: m.Stream, StreamSeq: m.StreamSeq,
			Deliveries: int(m.NumDelivered), Err: err.Error(), Event: m.Data, Untrusted: true,
		}, dlq.ReasonPermanent)
		if derr == nil {
			c.deadLettered.Add(1)
			log.Error("consumer: message refused: its signature does not verify; dead-lettered without handling",
				"msg_id", m.ID, "subject", m.Subject, "dlq_entry", id, "error", err)
			_ = jm.TermWithReason("unauthenticated")
			return nil
		}
		log.Error("consumer: cannot store dead letter; will retry", "msg_id", m.ID, "error", derr)
		select {
		case <-ctx.Done():
			_ = jm.Nak()
			return nil
		case <-time.After(time.Second):
		}
	}
}

// handBack returns msgs to the broker (Nak) in stream order, so that they are
// redelivered in that order.
func handBack(msgs []jetstream.Msg) {
	seq := func(m jetstream.Msg) uint64 {
		if md, err := m.Metadata(); err == nil {
			return md.Sequence.Stream
		}
		return 0
	}
	slices.SortStableFunc(msgs, func(a, b jetstream.Msg) int { return cmp.Compare(seq(a), seq(b)) })
	for _, m := range msgs {
		_ = m.Nak()
	}
}

// handle applies a batch in order. When ctx ends while it still holds
// messages, it returns them unsettled for the caller to hand back; otherwise
// it returns nil.
func (c *Consumer) handle(ctx context.Context, w *worker, batch []*Message, log *slog.Logger) []*Message {
	if j := slices.IndexFunc(batch, func(m *Message) bool { return m.handoff != nil }); j >= 0 {
		// A message the main worker handed over, failed: what is before it
		// here first, then its retries, as if it had failed here.
		if j > 0 {
			if held := c.handle(ctx, w, batch[:j], log); held != nil {
				return append(held, batch[j:]...)
			}
		}
		err := batch[j].handoff
		batch[j].handoff = nil
		return c.retry(ctx, w, batch[j:], err, log)
	}
	err := c.apply(ctx, batch)
	if err == nil {
		c.ack(ctx, batch)
		return nil
	}
	failed := 0
	if len(batch) > 1 {
		if failed, err = c.applySplit(ctx, batch); err == nil {
			return nil
		}
	}
	held := batch[failed:]
	if w.quarantine != nil && !IsPermanent(err) && !(ctx.Err() != nil && errors.Is(err, ctx.Err())) && !errors.Is(err, lease.ErrLost) {
		// Retried in a worker of its own, so that the other tenants go on.
		held[0].handoff = err
		w.quarantine(held)
		return nil
	}
	// retry takes over the failed message and everything behind it.
	return c.retry(ctx, w, held, err, log)
}

// applySplit applies msgs, which failed together, in order and in as few
// transactions as it can: it halves the part it tries until that part
// commits (or is one message that fails), so finding one failing message
// among n costs about 2·log2(n) transactions, not n. Everything before the
// failing message is committed and acknowledged; it returns that message's
// index and error, or err nil when every message was applied.
func (c *Consumer) applySplit(ctx context.Context, msgs []*Message) (int, error) {
	i, n := 0, max(len(msgs)/2, 1)
	for i < len(msgs) {
		n = min(n, len(msgs)-i)
		err := c.apply(ctx, msgs[i:i+n])
		if err == nil {
			c.ack(ctx, msgs[i:i+n])
			i += n
			continue
		}
		if n == 1 {
			return i, err
		}
		n /= 2
	}
	return len(msgs), nil
}

// retry keeps retrying held[0], whose last attempt failed with err, until it
// succeeds or is dead-lettered, while the messages behind it (and those
// queued for w) wait. When ctx ends first it returns what it still holds,
// unsettled; otherwise nil.
func (c *Consumer) retry(ctx context.Context, w *worker, held []*Message, err error, log *slog.Logger) []*Message {
	m := held[0]
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) || errors.Is(err, lease.ErrLost) {
			return held // shutting down, or the lane moved: no failure of the message
		}
		c.failed.Add(1)
		m.failedHere = true
		dctx := context.WithoutCancel(ctx)
		if m.firstFailure.IsZero() {
			m.firstFailure = time.Now()
		}
		// Time spent retrying, by the database's clock when it answers (the
		// first failure recorded there survives a restart).
		spent := time.Since(m.firstFailure)
		if first, last, ferr := dlq.RecordFailure(dctx, c.pool, c.cfg.Name, m.ID, err.Error()); ferr != nil {
			log.Error("consumer: cannot record failure", "msg_id", m.ID, "error", ferr)
		} else {
			spent = last.Sub(first)
		}
		// Attempts so far: this process's, or the broker's count if the
		// message was redelivered after another instance died.
		tries := max(attempt, int(m.NumDelivered))
		budget := c.cfg.Retry.Budget
		reason := ""
		switch {
		case IsPermanent(err):
			reason = dlq.ReasonPermanent
		case tries >= c.cfg.Retry.MaxDeliver:
			reason = dlq.ReasonMaxDeliveries
		case budget > 0 && spent >= budget:
			reason = dlq.ReasonRetryBudget
		}
		if reason != "" {
			if c.deadLetter(dctx, m, tries, reason, err, log) {
				// The rest of held continue in order: reprocess them now.
				rest := held[1:]
				if len(rest) == 0 {
					return nil
				}
				return c.handle(ctx, w, rest, log)
			}
			// Could not store the dead letter: keep retrying to store it.
		} else {
			delay := c.cfg.Retry.Backoff[min(tries-1, len(c.cfg.Retry.Backoff)-1)]
			if budget > 0 {
				delay = min(delay, budget-spent)
			}
			log.Warn("consumer: handler failed; retrying in order", "msg_id", m.ID, "subject", m.Subject,
				"attempt", tries, "max_deliver", c.cfg.Retry.MaxDeliver, "retry_in", delay,
				"budget_left", max(budget-spent, 0), "held", len(held), "error", err)
			if !c.wait(ctx, w, held, delay) {
				return held
			}
		}
		if err = c.apply(ctx, []*Message{m}); err == nil {
			c.ack(ctx, []*Message{m})
			rest := held[1:]
			if len(rest) == 0 {
				return nil
			}
			return c.handle(ctx, w, rest, log)
		}
	}
}

// wait sleeps d while telling the broker that the held messages, and those
// queued for w behind them, are in progress (so that it does not deliver
// them again meanwhile). It returns false when ctx ends first.
func (c *Consumer) wait(ctx context.Context, w *worker, held []*Message, d time.Duration) bool {
	tick := time.NewTicker(max(c.cfg.Retry.AckWait/3, 10*time.Millisecond))
	defer tick.Stop()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			for _, m := range held {
				_ = m.msg.InProgress()
			}
			for _, m := range w.queued() {
				_ = m.msg.InProgress()
			}
		case <-timer.C:
			return true
		}
	}
}

// deadLetter stores m in the DLQ and then terminates it.
func (c *Consumer) deadLetter(ctx context.Context, m *Message, tries int, reason string, cause error, log *slog.Logger) bool {
	replayOf, _ := strconv.ParseInt(m.Header.Get(dlq.HeaderReplayOf), 10, 64)
	id, err := dlq.DeadLetter(ctx, c.pool, dlq.Failure{
		Consumer: c.cfg.Name, MsgID: m.ID, Subject: originalSubject(m), Stream: m.Stream, StreamSeq: m.StreamSeq,
		Deliveries: tries, Err: cause.Error(), Event: m.Data, ReplayOf: replayOf,
	}, reason)
	if err != nil {
		log.Error("consumer: cannot store dead letter; will retry", "msg_id", m.ID, "error", err)
		return false
	}
	c.deadLettered.Add(1)
	log.Error("consumer: message dead-lettered", "msg_id", m.ID, "subject", m.Subject, "dlq_entry", id,
		"reason", reason, "attempts", tries, "error", cause)
	_ = m.msg.TermWithReason(reason)
	return true
}

// originalSubject is the event subject a replayed message was first published on.
func originalSubject(m *Message) string {
	if !m.Replay {
		return m.Subject
	}
	// prost.replay.<consumer>.<rest> -> prost.events.<rest>
	s := m.Subject
	for i, dots := 0, 0; i < len(s); i++ {
		if s[i] == '.' {
			dots++
			if dots == 3 {
				return subjects.Root + s[i:]
			}
		}
	}
	return s
}

// apply runs one transaction: claim the ids, hand the new ones to the
// handler, commit.
func (c *Consumer) apply(ctx context.Context, msgs []*Message) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	// The transaction runs to its end even if ctx ends meanwhile.
	tctx := context.WithoutCancel(ctx)
	var retried []string
	for _, m := range msgs {
		if m.NumDelivered > 1 || m.Replay || m.failedHere {
			retried = append(retried, m.ID)
		}
	}
	spans := make([]trace.Span, len(msgs))
	for i, m := range msgs {
		m.ctx, spans[i] = telemetry.Tracer().Start(telemetry.Extract(tctx, m.Header), c.spanName,
			trace.WithSpanKind(trace.SpanKindConsumer))
		// Attributes only for a span something reads: built for every
		// message, they were most of what a batch's spans allocated.
		if spans[i].IsRecording() {
			spans[i].SetAttributes(attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", m.Subject),
				attribute.String("messaging.message.id", m.ID),
				attribute.Int64("messaging.nats.delivered", int64(m.NumDelivered)))
		}
	}
	var fresh, relevant []*Message
	err := pgx.BeginFunc(tctx, c.pool, func(tx pgx.Tx) error {
		relevant = msgs
		if c.cfg.Relevant != nil {
			var err error
			if relevant, err = c.cfg.Relevant(tctx, tx, msgs); err != nil {
				return err
			}
		}
		if held, ok := ctx.Value(leaseKey{}).(lease.Lease); ok && (len(relevant) > 0 || len(retried) > 0) {
			// Fencing: commit only while this instance owns the lane. A
			// transaction that writes nothing needs none (and, without the
			// row lock, stays read-only: nothing to flush at commit).
			if err := lease.Hold(tctx, tx, held); err != nil {
				return err
			}
		}
		fresh = fresh[:0]
		switch {
		case len(relevant) > 0 && c.cfg.Idempotent:
			// No record: the handler recognises what it applied before.
			// A copy later in the same batch is still a duplicate.
			seen := make(map[string]bool, len(relevant))
			for _, m := range relevant {
				if !seen[m.ID] {
					seen[m.ID] = true
					m.seen = false
					fresh = append(fresh, m)
				}
			}
		case len(relevant) > 0:
			ids := make([]string, len(relevant))
			for i, m := range relevant {
				ids[i] = m.ID
			}
			newIDs, err := consumerdb.New(tx).ClaimMessages(tctx, consumerdb.ClaimMessagesParams{Consumer: c.cfg.Name, MsgIds: ids})
			if err != nil {
				return fmt.Errorf("idempotency record: %w", err)
			}
			isNew := make(map[string]bool, len(newIDs))
			for _, id := range newIDs {
				isNew[id] = true
			}
			for _, m := range relevant {
				if isNew[m.ID] {
					fresh = append(fresh, m)
					delete(isNew, m.ID) // a copy later in the same batch is a duplicate
				}
			}
		}
		if len(fresh) > 0 {
			if err := c.h(tctx, tx, fresh); err != nil {
				return err
			}
		}
		return dlq.ClearFailures(tctx, tx, c.cfg.Name, retried)
	})
	for _, s := range spans {
		if err != nil {
			s.RecordError(err)
			s.SetStatus(codes.Error, "handler failed")
		}
		s.End()
	}
	if err == nil {
		seen := 0
		for _, m := range fresh {
			if m.seen {
				seen++
			}
		}
		// What was not relevant counts as processed: it had nothing to do.
		c.processed.Add(int64(len(fresh) - seen + len(msgs) - len(relevant)))
		c.skipped.Add(int64(len(relevant) - len(fresh) + seen))
	}
	return err
}

// ack acknowledges messages whose transaction committed. A lost ack only
// causes a redelivery, which the idempotency record turns into a skip.
func (c *Consumer) ack(_ context.Context, msgs []*Message) {
	for _, m := range msgs {
		_ = m.msg.Ack()
	}
}

func toMessage(m jetstream.Msg) *Message {
	out := &Message{Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), msg: m}
	if md, err := m.Metadata(); err == nil {
		out.Stream, out.StreamSeq, out.NumDelivered = md.Stream, md.Sequence.Stream, md.NumDelivered
	}
	if out.NumDelivered == 0 {
		out.NumDelivered = 1
	}
	if id := m.Headers().Get(dlq.HeaderMsgID); id != "" {
		out.ID, out.Replay = id, true
		return out
	}
	out.ID = m.Headers().Get(jetstream.MsgIDHeader)
	if out.ID == "" {
		out.ID = "seq:" + out.Stream + ":" + strconv.FormatUint(out.StreamSeq, 10)
	}
	return out
}
