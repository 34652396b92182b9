package privacyhttp_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/privacy"
	"github.com/prost-platform/prost/pkg/domain/privacy/privacyhttp"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

func TestRoutes(t *testing.T) {
	ctx := t.Context()
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(t, err)
	kr, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek})
	require.NoError(t, err)
	cs := contracts.NewStore(testDB.Pool, contracts.StoreConfig{})
	srv := httpapitest.New(t, privacyhttp.New(privacy.New(testDB.Pool, kr, cs, privacy.Config{})))
	a, b := uuid.New(), uuid.New()

	// One event of subject "jane/42" (a slash, percent-encoded in paths) for A.
	pol, err := dataprotect.NewPolicy("/user_id", []dataprotect.Field{{Pointer: "/email", Class: "personal", Purpose: "p", Retention: dataprotect.Forever}})
	require.NoError(t, err)
	data, err := kr.Protect(ctx, a, []byte(`{"user_id":"jane/42","email":"jane@example.com"}`), pol)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(ctx, tx, []eventstore.NewEvent{{TenantID: a, Source: "/s", ID: "e-1", Type: "user.signup",
			Envelope:      []byte(`{"specversion":"1.0","id":"e-1","source":"/s","type":"user.signup","tenantid":"` + a.String() + `","data":` + string(data) + `}`),
			OutboxSubject: subjects.Event(a, 0, "user.signup")}})
		return err
	}))
	const path = "/v1/data-subjects/jane%2F42"

	// Export as NDJSON: one line with the decrypted event and its contract (none).
	res := srv.Do(t, "GET", path+"/export", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	require.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
	lines := strings.Split(strings.TrimSpace(string(res.Body)), "\n")
	require.Len(t, lines, 1)
	require.Contains(t, lines[0], `"email":"jane@example.com"`)
	require.Contains(t, lines[0], `"contract":null`)

	// B erasing the same id erases nothing of A's.
	res = srv.Do(t, "DELETE", path, nil, httpapitest.AsTenant(b))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	require.Contains(t, string(res.Body), `"keys_destroyed":0`)
	res = srv.Do(t, "GET", path+"/export", nil, httpapitest.AsTenant(b))
	require.Equal(t, http.StatusOK, res.Status)
	require.Empty(t, res.Body)
	require.Contains(t, string(srv.Do(t, "GET", path+"/export", nil, httpapitest.AsTenant(a)).Body), "jane@example.com")

	// A erases: the receipt names the key, the export is empty, the report lists it.
	res = srv.Do(t, "DELETE", path, nil, httpapitest.AsTenant(a), httpapitest.Header("X-Prost-Actor", "dpo@host"))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var rec privacy.Erasure
	res.JSON(t, &rec)
	require.Equal(t, 1, rec.KeysDestroyed)
	require.Equal(t, "erasure", rec.Reason)
	res = srv.Do(t, "GET", path+"/export", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status)
	require.Empty(t, res.Body)
	var page privacyhttp.ShreddedPage
	res = srv.Do(t, "GET", "/v1/privacy/shredded?reason=erasure", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	res.JSON(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, rec.Keys[0].KeyID, page.Items[0].KeyID)
	require.Equal(t, rec.ErasureID, page.Items[0].ErasureID)
	require.Nil(t, page.NextCursor)
	res = srv.Do(t, "GET", "/v1/privacy/shredded", nil, httpapitest.AsTenant(b))
	res.JSON(t, &page)
	require.Empty(t, page.Items, "B sees none of A's")

	for _, c := range []struct {
		name, method, path string
		status             int
		field              string
	}{
		{"id too long", "DELETE", "/v1/data-subjects/" + strings.Repeat("x", privacy.MaxSubjectIDLen+1), 400, "id"},
		{"bad reason", "GET", "/v1/privacy/shredded?reason=whim", 400, "reason"},
		{"bad since", "GET", "/v1/privacy/shredded?since=monday", 400, "since"},
		{"bad cursor", "GET", "/v1/privacy/shredded?cursor=%21", 400, "cursor"},
		{"bad limit", "GET", "/v1/privacy/shredded?limit=0", 400, "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, c.method, c.path, nil, httpapitest.AsTenant(a))
			require.Equal(t, c.status, res.Status, string(res.Body))
			require.Equal(t, c.field, res.Problem(t).Errors[0].Field)
		})
	}
	for _, p := range []string{"/v1/data-subjects/x/export", "/v1/privacy/shredded"} {
		require.Equal(t, http.StatusUnauthorized, srv.Do(t, "GET", p, nil).Status)
	}
	require.Equal(t, http.StatusUnauthorized, srv.Do(t, "DELETE", "/v1/data-subjects/x", nil).Status)

	// Without a KEK the routes answer 503, saying what to set.
	none := httpapitest.New(t, privacyhttp.New(privacy.New(testDB.Pool, nil, cs, privacy.Config{})))
	res = none.Do(t, "DELETE", "/v1/data-subjects/x", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusServiceUnavailable, res.Status)
	require.Contains(t, res.Problem(t).Detail, "PROST_PRIVACY_KEK")
}
