package eventshttp_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/eventstore/eventshttp"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

type page struct {
	Items []struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		Source string `json:"source"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

func TestRoutes(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	var news []eventstore.NewEvent
	for i := range 4 {
		typ, src := "order.placed", "/shop"
		if i%2 == 1 {
			typ, src = "order.shipped", "/warehouse"
		}
		for _, tenant := range []uuid.UUID{a, b} {
			id := fmt.Sprintf("e-%d", i)
			news = append(news, eventstore.NewEvent{TenantID: tenant, Source: src, ID: id, Type: typ, Time: time.Now(),
				Envelope:      []byte(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":%q}`, id, src, typ)),
				OutboxSubject: subjects.Event(tenant, 0, typ)})
		}
	}
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(t.Context(), tx, news)
		return err
	}))
	srv := httpapitest.New(t, eventshttp.New(testDB.Pool, nil))
	get := func(path string) page {
		t.Helper()
		res := srv.Do(t, "GET", path, nil, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		var p page
		res.JSON(t, &p)
		return p
	}

	// Paging in order, the caller's events only.
	var ids []string
	path := "/v1/events?limit=3"
	for range 5 {
		p := get(path)
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		require.NotNil(t, p.NextCursor, "every page has a cursor")
		if !p.HasMore {
			break
		}
		path = "/v1/events?limit=3&cursor=" + *p.NextCursor
	}
	require.Equal(t, []string{"e-0", "e-1", "e-2", "e-3"}, ids)
	// Filters.
	require.Len(t, get("/v1/events?type=order.shipped").Items, 2)
	require.Len(t, get("/v1/events?source=/shop").Items, 2)
	require.Len(t, get("/v1/events?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)).Items, 0)

	for _, c := range []struct {
		name, path string
		status     int
		field      string
	}{
		{"bad limit", "/v1/events?limit=x", 400, "limit"},
		{"bad since", "/v1/events?since=monday", 400, "since"},
		{"bad cursor", "/v1/events?cursor=%21", 400, "cursor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, "GET", c.path, nil, httpapitest.AsTenant(a))
			require.Equal(t, c.status, res.Status, string(res.Body))
			require.Equal(t, c.field, res.Problem(t).Errors[0].Field)
		})
	}
	res := srv.Do(t, "GET", "/v1/events", nil)
	require.Equal(t, http.StatusUnauthorized, res.Status)
}

// TestRevealed: classified values are served in clear to their tenant while
// the subject's key exists, and as {"erased":true} after.
func TestRevealed(t *testing.T) {
	ctx := context.Background()
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(t, err)
	kr, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek})
	require.NoError(t, err)
	pol, err := dataprotect.NewPolicy("/user_id", []dataprotect.Field{{Pointer: "/email", Class: "personal", Purpose: "p", Retention: dataprotect.Forever}})
	require.NoError(t, err)
	tenant := uuid.New()
	data, err := kr.Protect(ctx, tenant, []byte(`{"user_id":"u-1","email":"jane@example.com"}`), pol)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(ctx, tx, []eventstore.NewEvent{{TenantID: tenant, Source: "/s", ID: "e-1", Type: "user.signup",
			Envelope:      []byte(`{"specversion":"1.0","id":"e-1","source":"/s","type":"user.signup","data":` + string(data) + `}`),
			OutboxSubject: subjects.Event(tenant, 0, "user.signup")}})
		return err
	}))
	srv := httpapitest.New(t, eventshttp.New(testDB.Pool, kr))
	read := func() string {
		res := srv.Do(t, "GET", "/v1/events", nil, httpapitest.AsTenant(tenant))
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		return string(res.Body)
	}
	require.Contains(t, read(), `"data":{"user_id":"u-1","email":"jane@example.com"}`)
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		d, err := kr.EraseSubjectTx(ctx, tx, tenant, "u-1", uuid.New())
		kr.Forget(ctx, d)
		return err
	}))
	require.Contains(t, read(), `"data":{"user_id":"u-1","email":{"erased":true}}`)
}

// TestPollerResumes: a poller that reached the end keeps its cursor, more
// events are stored, and it reads exactly the new ones with it.
func TestPollerResumes(t *testing.T) {
	tenant := uuid.New()
	srv := httpapitest.New(t, eventshttp.New(testDB.Pool, nil))
	store := func(ids ...string) {
		var news []eventstore.NewEvent
		for _, id := range ids {
			news = append(news, eventstore.NewEvent{TenantID: tenant, Source: "/poll", ID: id, Type: "t",
				Envelope: []byte(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/poll","type":"t"}`, id)), OutboxSubject: subjects.Event(tenant, 0, "t")})
		}
		require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
			_, err := eventstore.AppendTx(t.Context(), tx, news)
			return err
		}))
	}
	poll := func(cursor string) ([]string, string) {
		t.Helper()
		var got []string
		path := "/v1/events?limit=2"
		for range 10 {
			if cursor != "" {
				path = "/v1/events?limit=2&cursor=" + cursor
			}
			res := srv.Do(t, "GET", path, nil, httpapitest.AsTenant(tenant))
			require.Equal(t, http.StatusOK, res.Status, string(res.Body))
			var p page
			res.JSON(t, &p)
			require.NotNil(t, p.NextCursor, "the last page has a cursor too")
			for _, it := range p.Items {
				got = append(got, it.ID)
			}
			cursor = *p.NextCursor
			if !p.HasMore {
				return got, cursor
			}
		}
		t.Fatal("too many pages")
		return nil, ""
	}
	got, cur := poll("")
	require.Empty(t, got)
	store("a", "b", "c")
	got, cur = poll(cur)
	require.Equal(t, []string{"a", "b", "c"}, got)
	got, cur = poll(cur)
	require.Empty(t, got, "nothing new")
	store("d", "e")
	got, _ = poll(cur)
	require.Equal(t, []string{"d", "e"}, got, "exactly the new ones")
}
