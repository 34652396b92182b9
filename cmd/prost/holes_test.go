package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/secretbox"
)

// TestSmallHoles reproduces the rest of issue 10 case 6 and case 4 through
// the API: X-Prost-Actor was free text written into the immutable audit
// chain (tabs, U+202E); responses had no X-Content-Type-Options and those
// carrying a secret could be cached; a rule's webhook could aim anywhere.
func TestSmallHoles(t *testing.T) {
	_, key := secretbox.NewKey()
	s := startStack(t, func(e *env) { e.SecretsKey, e.OutboundAllow = key, "" })
	app := s.createApp("holes")
	admin := map[string]string{"Authorization": "Bearer " + s.token, "Content-Type": "application/json"}
	withActor := func(actor string) map[string]string {
		h := map[string]string{"X-Prost-Actor": actor}
		for k, v := range admin {
			h[k] = v
		}
		return h
	}

	// X-Prost-Actor: a safe printable set and length, refused otherwise.
	for _, bad := range []string{"ada\tlovelace", "ada\u202egnp.exe", strings.Repeat("a", 129), "ada;rm", "ada<script>"} {
		code, body := s.do(http.MethodPost, "/admin/v1/dlq/purge", withActor(bad), []byte(`{"all":true,"dry_run":true}`))
		require.Equal(t, http.StatusUnprocessableEntity, code, "%q: %s", bad, body)
		require.Contains(t, string(body), "X-Prost-Actor")
	}
	for _, good := range []string{"ada@host-1.example", "Ada Lovelace", "ci:deploy/42", strings.Repeat("a", 128)} {
		code, body := s.do(http.MethodPost, "/admin/v1/dlq/purge", withActor(good), []byte(`{"all":true,"dry_run":true}`))
		require.Equal(t, http.StatusOK, code, "%q: %s", good, body)
	}

	// nosniff on every answer, success or problem, tenant, admin or public;
	// no-store on every answer that carries a secret.
	check := func(method, path string, h map[string]string, body string, wantStatus int, secret bool) {
		t.Helper()
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, wantStatus, resp.StatusCode, "%s %s", method, path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), "%s %s", method, path)
		if secret {
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "%s %s", method, path)
		}
	}
	check("GET", "/healthz", nil, "", 200, false)
	check("GET", "/v1/events", auth(app), "", 200, false)
	check("GET", "/v1/events", nil, "", 401, false)
	check("GET", "/nope", nil, "", 404, false)
	check("POST", "/admin/v1/apps", admin, `{"name":"x"}`, 201, true)
	check("POST", "/admin/v1/apps/"+s.createApp("rotated").AppID.String()+"/rotate-secret", admin, "", 200, true)
	check("POST", "/v1/rules", auth(app, "X-Prost-App-Secret", "", "Content-Type", "application/json"), "", 401, false)
	check("POST", "/v1/rules", auth(app, "Content-Type", "application/json"),
		`{"name":"hook","filters":[],"actions":[{"webhook":{"url":"https://example.com/hook"}}]}`, 201, true)

	// Webhooks to internal addresses are refused when the rule is saved.
	for _, u := range []string{"http://127.0.0.1:4222/", "http://localhost:8080/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
		"http://0.0.0.0/", "http://169.254.169.254/latest/meta-data/"} {
		code, body := s.tenantJSON(app, "POST", "/v1/rules", `{"name":"ssrf","filters":[],"actions":[{"webhook":{"url":"`+u+`"}}]}`)
		require.Equal(t, http.StatusUnprocessableEntity, code, "%s: %v", u, body)
		require.Contains(t, body["errors"].([]any)[0].(map[string]any)["field"], "/actions/0/webhook/url")
	}
}
