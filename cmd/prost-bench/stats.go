package main

import (
	"context"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted,
// which must be in ascending order. It is 0 for an empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Latency summarises a set of durations, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// summarize sorts ds in place and returns its percentiles; nil when empty.
func summarize(ds []time.Duration) *Latency {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	return &Latency{
		Count: len(ds),
		P50ms: ms(percentile(ds, 50)),
		P95ms: ms(percentile(ds, 95)),
		P99ms: ms(percentile(ds, 99)),
		MaxMs: ms(ds[len(ds)-1]),
	}
}

// ms is d in milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// ratio is num/den, or nil when either side was not measured or den is 0.
func ratio(num, den *float64) *float64 {
	if num == nil || den == nil || *den <= 0 {
		return nil
	}
	r := *num / *den
	return &r
}

// ptr returns a pointer to v (report fields are pointers so that a figure
// that was not measured is null, not 0).
func ptr[T any](v T) *T { return &v }

// opResult is what one operation of a closed-loop step did: how many events
// it stored or published, and why it failed ("" when it did not).
type opResult struct {
	events  int
	failure string
	// aux is an extra duration the step reports (e.g. the COMMIT alone);
	// zero means none.
	aux time.Duration
}

// loadResult is what a closed-loop step measured over its window.
type loadResult struct {
	// Events is the number of events of the successful operations that both
	// started and finished inside the window.
	Events int64
	// Ops is the number of those operations.
	Ops int64
	// Window is the measured duration.
	Window time.Duration
	// Latencies holds the duration of each of those operations.
	Latencies []time.Duration
	// Aux holds the non-zero aux durations of those operations.
	Aux []time.Duration
	// Failures counts the failed operations in the window by reason.
	Failures map[string]int64
}

// rate is events per second over the window.
func (r loadResult) rate() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Events) / r.Window.Seconds()
}

// runClosedLoop runs op on workers goroutines, each calling it again as soon
// as it returns, for warmup and then measure. Only operations that start and
// finish inside the measured window count; each worker stops at the end of
// the window (after the operation in flight returns) or when ctx ends. op
// gets the worker number and that worker's operation counter.
func runClosedLoop(ctx context.Context, workers int, warmup, measure time.Duration,
	op func(ctx context.Context, worker int, n int64) opResult,
) loadResult {
	start := time.Now()
	t0 := start.Add(warmup)
	t1 := t0.Add(measure)
	type acc struct {
		events, ops int64
		lat, aux    []time.Duration
		fail        map[string]int64
	}
	accs := make([]acc, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			a := &accs[w]
			a.fail = map[string]int64{}
			for n := int64(0); ctx.Err() == nil; n++ {
				s := time.Now()
				if !s.Before(t1) {
					return
				}
				r := op(ctx, w, n)
				e := time.Now()
				if s.Before(t0) || e.After(t1) {
					continue
				}
				if r.failure != "" {
					a.fail[r.failure]++
					continue
				}
				a.events += int64(r.events)
				a.ops++
				a.lat = append(a.lat, e.Sub(s))
				if r.aux > 0 {
					a.aux = append(a.aux, r.aux)
				}
			}
		})
	}
	wg.Wait()
	out := loadResult{Window: measure, Failures: map[string]int64{}}
	for i := range accs {
		out.Events += accs[i].events
		out.Ops += accs[i].ops
		out.Latencies = append(out.Latencies, accs[i].lat...)
		out.Aux = append(out.Aux, accs[i].aux...)
		for k, v := range accs[i].fail {
			out.Failures[k] += v
		}
	}
	if ctx.Err() != nil {
		out.Window = min(measure, max(0, time.Since(t0)))
	}
	return out
}

// failureCounts returns m, or nil when it is empty (so the JSON says null).
func failureCounts(m map[string]int64) map[string]int64 {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
