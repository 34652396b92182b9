package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/natsembed"
)

// ScaleOut is the scale-out step (issue 13): PROST as separate `prost serve`
// processes on a nats-server of the benchmark's own (file store,
// sync_interval always, like prost dev's), two relays and two instances of
// each consumer, working through a backlog of Events events one stage at a
// time, so that each stage's rate is its own and not shared with the others.
type ScaleOut struct {
	Events int `json:"events"`
	// Relay is the two relays publishing the backlog with no consumer
	// running: the relay's own ceiling, beside the raw JetStream ones.
	Relay *ScaleOutStage `json:"relay"`
	// Consumers are the audit, rules and billing consumers, two instances
	// of each (two processes each running all three), working through the
	// published backlog together.
	Consumers []ScaleOutStage `json:"consumers"`
	// ConsumersSeconds is how long the consumers took, from their start to
	// the last of them done.
	ConsumersSeconds float64 `json:"consumers_s"`
	Error            string  `json:"error,omitempty"`
}

// ScaleOutStage is one stage's rate and the split of its work between the
// instances, read from each process's /metrics.
type ScaleOutStage struct {
	Name string `json:"name"`
	// PerSec is the stage's rate from its first unit of work to its last.
	PerSec  float64 `json:"per_s"`
	Seconds float64 `json:"s"`
	// ByInstance is what each instance did (published; applied or skipped).
	ByInstance []int64 `json:"by_instance"`
	// LanesByInstance is how many of the consumer's lanes each instance
	// held once the work was done (leases balance within two intervals of
	// an instance joining), largest first.
	LanesByInstance []int64 `json:"lanes_by_instance,omitempty"`
	Complete        bool    `json:"complete"`
}

// scaleOutApps is how many Apps the scale-out backlog belongs to, so that
// the audit consumer (whose lanes are per tenant) has more than one lane.
const scaleOutApps = 8

// serveProc is one `prost serve SERVICE...` process of the scale-out step.
type serveProc struct {
	name    string
	cmd     *exec.Cmd
	base    string
	exited  chan struct{}
	waitErr error
	stderr  *logTail
}

func startServe(ctx context.Context, cfg Config, log *slog.Logger, env []string, services ...string) (*serveProc, error) {
	bin, err := filepath.Abs(cfg.ProstBin)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &serveProc{name: strings.Join(services, "+"), base: "http://" + addr, exited: make(chan struct{}), stderr: newLogTail(40)}
	cmd := exec.Command(bin, append([]string{"serve"}, services...)...)
	cmd.Env = append(append(os.Environ(), env...), "PROST_HTTP_ADDR="+addr)
	cmd.SysProcAttr = childAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start prost serve %s: %w", s.name, err)
	}
	s.cmd = cmd
	var pipe sync.WaitGroup
	pipe.Go(func() { s.stderr.consume(stderr) })
	go func() {
		pipe.Wait()
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	log.Info("scale-out: started", "services", s.name, "http", addr, "pid", cmd.Process.Pid)
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(cfg.StartTimeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("prost serve %s exited during start: %v\n%s", s.name, s.waitErr, s.stderr.String())
		case <-ctx.Done():
			s.stop(log)
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(log)
			return nil, fmt.Errorf("prost serve %s not ready within %s\n%s", s.name, cfg.StartTimeout, s.stderr.String())
		}
	}
}

// stop ends the process with SIGTERM, SIGKILL after 30s.
func (s *serveProc) stop(log *slog.Logger) {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		log.Warn("scale-out: killing a process that did not stop", "services", s.name)
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// metric sums the samples of a counter in the process's /metrics whose
// labels contain every one of labels (each `name="value"`). The metrics
// are guarded by the admin token (PROST_METRICS_TOKEN unset).
func (s *serveProc) metric(ctx context.Context, token, name string, labels ...string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/metrics: %s", s.base, resp.Status)
	}
	return sumMetric(resp.Body, name, labels...)
}

// sumMetric sums the Prometheus text samples of name carrying every label.
func sumMetric(r io.Reader, name string, labels ...string) (int64, error) {
	var sum float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				continue next
			}
		}
		i := strings.LastIndexByte(rest, ' ')
		v, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %q: %w", line, err)
		}
		sum += v
	}
	return int64(sum), sc.Err()
}

// runScaleOut runs the scale-out step and records it in res.
func runScaleOut(ctx context.Context, cfg Config, log *slog.Logger, res *Results) (err error) {
	so := &ScaleOut{Events: cfg.ScaleOutEvents}
	res.ScaleOut = so
	defer func() {
		if err != nil {
			so.Error = err.Error()
		}
	}()
	dir, err := os.MkdirTemp("", "prost-bench-scaleout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Config{Addr: "127.0.0.1:0", StoreDir: dir, SyncAlways: true, ServerName: "prost-bench-scaleout"})
	if err != nil {
		return err
	}
	defer srv.Stop()
	natsDir, err := filepath.Abs(cfg.NATSDir)
	if err != nil {
		return err
	}
	db := "prost_bench_scaleout_" + randomSuffix()
	defer func() {
		if derr := dropDatabase(context.WithoutCancel(ctx), cfg, db); derr != nil {
			log.Warn("scale-out: drop database", "error", derr)
		}
	}()
	key := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	adminToken := "prost_admin_bench_" + randomSuffix() + randomSuffix()
	env := []string{
		"DATABASE_URL=" + cfg.databaseURL(db),
		"NATS_URL=" + srv.URL(),
		"PROST_NATS_CREDS=",
		"PROST_NATS_AUTH_DIR=",
		"PROST_NATS_DIR=" + natsDir,
		"PROST_SCHEMAS_DIR=" + filepath.Join(filepath.Dir(natsDir), "schemas"),
		"PROST_UNREGISTERED_TYPES=accept",
		"PROST_ADMIN_TOKEN=" + adminToken,
		"PROST_RATE_LIMIT=-1",
		"PROST_LOG_LEVEL=warn",
		"PROST_LOG_FORMAT=json",
		"PROST_METRICS_TOKEN=",
		"PROST_METRICS_ADDR=",
		"PROST_BUS_KEY=" + key(),
		"PROST_SECRETS_KEY=" + key(),
		"PROST_PRIVACY_KEK=1:" + key(),
	}
	var procs []*serveProc
	defer func() {
		for _, p := range procs {
			p.stop(log)
		}
	}()

	// The backlog: written through a gateway alone, so nothing moves it yet.
	gw, err := startServe(ctx, cfg, log, env, "gateway")
	if err != nil {
		return err
	}
	procs = append(procs, gw)
	gp := &prostProc{base: gw.base, adminToken: adminToken, client: newHTTPClient(cfg.BatchClients)}
	defer gp.client.CloseIdleConnections()
	var apps []creds
	for i := range scaleOutApps {
		app, err := gp.createApp(ctx, fmt.Sprintf("scale-out-%d", i))
		if err != nil {
			return err
		}
		if err := gp.createMeter(ctx, app); err != nil {
			return err
		}
		// A rule on the events' type whose condition never holds: the rules
		// consumer evaluates every event (a tenant without rules would have
		// nothing to do, and no idempotency record to count).
		rule := `{"name":"scale-out","filters":[{"exact":{"type":"` + eventType + `"}}],"condition":"data.total_cents > 1000000000",` +
			`"actions":[{"emit":{"type":"bench.never","source":"/bench/scale-out"}}]}`
		if err := gp.postJSON(ctx, "/v1/rules", appHeaders(app), rule); err != nil {
			return fmt.Errorf("rule: %w", err)
		}
		apps = append(apps, app)
	}
	log.Info("scale-out: writing the backlog", "events", cfg.ScaleOutEvents, "apps", len(apps))
	if err := ingestN(ctx, cfg, gp, apps, cfg.ScaleOutEvents); err != nil {
		return err
	}
	gw.stop(log)
	procs = procs[:0]

	pool, err := pgxpool.New(ctx, cfg.databaseURL(db))
	if err != nil {
		return err
	}
	defer pool.Close()
	nc, err := nats.Connect(srv.URL(), nats.Name("prost-bench-scaleout-observer"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, "PROST_EVENTS")
	if err != nil {
		return err
	}
	var pending int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil {
		return err
	}
	if pending != int64(cfg.ScaleOutEvents) {
		return fmt.Errorf("backlog: %d outbox rows waiting, want %d", pending, cfg.ScaleOutEvents)
	}

	// Two relays: one leads (the advisory lock), the other stands by.
	var relays []*serveProc
	for range 2 {
		r, err := startServe(ctx, cfg, log, env, "relay")
		if err != nil {
			return err
		}
		procs = append(procs, r)
		relays = append(relays, r)
	}
	published := func(ctx context.Context) (int64, error) {
		info, err := stream.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int64(info.State.Msgs), nil
	}
	so.Relay = &ScaleOutStage{Name: "relay"}
	if err := measureStage(ctx, cfg, so.Relay, published); err != nil {
		return err
	}
	// The relays count a row once it is marked published, after its ack:
	// wait for the last round's marks before reading their counts.
	for limit := time.Now().Add(30 * time.Second); ; {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil {
			return err
		}
		if pending == 0 || time.Now().After(limit) || !sleepCtx(ctx, 50*time.Millisecond) {
			break
		}
	}
	for _, r := range relays {
		n, err := r.metric(ctx, adminToken, "prost_relay_published_total")
		if err != nil {
			return err
		}
		so.Relay.ByInstance = append(so.Relay.ByInstance, n)
	}
	log.Info("scale-out: relays done", "msgs_per_s", int(so.Relay.PerSec), "by_instance", so.Relay.ByInstance)

	// Two processes each running the audit, rules and billing consumers.
	names := []string{"governance-audit", "rules-engine", "billing-usage"}
	var workers []*serveProc
	t0 := time.Now()
	for range 2 {
		w, err := startServe(ctx, cfg, log, env, "governance", "rules", "billing")
		if err != nil {
			return err
		}
		procs = append(procs, w)
		workers = append(workers, w)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	so.Consumers = make([]ScaleOutStage, len(names))
	for i, name := range names {
		so.Consumers[i].Name = name
		wg.Go(func() {
			err := measureStage(ctx, cfg, &so.Consumers[i], func(ctx context.Context) (int64, error) {
				return applied(ctx, pool, name)
			})
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	so.ConsumersSeconds = time.Since(t0).Seconds()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, name := range names {
		for _, w := range workers {
			n, err := w.metric(ctx, adminToken, "prost_consumer_processed_total", `consumer="`+name+`"`, `result="applied"`)
			if err != nil {
				return err
			}
			m, err := w.metric(ctx, adminToken, "prost_consumer_processed_total", `consumer="`+name+`"`, `result="skipped"`)
			if err != nil {
				return err
			}
			so.Consumers[i].ByInstance = append(so.Consumers[i].ByInstance, n+m)
		}
		lanes, err := lanesByInstance(ctx, pool, name, len(workers))
		if err != nil {
			return err
		}
		so.Consumers[i].LanesByInstance = lanes
		log.Info("scale-out: consumer done", "consumer", name, "per_s", int(so.Consumers[i].PerSec),
			"by_instance", so.Consumers[i].ByInstance, "lanes", lanes)
	}
	return nil
}

// lanesByInstance counts the lanes of a consumer each live instance holds,
// largest first, waiting up to 15 s for every one of instances to hold
// some (a joining instance gets its share within about two lease
// intervals).
func lanesByInstance(ctx context.Context, pool *pgxpool.Pool, consumer string, instances int) ([]int64, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		rows, err := pool.Query(ctx, `SELECT count(*) FROM partition_leases
			WHERE grp = $1 AND owner IS NOT NULL AND expires_at > now() GROUP BY owner ORDER BY 1 DESC`, "consumer:"+consumer)
		if err != nil {
			return nil, err
		}
		var lanes []int64
		for rows.Next() {
			var n int64
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, err
			}
			lanes = append(lanes, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(lanes) >= instances || time.Now().After(deadline) {
			return lanes, nil
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return lanes, ctx.Err()
		}
	}
}

// measureStage samples a stage's running total every 50ms until it reaches
// the backlog (or three DrainTimeouts pass) and records its rate from the first
// sample it had moved in to the last.
func measureStage(ctx context.Context, cfg Config, st *ScaleOutStage, total func(context.Context) (int64, error)) error {
	want := int64(cfg.ScaleOutEvents)
	limit := 3 * cfg.DrainTimeout
	deadline := time.Now().Add(limit)
	var (
		first, last time.Time
		firstN, cur int64
	)
	for time.Now().Before(deadline) {
		n, err := total(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		if n > 0 && first.IsZero() {
			first, firstN = now, n
		}
		cur, last = n, now
		if n >= want {
			st.Complete = true
			break
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	if !st.Complete {
		return fmt.Errorf("%s: %d of %d done after %s", st.Name, cur, want, limit)
	}
	st.Seconds = last.Sub(first).Seconds()
	if st.Seconds > 0 {
		st.PerSec = float64(cur-firstN) / st.Seconds
	}
	return nil
}

// ingestN posts n events as batches of cfg.BatchSize from cfg.BatchClients
// clients, each request as the next of apps, and fails on any answer but
// 202.
func ingestN(ctx context.Context, cfg Config, p *prostProc, apps []creds, n int) error {
	var next atomic.Int64
	requests := int64((n + cfg.BatchSize - 1) / cfg.BatchSize)
	var wg sync.WaitGroup
	var (
		mu       sync.Mutex
		firstErr error
		failed   atomic.Bool
	)
	for w := range cfg.BatchClients {
		wg.Go(func() {
			var b []byte
			for {
				r := next.Add(1) - 1
				if r >= requests || failed.Load() || ctx.Err() != nil {
					return
				}
				b = append(b[:0], '[')
				for i := range cfg.BatchSize {
					k := r*int64(cfg.BatchSize) + int64(i)
					if k >= int64(n) {
						break
					}
					if i > 0 {
						b = append(b, ',')
					}
					b = appendEvent(b, eventID("scaleout", w, k), k, "")
				}
				b = append(b, ']')
				st, err := p.post(ctx, apps[r%int64(len(apps))], ctBatch, b)
				if err != nil || st != http.StatusAccepted {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("ingest: %s", statusFailure(st, err))
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
