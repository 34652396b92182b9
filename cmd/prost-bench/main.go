// Command prost-bench measures PROST against the raw ceilings of the
// Postgres and JetStream it is built on, in one run on one machine, and
// writes docs/benchmarks.md and docs/benchmarks.json. `make bench` runs it
// from the repository root after `make build`; BENCH_DURATION sets each
// step's duration (default 20s). See Config for every setting.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(ctx, log)
	stop()
	if err != nil {
		log.Error("prost-bench failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	began := time.Now()
	res := newResults(cfg, began)
	// Every loop is bounded by a step's duration or a timeout; this bounds
	// the run as a whole too.
	budget := 8*(cfg.Duration+cfg.Warmup) + 2*cfg.DrainTimeout + cfg.RelayWindowCap + cfg.StartTimeout + 3*time.Minute
	if slices.Contains(cfg.Steps, "scale-out") {
		budget += 7*cfg.DrainTimeout + 6*cfg.StartTimeout
	}
	if slices.Contains(cfg.Steps, "scale") {
		budget += 30*time.Minute + 2*cfg.StartTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	log.Info("prost-bench starting", "step", cfg.Duration, "warmup", cfg.Warmup, "report", cfg.Out)

	var errs []error
	step := func(name string, fn func(context.Context) error) {
		if runCtx.Err() != nil {
			return
		}
		if !slices.Contains(cfg.Steps, strings.ReplaceAll(name, " ", "-")) {
			log.Info("step left out by BENCH_STEPS", "step", name)
			return
		}
		if err := fn(runCtx); err != nil {
			log.Error(name+" failed", "error", err)
			res.Errors = append(res.Errors, name+": "+err.Error())
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	step("raw postgres", func(ctx context.Context) error { return runRawPostgres(ctx, cfg, log, res) })
	step("raw jetstream", func(ctx context.Context) error { return runRawJetStream(ctx, cfg, log, res) })
	step("prost", func(ctx context.Context) error { return runProst(ctx, cfg, log, res) })
	step("scale out", func(ctx context.Context) error { return runScaleOut(ctx, cfg, log, res) })
	step("scale", func(ctx context.Context) error { return runScale(ctx, cfg, log, res) })

	if ctx.Err() != nil {
		// Interrupted: leave the previous report in place rather than
		// overwrite it with a partial one.
		return errors.Join(append(errs, errors.New("interrupted; report not written"))...)
	}
	if runCtx.Err() != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("run exceeded its %s budget", budget))
	}
	res.WallSeconds = time.Since(began).Seconds()
	res.derive()
	if err := writeReports(cfg, res); err != nil {
		return errors.Join(append(errs, err)...)
	}
	log.Info("prost-bench done", "wall", time.Since(began).Round(time.Second), "report", cfg.Out, "json", cfg.jsonOut())
	for _, t := range res.Targets {
		log.Info("target", "name", t.Name, "want", t.Want, "measured", t.Measured, "verdict", strings.Trim(verdict(t.Met), "*"))
	}
	return errors.Join(errs...)
}

// runProst starts `bin/prost dev`, runs the PROST steps against it and
// stops it. The end to end step runs between the single-event and batched
// steps so that it needs the single-event maximum and is not slowed by the
// batched step's backlog; after every step the benchmark waits for the
// relay and audit consumer to catch up, so no step inherits another's work.
func runProst(ctx context.Context, cfg Config, log *slog.Logger, res *Results) (err error) {
	p, err := startProst(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.stop(ctx)) }()
	pr := &res.Prost

	pr.Single = runSingle(ctx, cfg, log, p)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	pr.Single.DrainAfter = p.waitDrained(ctx, cfg.DrainTimeout)
	log.Info("prost: pipeline drained after single-event step", "drain", pr.Single.DrainAfter)

	pr.SchemaValidation, pr.SchemaValidationNote = measureSchemaValidation(ctx, cfg, log, p)
	pr.Encryption, pr.EncryptionNote = measureEncryption(ctx, cfg, log, p)

	pr.E2E = runE2E(ctx, cfg, log, p, pr.Single.EventsPerSec)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	pr.Batch, pr.Relay, pr.Audit, pr.Billing = runBatch(ctx, cfg, log, p)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	pr.AcceptedEvents = p.accepted.Load()
	var stored int64
	if err := p.pool.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&stored); err == nil {
		pr.StoredEvents = &stored
	}
	pr.Memory = p.memory()
	pr.Logged = p.stderr.counts()
	return nil
}

// newResults starts a report with what is known before any step runs.
func newResults(cfg Config, began time.Time) *Results {
	r := &Results{Date: began.UTC().Format("2006-01-02 15:04 UTC"), Command: command()}
	r.Config = ConfigReport{
		StepSeconds: cfg.Duration.Seconds(), WarmupSeconds: cfg.Warmup.Seconds(),
		RawPGClients: cfg.RawPGClients, BatchSize: cfg.BatchSize, JSAsyncMaxPending: cfg.JSAsyncMaxPending, JSAtomicBatch: cfg.JSAtomicBatch,
		JSSyncClients: cfg.JSSyncClients, SingleClients: cfg.SingleClients, BatchClients: cfg.BatchClients,
		E2ELoad: cfg.E2ELoad, RelayWindowSeconds: cfg.RelayWindowCap.Seconds(), DrainSeconds: cfg.DrainTimeout.Seconds(),
		E2EWorkers:   cfg.E2EWorkers,
		PayloadBytes: len(appendEvent(nil, eventID("single", 0, 0), 0, uuid.Nil.String())),
	}
	r.Machine = Machine{CPUs: runtime.NumCPU(), MemoryMiB: memTotalMiB(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Go: runtime.Version(), LoadAverage: loadAverage()}
	return r
}

// command is how this run was started: `make bench` (make sets MAKELEVEL in
// its children's environment) or the program's own arguments, with the
// BENCH_* and PROST_* variables that were set.
func command() string {
	parts := append(setVars("BENCH_"), setVars("PROST_")...)
	if os.Getenv("MAKELEVEL") != "" {
		parts = append(parts, "make bench")
	} else {
		parts = append(parts, os.Args...)
	}
	return strings.Join(parts, " ")
}
