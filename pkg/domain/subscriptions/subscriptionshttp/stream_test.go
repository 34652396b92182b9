package subscriptionshttp_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

// sseEvent is one event read from the stream.
type sseEvent struct {
	id, data string
}

// sseClient reads one stream connection.
type sseClient struct {
	resp   *http.Response
	events chan sseEvent
	beats  chan struct{}
}

func openStream(t *testing.T, b *bundle, tenant uuid.UUID, query, lastID string) *sseClient {
	t.Helper()
	req, err := http.NewRequest("GET", b.srv.URL+"/v1/events/stream"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(httpapitest.TenantHeader, tenant.String())
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &sseClient{resp: resp, events: make(chan sseEvent, 1000), beats: make(chan struct{}, 100)}
	ready := make(chan struct{})
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "retry:"):
				close(ready)
			case line == ": heartbeat":
				select {
				case c.beats <- struct{}{}:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			case line == "" && ev.id != "":
				c.events <- ev
				ev = sseEvent{}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not start")
	}
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() { _ = c.resp.Body.Close() }

func (c *sseClient) read(t *testing.T, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	for len(out) < n {
		select {
		case ev, ok := <-c.events:
			require.True(t, ok, "the stream ended after %d of %d events", len(out), n)
			out = append(out, ev)
		case <-time.After(15 * time.Second):
			t.Fatalf("read %d of %d events", len(out), n)
		}
	}
	return out
}

func storeEvents(t *testing.T, b *bundle, tenant uuid.UUID, source string, ids ...string) {
	t.Helper()
	var news []eventstore.NewEvent
	for _, id := range ids {
		ev := cloudevent.Event{SpecVersion: "1.0", ID: id, Source: source, Type: "order.placed"}
		ev.SetExtension("tenantid", tenant.String())
		news = append(news, eventstore.NewEvent{TenantID: tenant, Source: source, ID: id, Type: ev.Type, Envelope: ev.AppendJSON(nil),
			OutboxSubject: subjects.Event(tenant, len(id)%4, ev.Type)})
	}
	require.NoError(t, pgx.BeginFunc(t.Context(), b.db.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(t.Context(), tx, news)
		return err
	}))
}

func eventID(t *testing.T, data string) string {
	t.Helper()
	ev, err := cloudevent.ParseStructured([]byte(data))
	require.NoError(t, err)
	return ev.ID
}

func runRelay(t *testing.T, b *bundle) {
	t.Helper()
	rel := outbox.New(b.db.Pool, b.js, outbox.Config{PollInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rel.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
}

// TestStreamResumes: a client disconnected mid-stream reconnects with
// Last-Event-ID; across both connections it sees the tenant's stored events,
// in order, none twice, and no other tenant's.
func TestStreamResumes(t *testing.T) {
	b := setup(t, true)
	runRelay(t, b)
	tenant, other := uuid.New(), uuid.New()

	first := openStream(t, b, tenant, "", "")
	var ids []string
	for i := range 10 {
		ids = append(ids, fmt.Sprintf("e%02d", i))
	}
	storeEvents(t, b, tenant, "/shop", ids[:5]...)
	storeEvents(t, b, other, "/shop", "theirs-1", "theirs-2")
	storeEvents(t, b, tenant, "/shop", ids[5:]...)
	seen := first.read(t, 6)
	first.close()
	lastID := seen[len(seen)-1].id

	var more []string
	for i := 10; i < 20; i++ {
		more = append(more, fmt.Sprintf("e%02d", i))
	}
	storeEvents(t, b, tenant, "/shop", more...) // while disconnected
	second := openStream(t, b, tenant, "", lastID)
	seen = append(seen, second.read(t, 14)...)
	storeEvents(t, b, tenant, "/shop", "e20")
	seen = append(seen, second.read(t, 1)...)

	var stored []string
	rows, err := b.db.Pool.Query(t.Context(), `SELECT id FROM events WHERE tenant_id = $1 ORDER BY seq`, tenant)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		stored = append(stored, id)
	}
	require.NoError(t, rows.Err())
	var got []string
	var prev uint64
	for _, ev := range seen {
		got = append(got, eventID(t, ev.data))
		var n uint64
		_, err := fmt.Sscan(ev.id, &n)
		require.NoError(t, err)
		require.Greater(t, n, prev, "ids increase")
		prev = n
	}
	require.Len(t, stored, 21)
	require.Equal(t, stored, got, "every stored event, in order, none twice")
	select {
	case ev := <-second.events:
		t.Fatalf("an event too many: %v", ev)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestStreamSelectsAndBeats(t *testing.T) {
	b := setup(t, true)
	runRelay(t, b)
	tenant := uuid.New()
	c := openStream(t, b, tenant, `?types=order.placed&filter=`+`{"prefix":{"source":"/b"}}`, "")
	storeEvents(t, b, tenant, "/a", "a1")
	storeEvents(t, b, tenant, "/b", "b1")
	storeEvents(t, b, tenant, "/bb", "b2")
	got := c.read(t, 2)
	require.Equal(t, "b1", eventID(t, got[0].data))
	require.Equal(t, "b2", eventID(t, got[1].data))
	select {
	case <-c.beats:
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat on an idle stream")
	}
}

func TestStreamRefusals(t *testing.T) {
	b := setup(t, true)
	tenant := uuid.New()
	sse := httpapitest.Header("Accept", "text/event-stream")
	for _, c := range []struct {
		name, path string
		opts       []httpapitest.Option
		status     int
		field, has string
	}{
		{"no Accept", "/v1/events/stream", nil, http.StatusNotAcceptable, "", "text/event-stream"},
		{"unsupported dialect", `/v1/events/stream?filter={"glob":{"type":"*"}}`, []httpapitest.Option{sse}, 422, "filter", `unsupported filter dialect "glob"`},
		{"filter not JSON", `/v1/events/stream?filter=type=x`, []httpapitest.Option{sse}, 400, "filter", ""},
		{"bad Last-Event-ID", `/v1/events/stream`, []httpapitest.Option{sse, httpapitest.Header("Last-Event-ID", "x")}, 400, "Last-Event-ID", ""},
		{"Last-Event-ID from the future", `/v1/events/stream`, []httpapitest.Option{sse, httpapitest.Header("Last-Event-ID", "99")}, 400, "Last-Event-ID", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := append([]httpapitest.Option{httpapitest.AsTenant(tenant)}, c.opts...)
			res := b.srv.Do(t, "GET", c.path, nil, opts...)
			require.Equal(t, c.status, res.Status, string(res.Body))
			p := res.Problem(t)
			if c.field != "" {
				require.Equal(t, c.field, p.Errors[0].Field)
				require.Contains(t, p.Errors[0].Detail, c.has)
			} else {
				require.Contains(t, p.Detail, c.has)
			}
		})
	}

	// A resume point older than what the stream keeps is a clear end: 410.
	for i := range 3 {
		_, err := b.js.Publish(t.Context(), subjects.Event(tenant, 0, "t"), []byte(fmt.Sprintf(`{"n":%d}`, i)))
		require.NoError(t, err)
	}
	st, err := b.js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	require.NoError(t, st.Purge(t.Context()))
	res := b.srv.Do(t, "GET", "/v1/events/stream", nil, httpapitest.AsTenant(tenant), sse, httpapitest.Header("Last-Event-ID", "1"))
	require.Equal(t, http.StatusGone, res.Status, string(res.Body))
	require.Contains(t, res.Problem(t).Detail, "older than what the stream keeps")
	// The latest id is still a valid resume point.
	c := openStream(t, b, tenant, "", "3")
	c.close()
}

// TestStreamLeavesNoConsumer reproduces a finding of the HTTP fuzzer
// (cmd/prost FuzzEventsRead): every stream left its server-side consumer
// behind for five minutes after the client went away, so streams opened
// and closed in a loop filled the stream's consumer cap (1,000 by default,
// shared by every tenant and PROST's own consumers) and every new stream
// was answered 503. A stream now deletes its consumer when it ends.
func TestStreamLeavesNoConsumer(t *testing.T) {
	b := setup(t, true)
	tenant := uuid.New()
	for range 20 {
		openStream(t, b, tenant, "", "").close()
	}
	st, err := b.js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := st.Info(t.Context())
		return err == nil && info.State.Consumers == 0
	}, 30*time.Second, 20*time.Millisecond, "every closed stream's consumer is deleted")
}
