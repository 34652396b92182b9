package contractshttp_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/contracts/contractshttp"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

type testBundle struct {
	t   *testing.T
	srv *httpapitest.Server
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	cs := contracts.NewStore(testDB.Pool, contracts.StoreConfig{})
	return &testBundle{t: t, srv: httpapitest.New(t, contractshttp.New(cs))}
}

// call sends a request as tenant and returns the status and body.
func (b *testBundle) call(tenant uuid.UUID, method, path, contentType, body string) (int, []byte) {
	b.t.Helper()
	var bd any
	if body != "" {
		bd = body
	}
	res := b.srv.Do(b.t, method, path, bd, httpapitest.AsTenant(tenant), httpapitest.Header("Content-Type", contentType))
	return res.Status, res.Body
}

func (b *testBundle) json(tenant uuid.UUID, method, path, body string) (int, []byte) {
	b.t.Helper()
	return b.call(tenant, method, path, "application/json", body)
}

type problemDoc struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Keyword string `json:"keyword"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

func parseProblem(t *testing.T, body []byte) problemDoc {
	t.Helper()
	var p problemDoc
	require.NoError(t, json.Unmarshal(body, &p), string(body))
	return p
}
