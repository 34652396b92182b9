package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/busstate/busstatehttp"
	"github.com/prost-platform/prost/pkg/console"
	"github.com/prost-platform/prost/pkg/console/consolehttp"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/dlq/dlqhttp"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/domain/apps/appshttp"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/domain/audit/audithttp"
	"github.com/prost-platform/prost/pkg/domain/billing"
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
	"github.com/prost-platform/prost/pkg/netguard"
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
	// streams are the declared streams (PROST_NATS_DIR/streams).
	streams []jetstream.StreamConfig
	// maxMessage is the largest message the bus takes: the events
	// stream's max_msg_size or the server's max_payload, the smaller.
	maxMessage int64
	// signer signs and verifies bus messages (PROST_BUS_KEY).
	signer *busauth.Signer
	// outbound checks webhook and sink targets (PROST_OUTBOUND_ALLOW).
	outbound *netguard.Guard
	// busClosed is closed when the NATS connection is closed for good;
	// busCreds are the credentials it is dialled with (see redial).
	busClosed <-chan struct{}
	busCreds  []byte
	// closing is set by close, so an expected close is not reported.
	closing atomic.Bool
	// watchOutbox makes readiness report a stuck relay (gateway and relay
	// processes).
	watchOutbox bool
	// bus watches the streams for loss and missing ones (readiness, metrics,
	// the admin routes) and guards the relay (set by runOnce); consumers are
	// this process's consumer runtimes, whose missing durables readiness
	// names.
	bus       *busstate.Bus
	consumers []*consumer.Consumer
}

// DefaultMemoryLimitMiB is PROST_MEMORY_LIMIT_MIB's default: the Go
// runtime's soft memory limit (heap, stacks and the runtime's own; the
// binary's code adds about 60 MiB of resident memory beside it). Under it
// the garbage collector lets the heap grow to twice what is live (GOGC
// 100); near it, it collects sooner, at up to half the CPU when the live
// heap comes close. The all-in-one process's live heap under `make bench`
// is 60 to 150 MiB. Raise it for a process that holds more, or where
// catching up a backlog matters more than memory (docs/benchmarks.md).
// It was 184 before 2026-12-03: with one partition in prost dev and a 12 s
// duplicate window, the live heap under a backlog shrank, and at 172 a
// quick bench caught up as fast and peaked at 240.6 MiB.
const DefaultMemoryLimitMiB = 172

// Sampling of the block and mutex profiles while PROST_PPROF_ADDR is set.
const (
	pprofBlockRate     = 10 * time.Microsecond
	pprofMutexFraction = 100
)

// applyMemoryLimit sets the runtime's soft memory limit from
// PROST_MEMORY_LIMIT_MIB, unless GOMEMLIMIT already set one.
func applyMemoryLimit(e env, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" || e.MemoryLimitMiB <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(e.MemoryLimitMiB) << 20)
	log.Debug("memory limit set", "mib", e.MemoryLimitMiB)
}

// openPlatform connects to Postgres (creating and migrating the database),
// starts the embedded nats-server when asked and NATS_URL is unset, connects
// to NATS and declares the streams from PROST_NATS_DIR.
func openPlatform(ctx context.Context, e env, log *slog.Logger, allowEmbedded bool) (_ *platform, err error) {
	p := &platform{env: e, log: log}
	applyMemoryLimit(e, log)
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if e.BusKey == "" {
		return nil, errors.New("PROST_BUS_KEY is required: the key PROST's services sign and verify bus messages with (make one with: openssl rand -base64 32; prost dev keeps one in PROST_DATA_DIR)")
	}
	if p.signer, err = busauth.Parse(e.BusKey); err != nil {
		return nil, fmt.Errorf("PROST_BUS_KEY: %w", err)
	}
	allow, err := netguard.ParseAllowList(e.OutboundAllow)
	if err != nil {
		return nil, fmt.Errorf("PROST_OUTBOUND_ALLOW: %w", err)
	}
	p.outbound = netguard.New(allow...)
	if len(allow) > 0 {
		log.Warn("PROST_OUTBOUND_ALLOW lets webhooks reach internal addresses; keep it for development", "allow", e.OutboundAllow)
	}
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
	p.streams = cfgs
	if err := p.connectBus(allowEmbedded); err != nil {
		return nil, err
	}
	if err := p.declare(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// declare makes the JetStream context of the connection and declares the
// streams.
func (p *platform) declare(ctx context.Context) error {
	js, err := jetstream.New(p.nc)
	if err != nil {
		return err
	}
	if err := streams.Ensure(ctx, js, p.streams, streams.Options{Replicas: p.env.StreamReplicas}); err != nil {
		return err
	}
	p.js = js
	// What the bus can take: the stream's maximum message size, and the
	// server's maximum payload.
	p.maxMessage = p.nc.MaxPayload()
	for _, c := range p.streams {
		if c.Name == "PROST_EVENTS" && c.MaxMsgSize > 0 && int64(c.MaxMsgSize) < p.maxMessage {
			p.maxMessage = int64(c.MaxMsgSize)
		}
	}
	return nil
}

func (p *platform) close() {
	p.closing.Store(true)
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
	var problems []string
	if p.bus != nil {
		if err := p.bus.Ready(ctx); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, c := range p.consumers {
		problems = append(problems, missingDurables(c.Name(), c.Missing())...)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	if p.watchOutbox && p.env.ReadyOutboxMaxAge > 0 {
		st, err := outbox.PendingStats(ctx, p.pool)
		if err != nil {
			return fmt.Errorf("database: %w", err)
		}
		if st.OldestAge > p.env.ReadyOutboxMaxAge {
			return fmt.Errorf("relay stuck: the oldest of %d pending outbox rows has waited %s (over PROST_READY_OUTBOX_MAX_AGE=%s)",
				st.Pending, st.OldestAge.Round(time.Second), p.env.ReadyOutboxMaxAge)
		}
	}
	return nil
}

// missingDurables says which durables of a consumer are missing (each is
// "<stream>/<durable>"): each by name, or, when there are more than three,
// how many and the first three.
func missingDurables(consumer string, missing []string) []string {
	var out []string
	byStream := map[string][]string{}
	var streams []string
	for _, m := range missing {
		stream, durable, _ := strings.Cut(m, "/")
		if byStream[stream] == nil {
			streams = append(streams, stream)
		}
		byStream[stream] = append(byStream[stream], durable)
	}
	for _, stream := range streams {
		ds := byStream[stream]
		if len(ds) <= 3 {
			for _, d := range ds {
				out = append(out, fmt.Sprintf("durable consumer %s of %s is missing (it is declared again)", d, stream))
			}
			continue
		}
		out = append(out, fmt.Sprintf("%d durable consumers of %s on %s are missing (%s, ...; they are declared again)",
			len(ds), consumer, stream, strings.Join(ds[:3], ", ")))
	}
	return out
}

// errBusClosed ends a run whose NATS connection the server closed for good.
var errBusClosed = errors.New("nats: the server closed the connection")

// run runs the named services until ctx ends, then shuts them down in order:
// stop taking requests, commit what was accepted, publish, drain consumers
// (lifecycle.Group stops components in the reverse order they are added).
//
// When the server closes the NATS connection for good (the client gives up
// only on a protocol error), run stops the services the same way, connects
// again and starts them again, on the same HTTP address.
func (p *platform) run(ctx context.Context, names []string, adminToken string, started func(addr string)) error {
	for {
		err := p.runOnce(ctx, names, adminToken, started)
		if !errors.Is(err, errBusClosed) || ctx.Err() != nil {
			return err
		}
		for {
			old := p.nc
			if err = p.redial(); err == nil {
				if err = p.declare(ctx); err == nil {
					old.Close()
					p.log.Info("nats: connected again; restarting the services")
					break
				}
				p.nc.Close()
				p.nc = old
			}
			p.log.Error("nats: cannot connect again; retrying", "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}

func (p *platform) runOnce(ctx context.Context, names []string, adminToken string, started func(addr string)) error {
	has := func(s string) bool { return slices.Contains(names, s) }
	g := lifecycle.Group{ShutdownTimeout: p.env.ShutdownTimeout, Logger: p.log}
	p.watchOutbox = has("gateway") || has("relay")
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	busClosed := p.busClosed
	go func() {
		select {
		case <-busClosed:
			cancel(errBusClosed)
		case <-ctx.Done():
		}
	}()

	// The API's address first: a port in use is reported before any
	// service is built (and holds resources only g.Run would release).
	ln, err := net.Listen("tcp", p.env.HTTPAddr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return exitError{code: 1, msg: fmt.Sprintf("%s is in use; set PROST_HTTP_ADDR to a free address", p.env.HTTPAddr)}
	}
	if err != nil {
		return fmt.Errorf("listen on PROST_HTTP_ADDR %s: %w", p.env.HTTPAddr, err)
	}
	running := false
	defer func() {
		if !running { // g never ran: nothing else will close it
			_ = ln.Close()
		}
	}()

	metrics := telemetry.NewMetrics(p.log)
	if has("gateway") || has("relay") {
		metrics.WatchOutbox(outboxStats{p.pool})
	}
	mode, _ := busstate.ParseMode(p.env.BusRebuild)
	p.bus = busstate.New(p.pool, p.js, busstate.Config{Streams: p.streams, Replicas: p.env.StreamReplicas, Mode: mode,
		CheckInterval: p.env.BusCheckInterval, Window: p.env.BusRebuildWindow, Consumers: p.busConsumers(),
		Partitions: p.env.Partitions, OutboxRetention: p.env.OutboxRetention, Signer: p.signer,
		Logger: p.log.With("service", "bus")})
	p.consumers = nil
	metrics.WatchBus(p.bus, p.bus.Streams()...)
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
	// The bus's status, for readiness and the metrics.
	g.Add("bus", p.bus)

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
		p.consumers = append(p.consumers, c)
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
		p.consumers = append(p.consumers, svc.Consumer)
		g.Add("rules", svc)
	}
	if has("subscriptions") {
		svc, err := p.subscriptionsService()
		if err != nil {
			return err
		}
		metrics.WatchConsumer(svc.Consumer, p.js)
		p.consumers = append(p.consumers, svc.Consumer)
		g.Add("subscriptions", svc)
	}
	if has("billing") {
		svc, err := p.billingService()
		if err != nil {
			return err
		}
		metrics.WatchConsumer(svc.Consumer, p.js)
		p.consumers = append(p.consumers, svc.Consumer)
		g.Add("billing", svc)
	}
	var factorySvc *factorysvc.Service
	if has("factory") {
		if factorySvc, err = p.factoryService(ctx); err != nil {
			return err
		}
		if factorySvc != nil {
			metrics.WatchConsumer(factorySvc.Consumer(), p.js)
			p.consumers = append(p.consumers, factorySvc.Consumer())
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
			AtomicMinRows: p.env.RelayAtomicMinRows,
			Signer:        p.signer, Bus: p.bus, Logger: p.log.With("service", "relay")})
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
		// Blocking and lock contention are sampled while profiles are
		// served: one event per 10us spent blocked, one contended lock in
		// 100, which costs next to nothing next to the work they show.
		// PROST_PPROF_CONTENTION=false leaves them off, for a CPU profile
		// of a measurement that should pay for nothing else (make bench).
		if p.env.PprofContention {
			runtime.SetBlockProfileRate(int(pprofBlockRate))
			runtime.SetMutexProfileFraction(pprofMutexFraction)
		}
		pm := http.NewServeMux()
		pm.HandleFunc("/debug/pprof/", pprof.Index)
		pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		pm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		g.Add("pprof", &httpapi.Server{Listener: pln, Handler: pm, Logger: p.log})
	}
	if p.env.MetricsAddr != "" {
		// Metrics on their own listener (keep it private): the API's
		// GET /metrics is then not served.
		mln, err := net.Listen("tcp", p.env.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on PROST_METRICS_ADDR %s: %w", p.env.MetricsAddr, err)
		}
		p.env.MetricsAddr = mln.Addr().String()
		mm := http.NewServeMux()
		mh := metrics.Handler()
		if p.env.MetricsToken != "" {
			mh = httpapi.BearerGuard(p.env.MetricsToken, "prost-metrics", mh)
		}
		mm.Handle("GET /metrics", mh)
		g.Add("metrics", &httpapi.Server{Listener: mln, Handler: mm, Logger: p.log})
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
	// A restart (see run) listens on the same address, the port chosen
	// included.
	p.env.HTTPAddr = ln.Addr().String()
	p.log.Info("prost running", "services", strings.Join(names, ","), "http", ln.Addr().String(), "nats", p.natsURL)
	if started != nil {
		started(ln.Addr().String())
	}
	running = true
	err = g.Run(ctx)
	if errors.Is(context.Cause(ctx), errBusClosed) {
		p.log.Warn("services stopped: the NATS connection was closed")
		return errBusClosed
	}
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
	dm.Signer = p.signer
	dm.OnReplay = recordReplay
	dm.RetryJob = p.retryJob
	dm.Consumers = append(p.knownConsumers(), dlq.ConsumerRelay)
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
	con := consolehttp.New(console.NewStore(p.pool, console.Config{TTL: p.env.ConsoleSessionTTL, IdleTimeout: p.env.ConsoleIdleTimeout}),
		consoleVerifier{apps: appStore, adminToken: adminToken}, nil)
	routes = append(routes, appshttp.New(appStore), eventshttp.New(p.pool, kr), audithttp.New(p.pool, audithttp.Config{Consumer: governancesvc.ConsumerName}), p.privacyRoutes(kr), busstatehttp.New(p.bus),
		dlqhttp.New(p.pool, dm), jobshttp.New(jobsClient), p.rulesRoutes(), openapi.Routes{}, subs, billingRoutes, con, p.factoryAPI)
	return gatewaysvc.New(gatewaysvc.Deps{
		Apps: appStore, Committer: eventstore.NewCommitter(p.pool, ccfg), Listener: ln, Ready: p.ready,
		Metrics: metrics, Routes: routes, Events: events, Sessions: con,
	}, gatewaysvc.Config{
		AdminToken: adminToken, MaxBodyBytes: p.env.MaxBodyBytes, MaxBatch: p.env.MaxBatch,
		Partitions: p.env.Partitions, RateLimit: p.env.RateLimit, Logger: log,
		MaxInFlight: p.env.MaxInFlight, IngestTimeout: p.env.IngestTimeout, MaxMessageBytes: p.maxMessage,
		MetricsToken: p.metricsToken(adminToken), MetricsElsewhere: p.env.MetricsAddr != "",
		ReservedSources: reservedSources(),
	}), nil
}

// reservedSources are the CloudEvents sources only PROST records events
// with, and what records them: neither an App's events nor its rules'
// emitted events may use them.
func reservedSources() map[string]string {
	return map[string]string{billing.StripeSource: "verified Stripe webhooks (POST /v1/billing/stripe/webhooks/{app})"}
}

// metricsToken is the token GET /metrics on the API's listener asks for:
// PROST_METRICS_TOKEN, else the admin token.
func (p *platform) metricsToken(adminToken string) string {
	if p.env.MetricsToken != "" {
		return p.env.MetricsToken
	}
	return adminToken
}

// opsHandler serves health and metrics for a process without the gateway.
func (p *platform) opsHandler(metrics *telemetry.Metrics) http.Handler {
	mux := http.NewServeMux()
	rt := httpapi.NewRouter(mux, httpapi.Config{Logger: p.log})
	if p.env.MetricsAddr == "" {
		rt.Handle("GET /metrics", httpapi.BearerGuard(p.metricsToken(p.env.AdminToken), "prost-metrics", metrics.Handler()))
	}
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
// count shared with the gateway, the retry budget of PROST_RETRY_BUDGET and
// the retry policy kept in $PROST_NATS_DIR/consumers/<name>.json (whose
// retry_budget, when set, wins).
func (p *platform) consumerConfig(name, service string) (consumer.Config, error) {
	cfg := consumer.Config{Name: name, Partitions: p.env.Partitions, LeaseTTL: p.env.LeaseTTL, Signer: p.signer, Logger: p.log.With("service", service),
		Retry: consumer.RetryPolicy{Budget: p.env.RetryBudget}}
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

// busConsumers names PROST's consumers of the events stream, whose
// unacknowledged messages a rebuild after a loss must cover.
func (p *platform) busConsumers() []string {
	names := []string{governancesvc.ConsumerName, rulessvc.ConsumerName, subscriptionssvc.ConsumerName, billingsvc.ConsumerName,
		factorysvc.ConsumerName}
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
