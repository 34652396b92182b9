package appshttp_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/domain/apps/appshttp"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

func TestRoutes(t *testing.T) {
	srv := httpapitest.New(t, appshttp.New(apps.NewStore(testDB.Pool, apps.Config{})))
	admin := httpapitest.AsAdmin()

	// Authentication first.
	res := srv.Do(t, "GET", "/admin/v1/apps", nil)
	require.Equal(t, http.StatusUnauthorized, res.Status)
	require.Equal(t, 401, res.Problem(t).Status)

	// Create, and the credentials are shown once with no-store.
	res = srv.Do(t, "POST", "/admin/v1/apps", map[string]string{"name": "shop"}, admin)
	require.Equal(t, http.StatusCreated, res.Status, string(res.Body))
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	var created appshttp.CreateResponse
	res.JSON(t, &created)
	require.Equal(t, "shop", created.App.Name)
	require.NotEmpty(t, created.APISecret)
	id := created.App.ID.String()

	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"empty name", "POST", "/admin/v1/apps", map[string]string{"name": ""}, 422, "name"},
		{"malformed json", "POST", "/admin/v1/apps", `{"name":`, 400, ""},
		{"unknown member", "POST", "/admin/v1/apps", `{"name":"x","tenant":"y"}`, 400, ""},
		{"two values", "POST", "/admin/v1/apps", `{"name":"x"}{}`, 400, ""},
		{"bad limit", "GET", "/admin/v1/apps?limit=0", nil, 400, "limit"},
		{"bad cursor", "GET", "/admin/v1/apps?cursor=nope", nil, 400, "cursor"},
		{"bad id", "GET", "/admin/v1/apps/not-a-uuid", nil, 400, "id"},
		{"unknown id", "GET", "/admin/v1/apps/0190b2a8-0000-7000-8000-000000000000", nil, 404, ""},
		{"rotate unknown", "POST", "/admin/v1/apps/0190b2a8-0000-7000-8000-000000000000/rotate-secret", nil, 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, c.method, c.path, c.body, admin)
			require.Equal(t, c.status, res.Status, string(res.Body))
			p := res.Problem(t)
			require.Equal(t, c.status, p.Status)
			require.NotEmpty(t, p.Detail)
			if c.field != "" {
				require.Equal(t, c.field, p.Errors[0].Field)
			}
		})
	}

	res = srv.Do(t, "POST", "/admin/v1/apps", `{"name":"x"}`, admin, httpapitest.Header("Content-Type", "text/plain"))
	require.Equal(t, http.StatusUnsupportedMediaType, res.Status)

	// Get, rotate, disable, enable.
	res = srv.Do(t, "GET", "/admin/v1/apps/"+id, nil, admin)
	require.Equal(t, http.StatusOK, res.Status)
	var got apps.App
	res.JSON(t, &got)
	require.Equal(t, created.App.APIKey, got.APIKey)

	res = srv.Do(t, "POST", "/admin/v1/apps/"+id+"/rotate-secret", nil, admin)
	require.Equal(t, http.StatusOK, res.Status)
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	var creds apps.Credentials
	res.JSON(t, &creds)
	require.NotEqual(t, created.APISecret, creds.APISecret)

	for _, st := range []string{apps.StatusDisabled, apps.StatusActive} {
		verb := map[string]string{apps.StatusDisabled: "disable", apps.StatusActive: "enable"}[st]
		res = srv.Do(t, "POST", "/admin/v1/apps/"+id+"/"+verb, nil, admin)
		require.Equal(t, http.StatusOK, res.Status)
		res.JSON(t, &got)
		require.Equal(t, st, got.Status)
	}

	// Paging: one App per page, following next_cursor to the end.
	res = srv.Do(t, "POST", "/admin/v1/apps", map[string]string{"name": "second"}, admin)
	require.Equal(t, http.StatusCreated, res.Status)
	seen := map[string]bool{}
	path := "/admin/v1/apps?limit=1"
	for range 10 {
		res = srv.Do(t, "GET", path, nil, admin)
		require.Equal(t, http.StatusOK, res.Status)
		var page appshttp.Page
		res.JSON(t, &page)
		for _, a := range page.Items {
			require.False(t, seen[a.ID.String()], "an App on two pages")
			seen[a.ID.String()] = true
		}
		if page.NextCursor == nil {
			break
		}
		path = "/admin/v1/apps?limit=1&cursor=" + *page.NextCursor
	}
	require.GreaterOrEqual(t, len(seen), 2)
}
