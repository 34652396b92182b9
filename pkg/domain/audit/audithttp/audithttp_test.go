package audithttp_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/domain/audit/audithttp"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

func TestRoutes(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	for _, tenant := range []uuid.UUID{a, b} {
		var recs []audit.Record
		for i := range 3 {
			recs = append(recs, audit.Record{TenantID: tenant, EventID: fmt.Sprintf("e-%d", i), EventSource: "/s", EventType: "t.x", ActorID: "u", Action: "x"})
		}
		require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
			_, err := audit.AppendTx(t.Context(), tx, recs)
			return err
		}))
	}
	srv := httpapitest.New(t, audithttp.New(testDB.Pool, audithttp.Config{}))

	// A tenant pages through its own chain only.
	var ids []string
	path := "/v1/audit?limit=2"
	for range 5 {
		res := srv.Do(t, "GET", path, nil, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		var page audithttp.Page
		res.JSON(t, &page)
		for _, e := range page.Items {
			require.Equal(t, a, e.TenantID)
			ids = append(ids, e.EventID)
		}
		if page.NextCursor == nil {
			break
		}
		path = "/v1/audit?limit=2&cursor=" + *page.NextCursor
	}
	require.Equal(t, []string{"e-0", "e-1", "e-2"}, ids)

	// An App with no entries has an empty page, not null.
	res := srv.Do(t, "GET", "/v1/audit", nil, httpapitest.AsTenant(uuid.New()))
	require.Equal(t, http.StatusOK, res.Status)
	require.JSONEq(t, `{"items":[],"next_cursor":null}`, string(res.Body))

	// Verify one tenant's chain, and every chain.
	res = srv.Do(t, "GET", "/admin/v1/audit/verify?app_id="+b.String(), nil, httpapitest.AsAdmin())
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var v audithttp.VerifyResponse
	res.JSON(t, &v)
	require.True(t, v.OK)
	require.Len(t, v.Chains, 1)
	require.EqualValues(t, 3, v.Chains[0].Entries)
	res = srv.Do(t, "GET", "/admin/v1/audit/verify", nil, httpapitest.AsAdmin())
	res.JSON(t, &v)
	require.True(t, v.OK)
	require.GreaterOrEqual(t, len(v.Chains), 2)

	// A tenant verifies its own chain, and reads the entries of one event.
	res = srv.Do(t, "GET", "/v1/audit/verify", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	res.JSON(t, &v)
	require.True(t, v.OK)
	require.Len(t, v.Chains, 1)
	require.Equal(t, a, v.Chains[0].TenantID)
	require.EqualValues(t, 3, v.Chains[0].Entries)
	res = srv.Do(t, "GET", "/v1/audit?event_id=e-1&source=/s", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var one audithttp.Page
	res.JSON(t, &one)
	require.Len(t, one.Items, 1)
	require.Equal(t, a, one.Items[0].TenantID)
	require.EqualValues(t, 2, one.Items[0].Seq)
	res = srv.Do(t, "GET", "/v1/audit?event_id=e-1&source=/other", nil, httpapitest.AsTenant(a))
	res.JSON(t, &one)
	require.Empty(t, one.Items)
	res = srv.Do(t, "GET", "/v1/audit?event_id=e-1", nil, httpapitest.AsTenant(uuid.New()))
	require.JSONEq(t, `{"items":[],"next_cursor":null}`, string(res.Body), "another tenant's event is not there")

	for _, c := range []struct {
		name, path string
		opt        httpapitest.Option
		status     int
		field      string
	}{
		{"bad limit", "/v1/audit?limit=5000", httpapitest.AsTenant(a), 400, "limit"},
		{"bad cursor", "/v1/audit?cursor=zz", httpapitest.AsTenant(a), 400, "cursor"},
		{"no credentials", "/v1/audit", httpapitest.Header("X", "y"), 401, ""},
		{"verify as a tenant", "/admin/v1/audit/verify", httpapitest.AsTenant(a), 401, ""},
		{"bad app_id", "/admin/v1/audit/verify?app_id=nope", httpapitest.AsAdmin(), 400, "app_id"},
		{"bad settle", "/admin/v1/audit/verify?settle=soon", httpapitest.AsAdmin(), 400, "settle"},
		{"negative settle", "/v1/audit/verify?settle=-1m", httpapitest.AsTenant(a), 400, "settle"},
		{"bad verify cursor", "/admin/v1/audit/verify?cursor=zz", httpapitest.AsAdmin(), 400, "cursor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, "GET", c.path, nil, c.opt)
			require.Equal(t, c.status, res.Status, string(res.Body))
			p := res.Problem(t)
			if c.field != "" {
				require.Equal(t, c.field, p.Errors[0].Field)
			}
		})
	}
}

// TestVerifyPages: with a small budget a verification answers a page at a
// time with next_cursor, and the pages together name every chain once;
// a tenant's cursor works only for its own log.
func TestVerifyPages(t *testing.T) {
	a := uuid.New()
	var recs []audit.Record
	for i := range 3 {
		recs = append(recs, audit.Record{TenantID: a, EventID: fmt.Sprintf("p-%d", i), EventSource: "/s", EventType: "t.x"})
	}
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		_, err := audit.AppendTx(t.Context(), tx, recs)
		return err
	}))
	srv := httpapitest.New(t, audithttp.New(testDB.Pool, audithttp.Config{VerifyBudget: time.Nanosecond}))
	seen := map[uuid.UUID]int{}
	path := "/admin/v1/audit/verify?settle=0s"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000)
		res := srv.Do(t, "GET", path, nil, httpapitest.AsAdmin())
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		var v audithttp.VerifyResponse
		res.JSON(t, &v)
		require.True(t, v.OK, string(res.Body))
		for _, c := range v.Chains {
			seen[c.TenantID]++
		}
		if v.NextCursor == nil {
			break
		}
		path = "/admin/v1/audit/verify?settle=0s&cursor=" + url.QueryEscape(*v.NextCursor)
	}
	require.Equal(t, 1, seen[a])
	for id, n := range seen {
		require.Equal(t, 1, n, "tenant %s answered twice", id)
	}

	res := srv.Do(t, "GET", "/v1/audit/verify", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var v audithttp.VerifyResponse
	res.JSON(t, &v)
	require.NotNil(t, v.NextCursor, "one step per request")
	res = srv.Do(t, "GET", "/v1/audit/verify?cursor="+url.QueryEscape(*v.NextCursor), nil, httpapitest.AsTenant(uuid.New()))
	require.Equal(t, http.StatusBadRequest, res.Status, "another tenant's cursor")
}
