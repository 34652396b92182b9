package rules

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/secretbox"
)

// api serves the handlers with a stand-in authentication: the tenant is the
// X-Tenant header.
type api struct {
	t   *testing.T
	srv *httptest.Server
}

func newAPI(t *testing.T, store *Store) *api {
	mux := http.NewServeMux()
	NewHandlers(store, nil).Register(mux,
		func(h http.HandlerFunc) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, err := uuid.Parse(r.Header.Get("X-Tenant")); err != nil {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				h(w, r)
			})
		},
		func(r *http.Request) uuid.UUID { return uuid.MustParse(r.Header.Get("X-Tenant")) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &api{t: t, srv: srv}
}

func (a *api) do(tenant uuid.UUID, method, path, body string) (int, map[string]any) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	require.NoError(a.t, err)
	req.Header.Set("X-Tenant", tenant.String())
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(b)) > 0 {
		require.NoError(a.t, json.Unmarshal(b, &out), string(b))
	}
	return resp.StatusCode, out
}

func TestRulesAPI(t *testing.T) {
	t.Parallel()
	k, _ := secretbox.NewKey()
	a := newAPI(t, NewStore(testDB.Pool, &k))
	tenant, other := uuid.New(), uuid.New()

	code, created := a.do(tenant, "POST", "/v1/rules", alertRule)
	require.Equal(t, http.StatusCreated, code, created)
	id := created["id"].(string)
	secret, _ := created["webhook_secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"), created)
	require.EqualValues(t, 1, created["version"])
	require.Equal(t, "active", created["status"])
	require.Equal(t, "data.amount > 1000", created["condition"])
	require.Equal(t, map[string]any{"status": "active"}, created["webhook"])

	// The secret is shown once, and is not stored in clear.
	code, got := a.do(tenant, "GET", "/v1/rules/"+id, "")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, got, "webhook_secret")
	var sealed []byte
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT webhook_secret FROM rules WHERE rule_id = $1`, id).Scan(&sealed))
	require.False(t, bytes.Contains(sealed, []byte(secret)))
	require.False(t, bytes.Contains(sealed, []byte(strings.TrimPrefix(secret, "whsec_"))))
	wt, err := NewStore(testDB.Pool, &k).Webhook(t.Context(), tenant, uuid.MustParse(id))
	require.NoError(t, err)
	require.Equal(t, secret, wt.Secret)

	// Another tenant sees nothing.
	code, _ = a.do(other, "GET", "/v1/rules/"+id, "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = a.do(other, "PUT", "/v1/rules/"+id, alertRule)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = a.do(other, "POST", "/v1/rules/"+id+"/disable", "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = a.do(other, "GET", "/v1/rules/"+id+"/versions/1", "")
	require.Equal(t, http.StatusNotFound, code)
	code, list := a.do(other, "GET", "/v1/rules", "")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, list["items"])

	// An update is a new version; the old one stays readable; the secret is
	// kept (not shown again).
	code, upd := a.do(tenant, "PUT", "/v1/rules/"+id, strings.Replace(alertRule, "> 1000", "> 5000", 1))
	require.Equal(t, http.StatusOK, code, upd)
	require.EqualValues(t, 2, upd["version"])
	require.Equal(t, "data.amount > 5000", upd["condition"])
	require.NotContains(t, upd, "webhook_secret")
	code, v1 := a.do(tenant, "GET", "/v1/rules/"+id+"/versions/1", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "data.amount > 1000", v1["document"].(map[string]any)["condition"])
	code, vs := a.do(tenant, "GET", "/v1/rules/"+id+"/versions", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, vs["items"], 2)
	code, _ = a.do(tenant, "GET", "/v1/rules/"+id+"/versions/3", "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = a.do(tenant, "GET", "/v1/rules/"+id+"/versions/x", "")
	require.Equal(t, http.StatusBadRequest, code)

	// Disable and enable.
	code, dis := a.do(tenant, "POST", "/v1/rules/"+id+"/disable", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "disabled", dis["status"])
	code, en := a.do(tenant, "POST", "/v1/rules/"+id+"/enable", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "active", en["status"])

	// Paging.
	for range 2 {
		code, _ = a.do(tenant, "POST", "/v1/rules", `{"name": "n", "actions": [{"emit": {"type": "t", "source": "/s"}}]}`)
		require.Equal(t, http.StatusCreated, code)
	}
	var ids []string
	cursor := ""
	for {
		code, p := a.do(tenant, "GET", "/v1/rules?limit=2&cursor="+cursor, "")
		require.Equal(t, http.StatusOK, code)
		for _, it := range p["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		if p["next_cursor"] == nil {
			break
		}
		cursor = p["next_cursor"].(string)
	}
	require.Len(t, ids, 3)
	require.Equal(t, id, ids[0])
	code, _ = a.do(tenant, "GET", "/v1/rules?cursor=nonsense", "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = a.do(tenant, "GET", "/v1/rules?limit=0", "")
	require.Equal(t, http.StatusBadRequest, code)
}

func TestInvalidRuleIs422WithPosition(t *testing.T) {
	t.Parallel()
	k, _ := secretbox.NewKey()
	a := newAPI(t, NewStore(testDB.Pool, &k))
	code, p := a.do(uuid.New(), "POST", "/v1/rules", `{"name": "x",
		"filters": [{"exact": {"type": "a"}}, {"sql": "type = 'a' AND"}],
		"condition": "data.amount >",
		"actions": [{"emit": {"type": "t", "source": "/s"}}]}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, p)
	require.EqualValues(t, 422, p["status"])
	errs := p["errors"].([]any)
	require.Len(t, errs, 2)
	e0, e1 := errs[0].(map[string]any), errs[1].(map[string]any)
	require.Equal(t, "/filters/1/sql", e0["field"])
	require.EqualValues(t, 1, e0["line"])
	require.EqualValues(t, 15, e0["column"])
	require.Equal(t, "/condition", e1["field"])
	require.EqualValues(t, 14, e1["column"])

	code, _ = a.do(uuid.New(), "POST", "/v1/rules", `{"name": `)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = a.do(uuid.New(), "PUT", "/v1/rules/"+uuid.NewString(), `{"name": "x", "actions": []}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
}

func TestWebhooksNeedASecretsKey(t *testing.T) {
	t.Parallel()
	a := newAPI(t, NewStore(testDB.Pool, nil))
	code, p := a.do(uuid.New(), "POST", "/v1/rules", alertRule)
	require.Equal(t, http.StatusServiceUnavailable, code, p)
	code, _ = a.do(uuid.New(), "POST", "/v1/rules", `{"name": "n", "actions": [{"emit": {"type": "t", "source": "/s"}}]}`)
	require.Equal(t, http.StatusCreated, code)
}

func TestDecisionsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := newAPI(t, b.store)
	r1 := b.create(t, alertRule)
	r2 := b.create(t, `{"name": "all payments", "filters": [{"prefix": {"type": "payment."}}], "actions": [{"emit": {"type": "seen", "source": "/r"}}]}`)
	var msgs = b.recordMany(t, 3)
	b.handle(t, msgs...)

	code, p := a.do(b.tenant, "GET", "/v1/decisions", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p["items"], 6)
	item := p["items"].([]any)[0].(map[string]any)
	for _, k := range []string{"rule_id", "rule_version", "event_id", "event_source", "inputs", "actions", "decided_at"} {
		require.Contains(t, item, k)
	}

	code, p = a.do(b.tenant, "GET", "/v1/decisions?rule="+r2.ID.String()+"&limit=2", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p["items"], 2)
	require.NotNil(t, p["next_cursor"])
	code, p = a.do(b.tenant, "GET", "/v1/decisions?rule="+r2.ID.String()+"&limit=2&cursor="+p["next_cursor"].(string), "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p["items"], 1)
	require.Nil(t, p["next_cursor"])

	code, p = a.do(b.tenant, "GET", "/v1/decisions?event_id=p-1&rule="+r1.ID.String(), "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p["items"], 1)
	require.Equal(t, r1.ID.String(), p["items"].([]any)[0].(map[string]any)["rule_id"])

	code, p = a.do(uuid.New(), "GET", "/v1/decisions", "")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, p["items"], "another tenant sees no decision")

	code, _ = a.do(b.tenant, "GET", "/v1/decisions?rule=nope", "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = a.do(b.tenant, "GET", "/v1/decisions?cursor=zzz", "")
	require.Equal(t, http.StatusBadRequest, code)
}
