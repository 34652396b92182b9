package subscriptionshttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/domain/subscriptions/subscriptionshttp"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/natsembed"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

type bundle struct {
	srv  *httpapitest.Server
	svc  *subscriptions.Service
	bus  *natsembed.Server
	keys *natsauth.KeySet
	js   jetstream.JetStream
	db   *prosttest.Database
	key  *secretbox.Key
}

// setup serves the routes over a private bus (operator mode, PROST_EVENTS
// declared) and a database of the test's own when own is set.
func setup(t *testing.T, own bool) *bundle {
	t.Helper()
	db := testDB
	if own {
		db = prosttest.NewDatabase(t)
	}
	bus, keys := prosttest.SecureNATS(t)
	js, err := jetstream.New(prosttest.Connect(t, bus.URL(), keys.ServiceCreds))
	require.NoError(t, err)
	_, err = js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "PROST_EVENTS", Subjects: []string{subjects.All}, MaxAge: time.Hour})
	require.NoError(t, err)
	acc, err := natsauth.NewAccounts(keys, prosttest.Connect(t, bus.URL(), keys.SysCreds))
	require.NoError(t, err)
	key, _ := secretbox.NewKey()
	svc := subscriptions.New(db.Pool, subscriptions.Config{SecretsKey: &key, JS: js, Keys: keys, Accounts: acc, NATSURL: bus.URL()})
	srv := httpapitest.New(t, subscriptionshttp.New(svc, js, subscriptionshttp.StreamConfig{Heartbeat: 200 * time.Millisecond}))
	return &bundle{srv: srv, svc: svc, bus: bus, keys: keys, js: js, db: db, key: &key}
}

type resource struct {
	ID               string            `json:"id"`
	Protocol         string            `json:"protocol"`
	Sink             string            `json:"sink"`
	Types            []string          `json:"types"`
	Filters          []json.RawMessage `json:"filters"`
	ProtocolSettings map[string]string `json:"protocolsettings"`
	Config           map[string]any    `json:"config"`
	Status           string            `json:"status"`
	DisabledReason   string            `json:"disabled_reason"`
}

func (b *bundle) create(t *testing.T, tenant uuid.UUID, body string) resource {
	t.Helper()
	res := b.srv.Do(t, "POST", "/v1/subscriptions", body, httpapitest.AsTenant(tenant))
	require.Equal(t, http.StatusCreated, res.Status, string(res.Body))
	var r resource
	res.JSON(t, &r)
	return r
}

func TestRoutes(t *testing.T) {
	b := setup(t, false)
	a, other := uuid.New(), uuid.New()

	// Create an HTTP subscription: the server makes the secret and shows
	// it once.
	h := b.create(t, a, `{"protocol":"HTTP","sink":"https://example.com/hook","types":["order.placed","order.placed","order.shipped"],
		"filters":[{"prefix":{"source":"/shop"}}],"config":{"retry_schedule":["1s","10s"]}}`)
	require.Equal(t, "HTTP", h.Protocol)
	require.Equal(t, []string{"order.placed", "order.shipped"}, h.Types)
	require.True(t, strings.HasPrefix(h.ProtocolSettings["secret"], "whsec_"), "%v", h.ProtocolSettings)
	require.Equal(t, "active", h.Status)
	require.Equal(t, []any{"1s", "10s"}, h.Config["retry_schedule"])
	got := b.srv.Do(t, "GET", "/v1/subscriptions/"+h.ID, nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, got.Status)
	require.NotContains(t, string(got.Body), "whsec_", "the secret is write-only")

	// A secret of the App's own is accepted and never shown.
	own := b.create(t, a, `{"protocol":"HTTP","sink":"http://127.0.0.1:9/x","protocolsettings":{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}`)
	require.Empty(t, own.ProtocolSettings["secret"])

	// A NATS subscription: PROST's bus is the sink, the consumer is named.
	n := b.create(t, a, `{"protocol":"NATS","types":["order.placed"]}`)
	require.Equal(t, b.bus.URL(), n.Sink)
	require.Equal(t, "sub_"+n.ID, n.ProtocolSettings["consumer"])
	require.Equal(t, natsauth.APIPrefix, n.ProtocolSettings["api_prefix"])
	ci, err := b.js.Consumer(t.Context(), "PROST_EVENTS", "sub_"+n.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"prost.events." + a.String() + ".*.order.placed"}, ci.CachedInfo().Config.FilterSubjects)

	t.Run("invalid", func(t *testing.T) {
		for _, c := range []struct {
			name, body string
			status     int
			field, has string
		}{
			{"unsupported dialect", `{"protocol":"HTTP","sink":"https://x.example","filters":[{"regex":{"type":"a.*"}}]}`, 422, "filters", `unsupported filter dialect "regex"`},
			{"bad sql", `{"protocol":"HTTP","sink":"https://x.example","filters":[{"sql":"type = "}]}`, 422, "filters", ""},
			{"no protocol", `{"sink":"https://x.example"}`, 422, "protocol", "required"},
			{"unknown protocol", `{"protocol":"MQTT5","sink":"mqtt://x"}`, 422, "protocol", `"MQTT5"`},
			{"no sink", `{"protocol":"HTTP"}`, 422, "sink", "required"},
			{"bad sink", `{"protocol":"HTTP","sink":"ftp://x.example"}`, 422, "sink", "http or https"},
			{"sink with credentials", `{"protocol":"HTTP","sink":"https://u:p@x.example"}`, 422, "sink", "credentials"},
			{"id given", `{"id":"x","protocol":"HTTP","sink":"https://x.example"}`, 422, "id", "assigned by the server"},
			{"bad secret", `{"protocol":"HTTP","sink":"https://x.example","protocolsettings":{"secret":"hunter2"}}`, 422, "protocolsettings.secret", "whsec_"},
			{"bad schedule", `{"protocol":"HTTP","sink":"https://x.example","config":{"retry_schedule":["0s"]}}`, 422, "config.retry_schedule[0]", ""},
			{"NATS with filters", `{"protocol":"NATS","filters":[{"exact":{"type":"a"}}]}`, 422, "filters", "types only"},
			{"empty type", `{"protocol":"NATS","types":[""]}`, 422, "types[0]", ""},
			{"unknown member", `{"protocol":"HTTP","sink":"https://x.example","colour":"red"}`, 400, "", ""},
			{"not JSON", `{`, 400, "", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := b.srv.Do(t, "POST", "/v1/subscriptions", c.body, httpapitest.AsTenant(a))
				require.Equal(t, c.status, res.Status, string(res.Body))
				p := res.Problem(t)
				if c.field != "" {
					require.Equal(t, c.field, p.Errors[0].Field, string(res.Body))
					require.Contains(t, p.Errors[0].Detail, c.has)
				}
			})
		}
	})

	t.Run("a sink the outbound check refuses", func(t *testing.T) {
		guarded := subscriptions.New(b.db.Pool, subscriptions.Config{SecretsKey: b.key,
			CheckSink: func(sink string) error {
				if strings.Contains(sink, "169.254.169.254") {
					return fmt.Errorf("the address is internal")
				}
				return nil
			}})
		srv := httpapitest.New(t, subscriptionshttp.New(guarded, nil, subscriptionshttp.StreamConfig{}))
		res := srv.Do(t, "POST", "/v1/subscriptions", `{"protocol":"HTTP","sink":"http://169.254.169.254/latest"}`, httpapitest.AsTenant(a))
		require.Equal(t, 422, res.Status, string(res.Body))
		require.Equal(t, "sink", res.Problem(t).Errors[0].Field)
		res = srv.Do(t, "PATCH", "/v1/subscriptions/"+h.ID, `{"sink":"http://169.254.169.254/x"}`, httpapitest.AsTenant(a))
		require.Equal(t, 422, res.Status, string(res.Body))
	})

	t.Run("list pages", func(t *testing.T) {
		var ids []string
		path := "/v1/subscriptions?limit=2"
		for range 5 {
			res := b.srv.Do(t, "GET", path, nil, httpapitest.AsTenant(a))
			require.Equal(t, http.StatusOK, res.Status)
			var p struct {
				Items      []resource `json:"items"`
				NextCursor *string    `json:"next_cursor"`
			}
			res.JSON(t, &p)
			for _, it := range p.Items {
				ids = append(ids, it.ID)
			}
			if p.NextCursor == nil {
				break
			}
			path = "/v1/subscriptions?limit=2&cursor=" + *p.NextCursor
		}
		require.Equal(t, []string{h.ID, own.ID, n.ID}, ids)
		res := b.srv.Do(t, "GET", "/v1/subscriptions", nil, httpapitest.AsTenant(other))
		require.JSONEq(t, `{"items":[],"next_cursor":null}`, string(res.Body))
	})

	t.Run("update", func(t *testing.T) {
		res := b.srv.Do(t, "PATCH", "/v1/subscriptions/"+h.ID, `{"types":["order.paid"],"status":"disabled"}`, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		var r resource
		res.JSON(t, &r)
		require.Equal(t, []string{"order.paid"}, r.Types)
		require.Equal(t, "disabled", r.Status)
		require.Equal(t, "disabled by the App", r.DisabledReason)
		require.Len(t, r.Filters, 1, "members left out keep their value")
		// The resource read can be sent back as it is.
		back := b.srv.Do(t, "PATCH", "/v1/subscriptions/"+h.ID, string(res.Body), httpapitest.AsTenant(a))
		require.Equal(t, http.StatusOK, back.Status, string(back.Body))
		res = b.srv.Do(t, "PATCH", "/v1/subscriptions/"+h.ID, `{"status":"active"}`, httpapitest.AsTenant(a),
			httpapitest.Header("Content-Type", "application/merge-patch+json"))
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		res = b.srv.Do(t, "PATCH", "/v1/subscriptions/"+h.ID, `{"protocol":"NATS"}`, httpapitest.AsTenant(a))
		require.Equal(t, 422, res.Status)
		// Types of a NATS subscription move its consumer's subjects.
		res = b.srv.Do(t, "PATCH", "/v1/subscriptions/"+n.ID, `{"types":["a.b","c"]}`, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusOK, res.Status, string(res.Body))
		ci, err := b.js.Consumer(t.Context(), "PROST_EVENTS", "sub_"+n.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"prost.events." + a.String() + ".*.a.b", "prost.events." + a.String() + ".*.c"},
			ci.CachedInfo().Config.FilterSubjects)
	})

	t.Run("routes by protocol", func(t *testing.T) {
		res := b.srv.Do(t, "GET", "/v1/subscriptions/"+h.ID+"/credentials", nil, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusConflict, res.Status, "an HTTP subscription has no credentials")
		res = b.srv.Do(t, "GET", "/v1/subscriptions/"+n.ID+"/attempts", nil, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusConflict, res.Status, "a NATS subscription has no attempts")
		res = b.srv.Do(t, "POST", "/v1/subscriptions/"+h.ID+"/recover", `{"since":"yesterday"}`, httpapitest.AsTenant(a))
		require.Equal(t, 422, res.Status)
		require.Equal(t, "since", res.Problem(t).Errors[0].Field)
		res = b.srv.Do(t, "POST", "/v1/subscriptions/"+h.ID+"/recover", `{}`, httpapitest.AsTenant(a))
		require.Equal(t, 422, res.Status)
		res = b.srv.Do(t, "POST", "/v1/subscriptions/"+h.ID+"/recover", `{"since":"2026-01-01T00:00:00Z"}`, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusAccepted, res.Status, string(res.Body))
		require.JSONEq(t, `{"recovered":0,"since":"2026-01-01T00:00:00Z"}`, string(res.Body))
	})

	t.Run("another tenant's ids answer 404", func(t *testing.T) {
		for _, id := range []string{h.ID, n.ID} {
			for _, c := range []struct{ method, path, body string }{
				{"GET", "", ""},
				{"PATCH", "", `{"types":["x"]}`},
				{"DELETE", "", ""},
				{"GET", "/credentials", ""},
				{"POST", "/credentials/rotate", ""},
				{"GET", "/attempts", ""},
				{"POST", "/recover", `{"since":"2026-01-01T00:00:00Z"}`},
				{"POST", "/test", ""},
			} {
				var body any
				if c.body != "" {
					body = c.body
				}
				res := b.srv.Do(t, c.method, "/v1/subscriptions/"+id+c.path, body, httpapitest.AsTenant(other))
				require.Equal(t, http.StatusNotFound, res.Status, "%s %s: %s", c.method, c.path, res.Body)
			}
		}
		res := b.srv.Do(t, "GET", "/v1/subscriptions/not-a-uuid", nil, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusBadRequest, res.Status)
		res = b.srv.Do(t, "GET", "/v1/subscriptions", nil)
		require.Equal(t, http.StatusUnauthorized, res.Status)
	})

	t.Run("delete", func(t *testing.T) {
		res := b.srv.Do(t, "DELETE", "/v1/subscriptions/"+n.ID, nil, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusNoContent, res.Status)
		res = b.srv.Do(t, "GET", "/v1/subscriptions/"+n.ID, nil, httpapitest.AsTenant(a))
		require.Equal(t, http.StatusNotFound, res.Status)
		_, err := b.js.Consumer(t.Context(), "PROST_EVENTS", "sub_"+n.ID)
		require.ErrorIs(t, err, jetstream.ErrConsumerNotFound)
	})
}

// errorsSeen collects a connection's asynchronous errors.
type errorsSeen struct {
	mu   sync.Mutex
	errs []string
}

func (e *errorsSeen) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err.Error())
	e.mu.Unlock()
}

func (e *errorsSeen) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.errs {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// TestNATSCredentials: a tenant's minted credentials read its subscription's
// events and are refused on another tenant's subjects, another consumer,
// creating a consumer and publishing; rotating and deleting revoke them.
func TestNATSCredentials(t *testing.T) {
	b := setup(t, false)
	a, other := uuid.New(), uuid.New()
	sub := b.create(t, a, `{"protocol":"NATS","types":["order.placed"]}`)
	theirs := b.create(t, other, `{"protocol":"NATS"}`)

	res := b.srv.Do(t, "GET", "/v1/subscriptions/"+sub.ID+"/credentials", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	var creds subscriptions.Credentials
	res.JSON(t, &creds)
	require.Contains(t, creds.Creds, "BEGIN NATS USER JWT")
	require.Contains(t, creds.Creds, "BEGIN USER NKEY SEED")
	require.Equal(t, b.bus.URL(), creds.URL)
	again := b.srv.Do(t, "GET", "/v1/subscriptions/"+sub.ID+"/credentials", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusConflict, again.Status, "shown once")
	require.Contains(t, again.Problem(t).Detail, "rotate")

	// Events: the tenant's of the subscribed type, of another type, and the
	// other tenant's.
	for i, e := range []struct {
		tenant uuid.UUID
		typ    string
	}{{a, "order.placed"}, {a, "order.shipped"}, {other, "order.placed"}, {a, "order.placed"}} {
		_, err := b.js.Publish(t.Context(), subjects.Event(e.tenant, i%3, e.typ), []byte(fmt.Sprintf(`{"n":%d}`, i)))
		require.NoError(t, err)
	}

	var seen errorsSeen
	nc := prosttest.Connect(t, creds.URL, []byte(creds.Creds), nats.CustomInboxPrefix(creds.InboxPrefix), nats.ErrorHandler(seen.handler))
	js, err := jetstream.NewWithAPIPrefix(nc, creds.APIPrefix)
	require.NoError(t, err)
	c, err := js.Consumer(t.Context(), creds.Stream, creds.Consumer)
	require.NoError(t, err)
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		require.NoError(t, m.DoubleAck(t.Context()))
	}
	require.Equal(t, []string{`{"n":0}`, `{"n":3}`}, got, "its own type, its own tenant")

	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	_, err = js.Consumer(short(), creds.Stream, "sub_"+theirs.ID)
	require.Error(t, err, "another tenant's consumer")
	require.Eventually(t, func() bool { return seen.has("sub_" + theirs.ID) }, 30*time.Second, 10*time.Millisecond)
	_, err = js.CreateConsumer(short(), creds.Stream, jetstream.ConsumerConfig{FilterSubject: subjects.Tenant(other)})
	require.Error(t, err, "creating a consumer")
	_, err = nc.SubscribeSync(subjects.Tenant(other))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return seen.has(`Subscription to "` + subjects.Tenant(other)) }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, nc.Publish(subjects.Event(a, 0, "order.placed"), []byte(`{"forged":true}`)))
	require.Eventually(t, func() bool { return seen.has(`Publish to "prost.events.`) }, 30*time.Second, 10*time.Millisecond)
	st, err := b.js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, 4, info.State.Msgs, "nothing was published")

	// Rotation revokes the first credentials at once.
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	nc.SetReconnectHandler(nil)
	res = b.srv.Do(t, "POST", "/v1/subscriptions/"+sub.ID+"/credentials/rotate", nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	var rotated subscriptions.Credentials
	res.JSON(t, &rotated)
	require.NotEqual(t, creds.User, rotated.User)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the rotated credentials' connection is still open")
	}
	o, err := natsauth.ConnectOption([]byte(creds.Creds))
	require.NoError(t, err)
	_, err = nats.Connect(b.bus.URL(), o)
	require.Error(t, err, "the old credentials are refused")
	nc2 := prosttest.Connect(t, rotated.URL, []byte(rotated.Creds), nats.CustomInboxPrefix(rotated.InboxPrefix), nats.NoReconnect())
	js2, err := jetstream.NewWithAPIPrefix(nc2, rotated.APIPrefix)
	require.NoError(t, err)
	_, err = js2.Consumer(t.Context(), rotated.Stream, rotated.Consumer)
	require.NoError(t, err, "the new credentials read the consumer")

	// Deleting the subscription revokes its credentials too.
	closed2 := make(chan struct{})
	nc2.SetClosedHandler(func(*nats.Conn) { close(closed2) })
	res = b.srv.Do(t, "DELETE", "/v1/subscriptions/"+sub.ID, nil, httpapitest.AsTenant(a))
	require.Equal(t, http.StatusNoContent, res.Status)
	select {
	case <-closed2:
	case <-time.After(10 * time.Second):
		t.Fatal("a deleted subscription's credentials still connect")
	}
}
