package eventshttp_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

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
	srv := httpapitest.New(t, eventshttp.New(testDB.Pool))
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
		if p.NextCursor == nil {
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

	// One event by source and id: the caller's, never another tenant's.
	res = srv.Do(t, "GET", "/v1/events/lookup?source=/warehouse&id=e-1", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var one struct {
		Event struct {
			ID, Source, Type string
		} `json:"event"`
		RecordedAt time.Time `json:"recorded_at"`
		Published  bool      `json:"published"`
	}
	res.JSON(t, &one)
	require.Equal(t, "e-1", one.Event.ID)
	require.Equal(t, "order.shipped", one.Event.Type)
	require.False(t, one.Published, "no relay ran: the event waits in the outbox")
	require.WithinDuration(t, time.Now(), one.RecordedAt, time.Minute)
	_, err := testDB.Pool.Exec(t.Context(), `UPDATE outbox SET published_at = now() WHERE published_at IS NULL`)
	require.NoError(t, err)
	res = srv.Do(t, "GET", "/v1/events/lookup?source=/warehouse&id=e-1", nil, httpapitest.AsTenant(a))
	res.JSON(t, &one)
	require.True(t, one.Published)

	other := uuid.New()
	for _, c := range []struct {
		name, path string
		as         uuid.UUID
		status     int
		field      string
	}{
		{"another tenant's event", "/v1/events/lookup?source=/warehouse&id=e-1", other, 404, ""},
		{"wrong source", "/v1/events/lookup?source=/shop&id=e-1", a, 404, ""},
		{"no source", "/v1/events/lookup?id=e-1", a, 400, "source"},
		{"no id", "/v1/events/lookup?source=/shop", a, 400, "id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := srv.Do(t, "GET", c.path, nil, httpapitest.AsTenant(c.as))
			require.Equal(t, c.status, res.Status, string(res.Body))
			if c.field != "" {
				require.Equal(t, c.field, res.Problem(t).Errors[0].Field)
			}
		})
	}
}
