// Package busstate keeps PROST's bus what it is: state derived from
// Postgres. Every accepted event is stored in the events table forever;
// JetStream holds a copy, published by the outbox relay. A stream can lose
// that copy: its data directory wiped or lost, a new cluster, a stream
// deleted or purged by someone with bus access, or (on a lone node that does
// not fsync every write) acknowledged writes lost to a crash. Consumers then
// never see the events they had not yet applied, and nothing else says so.
//
// A Bus does three things about it:
//
//   - It notices. The relay's leader (outbox.Config.Guard) checks the events
//     stream when it becomes the leader and every CheckInterval: it records
//     the stream's identity (its creation time, as JetStream reports it), its
//     last sequence, and, with every round it marks published
//     (outbox.Config.Acked), the highest sequence JetStream acknowledged. A
//     stream created again while it held messages, one that ends before what
//     JetStream acknowledged, or one whose recorded messages are gone before
//     their max age (a purge) has lost messages: the loss is logged as an
//     ERROR, recorded in bus_rebuilds, counted by prost_bus_losses_total, and
//     /readyz fails naming it until it is rebuilt.
//   - It rebuilds. A rebuild republishes, in the order the relay first
//     published them, every stored event published since a time, with its
//     original Nats-Msg-Id and signed as the relay signs (pkg/busauth). The
//     consumers' idempotency record (consumer_processed, never pruned) makes
//     an event a consumer had applied a skip, however long ago it was applied
//     and whether or not JetStream's duplicate window still knows it, so a
//     rebuild applies nothing twice. It runs in the relay's leader, before
//     the leader publishes anything newer, so each partition key's events
//     reach the consumers in order. With Mode auto (the default) the leader
//     rebuilds a detected loss at once, from the oldest event a consumer may
//     not have applied when the stream was last seen intact (see
//     rebuildSince); with Mode manual it stops publishing until an operator
//     asks for a rebuild (prost streams rebuild [--since T]).
//   - It re-declares. A declared stream that is missing is declared again by
//     the relay's leader; every process's readiness names a missing stream
//     (and pkg/consumer names a missing durable, and declares it again).
package busstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/busstate/internal/busdb"
	"github.com/prost-platform/prost/pkg/streams"
)

// Modes of Config.Mode.
const (
	// ModeAuto rebuilds a detected loss at once (the default).
	ModeAuto = "auto"
	// ModeManual stops the relay and fails readiness on a loss until an
	// operator asks for a rebuild.
	ModeManual = "manual"
	// ModeOff watches nothing but missing streams (for tests that point
	// several buses at one database).
	ModeOff = "off"
)

// Defaults of Config.
const (
	DefaultCheckInterval = 10 * time.Second
	// DefaultMargin is how much earlier than the oldest event a consumer may
	// not have applied a rebuild starts: it covers ingest transactions that
	// were still open at a check (they commit events recorded before it).
	DefaultMargin = 2 * time.Minute
	// DefaultWindow bounds an automatic rebuild when the events stream has
	// no max_age.
	DefaultWindow = 7 * 24 * time.Hour
	// DefaultPageSize is the events read and published at a time.
	DefaultPageSize = 500
	// DefaultAckTimeout bounds the wait for JetStream's acknowledgements of
	// one page of a rebuild.
	DefaultAckTimeout = 10 * time.Second
)

// EventsStream is the stream PROST watches for loss and rebuilds.
const EventsStream = "PROST_EVENTS"

// Causes of a rebuild.
const (
	CauseLoss    = "loss"
	CauseRequest = "request"
)

// Config tunes a Bus. The zero value watches nothing and rebuilds with the
// defaults.
type Config struct {
	// Streams are the declared streams (pkg/streams); the relay's leader
	// declares a missing one again, and readiness names it.
	Streams []jetstream.StreamConfig
	// Replicas, when positive, overrides num_replicas as streams.Options does.
	Replicas int
	// Mode is ModeAuto, ModeManual or ModeOff. Defaults to ModeAuto.
	Mode string
	// CheckInterval is how often the relay's leader checks the stream, and
	// how often readiness is computed again. Defaults to
	// DefaultCheckInterval.
	CheckInterval time.Duration
	// Window bounds how far back an automatic rebuild goes. Defaults to the
	// events stream's max_age (what the stream would still hold), or
	// DefaultWindow without one.
	Window time.Duration
	// Margin: see DefaultMargin.
	Margin time.Duration
	// Consumers names PROST's consumers (governance-audit, rules-engine,
	// ...): the durables whose unacknowledged messages a rebuild must cover
	// are theirs (<name>, <name>-p<n>). Empty counts every durable of the
	// stream.
	Consumers []string
	// Partitions is PROST_PARTITIONS: an event whose outbox row was pruned
	// is republished on the partition its key maps to now.
	Partitions int
	// OutboxRetention is PROST_OUTBOX_RETENTION: a rebuild since a time within
	// it reads the outbox only. Zero reads the events table too, always.
	OutboxRetention time.Duration
	// Signer signs republished messages (PROST_BUS_KEY).
	Signer *busauth.Signer
	// PageSize defaults to DefaultPageSize.
	PageSize int
	// AckTimeout defaults to DefaultAckTimeout.
	AckTimeout time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Bus watches and rebuilds the bus. Its methods are safe for concurrent use.
type Bus struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	cfg  Config

	guardMu   sync.Mutex
	lastGuard time.Time

	status   atomic.Pointer[Status]
	reported sync.Map // problem text -> struct{}: logged once while it lasts
}

// New returns a Bus over the database and the JetStream context.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) *Bus {
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.Margin <= 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
		for _, s := range cfg.Streams {
			if s.Name == EventsStream && s.MaxAge > 0 {
				cfg.Window = s.MaxAge
			}
		}
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Bus{pool: pool, js: js, cfg: cfg}
}

// ParseMode checks a PROST_BUS_REBUILD value.
func ParseMode(s string) (string, error) {
	switch s {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModeManual, ModeOff:
		return s, nil
	}
	return "", fmt.Errorf("must be %s, %s or %s", ModeAuto, ModeManual, ModeOff)
}

// Mode is the configured mode.
func (b *Bus) Mode() string { return b.cfg.Mode }

// Window is how far back an automatic rebuild (and a request without a
// time) goes.
func (b *Bus) Window() time.Duration { return b.cfg.Window }

// ErrAwaitingRebuild is what the relay's guard returns, in ModeManual, when
// its context ends while a loss waits for an operator's rebuild.
var ErrAwaitingRebuild = errors.New("busstate: a loss waits for a rebuild (prost streams rebuild)")

// Acked records, in the transaction that marks a relay round published, the
// highest sequence JetStream acknowledged to the round: a stream that later
// ends before it lost acknowledged messages. It is outbox.Config.Acked.
func (b *Bus) Acked(ctx context.Context, tx pgx.Tx, seq uint64) error {
	if b.cfg.Mode == ModeOff {
		return nil
	}
	return busdb.New(tx).MarkAcked(ctx, busdb.MarkAckedParams{Seq: int64(seq), Stream: EventsStream})
}

// Guard is the relay leader's check (outbox.Config.Guard): when the relay
// has just become the leader, or CheckInterval has passed since the last
// check, it declares missing streams again, compares the events stream with
// what was recorded, records a loss, runs the rebuilds waiting (ModeAuto,
// or those an operator asked for), and records the stream as it is. An
// error ends the relay's leadership round; it is retried.
//
// In ModeManual a loss blocks Guard, and with it the relay, until an
// operator asks for a rebuild and it has run, or ctx ends.
func (b *Bus) Guard(ctx context.Context, newLeader bool) error {
	b.guardMu.Lock()
	defer b.guardMu.Unlock()
	if !newLeader && time.Since(b.lastGuard) < b.cfg.CheckInterval {
		return nil
	}
	for reminded := time.Now(); ; {
		err := b.guard(ctx)
		var aw awaitingError
		if !errors.As(err, &aw) {
			if err == nil {
				b.lastGuard = time.Now()
			}
			return err
		}
		if time.Since(reminded) > time.Minute {
			reminded = time.Now()
			b.cfg.Logger.Error("bus: the relay publishes nothing until the lost messages are rebuilt: " + aw.why)
		}
		select {
		case <-ctx.Done():
			return ErrAwaitingRebuild
		case <-time.After(time.Second):
		}
	}
}

// awaitingError is what a check returns while a loss cannot be rebuilt yet:
// it waits for an operator (ModeManual), or for the end of the stream's
// duplicate window (after a purge).
type awaitingError struct{ why string }

func (e awaitingError) Error() string { return "awaiting a rebuild: " + e.why }

func (b *Bus) guard(ctx context.Context) error {
	if err := b.declareMissing(ctx); err != nil {
		return err
	}
	if b.cfg.Mode == ModeOff || !b.watches() {
		return nil
	}
	st, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		return fmt.Errorf("bus: %s: %w", EventsStream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("bus: %s: %w", EventsStream, err)
	}
	q := busdb.New(b.pool)
	now := serverNow(info)
	rec, err := q.GetStream(ctx, EventsStream)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// First contact. A new stream while the store holds events that
		// should be in it is a new (or wiped) bus that was never recorded.
		since := now.Add(-b.cfg.Window)
		if info.State.LastSeq == 0 {
			if reason, err := b.emptyButStored(ctx, since); err != nil {
				return err
			} else if reason != "" {
				if err := b.recordLoss(ctx, reason, since, nil); err != nil {
					return err
				}
			}
		}
		rs, _ := b.rebuildSince(ctx, st, now)
		if err := b.save(ctx, info, int64(info.State.LastSeq), rs); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("bus: read the recorded state: %w", err)
	default:
		published, err := q.PublishedSince(ctx, rec.CheckedAt)
		if err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		if reason, purged := lossOf(rec, info, now, published, b.cfg.Margin); reason != "" {
			since := rec.RebuildSince
			if w := now.Add(-b.cfg.Window); since.Before(w) {
				since = w
			}
			var notBefore *time.Time
			if purged {
				// A purge leaves JetStream's duplicate window in place: copies
				// sent within it would be dropped as duplicates.
				t := time.Now().Add(info.Config.Duplicates)
				notBefore = &t
			}
			if err := b.recordLoss(ctx, reason, since, notBefore); err != nil {
				return err
			}
			// The stream as it is now is what later checks compare with;
			// the loss is kept in its rebuild until that has run.
			if err := b.save(ctx, info, int64(info.State.LastSeq), rec.RebuildSince); err != nil {
				return err
			}
		} else if !sameStream(info.Created, rec.Created) {
			b.cfg.Logger.Warn("bus: the events stream was created again while it held nothing PROST needs", "stream", EventsStream)
			if err := b.save(ctx, info, int64(info.State.LastSeq), rec.RebuildSince); err != nil {
				return err
			}
		}
	}
	if err := b.runOpen(ctx); err != nil {
		return err
	}
	// Record the stream as this check leaves it, and where a rebuild after
	// a loss from now on must start.
	if info, err = st.Info(ctx); err != nil {
		return fmt.Errorf("bus: %s: %w", EventsStream, err)
	}
	rec, err = q.GetStream(ctx, EventsStream)
	if err != nil {
		return fmt.Errorf("bus: read the recorded state: %w", err)
	}
	since, ok := b.rebuildSince(ctx, st, serverNow(info))
	if !ok {
		since = rec.RebuildSince // not known now: keep the last one
	}
	return b.save(ctx, info, max(rec.AckedSeq, int64(info.State.LastSeq)), since)
}

// watches reports whether the events stream is declared.
func (b *Bus) watches() bool {
	for _, s := range b.cfg.Streams {
		if s.Name == EventsStream {
			return true
		}
	}
	return false
}

// declareMissing declares again each declared stream that does not exist.
func (b *Bus) declareMissing(ctx context.Context) error {
	for _, cfg := range b.cfg.Streams {
		_, err := b.js.Stream(ctx, cfg.Name)
		if err == nil {
			continue
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("bus: %s: %w", cfg.Name, err)
		}
		if err := streams.Ensure(ctx, b.js, []jetstream.StreamConfig{cfg}, streams.Options{Replicas: b.cfg.Replicas}); err != nil {
			return err
		}
		b.cfg.Logger.Error("bus: a declared stream was missing; declared it again", "stream", cfg.Name)
	}
	return nil
}

// save records what a check saw of the events stream.
func (b *Bus) save(ctx context.Context, info *jetstream.StreamInfo, acked int64, since time.Time) error {
	p := busdb.SaveStreamParams{Stream: EventsStream, Created: info.Created, LastSeq: int64(info.State.LastSeq),
		AckedSeq: acked, RebuildSince: since}
	// The time of the last message, while the stream holds it: an empty
	// stream holds nothing a purge could take.
	if info.State.Msgs > 0 && !info.State.LastTime.IsZero() {
		t := info.State.LastTime
		p.LastTime = &t
	}
	if err := busdb.New(b.pool).SaveStream(ctx, p); err != nil {
		return fmt.Errorf("bus: record the stream: %w", err)
	}
	return nil
}

// recordLoss opens a rebuild of cause loss and says so.
func (b *Bus) recordLoss(ctx context.Context, reason string, since time.Time, notBefore *time.Time) error {
	r, err := busdb.New(b.pool).InsertRebuild(ctx, busdb.InsertRebuildParams{Stream: EventsStream, Cause: CauseLoss,
		Reason: reason, Since: since, NotBefore: notBefore, RequestedBy: "prost"})
	if err != nil {
		return fmt.Errorf("bus: record a loss: %w", err)
	}
	what := "the relay's leader rebuilds it now (PROST_BUS_REBUILD=auto)"
	if notBefore != nil {
		what = "the relay's leader rebuilds it at " + notBefore.UTC().Format(time.RFC3339) + ", once JetStream's duplicate window has passed (PROST_BUS_REBUILD=auto)"
	}
	if b.cfg.Mode == ModeManual {
		what = "the relay publishes nothing until an operator runs: prost streams rebuild --since " + since.UTC().Format(time.RFC3339)
	}
	b.cfg.Logger.Error("bus: "+EventsStream+" lost messages it had acknowledged; "+what,
		"stream", EventsStream, "reason", reason, "rebuild", r.ID, "rebuild_since", since.UTC().Format(time.RFC3339))
	return nil
}

// lossOf says what a stream as info shows has lost since rec was recorded,
// or "", and whether it was purged (its duplicate window still knows the
// lost messages' ids). published reports whether the relay marked rows
// published since rec was recorded; now is the server's clock.
func lossOf(rec busdb.BusStream, info *jetstream.StreamInfo, now time.Time, published bool, margin time.Duration) (reason string, purged bool) {
	maxAge := info.Config.MaxAge
	st := info.State
	if !sameStream(info.Created, rec.Created) {
		// Another stream under the same name. It lost what the old one held
		// and had not yet expired, and whatever was published since.
		// (last_time is recorded only while the stream holds messages.)
		held := rec.LastSeq > 0 && rec.LastTime != nil && (maxAge <= 0 || rec.LastTime.Add(maxAge).After(now))
		if held || published || rec.AckedSeq > rec.LastSeq {
			return fmt.Sprintf("the stream was created again at %s (the one created at %s held messages up to sequence %d)",
				info.Created.UTC().Format(time.RFC3339), rec.Created.UTC().Format(time.RFC3339), max(rec.LastSeq, rec.AckedSeq)), false
		}
		return "", false
	}
	if high := max(rec.LastSeq, rec.AckedSeq); int64(st.LastSeq) < high {
		return fmt.Sprintf("the stream ends at sequence %d, but JetStream had acknowledged messages up to sequence %d", st.LastSeq, high), false
	}
	if rec.LastSeq > 0 && int64(st.FirstSeq) > rec.LastSeq && rec.LastTime != nil &&
		(maxAge <= 0 || rec.LastTime.Add(maxAge-margin).After(now)) {
		return fmt.Sprintf("the stream starts at sequence %d: messages up to sequence %d were removed before their max age (purged)",
			st.FirstSeq, rec.LastSeq), true
	}
	return "", false
}

// emptyButStored says why an empty events stream seen for the first time
// has lost messages: the relay marked rows published since, or "".
func (b *Bus) emptyButStored(ctx context.Context, since time.Time) (string, error) {
	published, err := busdb.New(b.pool).PublishedOrPrunedSince(ctx, since)
	if err != nil {
		return "", fmt.Errorf("bus: %w", err)
	}
	if published == nil || !*published {
		return "", nil
	}
	return "the stream is new and empty, but the relay published events into it since " + since.UTC().Format(time.RFC3339) +
		" (a new or wiped NATS server)", nil
}

// rebuildSince is where a rebuild must start to republish every event a
// loss at this moment could take from a consumer: the oldest of the event
// of the oldest message one of PROST's durables has not acknowledged, the
// oldest outbox row still waiting for the relay, and now, less Margin. ok is
// false when it could not be read.
func (b *Bus) rebuildSince(ctx context.Context, st jetstream.Stream, now time.Time) (time.Time, bool) {
	q := busdb.New(b.pool)
	since := now
	oldest, err := q.OldestPending(ctx, now)
	if err != nil {
		return time.Time{}, false
	}
	since = earlier(since, oldest)
	var floor uint64
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() { // read it all: stopping early blocks the lister
		if !b.ours(ci.Name) || ci.NumPending == 0 && ci.NumAckPending == 0 {
			continue
		}
		if s := ci.AckFloor.Stream + 1; floor == 0 || s < floor {
			floor = s
		}
	}
	if lister.Err() != nil {
		return time.Time{}, false
	}
	if floor > 0 {
		t, ok := b.eventTime(ctx, st, floor)
		if !ok {
			return time.Time{}, false
		}
		since = earlier(since, t)
	}
	return since.Add(-b.cfg.Margin), true
}

// eventTime is when the event of the first message at or after seq was
// stored (the message's time when it is not one of the store's events).
func (b *Bus) eventTime(ctx context.Context, st jetstream.Stream, seq uint64) (time.Time, bool) {
	m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
	if err != nil {
		return time.Time{}, false
	}
	var e struct {
		ID       string `json:"id"`
		Source   string `json:"source"`
		TenantID string `json:"tenantid"`
	}
	if json.Unmarshal(m.Data, &e) == nil {
		if tenant, err := uuid.Parse(e.TenantID); err == nil {
			t, err := busdb.New(b.pool).EventRecordedAt(ctx, busdb.EventRecordedAtParams{TenantID: tenant, Source: e.Source, ID: e.ID})
			if err == nil {
				return t, true
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return time.Time{}, false
			}
		}
	}
	return m.Time, true
}

// ours reports whether a durable of the events stream is one of PROST's
// consumers' (Config.Consumers).
func (b *Bus) ours(name string) bool {
	if len(b.cfg.Consumers) == 0 {
		return true
	}
	for _, c := range b.cfg.Consumers {
		if name == c || strings.HasPrefix(name, c+"-p") {
			return true
		}
	}
	return false
}

// sameStream reports whether two creation times are one stream's: the
// recorded one went through Postgres, which keeps microseconds.
func sameStream(a, b time.Time) bool { return a.Sub(b).Abs() < time.Millisecond }

// serverNow is the server's clock at info, else this machine's.
func serverNow(info *jetstream.StreamInfo) time.Time {
	if !info.TimeStamp.IsZero() {
		return info.TimeStamp
	}
	return time.Now()
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
