package jobshttp_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/jobs/jobshttp"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

func TestRoutes(t *testing.T) {
	c, err := jobs.NewClient(testDB.Pool, jobs.Config{})
	require.NoError(t, err)
	for range 3 {
		_, _, err := c.Insert(t.Context(), jobs.InsertParams{Kind: "test.kind"})
		require.NoError(t, err)
	}
	srv := httpapitest.New(t, jobshttp.New(c))

	var seen []int64
	path := "/admin/v1/jobs?kind=test.kind&limit=2"
	for range 5 {
		res := srv.Do(t, "GET", path, nil, httpapitest.AsAdmin())
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		var page jobshttp.Page
		res.JSON(t, &page)
		require.Contains(t, string(res.Body), `"max_attempts":`, "snake_case keys, as on every route")
		require.NotContains(t, string(res.Body), `"Kind"`)
		for _, j := range page.Items {
			require.Equal(t, "test.kind", j.Kind)
			seen = append(seen, j.ID)
		}
		if page.NextCursor == nil {
			break
		}
		path = "/admin/v1/jobs?kind=test.kind&limit=2&cursor=" + *page.NextCursor
	}
	require.Len(t, seen, 3)

	res := srv.Do(t, "GET", "/admin/v1/jobs?state=available&kind=none", nil, httpapitest.AsAdmin())
	require.Equal(t, http.StatusOK, res.Status)
	require.JSONEq(t, `{"items":[],"next_cursor":null}`, string(res.Body))

	for _, c := range []struct {
		name, path string
		opt        httpapitest.Option
		status     int
		field      string
	}{
		{"no token", "/admin/v1/jobs", httpapitest.Header("X", "y"), 401, ""},
		{"bad state", "/admin/v1/jobs?state=sleeping", httpapitest.AsAdmin(), 400, "state"},
		{"bad cursor", "/admin/v1/jobs?cursor=12", httpapitest.AsAdmin(), 400, "cursor"},
		{"bad limit", "/admin/v1/jobs?limit=-1", httpapitest.AsAdmin(), 400, "limit"},
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
