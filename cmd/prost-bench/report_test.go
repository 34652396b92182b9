package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{7}, 99, 7},
		{"p50 of 100", hundred, 50, 50 * time.Millisecond},
		{"p95 of 100", hundred, 95, 95 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p100 of 100", hundred, 100, 100 * time.Millisecond},
		{"p99 of 10 is the largest", hundred[:10], 99, 10 * time.Millisecond},
		{"p50 of 3 is the middle", []time.Duration{1, 2, 3}, 50, 2},
		{"tiny p is the smallest", []time.Duration{1, 2, 3}, 0.001, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, percentile(tc.in, tc.p))
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	require.Nil(t, summarize(nil))
	l := summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 1500 * time.Microsecond})
	require.Equal(t, &Latency{Count: 4, P50ms: 1.5, P95ms: 3, P99ms: 3, MaxMs: 3}, l)
}

func TestRatio(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		num, den *float64
		want     *float64
	}{
		{"both measured", ptr(5000.0), ptr(2500.0), ptr(2.0)},
		{"numerator missing", nil, ptr(2500.0), nil},
		{"denominator missing", ptr(5000.0), nil, nil},
		{"zero denominator", ptr(5000.0), ptr(0.0), nil},
		{"zero numerator", ptr(0.0), ptr(10.0), ptr(0.0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, ratio(tc.num, tc.den))
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{fmtInt(0), "0"},
		{fmtInt(999.4), "999"},
		{fmtInt(999.5), "1,000"},
		{fmtInt(1234567), "1,234,567"},
		{fmtInt(-1234), "-1,234"},
		{fmtMs(12.3456), "12.35"},
		{fmtRatio(2.0), "2.00x"},
		{fmtMiB(123.45), "123.5"},
		{fmtDuration(20), "20s"},
		{fmtDuration(222.4), "3m42s"},
		{verdict(nil), "not measured"},
		{verdict(ptr(true)), "**met**"},
		{verdict(ptr(false)), "**not met**"},
		{fmtCounts(map[string]int64{"503": 2, "429": 1}), "429: 1, 503: 2"},
		{fmtCounts(nil), "none"},
	} {
		require.Equal(t, tc.want, tc.got)
	}
}

func TestSeriesFlat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		samples []int64
		allowed int64
		want    bool
	}{
		{"constant", []int64{100, 100, 100, 100}, 10, true},
		{"noisy but level", []int64{100, 140, 90, 130, 95}, 10, true},
		{"ends a little higher", []int64{100, 104, 108}, 10, true},
		{"grows steadily", []int64{100, 200, 300, 400}, 100, false},
		{"spike at the end", []int64{100, 100, 100, 500}, 100, false},
		{"shrinks", []int64{400, 300, 200, 100}, 10, true},
		{"one sample is not enough", []int64{100}, 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSeries(tc.samples, time.Second)
			require.Equal(t, tc.want, s.flat(tc.allowed, time.Duration(len(tc.samples)-1)*time.Second))
		})
	}
	s := newSeries([]int64{1, 3, 5}, time.Second)
	require.Equal(t, Series{Samples: []int64{1, 3, 5}, Min: 1, Max: 5, First: 1, Last: 5, SlopePerSec: 2}, s)
}

func TestProcParsers(t *testing.T) {
	t.Parallel()
	status := []byte("Name:\tprost\nVmPeak:\t 1000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n")
	kb, err := parseStatusKB(status, "VmHWM")
	require.NoError(t, err)
	require.Equal(t, int64(204800), kb)
	_, err = parseStatusKB(status, "VmSwap")
	require.Error(t, err)

	stat := []byte("4242 (prost dev) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 12 0 100 0 0")
	sec, err := parseStatCPU(stat)
	require.NoError(t, err)
	require.InDelta(t, 4.0, sec, 1e-9)
}

func TestPayload(t *testing.T) {
	t.Parallel()
	for _, tenant := range []string{"", "0193aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee"} {
		b := appendEvent(nil, eventID("single", 63, 1234567), 1234567, tenant)
		var ev map[string]any
		require.NoError(t, json.Unmarshal(b, &ev), string(b))
		require.Equal(t, "1.0", ev["specversion"])
		require.Equal(t, "single-63-1234567", ev["id"])
		require.GreaterOrEqual(t, len(b), 300)
		require.LessOrEqual(t, len(b), 500)
		_, stamped := ev["tenantid"]
		require.Equal(t, tenant != "", stamped)
	}
}

// fullResults is a run where everything was measured.
func fullResults() *Results {
	r := &Results{Date: "2026-11-27 05:37 UTC", Command: "BENCH_DURATION=20s make bench", WallSeconds: 222}
	r.Config = ConfigReport{StepSeconds: 20, WarmupSeconds: 2, RawPGClients: 8, BatchSize: 100, JSAsyncMaxPending: 4096, JSAtomicBatch: 1000,
		JSSyncClients: 4, SingleClients: 64, BatchClients: 12, E2ELoad: 0.5, PayloadBytes: 450, RelayWindowSeconds: 30}
	r.Machine = Machine{CPUs: 2, MemoryMiB: 24000, OS: "linux/amd64", Go: "go1.26.8", Postgres: "15.20", NATSServer: "2.15.3"}
	r.Raw.PGSingle = &RawPG{Clients: 8, EventsPerTx: 1, EventsPerSec: 2500, TxPerSec: 2500,
		Tx: &Latency{P50ms: 3, P99ms: 9}, Commit: &Latency{P50ms: 1, P99ms: 4}}
	r.Raw.PGBatch = &RawPG{Clients: 8, EventsPerTx: 100, EventsPerSec: 50000, TxPerSec: 500, Tx: &Latency{P50ms: 15, P99ms: 40}}
	r.Raw.JSAsync = &RawJS{Mode: "async", Clients: 1, MaxPending: 4096, MsgsPerSec: 20000}
	r.Raw.JSAtomic = &RawJS{Mode: "atomic", Clients: 1, BatchSize: 1000, MsgsPerSec: 50000}
	r.Raw.JSSync = &RawJS{Mode: "sync", Clients: 4, MsgsPerSec: 16000, Latency: &Latency{P50ms: 0.2, P99ms: 1}}
	r.Prost.Single = &Ingest{Clients: 64, EventsPerRequest: 1, EventsPerSec: 6000, Latency: &Latency{P50ms: 8, P95ms: 15, P99ms: 20},
		Non202: map[string]int64{"503": 3}, CPU: &CPUShare{Prost: 0.6, Postgres: 0.6, Harness: 0.3, Other: 0.1}, DrainAfter: &Drain{Seconds: 1.2, Complete: true}}
	r.Prost.Batch = &Ingest{Clients: 12, EventsPerRequest: 100, EventsPerSec: 30000, Latency: &Latency{P50ms: 50, P95ms: 80, P99ms: 90}}
	r.Prost.E2E = &E2E{LoadFraction: 0.5, OfferedPerSec: 3000, Sent: 60000, Accepted: 60000,
		AcceptLatency: &Latency{P50ms: 5, P95ms: 9, P99ms: 12}, Latency: &Latency{P50ms: 20, P95ms: 40, P99ms: 60},
		Backlog: &Backlog{AllowedGrowth: 6000, AuditLag: newSeries([]int64{50, 60, 55}, time.Second), Flat: true}}
	r.Prost.Relay = &Pipeline{WindowSeconds: 30, PerSec: 25000, Backlogged: true, CaughtUp: true, MaxBacklog: 90000}
	r.Prost.Audit = &Pipeline{WindowSeconds: 30, PerSec: 15000, CaughtUp: true, DuringStepPerSec: ptr(14000.0), AfterStepPerSec: ptr(18000.0)}
	r.Prost.Billing = &Pipeline{WindowSeconds: 30, PerSec: 12000, CaughtUp: true}
	r.Prost.SchemaValidationNote = notBuiltSchemaRegistry
	r.Prost.Encryption = &Encryption{CheckMicros: 9.5, PlainCheckMicros: 2.25, EncryptMicros: 7.25, RevealMicros: 3.125}
	r.Prost.Memory = &Memory{VmHWMMiB: ptr(180.0), RSSMaxMiB: ptr(175.5), Samples: 100}
	return r
}

// all is the six main targets' verdicts: v, except at the indexes given,
// which are !v.
func all(v bool, except ...int) []*bool {
	out := make([]*bool, 6)
	for i := range out {
		out[i] = ptr(v != slices.Contains(except, i))
	}
	return out
}

func TestDeriveTargets(t *testing.T) {
	t.Parallel()
	met := func(ts []Target) []*bool {
		var out []*bool
		for _, t := range ts {
			out = append(out, t.Met)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		change func(*Results)
		want   []*bool
	}{
		{"all met", func(*Results) {}, all(true)},
		{"single ratio under 1.2x", func(r *Results) { r.Prost.Single.EventsPerSec, r.Prost.Single.CPU.Prost = 2999, 0.3 }, all(true, 0)},
		{"single p99 over 25 ms", func(r *Results) { r.Prost.Single.Latency.P99ms = 25.01 }, all(true, 0)},
		{"CPU over 130 us per event", func(r *Results) { r.Prost.Single.CPU.Prost = 0.79 }, all(true, 1)},
		{"batched under half", func(r *Results) { r.Prost.Batch.EventsPerSec = 24999 }, all(true, 2)},
		{"backlog growing", func(r *Results) { r.Prost.E2E.Backlog.Flat = false }, all(true, 3)},
		{"end to end p99 over 250 ms", func(r *Results) { r.Prost.E2E.Latency.P99ms = 250.1 }, all(true, 3)},
		{"events never audited", func(r *Results) { r.Prost.E2E.Missing = 1 }, all(true, 3)},
		{"relay under 0.8x", func(r *Results) { r.Prost.Relay.PerSec = 15999 }, all(true, 4)},
		{"audit consumer behind", func(r *Results) { r.Prost.Audit.CaughtUp = false }, all(true, 4)},
		{"memory over 256 MiB", func(r *Results) { r.Prost.Memory.VmHWMMiB = ptr(256.1) }, all(true, 5)},
		{"raw ceilings missing", func(r *Results) { r.Raw.PGSingle, r.Raw.PGBatch, r.Raw.JSAsync = nil, nil, nil },
			[]*bool{nil, ptr(true), nil, ptr(true), nil, ptr(true)}},
		{"prost missing", func(r *Results) {
			r.Prost.Single, r.Prost.Batch, r.Prost.E2E, r.Prost.Memory, r.Prost.Audit = nil, nil, nil, nil, nil
		}, []*bool{nil, nil, nil, nil, nil, nil}},
		{"scale curves", func(r *Results) {
			r.Scale = &Scale{Curves: []Curve{
				{Name: "since", Unit: "ms", Small: ptr(10.0), Large: ptr(15.0), Ratio: ptr(1.5), Want: 2},
				{Name: "rules", Unit: "events/s", Small: ptr(1000.0), Large: ptr(600.0), Ratio: ptr(0.6), Want: 0.7},
				{Name: "no target", Unit: "ms", Small: ptr(1.0)},
			}}
		}, append(all(true), ptr(true), ptr(false))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := fullResults()
			tc.change(r)
			r.derive()
			require.Equal(t, tc.want, met(r.Targets))
		})
	}
	r := fullResults()
	r.derive()
	require.Equal(t, "2.40x, p99 20.00 ms", r.Targets[0].Measured)
	require.Equal(t, "100 us", r.Targets[1].Measured)
	require.Equal(t, "60%", r.Targets[2].Measured)
	require.Equal(t, "1.25x, audit consumer caught up", r.Targets[4].Measured)
	require.InDelta(t, 25000.0/20000, *r.Ratios[2].Ratio, 1e-12)
	require.InDelta(t, 25000.0/50000, *r.Ratios[6].Ratio, 1e-12)
	require.Equal(t, "billing consumer / raw batched Postgres", r.Ratios[5].Name)
	require.InDelta(t, 12000.0/50000, *r.Ratios[5].Ratio, 1e-12)
}

func TestRenderMarkdown(t *testing.T) {
	t.Parallel()
	r := fullResults()
	r.derive()
	md := renderMarkdown(r, "benchmarks.json")
	require.Equal(t, md, renderMarkdown(r, "benchmarks.json"), "rendering must be deterministic")
	for _, want := range []string{
		"Command: `BENCH_DURATION=20s make bench`",
		"| single-event ingest | >= 1.2x raw single-row Postgres, p99 <= 25 ms | 2.40x, p99 20.00 ms | **met** |",
		"| relay publish vs atomic batches | | 50,000 msg/s (JetStream atomic batches of 1000) | 0.50x |",
		"| pipeline sustained, accept -> audit (while ingest ran / after it stopped) | 14,000 / 18,000 events/s | 20,000 msg/s (JetStream async) | 0.75x |",
		"| single-event ingest, 64 clients | 6,000 events/s | 2,500 events/s (single-row Postgres) | 2.40x |",
		"| batched ingest, 100 events/request, 12 clients | 30,000 events/s | 50,000 events/s (batched Postgres) | 0.60x |",
		"| schema validation cost per event | not measured: the schema registry is not built yet | | |",
		"| personal data encryption cost per event | 7.25 us/event (ingest check 9.50 with, 2.25 without); reveal 3.12 us/event | | |",
		"| peak memory of the PROST process (VmHWM) | 180.0 MiB | | |",
		"| billing consumer (same window; a SUM meter per App, a usage row per event) | 12,000 events/s (not backlogged throughout: a lower bound) | 50,000 events/s (batched Postgres) | 0.24x |",
		"| single-event ingest | 0.60 | 0.60 | 0.30 | 0.10 | 100 | 250 |",
		"non-202 answers 503: 3",
		"- schema validation cost per event: the schema registry is not built yet.",
	} {
		require.Contains(t, md, want)
	}

	r.Prost.Single, r.Prost.Memory, r.Prost.Encryption, r.Prost.EncryptionNote = nil, nil, nil, "not measured: no database"
	r.derive()
	md = renderMarkdown(r, "benchmarks.json")
	require.Contains(t, md, "| personal data encryption cost per event | not measured: no database | | |")
	require.Contains(t, md, "- personal data encryption cost per event: no database.")
	require.Contains(t, md, "| single-event ingest | not measured | | |")
	require.Contains(t, md, "- single-event ingest: a figure it needs was not measured.")
	require.Contains(t, md, "- peak memory: a figure it needs was not measured.")
}

func TestResultsJSON(t *testing.T) {
	t.Parallel()
	r := fullResults()
	r.derive()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	prost := back["prost"].(map[string]any)
	require.Nil(t, prost["schema_validation"], "an unmeasured figure is null")
	require.Equal(t, notBuiltSchemaRegistry, prost["schema_validation_note"])
	require.Len(t, back["targets"], 6)
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := configFromEnv(env(nil))
	require.NoError(t, err)
	require.Equal(t, defaultConfig(), c)
	require.Equal(t, "docs/benchmarks.json", c.jsonOut())
	require.Equal(t, "postgres://postgres@127.0.0.1:5432/prost_bench_x?sslmode=disable", c.databaseURL("prost_bench_x"))

	c, err = configFromEnv(env(map[string]string{"BENCH_DURATION": "3s"}))
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, c.Duration)

	_, err = configFromEnv(env(map[string]string{"BENCH_DURATION": "soon"}))
	require.ErrorContains(t, err, "BENCH_DURATION")
	_, err = configFromEnv(env(map[string]string{"BENCH_POSTGRES_URL": "postgres://db.example.com/x"}))
	require.ErrorContains(t, err, "not a loopback address")
}

func TestPipelineRate(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	// One sample a second; the step runs from 1 s to 3 s; the relay publishes
	// 100/s and its backlog empties at 5 s.
	var samples []sample
	for i, pending := range []int64{0, 5000, 12000, 15000, 6000, 0, 0} {
		samples = append(samples, sample{at: at(float64(i)), published: uint64(100 * i), pending: pending})
	}
	relay := func(s sample) (float64, int64, bool) { return float64(s.published), s.pending, s.pending == 0 }
	for _, tc := range []struct {
		name    string
		samples []sample
		t0, t1  time.Time
		want    *Pipeline
	}{
		{"backlogged until caught up", samples, at(1), at(3),
			&Pipeline{WindowSeconds: 4, PerSec: 100, Backlogged: true, CaughtUp: true, MaxBacklog: 15000, AfterStepPerSec: ptr(100.0), DuringStepPerSec: ptr(100.0)}},
		{"window from the step start", samples, at(0), at(3),
			&Pipeline{WindowSeconds: 5, PerSec: 100, Backlogged: false, CaughtUp: true, MaxBacklog: 15000, AfterStepPerSec: ptr(100.0), DuringStepPerSec: ptr(100.0)}},
		{"never caught up", samples[:5], at(1), at(3),
			&Pipeline{WindowSeconds: 3, PerSec: 100, Backlogged: true, CaughtUp: false, MaxBacklog: 15000, AfterStepPerSec: ptr(100.0), DuringStepPerSec: ptr(100.0)}},
		{"caught up within a second of the step", samples, at(1), at(4.5),
			&Pipeline{WindowSeconds: 4, PerSec: 100, Backlogged: true, CaughtUp: true, MaxBacklog: 15000, DuringStepPerSec: ptr(100.0)}},
		{"too few samples", samples[:1], at(0), at(3), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, pipelineRate(tc.samples, tc.t0, tc.t1, relay))
		})
	}
}

func TestRenderScale(t *testing.T) {
	t.Parallel()
	r := &Results{Date: "2026-12-01 10:00 UTC", Command: "make bench-scale"}
	r.Scale = &Scale{Curves: []Curve{
		{Name: "GET /v1/events?since=", Unit: "ms", SmallAt: "~0 rows", LargeAt: "1,000,000 rows", Small: ptr(10.0), Large: ptr(12.5),
			Ratio: ptr(1.25), Want: 2, Detail: "stored straight"},
		{Name: "rules consumer", Unit: "events/s", SmallAt: "10 rules", LargeAt: "500 rules", Small: ptr(3000.0), Error: "boom", Want: 0.7},
	}}
	r.derive()
	md := renderMarkdown(r, "benchmarks-scale.json")
	for _, want := range []string{
		"# PROST scale curves",
		"| GET /v1/events?since= | 10.00 ms at ~0 rows | 12.50 ms at 1,000,000 rows | 1.25x | <= 2.0x |",
		"| rules consumer | 3,000 events/s at 10 rules | not measured at 500 rules | not measured | >= 0.7x |",
		"| scale: GET /v1/events?since= | GET /v1/events?since= at 1,000,000 rows <= 2.0x of ~0 rows | 1.25x | **met** |",
		"- rules consumer: failed: boom.",
	} {
		require.Contains(t, md, want)
	}
	require.NotContains(t, md, "## PROST figures")
}

func TestKeepWritten(t *testing.T) {
	t.Parallel()
	md := "# x\n\n## Figures\n\n## How measured\n\n- a\n"
	require.Equal(t, md, keepWritten(md, "old report without markers"))
	old := "# old\n" + keptStart + "\n## Findings\n\nby hand\n" + keptEnd + "\n## How measured\n"
	got := keepWritten(md, old)
	require.Equal(t, "# x\n\n## Figures\n\n"+keptStart+"\n## Findings\n\nby hand\n"+keptEnd+"\n\n## How measured\n\n- a\n", got)
	require.Equal(t, got, keepWritten(got, got), "a second run keeps it once")
}

func TestRenderScaleOut(t *testing.T) {
	t.Parallel()
	r := &Results{Date: "2026-12-01 10:00 UTC", Command: "make bench"}
	r.Machine.CPUs = 2
	r.Raw.JSAsync = &RawJS{Mode: "async", MsgsPerSec: 10000}
	r.ScaleOut = &ScaleOut{Events: 50000,
		Relay: &ScaleOutStage{Name: "relay", PerSec: 9000, Seconds: 5.5, ByInstance: []int64{50000, 0}, Complete: true},
		Consumers: []ScaleOutStage{
			{Name: "governance-audit", PerSec: 4000, Seconds: 12.5, ByInstance: []int64{30000, 20000}, LanesByInstance: []int64{8, 8}, Complete: true},
		},
		ConsumersSeconds: 13}
	r.derive()
	q := r.Ratios[len(r.Ratios)-1]
	require.Equal(t, "relay alone through a backlog (scale-out step) / raw JetStream async publish", q.Name)
	require.InDelta(t, 0.9, *q.Ratio, 1e-9)
	md := renderMarkdown(r, "benchmarks.json")
	for _, want := range []string{
		"## Scale-out: two relays, two instances of each consumer",
		"| 2 relays (publish) | 9,000 msg/s | 5.5 s | 50,000 / 0 (100% / 0%) | one leader | 0.90x of 10,000 msg/s (JetStream async) |",
		"| 2 x governance-audit | 4,000 events/s | 12.5 s | 30,000 / 20,000 (60% / 40%) | 8 / 8 | |",
		"sharing the machine's 2 cores, and were done after 13.0 s",
	} {
		require.Contains(t, md, want)
	}

	// A relay stage that did not finish gives no ratio.
	r.ScaleOut.Relay.Complete = false
	r.derive()
	require.Nil(t, r.Ratios[len(r.Ratios)-1].Ratio)
}

func TestSumMetric(t *testing.T) {
	t.Parallel()
	text := `# HELP prost_consumer_processed_total Messages handled.
# TYPE prost_consumer_processed_total counter
prost_consumer_processed_total{consumer="governance-audit",result="applied"} 120
prost_consumer_processed_total{consumer="governance-audit",result="skipped"} 3
prost_consumer_processed_total{consumer="rules-engine",result="applied"} 7
prost_consumer_processed_total_other 99
prost_relay_published_total 5e+04
`
	for _, tc := range []struct {
		name   string
		metric string
		labels []string
		want   int64
	}{
		{"one series", "prost_consumer_processed_total", []string{`consumer="governance-audit"`, `result="applied"`}, 120},
		{"summed over results", "prost_consumer_processed_total", []string{`consumer="governance-audit"`}, 123},
		{"every series", "prost_consumer_processed_total", nil, 130},
		{"no labels, exponent", "prost_relay_published_total", nil, 50000},
		{"absent", "prost_missing_total", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := sumMetric(strings.NewReader(text), tc.metric, tc.labels...)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
