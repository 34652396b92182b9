package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/dlq/dlqhttp"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/domain/apps/appshttp"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/domain/audit/audithttp"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/eventstore/eventshttp"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/jobs/jobshttp"
	"github.com/prost-platform/prost/pkg/migrate"
	"github.com/prost-platform/prost/pkg/natsembed"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/postgres"
	"github.com/prost-platform/prost/pkg/streams"
	"github.com/prost-platform/prost/pkg/telemetry"
	gatewaysvc "github.com/prost-platform/prost/services/gateway"
	governancesvc "github.com/prost-platform/prost/services/governance"
	relaysvc "github.com/prost-platform/prost/services/relay"
)

// services lists what `prost serve` can run, in start order.
var services = []string{"gateway", "relay", "governance", "rules"}

// platform holds the connections every service shares.
type platform struct {
	env      env
	log      *slog.Logger
	pool     *pgxpool.Pool
	nc       *nats.Conn
	js       jetstream.JetStream
	embedded *natsembed.Server
	natsURL  string
	policies map[string]consumer.PolicyFile
	// spanProcessors are extra span processors (tests record spans with them).
	spanProcessors []sdktrace.SpanProcessor
	// rulesJobs tunes the rules service's job workers (zero: the defaults).
	rulesJobs jobs.Config
}

// openPlatform connects to Postgres (creating and migrating the database),
// starts the embedded nats-server when asked and NATS_URL is unset, connects
// to NATS and declares the streams from PROST_NATS_DIR.
func openPlatform(ctx context.Context, e env, log *slog.Logger, allowEmbedded bool) (_ *platform, err error) {
	p := &platform{env: e, log: log}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	cfgs, err := streams.Load(filepath.Join(e.NATSDir, "streams"))
	if err != nil {
		return nil, err
	}
	if p.policies, err = consumer.LoadPolicies(filepath.Join(e.NATSDir, "consumers")); err != nil {
		return nil, err
	}
	p.pool, err = postgres.Open(ctx, postgres.Config{URL: e.DatabaseURL, MaxConns: int32(e.DBMaxConns)})
	if err != nil {
		return nil, err
	}
	applied, err := migrate.New(p.pool).Up(ctx)
	if err != nil {
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("database migrated", "applied", applied)
	}
	p.natsURL = e.NATSURL
	if p.natsURL == "" {
		if !allowEmbedded {
			return nil, errors.New("NATS_URL is required for prost serve (prost dev embeds a server)")
		}
		p.embedded, err = natsembed.Start(natsembed.Config{
			Addr:       e.EmbeddedNATSAddr,
			StoreDir:   filepath.Join(e.DataDir, "nats"),
			SyncAlways: e.SyncAlwaysEmbedded,
		})
		if err != nil {
			return nil, err
		}
		p.natsURL = p.embedded.URL()
		log.Info("embedded nats-server started", "url", p.natsURL, "store", filepath.Join(e.DataDir, "nats"), "sync_always", e.SyncAlwaysEmbedded)
	}
	p.nc, err = nats.Connect(p.natsURL, nats.Name("prost"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }))
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", p.natsURL, err)
	}
	p.js, err = jetstream.New(p.nc)
	if err != nil {
		return nil, err
	}
	if err := streams.Ensure(ctx, p.js, cfgs, streams.Options{Replicas: e.StreamReplicas}); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *platform) close() {
	if p.nc != nil {
		_ = p.nc.Drain()
		for i := 0; i < 50 && !p.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		p.nc.Close()
	}
	if p.embedded != nil {
		p.embedded.Stop()
	}
	if p.pool != nil {
		p.pool.Close()
	}
}

func (p *platform) ready(ctx context.Context) error {
	if err := p.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if s := p.nc.Status(); s != nats.CONNECTED {
		return fmt.Errorf("nats: %s", s)
	}
	return nil
}

// run runs the named services until ctx ends, then shuts them down in order:
// stop taking requests, commit what was accepted, publish, drain consumers.
func (p *platform) run(ctx context.Context, names []string, adminToken string, started func(addr string)) error {
	has := func(s string) bool { return slices.Contains(names, s) }
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBG()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	goRun := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(bg); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	metrics := telemetry.NewMetrics(p.log)
	if has("gateway") || has("relay") {
		metrics.WatchOutbox(p.pool)
	}
	if has("gateway") {
		metrics.WatchDLQ(p.pool)
	}
	shutdownTracing, err := telemetry.SetupTracing(ctx, "prost", p.spanProcessors...)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()

	var rel *outbox.Relay
	if has("relay") {
		rel = relaysvc.New(p.pool, p.js, relaysvc.Config{PollInterval: p.env.RelayPollInterval, Retention: p.env.OutboxRetention,
			Logger: p.log.With("service", "relay")})
		metrics.WatchRelay(rel)
		goRun("relay", rel.Run)
	}
	if has("governance") {
		cfg, err := p.consumerConfig(governancesvc.ConsumerName, "governance")
		if err != nil {
			return err
		}
		c, err := governancesvc.New(p.pool, p.js, cfg)
		if err != nil {
			return err
		}
		metrics.WatchConsumer(c, p.js)
		goRun("governance", c.Run)
	}
	if has("rules") {
		if err := p.startRules(goRun); err != nil {
			return err
		}
	}

	var committer *eventstore.Committer
	mux := http.NewServeMux()
	var handler http.Handler = mux
	if has("gateway") {
		ccfg := eventstore.CommitterConfig{Writers: p.env.IngestWriters, Logger: p.log.With("service", "gateway")}
		if rel != nil {
			ccfg.OnCommit = rel.Wake
		}
		committer = eventstore.NewCommitter(p.pool, ccfg)
		dm := dlq.NewManager(p.pool, p.js)
		dm.OnReplay = recordReplay
		dm.RetryJob = p.retryJob
		events, routes, err := p.registryDeps()
		if err != nil {
			cancelBG()
			wg.Wait()
			return err
		}
		appStore := apps.NewStore(p.pool, apps.Config{})
		jobsClient, err := jobs.NewClient(p.pool, jobs.Config{}) // lists only; never run
		if err != nil {
			cancelBG()
			wg.Wait()
			return err
		}
		routes = append(routes, appshttp.New(appStore), eventshttp.New(p.pool), audithttp.New(p.pool),
			dlqhttp.New(p.pool, dm), jobshttp.New(jobsClient), p.rulesRoutes())
		gw := gatewaysvc.New(gatewaysvc.Deps{
			Apps: appStore, Committer: committer, Ready: p.ready,
			Metrics: metrics, Routes: routes, Events: events,
		}, gatewaysvc.Config{
			AdminToken: adminToken, MaxBodyBytes: p.env.MaxBodyBytes, MaxBatch: p.env.MaxBatch,
			Partitions: p.env.Partitions, RateLimit: p.env.RateLimit, Logger: p.log.With("service", "gateway"),
			MaxInFlight: p.env.MaxInFlight, IngestTimeout: p.env.IngestTimeout,
		})
		handler = gw.Handler()
	} else {
		// Headless services still answer health checks and serve metrics.
		mux.Handle("GET /metrics", metrics.Handler())
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}` + "\n")) })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			if err := p.ready(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
		})
	}
	if p.env.PprofAddr != "" {
		// Profiling on its own listener, never on the API's: keep it on a
		// loopback or otherwise private address.
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		pm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		psrv := &http.Server{Addr: p.env.PprofAddr, Handler: pm, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := psrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Warn("pprof server", "error", err)
			}
		}()
		defer psrv.Close()
	}
	ln, err := net.Listen("tcp", p.env.HTTPAddr)
	if err != nil {
		cancelBG()
		wg.Wait()
		return fmt.Errorf("listen on PROST_HTTP_ADDR %s: %w", p.env.HTTPAddr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	p.log.Info("prost running", "services", strings.Join(names, ","), "http", ln.Addr().String(), "nats", p.natsURL)
	if started != nil {
		started(ln.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		p.log.Error("service failed; shutting down", "error", runErr)
	}
	p.log.Info("shutting down", "timeout", p.env.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.env.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		p.log.Warn("http shutdown", "error", err)
	}
	if committer != nil {
		if err := committer.Close(sctx); err != nil {
			p.log.Warn("ingest shutdown", "error", err)
		}
	}
	if rel != nil {
		// Give the relay a moment to publish what the last requests committed.
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			st, err := outbox.PendingStats(sctx, p.pool)
			if err != nil || st.Pending == 0 {
				break
			}
			rel.Wake()
			time.Sleep(50 * time.Millisecond)
		}
	}
	cancelBG()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		p.log.Warn("services did not stop within the shutdown timeout")
	}
	p.log.Info("stopped")
	return runErr
}

// recordReplay writes a replay into the audit log of the event's tenant: who
// replayed which event to which consumer.
func recordReplay(ctx context.Context, tx pgx.Tx, e dlq.Entry, actor string) error {
	if e.TenantID == nil {
		return nil
	}
	_, err := audit.AppendTx(ctx, tx, []audit.Record{{
		TenantID: *e.TenantID, EventID: e.EventID, EventSource: e.EventSource, EventType: ReplayAuditType,
		ActorID: actor, Action: "replay:" + e.Consumer,
	}})
	return err
}

// ReplayAuditType is the event_type of the audit entry a DLQ replay leaves.
const ReplayAuditType = "prost.dlq.replayed"

// consumerConfig is the runtime configuration of a consumer: the partition
// count shared with the gateway and the retry policy kept in
// $PROST_NATS_DIR/consumers/<name>.json.
func (p *platform) consumerConfig(name, service string) (consumer.Config, error) {
	cfg := consumer.Config{Name: name, Partitions: p.env.Partitions, Logger: p.log.With("service", service)}
	pol, ok := p.policies[name]
	if !ok {
		return cfg, nil
	}
	return pol.Apply(cfg)
}

func parseServices(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, usageError("prost serve needs at least one service: %s, or all", strings.Join(services, ", "))
	}
	var out []string
	for _, a := range args {
		for _, s := range strings.Split(a, ",") {
			switch {
			case s == "all":
				out = append(out, services...)
			case slices.Contains(services, s):
				out = append(out, s)
			default:
				return nil, usageError("unknown service %q (known: %s)", s, strings.Join(services, ", "))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
