// Package httpapi is the one way PROST's HTTP routes are written: a Router
// that mounts each domain's route set behind the authentication it needs,
// handlers that return errors, and Fail, which answers every error with the
// problem document problem.From maps it to. It also holds the small helpers
// every route set shares: strict JSON bodies, paging parameters, path
// parameters.
//
// A domain provides its routes as a Routes value in its own <domain>http
// package; the gateway mounts them:
//
//	func (h *Handlers) Mount(rt *httpapi.Router) {
//		rt.Tenant("GET /v1/rules/{id}", h.get)
//	}
//
//	func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
//		tenant := httpapi.TenantID(r.Context())
//		...
//		return httpapi.WriteJSON(w, http.StatusOK, rule)
//	}
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/problem"
)

// HandlerFunc handles a request: it writes the answer, or returns an error
// (and writes nothing) for Fail to answer.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Routes is a set of routes a domain mounts on a Router.
type Routes interface {
	Mount(rt *Router)
}

// Config says how a Router authenticates requests.
type Config struct {
	// Tenant authenticates an App's request. It returns the context the
	// handler runs with, which must carry the tenant (WithTenant), or an
	// error of kind Unauthenticated or Forbidden. A nil Tenant refuses
	// every tenant route with 401.
	Tenant func(r *http.Request) (context.Context, error)
	// Admin authenticates an operator's request, returning an error of kind
	// Unauthenticated when it fails. A nil Admin refuses every admin route.
	Admin func(r *http.Request) error
	// Logger receives server-side failures (5xx). Defaults to discarding.
	Logger *slog.Logger
}

// Router mounts routes on an http.ServeMux behind the authentication each
// needs. Its methods must be called before the mux serves.
type Router struct {
	mux      *http.ServeMux
	cfg      Config
	patterns []string
}

// NewRouter returns a Router mounting on mux.
func NewRouter(mux *http.ServeMux, cfg Config) *Router {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Router{mux: mux, cfg: cfg}
}

// Logger is the Router's logger, for route sets that log.
func (rt *Router) Logger() *slog.Logger { return rt.cfg.Logger }

// Mount mounts route sets.
func (rt *Router) Mount(sets ...Routes) {
	for _, s := range sets {
		if s != nil {
			s.Mount(rt)
		}
	}
}

// Patterns lists every pattern mounted, in mounting order ("METHOD /path").
func (rt *Router) Patterns() []string { return append([]string(nil), rt.patterns...) }

func (rt *Router) handle(pattern string, h http.Handler) {
	rt.patterns = append(rt.patterns, pattern)
	rt.mux.Handle(pattern, h)
}

// Public mounts h on pattern ("METHOD /path") with no authentication.
func (rt *Router) Public(pattern string, h HandlerFunc) { rt.handle(pattern, rt.serve(h)) }

// Handle mounts a plain http.Handler with no authentication.
func (rt *Router) Handle(pattern string, h http.Handler) { rt.handle(pattern, h) }

// Tenant mounts h on pattern for authenticated Apps: h runs only after
// Config.Tenant accepted the request, and TenantID(r.Context()) is the App.
func (rt *Router) Tenant(pattern string, h HandlerFunc) {
	rt.handle(pattern, rt.serve(func(w http.ResponseWriter, r *http.Request) error {
		if rt.cfg.Tenant == nil {
			return problem.Errorf(problem.Unauthenticated, "missing or invalid X-Prost-App-Key / X-Prost-App-Secret")
		}
		ctx, err := rt.cfg.Tenant(r)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(ctx))
	}))
}

// Admin mounts h on pattern for operators: h runs only after Config.Admin
// accepted the request.
func (rt *Router) Admin(pattern string, h HandlerFunc) {
	rt.handle(pattern, rt.serve(func(w http.ResponseWriter, r *http.Request) error {
		if rt.cfg.Admin == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="prost-admin"`)
			return problem.Errorf(problem.Unauthenticated, "admin routes need Authorization: Bearer <PROST_ADMIN_TOKEN>")
		}
		if err := rt.cfg.Admin(r); err != nil {
			if errors.Is(err, problem.Unauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="prost-admin"`)
			}
			return err
		}
		return h(w, r)
	}))
}

func (rt *Router) serve(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), loggerKey, rt.cfg.Logger))
		if err := h(w, r); err != nil {
			Fail(w, r, rt.cfg.Logger, err)
		}
	})
}

// Fail answers r with the problem problem.From maps err to, logging the
// error when the status is 5xx (the request id ties the log line to the
// answer). Every route answers its errors through Fail.
func Fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := problem.From(err)
	if p.Status >= 500 && log != nil {
		log.Error("request failed", "request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path,
			"status", p.Status, "error", err)
	}
	if p.Instance == "" {
		cp := *p
		cp.Instance = r.URL.Path
		p = &cp
	}
	problem.Write(w, p)
}

type ctxKey int

const (
	tenantKey ctxKey = iota
	requestIDKey
	loggerKey
)

var discard = slog.New(slog.DiscardHandler)

// Logger is the logger of the Router serving the request, for handlers that
// log what they did (never nil).
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return discard
}

// WithTenant returns ctx carrying the authenticated tenant (App id).
func WithTenant(ctx context.Context, id uuid.UUID) context.Context {
	return context.WithValue(ctx, tenantKey, id)
}

// TenantID is the authenticated tenant of a request that passed a Tenant
// route's authentication (uuid.Nil elsewhere).
func TenantID(ctx context.Context) uuid.UUID {
	id, _ := ctx.Value(tenantKey).(uuid.UUID)
	return id
}

// WithRequestID returns ctx carrying the request id logged with failures.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID is the request's id, "" when none was set.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// Handler serves the Router's mux, answering a path no route matches with a
// 404 problem, and a path whose routes take other methods with a 405 problem
// and an Allow header naming them (the mux's own answers are plain text).
func (rt *Router) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := rt.mux.Handler(r)
		if pattern != "" {
			rt.mux.ServeHTTP(w, r)
			return
		}
		// No pattern: the mux's not-found or method-not-allowed handler.
		// Find out which, with the methods it allows, without its body.
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			Fail(w, r, rt.cfg.Logger, problem.Errorf(problem.MethodNotAllowed, "%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
			return
		}
		Fail(w, r, rt.cfg.Logger, problem.Errorf(problem.NotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
}

// statusRecorder keeps a handler's status and headers and drops its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}
