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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/dlq/dlqhttp"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/domain/apps/appshttp"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/domain/audit/audithttp"
	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/eventstore/eventshttp"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/invalidate"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/jobs/jobshttp"
	"github.com/prost-platform/prost/pkg/lifecycle"
	"github.com/prost-platform/prost/pkg/migrate"
	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/natsembed"
	"github.com/prost-platform/prost/pkg/openapi"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/postgres"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/streams"
	"github.com/prost-platform/prost/pkg/telemetry"
	billingsvc "github.com/prost-platform/prost/services/billing"
	factorysvc "github.com/prost-platform/prost/services/factory"
	gatewaysvc "github.com/prost-platform/prost/services/gateway"
	governancesvc "github.com/prost-platform/prost/services/governance"
	relaysvc "github.com/prost-platform/prost/services/relay"
	rulessvc "github.com/prost-platform/prost/services/rules"
	subscriptionssvc "github.com/prost-platform/prost/services/subscriptions"
)

// services lists what `prost serve` can run, in start order.
var services = []string{"gateway", "relay", "governance", "rules", "subscriptions", "billing", "factory"}

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
	// keys is the private bus's key set (nil when NATS runs without it);
	// sysNC and natsAccounts push revocations of tenants' credentials.
	keys         *natsauth.KeySet
	sysNC        *nats.Conn
	natsAccounts *natsauth.Accounts
	// spanProcessors are extra span processors (tests record spans with them).
	spanProcessors []sdktrace.SpanProcessor
	// rulesJobs tunes the rules service's job workers (zero: the defaults).
	rulesJobs jobs.Config
	// factoryAPI is the gateway's /v1/factory routes (set by run).
	factoryAPI httpapi.Routes
	// kr is the keyring of classified values (nil without PROST_PRIVACY_KEK);
	// made by keyring.
	kr        *dataprotect.Keyring
	krChecked bool
	// feed carries cache invalidations between processes (set by run).
	feed *invalidate.Feed
	// subscriptionsJobs tunes the subscriptions service's delivery workers.
	subscriptionsJobs jobs.Config
	// billingJobs tunes the billing service's job workers (zero: the defaults).
	billingJobs jobs.Config
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
	if err := p.connectBus(allowEmbedded); err != nil {
		return nil, err
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
	if p.sysNC != nil {
		p.sysNC.Close()
	}
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
// stop taking requests, commit what was accepted, publish, drain consumers
// (lifecycle.Group stops components in the reverse order they are added).
func (p *platform) run(ctx context.Context, names []string, adminToken string, started func(addr string)) error {
	has := func(s string) bool { return slices.Contains(names, s) }
	g := lifecycle.Group{ShutdownTimeout: p.env.ShutdownTimeout, Logger: p.log}

	metrics := telemetry.NewMetrics(p.log)
	if has("gateway") || has("relay") {
		metrics.WatchOutbox(outboxStats{p.pool})
	}
	if has("gateway") {
		metrics.WatchDLQ(dlqCounts{p.pool}, p.knownConsumers()...)
	}
	shutdownTracing, err := telemetry.SetupTracing(ctx, "prost", p.spanProcessors...)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()

	// The cache invalidation feed first: it stops last.
	feed := invalidate.New(p.pool, p.log.With("service", "invalidate"))
	p.feed = feed
	g.Add("invalidate", feed)

	// Consumers next: they stop after everything that feeds them.
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
		g.Add("governance", c)
		if ret, err := p.retentionJobs(ctx); err != nil {
			return err
		} else if ret != nil {
			g.Add("privacy-retention", ret)
		}
	}
	if has("rules") {
		svc, err := p.rulesService()
		if err != nil {
			return err
		}
		metrics.WatchConsumer(svc.Consumer, p.js)
		g.Add("rules", svc)
	}
	if has("subscriptions") {
		svc, err := p.subscriptionsService()
		if err != nil {
			return err
		}
		metrics.WatchConsumer(svc.Consumer, p.js)
		g.Add("subscriptions", svc)
	}
	if has("billing") {
		svc, err := p.billingService()
		if err != nil {
			return err
		}
		metrics.WatchConsumer(svc.Consumer, p.js)
		g.Add("billing", svc)
	}
	var factorySvc *factorysvc.Service
	if has("factory") {
		if factorySvc, err = p.factoryService(ctx); err != nil {
			return err
		}
		if factorySvc != nil {
			metrics.WatchConsumer(factorySvc.Consumer(), p.js)
			g.Add("factory", factorySvc)
		}
	}
	if has("gateway") {
		if p.factoryAPI, err = p.factoryRoutes(ctx, factorySvc, &g); err != nil {
			return err
		}
	}
	var rel *outbox.Relay
	if has("relay") {
		rel = relaysvc.New(p.pool, p.js, relaysvc.Config{PollInterval: p.env.RelayPollInterval, Retention: p.env.OutboxRetention,
			Logger: p.log.With("service", "relay")})
		metrics.WatchRelay(rel)
		g.Add("relay", rel)
	}
	if p.env.PprofAddr != "" {
		// Profiling on its own listener, never on the API's: keep it on a
		// loopback or otherwise private address.
		pln, err := net.Listen("tcp", p.env.PprofAddr)
		if err != nil {
			return fmt.Errorf("listen on PROST_PPROF_ADDR %s: %w", p.env.PprofAddr, err)
		}
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		pm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		g.Add("pprof", &httpapi.Server{Listener: pln, Handler: pm, Logger: p.log})
	}
	ln, err := net.Listen("tcp", p.env.HTTPAddr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return exitError{code: 1, msg: fmt.Sprintf("%s is in use; set PROST_HTTP_ADDR to a free address", p.env.HTTPAddr)}
	}
	if err != nil {
		return fmt.Errorf("listen on PROST_HTTP_ADDR %s: %w", p.env.HTTPAddr, err)
	}
	if has("gateway") {
		p.syncRevocations(ctx)
		gw, err := p.gateway(ln, adminToken, metrics, rel, feed)
		if err != nil {
			_ = ln.Close()
			return err
		}
		g.Add("gateway", gw)
	} else {
		// Headless services still answer health checks and serve metrics.
		g.Add("http", &httpapi.Server{Listener: ln, Handler: p.opsHandler(metrics), Logger: p.log})
	}
	p.log.Info("prost running", "services", strings.Join(names, ","), "http", ln.Addr().String(), "nats", p.natsURL)
	if started != nil {
		started(ln.Addr().String())
	}
	err = g.Run(ctx)
	p.log.Info("stopped")
	return err
}

// gateway builds the gateway service on ln: ingest, every domain's routes,
// health and metrics.
func (p *platform) gateway(ln net.Listener, adminToken string, metrics *telemetry.Metrics, rel *outbox.Relay, feed *invalidate.Feed) (*gatewaysvc.Server, error) {
	log := p.log.With("service", "gateway")
	ccfg := eventstore.CommitterConfig{Writers: p.env.IngestWriters, Logger: log}
	if rel != nil {
		ccfg.OnCommit = rel.Wake
	}
	dm := dlq.NewManager(p.pool, p.js)
	dm.OnReplay = recordReplay
	dm.RetryJob = p.retryJob
	events, routes, err := p.registryDeps(feed)
	if err != nil {
		return nil, err
	}
	appStore := apps.NewStore(p.pool, apps.Config{Feed: feed})
	jobsClient, err := jobs.NewClient(p.pool, jobs.Config{}) // lists only; never run
	if err != nil {
		return nil, err
	}
	kr, err := p.keyring()
	if err != nil {
		return nil, err
	}
	subs, err := p.subscriptionsRoutes()
	if err != nil {
		return nil, err
	}
	billingRoutes, err := p.billingRoutes(feed)
	if err != nil {
		return nil, err
	}
	routes = append(routes, appshttp.New(appStore), eventshttp.New(p.pool, kr), audithttp.New(p.pool), p.privacyRoutes(kr),
		dlqhttp.New(p.pool, dm), jobshttp.New(jobsClient), p.rulesRoutes(), openapi.Routes{}, subs, billingRoutes, p.factoryAPI)
	return gatewaysvc.New(gatewaysvc.Deps{
		Apps: appStore, Committer: eventstore.NewCommitter(p.pool, ccfg), Listener: ln, Ready: p.ready,
		Metrics: metrics, Routes: routes, Events: events,
	}, gatewaysvc.Config{
		AdminToken: adminToken, MaxBodyBytes: p.env.MaxBodyBytes, MaxBatch: p.env.MaxBatch,
		Partitions: p.env.Partitions, RateLimit: p.env.RateLimit, Logger: log,
		MaxInFlight: p.env.MaxInFlight, IngestTimeout: p.env.IngestTimeout,
	}), nil
}

// opsHandler serves health and metrics for a process without the gateway.
func (p *platform) opsHandler(metrics *telemetry.Metrics) http.Handler {
	mux := http.NewServeMux()
	rt := httpapi.NewRouter(mux, httpapi.Config{Logger: p.log})
	rt.Handle("GET /metrics", metrics.Handler())
	rt.Public("GET /healthz", func(w http.ResponseWriter, _ *http.Request) error {
		return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	rt.Public("GET /readyz", func(w http.ResponseWriter, r *http.Request) error {
		if err := p.ready(r.Context()); err != nil {
			return problem.Errorf(problem.Unavailable, "not ready: %v", err)
		}
		return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return rt.Handler()
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

// knownConsumers names every consumer that can dead-letter: those with a
// retry policy in PROST_NATS_DIR/consumers, the platform's own, the rules'
// and subscriptions' HTTP deliveries and the billing service's Stripe jobs.
func (p *platform) knownConsumers() []string {
	names := []string{governancesvc.ConsumerName, rulessvc.ConsumerName, "rules-webhook",
		subscriptionssvc.ConsumerName, subscriptions.DLQConsumer, billingsvc.ConsumerName, "billing-stripe"}
	for n := range p.policies {
		names = append(names, n)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// outboxStats reads the outbox backlog for the metrics.
type outboxStats struct{ pool *pgxpool.Pool }

func (o outboxStats) OutboxBacklog(ctx context.Context) (int64, time.Duration, error) {
	st, err := outbox.PendingStats(ctx, o.pool)
	return st.Pending, st.OldestAge, err
}

// dlqCounts counts dead letters for the metrics.
type dlqCounts struct{ pool *pgxpool.Pool }

func (d dlqCounts) CountDead(ctx context.Context) (map[string]int64, error) {
	return dlq.CountDead(ctx, d.pool)
}
