package factorysvc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// Defaults of PerfGate.
const (
	DefaultPerfRequests    = 100
	DefaultPerfConcurrency = 4
)

// PerfGate is the performance budget gate: it runs the built module against
// a scratch schema of the module database, sends a short load to each route
// the Pack0 budgets, and compares each route's 95th percentile latency with
// its budget. It needs the module database (Config.ModuleDatabaseURL).
type PerfGate struct {
	// Requests per budgeted route; defaults to DefaultPerfRequests.
	Requests int
	// Concurrency of the load; defaults to DefaultPerfConcurrency.
	Concurrency int
}

// Name is "perf".
func (PerfGate) Name() string { return factory.GatePerf }

// Blocking is true.
func (PerfGate) Blocking() bool { return true }

// Run loads the module and checks its budgets.
func (pg PerfGate) Run(ctx context.Context, s *Service, in GateInput) (factory.GateResult, *GateExtra, error) {
	res := factory.GateResult{Gate: factory.GatePerf, Blocking: true}
	n, conc := pg.Requests, pg.Concurrency
	if n <= 0 {
		n = DefaultPerfRequests
	}
	if conc <= 0 {
		conc = DefaultPerfConcurrency
	}
	res.Tool = fmt.Sprintf("prost load (%d requests per route, %d at a time)", n, conc)
	if len(in.Pack0.Budgets) == 0 {
		res.Passed, res.Summary = true, "the Pack0 sets no budget"
		return res, nil, nil
	}
	if s.cfg.ModuleDatabaseURL == "" {
		return res, nil, fmt.Errorf("the perf gate needs the module database (PROST_FACTORY_DATABASE_URL)")
	}
	schema := "perf_" + strings.ReplaceAll(in.RunID.String(), "-", "")[:16]
	if err := ensureSchema(ctx, s.cfg.ModuleDatabaseURL, schema); err != nil {
		return res, nil, err
	}
	defer dropSchema(s.cfg.ModuleDatabaseURL, schema)
	dsn, err := moduleDatabaseURL(s.cfg.ModuleDatabaseURL, schema)
	if err != nil {
		return res, nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return res, nil, err
	}
	logPath := filepath.Join(filepath.Dir(in.Binary), "perf.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return res, nil, err
	}
	defer logf.Close()
	d := &LocalDeployer{HealthTimeout: s.cfg.HealthTimeout}
	p, err := startProcess(in.Binary, sandboxEnv("DATABASE_URL="+dsn, "ADDR="+addr), logf)
	if err != nil {
		return res, nil, err
	}
	p.addr = addr
	defer p.stop()
	if err := d.health(ctx, p); err != nil {
		return res, nil, fmt.Errorf("the module does not start: %w", err)
	}
	m := newGenModule(in.Pack0)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	tenant := uuid.NewString()
	for i, b := range in.Pack0.Budgets {
		p95, errs, err := pg.load(ctx, client, "http://"+addr, m, tenant, b.Route, n, conc)
		if err != nil {
			return res, nil, err
		}
		file := "pack0.json#/budgets/" + strconv.Itoa(i)
		switch {
		case errs > 0:
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "p95-budget", File: file, Severity: "error",
				Message: fmt.Sprintf("%s: %d of %d requests failed", b.Route, errs, n), Blocking: true})
		case p95 > time.Duration(b.P95Ms)*time.Millisecond:
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "p95-budget", File: file, Severity: "error",
				Message: fmt.Sprintf("%s: p95 %s is over its budget of %dms (%d requests)", b.Route, p95.Round(time.Microsecond), b.P95Ms, n), Blocking: true})
		default:
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "p95-budget", File: file, Severity: "info",
				Message: fmt.Sprintf("%s: p95 %s within its budget of %dms (%d requests)", b.Route, p95.Round(time.Microsecond), b.P95Ms, n), Blocking: false})
		}
	}
	summarize(&res, fmt.Sprintf("every route within its p95 budget (%d route(s))", len(in.Pack0.Budgets)))
	return res, nil, nil
}

func dropSchema(base, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, base); err == nil {
		_, _ = c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		_ = c.Close(ctx)
	}
}

// load sends n requests to route (such as "GET /v1/items/{id}") and returns
// their 95th percentile latency and how many failed.
func (pg PerfGate) load(ctx context.Context, client *http.Client, base string, m *genModule, tenant, route string, n, conc int) (time.Duration, int, error) {
	method, path, _ := strings.Cut(route, " ")
	var e *genEntity
	for _, x := range m.Entities {
		if strings.HasPrefix(path, "/v1/"+x.Plural) {
			e = x
		}
	}
	if e == nil {
		return 0, 0, fmt.Errorf("%s is not a route of the module", route)
	}
	action := map[string]string{"POST": "create", "GET": "read", "PUT": "update", "DELETE": "delete"}[method]
	body := ""
	if method == "POST" || method == "PUT" {
		body, _ = strconv.Unquote(e.SampleBody())
	}
	do := func(method, path, role, body string) (int, []byte, error) {
		var rd io.Reader
		if body != "" {
			rd = bytes.NewReader([]byte(body))
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Tenant-ID", tenant)
		if role != "" {
			req.Header.Set("X-Role", role)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	// Routes on one record need records: one per request for DELETE, one
	// shared otherwise.
	var ids []string
	if strings.Contains(path, "{id}") {
		count := 1
		if method == "DELETE" {
			count = n
		}
		sample, _ := strconv.Unquote(e.SampleBody())
		for range count {
			code, b, err := do("POST", "/v1/"+e.Plural, e.RoleFor("create"), sample)
			if err != nil || code != http.StatusCreated {
				return 0, 0, fmt.Errorf("create a %s for %s: %d %v %s", e.Name, route, code, err, b)
			}
			var rec map[string]any
			_ = json.Unmarshal(b, &rec)
			id, _ := rec[e.Key].(string)
			ids = append(ids, id)
		}
	}
	lat := make([]time.Duration, n)
	fails := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p := path
				if len(ids) > 0 {
					p = strings.Replace(path, "{id}", ids[min(i, len(ids)-1)], 1)
				}
				t0 := time.Now()
				code, _, err := do(method, p, e.RoleFor(action), body)
				lat[i] = time.Since(t0)
				if err != nil || code >= 300 {
					mu.Lock()
					fails++
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	slices.Sort(lat)
	return lat[(len(lat)*95+99)/100-1], fails, ctx.Err()
}
