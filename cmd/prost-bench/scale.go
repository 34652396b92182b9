package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/domain/audit"
)

// Scale is the scale curves of `make bench-scale`: the cost of a piece of
// work at a small and at a large size of what it grows with, and their
// ratio. Flat means a ratio near 1.
type Scale struct {
	Curves []Curve `json:"curves"`
}

// Curve is one scale curve.
type Curve struct {
	Name string `json:"name"`
	// Unit of Small and Large: "ms" (lower is better) or a rate such as
	// "events/s" (higher is better).
	Unit    string   `json:"unit"`
	SmallAt string   `json:"small_at"`
	LargeAt string   `json:"large_at"`
	Small   *float64 `json:"small"`
	Large   *float64 `json:"large"`
	// Ratio is Large / Small.
	Ratio *float64 `json:"ratio"`
	// Want is the target on Ratio: at most (ms) or at least
	// (events/s).
	Want   float64 `json:"want"`
	Detail string  `json:"detail,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// met reports whether the curve meets its target; nil when not measured.
func (c Curve) met() *bool {
	if c.Ratio == nil || c.Want == 0 {
		return nil
	}
	if c.Unit == "ms" {
		return ptr(*c.Ratio <= c.Want)
	}
	return ptr(*c.Ratio >= c.Want)
}

func (c Curve) want() string {
	if c.Unit == "ms" {
		return fmt.Sprintf("%s at %s <= %.1fx of %s", c.Name, c.LargeAt, c.Want, c.SmallAt)
	}
	return fmt.Sprintf("%s at %s >= %.1fx of %s", c.Name, c.LargeAt, c.Want, c.SmallAt)
}

func (s *Scale) targets() []Target {
	var out []Target
	for _, c := range s.Curves {
		if c.Want == 0 {
			continue
		}
		t := Target{Name: "scale: " + c.Name, Want: c.want(), Met: c.met()}
		if c.Ratio != nil {
			t.Measured = fmtRatio(*c.Ratio)
		}
		out = append(out, t)
	}
	return out
}

// The scale targets of issue 13.
const (
	targetSinceRatio = 2.0
	targetRulesRatio = 0.7
	targetAppsRatio  = 0.9
	targetVerifyRate = 0.7 // entries/s at the large chain against the small one
)

// runScale starts its own `prost dev` (rules per App raised to hold the
// large rule set) and measures each curve in turn. A curve that fails is
// reported with its error; the others still run.
func runScale(ctx context.Context, cfg Config, log *slog.Logger, res *Results) (err error) {
	p, err := startProst(ctx, cfg, log, "PROST_MAX_RULES="+strconv.Itoa(cfg.ScaleRules+100))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.stop(ctx)) }()
	sc := &Scale{}
	res.Scale = sc
	for _, f := range []func(context.Context, Config, *slog.Logger, *prostProc) Curve{
		scaleSince, scaleRules, scaleApps, scaleVerify,
	} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c := f(ctx, cfg, log, p)
		if c.Small != nil && c.Large != nil && *c.Small > 0 {
			c.Ratio = ptr(*c.Large / *c.Small)
		}
		num := func(v *float64) any {
			if v == nil {
				return nil
			}
			return *v
		}
		log.Info("scale: "+c.Name, "small", num(c.Small), "large", num(c.Large), "ratio", num(c.Ratio), "error", c.Error)
		sc.Curves = append(sc.Curves, c)
	}
	res.Prost.Memory = p.memory()
	res.Prost.Logged = p.stderr.counts()
	return nil
}

// median of n timings of f, in ms.
func medianMs(ctx context.Context, n int, f func(context.Context) error) (*float64, error) {
	var ms []float64
	for range n {
		t := time.Now()
		if err := f(ctx); err != nil {
			return nil, err
		}
		ms = append(ms, float64(time.Since(t).Microseconds())/1000)
	}
	slices.Sort(ms)
	return ptr(ms[len(ms)/2]), nil
}

// get sends a GET with headers and reads the answer to the end.
func (p *prostProc) get(ctx context.Context, path string, hdr map[string]string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func appHeaders(app creds) map[string]string {
	return map[string]string{"X-Prost-App-Key": app.APIKey, "X-Prost-App-Secret": app.APISecret}
}

// scaleSince: GET /v1/events?since= (a minute ago, the newest page) on an
// App with next to no events, then with ScaleEvents older events of its own
// stored (written straight into the events table, without outbox rows).
func scaleSince(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc) Curve {
	c := Curve{Name: "GET /v1/events?since=", Unit: "ms", SmallAt: "~0 rows", Want: targetSinceRatio,
		LargeAt: fmtInt(float64(cfg.ScaleEvents)) + " rows"}
	app, err := p.createApp(ctx, "scale-since")
	if err != nil {
		c.Error = err.Error()
		return c
	}
	// One point in time for both sizes, a minute before the App's recent
	// events: storing the large table can take longer than a minute.
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if err := p.sendBatches(ctx, []creds{app}, "since", 100, 1); err != nil {
		c.Error = err.Error()
		return c
	}
	query := func(ctx context.Context) error {
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := p.get(ctx, "/v1/events?limit=100&since="+url.QueryEscape(since), appHeaders(app), &page); err != nil {
			return err
		}
		if len(page.Items) == 0 {
			return errors.New("since= returned no event")
		}
		return nil
	}
	if c.Small, err = medianMs(ctx, 5, query); err != nil {
		c.Error = err.Error()
		return c
	}
	log.Info("scale: storing events", "rows", cfg.ScaleEvents)
	tenant := uuid.MustParse(app.AppID)
	env := string(appendEvent(nil, "scale-envelope", 0, tenant.String()))
	t0 := time.Now()
	const chunk = 100_000
	for from := 0; from < cfg.ScaleEvents; from += chunk {
		n := min(chunk, cfg.ScaleEvents-from)
		if _, err := p.pool.Exec(ctx, `INSERT INTO events (tenant_id, source, id, type, envelope, recorded_at)
			SELECT $1, '/bench/scale', 'scale-' || g, $2, $3::json, now() - interval '2 days' + g * interval '10 microseconds'
			FROM generate_series($4::bigint, $5::bigint) AS g`, tenant, eventType, env, from, from+n-1); err != nil {
			c.Error = err.Error()
			return c
		}
	}
	// VACUUM as well as ANALYZE: otherwise autovacuum may work through
	// these rows during the curves after this one, and a table in service
	// has been vacuumed anyway. (The Apps curve's gap with 3M rows stayed
	// after this: docs/benchmarks.md.)
	if _, err := p.pool.Exec(ctx, `VACUUM (ANALYZE) events`); err != nil {
		c.Error = err.Error()
		return c
	}
	c.Detail = fmt.Sprintf("%s events of the App stored in %s (recorded two days ago); median of 5 requests each",
		fmtInt(float64(cfg.ScaleEvents)), time.Since(t0).Round(time.Second))
	if c.Large, err = medianMs(ctx, 5, query); err != nil {
		c.Error = err.Error()
	}
	return c
}

// sendBatches posts rounds batches of per events to each of apps, four
// requests at a time.
func (p *prostProc) sendBatches(ctx context.Context, apps []creds, tag string, per, rounds int) error {
	bufs := make([][]byte, 4)
	return inParallel(rounds*len(apps), len(bufs), func(w, j int) error {
		buf := append(bufs[w][:0], '[')
		for i := range per {
			if i > 0 {
				buf = append(buf, ',')
			}
			k := int64(j*per + i)
			buf = appendEvent(buf, eventID(tag, w, k), k, "")
		}
		bufs[w] = append(buf, ']')
		st, err := p.post(ctx, apps[j%len(apps)], ctBatch, bufs[w])
		if err == nil && st != http.StatusAccepted {
			err = fmt.Errorf("batch answered %d", st)
		}
		if err != nil {
			return err
		}
		p.accepted.Add(int64(per))
		return nil
	})
}

// inParallel calls do(w, i) for every i in [0, n), workers at a time (w is
// the worker, 0 to workers-1, for state of its own), and returns the first
// error after every call has been made.
func inParallel(n, workers int, do func(w, i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	jobs := make(chan int)
	for w := range workers {
		wg.Go(func() {
			for i := range jobs {
				if err := do(w, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return first
}

// scaleRules: how fast the rules consumer works through ScaleRulesEvents
// events of one App that has 10 active rules, then 500 (ScaleRules). The
// rules filter on 50 event types, one in 50 on the events' own type, and
// their condition never holds: the cost measured is finding and trying the
// candidates, not acting.
func scaleRules(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc) Curve {
	c := Curve{Name: "rules consumer", Unit: "events/s", SmallAt: "10 rules", Want: targetRulesRatio,
		LargeAt: strconv.Itoa(cfg.ScaleRules) + " rules"}
	app, err := p.createApp(ctx, "scale-rules")
	if err != nil {
		c.Error = err.Error()
		return c
	}
	made := 0
	addRules := func(upTo int) error {
		for ; made < upTo; made++ {
			typ := eventType
			if made%50 != 0 {
				typ = "bench.other." + strconv.Itoa(made%50)
			}
			body := fmt.Sprintf(`{"name":"scale-%d","filters":[{"exact":{"type":%q}}],"condition":"data.total_cents > 1000000000",`+
				`"actions":[{"emit":{"type":"bench.never","source":"/bench/scale","data":{"n":%d}}}]}`, made, typ, made)
			if err := p.postJSON(ctx, "/v1/rules", appHeaders(app), body); err != nil {
				return fmt.Errorf("rule %d: %w", made, err)
			}
		}
		return nil
	}
	measure := func(tag string) (*float64, error) {
		if d := p.waitDrained(ctx, cfg.DrainTimeout); !d.Complete {
			return nil, errors.New("the pipeline did not catch up before the measurement")
		}
		before, err := applied(ctx, p.pool, "rules-engine")
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		rounds := cfg.ScaleRulesEvents / 100
		if err := p.sendBatches(ctx, []creds{app}, tag, 100, rounds); err != nil {
			return nil, err
		}
		want := before + int64(rounds*100)
		deadline := time.Now().Add(2 * cfg.DrainTimeout)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			n, err := applied(ctx, p.pool, "rules-engine")
			if err == nil && n >= want {
				return ptr(float64(rounds*100) / time.Since(t0).Seconds()), nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return nil, errors.New("the rules consumer did not catch up")
	}
	if err := addRules(10); err != nil {
		c.Error = err.Error()
		return c
	}
	if c.Small, err = measure("rules10"); err != nil {
		c.Error = err.Error()
		return c
	}
	if err := addRules(cfg.ScaleRules); err != nil {
		c.Error = err.Error()
		return c
	}
	if c.Large, err = measure("rules500"); err != nil {
		c.Error = err.Error()
	}
	c.Detail = fmt.Sprintf("%s events sent in batches of 100, from the first send to the consumer's last applied message",
		fmtInt(float64(cfg.ScaleRulesEvents)))
	return c
}

// postJSON posts body and expects 201 or 200.
func (p *prostProc) postJSON(ctx context.Context, path string, hdr map[string]string, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, b)
	}
	return nil
}

// appsPairs is how many times the Apps curve measures each size. With 3,
// one pair's ratio ranged 0.79-1.05 across a session and the median moved
// with a single pair; 5 cost ~50 s more (~25 s a pair).
const appsPairs = 5

// median of xs (not empty); the mean of the middle two for an even count.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// scaleApps: single-event ingest (SingleClients clients, closed loop) by
// one App, then spread over ScaleApps Apps in turn, appsPairs times.
func scaleApps(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc) Curve {
	c := Curve{Name: "single-event ingest", Unit: "events/s", SmallAt: "1 App", Want: targetAppsRatio,
		LargeAt: fmtInt(float64(cfg.ScaleApps)) + " Apps"}
	log.Info("scale: creating Apps", "apps", cfg.ScaleApps)
	apps := make([]creds, cfg.ScaleApps)
	if err := inParallel(len(apps), 8, func(_, i int) error {
		var err error
		apps[i], err = p.createApp(ctx, "scale-app-"+strconv.Itoa(i))
		return err
	}); err != nil {
		c.Error = err.Error()
		return c
	}
	// Every App records one event before anything is measured, so the runs
	// compare ingest by Apps PROST has seen, one against a thousand: what
	// happens once per App (its credentials, schema state and contract read
	// into each cache, its audit chain's head created, the consumers' first
	// look at its tenant) is not counted against the first 1,000-App run
	// alone, where the single App had it behind it after its warm-up.
	log.Info("scale: one event from each App first")
	primeBufs := make([][]byte, cfg.SingleClients)
	if err := inParallel(len(apps), len(primeBufs), func(w, i int) error {
		primeBufs[w] = appendEvent(primeBufs[w][:0], eventID("appsprime", w, int64(i)), int64(i), "")
		st, err := p.post(ctx, apps[i], ctStructured, primeBufs[w])
		if err == nil && st == http.StatusAccepted {
			p.accepted.Add(1)
			return nil
		}
		return fmt.Errorf("one event from each App: %s", statusFailure(st, err))
	}); err != nil {
		c.Error = err.Error()
		return c
	}
	run := func(tag string, pick func(w int, n int64) creds) (*float64, error) {
		if d := p.waitDrained(ctx, cfg.DrainTimeout); !d.Complete {
			return nil, errors.New("the pipeline did not catch up before the measurement")
		}
		log.Info("scale: ingest run", "tag", tag)
		bufs := make([][]byte, cfg.SingleClients)
		lr := runClosedLoop(ctx, cfg.SingleClients, cfg.Warmup, cfg.ScaleStep, func(ctx context.Context, w int, n int64) opResult {
			bufs[w] = appendEvent(bufs[w][:0], eventID(tag, w, n), n, "")
			st, err := p.post(ctx, pick(w, n), ctStructured, bufs[w])
			if err == nil && st == http.StatusAccepted {
				p.accepted.Add(1)
				return opResult{events: 1}
			}
			return opResult{failure: statusFailure(st, err)}
		})
		if len(lr.Failures) > 0 {
			return nil, fmt.Errorf("non-202 answers: %s", fmtCounts(failureCounts(lr.Failures)))
		}
		return ptr(lr.rate()), nil
	}
	// The two sizes alternate appsPairs times and each is the median of its
	// runs: runs on this kind of machine vary by a third from one to the
	// next, and alternating keeps a drift of the machine from favouring one.
	clients := int64(cfg.SingleClients)
	var smalls, larges, ratios []float64
	for i := range appsPairs {
		small, err := run(fmt.Sprintf("apps1r%d", i), func(int, int64) creds { return apps[0] })
		if err != nil {
			c.Error = err.Error()
			return c
		}
		large, err := run(fmt.Sprintf("appsNr%d", i), func(w int, n int64) creds { return apps[(n*clients+int64(w))%int64(len(apps))] })
		if err != nil {
			c.Error = err.Error()
			return c
		}
		smalls, larges = append(smalls, *small), append(larges, *large)
		if *small > 0 {
			ratios = append(ratios, *large / *small)
		}
	}
	c.Small, c.Large = ptr(median(smalls)), ptr(median(larges))
	parts := make([]string, len(ratios))
	for i, r := range ratios {
		parts[i] = fmtRatio(r)
	}
	c.Detail = fmt.Sprintf("%d clients, %s each after a %s warm-up; with many Apps each request is another App's; "+
		"%d runs of each size, alternating, the medians shown (the runs' ratios: %s); every App recorded one event before the first run", cfg.SingleClients,
		fmtDuration(cfg.ScaleStep.Seconds()), fmtDuration(cfg.Warmup.Seconds()), appsPairs, strings.Join(parts, ", "))
	return c
}

// scaleVerify: GET /admin/v1/audit/verify of one App's chain (what `prost
// audit verify --app` asks) at 1,000 entries and at ScaleAuditEntries,
// written straight into the chain with pkg/domain/audit. Compared per
// entry, with the process's memory before and after.
func scaleVerify(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc) Curve {
	c := Curve{Name: "audit verify", Unit: "entries/s", SmallAt: "1,000 entries", Want: targetVerifyRate,
		LargeAt: fmtInt(float64(cfg.ScaleAuditEntries)) + " entries"}
	app, err := p.createApp(ctx, "scale-audit")
	if err != nil {
		c.Error = err.Error()
		return c
	}
	tenant := uuid.MustParse(app.AppID)
	grow := func(to int) error {
		const chunk = 5000
		var have int64
		if err := p.pool.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM audit_heads WHERE tenant_id = $1), 0)`, tenant).Scan(&have); err != nil {
			return err
		}
		for n := int(have); n < to; {
			k := min(chunk, to-n)
			recs := make([]audit.Record, k)
			for i := range recs {
				recs[i] = audit.Record{TenantID: tenant, EventID: "verify-" + strconv.Itoa(n+i), EventSource: "/bench/scale",
					EventType: eventType, ActorID: "user-1", Action: "place"}
			}
			if err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
				_, err := audit.AppendTx(ctx, tx, recs)
				return err
			}); err != nil {
				return err
			}
			n += k
		}
		return nil
	}
	// verify walks the pages `prost audit verify --app` walks: each request
	// works at most audit.DefaultVerifyBudget and hands back a next_cursor,
	// so no single request limits the chain's length.
	var pages int
	var longest time.Duration
	verify := func(want int) func(context.Context) error {
		return func(ctx context.Context) error {
			pages, longest = 0, 0
			q := url.Values{"app_id": {app.AppID}}
			var entries int64
			for {
				var out struct {
					OK     bool `json:"ok"`
					Chains []struct {
						Entries int64 `json:"entries"`
					} `json:"chains"`
					NextCursor *string `json:"next_cursor"`
				}
				t := time.Now()
				if err := p.get(ctx, "/admin/v1/audit/verify?"+q.Encode(), map[string]string{"Authorization": "Bearer " + p.adminToken}, &out); err != nil {
					return err
				}
				pages++
				longest = max(longest, time.Since(t))
				if !out.OK {
					return fmt.Errorf("verify answered %+v", out)
				}
				for _, ch := range out.Chains {
					entries += ch.Entries
				}
				if out.NextCursor == nil {
					break
				}
				q.Set("cursor", *out.NextCursor)
			}
			if entries != int64(want) {
				return fmt.Errorf("verify counted %d entries, want %d", entries, want)
			}
			return nil
		}
	}
	rate := func(ms *float64, entries int) *float64 {
		if ms == nil || *ms <= 0 {
			return nil
		}
		return ptr(float64(entries) / (*ms / 1000))
	}
	if err := grow(1000); err != nil {
		c.Error = err.Error()
		return c
	}
	ms, err := medianMs(ctx, 3, verify(1000))
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Small = rate(ms, 1000)
	log.Info("scale: growing an audit chain", "entries", cfg.ScaleAuditEntries)
	t0 := time.Now()
	if err := grow(cfg.ScaleAuditEntries); err != nil {
		c.Error = err.Error()
		return c
	}
	built := time.Since(t0)
	rss0, _ := procStatusKB(p.pid, "VmRSS")
	hwm0, _ := procStatusKB(p.pid, "VmHWM")
	ms, err = medianMs(ctx, 1, verify(cfg.ScaleAuditEntries))
	if err != nil {
		c.Error = err.Error()
		return c
	}
	rss1, _ := procStatusKB(p.pid, "VmRSS")
	hwm1, _ := procStatusKB(p.pid, "VmHWM")
	c.Large = rate(ms, cfg.ScaleAuditEntries)
	c.Detail = fmt.Sprintf("chain written in %s; verifying %s entries took %s ms in %d requests, the longest %s (each request works at most %s and hands back a cursor, as `prost audit verify` pages); "+
		"PROST's VmRSS %s -> %s MiB and VmHWM %s -> %s MiB across it", built.Round(time.Second),
		fmtInt(float64(cfg.ScaleAuditEntries)), fmtInt(*ms), pages, longest.Round(time.Millisecond), audit.DefaultVerifyBudget, fmtMiB(float64(rss0)/1024), fmtMiB(float64(rss1)/1024),
		fmtMiB(float64(hwm0)/1024), fmtMiB(float64(hwm1)/1024))
	return c
}
