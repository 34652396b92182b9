package registryhttp_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/domain/registry/registryhttp"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// testBundle is a registry served over HTTP behind the test tenant header.
type testBundle struct {
	t   *testing.T
	reg *registry.Registry
	srv *httpapitest.Server
}

func setup(t *testing.T, cfg registry.Config) *testBundle {
	t.Helper()
	if cfg.PlatformDir == "" {
		cfg.PlatformDir = "../../../../schemas"
	}
	reg, err := registry.New(testDB.Pool, cfg)
	require.NoError(t, err)
	srv := httpapitest.New(t, registryhttp.New(reg, registryhttp.Config{MaxBodyBytes: 64 << 10}))
	return &testBundle{t: t, reg: reg, srv: srv}
}

// call sends a request as tenant and returns the status and body.
func (b *testBundle) call(tenant uuid.UUID, method, path, contentType, body string) (int, []byte) {
	b.t.Helper()
	opts := []httpapitest.Option{httpapitest.AsTenant(tenant)}
	if contentType != "" {
		opts = append(opts, httpapitest.Header("Content-Type", contentType))
	}
	var bd any
	if body != "" {
		bd = body
	}
	res := b.srv.Do(b.t, method, path, bd, opts...)
	return res.Status, res.Body
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

func itoa(n int) string { return strconv.Itoa(n) }
