package busstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/busstate/internal/busdb"
)

// Status is what PROST knows of its bus.
type Status struct {
	// Mode is PROST_BUS_REBUILD.
	Mode    string         `json:"mode"`
	Streams []StreamStatus `json:"streams"`
	// Rebuilds are the latest detected losses and rebuilds, newest first.
	Rebuilds []Rebuild `json:"rebuilds"`
	// Problems is what makes readiness fail; empty when none.
	Problems []string `json:"problems"`
	// LossesOpen and LossesTotal count, per stream, the losses not yet
	// rebuilt (recorded, or seen and not yet recorded) and every loss
	// recorded.
	LossesOpen  map[string]int64 `json:"-"`
	LossesTotal map[string]int64 `json:"-"`
	// CheckedAt is when this status was read.
	CheckedAt time.Time `json:"checked_at"`

	// losses are the Problems about lost messages (Ready checks the
	// streams' existence itself, at once).
	losses []string
}

// StreamStatus is one declared stream.
type StreamStatus struct {
	Name     string     `json:"name"`
	Exists   bool       `json:"exists"`
	Created  *time.Time `json:"created"`
	Messages uint64     `json:"messages"`
	FirstSeq uint64     `json:"first_seq"`
	LastSeq  uint64     `json:"last_seq"`
	// Recorded is what the relay's leader last recorded of the stream
	// (the events stream only).
	Recorded *Recorded `json:"recorded,omitempty"`
	// Loss is what the stream has lost, seen here and not yet recorded by
	// the relay's leader ("" when nothing).
	Loss string `json:"loss,omitempty"`
}

// Recorded is the bus_streams row of a stream.
type Recorded struct {
	Created      time.Time `json:"created"`
	LastSeq      int64     `json:"last_seq"`
	AckedSeq     int64     `json:"acked_seq"`
	RebuildSince time.Time `json:"rebuild_since"`
	CheckedAt    time.Time `json:"checked_at"`
}

// Status reads the bus's state now: each declared stream, what was
// recorded, the rebuilds, and the problems readiness reports.
func (b *Bus) Status(ctx context.Context) (Status, error) {
	q := busdb.New(b.pool)
	out := Status{Mode: b.cfg.Mode, Streams: []StreamStatus{}, Rebuilds: []Rebuild{}, Problems: []string{},
		LossesOpen: map[string]int64{}, LossesTotal: map[string]int64{}, CheckedAt: time.Now().UTC()}
	// The record first, then the stream: what the relay acknowledged after
	// the record was read is in the stream read after it.
	rec, err := q.GetStream(ctx, EventsStream)
	hasRec := err == nil
	if err != nil && !isNoRows(err) {
		return out, fmt.Errorf("bus: %w", err)
	}
	for _, cfg := range b.cfg.Streams {
		ss := StreamStatus{Name: cfg.Name}
		st, err := b.js.Stream(ctx, cfg.Name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(ctx)
		}
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			out.Problems = append(out.Problems, fmt.Sprintf("stream %s is missing (the relay's leader declares it again)", cfg.Name))
		case err != nil:
			return out, fmt.Errorf("bus: %s: %w", cfg.Name, err)
		default:
			created := info.Created.UTC()
			ss.Exists, ss.Created, ss.Messages, ss.FirstSeq, ss.LastSeq = true, &created, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq
		}
		if cfg.Name == EventsStream && hasRec && b.cfg.Mode != ModeOff {
			ss.Recorded = &Recorded{Created: rec.Created.UTC(), LastSeq: rec.LastSeq, AckedSeq: rec.AckedSeq,
				RebuildSince: rec.RebuildSince.UTC(), CheckedAt: rec.CheckedAt.UTC()}
			if info != nil {
				published, err := q.PublishedSince(ctx, rec.CheckedAt)
				if err != nil {
					return out, fmt.Errorf("bus: %w", err)
				}
				ss.Loss, _ = lossOf(rec, info, serverNow(info), published, b.cfg.Margin)
			}
		}
		out.Streams = append(out.Streams, ss)
	}
	rows, err := q.ListRebuilds(ctx, 20)
	if err != nil {
		return out, fmt.Errorf("bus: %w", err)
	}
	for _, r := range rows {
		out.Rebuilds = append(out.Rebuilds, fromRow(r))
	}
	open, err := q.OpenRebuilds(ctx, EventsStream)
	if err != nil {
		return out, fmt.Errorf("bus: %w", err)
	}
	counts, err := q.CountLosses(ctx)
	if err != nil {
		return out, fmt.Errorf("bus: %w", err)
	}
	for _, c := range counts {
		out.LossesOpen[c.Stream], out.LossesTotal[c.Stream] = c.Open, c.Total
	}
	recorded := false
	for _, r := range open {
		if r.Cause != CauseLoss {
			continue
		}
		recorded = true
		what := "the relay's leader is rebuilding it"
		switch {
		case b.cfg.Mode == ModeManual && r.StartedAt == nil:
			what = "waiting for an operator: prost streams rebuild --since " + r.Since.UTC().Format(time.RFC3339)
		case r.NotBefore != nil && r.StartedAt == nil && time.Now().Before(*r.NotBefore):
			what = "the relay's leader rebuilds it at " + r.NotBefore.UTC().Format(time.RFC3339) + ", once JetStream's duplicate window has passed"
		case r.StartedAt == nil:
			what = "the relay's leader rebuilds it"
		}
		if r.LastError != "" {
			what += "; last attempt failed: " + r.LastError
		}
		out.losses = append(out.losses, fmt.Sprintf("%s lost messages it had acknowledged: %s (detected %s, rebuild %d: %s, %d republished)",
			r.Stream, r.Reason, r.CreatedAt.UTC().Format(time.RFC3339), r.ID, what, r.Republished))
	}
	for _, ss := range out.Streams {
		if ss.Loss != "" && !recorded {
			out.LossesOpen[ss.Name]++
			out.losses = append(out.losses, fmt.Sprintf("%s lost messages it had acknowledged: %s (not yet recorded: the relay's leader records and rebuilds it at its next check)",
				ss.Name, ss.Loss))
		}
	}
	out.Problems = append(out.Problems, out.losses...)
	return out, nil
}

// Run computes the status every CheckInterval for Ready and the metrics,
// logging each problem once as an ERROR when it appears, until ctx ends.
func (b *Bus) Run(ctx context.Context) error {
	for {
		b.refresh(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(b.cfg.CheckInterval):
		}
	}
}

func (b *Bus) refresh(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := b.Status(cctx)
	if err != nil {
		if ctx.Err() == nil {
			b.cfg.Logger.Warn("bus: cannot read the bus's state", "error", err)
		}
		return // keep the last status
	}
	b.status.Store(&st)
	seen := map[string]bool{}
	for _, p := range st.Problems {
		key := problemKey(p)
		seen[key] = true
		if _, loaded := b.reported.LoadOrStore(key, struct{}{}); !loaded {
			b.cfg.Logger.Error("bus: not ready: " + p)
		}
	}
	b.reported.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			b.reported.Delete(k)
			b.cfg.Logger.Info("bus: resolved: " + k.(string))
		}
		return true
	})
}

// problemKey is the stable part of a problem (its progress left out).
func problemKey(p string) string {
	if i := strings.Index(p, " (detected "); i > 0 {
		return p[:i]
	}
	if i := strings.Index(p, " (not yet recorded"); i > 0 {
		return p[:i]
	}
	return p
}

// Ready returns nil, or an error naming what is wrong with the bus: a
// declared stream that is missing (asked of JetStream now), or a loss not
// yet rebuilt (as of the last status, see Run).
func (b *Bus) Ready(ctx context.Context) error {
	var problems []string
	for _, cfg := range b.cfg.Streams {
		if _, err := b.js.Stream(ctx, cfg.Name); errors.Is(err, jetstream.ErrStreamNotFound) {
			problems = append(problems, fmt.Sprintf("stream %s is missing (the relay's leader declares it again)", cfg.Name))
		}
	}
	if st := b.status.Load(); st != nil {
		problems = append(problems, st.losses...)
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// Losses reports, per stream, the losses not yet rebuilt and every loss
// recorded, as of the last status (for prost_bus_loss_detected and
// prost_bus_losses_total).
func (b *Bus) Losses() (open, total map[string]int64) {
	open, total = map[string]int64{}, map[string]int64{}
	if st := b.status.Load(); st != nil {
		for k, v := range st.LossesOpen {
			open[k] = v
		}
		for k, v := range st.LossesTotal {
			total[k] = v
		}
	}
	return open, total
}

// Streams names the declared streams.
func (b *Bus) Streams() []string {
	out := make([]string, len(b.cfg.Streams))
	for i, s := range b.cfg.Streams {
		out[i] = s.Name
	}
	return out
}
