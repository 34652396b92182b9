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
//     Nats-Msg-Id the relay sets (the event's stable id).
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
//   - Retries: when a message fails, the messages before it are committed and
//     acknowledged, and the failed one is retried by its partition's worker
//     after the next delay of the Backoff schedule (its later messages wait
//     behind it: that is what per-key order means). The wait blocks only that
//     partition, and the runtime tells JetStream the messages are still in
//     progress meanwhile. After MaxDeliver failed attempts, or at once for an
//     error wrapped with Permanent, the message is stored in the dead-letter
//     queue (pkg/dlq) and then terminated, and the partition moves on.
//   - Authenticity: with Config.Signer, a message whose signature (set by
//     the relay and by DLQ replays, see pkg/busauth) is missing or does not
//     verify is dead-lettered at intake, before any handler sees it, so a
//     message forged by someone with bus access is never applied.
//   - Replays: a second durable consumer per runtime reads the replay subject
//     of this consumer only (prost.replay.<name>.>, stream PROST_REPLAY), so a
//     replayed dead letter reaches the consumer that failed it and no other.
//   - Batching: messages that arrive together are handled in one transaction;
//     if it fails, they are retried one at a time so one bad message never
//     fails the others.
//   - Shutdown: when Run's context ends, the runtime stops pulling, finishes
//     the transaction in flight, hands back (Nak, in order) what it holds, and
//     returns.
package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/consumer/internal/consumerdb"
	"github.com/prost-platform/prost/pkg/dlq"
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

// IsPermanent reports whether err was wrapped with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

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
	// BatchSize caps the messages handled in one transaction. Defaults to 100.
	BatchSize int
	// Concurrency caps the transactions this consumer runs at once across
	// its partitions. Defaults to 4.
	Concurrency int
	// Retry is the retry policy.
	Retry RetryPolicy
	// NoReplay switches off the replay consumer. Defaults to false.
	NoReplay bool
	// Signer, when set, verifies every message's signature (see
	// pkg/busauth) before the handler can see it: a message that is
	// unsigned or does not verify is dead-lettered at once (reason
	// permanent) and never handled. nil trusts every message.
	Signer *busauth.Signer
	// Logger receives failures. Defaults to discarding.
	Logger *slog.Logger
}

// Consumer runs a Handler over durable JetStream consumers.
type Consumer struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	cfg  Config
	h    Handler
	sem  chan struct{}

	processed    atomic.Int64
	skipped      atomic.Int64
	failed       atomic.Int64
	deadLettered atomic.Int64
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
	if len(cfg.FilterSubjects) == 0 {
		cfg.FilterSubjects = []string{subjects.All}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
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
	return &Consumer{pool: pool, js: js, cfg: cfg, h: h, sem: make(chan struct{}, cfg.Concurrency)}, nil
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

// lane is one durable consumer and the worker that reads it in order.
type lane struct {
	stream, durable string
	filters         []string
}

func (c *Consumer) lanes() []lane {
	var out []lane
	if c.cfg.Partitions == 1 {
		out = append(out, lane{c.cfg.Stream, c.cfg.Name, c.cfg.FilterSubjects})
	} else {
		for p := range c.cfg.Partitions {
			out = append(out, lane{c.cfg.Stream, c.cfg.Name + "-p" + strconv.Itoa(p),
				[]string{subjects.Root + ".*." + strconv.Itoa(p) + ".>"}})
		}
	}
	if !c.cfg.NoReplay {
		out = append(out, lane{"PROST_REPLAY", c.cfg.Name + "-replay", []string{dlq.ReplayFilter(c.cfg.Name)}})
	}
	return out
}

// Run declares the durable consumers and processes messages until ctx ends;
// it then drains (see the package doc) and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, l := range c.lanes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for restart := false; ; {
				if restart = c.runLane(ctx, l, restart); !restart || ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

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
			MaxAckPending: 2 * c.cfg.BatchSize,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
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
		}))
	if err != nil {
		log.Error("consumer: consume failed", "error", err)
		return
	}
	var unsettled []*Message // what handle still held when ctx ended
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

	batch := make([]*Message, 0, c.cfg.BatchSize)
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-buf:
			batch = batch[:0]
			if msg := c.intake(ctx, m, log); msg != nil {
				batch = append(batch, msg)
			}
		fill:
			for len(batch) < c.cfg.BatchSize {
				select {
				case m := <-buf:
					if msg := c.intake(ctx, m, log); msg != nil {
						batch = append(batch, msg)
					}
				default:
					break fill
				}
			}
			if len(batch) == 0 {
				continue
			}
			if disrupted() {
				log.Warn("consumer: NATS reconnected or the consumer leader changed; restarting the lane to keep order")
				unsettled = batch
				return true
			}
			if unsettled = c.handle(ctx, batch, log); unsettled != nil {
				return
			}
		}
	}
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
func (c *Consumer) handle(ctx context.Context, batch []*Message, log *slog.Logger) []*Message {
	if err := c.apply(ctx, batch); err == nil {
		c.ack(ctx, batch)
		return nil
	} else if len(batch) == 1 {
		return c.retry(ctx, batch, err, log)
	}
	for i, m := range batch {
		err := c.apply(ctx, []*Message{m})
		if err == nil {
			c.ack(ctx, []*Message{m})
			continue
		}
		// retry takes over the failed message and everything behind it.
		return c.retry(ctx, batch[i:], err, log)
	}
	return nil
}

// retry keeps retrying held[0], whose last attempt failed with err, until it
// succeeds or is dead-lettered, while the messages behind it wait. When ctx
// ends first it returns what it still holds, unsettled; otherwise nil.
func (c *Consumer) retry(ctx context.Context, held []*Message, err error, log *slog.Logger) []*Message {
	m := held[0]
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return held // shutting down is no failure of the message
		}
		c.failed.Add(1)
		m.failedHere = true
		dctx := context.WithoutCancel(ctx)
		_, _, ferr := dlq.RecordFailure(dctx, c.pool, c.cfg.Name, m.ID, err.Error())
		if ferr != nil {
			log.Error("consumer: cannot record failure", "msg_id", m.ID, "error", ferr)
		}
		// Attempts so far: this process's, or the broker's count if the
		// message was redelivered after another instance died.
		tries := max(attempt, int(m.NumDelivered))
		if IsPermanent(err) || tries >= c.cfg.Retry.MaxDeliver {
			reason := dlq.ReasonMaxDeliveries
			if IsPermanent(err) {
				reason = dlq.ReasonPermanent
			}
			if c.deadLetter(dctx, m, tries, reason, err, log) {
				// The rest of held continue in order: reprocess them now.
				rest := held[1:]
				if len(rest) == 0 {
					return nil
				}
				return c.handle(ctx, rest, log)
			}
			// Could not store the dead letter: keep retrying to store it.
		} else {
			delay := c.cfg.Retry.Backoff[min(tries-1, len(c.cfg.Retry.Backoff)-1)]
			log.Warn("consumer: handler failed; retrying in order", "msg_id", m.ID, "subject", m.Subject,
				"attempt", tries, "max_deliver", c.cfg.Retry.MaxDeliver, "retry_in", delay, "held", len(held), "error", err)
			if !c.wait(ctx, held, delay) {
				return held
			}
		}
		if err = c.apply(ctx, []*Message{m}); err == nil {
			c.ack(ctx, []*Message{m})
			rest := held[1:]
			if len(rest) == 0 {
				return nil
			}
			return c.handle(ctx, rest, log)
		}
	}
}

// wait sleeps d while telling the broker the held messages are in progress.
// It returns false when ctx ends first.
func (c *Consumer) wait(ctx context.Context, held []*Message, d time.Duration) bool {
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
		case <-timer.C:
			return true
		}
	}
}

// deadLetter stores m in the DLQ and then terminates it.
func (c *Consumer) deadLetter(ctx context.Context, m *Message, tries int, reason string, cause error, log *slog.Logger) bool {
	id, err := dlq.DeadLetter(ctx, c.pool, dlq.Failure{
		Consumer: c.cfg.Name, MsgID: m.ID, Subject: originalSubject(m), Stream: m.Stream, StreamSeq: m.StreamSeq,
		Deliveries: tries, Err: cause.Error(), Event: m.Data,
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
	ids := make([]string, len(msgs))
	var retried []string
	for i, m := range msgs {
		ids[i] = m.ID
		if m.NumDelivered > 1 || m.Replay || m.failedHere {
			retried = append(retried, m.ID)
		}
	}
	spans := make([]trace.Span, len(msgs))
	for i, m := range msgs {
		m.ctx, spans[i] = telemetry.Tracer().Start(telemetry.Extract(tctx, m.Header), "consume "+c.cfg.Name,
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", m.Subject),
				attribute.String("messaging.message.id", m.ID),
				attribute.Int64("messaging.nats.delivered", int64(m.NumDelivered))))
	}
	var fresh []*Message
	err := pgx.BeginFunc(tctx, c.pool, func(tx pgx.Tx) error {
		newIDs, err := consumerdb.New(tx).ClaimMessages(tctx, consumerdb.ClaimMessagesParams{Consumer: c.cfg.Name, MsgIds: ids})
		if err != nil {
			return fmt.Errorf("idempotency record: %w", err)
		}
		isNew := make(map[string]bool, len(newIDs))
		for _, id := range newIDs {
			isNew[id] = true
		}
		fresh = fresh[:0]
		for _, m := range msgs {
			if isNew[m.ID] {
				fresh = append(fresh, m)
				delete(isNew, m.ID) // a copy later in the same batch is a duplicate
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
		c.processed.Add(int64(len(fresh)))
		c.skipped.Add(int64(len(msgs) - len(fresh)))
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
