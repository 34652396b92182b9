package busstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/busstate/internal/busdb"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/subjects"
)

// Rebuild is one detected loss or requested rebuild of a stream.
type Rebuild struct {
	ID     int64  `json:"id"`
	Stream string `json:"stream"`
	// Cause is CauseLoss (PROST detected it) or CauseRequest (an operator
	// asked).
	Cause string `json:"cause"`
	// Reason is what was detected, or why it was asked for.
	Reason string `json:"reason"`
	// Since: every event published since then is republished.
	Since time.Time `json:"since"`
	// NotBefore: it does not start before then (after a purge, JetStream
	// drops copies within its duplicate window).
	NotBefore   *time.Time `json:"not_before"`
	RequestedBy string     `json:"requested_by"`
	CreatedAt   time.Time  `json:"created_at"`
	// State is waiting, running or done.
	State      string     `json:"state"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// ResolvedBy is the rebuild that resolved this loss, when another one
	// did (a request resolves the losses detected before it).
	ResolvedBy *int64 `json:"resolved_by"`
	// Republished and Refused count the events sent again, and those the
	// bus refused for good (they are dead-lettered already).
	Republished int64  `json:"republished"`
	Refused     int64  `json:"refused"`
	LastError   string `json:"last_error"`
}

func fromRow(r busdb.BusRebuild) Rebuild {
	out := Rebuild{ID: r.ID, Stream: r.Stream, Cause: r.Cause, Reason: r.Reason, Since: r.Since.UTC(), RequestedBy: r.RequestedBy,
		NotBefore: r.NotBefore, CreatedAt: r.CreatedAt.UTC(), StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, ResolvedBy: r.ResolvedBy,
		Republished: r.Republished, Refused: r.Refused, LastError: r.LastError, State: "waiting"}
	switch {
	case r.FinishedAt != nil:
		out.State = "done"
	case r.StartedAt != nil:
		out.State = "running"
	}
	return out
}

// ErrNoSuchRebuild is answered for an unknown rebuild id.
var ErrNoSuchRebuild = problem.Errorf(problem.NotFound, "no such rebuild")

// Request asks the relay's leader to republish every event published since
// a time (the zero time: the window, see Config.Window) on the events
// stream. The leader runs it at its next check, before it publishes
// anything newer; in ModeManual, it resolves the losses detected before it.
func (b *Bus) Request(ctx context.Context, since time.Time, actor string) (Rebuild, error) {
	if !b.watches() {
		return Rebuild{}, problem.Errorf(problem.Conflict, "the %s stream is not declared here", EventsStream)
	}
	now := time.Now()
	if since.IsZero() {
		since = now.Add(-b.cfg.Window)
	}
	if since.After(now) {
		return Rebuild{}, problem.On(problem.Invalid, "since", "must not be in the future")
	}
	r, err := busdb.New(b.pool).InsertRebuild(ctx, busdb.InsertRebuildParams{Stream: EventsStream, Cause: CauseRequest,
		Reason: "requested by " + actor, Since: since, RequestedBy: actor})
	if err != nil {
		return Rebuild{}, fmt.Errorf("bus: request a rebuild: %w", err)
	}
	b.cfg.Logger.Info("bus: rebuild requested", "rebuild", r.ID, "since", since.UTC().Format(time.RFC3339), "by", actor)
	return fromRow(r), nil
}

// GetRebuild returns one rebuild.
func (b *Bus) GetRebuild(ctx context.Context, id int64) (Rebuild, error) {
	r, err := busdb.New(b.pool).GetRebuild(ctx, id)
	if err != nil {
		if isNoRows(err) {
			return Rebuild{}, ErrNoSuchRebuild
		}
		return Rebuild{}, err
	}
	return fromRow(r), nil
}

// runOpen runs the open rebuilds of the events stream in order. In
// ModeManual a loss waits for a request made after it (which resolves it);
// it returns an awaitingError while none is, or while the next rebuild's
// not_before is ahead.
func (b *Bus) runOpen(ctx context.Context) error {
	q := busdb.New(b.pool)
	for {
		open, err := q.OpenRebuilds(ctx, EventsStream)
		if err != nil {
			return fmt.Errorf("bus: read the rebuilds: %w", err)
		}
		next := -1
		for i, r := range open {
			if r.Cause == CauseLoss && b.cfg.Mode == ModeManual {
				if !slices.ContainsFunc(open[i+1:], func(l busdb.BusRebuild) bool { return l.Cause == CauseRequest }) {
					return awaitingError{fmt.Sprintf("loss %d: %s; run prost streams rebuild --since %s (PROST_BUS_REBUILD=manual)",
						r.ID, r.Reason, r.Since.UTC().Format(time.RFC3339))}
				}
				continue
			}
			next = i
			break
		}
		if next < 0 {
			return nil
		}
		if nb := open[next].NotBefore; nb != nil && time.Now().Before(*nb) {
			return awaitingError{fmt.Sprintf("rebuild %d starts at %s, once JetStream's duplicate window has passed since the purge",
				open[next].ID, nb.UTC().Format(time.RFC3339))}
		}
		if err := b.run(ctx, open[next]); err != nil {
			return err
		}
	}
}

// run runs one rebuild from where it stands.
func (b *Bus) run(ctx context.Context, r busdb.BusRebuild) error {
	q := busdb.New(b.pool)
	if err := q.StartRebuild(ctx, r.ID); err != nil {
		return fmt.Errorf("bus: start rebuild %d: %w", r.ID, err)
	}
	log := b.cfg.Logger.With("stream", r.Stream, "rebuild", r.ID, "cause", r.Cause)
	log.Info("bus: rebuilding: republishing the events published since", "since", r.Since.UTC().Format(time.RFC3339), "from", r.Cursor)
	began := time.Now()
	pos := position{cursor: r.Cursor, republished: r.Republished, refused: r.Refused}
	err := b.Republish(ctx, r.Since, &pos, func(p position) error {
		return q.RebuildProgress(ctx, busdb.RebuildProgressParams{ID: r.ID, Cursor: p.cursor, Republished: p.republished, Refused: p.refused})
	})
	if err != nil {
		_ = q.RebuildFailed(context.WithoutCancel(ctx), busdb.RebuildFailedParams{ID: r.ID, LastError: err.Error()})
		return fmt.Errorf("bus: rebuild %d: %w", r.ID, err)
	}
	if err := q.FinishRebuild(ctx, busdb.FinishRebuildParams{ID: r.ID, Stream: r.Stream}); err != nil {
		return fmt.Errorf("bus: finish rebuild %d: %w", r.ID, err)
	}
	log.Info("bus: rebuild done", "republished", pos.republished, "refused", pos.refused, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// position is where a rebuild is: a cursor, and what it has sent so far.
type position struct {
	cursor               string
	republished, refused int64
}

// Republish sends every stored event published since a time to the events
// stream again, from pos on, calling progress after each page. Events whose
// outbox rows were pruned (published before PROST_OUTBOX_RETENTION) come
// first, in store order, on the partition their key maps to now; then the
// rows the outbox keeps, in the order the relay published them, on their
// own subjects. Each message carries its event's Nats-Msg-Id and is signed
// as the relay signs; JetStream drops a copy within its duplicate window, a
// consumer's idempotency record every other. A row the bus refuses for good
// is counted and skipped. The caller must be the relay's leader, so nothing
// newer is published meanwhile.
func (b *Bus) Republish(ctx context.Context, since time.Time, pos *position, progress func(position) error) error {
	q := busdb.New(b.pool)
	phase, after, err := parseCursor(pos.cursor)
	if err != nil {
		return err
	}
	if phase == 'a' {
		// Within the outbox's retention every published row is kept.
		if b.cfg.OutboxRetention <= 0 || since.Before(time.Now().Add(-b.cfg.OutboxRetention)) {
			before, err := q.MinKeptEventSeq(ctx)
			if err != nil {
				return err
			}
			for {
				rows, err := q.PrunedEventsPage(ctx, busdb.PrunedEventsPageParams{AfterSeq: after, BeforeSeq: before, Since: since, MaxRows: int32(b.cfg.PageSize)})
				if err != nil {
					return err
				}
				msgs := make([]pubMsg, len(rows))
				for i, r := range rows {
					key := r.Source + "\x00" + r.ID
					if r.PartitionKey != nil && *r.PartitionKey != "" {
						key = *r.PartitionKey
					}
					msgs[i] = b.message(subjects.Event(r.TenantID, subjects.Partition(key, b.cfg.Partitions), r.Type),
						r.TenantID, r.Source, r.ID, r.PartitionKey, r.Envelope, nil, nil)
				}
				if err := b.publishPage(ctx, msgs, pos); err != nil {
					return err
				}
				if len(rows) > 0 {
					after = rows[len(rows)-1].Seq
				}
				if len(rows) < b.cfg.PageSize {
					break
				}
				pos.cursor = "a:" + strconv.FormatInt(after, 10)
				if err := progress(*pos); err != nil {
					return err
				}
			}
		}
		phase, after = 'b', 0
		pos.cursor = "b:0"
		if err := progress(*pos); err != nil {
			return err
		}
	}
	for {
		rows, err := q.PublishedRowsPage(ctx, busdb.PublishedRowsPageParams{AfterID: after, Since: &since, MaxRows: int32(b.cfg.PageSize)})
		if err != nil {
			return err
		}
		msgs := make([]pubMsg, len(rows))
		for i, r := range rows {
			msgs[i] = b.message(r.Subject, r.TenantID, r.Source, r.EventID, r.PartitionKey, r.Envelope, r.Traceparent, r.Tracestate)
		}
		if err := b.publishPage(ctx, msgs, pos); err != nil {
			return err
		}
		if len(rows) > 0 {
			after = rows[len(rows)-1].ID
		}
		pos.cursor = "b:" + strconv.FormatInt(after, 10)
		if err := progress(*pos); err != nil {
			return err
		}
		if len(rows) < b.cfg.PageSize {
			return nil
		}
	}
}

// pubMsg is one message of a rebuild and its order key.
type pubMsg struct {
	key, id string
	msg     *nats.Msg
}

func (b *Bus) message(subject string, tenant uuid.UUID, source, id string, pkey *string, envelope []byte, tp, ts *string) pubMsg {
	msg := outbox.Message(subject, envelope, deref(tp), deref(ts))
	msgID := subjects.MsgID(tenant, source, id)
	if b.cfg.Signer != nil {
		b.cfg.Signer.Sign(msg.Header, msg.Subject, msgID, msg.Data)
	}
	key := ""
	if pkey != nil && *pkey != "" {
		key = tenant.String() + "\x00" + *pkey
	}
	return pubMsg{key: key, id: msgID, msg: msg}
}

// publishPage publishes msgs asynchronously and waits for every ack. As the
// relay does, a message waits for the ack of the previous one with its key,
// so a publish JetStream stores late can never land behind a later one of
// its key. A refusal for good is counted and skipped; any other failure
// ends the page (the caller starts it again: JetStream drops the copies).
func (b *Bus) publishPage(ctx context.Context, msgs []pubMsg, pos *position) error {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	results := make([]error, len(msgs))
	wait := func(i int) error {
		if results[i] != nil || futures[i] == nil {
			return results[i]
		}
		timeout := time.NewTimer(b.cfg.AckTimeout)
		defer timeout.Stop()
		select {
		case <-futures[i].Ok():
			results[i] = errAcked
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
	for i, m := range msgs {
		if j, ok := inFlight[m.key]; ok && m.key != "" {
			if err := wait(j); err != errAcked && !outbox.Refused(err) {
				return fmt.Errorf("republish: %w", err)
			}
		}
		if len(m.msg.Subject) > subjects.MaxLen {
			results[i] = errSubjectTooLong
			continue
		}
		f, err := b.js.PublishMsgAsync(m.msg, jetstream.WithMsgID(m.id))
		if err != nil {
			if outbox.Refused(err) {
				results[i] = err
				continue
			}
			return fmt.Errorf("republish: %w", err)
		}
		futures[i] = f
		inFlight[m.key] = i
	}
	var sent, refused int64
	for i := range msgs {
		switch err := wait(i); {
		case err == errAcked:
			sent++
		case err == errSubjectTooLong || outbox.Refused(err):
			refused++
		default:
			return fmt.Errorf("republish: %w", err)
		}
	}
	pos.republished += sent
	pos.refused += refused
	return nil
}

var (
	errAcked          = errors.New("acknowledged")
	errSubjectTooLong = errors.New("the subject is too long for the bus")
)

// parseCursor reads "a:<event seq>" (events whose outbox rows were pruned)
// or "b:<outbox id>" (rows kept); "" is the start.
func parseCursor(c string) (byte, int64, error) {
	if c == "" {
		return 'a', 0, nil
	}
	phase, n, ok := strings.Cut(c, ":")
	v, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || phase != "a" && phase != "b" {
		return 0, 0, fmt.Errorf("bus: bad rebuild cursor %q", c)
	}
	return phase[0], v, nil
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
