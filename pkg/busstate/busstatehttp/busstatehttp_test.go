package busstatehttp_test

import (
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/busstate/busstatehttp"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/streams"
)

// The bus's tables are read as a whole: each test has a database of its own.
func TestMain(m *testing.M) { prosttest.Main(m, nil) }

func TestRoutes(t *testing.T) {
	db := prosttest.NewDatabase(t)
	js := prosttest.Bus(t)
	cfgs, err := streams.Load(filepath.Join(prosttest.RepoRoot(t), "nats", "streams"))
	require.NoError(t, err)
	bus := busstate.New(db.Pool, js, busstate.Config{Streams: cfgs, Mode: busstate.ModeManual, Partitions: 4})
	srv := httpapitest.New(t, busstatehttp.New(bus))
	admin := httpapitest.AsAdmin()

	// Operators only: a tenant and an anonymous caller are refused.
	for _, opts := range [][]httpapitest.Option{nil, {httpapitest.AsTenant(uuid.New())}} {
		for _, r := range []struct{ method, path string }{
			{"GET", "/admin/v1/streams"}, {"POST", "/admin/v1/streams/rebuild"}, {"GET", "/admin/v1/streams/rebuilds/1"},
		} {
			res := srv.Do(t, r.method, r.path, nil, opts...)
			require.Equal(t, http.StatusUnauthorized, res.Status, "%s %s", r.method, r.path)
			res.Problem(t)
		}
	}

	// The status names every declared stream.
	res := srv.Do(t, "GET", "/admin/v1/streams", nil, admin)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var st busstate.Status
	res.JSON(t, &st)
	require.Equal(t, busstate.ModeManual, st.Mode)
	names := map[string]bool{}
	for _, s := range st.Streams {
		names[s.Name] = s.Exists
	}
	require.True(t, names[busstate.EventsStream], "status: %s", res.Body)
	require.Empty(t, st.Rebuilds)

	// A rebuild asked for is accepted, recorded with who asked, and read back.
	res = srv.Do(t, "POST", "/admin/v1/streams/rebuild", `{"since":"2026-01-02T15:04:05Z"}`, admin, httpapitest.Header("X-Prost-Actor", "oncall@example.com"))
	require.Equal(t, http.StatusAccepted, res.Status, string(res.Body))
	var rb busstate.Rebuild
	res.JSON(t, &rb)
	require.Equal(t, busstate.CauseRequest, rb.Cause)
	require.Equal(t, "oncall@example.com", rb.RequestedBy)
	require.Equal(t, time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), rb.Since.UTC())
	require.Equal(t, "waiting", rb.State, "no relay leads here to run it")
	res = srv.Do(t, "GET", "/admin/v1/streams/rebuilds/"+strconv.FormatInt(rb.ID, 10), nil, admin)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var got busstate.Rebuild
	res.JSON(t, &got)
	require.Equal(t, rb.ID, got.ID)
	require.Equal(t, "oncall@example.com", got.RequestedBy)
	res = srv.Do(t, "GET", "/admin/v1/streams", nil, admin)
	res.JSON(t, &st)
	require.Len(t, st.Rebuilds, 1)
	require.Equal(t, rb.ID, st.Rebuilds[0].ID)

	// An empty body asks for everything the stream keeps.
	res = srv.Do(t, "POST", "/admin/v1/streams/rebuild", nil, admin)
	require.Equal(t, http.StatusAccepted, res.Status, string(res.Body))

	// Bad input names what is wrong.
	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"since not a time", "POST", "/admin/v1/streams/rebuild", `{"since":"yesterday"}`, 422, "since"},
		{"since in the future", "POST", "/admin/v1/streams/rebuild", map[string]string{"since": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, 422, ""},
		{"malformed JSON", "POST", "/admin/v1/streams/rebuild", `{"since":`, 400, ""},
		{"unknown member", "POST", "/admin/v1/streams/rebuild", `{"from":"2026-01-02T15:04:05Z"}`, 400, ""},
		{"no such rebuild", "GET", "/admin/v1/streams/rebuilds/999999", nil, 404, ""},
		{"id not a number", "GET", "/admin/v1/streams/rebuilds/abc", nil, 400, "id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, c.method, c.path, c.body, admin)
			require.Equal(t, c.status, res.Status, string(res.Body))
			p := res.Problem(t)
			if c.field != "" {
				require.NotEmpty(t, p.Errors, string(res.Body))
				require.Equal(t, c.field, p.Errors[0].Field)
			}
		})
	}
	res = srv.Do(t, "GET", "/admin/v1/streams", nil, admin)
	res.JSON(t, &st)
	require.Len(t, st.Rebuilds, 2, "nothing refused was recorded")
}
