package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	ctStructured = "application/cloudevents+json"
	ctBatch      = "application/cloudevents-batch+json"
)

// Ingest is one closed-loop PROST ingest step.
type Ingest struct {
	Clients          int     `json:"clients"`
	EventsPerRequest int     `json:"events_per_request"`
	EventsPerSec     float64 `json:"events_per_s"`
	RequestsPerSec   float64 `json:"requests_per_s"`
	// Latency is request to 202, counting 202 answers only.
	Latency *Latency `json:"latency"`
	// Non202 counts the other answers by status ("transport error" for none).
	Non202 map[string]int64 `json:"non_202"`
	// CPU is the cores each party kept busy during the step.
	CPU *CPUShare `json:"cpu"`
	// Profile splits PROST's CPU by component (single-event step only).
	Profile *CPUProfile `json:"cpu_profile,omitempty"`
	// DrainAfter is how long the relay and audit consumer took to catch up
	// with everything accepted, after the step.
	DrainAfter *Drain `json:"drain_after"`
}

// Drain is a wait for PROST's pipeline to catch up with ingest.
type Drain struct {
	Seconds  float64 `json:"seconds"`
	Complete bool    `json:"complete"`
}

// Pipeline is the sustained rate of one stage behind the gateway (relay or
// audit consumer), measured from the start of the batched step until the
// stage caught up with ingest (or RelayWindowCap after the step).
type Pipeline struct {
	WindowSeconds float64 `json:"window_s"`
	PerSec        float64 `json:"per_s"`
	// Backlogged is true when the stage had more than backlogThreshold
	// events waiting in every sample before the window ended: PerSec is then
	// the stage's own ceiling, not the rate of the work it was given.
	Backlogged bool  `json:"backlogged"`
	CaughtUp   bool  `json:"caught_up"`
	MaxBacklog int64 `json:"max_backlog"`
	// AfterStepPerSec is the rate from the end of the step to the end of the
	// window: the stage alone, without ingest competing for the CPU.
	AfterStepPerSec *float64 `json:"after_step_per_s"`
	// DuringStepPerSec is the rate from the start of the step to its end,
	// while ingest competed for the CPU.
	DuringStepPerSec *float64 `json:"during_step_per_s"`
}

// runSingle is single-event structured-mode ingest at cfg.SingleClients.
func runSingle(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc) *Ingest {
	log.Info("prost: single-event ingest", "clients", cfg.SingleClients, "duration", cfg.Duration)
	bufs := make([][]byte, cfg.SingleClients)
	cpu := watchCPU(ctx, p.pid, cfg.Warmup, cfg.Duration)
	prof := p.profileCPU(ctx, cfg.Warmup, cfg.Duration, "single-event")
	lr := runClosedLoop(ctx, cfg.SingleClients, cfg.Warmup, cfg.Duration, func(ctx context.Context, w int, n int64) opResult {
		bufs[w] = appendEvent(bufs[w][:0], eventID("single", w, n), n, "")
		st, err := p.post(ctx, p.demo, ctStructured, bufs[w])
		if err == nil && st == http.StatusAccepted {
			p.accepted.Add(1)
			return opResult{events: 1}
		}
		return opResult{failure: statusFailure(st, err)}
	})
	p.markMemory("single-event ingest")
	in := &Ingest{Clients: cfg.SingleClients, EventsPerRequest: 1, EventsPerSec: lr.rate(),
		RequestsPerSec: float64(lr.Ops) / lr.Window.Seconds(), Latency: summarize(lr.Latencies),
		Non202: failureCounts(lr.Failures), CPU: cpu(), Profile: prof()}
	if in.Profile != nil && in.CPU != nil && in.EventsPerSec > 0 {
		in.Profile.perEvent(in.CPU.Prost / in.EventsPerSec * 1e6)
	}
	log.Info("prost: single-event done", "events_per_s", int(in.EventsPerSec), "non_202", in.Non202)
	return in
}

// runBatch is batched ingest (cfg.BatchSize events per request) at
// cfg.BatchClients; meanwhile it samples the relay, the audit consumer and
// the billing consumer.
func runBatch(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc) (in *Ingest, relay, audit, billing *Pipeline) {
	log.Info("prost: batched ingest", "clients", cfg.BatchClients, "events_per_request", cfg.BatchSize, "duration", cfg.Duration)
	bufs := make([][]byte, cfg.BatchClients)
	smp := p.startSampler(ctx, 500*time.Millisecond)
	t0 := time.Now().Add(cfg.Warmup)
	cpu := watchCPU(ctx, p.pid, cfg.Warmup, cfg.Duration)
	lr := runClosedLoop(ctx, cfg.BatchClients, cfg.Warmup, cfg.Duration, func(ctx context.Context, w int, n int64) opResult {
		b := append(bufs[w][:0], '[')
		for i := range cfg.BatchSize {
			if i > 0 {
				b = append(b, ',')
			}
			k := n*int64(cfg.BatchSize) + int64(i)
			b = appendEvent(b, eventID("batch", w, k), k, "")
		}
		bufs[w] = append(b, ']')
		st, err := p.post(ctx, p.demo, ctBatch, bufs[w])
		if err == nil && st == http.StatusAccepted {
			p.accepted.Add(int64(cfg.BatchSize))
			return opResult{events: cfg.BatchSize}
		}
		return opResult{failure: statusFailure(st, err)}
	})
	t1 := time.Now()
	p.markMemory("batched ingest")
	in = &Ingest{Clients: cfg.BatchClients, EventsPerRequest: cfg.BatchSize, EventsPerSec: lr.rate(),
		RequestsPerSec: float64(lr.Ops) / lr.Window.Seconds(), Latency: summarize(lr.Latencies),
		Non202: failureCounts(lr.Failures), CPU: cpu()}
	log.Info("prost: batched done", "events_per_s", int(in.EventsPerSec), "non_202", in.Non202)

	log.Info("prost: measuring relay and audit consumer until they catch up", "cap", cfg.RelayWindowCap)
	drainStart := time.Now()
	in.DrainAfter = p.waitDrained(ctx, cfg.RelayWindowCap)
	samples := smp.stop()
	p.markMemory("backlog caught up")
	if !in.DrainAfter.Complete {
		log.Warn("prost: pipeline had not caught up when the measurement window closed", "after", time.Since(drainStart).Round(time.Millisecond))
	}
	relay = pipelineRate(samples, t0, t1, func(s sample) (float64, int64, bool) {
		return float64(s.published), s.pending, s.pending == 0
	})
	// The audit consumer's own backlog is what the relay published and it has
	// not yet audited; it has caught up once everything accepted is audited.
	audit = pipelineRate(samples, t0, t1, func(s sample) (float64, int64, bool) {
		return float64(s.audited), max(0, int64(s.published)-s.audited), s.audited >= s.accepted
	})
	// The billing consumer reads the same messages and writes a usage row
	// for each (every event matches the App's meter).
	billing = pipelineRate(samples, t0, t1, func(s sample) (float64, int64, bool) {
		return float64(s.billed), max(0, int64(s.published)-s.billed), s.billed >= s.accepted
	})
	return in, relay, audit, billing
}

// sample is one look at PROST's pipeline.
type sample struct {
	at        time.Time
	published uint64 // messages in PROST_EVENTS
	pending   int64  // outbox rows not yet published
	audited   int64  // audit entries of every tenant
	billed    int64  // messages the billing consumer applied
	accepted  int64  // events answered 202 so far
}

// sampler looks at the pipeline every interval until stopped.
type sampler struct {
	p       *prostProc
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []sample
}

func (p *prostProc) startSampler(ctx context.Context, every time.Duration) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{p: p, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if smp, err := p.look(ctx); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, smp)
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop takes a last sample, so the moment a wait for the pipeline ended is
// in the series, and returns them all.
func (s *sampler) stop() []sample {
	last, err := s.p.look(s.ctx)
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.samples = append(s.samples, last)
	}
	return s.samples
}

// look takes one sample: the outbox backlog and the audit entries from
// Postgres, the stream's message count from NATS.
func (p *prostProc) look(ctx context.Context) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var s sample
	s.accepted = p.accepted.Load()
	if err := p.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),
       (SELECT coalesce(sum(seq), 0)::bigint FROM audit_heads)`).Scan(&s.pending, &s.audited); err != nil {
		return s, err
	}
	billed, err := p.billed(ctx)
	if err != nil {
		return s, err
	}
	s.billed = billed
	info, err := p.stream.Info(ctx)
	if err != nil {
		return s, err
	}
	s.published = info.State.Msgs
	s.at = time.Now()
	return s, nil
}

// waitDrained waits until every accepted event is published and audited and
// the billing consumer has acknowledged every message it was given, or for
// timeout. (Billing's usage rows do not say it: it writes rows only for the
// events some meter counts.)
func (p *prostProc) waitDrained(ctx context.Context, timeout time.Duration) *Drain {
	start := time.Now()
	deadline := start.Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		s, err := p.look(ctx)
		if err == nil && s.pending == 0 && s.audited >= s.accepted && p.consumerIdle(ctx, "billing-usage") {
			return &Drain{Seconds: time.Since(start).Seconds(), Complete: true}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return &Drain{Seconds: time.Since(start).Seconds()}
}

// consumerIdle says whether every durable of the named consumer has nothing
// pending and nothing unacknowledged.
func (p *prostProc) consumerIdle(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lister := p.stream.ListConsumers(ctx)
	found := false
	for ci := range lister.Info() {
		if !strings.HasPrefix(ci.Name, name) {
			continue
		}
		found = true
		if ci.NumPending > 0 || ci.NumAckPending > 0 {
			return false
		}
	}
	return found && lister.Err() == nil
}

// backlogThreshold is what a stage that keeps up still has waiting: one
// relay round (the relay reads and publishes up to 1,000 rows at a time).
const backlogThreshold = 1000

// pipelineRate is a stage's rate from the first sample at or after t0 to the
// first sample after t1 in which it had caught up (or the last sample). f
// gives the stage's running total, its own backlog and whether it had caught
// up with ingest, in a sample.
func pipelineRate(samples []sample, t0, t1 time.Time, f func(sample) (done float64, backlog int64, caughtUp bool)) *Pipeline {
	first := -1
	for i, s := range samples {
		if !s.at.Before(t0) {
			first = i
			break
		}
	}
	if first < 0 || first == len(samples)-1 {
		return nil
	}
	last, caught := len(samples)-1, false
	for i := first + 1; i < len(samples); i++ {
		if _, _, ok := f(samples[i]); ok && samples[i].at.After(t1) {
			last, caught = i, true
			break
		}
	}
	pl := &Pipeline{CaughtUp: caught, Backlogged: true}
	for i := first; i <= last; i++ {
		_, b, _ := f(samples[i])
		pl.MaxBacklog = max(pl.MaxBacklog, b)
		if b <= backlogThreshold && i < last {
			pl.Backlogged = false
		}
	}
	v0, _, _ := f(samples[first])
	v1, _, _ := f(samples[last])
	w := samples[last].at.Sub(samples[first].at).Seconds()
	pl.WindowSeconds = w
	if w > 0 {
		pl.PerSec = (v1 - v0) / w
	}
	for i := last; i > first; i-- {
		if samples[i].at.After(t1) {
			continue
		}
		va, _, _ := f(samples[i])
		if wd := samples[i].at.Sub(samples[first].at).Seconds(); wd >= 1 {
			pl.DuringStepPerSec = ptr((va - v0) / wd)
		}
		break
	}
	for i := first; i < last; i++ {
		if samples[i].at.Before(t1) {
			continue
		}
		va, _, _ := f(samples[i])
		if wa := samples[last].at.Sub(samples[i].at).Seconds(); wa >= 1 {
			pl.AfterStepPerSec = ptr((v1 - va) / wa)
		}
		break
	}
	return pl
}

// watchCPU snapshots the CPU counters when the measured window starts and
// returns a function that waits for its end and gives each party's share.
func watchCPU(ctx context.Context, pid int, warmup, measure time.Duration) func() *CPUShare {
	done := make(chan *CPUShare, 1)
	go func() {
		if !sleepCtx(ctx, warmup) {
			done <- nil
			return
		}
		a := takeCPU(pid)
		if !sleepCtx(ctx, measure) {
			done <- nil
			return
		}
		done <- share(a, takeCPU(pid), measure.Seconds())
	}()
	return func() *CPUShare { return <-done }
}

// sleepCtx sleeps for d and reports whether ctx was still live at the end.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// SchemaValidation is the schema registry's validation cost per event
// (measureSchemaValidation).
type SchemaValidation struct {
	MicrosPerEvent float64 `json:"us_per_event"`
}

// notBuiltSchemaRegistry was the report's note before the registry existed;
// the report tests still render it as an example of a note.
const notBuiltSchemaRegistry = "not measured: the schema registry is not built yet"
