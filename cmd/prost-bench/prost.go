package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/natsauth"
)

// creds are an App's credentials as `prost dev` prints them and the admin
// API returns them.
type creds struct {
	AppID     string `json:"app_id"`
	APIKey    string `json:"api_key"`
	APISecret string `json:"api_secret"`
}

// prostProc is a running `prost dev` subprocess on a database and data
// directory of its own. stop undoes everything start did.
type prostProc struct {
	cfg        Config
	log        *slog.Logger
	cmd        *exec.Cmd
	pid        int
	dbName     string
	dataDir    string
	base       string // http://host:port
	natsURL    string
	pprofBase  string // http://host:port of PROST_PPROF_ADDR
	adminToken string
	demo       creds
	e2eApp     creds

	client *http.Client
	pool   *pgxpool.Pool // the benchmark's own connections to PROST's database
	nc     *nats.Conn    // the benchmark's own connection to PROST's NATS
	stream jetstream.Stream

	exited  chan struct{}
	waitErr error
	stderr  *logTail

	// accepted counts every event PROST answered 202 for, in any step,
	// warm-up included: what the relay and the audit log must catch up to.
	accepted atomic.Int64

	memMu    sync.Mutex
	memMarks []MemoryMark

	rssMaxKB    atomic.Int64
	rssSamples  atomic.Int64
	stopSampler context.CancelFunc
	samplerDone chan struct{}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startProst starts `bin/prost dev` on a fresh database, waits until it is
// ready and has printed the demo App's credentials, and connects to its
// database and NATS. On error everything it started is cleaned up.
func startProst(ctx context.Context, cfg Config, log *slog.Logger, extraEnv ...string) (_ *prostProc, err error) {
	bin, err := filepath.Abs(cfg.ProstBin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("PROST binary: %w (run make build first)", err)
	}
	natsDir, err := filepath.Abs(cfg.NATSDir)
	if err != nil {
		return nil, err
	}
	p := &prostProc{cfg: cfg, log: log, dbName: "prost_bench_" + randomSuffix(), exited: make(chan struct{}),
		stderr: newLogTail(40), client: newHTTPClient(max(cfg.SingleClients, cfg.E2EWorkers))}
	defer func() {
		if err != nil {
			if serr := p.stop(ctx); serr != nil {
				log.Warn("clean-up after failed start", "error", serr)
			}
		}
	}()
	if p.dataDir, err = os.MkdirTemp("", "prost-bench-data-"); err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p.pprofBase = "http://" + pprofAddr
	p.adminToken = "prost_admin_bench_" + randomSuffix() + randomSuffix()
	cmd := exec.Command(bin, "dev")
	cmd.Dir = p.dataDir
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+cfg.databaseURL(p.dbName),
		"PROST_DATA_DIR="+p.dataDir,
		"PROST_HTTP_ADDR="+httpAddr,
		"PROST_EMBEDDED_NATS_ADDR="+natsAddr,
		"PROST_NATS_DIR="+natsDir,
		// The repository's platform schemas, beside nats/.
		"PROST_SCHEMAS_DIR="+filepath.Join(filepath.Dir(natsDir), "schemas"),
		// The load uses event types nobody registered.
		"PROST_UNREGISTERED_TYPES=accept",
		"PROST_ADMIN_TOKEN="+p.adminToken,
		"PROST_RATE_LIMIT=-1",
		"PROST_LOG_LEVEL=warn",
		"PROST_LOG_FORMAT=json",
		"NATS_URL=",
		// CPU profiles of the single-event and end to end steps, split by
		// component; nothing else is sampled.
		"PROST_PPROF_ADDR="+pprofAddr,
		"PROST_PPROF_CONTENTION=false",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.SysProcAttr = childAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	log.Info("prost: starting", "bin", bin, "database", p.dbName, "http", httpAddr, "nats", natsAddr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
	welcome := make(chan creds, 1)
	var pipes sync.WaitGroup
	pipes.Go(func() { readWelcome(stdout, welcome) })
	pipes.Go(func() { p.stderr.consume(stderr) })
	go func() {
		pipes.Wait() // Wait must not run before the pipes are read to the end
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	select {
	case p.demo = <-welcome:
	case <-p.exited:
		return nil, fmt.Errorf("prost dev exited during start: %v\n%s", p.waitErr, p.stderr.String())
	case <-sctx.Done():
		return nil, fmt.Errorf("prost dev did not print the demo App within %s: %w\n%s", cfg.StartTimeout, sctx.Err(), p.stderr.String())
	}
	if p.demo.APIKey == "" || p.demo.APISecret == "" {
		if err := p.readDemoFile(); err != nil {
			return nil, err
		}
	}
	p.base = "http://" + httpAddr
	p.natsURL = "nats://" + natsAddr
	if err := p.waitReady(sctx); err != nil {
		return nil, err
	}
	sampleCtx, stopSampler := context.WithCancel(context.WithoutCancel(ctx))
	p.stopSampler, p.samplerDone = stopSampler, make(chan struct{})
	go p.sampleRSS(sampleCtx)

	pc, err := pgxpool.ParseConfig(cfg.databaseURL(p.dbName))
	if err != nil {
		return nil, err
	}
	pc.MaxConns = 4
	if p.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, err
	}
	// prost dev's embedded nats-server is private (operator mode): connect
	// with the service credentials it wrote into its data directory.
	natsOpts := []nats.Option{nats.Name("prost-bench-observer")}
	if creds, err := os.ReadFile(filepath.Join(p.dataDir, "nats-auth", natsauth.FileServiceCreds)); err == nil {
		o, err := natsauth.ConnectOption(creds)
		if err != nil {
			return nil, fmt.Errorf("PROST's NATS credentials: %w", err)
		}
		natsOpts = append(natsOpts, o)
	}
	if p.nc, err = nats.Connect(p.natsURL, natsOpts...); err != nil {
		return nil, fmt.Errorf("connect to PROST's NATS: %w", err)
	}
	js, err := jetstream.New(p.nc)
	if err != nil {
		return nil, err
	}
	if p.stream, err = js.Stream(sctx, "PROST_EVENTS"); err != nil {
		return nil, fmt.Errorf("PROST_EVENTS stream: %w", err)
	}
	if p.e2eApp, err = p.createApp(sctx, "bench-e2e"); err != nil {
		return nil, err
	}
	// Each App meters its orders, so the billing consumer turns every event
	// into usage (and its throughput is measured beside the audit log's).
	for _, app := range []creds{p.demo, p.e2eApp} {
		if err := p.createMeter(sctx, app); err != nil {
			return nil, err
		}
	}
	p.markMemory("started")
	log.Info("prost: ready", "pid", p.pid, "url", p.base, "nats_server", p.nc.ConnectedServerVersion())
	return p, nil
}

// readWelcome reads printWelcome's output (cmd/prost/dev.go) for the demo
// App's credentials, sends them once the secret line has passed, and keeps
// reading so PROST never blocks on a full pipe.
func readWelcome(r io.Reader, out chan<- creds) {
	var c creds
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, ":")
		if !ok || sent {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "app_id":
			c.AppID = v
		case "api_key":
			c.APIKey = v
		case "api_secret":
			c.APISecret = v
			out <- c
			sent = true
		}
	}
	if !sent {
		out <- c // no demo App printed: the caller falls back to demo-app.json
	}
	_, _ = io.Copy(io.Discard, r)
}

// readDemoFile reads the demo App's credentials from $PROST_DATA_DIR/demo-app.json.
func (p *prostProc) readDemoFile() error {
	b, err := os.ReadFile(filepath.Join(p.dataDir, "demo-app.json"))
	if err != nil {
		return fmt.Errorf("demo App credentials: %w", err)
	}
	if err := json.Unmarshal(b, &p.demo); err != nil || p.demo.APIKey == "" {
		return fmt.Errorf("demo App credentials in demo-app.json: %v", err)
	}
	return nil
}

// waitReady polls GET /readyz until it answers 200.
func (p *prostProc) waitReady(ctx context.Context) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/readyz", nil)
		resp, err := p.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prost dev not ready: %w", ctx.Err())
		case <-p.exited:
			return fmt.Errorf("prost dev exited: %v\n%s", p.waitErr, p.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// createApp creates an App through the admin API.
func (p *prostProc) createApp(ctx context.Context, name string) (creds, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/admin/v1/apps", strings.NewReader(`{"name":"`+name+`"}`))
	req.Header.Set("Authorization", "Bearer "+p.adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return creds{}, fmt.Errorf("create App: %w", err)
	}
	defer resp.Body.Close()
	var c creds
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return c, fmt.Errorf("create App: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return c, fmt.Errorf("create App: %w", err)
	}
	return c, nil
}

// benchMeter is the meter every App of the benchmark has: the value of its
// orders, per currency and customer.
const benchMeter = `{"slug":"order-value","event_type":"` + eventType + `","aggregation":"SUM","value_property":"$.total_cents",` +
	`"group_by":{"currency":"$.currency"},"customer_property":"$.customer_id"}`

// createMeter gives app the benchmark's meter.
func (p *prostProc) createMeter(ctx context.Context, app creds) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/v1/meters", strings.NewReader(benchMeter))
	req.Header.Set("X-Prost-App-Key", app.APIKey)
	req.Header.Set("X-Prost-App-Secret", app.APISecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("create meter: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("create meter: %s: %s", resp.Status, b)
	}
	return nil
}

// billed is how many events the billing consumer has counted: its usage
// rows, one per event with the benchmark's one meter per App. (PROST's
// /metrics says it too, but a scrape asks JetStream for every durable's lag
// and takes seconds under load.)
func (p *prostProc) billed(ctx context.Context) (int64, error) {
	return applied(ctx, p.pool, "billing-usage")
}

// applied is how many messages a consumer has applied, read from what it
// wrote: the audit chains' lengths, the billing usage rows (one meter per
// App in the benchmark), and otherwise the consumer's idempotency records
// (consumer_processed). The audit and billing consumers write no records
// (consumer.Config.Idempotent): their own rows are their records.
func applied(ctx context.Context, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, consumer string) (int64, error) {
	q, args := `SELECT count(*) FROM consumer_processed WHERE consumer = $1`, []any{consumer}
	switch consumer {
	case "governance-audit":
		q, args = `SELECT coalesce(sum(seq), 0)::bigint FROM audit_heads`, nil
	case "billing-usage":
		q, args = `SELECT count(*) FROM billing_usage`, nil
	}
	var n int64
	err := db.QueryRow(ctx, q, args...).Scan(&n)
	return n, err
}

// sampleRSS records the largest VmRSS of PROST, every 500ms.
func (p *prostProc) sampleRSS(ctx context.Context) {
	defer close(p.samplerDone)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if kb, err := procStatusKB(p.pid, "VmRSS"); err == nil {
			p.rssSamples.Add(1)
			if kb > p.rssMaxKB.Load() {
				p.rssMaxKB.Store(kb)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.exited:
			return
		case <-t.C:
		}
	}
}

// memory reads VmHWM (the peak resident set the kernel recorded) and the
// largest sampled VmRSS. Call it while PROST still runs.
func (p *prostProc) memory() *Memory {
	p.markMemory("end")
	p.memMu.Lock()
	defer p.memMu.Unlock()
	m := &Memory{Samples: p.rssSamples.Load(), Marks: p.memMarks}
	if kb, err := procStatusKB(p.pid, "VmHWM"); err == nil {
		m.VmHWMMiB = ptr(float64(kb) / 1024)
	}
	if kb := p.rssMaxKB.Load(); kb > 0 {
		m.RSSMaxMiB = ptr(float64(kb) / 1024)
	}
	return m
}

// markMemory records VmHWM and VmRSS now, so the report can tell which step
// raised the peak.
func (p *prostProc) markMemory(at string) {
	hwm, err1 := procStatusKB(p.pid, "VmHWM")
	rss, err2 := procStatusKB(p.pid, "VmRSS")
	if err1 != nil || err2 != nil {
		return
	}
	p.memMu.Lock()
	defer p.memMu.Unlock()
	p.memMarks = append(p.memMarks, MemoryMark{At: at, VmHWMMiB: float64(hwm) / 1024, VmRSSMiB: float64(rss) / 1024})
}

// stop ends PROST with SIGTERM (SIGKILL if it has not stopped after 30s),
// closes the benchmark's connections, drops the database and removes the
// data directory. It is safe on a partly started prostProc.
func (p *prostProc) stop(ctx context.Context) error {
	var errs []error
	if p.stopSampler != nil {
		p.stopSampler()
		<-p.samplerDone
	}
	if p.nc != nil {
		p.nc.Close()
	}
	if p.pool != nil {
		p.pool.Close()
	}
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.log.Warn("prost did not stop 30s after SIGTERM; killing it", "pid", p.pid)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		var ee *exec.ExitError
		if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
			errs = append(errs, p.waitErr)
		} else if ee != nil && !ee.Success() {
			p.log.Warn("prost exited with an error", "error", p.waitErr, "stderr_tail", p.stderr.String())
		}
	}
	if p.client != nil {
		p.client.CloseIdleConnections()
	}
	if err := dropDatabase(ctx, p.cfg, p.dbName); err != nil {
		errs = append(errs, err)
	}
	if p.dataDir != "" {
		if err := os.RemoveAll(p.dataDir); err != nil {
			errs = append(errs, err)
		}
	}
	p.log.Info("prost: stopped and cleaned up", "database", p.dbName)
	return errors.Join(errs...)
}

// newHTTPClient keeps up to conns connections alive to PROST.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          conns * 2,
			MaxIdleConnsPerHost:   conns * 2,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
			ResponseHeaderTimeout: 30 * time.Second,
		},
	}
}

// post sends one ingest request with app's credentials and returns the
// status; the answer is read to the end so the connection is reused.
func (p *prostProc) post(ctx context.Context, app creds, contentType string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Prost-App-Key", app.APIKey)
	req.Header.Set("X-Prost-App-Secret", app.APISecret)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// statusFailure names a non-202 answer or a transport error for counting.
func statusFailure(status int, err error) string {
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return "cancelled"
		}
		return "transport error"
	}
	return strconv.Itoa(status)
}

// logTail keeps PROST's last log lines for error messages, and counts its
// warnings and errors by message.
type logTail struct {
	mu    sync.Mutex
	n     int
	lines []string
	byMsg map[string]int64
}

func newLogTail(n int) *logTail { return &logTail{n: n, byMsg: map[string]int64{}} }

func (t *logTail) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		t.mu.Lock()
		if rec.Msg != "" && (rec.Level == "WARN" || rec.Level == "ERROR") {
			key := rec.Level + ": " + rec.Msg
			if _, ok := t.byMsg[key]; ok || len(t.byMsg) < 50 {
				t.byMsg[key]++
			}
		}
		t.lines = append(t.lines, line)
		if len(t.lines) > t.n {
			t.lines = t.lines[len(t.lines)-t.n:]
		}
		t.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

func (t *logTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// counts returns the warnings and errors PROST logged, by message.
func (t *logTail) counts() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return failureCounts(t.byMsg)
}
