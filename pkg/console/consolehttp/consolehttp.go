// Package consolehttp serves PROST's web console and its sessions:
//
//	GET    /console/                          the single-page app (any path below it: index.html)
//	GET    /console/assets/{file}             its scripts and styles (immutable, hashed names)
//	POST   /console/api/session               sign in: an App's key and secret, or the admin token
//	GET    /console/api/session               the current session and its CSRF token
//	DELETE /console/api/session               sign out
//	GET    /admin/v1/console/sessions         live sessions (?app_id=)
//	POST   /admin/v1/console/sessions/revoke  end sessions: {"session_id"} | {"app_id"} | {"all": true}
//
// Everything else the console shows comes from PROST's public API: the
// gateway accepts a session cookie in place of API credentials
// (Handlers.TenantSession, Handlers.OperatorSession), with the same checks
// behind it, and requires the session's CSRF token on every request that
// changes anything.
package consolehttp

import (
	"context"
	"crypto/subtle"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/console"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// Cookie names of the session token: the __Host- prefix (Secure, Path=/, no
// Domain, enforced by browsers) when the console is reached over HTTPS.
const (
	CookieName       = "prost_console"
	SecureCookieName = "__Host-prost_console"
)

// CSRFHeader carries the session's CSRF token on state-changing requests.
const CSRFHeader = "X-CSRF-Token"

// ContentSecurityPolicy is sent with every console page: scripts, styles
// and connections from PROST's own origin only, no inline script or style
// element, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'; object-src 'none'"

// Principal is who a set of credentials signs in as.
type Principal struct {
	// TenantID is the App of a tenant sign-in.
	TenantID uuid.UUID
	// Name is shown in the console: the App's name, or "operator".
	Name string
	// Stamp is kept with the session for Verifier.Current.
	Stamp string
}

// Verifier checks what people sign in with. PROST's implementation checks
// App credentials against the App store and the admin token in constant
// time (cmd/prost).
type Verifier interface {
	// Tenant checks an App's key and secret; errors are of kind
	// Unauthenticated or Forbidden (a disabled App).
	Tenant(ctx context.Context, key, secret string) (Principal, error)
	// Operator checks the admin token; an error of kind Unauthenticated
	// when it is wrong or no admin token is configured.
	Operator(ctx context.Context, token string) (Principal, error)
	// Current reports whether a session's principal still holds what it
	// signed in with (the App unchanged and active, the same admin token).
	// A session for which it fails has ended.
	Current(ctx context.Context, s console.Session) error
}

// Handlers serve the console and its sessions.
type Handlers struct {
	store    *console.Store
	verifier Verifier
	assets   fs.FS
}

// New returns the console's handlers. assets is the built app; nil takes
// the one embedded in the binary (console.Assets). Without an index.html
// (a binary built without the console) /console/ answers a page saying how
// to build it.
func New(store *console.Store, verifier Verifier, assets fs.FS) *Handlers {
	if assets == nil {
		assets, _ = console.Assets()
	}
	if assets != nil {
		if _, err := fs.Stat(assets, "index.html"); err != nil {
			assets = nil
		}
	}
	return &Handlers{store: store, verifier: verifier, assets: assets}
}

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Handle("GET /console", http.RedirectHandler("/console/", http.StatusPermanentRedirect))
	rt.Handle("GET /console/", secured(http.HandlerFunc(h.app)))
	rt.Handle("GET /console/assets/", secured(http.HandlerFunc(h.asset)))
	rt.Public("POST /console/api/session", h.signIn)
	rt.Public("GET /console/api/session", h.current)
	rt.Public("DELETE /console/api/session", h.signOut)
	rt.Public("GET /console/api/", func(_ http.ResponseWriter, r *http.Request) error {
		return problem.Errorf(problem.NotFound, "no route for %s %s", r.Method, r.URL.Path)
	})
	rt.Admin("GET /admin/v1/console/sessions", h.listSessions)
	rt.Admin("POST /admin/v1/console/sessions/revoke", h.revokeSessions)
}

// secured adds the headers every console page carries.
func secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		next.ServeHTTP(w, r)
	})
}

// notBuilt is the page of a binary built without the console.
const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PROST console not built</title></head>
<body><h1>The console is not built into this binary</h1>
<p>Build it with <code>make build</code> (it needs Node.js and npm), then start prost again.</p></body></html>
`

// app serves index.html for every page of the single-page app, and the
// few top-level files (favicon) by name.
func (h *Handlers) app(w http.ResponseWriter, r *http.Request) {
	if h.assets == nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(notBuilt))
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/console")
	name = strings.TrimPrefix(name, "/")
	if name != "" && name != "index.html" && !strings.Contains(name, "/") {
		if f, err := fs.Stat(h.assets, name); err == nil && !f.IsDir() {
			w.Header().Set("Cache-Control", "public, max-age=3600")
			http.ServeFileFS(w, r, h.assets, name)
			return
		}
	}
	b, err := fs.ReadFile(h.assets, "index.html")
	if err != nil {
		http.Error(w, "console index missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// asset serves a built script, style or image; its name carries its hash,
// so it may be cached for good.
func (h *Handlers) asset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/console/")
	if h.assets == nil || !strings.HasPrefix(name, "assets/") {
		http.NotFound(w, r)
		return
	}
	f, err := fs.Stat(h.assets, name)
	if err != nil || f.IsDir() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeFileFS(w, r, h.assets, name)
}

// signInRequest is the body of POST /console/api/session.
type signInRequest struct {
	Kind       string `json:"kind"`
	APIKey     string `json:"api_key,omitempty"`
	APISecret  string `json:"api_secret,omitempty"`
	AdminToken string `json:"admin_token,omitempty"`
}

// SessionInfo is what the console learns of its session.
type SessionInfo struct {
	SessionID          uuid.UUID `json:"session_id"`
	Kind               string    `json:"kind"`
	AppID              uuid.UUID `json:"app_id,omitzero"`
	Name               string    `json:"name"`
	CSRFToken          string    `json:"csrf_token"`
	ExpiresAt          time.Time `json:"expires_at"`
	IdleTimeoutSeconds int       `json:"idle_timeout_seconds"`
}

func (h *Handlers) info(s console.Session) SessionInfo {
	return SessionInfo{SessionID: s.ID, Kind: s.Kind, AppID: s.TenantID, Name: s.Name, CSRFToken: s.CSRFToken,
		ExpiresAt: s.ExpiresAt, IdleTimeoutSeconds: int(h.store.Config().IdleTimeout / time.Second)}
}

func (h *Handlers) signIn(w http.ResponseWriter, r *http.Request) error {
	if err := checkOrigin(r); err != nil {
		return err
	}
	var req signInRequest
	if err := httpapi.ReadJSON(w, r, 4<<10, &req); err != nil {
		return err
	}
	var (
		p   Principal
		err error
		n   = console.NewSession{Kind: req.Kind, UserAgent: r.UserAgent()}
	)
	switch req.Kind {
	case console.KindTenant:
		if req.APIKey == "" {
			return problem.InvalidField("api_key", "give the App's key (prost_pk_...)")
		}
		if req.APISecret == "" {
			return problem.InvalidField("api_secret", "give the App's secret (prost_sk_...)")
		}
		p, err = h.verifier.Tenant(r.Context(), req.APIKey, req.APISecret)
		n.TenantID = p.TenantID
	case console.KindOperator:
		if req.AdminToken == "" {
			return problem.InvalidField("admin_token", "give the admin token (PROST_ADMIN_TOKEN)")
		}
		p, err = h.verifier.Operator(r.Context(), req.AdminToken)
	default:
		return problem.InvalidField("kind", `must be "tenant" or "operator"`)
	}
	if err != nil {
		return err
	}
	n.Name, n.Stamp = p.Name, p.Stamp
	s, token, err := h.store.Create(r.Context(), n)
	if err != nil {
		return err
	}
	http.SetCookie(w, cookie(r, token, s.ExpiresAt))
	w.Header().Set("Cache-Control", "no-store")
	httpapi.Logger(r.Context()).Info("console sign-in", "request_id", httpapi.RequestID(r.Context()),
		"kind", s.Kind, "session_id", s.ID, "app_id", s.TenantID)
	return httpapi.WriteJSON(w, http.StatusCreated, h.info(s))
}

func (h *Handlers) current(w http.ResponseWriter, r *http.Request) error {
	s, ok, err := h.session(r)
	if err != nil {
		return err
	}
	if !ok {
		return console.ErrNoSession
	}
	w.Header().Set("Cache-Control", "no-store")
	return httpapi.WriteJSON(w, http.StatusOK, h.info(s))
}

func (h *Handlers) signOut(w http.ResponseWriter, r *http.Request) error {
	s, ok, err := h.session(r)
	if err != nil && !errors.Is(err, console.ErrNoSession) {
		return err
	}
	if ok {
		if _, err := h.store.Revoke(r.Context(), s.ID); err != nil {
			return err
		}
	}
	c := cookie(r, "", time.Unix(0, 0))
	c.MaxAge = -1
	http.SetCookie(w, c)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cookie is the session cookie: HttpOnly, SameSite=Strict, Secure when the
// request came over HTTPS (directly or through a proxy that says so).
func cookie(r *http.Request, token string, expires time.Time) *http.Cookie {
	secure := isHTTPS(r)
	name := CookieName
	if secure {
		name = SecureCookieName
	}
	return &http.Cookie{Name: name, Value: token, Path: "/", Expires: expires, HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteStrictMode}
}

func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func token(r *http.Request) string {
	for _, name := range []string{SecureCookieName, CookieName} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// session returns r's live session, with ok false when r carries no session
// cookie. A cookie whose session has ended (expired, idle, revoked, its
// principal changed) is an error of kind Unauthenticated. For methods that
// change state it also checks the CSRF token and, when the browser sent
// one, the Origin.
func (h *Handlers) session(r *http.Request) (console.Session, bool, error) {
	tok := token(r)
	if tok == "" {
		return console.Session{}, false, nil
	}
	s, err := h.store.Lookup(r.Context(), tok)
	if err != nil {
		return console.Session{}, false, err
	}
	if err := h.verifier.Current(r.Context(), s); err != nil {
		if errors.Is(err, problem.Unauthenticated) || errors.Is(err, problem.Forbidden) || errors.Is(err, problem.NotFound) {
			_, _ = h.store.Revoke(r.Context(), s.ID)
			return console.Session{}, false, console.ErrNoSession
		}
		return console.Session{}, false, err
	}
	if !safe(r.Method) {
		if err := checkOrigin(r); err != nil {
			return console.Session{}, false, err
		}
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRFToken)) != 1 {
			return console.Session{}, false, ErrCSRF
		}
	}
	return s, true, nil
}

// ErrCSRF refuses a state-changing request of a session without its CSRF
// token.
var ErrCSRF = problem.Errorf(problem.Forbidden, "missing or wrong "+CSRFHeader+": the console sends the token GET /console/api/session gives")

// errOrigin refuses a request from another site.
var errOrigin = problem.Errorf(problem.Forbidden, "cross-origin request refused")

func safe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// checkOrigin refuses a request whose Origin header names another origin
// than the one it was sent to. Browsers send Origin on every cross-origin
// request and on same-origin ones that change state.
func checkOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return errOrigin
	}
	return nil
}

// TenantSession authenticates a tenant API request by its session cookie:
// the App it acts as, ok false when r carries no session cookie, or an
// error when the session has ended, is an operator's, or a state-changing
// request lacks the CSRF token.
func (h *Handlers) TenantSession(r *http.Request) (uuid.UUID, bool, error) {
	s, ok, err := h.session(r)
	if err != nil || !ok {
		return uuid.Nil, false, err
	}
	if s.Kind != console.KindTenant {
		return uuid.Nil, false, problem.Errorf(problem.Unauthenticated, "an operator's console session cannot use the tenant API: sign in with an App's key and secret")
	}
	return s.TenantID, true, nil
}

// OperatorSession authenticates an admin API request by its session cookie,
// like TenantSession: ok true for a live operator session.
func (h *Handlers) OperatorSession(r *http.Request) (bool, error) {
	s, ok, err := h.session(r)
	if err != nil || !ok {
		return false, err
	}
	if s.Kind != console.KindOperator {
		return false, problem.Errorf(problem.Unauthenticated, "a tenant's console session cannot use the admin API: sign in with the admin token")
	}
	return true, nil
}

// Sessions is the answer of GET /admin/v1/console/sessions.
type Sessions struct {
	Items []console.Session `json:"items"`
}

func (h *Handlers) listSessions(w http.ResponseWriter, r *http.Request) error {
	app, err := httpapi.UUIDParam(r, "app_id")
	if err != nil {
		return err
	}
	items, err := h.store.List(r.Context(), app)
	if err != nil {
		return err
	}
	if items == nil {
		items = []console.Session{}
	}
	return httpapi.WriteJSON(w, http.StatusOK, Sessions{Items: items})
}

// RevokeRequest chooses the sessions to end: exactly one of SessionID,
// AppID or All.
type RevokeRequest struct {
	SessionID string `json:"session_id,omitempty"`
	AppID     string `json:"app_id,omitempty"`
	All       bool   `json:"all,omitempty"`
}

// Revoked is the answer of a revocation.
type Revoked struct {
	Revoked int64 `json:"revoked"`
}

func (h *Handlers) revokeSessions(w http.ResponseWriter, r *http.Request) error {
	var req RevokeRequest
	if err := httpapi.ReadJSON(w, r, 0, &req); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{req.SessionID != "", req.AppID != "", req.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return problem.InvalidField("session_id", "give exactly one of session_id, app_id or all: true")
	}
	actor, err := httpapi.Actor(r)
	if err != nil {
		return err
	}
	var out Revoked
	switch {
	case req.SessionID != "":
		id, err := uuid.Parse(req.SessionID)
		if err != nil {
			return problem.InvalidField("session_id", "must be a UUID")
		}
		if out.Revoked, err = h.store.Revoke(r.Context(), id); err != nil {
			return err
		}
	case req.AppID != "":
		id, err := uuid.Parse(req.AppID)
		if err != nil {
			return problem.InvalidField("app_id", "must be a UUID")
		}
		if out.Revoked, err = h.store.RevokeTenant(r.Context(), id); err != nil {
			return err
		}
	default:
		var err error
		if out.Revoked, err = h.store.RevokeAll(r.Context()); err != nil {
			return err
		}
	}
	httpapi.Logger(r.Context()).Info("console sessions revoked", "request_id", httpapi.RequestID(r.Context()),
		"actor", actor, "count", out.Revoked)
	return httpapi.WriteJSON(w, http.StatusOK, out)
}
