package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is everything one benchmark run needs. Every field has a default
// (see defaultConfig); the BENCH_* environment variables override them.
type Config struct {
	// Duration is how long each measured step runs (BENCH_DURATION).
	// Defaults to 20s: a full run then takes about four minutes.
	Duration time.Duration
	// Warmup runs before each measured step and is left out of every figure
	// (BENCH_WARMUP). Defaults to 2s.
	Warmup time.Duration
	// PostgresURL names the server the benchmark creates its databases on
	// (BENCH_POSTGRES_URL); its database part is replaced. It must be a
	// loopback address. Defaults to
	// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
	PostgresURL string
	// ProstBin is the PROST binary that `make build` builds (BENCH_PROST_BIN).
	// Defaults to bin/prost.
	ProstBin string
	// NATSDir is the directory holding streams/*.json (BENCH_NATS_DIR): PROST
	// gets it as PROST_NATS_DIR and the raw JetStream step declares the same
	// stream from it. Defaults to nats.
	NATSDir string
	// Out is the Markdown report written on every run (BENCH_OUT); the JSON
	// report is written beside it with the extension .json. Defaults to
	// docs/benchmarks.md.
	Out string

	// RawPGClients is the number of concurrent Postgres clients in the raw
	// single-row and batched steps. Defaults to 8.
	RawPGClients int
	// BatchSize is the events per transaction in the raw batched step and
	// per request in PROST's batched step. Defaults to 100.
	BatchSize int
	// JSAsyncMaxPending bounds the in-flight asynchronous publishes of the
	// raw JetStream step (one client). Defaults to 4096.
	JSAsyncMaxPending int
	// JSAtomicBatch is the messages per atomic batch of the raw atomic
	// step: the relay's round (BatchSize of pkg/outbox). Defaults to 1000.
	JSAtomicBatch int
	// JSSyncClients is the number of synchronous JetStream publishers, each
	// on its own connection. Defaults to 4.
	JSSyncClients int
	// SingleClients is the number of concurrent HTTP clients sending one
	// event per request to PROST. Defaults to 64.
	SingleClients int
	// BatchClients is the number of concurrent HTTP clients sending
	// BatchSize events per request to PROST. Defaults to 12.
	BatchClients int
	// E2ELoad is the fraction of the measured single-event maximum the end
	// to end step offers, open loop. Defaults to 0.5.
	E2ELoad float64
	// E2EWorkers bounds the goroutines that send the end to end step's
	// requests; a send finding none free is counted as dropped by the
	// harness. Defaults to 512.
	E2EWorkers int
	// DrainTimeout bounds each wait for PROST's relay and audit consumer to
	// catch up between steps. Defaults to 45s, which keeps a default run
	// under five minutes even when they never catch up.
	DrainTimeout time.Duration
	// RelayWindowCap bounds how long after the batched step the relay and
	// audit rates keep being measured. Defaults to 30s.
	RelayWindowCap time.Duration
	// Steps names the parts to run (BENCH_STEPS, comma-separated): raw-postgres,
	// raw-jetstream, prost, scale-out, scale. What is left out is reported as
	// not measured. Defaults to all but scale (make bench-scale).
	Steps []string
	// ScaleEvents is the large size of the `since` curve: events of one App
	// stored before the query (BENCH_SCALE_EVENTS). Defaults to 3,000,000, the
	// issue's size.
	ScaleEvents int
	// ScaleRules is the large size of the rules curve (the small one is 10).
	// Defaults to 500.
	ScaleRules int
	// ScaleRulesEvents is the events the rules consumer works through at
	// each size. Defaults to 20,000.
	ScaleRulesEvents int
	// ScaleApps is the large size of the Apps curve (BENCH_SCALE_APPS).
	// Defaults to 1,000.
	ScaleApps int
	// ScaleAuditEntries is the large chain `audit verify` checks
	// (BENCH_SCALE_AUDIT_ENTRIES). Defaults to 3,000,000.
	ScaleAuditEntries int
	// ScaleOutEvents is the backlog the scale-out step's two relays and two
	// instances of each consumer work through (BENCH_SCALEOUT_EVENTS).
	// Defaults to 50,000.
	ScaleOutEvents int
	// ScaleStep is how long each ingest run of the Apps curve measures.
	// Defaults to 10s.
	ScaleStep time.Duration
	// StartTimeout bounds PROST's start (migrations, embedded NATS, demo
	// App). Defaults to 60s.
	StartTimeout time.Duration
}

// allSteps are the parts of a run, in the order they run; scale (the
// scale curves, `make bench-scale`) runs only when BENCH_STEPS names it.
var (
	allSteps     = []string{"raw-postgres", "raw-jetstream", "prost", "scale-out", "scale"}
	defaultSteps = []string{"raw-postgres", "raw-jetstream", "prost", "scale-out"}
)

func defaultConfig() Config {
	return Config{
		Duration:          20 * time.Second,
		Warmup:            2 * time.Second,
		PostgresURL:       "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		ProstBin:          "bin/prost",
		NATSDir:           "nats",
		Out:               "docs/benchmarks.md",
		RawPGClients:      8,
		BatchSize:         100,
		JSAsyncMaxPending: 4096,
		JSAtomicBatch:     1000,
		JSSyncClients:     4,
		SingleClients:     64,
		BatchClients:      12,
		E2ELoad:           0.5,
		E2EWorkers:        512,
		DrainTimeout:      45 * time.Second,
		RelayWindowCap:    30 * time.Second,
		StartTimeout:      60 * time.Second,
		Steps:             defaultSteps,
		ScaleEvents:       3_000_000,
		ScaleRules:        500,
		ScaleRulesEvents:  20_000,
		ScaleApps:         1000,
		ScaleAuditEntries: 3_000_000,
		ScaleOutEvents:    50_000,
		ScaleStep:         10 * time.Second,
	}
}

// configFromEnv is defaultConfig with the BENCH_* variables applied. It
// fails naming every variable it cannot parse.
func configFromEnv(getenv func(string) string) (Config, error) {
	c := defaultConfig()
	var errs []error
	dur := func(k string, dst *time.Duration) {
		if v := getenv(k); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				return
			}
			*dst = d
		}
	}
	str := func(k string, dst *string) {
		if v := getenv(k); v != "" {
			*dst = v
		}
	}
	num := func(k string, dst *int) {
		if v := getenv(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				return
			}
			*dst = n
		}
	}
	dur("BENCH_DURATION", &c.Duration)
	dur("BENCH_WARMUP", &c.Warmup)
	dur("BENCH_DRAIN_TIMEOUT", &c.DrainTimeout)
	str("BENCH_POSTGRES_URL", &c.PostgresURL)
	str("BENCH_PROST_BIN", &c.ProstBin)
	str("BENCH_NATS_DIR", &c.NATSDir)
	str("BENCH_OUT", &c.Out)
	if v := getenv("BENCH_STEPS"); v != "" {
		c.Steps = strings.Split(v, ",")
	}
	num("BENCH_SINGLE_CLIENTS", &c.SingleClients)
	num("BENCH_BATCH_CLIENTS", &c.BatchClients)
	num("BENCH_SCALE_EVENTS", &c.ScaleEvents)
	num("BENCH_SCALE_APPS", &c.ScaleApps)
	num("BENCH_SCALE_AUDIT_ENTRIES", &c.ScaleAuditEntries)
	num("BENCH_SCALEOUT_EVENTS", &c.ScaleOutEvents)
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.Duration < time.Second {
		errs = append(errs, fmt.Errorf("BENCH_DURATION must be at least 1s, not %s", c.Duration))
	}
	if c.Warmup < 0 {
		errs = append(errs, errors.New("BENCH_WARMUP must not be negative"))
	}
	for _, v := range []struct {
		name string
		n    int
	}{
		{"raw Postgres clients", c.RawPGClients}, {"batch size", c.BatchSize},
		{"JetStream max pending", c.JSAsyncMaxPending}, {"JetStream sync clients", c.JSSyncClients},
		{"JetStream atomic batch", c.JSAtomicBatch},
		{"BENCH_SCALE_EVENTS", c.ScaleEvents}, {"BENCH_SCALE_APPS", c.ScaleApps},
		{"BENCH_SCALE_AUDIT_ENTRIES", c.ScaleAuditEntries}, {"BENCH_SCALEOUT_EVENTS", c.ScaleOutEvents}, {"scale rules", c.ScaleRules - 10}, {"scale rules events", c.ScaleRulesEvents / 100},
		{"BENCH_SINGLE_CLIENTS", c.SingleClients}, {"BENCH_BATCH_CLIENTS", c.BatchClients},
		{"end to end workers", c.E2EWorkers},
	} {
		if v.n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, not %d", v.name, v.n))
		}
	}
	for _, s := range c.Steps {
		if !slices.Contains(allSteps, s) {
			errs = append(errs, fmt.Errorf("BENCH_STEPS: unknown step %q (known: %s)", s, strings.Join(allSteps, ", ")))
		}
	}
	if c.E2ELoad <= 0 || c.E2ELoad > 1 {
		errs = append(errs, fmt.Errorf("end to end load must be in (0, 1], not %g", c.E2ELoad))
	}
	if c.DrainTimeout <= 0 || c.RelayWindowCap <= 0 || c.StartTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	if err := loopbackURL(c.PostgresURL); err != nil {
		errs = append(errs, fmt.Errorf("BENCH_POSTGRES_URL: %w", err))
	}
	if !strings.HasSuffix(c.Out, ".md") {
		errs = append(errs, fmt.Errorf("BENCH_OUT must end in .md, not %q", c.Out))
	}
	return errors.Join(errs...)
}

// jsonOut is where the machine-readable report goes: beside Out.
func (c Config) jsonOut() string { return strings.TrimSuffix(c.Out, ".md") + ".json" }

// loopbackURL refuses a URL whose host is not a loopback address: the
// benchmark only ever talks to this machine.
func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	h := u.Hostname()
	if h == "localhost" {
		return nil
	}
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("host %q is not a loopback address", h)
	}
	return nil
}

// databaseURL is c.PostgresURL naming database name instead.
func (c Config) databaseURL(name string) string {
	u, _ := url.Parse(c.PostgresURL) // validated
	u.Path = "/" + name
	return u.String()
}

// setVars lists the variables set in the environment whose names start
// with prefix, sorted, as NAME=value, for the report's "exact command".
// Secrets are left out and passwords in URLs redacted.
func setVars(prefix string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, prefix) || v == "" {
			continue
		}
		if strings.Contains(k, "TOKEN") || strings.Contains(k, "SECRET") || strings.Contains(k, "PASSWORD") {
			continue
		}
		if u, err := url.Parse(v); err == nil && u.User != nil {
			v = u.Redacted()
		}
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
