package dlqhttp_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/dlq/dlqhttp"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

func deadLetter(t *testing.T, tenant uuid.UUID, consumer, id string) int64 {
	t.Helper()
	ev := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/s","type":"t.x","tenantid":%q,"data":{}}`, id, tenant)
	n, err := dlq.DeadLetter(t.Context(), testDB.Pool, dlq.Failure{Consumer: consumer, MsgID: subjects.MsgID(tenant, "/s", id),
		Subject: subjects.Event(tenant, 0, "t.x"), Stream: "PROST_EVENTS", StreamSeq: 1, Deliveries: 3, Err: "boom", Event: []byte(ev)}, dlq.ReasonMaxDeliveries)
	require.NoError(t, err)
	return n
}

func TestRoutes(t *testing.T) {
	js := prosttest.Bus(t)

	consumer := "c-" + uuid.NewString()[:8]
	a, b := uuid.New(), uuid.New()
	idA := deadLetter(t, a, consumer, "a-1")
	deadLetter(t, a, consumer, "a-2")
	idB := deadLetter(t, b, consumer, "b-1")
	srv := httpapitest.New(t, dlqhttp.New(testDB.Pool, dlq.NewManager(testDB.Pool, js)))
	admin := httpapitest.AsAdmin()

	// A tenant sees its own dead letters only, whatever app_id it names.
	res := srv.Do(t, "GET", "/v1/dlq?consumer="+consumer+"&app_id="+b.String(), nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status)
	var page dlqhttp.Page
	res.JSON(t, &page)
	require.Len(t, page.Items, 2)
	for _, e := range page.Items {
		require.Equal(t, a, *e.TenantID)
	}
	// The admin sees both tenants', pages through them, and reads one.
	res = srv.Do(t, "GET", "/admin/v1/dlq?limit=2&consumer="+consumer, nil, admin)
	require.Equal(t, http.StatusOK, res.Status)
	res.JSON(t, &page)
	require.Len(t, page.Items, 2)
	require.NotNil(t, page.NextCursor)
	res = srv.Do(t, "GET", "/admin/v1/dlq?limit=2&consumer="+consumer+"&cursor="+*page.NextCursor, nil, admin)
	res.JSON(t, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, idB, page.Items[0].ID)
	res = srv.Do(t, "GET", fmt.Sprintf("/admin/v1/dlq/%d", idA), nil, admin)
	require.Equal(t, http.StatusOK, res.Status)
	var e dlq.Entry
	res.JSON(t, &e)
	require.Equal(t, "a-1", e.EventID)
	require.Equal(t, "boom", e.LastError)

	for _, c := range []struct {
		name, method, path string
		body               any
		opt                httpapitest.Option
		status             int
		field              string
	}{
		{"no admin token", "GET", "/admin/v1/dlq", nil, httpapitest.AsTenant(a), 401, ""},
		{"no credentials", "GET", "/v1/dlq", nil, httpapitest.Header("X", "y"), 401, ""},
		{"bad state", "GET", "/admin/v1/dlq?state=lost", nil, admin, 400, "state"},
		{"bad since", "GET", "/admin/v1/dlq?since=yesterday", nil, admin, 400, "since"},
		{"bad app_id", "GET", "/admin/v1/dlq?app_id=x", nil, admin, 400, "app_id"},
		{"bad cursor", "GET", "/admin/v1/dlq?cursor=x", nil, admin, 400, "cursor"},
		{"bad id", "GET", "/admin/v1/dlq/x", nil, admin, 400, "id"},
		{"unknown id", "GET", "/admin/v1/dlq/99999999", nil, admin, 404, ""},
		{"empty selector", "POST", "/admin/v1/dlq/replay", map[string]any{}, admin, 422, "ids"},
		{"two selectors", "POST", "/admin/v1/dlq/purge", map[string]any{"ids": []int64{1}, "all": true}, admin, 422, "ids"},
		{"bad since in selector", "POST", "/admin/v1/dlq/replay", map[string]any{"consumer": consumer, "since": "x"}, admin, 422, "since"},
		{"malformed body", "POST", "/admin/v1/dlq/replay", `{"ids":`, admin, 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, c.method, c.path, c.body, c.opt)
			require.Equal(t, c.status, res.Status, string(res.Body))
			p := res.Problem(t)
			if c.field != "" {
				require.Equal(t, c.field, p.Errors[0].Field)
			}
		})
	}

	// Dry run changes nothing; replay then marks the entry replayed; purge
	// by consumer takes the rest.
	res = srv.Do(t, "POST", "/admin/v1/dlq/replay", map[string]any{"ids": []int64{idA}, "dry_run": true}, admin)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var out dlq.Result
	res.JSON(t, &out)
	require.True(t, out.DryRun)
	require.Equal(t, 1, out.Count)
	got, err := dlq.Get(t.Context(), testDB.Pool, idA)
	require.NoError(t, err)
	require.Equal(t, dlq.StateDead, got.State)

	res = srv.Do(t, "POST", "/admin/v1/dlq/replay", map[string]any{"ids": []int64{idA}}, admin, httpapitest.Header("X-Prost-Actor", "ops@host"))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	res.JSON(t, &out)
	require.Equal(t, []int64{idA}, out.IDs)
	got, err = dlq.Get(t.Context(), testDB.Pool, idA)
	require.NoError(t, err)
	require.Equal(t, dlq.StateReplayed, got.State)
	require.Equal(t, "ops@host", got.ReplayedBy)

	// Issue 12 case 4: an id that does not exist, one already replayed and
	// an unknown consumer were answered 200 with "0 entries"; each is now
	// refused, naming every id, and nothing is done.
	for _, c := range []struct {
		name, path string
		body       map[string]any
		status     int
		errors     map[string]string // pointer -> detail
	}{
		{"replay of no such entry", "/admin/v1/dlq/replay", map[string]any{"ids": []int64{99999999}}, 404,
			map[string]string{"/ids/0": "entry 99999999 does not exist"}},
		{"replay of a replayed entry", "/admin/v1/dlq/replay", map[string]any{"ids": []int64{idA}}, 409,
			map[string]string{"/ids/0": fmt.Sprintf("entry %d is replayed, not dead", idA)}},
		{"purge of no such entry", "/admin/v1/dlq/purge", map[string]any{"ids": []int64{99999998}}, 404,
			map[string]string{"/ids/0": "entry 99999998 does not exist"}},
		{"purge naming one good and two bad", "/admin/v1/dlq/purge", map[string]any{"ids": []int64{idB, 99999997, idA}}, 409,
			map[string]string{"/ids/1": "entry 99999997 does not exist", "/ids/2": fmt.Sprintf("entry %d is replayed, not dead", idA)}},
		{"replay of an unknown consumer", "/admin/v1/dlq/replay", map[string]any{"consumer": "nope"}, 422, nil},
		{"purge of an unknown consumer", "/admin/v1/dlq/purge", map[string]any{"consumer": "nope", "dry_run": true}, 422, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, "POST", c.path, c.body, admin)
			require.Equal(t, c.status, res.Status, string(res.Body))
			p := res.Problem(t)
			if c.errors == nil {
				require.Equal(t, "consumer", p.Errors[0].Field)
				require.Contains(t, p.Detail, `"nope"`)
				return
			}
			got := map[string]string{}
			for _, e := range p.Errors {
				require.Equal(t, "ids", e.Field)
				got[e.Pointer] = e.Detail
				require.Contains(t, p.Detail, e.Detail, "the detail names every id")
			}
			require.Equal(t, c.errors, got)
		})
	}
	got, err = dlq.Get(t.Context(), testDB.Pool, idB)
	require.NoError(t, err)
	require.Equal(t, dlq.StateDead, got.State, "a refused request does nothing, the good ids included")

	// An operator's list of a consumer no one knows is refused, not answered
	// as an empty queue; a tenant's list is not checked (whether a consumer
	// has entries is other tenants' business).
	res = srv.Do(t, "GET", "/admin/v1/dlq?consumer=nope", nil, admin)
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, string(res.Body))
	require.Equal(t, "consumer", res.Problem(t).Errors[0].Field)
	res = srv.Do(t, "GET", "/v1/dlq?consumer=nope", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))

	res = srv.Do(t, "POST", "/admin/v1/dlq/purge", map[string]any{"consumer": consumer}, admin)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	res.JSON(t, &out)
	require.Equal(t, 2, out.Count)
	res = srv.Do(t, "GET", "/admin/v1/dlq?consumer="+consumer, nil, admin)
	res.JSON(t, &page)
	require.Empty(t, page.Items, "nothing left dead")
}

// TestTenantRoutes: a tenant reads and replays its own dead letters, never
// another tenant's, whatever ids it names.
func TestTenantRoutes(t *testing.T) {
	js := prosttest.Bus(t)

	consumer := "c-" + uuid.NewString()[:8]
	a, b := uuid.New(), uuid.New()
	idA := deadLetter(t, a, consumer, "a-1")
	idB := deadLetter(t, b, consumer, "b-1")
	srv := httpapitest.New(t, dlqhttp.New(testDB.Pool, dlq.NewManager(testDB.Pool, js)))
	asA := httpapitest.AsTenant(a)

	res := srv.Do(t, "GET", fmt.Sprintf("/v1/dlq/%d", idA), nil, asA)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var e dlq.Entry
	res.JSON(t, &e)
	require.Equal(t, "a-1", e.EventID)
	require.JSONEq(t, fmt.Sprintf(`{"specversion":"1.0","id":"a-1","source":"/s","type":"t.x","tenantid":%q,"data":{}}`, a), string(e.Event))

	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"another tenant's entry", "GET", fmt.Sprintf("/v1/dlq/%d", idB), nil, 404, ""},
		{"unknown entry", "GET", "/v1/dlq/99999999", nil, 404, ""},
		{"bad id", "GET", "/v1/dlq/x", nil, 400, "id"},
		{"app_id in a tenant's selector", "POST", "/v1/dlq/replay", map[string]any{"consumer": consumer, "app_id": b.String()}, 422, "app_id"},
		{"empty selector", "POST", "/v1/dlq/replay", map[string]any{}, 422, "ids"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, c.method, c.path, c.body, asA)
			require.Equal(t, c.status, res.Status, string(res.Body))
			p := res.Problem(t)
			if c.field != "" {
				require.Equal(t, c.field, p.Errors[0].Field)
			}
		})
	}

	// Naming B's entry is naming an entry that does not exist; a dry run
	// of all counts A's only.
	var out dlq.Result
	res = srv.Do(t, "POST", "/v1/dlq/replay", map[string]any{"ids": []int64{idB}}, asA)
	require.Equal(t, http.StatusNotFound, res.Status, string(res.Body))
	p := res.Problem(t)
	require.Equal(t, fmt.Sprintf("entry %d does not exist", idB), p.Errors[0].Detail)
	res = srv.Do(t, "POST", "/v1/dlq/replay", map[string]any{"all": true, "dry_run": true}, asA)
	res.JSON(t, &out)
	require.Equal(t, dlq.Result{DryRun: true, IDs: []int64{idA}, Count: 1}, out)
	got, err := dlq.Get(t.Context(), testDB.Pool, idB)
	require.NoError(t, err)
	require.Equal(t, dlq.StateDead, got.State)

	// The replay itself, recorded as the App's.
	res = srv.Do(t, "POST", "/v1/dlq/replay", map[string]any{"ids": []int64{idA}}, asA)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	got, err = dlq.Get(t.Context(), testDB.Pool, idA)
	require.NoError(t, err)
	require.Equal(t, dlq.StateReplayed, got.State)
	require.Equal(t, "app:"+a.String(), got.ReplayedBy)
}
