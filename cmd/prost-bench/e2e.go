package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// E2E is the end to end step: events offered open loop at a fixed rate, each
// timed from its scheduled send to its audit entry.
type E2E struct {
	LoadFraction  float64 `json:"load_fraction"`
	OfferedPerSec float64 `json:"offered_per_s"`
	// Sent, Accepted and Non202 cover the measured window's events.
	Sent     int64            `json:"sent"`
	Accepted int64            `json:"accepted"`
	Non202   map[string]int64 `json:"non_202"`
	// HarnessDropped counts events the benchmark could not send on time
	// because all of its senders were busy (never sent, not counted).
	HarnessDropped int64 `json:"harness_dropped"`
	// HarnessLateMaxMs is the longest a send started after its schedule
	// (the benchmark keeps its schedule when this stays small).
	HarnessLateMaxMs float64 `json:"harness_late_max_ms"`
	// AcceptLatency is send to 202.
	AcceptLatency *Latency `json:"accept_latency"`
	// PublishLatency is send to the outbox row's published_at: the start of
	// the relay's mark transaction, after JetStream acknowledged the event.
	// With Latency it splits the pipeline's time between the relay and the
	// audit consumer.
	PublishLatency *Latency `json:"publish_latency"`
	// Latency is send to the audit entry's recorded_at.
	Latency *Latency `json:"latency"`
	// Missing counts accepted events with no audit entry after the drain.
	Missing    int64     `json:"missing"`
	Backlog    *Backlog  `json:"backlog"`
	CPU        *CPUShare `json:"cpu"`
	DrainAfter *Drain    `json:"drain_after"`
	// Profile splits PROST's CPU by component over the measured window.
	Profile *CPUProfile `json:"cpu_profile,omitempty"`
}

// Backlog is the pipeline's backlog sampled every second of the step.
type Backlog struct {
	// AllowedGrowth is 2 seconds' worth of events at the offered rate: how
	// much a series may grow over the step and still count as flat.
	AllowedGrowth int64 `json:"allowed_growth"`
	// AuditLag is events accepted minus audit entries, for the step's App.
	AuditLag Series `json:"audit_lag"`
	// OutboxPending is outbox rows not yet published (every App).
	OutboxPending Series `json:"outbox_pending"`
	Flat          bool   `json:"flat"`
}

// Series is a sampled quantity.
type Series struct {
	Samples []int64 `json:"samples"`
	Min     int64   `json:"min"`
	Max     int64   `json:"max"`
	First   int64   `json:"first"`
	Last    int64   `json:"last"`
	// SlopePerSec is the least-squares trend, per second of the step.
	SlopePerSec float64 `json:"slope_per_s"`
}

// newSeries summarises samples taken every interval.
func newSeries(samples []int64, interval time.Duration) Series {
	s := Series{Samples: samples}
	if len(samples) == 0 {
		return s
	}
	s.Min, s.Max, s.First, s.Last = samples[0], samples[0], samples[0], samples[len(samples)-1]
	var sx, sy, sxx, sxy float64
	for i, v := range samples {
		s.Min, s.Max = min(s.Min, v), max(s.Max, v)
		x, y := float64(i)*interval.Seconds(), float64(v)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(samples))
	if d := n*sxx - sx*sx; d > 0 {
		s.SlopePerSec = (n*sxy - sx*sy) / d
	}
	return s
}

// flat reports whether s ended within allowed of where it started and its
// trend over span stayed within allowed too.
func (s Series) flat(allowed int64, span time.Duration) bool {
	if len(s.Samples) < 2 {
		return false
	}
	return s.Last-s.First <= allowed && s.SlopePerSec*span.Seconds() <= float64(allowed)
}

// runE2E offers rate events/s open loop (a ticker schedules each send; a
// pool of senders sends them) for the warm-up and the step, samples the
// backlog every second of the step, waits for the audit log to catch up and
// then reads each event's audit entry from Postgres.
func runE2E(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc, maxRate float64) *E2E {
	rate := cfg.E2ELoad * maxRate
	e := &E2E{LoadFraction: cfg.E2ELoad, OfferedPerSec: rate}
	if rate < 1 {
		log.Warn("prost: end to end step skipped: no single-event rate to take a fraction of")
		return nil
	}
	log.Info("prost: end to end at a fixed rate", "events_per_s", int(rate), "duration", cfg.Duration)
	warmN := int64(rate * cfg.Warmup.Seconds())
	total := warmN + int64(rate*cfg.Duration.Seconds())
	sched := make([]time.Time, total)  // when each event was due
	sendAt := make([]time.Time, total) // when its request was handed to the HTTP client
	accepted := make([]bool, total)
	var e2eAccepted atomic.Int64

	type worker struct {
		lat    []time.Duration
		late   time.Duration
		fail   map[string]int64
		sent   int64
		accept int64
	}
	workers := make([]worker, cfg.E2EWorkers)
	jobs := make(chan int64, cfg.E2EWorkers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			wk := &workers[w]
			wk.fail = map[string]int64{}
			var buf []byte
			for seq := range jobs {
				measured := seq >= warmN
				buf = appendEvent(buf[:0], "e2e-"+strconv.FormatInt(seq, 10), seq, "")
				sendAt[seq] = time.Now()
				wk.late = max(wk.late, sendAt[seq].Sub(sched[seq]))
				st, err := p.post(ctx, p.e2eApp, ctStructured, buf)
				ok := err == nil && st == http.StatusAccepted
				if ok {
					accepted[seq] = true
					e2eAccepted.Add(1)
					p.accepted.Add(1)
				}
				if !measured {
					continue
				}
				wk.sent++
				if ok {
					wk.accept++
					wk.lat = append(wk.lat, time.Since(sendAt[seq]))
				} else {
					wk.fail[statusFailure(st, err)]++
				}
			}
		})
	}

	start := time.Now()
	t0 := start.Add(cfg.Warmup)
	cpu := watchCPU(ctx, p.pid, cfg.Warmup, cfg.Duration)
	prof := p.profileCPU(ctx, cfg.Warmup, cfg.Duration, "end-to-end")
	backlog := make(chan [2][]int64, 1)
	go func() { backlog <- p.sampleBacklog(ctx, t0, cfg.Duration, &e2eAccepted) }()

	tick := time.NewTicker(time.Millisecond)
	var dropped int64
schedule:
	for next := int64(0); next < total; {
		select {
		case <-ctx.Done():
			break schedule
		case <-tick.C:
		}
		due := min(total, int64(time.Since(start).Seconds()*rate)+1)
		for ; next < due; next++ {
			sched[next] = start.Add(time.Duration(float64(next) / rate * float64(time.Second)))
			select {
			case jobs <- next:
			default:
				if next >= warmN {
					dropped++
				}
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	e.CPU = cpu()
	if e.Profile = prof(); e.Profile != nil && e.CPU != nil && rate > 0 {
		e.Profile.perEvent(e.CPU.Prost / rate * 1e6)
	}
	bl := <-backlog
	p.markMemory("end to end")

	var lat []time.Duration
	e.Non202 = map[string]int64{}
	for i := range workers {
		wk := &workers[i]
		lat = append(lat, wk.lat...)
		e.Sent += wk.sent
		e.Accepted += wk.accept
		e.HarnessLateMaxMs = max(e.HarnessLateMaxMs, ms(wk.late))
		for k, v := range wk.fail {
			e.Non202[k] += v
		}
	}
	e.Non202 = failureCounts(e.Non202)
	e.HarnessDropped = dropped
	e.AcceptLatency = summarize(lat)
	allowed := int64(2 * rate)
	e.Backlog = &Backlog{AllowedGrowth: allowed, AuditLag: newSeries(bl[0], time.Second), OutboxPending: newSeries(bl[1], time.Second)}
	e.Backlog.Flat = e.Backlog.AuditLag.flat(allowed, cfg.Duration) && e.Backlog.OutboxPending.flat(allowed, cfg.Duration)
	log.Info("prost: end to end sent; waiting for the audit log", "accepted", e.Accepted, "non_202", e.Non202, "dropped", dropped)

	e.DrainAfter = p.waitDrained(ctx, cfg.DrainTimeout)
	audited, err := p.auditTimes(ctx)
	if err != nil {
		log.Error("prost: reading audit_log", "error", err)
		return e
	}
	published, err := p.publishTimes(ctx)
	if err != nil {
		log.Error("prost: reading outbox", "error", err)
	}
	var e2e, pub []time.Duration
	for seq := warmN; seq < total; seq++ {
		if !accepted[seq] {
			continue
		}
		if at, ok := published[seq]; ok {
			pub = append(pub, at.Sub(sendAt[seq]))
		}
		at, ok := audited[seq]
		if !ok {
			e.Missing++
			continue
		}
		e2e = append(e2e, at.Sub(sendAt[seq]))
	}
	e.PublishLatency = summarize(pub)
	e.Latency = summarize(e2e)
	log.Info("prost: end to end done", "audited", len(e2e), "missing", e.Missing, "flat", e.Backlog.Flat)
	return e
}

// sampleBacklog samples, every second from t0 for span, the audit lag of the
// end to end App (accepted minus audit entries) and the outbox backlog.
func (p *prostProc) sampleBacklog(ctx context.Context, t0 time.Time, span time.Duration, accepted *atomic.Int64) [2][]int64 {
	var lag, pending []int64
	if !sleepCtx(ctx, time.Until(t0)) {
		return [2][]int64{lag, pending}
	}
	for i := 0; i <= int(span/time.Second); i++ {
		if !sleepCtx(ctx, time.Until(t0.Add(time.Duration(i)*time.Second))) {
			break
		}
		acc := accepted.Load()
		var pend, aud int64
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.pool.QueryRow(qctx, `SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),
       coalesce((SELECT seq FROM audit_heads WHERE tenant_id = $1), 0)`, p.e2eApp.AppID).Scan(&pend, &aud)
		cancel()
		if err != nil {
			continue
		}
		lag, pending = append(lag, acc-aud), append(pending, pend)
	}
	return [2][]int64{lag, pending}
}

// auditTimes reads the end to end App's audit entries: recorded_at by the
// event's sequence number.
func (p *prostProc) auditTimes(ctx context.Context) (map[int64]time.Time, error) {
	return p.timesByEvent(ctx, `SELECT event_id, recorded_at FROM audit_log WHERE tenant_id = $1`)
}

// publishTimes reads when the end to end App's outbox rows were marked
// published, by the event's sequence number.
func (p *prostProc) publishTimes(ctx context.Context) (map[int64]time.Time, error) {
	return p.timesByEvent(ctx, `SELECT e.id, o.published_at FROM events e JOIN outbox o ON o.event_seq = e.seq
		WHERE e.tenant_id = $1 AND o.published_at IS NOT NULL`)
}

// timesByEvent runs query (an event id and a time per row, for the end to
// end App's id) and keys the times by the sequence number in the id.
func (p *prostProc) timesByEvent(ctx context.Context, query string) (map[int64]time.Time, error) {
	rows, err := p.pool.Query(ctx, query, p.e2eApp.AppID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		if seq, err := strconv.ParseInt(strings.TrimPrefix(id, "e2e-"), 10, 64); err == nil {
			out[seq] = at
		}
	}
	return out, rows.Err()
}
