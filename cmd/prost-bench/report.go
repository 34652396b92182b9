package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Results is every figure of one run: what benchmarks.json holds and
// benchmarks.md shows. A figure that was not measured is null.
type Results struct {
	Date        string       `json:"date"`
	Command     string       `json:"command"`
	WallSeconds float64      `json:"wall_s"`
	Config      ConfigReport `json:"config"`
	Machine     Machine      `json:"machine"`
	Raw         struct {
		PGSingle *RawPG `json:"postgres_single_row"`
		PGBatch  *RawPG `json:"postgres_batched"`
		JSAsync  *RawJS `json:"jetstream_async"`
		JSAtomic *RawJS `json:"jetstream_atomic"`
		JSSync   *RawJS `json:"jetstream_sync"`
	} `json:"raw"`
	Prost struct {
		Single *Ingest `json:"single_event_ingest"`
		Batch  *Ingest `json:"batched_ingest"`
		E2E    *E2E    `json:"end_to_end"`
		// Relay and Audit are the stages behind the gateway, measured during
		// and after the batched step.
		Relay *Pipeline `json:"relay_publish"`
		Audit *Pipeline `json:"audit_consumer"`
		// Billing is the billing consumer, every event matching a meter.
		Billing              *Pipeline         `json:"billing_consumer"`
		SchemaValidation     *SchemaValidation `json:"schema_validation"`
		SchemaValidationNote string            `json:"schema_validation_note,omitempty"`
		Encryption           *Encryption       `json:"encryption"`
		EncryptionNote       string            `json:"encryption_note,omitempty"`
		Memory               *Memory           `json:"memory"`
		// AcceptedEvents is every event answered 202 (warm-ups included);
		// StoredEvents is the events table's row count at the end.
		AcceptedEvents int64            `json:"accepted_events"`
		StoredEvents   *int64           `json:"stored_events"`
		Logged         map[string]int64 `json:"logged_warnings"`
	} `json:"prost"`
	// ScaleOut is the scale-out step, nil when not run.
	ScaleOut *ScaleOut `json:"scale_out,omitempty"`
	// Scale is the scale curves (make bench-scale), nil when not run.
	Scale   *Scale   `json:"scale,omitempty"`
	Ratios  []Ratio  `json:"ratios"`
	Targets []Target `json:"targets"`
	Errors  []string `json:"errors"`
}

// ConfigReport is the part of Config that shapes the figures.
type ConfigReport struct {
	StepSeconds       float64 `json:"step_s"`
	WarmupSeconds     float64 `json:"warmup_s"`
	RawPGClients      int     `json:"raw_postgres_clients"`
	BatchSize         int     `json:"batch_size"`
	JSAsyncMaxPending int     `json:"jetstream_async_max_pending"`
	JSAtomicBatch     int     `json:"jetstream_atomic_batch"`
	JSSyncClients     int     `json:"jetstream_sync_clients"`
	SingleClients     int     `json:"single_clients"`
	BatchClients      int     `json:"batch_clients"`
	E2ELoad           float64 `json:"end_to_end_load"`
	PayloadBytes      int     `json:"payload_bytes"`
	// RelayWindowSeconds caps how long after the batched step the relay and
	// audit consumer rates are measured.
	RelayWindowSeconds float64 `json:"relay_window_cap_s"`
	DrainSeconds       float64 `json:"drain_timeout_s"`
	E2EWorkers         int     `json:"end_to_end_max_in_flight"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	MemoryMiB  int64  `json:"memory_mib"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	Postgres   string `json:"postgres"`
	NATSServer string `json:"nats_server"`
	// LoadAverage is /proc/loadavg's 1-minute figure when the run began.
	LoadAverage float64 `json:"load_average_start"`
}

// Memory is the PROST process's memory (gateway, relay, governance and the
// embedded nats-server in one process).
type Memory struct {
	VmHWMMiB  *float64 `json:"vm_hwm_mib"`
	RSSMaxMiB *float64 `json:"rss_max_mib"`
	Samples   int64    `json:"rss_samples"`
	// Marks are VmHWM and VmRSS at the end of each step, in order.
	Marks []MemoryMark `json:"marks"`
}

// MemoryMark is the PROST process's memory at one moment of the run.
type MemoryMark struct {
	At       string  `json:"at"`
	VmHWMMiB float64 `json:"vm_hwm_mib"`
	VmRSSMiB float64 `json:"vm_rss_mib"`
}

// Ratio is a PROST figure against the raw ceiling it is built on.
type Ratio struct {
	Name  string   `json:"name"`
	Prost *float64 `json:"prost"`
	Raw   *float64 `json:"raw"`
	Ratio *float64 `json:"ratio"`
}

// Target is one of the targets and whether this run met it; Met is
// null when a figure it needs was not measured.
type Target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Met      *bool  `json:"met"`
}

// The targets of issue 13 (batched ingest's is issue 2's).
const (
	targetSingleRatio  = 1.2
	targetSingleP99ms  = 25.0
	targetCPUPerEvent  = 130.0 // half of the ~260 us the issue measured
	targetBatchRatio   = 0.5
	targetE2EP99ms     = 250.0
	targetRelayRatio   = 0.8
	targetPeakMemoryMB = 256.0
)

// derive fills Ratios and Targets from the measured figures.
func (r *Results) derive() {
	var (
		single, batch, relay, audit *float64
		billing, relayAlone         *float64
		rawSingle, rawBatch         *float64
		jsAsync, jsSync, jsAtomic   *float64
	)
	if s := r.Prost.Single; s != nil {
		single = ptr(s.EventsPerSec)
	}
	if b := r.Prost.Batch; b != nil {
		batch = ptr(b.EventsPerSec)
	}
	if p := r.Prost.Relay; p != nil {
		relay = ptr(p.PerSec)
	}
	if p := r.Prost.Audit; p != nil {
		audit = ptr(p.PerSec)
	}
	if p := r.Prost.Billing; p != nil {
		billing = ptr(p.PerSec)
	}
	if so := r.ScaleOut; so != nil && so.Relay != nil && so.Relay.Complete {
		relayAlone = ptr(so.Relay.PerSec)
	}
	if x := r.Raw.PGSingle; x != nil {
		rawSingle = ptr(x.EventsPerSec)
	}
	if x := r.Raw.PGBatch; x != nil {
		rawBatch = ptr(x.EventsPerSec)
	}
	if x := r.Raw.JSAsync; x != nil {
		jsAsync = ptr(x.MsgsPerSec)
	}
	if x := r.Raw.JSSync; x != nil {
		jsSync = ptr(x.MsgsPerSec)
	}
	if x := r.Raw.JSAtomic; x != nil {
		jsAtomic = ptr(x.MsgsPerSec)
	}
	r.Ratios = []Ratio{
		{Name: "single-event ingest / raw single-row Postgres", Prost: single, Raw: rawSingle, Ratio: ratio(single, rawSingle)},
		{Name: "batched ingest / raw batched Postgres", Prost: batch, Raw: rawBatch, Ratio: ratio(batch, rawBatch)},
		{Name: "relay publish / raw JetStream async publish", Prost: relay, Raw: jsAsync, Ratio: ratio(relay, jsAsync)},
		{Name: "relay publish / raw JetStream sync publish", Prost: relay, Raw: jsSync, Ratio: ratio(relay, jsSync)},
		{Name: "audit consumer / raw batched Postgres", Prost: audit, Raw: rawBatch, Ratio: ratio(audit, rawBatch)},
		{Name: "billing consumer / raw batched Postgres", Prost: billing, Raw: rawBatch, Ratio: ratio(billing, rawBatch)},
		{Name: "relay publish / raw JetStream atomic batches", Prost: relay, Raw: jsAtomic, Ratio: ratio(relay, jsAtomic)},
		{Name: "audit consumer / raw JetStream async publish", Prost: audit, Raw: jsAsync, Ratio: ratio(audit, jsAsync)},
		{Name: "relay alone through a backlog (scale-out step) / raw JetStream async publish", Prost: relayAlone, Raw: jsAsync, Ratio: ratio(relayAlone, jsAsync)},
	}

	r.Targets = nil
	// Single-event ingest.
	t := Target{Name: "single-event ingest", Want: fmt.Sprintf(">= %.1fx raw single-row Postgres, p99 <= %.0f ms", targetSingleRatio, targetSingleP99ms)}
	if q := r.Ratios[0].Ratio; q != nil && r.Prost.Single.Latency != nil {
		p99 := r.Prost.Single.Latency.P99ms
		t.Measured = fmt.Sprintf("%s, p99 %s ms", fmtRatio(*q), fmtMs(p99))
		t.Met = ptr(*q >= targetSingleRatio && p99 <= targetSingleP99ms)
	}
	r.Targets = append(r.Targets, t)
	// CPU per accepted event of the single-event step: the PROST process
	// (gateway, relay, consumers, nats-server) over the events accepted.
	t = Target{Name: "PROST CPU per accepted event", Want: fmt.Sprintf("<= %.0f us (single-event step)", targetCPUPerEvent)}
	if s := r.Prost.Single; s != nil && s.CPU != nil && s.EventsPerSec > 0 {
		us := s.CPU.Prost / s.EventsPerSec * 1e6
		t.Measured = fmt.Sprintf("%s us", fmtInt(us))
		// The whole process is what the target counts; the gateway's own
		// share (HTTP, auth, parse, validation, group commit) is beside it.
		if gw, ok := s.Profile.micros("gateway"); ok {
			t.Measured += fmt.Sprintf(" (of which the gateway %s us)", fmtInt(gw))
		}
		t.Met = ptr(us <= targetCPUPerEvent)
	}
	r.Targets = append(r.Targets, t)
	// Batched ingest.
	t = Target{Name: "batched ingest", Want: fmt.Sprintf(">= %.0f%% of raw batched Postgres", targetBatchRatio*100)}
	if q := r.Ratios[1].Ratio; q != nil {
		t.Measured = fmt.Sprintf("%.0f%%", *q*100)
		t.Met = ptr(*q >= targetBatchRatio)
	}
	r.Targets = append(r.Targets, t)
	// End to end.
	t = Target{Name: "end to end at half load", Want: fmt.Sprintf("accept -> audit p99 <= %.0f ms, backlog flat", targetE2EP99ms)}
	if e := r.Prost.E2E; e != nil && e.Latency != nil && e.Backlog != nil {
		flat := "flat"
		if !e.Backlog.Flat {
			flat = "not flat"
		}
		t.Measured = fmt.Sprintf("p99 %s ms, backlog %s", fmtMs(e.Latency.P99ms), flat)
		if e.Missing > 0 {
			t.Measured += fmt.Sprintf(", %d accepted events never audited", e.Missing)
		}
		t.Met = ptr(e.Latency.P99ms <= targetE2EP99ms && e.Backlog.Flat && e.Missing == 0)
	}
	r.Targets = append(r.Targets, t)
	// Relay against the JetStream ceiling, and the audit consumer behind it.
	t = Target{Name: "relay and audit consumer", Want: fmt.Sprintf("relay >= %.1fx raw JetStream async publish, audit consumer caught up with it", targetRelayRatio)}
	if q := r.Ratios[2].Ratio; q != nil && r.Prost.Audit != nil {
		caught := "caught up"
		if !r.Prost.Audit.CaughtUp {
			caught = "not caught up"
		}
		t.Measured = fmt.Sprintf("%s, audit consumer %s", fmtRatio(*q), caught)
		t.Met = ptr(*q >= targetRelayRatio && r.Prost.Audit.CaughtUp)
	}
	r.Targets = append(r.Targets, t)
	// Memory.
	t = Target{Name: "peak memory", Want: fmt.Sprintf("VmHWM <= %.0f MiB, catching up a backlog included", targetPeakMemoryMB)}
	if m := r.Prost.Memory; m != nil && m.VmHWMMiB != nil {
		t.Measured = fmt.Sprintf("%s MiB", fmtMiB(*m.VmHWMMiB))
		t.Met = ptr(*m.VmHWMMiB <= targetPeakMemoryMB)
	}
	r.Targets = append(r.Targets, t)
	if sc := r.Scale; sc != nil {
		r.Targets = append(r.Targets, sc.targets()...)
	}
}

// writeReports writes the Markdown and JSON reports, each atomically.
func writeReports(cfg Config, r *Results) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(cfg.jsonOut(), append(js, '\n')); err != nil {
		return err
	}
	md := renderMarkdown(r, filepath.Base(cfg.jsonOut()))
	if old, err := os.ReadFile(cfg.Out); err == nil {
		md = keepWritten(md, string(old))
	}
	return writeFileAtomic(cfg.Out, []byte(md))
}

// Markers of the part of a report written by hand (findings, what bounds
// memory): a run keeps it, between the figures and "How measured".
const (
	keptStart = "<!-- written by hand: kept by every run -->"
	keptEnd   = "<!-- end of the part written by hand -->"
)

// keepWritten puts the hand-written part of old (between the markers) into
// md, before its "How measured" section.
func keepWritten(md, old string) string {
	i := strings.Index(old, keptStart)
	j := strings.Index(old, keptEnd)
	if i < 0 || j < i || strings.Contains(md, keptStart) {
		return md
	}
	kept := old[i : j+len(keptEnd)]
	k := strings.Index(md, "## How measured")
	if k < 0 {
		return md + "\n" + kept + "\n"
	}
	return md[:k] + kept + "\n\n" + md[k:]
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Formatting: every number has a fixed format so that reports differ only
// where the figures do.

// fmtInt is v rounded, with thousands separators: 12,345.
func fmtInt(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtMs(v float64) string    { return strconv.FormatFloat(v, 'f', 2, 64) }
func fmtRatio(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "x" }
func fmtMiB(v float64) string   { return strconv.FormatFloat(v, 'f', 1, 64) }

func fmtDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	return d.String()
}

func orDash[T any](p *T, f func(T) string) string {
	if p == nil {
		return "not measured"
	}
	return f(*p)
}

func verdict(met *bool) string {
	switch {
	case met == nil:
		return "not measured"
	case *met:
		return "**met**"
	default:
		return "**not met**"
	}
}

func fmtLatency(l *Latency, withP95 bool) string {
	if l == nil {
		return "not measured"
	}
	if withP95 {
		return fmt.Sprintf("%s / %s / %s ms", fmtMs(l.P50ms), fmtMs(l.P95ms), fmtMs(l.P99ms))
	}
	return fmt.Sprintf("%s / %s ms", fmtMs(l.P50ms), fmtMs(l.P99ms))
}

func fmtCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// fmtCPU is a row of the CPU table: each party's cores, then the CPU time
// per event of PROST and of PROST, Postgres and the benchmark together.
func fmtCPU(c *CPUShare, rate float64) string {
	if c == nil {
		return "| not measured | | | | | |"
	}
	perEvent := func(cores float64) string {
		if rate <= 0 || cores <= 0 {
			return ""
		}
		return fmtInt(cores / rate * 1e6)
	}
	return fmt.Sprintf("| %.2f | %.2f | %.2f | %.2f | %s | %s |", c.Prost, c.Postgres, c.Harness, c.Other,
		perEvent(c.Prost), perEvent(c.Prost+c.Postgres+c.Harness))
}

// fmtDrain completes "the relay and the audit consumer ...".
func fmtDrain(d *Drain) string {
	if d == nil {
		return "were not watched"
	}
	if !d.Complete {
		return fmt.Sprintf("had not caught up %.1f s after", d.Seconds)
	}
	return fmt.Sprintf("caught up %.1f s after", d.Seconds)
}

func fmtSeries(s Series) string {
	if len(s.Samples) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("min %s, max %s, first %s, last %s, trend %s/s", fmtInt(float64(s.Min)), fmtInt(float64(s.Max)),
		fmtInt(float64(s.First)), fmtInt(float64(s.Last)), strconv.FormatFloat(s.SlopePerSec, 'f', 1, 64))
}

// fmtSustained is a stage's rate while ingest ran and after it stopped.
func fmtSustained(p *Pipeline) string {
	if p == nil {
		return "not measured"
	}
	return fmt.Sprintf("%s / %s events/s", orDash(p.DuringStepPerSec, fmtInt), orDash(p.AfterStepPerSec, fmtInt))
}

func fmtPipeline(p *Pipeline, unit string) string {
	if p == nil {
		return "not measured"
	}
	s := fmt.Sprintf("%s %s", fmtInt(p.PerSec), unit)
	if p.Backlogged {
		return s + " (backlogged throughout: its ceiling)"
	}
	return s + " (not backlogged throughout: a lower bound)"
}

// renderMarkdown renders r as benchmarks.md (or, for a run of the scale
// curves alone, benchmarks-scale.md).
func renderMarkdown(r *Results, jsonName string) string {
	if r.Scale != nil && r.Prost.Single == nil && r.Prost.Batch == nil && r.Raw.PGSingle == nil && r.Raw.JSAsync == nil {
		return renderScaleMarkdown(r, jsonName)
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	c, m := r.Config, r.Machine
	w("# PROST benchmarks\n\n")
	w("Generated by `cmd/prost-bench` on %s; every `make bench` overwrites this page and [%s](%s), which\n", r.Date, jsonName, jsonName)
	w("holds every figure below. Absolute numbers drift between machines; the ratios to the raw ceilings,\n")
	w("measured in the same run on the same machine, are what to compare.\n\n")
	w("Command: `%s`  \n", r.Command)
	w("Each step: %s measured after a %s warm-up. Wall time of the whole run: %s.\n\n",
		fmtDuration(c.StepSeconds), fmtDuration(c.WarmupSeconds), fmtDuration(r.WallSeconds))

	w("## Machine\n\n| | |\n|---|---|\n")
	w("| CPUs (nproc) | %d |\n| memory | %s MiB |\n| OS | %s |\n| Go | %s |\n| Postgres | %s |\n| nats-server | %s |\n| load average when the run began | %.2f |\n\n",
		m.CPUs, fmtInt(float64(m.MemoryMiB)), m.OS, m.Go, orText(m.Postgres), orText(m.NATSServer), m.LoadAverage)

	w("## Targets\n\n| target | wanted | measured | verdict |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		w("| %s | %s | %s | %s |\n", t.Name, t.Want, orText(t.Measured), verdict(t.Met))
	}
	w("\n")

	p := &r.Prost
	w("## PROST figures\n\n| figure | value | raw ceiling | ratio |\n|---|---|---|---|\n")
	if s := p.Single; s != nil {
		w("| single-event ingest, %d clients | %s events/s | %s events/s (single-row Postgres) | %s |\n",
			s.Clients, fmtInt(s.EventsPerSec), orDash(r.Ratios[0].Raw, fmtInt), orDash(r.Ratios[0].Ratio, fmtRatio))
		w("| single-event ingest latency p50 / p95 / p99 (202s) | %s | | |\n", fmtLatency(s.Latency, true))
	} else {
		w("| single-event ingest | not measured | | |\n")
	}
	if s := p.Batch; s != nil {
		w("| batched ingest, %d events/request, %d clients | %s events/s | %s events/s (batched Postgres) | %s |\n",
			s.EventsPerRequest, s.Clients, fmtInt(s.EventsPerSec), orDash(r.Ratios[1].Raw, fmtInt), orDash(r.Ratios[1].Ratio, fmtRatio))
		w("| batched ingest latency p50 / p95 / p99 (202s) | %s | | |\n", fmtLatency(s.Latency, true))
	} else {
		w("| batched ingest | not measured | | |\n")
	}
	if e := p.E2E; e != nil {
		w("| end to end: offered open loop (%.0f%% of single-event max) | %s events/s | | |\n", e.LoadFraction*100, fmtInt(e.OfferedPerSec))
		w("| end to end: send -> 202 p50 / p95 / p99 | %s | | |\n", fmtLatency(e.AcceptLatency, true))
		w("| end to end: send -> published to JetStream (outbox row marked) p50 / p95 / p99 | %s | | |\n", fmtLatency(e.PublishLatency, true))
		w("| end to end: send -> audit entry p50 / p95 / p99 | %s | | |\n", fmtLatency(e.Latency, true))
		if e.Backlog != nil {
			flat := "flat"
			if !e.Backlog.Flat {
				flat = "not flat"
			}
			w("| end to end: backlog (allowed growth %s events) | %s | | |\n", fmtInt(float64(e.Backlog.AllowedGrowth)), flat)
		}
	} else {
		w("| end to end | not measured | | |\n")
	}
	w("| relay publish (during and after the batched step) | %s | %s msg/s (JetStream async) | %s |\n",
		fmtPipeline(p.Relay, "msg/s"), orDash(r.Ratios[2].Raw, fmtInt), orDash(r.Ratios[2].Ratio, fmtRatio))
	w("| relay publish vs atomic batches | | %s msg/s (JetStream atomic batches of %d) | %s |\n",
		orDash(r.Ratios[6].Raw, fmtInt), c.JSAtomicBatch, orDash(r.Ratios[6].Ratio, fmtRatio))
	w("| relay publish vs synchronous publish | | %s msg/s (JetStream sync, %d clients) | %s |\n",
		orDash(r.Ratios[3].Raw, fmtInt), c.JSSyncClients, orDash(r.Ratios[3].Ratio, fmtRatio))
	w("| pipeline sustained, accept -> audit (while ingest ran / after it stopped) | %s | %s msg/s (JetStream async) | %s |\n",
		fmtSustained(p.Audit), orDash(r.Ratios[7].Raw, fmtInt), orDash(r.Ratios[7].Ratio, fmtRatio))
	w("| audit consumer (during and after the batched step) | %s | %s events/s (batched Postgres) | %s |\n",
		fmtPipeline(p.Audit, "entries/s"), orDash(r.Ratios[4].Raw, fmtInt), orDash(r.Ratios[4].Ratio, fmtRatio))
	w("| billing consumer (same window; a SUM meter per App, a usage row per event) | %s | %s events/s (batched Postgres) | %s |\n",
		fmtPipeline(p.Billing, "events/s"), orDash(r.Ratios[5].Raw, fmtInt), orDash(r.Ratios[5].Ratio, fmtRatio))
	sv := p.SchemaValidationNote
	if p.SchemaValidation != nil {
		sv = fmt.Sprintf("%s us/event", strconv.FormatFloat(p.SchemaValidation.MicrosPerEvent, 'f', 2, 64))
	}
	w("| schema validation cost per event | %s | | |\n", sv)
	enc := p.EncryptionNote
	if e := p.Encryption; e != nil {
		enc = fmt.Sprintf("%s us/event (ingest check %s with, %s without); reveal %s us/event",
			strconv.FormatFloat(e.EncryptMicros, 'f', 2, 64), strconv.FormatFloat(e.CheckMicros, 'f', 2, 64),
			strconv.FormatFloat(e.PlainCheckMicros, 'f', 2, 64), strconv.FormatFloat(e.RevealMicros, 'f', 2, 64))
	}
	w("| personal data encryption cost per event | %s | | |\n", enc)
	if mm := p.Memory; mm != nil {
		w("| peak memory of the PROST process (VmHWM) | %s | | |\n", orDash(mm.VmHWMMiB, func(v float64) string { return fmtMiB(v) + " MiB" }))
		w("| largest VmRSS sampled every 500 ms | %s | | |\n", orDash(mm.RSSMaxMiB, func(v float64) string { return fmtMiB(v) + " MiB" }))
	} else {
		w("| peak memory of the PROST process | not measured | | |\n")
	}
	w("\n")

	renderScaleOut(w, r)

	w("## Raw ceilings\n\nMeasured by this program with pgx and nats.go, not by PROST, in the same run.\n\n")
	w("| ceiling | throughput | latency p50 / p99 | failures |\n|---|---|---|---|\n")
	if x := r.Raw.PGSingle; x != nil {
		w("| Postgres, 1 event + 1 outbox row per transaction, %d clients | %s events/s | transaction %s; COMMIT %s | %s |\n",
			x.Clients, fmtInt(x.EventsPerSec), fmtLatency(x.Tx, false), fmtLatency(x.Commit, false), fmtCounts(x.Failures))
	} else {
		w("| Postgres single-row | not measured | | |\n")
	}
	if x := r.Raw.PGBatch; x != nil {
		w("| Postgres, %d events + %d outbox rows per transaction, %d clients | %s events/s (%s tx/s) | transaction %s | %s |\n",
			x.EventsPerTx, x.EventsPerTx, x.Clients, fmtInt(x.EventsPerSec), fmtInt(x.TxPerSec), fmtLatency(x.Tx, false), fmtCounts(x.Failures))
	} else {
		w("| Postgres batched | not measured | | |\n")
	}
	if x := r.Raw.JSAsync; x != nil {
		w("| JetStream async publish, 1 client, at most %d in flight | %s msg/s | | %s |\n", x.MaxPending, fmtInt(x.MsgsPerSec), fmtCounts(x.Failures))
	} else {
		w("| JetStream async publish | not measured | | |\n")
	}
	if x := r.Raw.JSAtomic; x != nil {
		w("| JetStream atomic batches of %d, 1 client, one batch at a time | %s msg/s | | %s |\n", x.BatchSize, fmtInt(x.MsgsPerSec), fmtCounts(x.Failures))
	} else {
		w("| JetStream atomic batches | not measured | | |\n")
	}
	if x := r.Raw.JSSync; x != nil {
		w("| JetStream sync publish, %d clients | %s msg/s | %s | %s |\n", x.Clients, fmtInt(x.MsgsPerSec), fmtLatency(x.Latency, false), fmtCounts(x.Failures))
	} else {
		w("| JetStream sync publish | not measured | | |\n")
	}
	w("\n")

	w("## Details\n\n")
	w("Cores kept busy on average during each measured step (PROST is one process: gateway, relay,\n")
	w("audit and billing consumers and the embedded nats-server; the raw JetStream server runs inside the benchmark;\n")
	w("\"other\" is everything else on the machine, which competes for the same %d cores):\n\n", m.CPUs)
	w("| step | PROST | Postgres | benchmark | other | PROST us/event | PROST+Postgres+benchmark us/event |\n")
	w("|---|---|---|---|---|---|---|\n")
	if x := r.Raw.PGSingle; x != nil {
		w("| raw Postgres single-row %s\n", fmtCPU(x.CPU, x.EventsPerSec))
	}
	if x := r.Raw.PGBatch; x != nil {
		w("| raw Postgres batched %s\n", fmtCPU(x.CPU, x.EventsPerSec))
	}
	if x := r.Raw.JSAsync; x != nil {
		w("| raw JetStream async %s\n", fmtCPU(x.CPU, x.MsgsPerSec))
	}
	if x := r.Raw.JSAtomic; x != nil {
		w("| raw JetStream atomic %s\n", fmtCPU(x.CPU, x.MsgsPerSec))
	}
	if x := r.Raw.JSSync; x != nil {
		w("| raw JetStream sync %s\n", fmtCPU(x.CPU, x.MsgsPerSec))
	}
	if s := p.Single; s != nil {
		w("| single-event ingest %s\n", fmtCPU(s.CPU, s.EventsPerSec))
	}
	if e := p.E2E; e != nil {
		w("| end to end %s\n", fmtCPU(e.CPU, e.OfferedPerSec))
	}
	if s := p.Batch; s != nil {
		w("| batched ingest %s\n", fmtCPU(s.CPU, s.EventsPerSec))
	}
	w("\n")
	if s, e := p.Single, p.E2E; (s != nil && s.Profile != nil) || (e != nil && e.Profile != nil) {
		var a, b *CPUProfile
		if s != nil {
			a = s.Profile
		}
		if e != nil {
			b = e.Profile
		}
		writeComponents(w, a, b)
	}
	if s := p.Single; s != nil {
		w("- Single-event ingest: non-202 answers %s; the relay and the audit consumer %s the step.\n", fmtCounts(s.Non202), fmtDrain(s.DrainAfter))
	}
	if s := p.Batch; s != nil {
		w("- Batched ingest: non-202 answers %s; the relay and the audit consumer %s the step.\n", fmtCounts(s.Non202), fmtDrain(s.DrainAfter))
	}
	if pl := p.Relay; pl != nil {
		w("- Relay window %.1f s, largest outbox backlog %s rows, caught up: %t; after ingest stopped it published %s msg/s.\n",
			pl.WindowSeconds, fmtInt(float64(pl.MaxBacklog)), pl.CaughtUp, orDash(pl.AfterStepPerSec, fmtInt))
	}
	if pl := p.Audit; pl != nil {
		w("- Audit consumer window %.1f s, largest backlog (published, not yet audited) %s events, caught up: %t; after ingest stopped it audited %s events/s.\n",
			pl.WindowSeconds, fmtInt(float64(pl.MaxBacklog)), pl.CaughtUp, orDash(pl.AfterStepPerSec, fmtInt))
	}
	if pl := p.Billing; pl != nil {
		w("- Billing consumer window %.1f s, largest backlog (published, not yet counted) %s events, caught up: %t; after ingest stopped it counted %s events/s.\n",
			pl.WindowSeconds, fmtInt(float64(pl.MaxBacklog)), pl.CaughtUp, orDash(pl.AfterStepPerSec, fmtInt))
	}
	if e := p.E2E; e != nil {
		w("- End to end: %s sent, %s accepted, non-202 %s, %d dropped by the benchmark, latest send %s ms behind schedule,\n",
			fmtInt(float64(e.Sent)), fmtInt(float64(e.Accepted)), fmtCounts(e.Non202), e.HarnessDropped, fmtMs(e.HarnessLateMaxMs))
		w("  %d accepted events without an audit entry at the end (the relay and the audit consumer %s the step).\n", e.Missing, fmtDrain(e.DrainAfter))
		if bl := e.Backlog; bl != nil {
			w("- End to end audit lag, sampled each second: %s.\n", fmtSeries(bl.AuditLag))
			w("- End to end outbox backlog, sampled each second: %s.\n", fmtSeries(bl.OutboxPending))
		}
	}
	w("- Events answered 202 (warm-ups included): %s; rows in events at the end: %s.\n",
		fmtInt(float64(p.AcceptedEvents)), orDash(p.StoredEvents, func(v int64) string { return fmtInt(float64(v)) }))
	if mm := p.Memory; mm != nil && len(mm.Marks) > 0 {
		var parts []string
		for _, k := range mm.Marks {
			parts = append(parts, fmt.Sprintf("%s %s / %s", k.At, fmtMiB(k.VmHWMMiB), fmtMiB(k.VmRSSMiB)))
		}
		w("- PROST memory, VmHWM / VmRSS in MiB: %s.\n", strings.Join(parts, "; "))
	}
	w("- Warnings and errors PROST logged: %s.\n", fmtCounts(p.Logged))
	if len(r.Errors) > 0 {
		w("- Errors of this run: %s.\n", strings.Join(r.Errors, "; "))
	}
	w("\n")

	if r.Scale != nil {
		renderScale(w, r.Scale)
	}

	w("## How measured\n\n")
	w("- One run, one machine, one step at a time; the raw ceilings first, then PROST. Every step runs\n")
	w("  a warm-up that no figure includes; a closed-loop step counts only operations that start and end\n")
	w("  inside the measured window.\n")
	w("- Payload: the same structured CloudEvent (an `order.placed` with `actorid`, `action`,\n")
	w("  `partitionkey` and a JSON order; %d bytes with `tenantid`) in every step, with a unique id.\n", c.PayloadBytes)
	w("- Raw Postgres: a fresh database migrated with PROST's migrations (`pkg/migrate`), so the same\n")
	w("  tables, indexes and triggers. Single-row: `BEGIN; INSERT INTO events ... RETURNING seq;\n")
	w("  INSERT INTO outbox ...; COMMIT` per event, %d clients. Batched: %d events in one `INSERT ... SELECT\n", c.RawPGClients, c.BatchSize)
	w("  FROM unnest(...) RETURNING seq` and their outbox rows in a second, per transaction.\n")
	w("  Synchronous commit on, as PROST runs.\n")
	w("- Raw JetStream: an embedded nats-server (`pkg/natsembed`, file store, `SyncAlways` like `prost dev`)\n")
	w("  with PROST's `PROST_EVENTS` stream from `nats/streams`, PROST's subjects and `Nats-Msg-Id`.\n")
	w("  Async: 1 connection, at most %d acks outstanding, acks counted in the window. Atomic: 1 connection,\n", c.JSAsyncMaxPending)
	w("  batches of %d (`Nats-Batch-Id`, `allow_atomic`) one at a time, as the relay publishes. Sync: %d connections.\n", c.JSAtomicBatch, c.JSSyncClients)
	w("- PROST: the real `bin/prost dev` as a subprocess with a fresh database, a temporary data\n")
	w("  directory, free loopback ports, `PROST_RATE_LIMIT=-1` and `PROST_LOG_LEVEL=warn`; other\n")
	w("  settings at their defaults (so one partition: `prost dev` on a new data directory, decision 0018;\n")
	w("  runs before 2026-12-03 had four). HTTP/1.1 keep-alive clients. Single-event and batched ingest use\n")
	w("  the demo App (one tenant); latency is request to 202 and counts 202 answers only.\n")
	w("- End to end: a separate App; events scheduled on a ticker at %.0f%% of the measured single-event\n", c.E2ELoad*100)
	w("  maximum (open loop: a slow answer never delays the next send; up to %d requests in flight),\n", c.E2EWorkers)
	w("  latency from each event's send time to the `recorded_at` of its `audit_log` row, read from\n")
	w("  Postgres afterwards (same machine clock; `recorded_at` is stamped in the audit transaction\n")
	w("  just before its commit).\n")
	w("  Backlog flat: over the step, the audit lag (accepted minus audited) and the outbox backlog each\n")
	w("  end within 2 seconds' worth of events of where they started and their trend adds less than that.\n")
	w("- Relay and audit consumer: from the start of the batched step until each caught up with\n")
	w("  ingest (at most %s after the step), from the stream's message count and the audit chain\n", fmtDuration(c.RelayWindowSeconds))
	w("  heads sampled every 500 ms. Backlogged throughout means the stage always had more than %s\n", fmtInt(backlogThreshold))
	w("  events waiting (the relay's: outbox rows; the audit consumer's: published, not yet audited), so\n")
	w("  its rate is its own ceiling on this machine; otherwise it is bounded by the work it was given.\n")
	w("- Billing consumer: the same window, from the billing-usage consumer's applied messages\n")
	w("  (its idempotency records in `consumer_processed`) sampled with the rest. Each App of the run\n")
	w("  has one SUM meter on the events' type (value, currency group, customer), so every event is\n")
	w("  turned into an exact-decimal usage row in the consumer's transaction.\n")
	w("- Between PROST steps the benchmark waits (at most %s) for the relay and the audit and billing consumers to\n", fmtDuration(c.DrainSeconds))
	w("  catch up, so no step inherits the previous one's backlog.\n")
	w("- Schema validation: the gateway's own check (`pkg/domain/registry`) of the payload against a registered\n")
	w("  schema of its fields, compiled schema cached, timed in the benchmark's process for a tenth of a\n")
	w("  step (the cost is far below the noise of an HTTP step). The load steps send an unregistered type\n")
	w("  with `PROST_UNREGISTERED_TYPES=accept`, so their figures include no validation.\n")
	w("- Encryption: the same check for the payload under a contract classifying `/customer_id` and `/items`\n")
	w("  (data subject `/customer_id`, 997 customers, keys cached after first use) against an unclassified type;\n")
	w("  reveal decrypts one stored event's data for its tenant. See docs/privacy.md.\n")
	w("- Memory: VmHWM of the `prost dev` process (which embeds nats-server) from `/proc/<pid>/status`\n")
	w("  at the end, and VmRSS sampled every 500 ms. CPU: utime+stime from `/proc`.\n")
	w("- Pipeline sustained: audit entries written per second from the start of the batched step to its end\n")
	w("  (while ingest ran) and from its end until the audit log caught up (after), beside the JetStream ceiling.\n")
	w("- Targets are issue 13's: single-event ingest >= %.1fx the raw single-row rate with p99 <= %.0f ms and\n", targetSingleRatio, targetSingleP99ms)
	w("  PROST's CPU per accepted event <= %.0f us; end to end at half load p99 <= %.0f ms with the backlog flat;\n", targetCPUPerEvent, targetE2EP99ms)
	w("  the relay >= %.1fx the raw JetStream async rate with the audit consumer caught up; peak memory <= %.0f MiB\n", targetRelayRatio, targetPeakMemoryMB)
	w("  (VmHWM covers the whole run: the batched step's backlog and its catching up included); and issue 2's\n")
	w("  batched ingest >= %.0f%% of the raw batched rate.\n\n", targetBatchRatio*100)

	var not []string
	if p.SchemaValidation == nil {
		not = append(not, "schema validation cost per event: "+strings.TrimPrefix(p.SchemaValidationNote, "not measured: "))
	}
	if p.Encryption == nil {
		not = append(not, "personal data encryption cost per event: "+strings.TrimPrefix(p.EncryptionNote, "not measured: "))
	}
	for _, t := range r.Targets {
		if t.Met == nil {
			not = append(not, t.Name+": a figure it needs was not measured")
		}
	}
	if len(not) > 0 {
		w("## Not measured\n\n")
		for _, n := range not {
			w("- %s.\n", n)
		}
	}
	return b.String()
}

func orText(s string) string {
	if s == "" {
		return "not measured"
	}
	return s
}

// renderScale writes the scale curves' table.
func renderScale(w func(string, ...any), sc *Scale) {
	w("## Scale curves\n\n| curve | small | large | ratio (large / small) | wanted |\n|---|---|---|---|---|\n")
	for _, c := range sc.Curves {
		val := func(v *float64) string {
			if v == nil {
				return "not measured"
			}
			if c.Unit == "ms" {
				return fmtMs(*v) + " ms"
			}
			return fmtInt(*v) + " " + c.Unit
		}
		want := ""
		if c.Want > 0 {
			if c.Unit == "ms" {
				want = fmt.Sprintf("<= %.1fx", c.Want)
			} else {
				want = fmt.Sprintf(">= %.1fx", c.Want)
			}
		}
		w("| %s | %s at %s | %s at %s | %s | %s |\n", c.Name, val(c.Small), c.SmallAt, val(c.Large), c.LargeAt,
			orDash(c.Ratio, fmtRatio), want)
	}
	w("\n")
	for _, c := range sc.Curves {
		if c.Detail != "" {
			w("- %s: %s.\n", c.Name, c.Detail)
		}
		if c.Error != "" {
			w("- %s: failed: %s.\n", c.Name, c.Error)
		}
	}
	w("\n")
}

// renderScaleOut renders the scale-out step, when it ran.
func renderScaleOut(w func(string, ...any), r *Results) {
	so := r.ScaleOut
	if so == nil {
		return
	}
	w("## Scale-out: two relays, two instances of each consumer\n\n")
	w("Separate `prost serve` processes on a nats-server of the benchmark's own (file store, sync_interval always), one stage at a time\n")
	w("through a backlog of %s events of %d Apps (each with a SUM meter and a rule on the events' type whose condition never holds):\n", fmtInt(float64(so.Events)), scaleOutApps)
	w("a gateway alone wrote it; then two `prost serve relay` published it with no consumer\n")
	w("running; then two `prost serve governance rules billing` worked through the stream together. The split is each process's\n")
	w("`/metrics` (`prost_relay_published_total`; `prost_consumer_processed_total`, applied and skipped). One relay leads at a time\n")
	w("(a Postgres advisory lock, decision 0003); the consumers share their lanes through leases in Postgres (docs/delivery.md):\n")
	w("the second instance starts a moment after the first, which holds every lane until the leases rebalance (within about two\n")
	w("lease intervals, 4 s by default), so a stage done in a few seconds is mostly the first instance's; the lanes each held at the end\n")
	w("show the balance. The audit consumer is one lane (one durable over every partition, in stream order, its chains in the order\n")
	w("events were accepted), applied in batches by one worker of the instance holding it (failing tenants move to retry workers):\n")
	w("it scales up, not out, and its second instance\n")
	w("stands by holding the replay lane. The others have a lane per partition.\n\n")
	if so.Error != "" {
		w("Not completed: %s\n\n", so.Error)
	}
	split := func(by []int64) string {
		if len(by) == 0 {
			return "not measured"
		}
		var total int64
		parts := make([]string, len(by))
		for i, n := range by {
			total += n
			parts[i] = fmtInt(float64(n))
		}
		out := strings.Join(parts, " / ")
		if total > 0 {
			pct := make([]string, len(by))
			for i, n := range by {
				pct[i] = fmt.Sprintf("%.0f%%", float64(n)*100/float64(total))
			}
			out += " (" + strings.Join(pct, " / ") + ")"
		}
		return out
	}
	w("| stage | rate | time | work per instance | lanes per instance at the end | vs raw |\n|---|---|---|---|---|---|\n")
	if st := so.Relay; st != nil {
		q := r.Ratios[len(r.Ratios)-1]
		w("| 2 relays (publish) | %s msg/s | %s s | %s | one leader | %s of %s msg/s (JetStream async) |\n", fmtInt(st.PerSec), strconv.FormatFloat(st.Seconds, 'f', 1, 64),
			split(st.ByInstance), orDash(q.Ratio, fmtRatio), orDash(q.Raw, fmtInt))
	}
	for _, st := range so.Consumers {
		lanes := make([]string, len(st.LanesByInstance))
		for i, n := range st.LanesByInstance {
			lanes[i] = strconv.FormatInt(n, 10)
		}
		w("| 2 x %s | %s events/s | %s s | %s | %s | |\n", st.Name, fmtInt(st.PerSec), strconv.FormatFloat(st.Seconds, 'f', 1, 64), split(st.ByInstance),
			orText(strings.Join(lanes, " / ")))
	}
	if len(so.Consumers) > 0 {
		w("\nThe three consumers ran at once, sharing the machine's %d cores, and were done after %s s.\n", r.Machine.CPUs, strconv.FormatFloat(so.ConsumersSeconds, 'f', 1, 64))
	}
	w("\n")
}

// renderScaleMarkdown renders a run of the scale curves alone.
func renderScaleMarkdown(r *Results, jsonName string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	w("# PROST scale curves\n\n")
	w("Generated by `cmd/prost-bench` on %s (`make bench-scale`); every run overwrites this page and [%s](%s).\n", r.Date, jsonName, jsonName)
	w("Each curve measures one piece of work at a small and a large size of what it grows with; flat is a ratio near 1.\n")
	w("The large sizes default to the issue's (3M events, a 3M-entry audit chain, 500 rules, 1,000 Apps); BENCH_SCALE_* change them.\n\n")
	w("Command: `%s`  \nWall time: %s.\n\n", r.Command, fmtDuration(r.WallSeconds))
	w("## Machine\n\n| | |\n|---|---|\n")
	w("| CPUs (nproc) | %d |\n| memory | %s MiB |\n| OS | %s |\n| Go | %s |\n| Postgres | %s |\n| load average when the run began | %.2f |\n\n",
		m.CPUs, fmtInt(float64(m.MemoryMiB)), m.OS, m.Go, orText(m.Postgres), m.LoadAverage)
	w("## Targets\n\n| target | wanted | measured | verdict |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		if strings.HasPrefix(t.Name, "scale: ") {
			w("| %s | %s | %s | %s |\n", t.Name, t.Want, orText(t.Measured), verdict(t.Met))
		}
	}
	w("\n")
	renderScale(w, r.Scale)
	if mm := r.Prost.Memory; mm != nil {
		w("- PROST's peak memory over the run (VmHWM): %s.\n", orDash(mm.VmHWMMiB, func(v float64) string { return fmtMiB(v) + " MiB" }))
	}
	w("- Warnings and errors PROST logged: %s.\n", fmtCounts(r.Prost.Logged))
	if len(r.Errors) > 0 {
		w("- Errors of this run: %s.\n", strings.Join(r.Errors, "; "))
	}
	w("\n## How measured\n\n")
	w("- One `bin/prost dev` with a fresh database, `PROST_RATE_LIMIT=-1`, `PROST_UNREGISTERED_TYPES=accept` and\n")
	w("  `PROST_MAX_RULES` raised to hold the large rule set; other settings at their defaults. The curves run in turn on it.\n")
	w("- `since`: `GET /v1/events?since=<a minute ago>&limit=100` for one App, median of 5, before and after its older\n")
	w("  events are written straight into the events table (no outbox rows, so the pipeline does not see them).\n")
	w("- Rules: the rules consumer's rate through a fixed number of events of one App (batches of 100), from the\n")
	w("  first send to its last handled message (its idempotency records), with 10 and then 500 active rules\n")
	w("  whose filters name 50 event types (one rule in 50 on the events' type) and whose condition never holds.\n")
	w("- Apps: closed-loop single-event ingest by 64 clients, all as one App, then each request as the next of the Apps;\n")
	w("  the two alternate %d times and each size's figure is the median of its runs (each run's ratio is listed).\n", appsPairs)
	w("  Before the first run every App records one event, so what PROST does once per new App is not counted in\n")
	w("  the first 1,000-App run alone.\n")
	w("- Audit verify: `GET /admin/v1/audit/verify?app_id=` (what `prost audit verify --app` asks) of a chain written with\n")
	w("  `pkg/domain/audit`, as entries verified per second, with PROST's memory around the large one.\n")
	return b.String()
}

// writeComponents is the CPU profiles of the single-event and end to end
// steps split by component, side by side; either may be nil.
func writeComponents(w func(string, ...any), single, e2e *CPUProfile) {
	w("Where PROST's CPU went: a CPU profile of each step's measured window (`PROST_PPROF_ADDR`, nothing\n")
	w("else sampled), split by the pprof label `component` that every goroutine a service starts carries\n")
	w("(pkg/lifecycle); per event is the share times the step's PROST CPU per event (accepted in the\n")
	w("single-event step, offered in the end to end one):\n\n")
	w("| component | single-event: share | us/event | end to end: share | us/event |\n|---|---|---|---|---|\n")
	var names []string
	seen := map[string]bool{}
	at := func(c *CPUProfile) map[string]ComponentCPU {
		m := map[string]ComponentCPU{}
		if c == nil {
			return m
		}
		for _, x := range c.Components {
			m[x.Component] = x
			if !seen[x.Component] {
				seen[x.Component] = true
				names = append(names, x.Component)
			}
		}
		return m
	}
	a, b := at(single), at(e2e)
	cell := func(m map[string]ComponentCPU, name string) string {
		x, ok := m[name]
		if !ok {
			return " | "
		}
		return fmt.Sprintf("%.0f%% | %s", x.Share*100, fmtInt(x.MicrosPerEvent))
	}
	for _, name := range names {
		w("| %s | %s | %s |\n", name, cell(a, name), cell(b, name))
	}
	w("\n")
}
