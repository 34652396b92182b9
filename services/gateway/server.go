// Package gateway is PROST's HTTP edge: the authenticated CloudEvents ingest
// API, the tenant read APIs, the admin API and the health endpoints.
package gatewaysvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/lifecycle"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/subjects"
	"github.com/prost-platform/prost/pkg/telemetry"
)

// Header names of App credentials.
const (
	HeaderAppKey    = "X-Prost-App-Key"
	HeaderAppSecret = "X-Prost-App-Secret"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxBatch       = 1000
	DefaultPartitions     = subjects.DefaultPartitions
	DefaultRateLimit      = 10_000
	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxInFlight    = 512
	DefaultIngestTimeout  = 10 * time.Second
	// DefaultMaxMessageBytes is NATS's default max_payload.
	DefaultMaxMessageBytes = 1 << 20
)

// Config tunes the gateway. Zero values take the defaults given.
type Config struct {
	// AdminToken guards /admin/v1/ (Authorization: Bearer <token>). Required:
	// with none, every admin request is refused.
	AdminToken string
	// MaxBodyBytes caps a request body. Defaults to DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// MaxBatch caps the events in one batch request. Defaults to
	// DefaultMaxBatch.
	MaxBatch int
	// Partitions is the number of partitions per tenant that events are
	// spread over by partition key. Defaults to DefaultPartitions.
	Partitions int
	// RateLimit is each App's sustained ingest rate in events per second;
	// RateBurst the burst above it. Defaults to DefaultRateLimit and 2 x
	// RateLimit.
	// A negative RateLimit switches limiting off.
	RateLimit float64
	RateBurst int
	// RequestTimeout bounds one request's work. Defaults to
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxInFlight caps the ingest requests being handled at once; past it
	// the gateway answers 503 with Retry-After at once instead of queueing,
	// which bounds memory when the database or NATS slows down.
	// Defaults to DefaultMaxInFlight.
	MaxInFlight int
	// IngestTimeout bounds the wait for an ingest request's commit; past it
	// the answer is 503 with Retry-After (the events may still commit: a
	// retry is then answered as a duplicate). Defaults to
	// DefaultIngestTimeout.
	IngestTimeout time.Duration
	// MetricsToken guards GET /metrics: a scrape must send Authorization:
	// Bearer <MetricsToken>. Empty refuses every scrape.
	MetricsToken string
	// MetricsElsewhere leaves GET /metrics off the API (it is served on a
	// listener of its own, PROST_METRICS_ADDR).
	MetricsElsewhere bool
	// MaxMessageBytes is the largest message the bus takes (the events
	// stream's max_msg_size or the server's max_payload, the smaller): an
	// event larger than that as published is refused with 413. Defaults to
	// DefaultMaxMessageBytes.
	MaxMessageBytes int64
	// ReservedSources are CloudEvents sources only PROST itself records
	// events with, each mapped to what records them: an App's event naming
	// one is refused with 422 (field source), so a fact PROST vouches for
	// (a verified Stripe webhook) cannot be forged by the App. cmd/prost
	// reserves billing.StripeSource. Defaults to none.
	ReservedSources map[string]string
	// Logger receives one line per request. Defaults to discarding.
	Logger *slog.Logger
}

// Deps are the parts the gateway drives.
type Deps struct {
	Apps *apps.Store
	// Committer stores accepted events; Run runs it.
	Committer *eventstore.Committer
	// Listener is where Run serves the API.
	Listener net.Listener
	// Ready reports whether every dependency (database, NATS, services) is
	// usable; GET /readyz answers 503 with its error otherwise.
	Ready func(ctx context.Context) error
	// Metrics receives the ingest metrics and serves GET /metrics. Defaults
	// to a private registry.
	Metrics *telemetry.Metrics
	// Routes are the domains' route sets (each domain's <domain>http
	// package): the gateway authenticates them, tenant or admin, and answers
	// their errors.
	Routes []httpapi.Routes
	// Events checks each event's data before it is stored (the schema
	// registry and contracts, pkg/domain/registry.Ingest); nil checks nothing.
	Events EventChecker
	// Sessions authenticates the console's requests, which carry a session
	// cookie instead of API credentials (pkg/console/consolehttp). A request
	// with API credentials is always judged by them. Nil: API credentials
	// only.
	Sessions SessionAuthenticator
}

// SessionAuthenticator authenticates a request by its console session. Each
// method answers ok false when r carries no session cookie, and an error of
// kind Unauthenticated or Forbidden when it carries one that does not
// authenticate it (ended, the other kind, a state-changing request without
// its CSRF token).
type SessionAuthenticator interface {
	TenantSession(r *http.Request) (tenant uuid.UUID, ok bool, err error)
	OperatorSession(r *http.Request) (ok bool, err error)
}

// EventChecker checks the events of an ingest request. It returns, per
// event, the partition key the event's contract names ("" for none; a nil
// slice when no event has one), or an error (problem.From maps it: a
// *registry.IngestError is 422) when events fail their schema or contract.
type EventChecker interface {
	CheckEvents(ctx context.Context, tenant uuid.UUID, evs []cloudevent.Event, batch bool) ([]string, error)
}

// Server serves the HTTP API.
type Server struct {
	cfg      Config
	deps     Deps
	mux      *http.ServeMux
	adminSum [32]byte

	limMu    sync.Mutex
	limiters map[uuid.UUID]*rate.Limiter

	inFlight chan struct{}
	handler  http.Handler
	patterns []string
}

// New returns a gateway; serve Handler() with an http.Server.
func New(deps Deps, cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = int(2 * cfg.RateLimit)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.IngestTimeout <= 0 {
		cfg.IngestTimeout = DefaultIngestTimeout
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = telemetry.NewMetrics(cfg.Logger)
	}
	s := &Server{cfg: cfg, deps: deps, mux: http.NewServeMux(), limiters: map[uuid.UUID]*rate.Limiter{},
		inFlight: make(chan struct{}, cfg.MaxInFlight)}
	s.adminSum = sha256.Sum256([]byte(cfg.AdminToken))
	s.routes()
	return s
}

// Handler is the gateway's HTTP handler, with request ids, logging, timeouts
// and panic recovery around every route.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves the API on Deps.Listener with the ingest committer until ctx
// ends; then the server stops taking requests and finishes those in progress,
// and the committer commits every accepted event, in that order.
func (s *Server) Run(ctx context.Context) error {
	g := lifecycle.Group{Logger: s.cfg.Logger}
	g.Add("ingest", s.deps.Committer)
	g.Add("http", &httpapi.Server{Listener: s.deps.Listener, Handler: s.Handler(), Logger: s.cfg.Logger})
	return g.Run(ctx)
}

func (s *Server) routes() {
	rt := httpapi.NewRouter(s.mux, httpapi.Config{Tenant: s.authenticate, Admin: s.authenticateAdmin, Logger: s.cfg.Logger})
	rt.Public("GET /healthz", s.healthz)
	rt.Public("GET /readyz", s.readyz)
	if !s.cfg.MetricsElsewhere {
		rt.Handle("GET /metrics", httpapi.BearerGuard(s.cfg.MetricsToken, "prost-metrics", s.deps.Metrics.Handler()))
	}
	rt.Tenant("POST /v1/events", s.postEvents)
	rt.Admin("GET /admin/v1/backlog", s.backlog)
	rt.Mount(s.deps.Routes...)
	s.handler = s.observe(rt.Handler())
	s.patterns = rt.Patterns()
}

// Patterns lists every route the gateway serves ("METHOD /path").
func (s *Server) Patterns() []string { return append([]string(nil), s.patterns...) }

type ctxKey int

const (
	appKey ctxKey = iota
	reqInfoKey
)

// reqInfo is filled in by handlers for the request log line.
type reqInfo struct {
	id      string
	tenant  string
	events  int
	ingest  bool   // POST /v1/events, counted in the ingest metrics
	eventID string // the event id when the request carried one event
}

// AppFrom returns the authenticated App of a tenant request.
func AppFrom(ctx context.Context) (apps.App, bool) {
	a, ok := ctx.Value(appKey).(apps.App)
	return a, ok
}

// authenticate checks an App's credentials for a tenant route; the App and
// its tenant id travel in the returned context.
func (s *Server) authenticate(r *http.Request) (context.Context, error) {
	key, secret := r.Header.Get(HeaderAppKey), r.Header.Get(HeaderAppSecret)
	var (
		app apps.App
		err error
	)
	if key == "" && secret == "" && s.deps.Sessions != nil {
		app, err = s.sessionApp(r)
	} else {
		app, err = s.deps.Apps.Authenticate(r.Context(), key, secret)
	}
	if err != nil {
		return nil, err
	}
	if ri, ok := r.Context().Value(reqInfoKey).(*reqInfo); ok {
		ri.tenant = app.ID.String()
	}
	return httpapi.WithTenant(context.WithValue(r.Context(), appKey, app), app.ID), nil
}

// sessionApp is the active App of a console session's request.
func (s *Server) sessionApp(r *http.Request) (apps.App, error) {
	id, ok, err := s.deps.Sessions.TenantSession(r)
	if err != nil {
		return apps.App{}, err
	}
	if !ok {
		return apps.App{}, apps.ErrUnauthenticated
	}
	app, err := s.deps.Apps.Get(r.Context(), id)
	if errors.Is(err, apps.ErrNotFound) {
		return apps.App{}, apps.ErrUnauthenticated
	}
	if err != nil {
		return apps.App{}, err
	}
	if app.Status != apps.StatusActive {
		return apps.App{}, apps.ErrDisabled
	}
	return app, nil
}

// errAdmin is the answer to an admin request without the right token.
var errAdmin = problem.Errorf(problem.Unauthenticated, "admin routes need Authorization: Bearer <PROST_ADMIN_TOKEN>")

// authenticateAdmin checks the Bearer admin token in constant time, or the
// operator's console session of a request without an Authorization header.
func (s *Server) authenticateAdmin(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if h == "" && s.deps.Sessions != nil {
		ok, err := s.deps.Sessions.OperatorSession(r)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	sum := sha256.Sum256([]byte(tok))
	if !ok || s.cfg.AdminToken == "" || subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) != 1 {
		return errAdmin
	}
	return nil
}

// allow applies the App's rate limit to n events.
func (s *Server) allow(app uuid.UUID, n int) (bool, time.Duration) {
	if s.cfg.RateLimit < 0 || n == 0 {
		return true, 0
	}
	s.limMu.Lock()
	l, ok := s.limiters[app]
	if !ok {
		if len(s.limiters) > 100_000 {
			clear(s.limiters)
		}
		l = rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst)
		s.limiters[app] = l
	}
	s.limMu.Unlock()
	if n > s.cfg.RateBurst {
		n = s.cfg.RateBurst
	}
	res := l.ReserveN(time.Now(), n)
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return false, d
	}
	return true, 0
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// backlog answers what waits in PROST (outbox, each consumer's lag and dead
// letters) as JSON, read from the same collectors as GET /metrics.
func (s *Server) backlog(w http.ResponseWriter, _ *http.Request) error {
	b, err := s.deps.Metrics.Backlog()
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, b)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if s.deps.Ready != nil {
		if err := s.deps.Ready(ctx); err != nil {
			return problem.Errorf(problem.Unavailable, "not ready: %v", err)
		}
	}
	return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// observe adds a request id, a span, a deadline, panic recovery, the ingest
// metrics and one log line per request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{id: r.Header.Get("X-Request-Id"), ingest: r.Method == http.MethodPost && r.URL.Path == "/v1/events"}
		if ri.id == "" || len(ri.id) > 128 {
			var b [12]byte
			_, _ = rand.Read(b[:])
			ri.id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", ri.id)
		ctx, span := telemetry.Tracer().Start(telemetry.Extract(r.Context(), r.Header), r.Method+" "+r.URL.Path,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
				attribute.String("prost.request_id", ri.id)))
		defer span.End()
		ctx = httpapi.WithRequestID(context.WithValue(ctx, reqInfoKey, ri), ri.id)
		if !acceptsEventStream(r) {
			// An event stream (Server-Sent Events) lives until the client
			// leaves or the server stops; every other request has a deadline.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
			defer cancel()
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				s.cfg.Logger.Error("panic serving request", "request_id", ri.id, "panic", v)
				if sw.status == 0 {
					httpapi.Fail(sw, r, nil, fmt.Errorf("panic: %v", v)) // no kind: a 500 that says nothing of it
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			span.SetAttributes(attribute.Int("http.response.status_code", sw.status), attribute.String("prost.tenant", ri.tenant))
			if sw.status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(sw.status))
			}
			if ri.ingest {
				s.deps.Metrics.IngestDuration.WithLabelValues(strconv.Itoa(sw.status)).Observe(time.Since(start).Seconds())
				if res := rejection(sw.status); res != "" {
					s.deps.Metrics.IngestEvents.WithLabelValues(res).Add(float64(max(ri.events, 1)))
				}
			}
			lvl := slog.LevelInfo
			if sw.status >= 500 {
				lvl = slog.LevelError
			}
			attrs := []any{"request_id", ri.id, "trace_id", telemetry.TraceID(ctx), "method", r.Method, "path", r.URL.Path,
				"status", sw.status, "duration_ms", float64(time.Since(start).Microseconds()) / 1000,
				"tenant", ri.tenant, "events", ri.events}
			if ri.eventID != "" {
				attrs = append(attrs, "event_id", ri.eventID)
			}
			s.cfg.Logger.Log(ctx, lvl, "http request", attrs...)
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// rejection names the ingest metric result of a non-202 status.
func rejection(status int) string {
	switch status {
	case http.StatusAccepted:
		return ""
	case http.StatusBadRequest:
		return telemetry.ResultMalformed
	case http.StatusUnauthorized:
		return telemetry.ResultUnauthorized
	case http.StatusForbidden:
		return telemetry.ResultForbidden
	case http.StatusRequestEntityTooLarge:
		return telemetry.ResultTooLarge
	case http.StatusUnsupportedMediaType:
		return telemetry.ResultUnsupported
	case http.StatusUnprocessableEntity:
		return telemetry.ResultInvalid
	case http.StatusTooManyRequests:
		return telemetry.ResultRateLimited
	case http.StatusServiceUnavailable:
		return telemetry.ResultOverloaded
	default:
		return telemetry.ResultError
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flushes and
// deadlines of event streams).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// acceptsEventStream reports whether the request asks for Server-Sent Events.
func acceptsEventStream(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
