package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/console/consolehttp"
)

// consoleClient is a browser's view of the API: a cookie jar, and the CSRF
// token of its session.
type consoleClient struct {
	t    *testing.T
	s    *stack
	http *http.Client
	csrf string
}

func (s *stack) consoleSignIn(t *testing.T, body map[string]string) *consoleClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &consoleClient{t: t, s: s, http: &http.Client{Jar: jar, Transport: validatingTransport(t)}}
	code, b := c.do("POST", "/console/api/session", body, false)
	require.Equal(t, http.StatusCreated, code, string(b))
	var info consolehttp.SessionInfo
	require.NoError(t, json.Unmarshal(b, &info))
	c.csrf = info.CSRFToken
	return c
}

// do sends a request with the session cookie, and the CSRF token when
// withCSRF.
func (c *consoleClient) do(method, path string, body any, withCSRF bool) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		enc, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, c.s.url+path, rd)
	require.NoError(c.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if withCSRF {
		req.Header.Set(consolehttp.CSRFHeader, c.csrf)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, out
}

// TestConsoleSessions: a console session is accepted by the gateway in place
// of API credentials, with the same checks behind it: a tenant's session
// reads its own data only, an operator's the admin API only, nothing
// changes state without the CSRF token, and disabling or rotating an App
// ends its sessions.
func TestConsoleSessions(t *testing.T) {
	s := startStack(t, nil)
	a, b := s.createApp("console-a"), s.createApp("console-b")
	for _, c := range []creds{a, b} {
		code, body := s.post(c, "application/cloudevents+json",
			`{"specversion":"1.0","id":"same-id","source":"/shop","type":"order.placed","data":{"total":1}}`)
		require.Equal(t, http.StatusAccepted, code, string(body))
	}
	ca := s.consoleSignIn(t, map[string]string{"kind": "tenant", "api_key": a.APIKey, "api_secret": a.APISecret})
	cb := s.consoleSignIn(t, map[string]string{"kind": "tenant", "api_key": b.APIKey, "api_secret": b.APISecret})
	op := s.consoleSignIn(t, map[string]string{"kind": "operator", "admin_token": s.token})

	// A's session reads A's events; A's event by source and id; B's event
	// (same source and id, another tenant) is not there for A.
	code, body := ca.do("GET", "/v1/events", nil, false)
	require.Equal(t, http.StatusOK, code, string(body))
	var page eventsPage
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, a.AppID.String(), page.Items[0]["tenantid"])
	lookup := "/v1/events/lookup?source=" + url.QueryEscape("/shop") + "&id=same-id"
	code, body = ca.do("GET", lookup, nil, false)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), a.AppID.String())
	require.NotContains(t, string(body), b.AppID.String())
	code, body = ca.do("GET", "/v1/events/lookup?source=/nowhere&id=same-id", nil, false)
	require.Equal(t, http.StatusNotFound, code, string(body))

	// Posting through a session needs the CSRF token.
	ev := `{"specversion":"1.0","id":"from-console","source":"/console","type":"order.placed","data":{}}`
	req := func(c *consoleClient, withCSRF bool) (int, []byte) {
		r, err := http.NewRequest("POST", s.url+"/v1/events", bytes.NewReader([]byte(ev)))
		require.NoError(t, err)
		r.Header.Set("Content-Type", "application/cloudevents+json")
		if withCSRF {
			r.Header.Set(consolehttp.CSRFHeader, c.csrf)
		}
		resp, err := c.http.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	code, body = req(ca, false)
	require.Equal(t, http.StatusForbidden, code, string(body))
	require.Contains(t, string(body), "X-CSRF-Token")
	require.Len(t, s.events(a, "?source=/console").Items, 0, "nothing stored")
	code, body = req(ca, true)
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Len(t, s.events(a, "?source=/console").Items, 1)

	// Sessions stay on their side: a tenant's is no admin, an operator's no tenant.
	code, _ = ca.do("GET", "/admin/v1/apps", nil, false)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = op.do("GET", "/v1/events", nil, false)
	require.Equal(t, http.StatusUnauthorized, code)
	code, body = op.do("GET", "/admin/v1/apps", nil, false)
	require.Equal(t, http.StatusOK, code, string(body))

	// The operator disables B: without the token refused, with it done; B's
	// session has ended and stays ended after B is enabled again.
	disable := fmt.Sprintf("/admin/v1/apps/%s/disable", b.AppID)
	code, _ = op.do("POST", disable, nil, false)
	require.Equal(t, http.StatusForbidden, code)
	code, body = op.do("POST", disable, nil, true)
	require.Equal(t, http.StatusOK, code, string(body))
	code, _ = cb.do("GET", "/v1/events", nil, false)
	require.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, code)
	code, body = op.do("POST", fmt.Sprintf("/admin/v1/apps/%s/enable", b.AppID), nil, true)
	require.Equal(t, http.StatusOK, code, string(body))
	code, _ = cb.do("GET", "/v1/events", nil, false)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = cb.do("GET", "/console/api/session", nil, false)
	require.Equal(t, http.StatusUnauthorized, code)

	// Rotating A's secret ends A's session.
	code, body = op.do("POST", fmt.Sprintf("/admin/v1/apps/%s/rotate-secret", a.AppID), nil, true)
	require.Equal(t, http.StatusOK, code, string(body))
	code, _ = ca.do("GET", "/v1/events", nil, false)
	require.Equal(t, http.StatusUnauthorized, code)

	// API credentials still work beside sessions.
	require.Len(t, s.events(b, "").Items, 1)

	// Every console page carries the Content-Security-Policy.
	for _, p := range []string{"/console/", "/console/sign-in", "/console/events", "/console/operator/apps"} {
		resp, err := http.Get(s.url + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, consolehttp.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"), p)
	}
}
