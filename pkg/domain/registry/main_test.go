package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

// TestMain gives the package one fresh migrated database (each test uses
// tenants of its own) and fails the run when a goroutine outlives the tests.
func TestMain(m *testing.M) { prosttest.MainCheckingLeaks(m, &testDB) }

// testBundle is a registry with its HTTP API, served with a stand-in for the
// gateway's tenant middleware: the X-Test-Tenant header names the tenant.
type testBundle struct {
	t         *testing.T
	reg       *registry.Registry
	contracts *contracts.Store
	ingest    *registry.Ingest
	srv       *httptest.Server
}

type tenantKey struct{}

func setup(t *testing.T, cfg registry.Config) *testBundle {
	t.Helper()
	if cfg.PlatformDir == "" {
		cfg.PlatformDir = "../../../schemas"
	}
	reg, err := registry.New(testDB.Pool, cfg)
	require.NoError(t, err)
	cs := contracts.NewStore(testDB.Pool, contracts.StoreConfig{})
	mux := http.NewServeMux()
	tenant := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := uuid.Parse(r.Header.Get("X-Test-Tenant"))
			if err != nil {
				http.Error(w, "no tenant", http.StatusUnauthorized)
				return
			}
			h(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, id)))
		})
	}
	tenantID := func(r *http.Request) uuid.UUID { return r.Context().Value(tenantKey{}).(uuid.UUID) }
	registry.NewHandlers(reg, registry.HandlerConfig{MaxBodyBytes: 64 << 10}).Register(mux, tenant, tenantID)
	contracts.NewHandlers(cs, nil).Register(mux, tenant, tenantID)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testBundle{t: t, reg: reg, contracts: cs, ingest: registry.NewIngest(reg, cs), srv: srv}
}

// call sends a request as tenant and returns the status and body.
func (b *testBundle) call(tenant uuid.UUID, method, path, contentType, body string) (int, []byte) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, bytes.NewReader([]byte(body)))
	require.NoError(b.t, err)
	req.Header.Set("X-Test-Tenant", tenant.String())
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, out
}

func (b *testBundle) json(tenant uuid.UUID, method, path, body string) (int, []byte) {
	b.t.Helper()
	return b.call(tenant, method, path, "application/json", body)
}

// schemaBody is a registration body in Confluent's form (the schema as a
// string).
func schemaBody(schema string) string {
	b, _ := json.Marshal(map[string]string{"schemaType": "JSON", "schema": schema})
	return string(b)
}

// register registers schema and requires 200, returning the version.
func (b *testBundle) register(tenant uuid.UUID, subject, schema string) int {
	b.t.Helper()
	code, body := b.json(tenant, http.MethodPost, "/v1/registry/subjects/"+subject+"/versions", schemaBody(schema))
	require.Equal(b.t, http.StatusOK, code, string(body))
	var out struct {
		Version int `json:"version"`
	}
	require.NoError(b.t, json.Unmarshal(body, &out))
	return out.Version
}

func (b *testBundle) setMode(tenant uuid.UUID, subject, mode string) {
	b.t.Helper()
	path := "/v1/registry/config"
	if subject != "" {
		path += "/" + subject
	}
	code, body := b.json(tenant, http.MethodPut, path, `{"compatibility":"`+mode+`"}`)
	require.Equal(b.t, http.StatusOK, code, string(body))
}

// problemDoc is the part of a problem document the tests read.
type problemDoc struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Index   *int   `json:"index"`
		Field   string `json:"field"`
		Pointer string `json:"pointer"`
		Keyword string `json:"keyword"`
		Detail  string `json:"detail"`
	} `json:"errors"`
	Differences []struct {
		Type       string `json:"type"`
		Pointer    string `json:"pointer"`
		Compatible bool   `json:"compatible"`
		Version    int    `json:"version"`
		Direction  string `json:"direction"`
	} `json:"differences"`
}

func parseProblem(t *testing.T, body []byte) problemDoc {
	t.Helper()
	var p problemDoc
	require.NoError(t, json.Unmarshal(body, &p), string(body))
	return p
}
