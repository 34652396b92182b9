package consolehttp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/console"
	"github.com/prost-platform/prost/pkg/console/consolehttp"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// verifier knows one App and the admin token; stamps say which version of
// the App's credentials a session signed in with.
type verifier struct {
	app      uuid.UUID
	stamp    string
	disabled bool
	token    string
}

func (v *verifier) Tenant(_ context.Context, key, secret string) (consolehttp.Principal, error) {
	if key != "prost_pk_a" || secret != "prost_sk_a" {
		return consolehttp.Principal{}, problem.Errorf(problem.Unauthenticated, "wrong key or secret")
	}
	if v.disabled {
		return consolehttp.Principal{}, problem.Errorf(problem.Forbidden, "this App is disabled")
	}
	return consolehttp.Principal{TenantID: v.app, Name: "shop", Stamp: v.stamp}, nil
}

func (v *verifier) Operator(_ context.Context, token string) (consolehttp.Principal, error) {
	if token != v.token {
		return consolehttp.Principal{}, problem.Errorf(problem.Unauthenticated, "wrong admin token")
	}
	return consolehttp.Principal{Name: "operator", Stamp: console.OperatorStamp(v.token)}, nil
}

func (v *verifier) Current(_ context.Context, s console.Session) error {
	if s.Kind == console.KindOperator {
		if !console.CheckOperatorStamp(v.token, s.Stamp) {
			return problem.Errorf(problem.Unauthenticated, "admin token changed")
		}
		return nil
	}
	if v.disabled || s.Stamp != v.stamp {
		return problem.Errorf(problem.Unauthenticated, "App changed")
	}
	return nil
}

// probe exposes what the gateway asks of the console, as routes a test can
// call: who a session authenticates as, on a safe and an unsafe method.
type probe struct{ h *consolehttp.Handlers }

func (p probe) Mount(rt *httpapi.Router) {
	who := func(w http.ResponseWriter, r *http.Request) error {
		id, ok, err := p.h.TenantSession(r)
		if err != nil {
			return err
		}
		op, err := p.h.OperatorSession(r)
		if err != nil && ok {
			// A tenant session on the admin side: refused, as asked.
			op = false
		} else if err != nil {
			return err
		}
		return httpapi.WriteJSON(w, http.StatusOK, map[string]any{"tenant": id, "ok": ok, "operator": op})
	}
	rt.Public("GET /probe", who)
	rt.Public("POST /probe", who)
}

var app = fstest.MapFS{
	"index.html":         {Data: []byte(`<!doctype html><title>console</title><script type="module" src="/console/assets/app.js"></script>`)},
	"favicon.svg":        {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	"assets/app-1234.js": {Data: []byte(`console.log("hi")`)},
}

type bundle struct {
	srv   *httpapitest.Server
	store *console.Store
	v     *verifier
}

func setup(t *testing.T, cfg console.Config, assets fstest.MapFS) *bundle {
	t.Helper()
	v := &verifier{app: uuid.New(), stamp: "s1", token: "admin-" + uuid.NewString()}
	store := console.NewStore(testDB.Pool, cfg)
	var h *consolehttp.Handlers
	if assets == nil {
		h = consolehttp.New(store, v, nil)
	} else {
		h = consolehttp.New(store, v, assets)
	}
	return &bundle{srv: httpapitest.New(t, h, probe{h}), store: store, v: v}
}

// signIn returns the session cookie and CSRF token of a new session.
func (b *bundle) signIn(t *testing.T, body map[string]string) (*http.Cookie, consolehttp.SessionInfo) {
	t.Helper()
	res := b.srv.Do(t, "POST", "/console/api/session", body)
	require.Equal(t, http.StatusCreated, res.Status, string(res.Body))
	var info consolehttp.SessionInfo
	res.JSON(t, &info)
	cookies := (&http.Response{Header: res.Header}).Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	require.Equal(t, consolehttp.CookieName, c.Name)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.Equal(t, "/", c.Path)
	require.False(t, c.Secure, "plain HTTP: not Secure")
	require.True(t, strings.HasPrefix(c.Value, console.TokenPrefix))
	require.NotContains(t, string(res.Body), c.Value, "the token is never in a body")
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	return c, info
}

func withCookie(c *http.Cookie) httpapitest.Option {
	return func(r *http.Request) { r.AddCookie(c) }
}

type who struct {
	Tenant   uuid.UUID `json:"tenant"`
	OK       bool      `json:"ok"`
	Operator bool      `json:"operator"`
}

func TestSessions(t *testing.T) {
	b := setup(t, console.Config{}, app)
	tenantCreds := map[string]string{"kind": "tenant", "api_key": "prost_pk_a", "api_secret": "prost_sk_a"}

	c, info := b.signIn(t, tenantCreds)
	require.Equal(t, console.KindTenant, info.Kind)
	require.Equal(t, b.v.app, info.AppID)
	require.Equal(t, "shop", info.Name)
	require.NotEmpty(t, info.CSRFToken)
	require.Equal(t, int(console.DefaultIdleTimeout/time.Second), info.IdleTimeoutSeconds)
	require.WithinDuration(t, time.Now().Add(console.DefaultTTL), info.ExpiresAt, time.Minute)

	// The session reads back, with its CSRF token, and authenticates the
	// tenant side only.
	res := b.srv.Do(t, "GET", "/console/api/session", nil, withCookie(c))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var again consolehttp.SessionInfo
	res.JSON(t, &again)
	require.Equal(t, info.CSRFToken, again.CSRFToken)
	var w who
	b.srv.Do(t, "GET", "/probe", nil, withCookie(c)).JSON(t, &w)
	require.Equal(t, who{Tenant: b.v.app, OK: true}, w)

	// A state-changing request needs the CSRF token, and no foreign Origin.
	res = b.srv.Do(t, "POST", "/probe", nil, withCookie(c))
	require.Equal(t, http.StatusForbidden, res.Status, string(res.Body))
	require.Contains(t, res.Problem(t).Detail, "X-CSRF-Token")
	res = b.srv.Do(t, "POST", "/probe", nil, withCookie(c), httpapitest.Header(consolehttp.CSRFHeader, "guess"))
	require.Equal(t, http.StatusForbidden, res.Status)
	res = b.srv.Do(t, "POST", "/probe", nil, withCookie(c), httpapitest.Header(consolehttp.CSRFHeader, info.CSRFToken),
		httpapitest.Header("Origin", "https://evil.example"))
	require.Equal(t, http.StatusForbidden, res.Status)
	require.Contains(t, res.Problem(t).Detail, "cross-origin")
	res = b.srv.Do(t, "POST", "/probe", nil, withCookie(c), httpapitest.Header(consolehttp.CSRFHeader, info.CSRFToken),
		httpapitest.Header("Origin", b.srv.URL))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))

	// Sign-in failures.
	for _, tc := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"wrong secret", map[string]string{"kind": "tenant", "api_key": "prost_pk_a", "api_secret": "nope"}, 401, ""},
		{"no secret", map[string]string{"kind": "tenant", "api_key": "prost_pk_a"}, 422, "api_secret"},
		{"no key", map[string]string{"kind": "tenant", "api_secret": "x"}, 422, "api_key"},
		{"wrong token", map[string]string{"kind": "operator", "admin_token": "nope"}, 401, ""},
		{"no token", map[string]string{"kind": "operator"}, 422, "admin_token"},
		{"unknown kind", map[string]string{"kind": "root"}, 422, "kind"},
		{"unknown member", map[string]string{"kind": "tenant", "password": "x"}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := b.srv.Do(t, "POST", "/console/api/session", tc.body)
			require.Equal(t, tc.status, res.Status, string(res.Body))
			require.Empty(t, res.Header.Values("Set-Cookie"))
			if tc.field != "" {
				require.Equal(t, tc.field, res.Problem(t).Errors[0].Field)
			}
		})
	}
	res = b.srv.Do(t, "POST", "/console/api/session", tenantCreds, httpapitest.Header("Origin", "https://evil.example"))
	require.Equal(t, http.StatusForbidden, res.Status, "no sign-in from another site")

	// The operator's session authenticates the admin side only.
	oc, oinfo := b.signIn(t, map[string]string{"kind": "operator", "admin_token": b.v.token})
	require.Equal(t, console.KindOperator, oinfo.Kind)
	require.Equal(t, uuid.Nil, oinfo.AppID)
	res = b.srv.Do(t, "GET", "/probe", nil, withCookie(oc))
	require.Equal(t, http.StatusUnauthorized, res.Status, "an operator session is not a tenant's")

	// Operators list and revoke sessions.
	res = b.srv.Do(t, "GET", "/admin/v1/console/sessions?app_id="+b.v.app.String(), nil, httpapitest.AsAdmin())
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var list consolehttp.Sessions
	res.JSON(t, &list)
	require.Len(t, list.Items, 1)
	require.Equal(t, info.SessionID, list.Items[0].ID)
	require.NotContains(t, string(res.Body), info.CSRFToken)

	// Sign-out ends the session (it needs the CSRF token too).
	res = b.srv.Do(t, "DELETE", "/console/api/session", nil, withCookie(c))
	require.Equal(t, http.StatusForbidden, res.Status)
	res = b.srv.Do(t, "DELETE", "/console/api/session", nil, withCookie(c), httpapitest.Header(consolehttp.CSRFHeader, info.CSRFToken))
	require.Equal(t, http.StatusNoContent, res.Status, string(res.Body))
	require.Contains(t, res.Header.Get("Set-Cookie"), "Max-Age=0")
	res = b.srv.Do(t, "GET", "/console/api/session", nil, withCookie(c))
	require.Equal(t, http.StatusUnauthorized, res.Status)
	res = b.srv.Do(t, "GET", "/probe", nil, withCookie(c))
	require.Equal(t, http.StatusUnauthorized, res.Status, "a signed-out cookie authenticates nothing")

	// A change of the App's credentials ends its sessions; so does a
	// revocation by app_id, and a new admin token ends operators'.
	c2, _ := b.signIn(t, tenantCreds)
	b.v.stamp = "s2"
	res = b.srv.Do(t, "GET", "/probe", nil, withCookie(c2))
	require.Equal(t, http.StatusUnauthorized, res.Status)
	c3, _ := b.signIn(t, tenantCreds)
	res = b.srv.Do(t, "POST", "/admin/v1/console/sessions/revoke", map[string]string{"app_id": b.v.app.String()}, httpapitest.AsAdmin())
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	require.JSONEq(t, `{"revoked":1}`, string(res.Body))
	res = b.srv.Do(t, "GET", "/probe", nil, withCookie(c3))
	require.Equal(t, http.StatusUnauthorized, res.Status)
	res = b.srv.Do(t, "GET", "/console/api/session", nil, withCookie(oc))
	require.Equal(t, http.StatusOK, res.Status)
	b.v.token = "another-token"
	res = b.srv.Do(t, "GET", "/console/api/session", nil, withCookie(oc))
	require.Equal(t, http.StatusUnauthorized, res.Status)

	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"none", map[string]any{}, "session_id"},
		{"two", map[string]any{"all": true, "app_id": b.v.app.String()}, "session_id"},
		{"bad app_id", map[string]any{"app_id": "x"}, "app_id"},
		{"bad session_id", map[string]any{"session_id": "x"}, "session_id"},
	} {
		t.Run("revoke "+tc.name, func(t *testing.T) {
			res := b.srv.Do(t, "POST", "/admin/v1/console/sessions/revoke", tc.body, httpapitest.AsAdmin())
			require.Equal(t, http.StatusUnprocessableEntity, res.Status, string(res.Body))
			require.Equal(t, tc.field, res.Problem(t).Errors[0].Field)
		})
	}
	res = b.srv.Do(t, "GET", "/admin/v1/console/sessions", nil)
	require.Equal(t, http.StatusUnauthorized, res.Status)

	// A forged or unknown cookie is no session.
	res = b.srv.Do(t, "GET", "/probe", nil, withCookie(&http.Cookie{Name: consolehttp.CookieName, Value: console.TokenPrefix + "forged"}))
	require.Equal(t, http.StatusUnauthorized, res.Status)
	var none who
	b.srv.Do(t, "GET", "/probe", nil).JSON(t, &none)
	require.Equal(t, who{}, none, "no cookie: no session, and no error (API credentials decide)")
}

// TestSessionExpiry: sessions end after their TTL and after idling.
func TestSessionExpiry(t *testing.T) {
	tenantCreds := map[string]string{"kind": "tenant", "api_key": "prost_pk_a", "api_secret": "prost_sk_a"}
	// The session must still be valid when it is first used: with a TTL of
	// 300ms a slow sign-in and request on a loaded machine could use it up
	// before then. 2s leaves that slack; the sleep is from the sign-in's
	// answer, after the session's expiry was set, so it ends past it.
	const ttl = 2 * time.Second
	b := setup(t, console.Config{TTL: ttl}, app)
	c, _ := b.signIn(t, tenantCreds)
	signedIn := time.Now()
	require.Equal(t, http.StatusOK, b.srv.Do(t, "GET", "/console/api/session", nil, withCookie(c)).Status)
	time.Sleep(time.Until(signedIn.Add(ttl + 100*time.Millisecond)))
	require.Equal(t, http.StatusUnauthorized, b.srv.Do(t, "GET", "/console/api/session", nil, withCookie(c)).Status)

	b = setup(t, console.Config{IdleTimeout: 300 * time.Millisecond}, app)
	c, _ = b.signIn(t, tenantCreds)
	time.Sleep(400 * time.Millisecond)
	require.Equal(t, http.StatusUnauthorized, b.srv.Do(t, "GET", "/console/api/session", nil, withCookie(c)).Status)
}

// TestSecureCookie: behind HTTPS the cookie is Secure with the __Host- prefix.
func TestSecureCookie(t *testing.T) {
	b := setup(t, console.Config{}, app)
	res := b.srv.Do(t, "POST", "/console/api/session", map[string]string{"kind": "tenant", "api_key": "prost_pk_a", "api_secret": "prost_sk_a"},
		httpapitest.Header("X-Forwarded-Proto", "https"))
	require.Equal(t, http.StatusCreated, res.Status, string(res.Body))
	c := (&http.Response{Header: res.Header}).Cookies()[0]
	require.Equal(t, consolehttp.SecureCookieName, c.Name)
	require.True(t, c.Secure)
	var w who
	b.srv.Do(t, "GET", "/probe", nil, withCookie(c)).JSON(t, &w)
	require.True(t, w.OK)
}

// TestPages: every page of the app is index.html with the security
// headers; assets are cached for good; unknown API paths are problems.
func TestPages(t *testing.T) {
	b := setup(t, console.Config{}, app)
	for _, path := range []string{"/console/", "/console/events", "/console/rules/0193-x", "/console/operator/apps", "/console/favicon.svg", "/console/assets/app-1234.js"} {
		t.Run(path, func(t *testing.T) {
			res := b.srv.Do(t, "GET", path, nil)
			require.Equal(t, http.StatusOK, res.Status, string(res.Body))
			require.Equal(t, consolehttp.ContentSecurityPolicy, res.Header.Get("Content-Security-Policy"))
			require.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self';")
			require.NotContains(t, res.Header.Get("Content-Security-Policy"), "unsafe-inline")
			require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
			switch {
			case strings.HasPrefix(path, "/console/assets/"):
				require.Contains(t, res.Header.Get("Cache-Control"), "immutable")
				require.Equal(t, `console.log("hi")`, string(res.Body))
			case strings.HasSuffix(path, ".svg"):
				require.Contains(t, string(res.Body), "<svg")
			default:
				require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
				require.Contains(t, string(res.Body), "<title>console</title>")
			}
		})
	}
	res := b.srv.Do(t, "GET", "/console/assets/missing.js", nil)
	require.Equal(t, http.StatusNotFound, res.Status, "a missing asset is not the index")
	res = b.srv.Do(t, "GET", "/console/api/nothing", nil)
	require.Equal(t, http.StatusNotFound, res.Status)
	res.Problem(t)
	res = b.srv.Do(t, "GET", "/console", nil)
	require.Equal(t, http.StatusOK, res.Status, "redirected to /console/")

	// A binary built without the console says how to build it.
	nb := httpapitest.New(t, consolehttp.New(b.store, b.v, emptyFS{}))
	res = nb.Do(t, "GET", "/console/", nil)
	require.Equal(t, http.StatusServiceUnavailable, res.Status)
	require.Contains(t, string(res.Body), "make build")
	require.Equal(t, consolehttp.ContentSecurityPolicy, res.Header.Get("Content-Security-Policy"))
}

// emptyFS is a build without the app.
type emptyFS struct{ fstest.MapFS }
