// Package consumer is the runtime every PROST consumer (governance, rules,
// billing, factory) is built on: a durable JetStream pull consumer whose
// handler runs inside a Postgres transaction together with the consumer's
// idempotency record.
//
// Guarantees:
//   - Effectively once: for each message the runtime inserts (consumer,
//     message id) into consumer_processed in the same transaction as the
//     handler's writes, and acknowledges the message only after that
//     transaction committed. A redelivered message whose record exists is
//     acknowledged and skipped, so a crash anywhere (before commit, between
//     commit and ack, a lost ack) never applies a message twice nor loses it.
//   - The message id is the Nats-Msg-Id header the relay sets (the event's
//     stable id), so a republished copy is recognised too.
//   - Batching: messages that arrive together are handled in one transaction.
//     If that transaction fails, each message is retried in a transaction of
//     its own, so one bad message never blocks or fails the others.
//   - Failures: a handler error makes the message be redelivered after a
//     backoff (NakWithDelay); an error wrapped with Permanent terminates it
//     (Term). The broker stops redelivering after MaxDeliver attempts.
//   - Shutdown: when Run's context ends, the runtime stops pulling, finishes
//     the transaction in flight, hands back (Nak) what it had buffered, and
//     returns.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/consumer/internal/consumerdb"
	"github.com/prost-platform/prost/pkg/subjects"
)

// Message is one delivered event.
type Message struct {
	// ID is the idempotency key: the Nats-Msg-Id header, or the stream and
	// sequence when a publisher set none.
	ID      string
	Subject string
	Header  nats.Header
	// Data is the structured-mode CloudEvent JSON.
	Data []byte
	// Stream and StreamSeq locate the message; NumDelivered counts deliveries (1 = first).
	Stream       string
	StreamSeq    uint64
	NumDelivered uint64

	msg jetstream.Msg
}

// Handler applies msgs inside tx. It sees each message at most once per
// successful commit; returning an error rolls tx back.
type Handler func(ctx context.Context, tx pgx.Tx, msgs []*Message) error

// permanentError marks an error that no retry can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the runtime terminates the message instead of
// redelivering it.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was wrapped with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Config describes a consumer. Name is required.
type Config struct {
	// Name is the durable consumer name and the idempotency namespace.
	Name string
	// Stream is the JetStream stream. Defaults to "PROST_EVENTS".
	Stream string
	// FilterSubjects selects messages. Defaults to every event subject.
	FilterSubjects []string
	// BatchSize caps the messages handled in one transaction. Defaults to 100.
	BatchSize int
	// AckWait is how long the broker waits for an ack before redelivering.
	// Defaults to 30s.
	AckWait time.Duration
	// MaxDeliver is the most deliveries of one message. Defaults to 10.
	MaxDeliver int
	// Backoff is the redelivery delay after the n-th failed delivery (the
	// last entry repeats). Defaults to 1s, 5s, 30s, 2m, 10m.
	Backoff []time.Duration
	// Logger receives failures. Defaults to discarding.
	Logger *slog.Logger
}

// Consumer runs a Handler over a durable JetStream consumer.
type Consumer struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	cfg  Config
	h    Handler

	processed atomic.Int64
	skipped   atomic.Int64
	failed    atomic.Int64
}

// New returns a Consumer. It talks to no server until Run.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config, h Handler) (*Consumer, error) {
	if cfg.Name == "" {
		return nil, errors.New("consumer: Name is required")
	}
	if h == nil {
		return nil, errors.New("consumer: a handler is required")
	}
	if cfg.Stream == "" {
		cfg.Stream = "PROST_EVENTS"
	}
	if len(cfg.FilterSubjects) == 0 {
		cfg.FilterSubjects = []string{subjects.All}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 10
	}
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Consumer{pool: pool, js: js, cfg: cfg, h: h}, nil
}

// Processed counts messages applied; Skipped, redeliveries skipped as already
// applied; Failed, deliveries that failed.
func (c *Consumer) Processed() int64 { return c.processed.Load() }

// Skipped counts redelivered messages that had already been applied.
func (c *Consumer) Skipped() int64 { return c.skipped.Load() }

// Failed counts deliveries whose handling failed.
func (c *Consumer) Failed() int64 { return c.failed.Load() }

// Name is the consumer's durable name.
func (c *Consumer) Name() string { return c.cfg.Name }

// Run declares the durable consumer and processes messages until ctx ends;
// it then drains (see the package doc) and returns nil. It returns an error
// only when the consumer cannot be declared.
func (c *Consumer) Run(ctx context.Context) error {
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, jetstream.ConsumerConfig{
			Durable:        c.cfg.Name,
			FilterSubjects: c.cfg.FilterSubjects,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        c.cfg.AckWait,
			MaxDeliver:     c.cfg.MaxDeliver,
			MaxAckPending:  max(1000, 4*c.cfg.BatchSize),
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		c.cfg.Logger.Warn("consumer: declare failed; retrying", "consumer", c.cfg.Name, "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}

	buf := make(chan jetstream.Msg, 2*c.cfg.BatchSize)
	stopping := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case buf <- m:
		case <-stopping:
			_ = m.Nak()
		}
	},
		jetstream.PullMaxMessages(2*c.cfg.BatchSize),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.cfg.Logger.Debug("consumer: pull", "consumer", c.cfg.Name, "error", err)
		}))
	if err != nil {
		return fmt.Errorf("consumer %s: consume: %w", c.cfg.Name, err)
	}

	batch := make([]jetstream.Msg, 0, c.cfg.BatchSize)
	for {
		select {
		case <-ctx.Done():
			close(stopping)
			cc.Stop()
			<-cc.Closed()
			for {
				select {
				case m := <-buf:
					_ = m.Nak()
				default:
					return nil
				}
			}
		case m := <-buf:
			batch = append(batch[:0], m)
		fill:
			for len(batch) < c.cfg.BatchSize {
				select {
				case m := <-buf:
					batch = append(batch, m)
				default:
					break fill
				}
			}
			c.handle(context.WithoutCancel(ctx), batch)
		}
	}
}

func (c *Consumer) handle(ctx context.Context, batch []jetstream.Msg) {
	msgs := make([]*Message, len(batch))
	for i, m := range batch {
		msgs[i] = toMessage(m)
	}
	if err := c.apply(ctx, msgs); err == nil || len(msgs) == 1 {
		c.settle(msgs, err)
		return
	}
	for _, m := range msgs {
		c.settle([]*Message{m}, c.apply(ctx, []*Message{m}))
	}
}

// apply runs one transaction: claim the ids, hand the new ones to the
// handler, commit.
func (c *Consumer) apply(ctx context.Context, msgs []*Message) error {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	var fresh []*Message
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		newIDs, err := consumerdb.New(tx).ClaimMessages(ctx, consumerdb.ClaimMessagesParams{Consumer: c.cfg.Name, MsgIds: ids})
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
		if len(fresh) == 0 {
			return nil
		}
		return c.h(ctx, tx, fresh)
	})
	if err == nil {
		c.processed.Add(int64(len(fresh)))
		c.skipped.Add(int64(len(msgs) - len(fresh)))
	}
	return err
}

// settle acknowledges after a commit, or asks for a redelivery.
func (c *Consumer) settle(msgs []*Message, err error) {
	if err == nil {
		for _, m := range msgs {
			// A lost ack only causes a redelivery, which the idempotency
			// record turns into a skip.
			_ = m.msg.Ack()
		}
		return
	}
	c.failed.Add(int64(len(msgs)))
	for _, m := range msgs {
		if IsPermanent(err) {
			c.cfg.Logger.Error("consumer: permanent failure; terminating message",
				"consumer", c.cfg.Name, "msg_id", m.ID, "subject", m.Subject, "error", err)
			_ = m.msg.TermWithReason(truncate(err.Error(), 200))
			continue
		}
		delay := c.cfg.Backoff[min(int(m.NumDelivered)-1, len(c.cfg.Backoff)-1)]
		c.cfg.Logger.Warn("consumer: handler failed; will redeliver",
			"consumer", c.cfg.Name, "msg_id", m.ID, "subject", m.Subject,
			"delivery", m.NumDelivered, "retry_in", delay, "error", err)
		_ = m.msg.NakWithDelay(delay)
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
	out.ID = m.Headers().Get(jetstream.MsgIDHeader)
	if out.ID == "" {
		out.ID = "seq:" + out.Stream + ":" + strconv.FormatUint(out.StreamSeq, 10)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
