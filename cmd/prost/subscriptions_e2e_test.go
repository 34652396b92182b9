package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/webhook"
)

// live is a running prost (dev or serve) seen from outside, as its users see
// it: the HTTP API and the bus.
type live struct {
	t       *testing.T
	url     string
	token   string
	natsURL string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// runProst runs `prost args...` in this process until the test ends.
func runProst(t *testing.T, out io.Writer, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, out, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(45 * time.Second):
			t.Error("prost did not stop")
		}
	})
}

// cli runs a prost command as the App whose credentials are given.
func (l *live) cli(app creds, args ...string) (stdout, stderr string, err error) {
	l.t.Helper()
	l.t.Setenv("PROST_URL", l.url)
	l.t.Setenv("PROST_ADMIN_TOKEN", l.token)
	l.t.Setenv("PROST_APP_KEY", app.APIKey)
	l.t.Setenv("PROST_APP_SECRET", app.APISecret)
	cliTransport = validatingTransport(l.t)
	defer func() { cliTransport = nil }()
	var o, e strings.Builder
	err = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

func (l *live) request(method, path string, header map[string]string, body string) (int, []byte) {
	l.t.Helper()
	req, err := http.NewRequest(method, l.url+path, strings.NewReader(body))
	require.NoError(l.t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: validatingTransport(l.t), Timeout: 30 * time.Second}).Do(req)
	require.NoError(l.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (l *live) createApp(name string) creds {
	l.t.Helper()
	code, body := l.request(http.MethodPost, "/admin/v1/apps", map[string]string{"Authorization": "Bearer " + l.token,
		"Content-Type": "application/json"}, `{"name":"`+name+`"}`)
	require.Equal(l.t, http.StatusCreated, code, string(body))
	var c creds
	require.NoError(l.t, json.Unmarshal(body, &c))
	return c
}

func (l *live) post(app creds, id, typ string) {
	l.t.Helper()
	code, body := l.request(http.MethodPost, "/v1/events", auth(app, "Content-Type", "application/cloudevents+json"),
		fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/bus-test","type":%q,"partitionkey":"k","data":{"n":1}}`, id, typ))
	require.Equal(l.t, http.StatusAccepted, code, string(body))
}

// checkPrivateBus: a client without credentials is refused; an App's minted
// credentials read its subscription's events and are refused on another
// tenant's subjects, another consumer, creating a consumer and publishing.
func (l *live) checkPrivateBus() {
	t := l.t
	_, err := nats.Connect(l.natsURL, nats.Timeout(5*time.Second))
	require.ErrorIs(t, err, nats.ErrAuthorization, "a client without credentials is refused")

	a, b := l.createApp("bus-a"), l.createApp("bus-b")
	out, stderr, err := l.cli(a, "subscriptions", "create", "--protocol", "NATS", "--type", "order.placed", "--json")
	require.NoError(t, err, stderr)
	var sub subscriptions.Subscription
	require.NoError(t, json.Unmarshal([]byte(out), &sub))
	out, stderr, err = l.cli(b, "subscriptions", "create", "--protocol", "NATS", "--json")
	require.NoError(t, err, stderr)
	var theirs subscriptions.Subscription
	require.NoError(t, json.Unmarshal([]byte(out), &theirs))

	// prost subscriptions creds ID > app.creds
	credsText, stderr, err := l.cli(a, "subscriptions", "creds", sub.ID.String())
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, sub.ProtocolSettings.Consumer)
	credsFile := filepath.Join(t.TempDir(), "app.creds")
	require.NoError(t, os.WriteFile(credsFile, []byte(credsText), 0o600))
	_, _, err = l.cli(a, "subscriptions", "creds", sub.ID.String())
	require.Error(t, err, "shown once")
	var ee exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.code)

	l.post(a, "p-1", "order.placed")
	l.post(a, "s-1", "order.shipped")
	l.post(b, "b-1", "order.placed")
	l.post(a, "p-2", "order.placed")

	var seen violations
	nc, err := nats.Connect(l.natsURL, nats.UserCredentials(credsFile), nats.CustomInboxPrefix(sub.ProtocolSettings.InboxPrefix),
		nats.ErrorHandler(seen.handler))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.NewWithAPIPrefix(nc, sub.ProtocolSettings.APIPrefix)
	require.NoError(t, err)
	cons, err := js.Consumer(t.Context(), sub.ProtocolSettings.Stream, sub.ProtocolSettings.Consumer)
	require.NoError(t, err)
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
		require.NoError(t, err)
		for m := range batch.Messages() {
			var ev struct{ ID, Tenantid string }
			require.NoError(t, json.Unmarshal(m.Data(), &ev))
			require.Equal(t, a.AppID.String(), ev.Tenantid)
			got = append(got, ev.ID)
			require.NoError(t, m.DoubleAck(t.Context()))
		}
	}
	require.Equal(t, []string{"p-1", "p-2"}, got, "its own events of its type")

	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	_, err = js.Consumer(short(), sub.ProtocolSettings.Stream, theirs.ProtocolSettings.Consumer)
	require.Error(t, err, "another consumer")
	_, err = js.CreateConsumer(short(), sub.ProtocolSettings.Stream, jetstream.ConsumerConfig{FilterSubject: "prost.events." + b.AppID.String() + ".>"})
	require.Error(t, err, "creating a consumer")
	theirSubjects := "prost.events." + b.AppID.String() + ".>"
	_, err = nc.SubscribeSync(theirSubjects)
	require.NoError(t, err)
	require.NoError(t, nc.Publish("prost.events."+a.AppID.String()+".0.order.placed", []byte(`{"forged":true}`)))
	require.NoError(t, nc.Flush())
	require.Eventually(t, func() bool {
		return seen.has(`Subscription to "`+theirSubjects+`"`) && seen.has(`Publish to "prost.events.`) &&
			seen.has(theirs.ProtocolSettings.Consumer) && seen.has("CONSUMER.CREATE")
	}, 30*time.Second, 20*time.Millisecond, "the server refused each: %v", seen.all())
}

// violations collects a connection's asynchronous errors.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
}

func (v *violations) has(s string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(e, s) {
			return true
		}
	}
	return false
}

func (v *violations) all() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.errs...)
}

// TestServePrivateBus: `prost serve all` against a nats-server configured as
// the container stack configures it (the keys of `prost nats-auth init`, the
// accounts.conf it writes included by the server's configuration).
func TestServePrivateBus(t *testing.T) {
	dir := t.TempDir()
	keysDir, serverDir := filepath.Join(dir, "prost"), filepath.Join(dir, "server")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"nats-auth", "init", "--dir", keysDir, "--server-dir", serverDir}, &out, &out))
	require.Contains(t, out.String(), "generated the key set")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"nats-auth", "init", "--dir", keysDir, "--server-dir", serverDir}, &out, &out))
	require.Contains(t, out.String(), "reused the key set", "a second init changes nothing")

	conf := filepath.Join(serverDir, "nats-server.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf("listen: 127.0.0.1:-1\njetstream {\n  store_dir: %q\n}\n%sinclude ./accounts.conf\n",
		filepath.Join(dir, "js"), natsauth.ResolverConfig(filepath.Join(dir, "jwt")))), 0o644))
	opts, err := server.ProcessConfigFile(conf)
	require.NoError(t, err)
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	require.NoError(t, err)
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	require.True(t, ns.ReadyForConnections(10*time.Second))

	db := prosttest.NewDatabase(t)
	addr := freeAddr(t)
	l := &live{t: t, url: "http://" + addr, token: "serve-bus-token", natsURL: ns.ClientURL()}
	for k, v := range map[string]string{
		"DATABASE_URL": db.URL, "NATS_URL": ns.ClientURL(), "PROST_NATS_AUTH_DIR": keysDir, "PROST_HTTP_ADDR": addr,
		"PROST_ADMIN_TOKEN": l.token, "PROST_NATS_DIR": "../../nats", "PROST_SCHEMAS_DIR": "../../schemas",
		"PROST_UNREGISTERED_TYPES": "accept", "PROST_LOG_LEVEL": "error", "PROST_SECRETS_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"PROST_RELAY_POLL_INTERVAL": "50ms", "PROST_BUS_KEY": busauth.NewKey(), "PROST_OUTBOUND_ALLOW": "127.0.0.1/32",
	} {
		t.Setenv(k, v)
	}
	runProst(t, io.Discard, "serve", "all")
	require.Eventually(t, func() bool {
		resp, err := http.Get(l.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond)
	l.checkPrivateBus()
}

// TestDevPrivateBusAndSubscriptionsCLI: the bus `prost dev` embeds is
// private (the same checks as for prost serve), and the subscriptions
// commands drive an HTTP subscription end to end with a real receiver.
func TestDevPrivateBusAndSubscriptionsCLI(t *testing.T) {
	dbURL := strings.Replace(testDB.URL, testDB.Name, testDB.Name+"_devbus", 1)
	t.Cleanup(func() {
		_, _ = testDB.Pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+testDB.Name+"_devbus WITH (FORCE)")
	})
	for k, v := range map[string]string{
		"DATABASE_URL": dbURL, "NATS_URL": "", "PROST_ADMIN_TOKEN": "", "PROST_DATA_DIR": t.TempDir(), "PROST_HTTP_ADDR": "127.0.0.1:0",
		"PROST_EMBEDDED_NATS_ADDR": "127.0.0.1:0", "PROST_NATS_DIR": "../../nats", "PROST_SCHEMAS_DIR": "../../schemas",
		"PROST_LOG_LEVEL": "error", "PROST_UNREGISTERED_TYPES": "accept", "PROST_RELAY_POLL_INTERVAL": "50ms",
		"PROST_SUBSCRIPTIONS_RETRY_SCHEDULE": "200ms,200ms", "PROST_OUTBOUND_ALLOW": "127.0.0.1/32",
	} {
		t.Setenv(k, v)
	}
	var out syncBuffer
	runProst(t, &out, "dev")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "docs/subscriptions.md") }, 60*time.Second, 20*time.Millisecond)
	text := out.String()
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		require.NotNil(t, m, "%s in:\n%s", re, text)
		return m[1]
	}
	l := &live{t: t, url: find(`export PROST_URL=(\S+)`), token: find(`export PROST_ADMIN_TOKEN=(\S+)`), natsURL: find(`NATS at (\S+) refuses`)}
	l.checkPrivateBus()

	// An HTTP subscription, end to end through the CLI.
	app := l.createApp("cli-http")
	var mu sync.Mutex
	var secret string
	var received []string
	fail := true
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := webhook.Verify(secret, r.Header, body, time.Now(), 0); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct{ ID, Type string }
		_ = json.Unmarshal(body, &ev)
		if fail && ev.Type != subscriptions.PingType {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		received = append(received, ev.ID)
	}))
	defer rcv.Close()
	o, e, err := l.cli(app, "subscriptions", "create", "--protocol", "http", "--sink", rcv.URL, "--type", "order.placed",
		"--filter", `{"prefix":{"source":"/bus"}}`)
	require.NoError(t, err, e)
	id := regexp.MustCompile(`id:\s+(\S+)`).FindStringSubmatch(o)[1]
	mu.Lock()
	secret = regexp.MustCompile(`secret:\s+(whsec_\S+)`).FindStringSubmatch(o)[1]
	mu.Unlock()
	o, e, err = l.cli(app, "subscriptions", "test", id)
	require.NoError(t, err, e)
	require.Contains(t, o, "succeeded (200")

	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	l.post(app, "h-1", "order.placed")
	// Three failing attempts (the shortened schedule), then the delivery
	// failed; recover sends it again once the receiver works.
	require.Eventually(t, func() bool {
		o, _, err := l.cli(app, "subscriptions", "attempts", id, "--json")
		require.NoError(t, err)
		var as []subscriptions.Attempt
		require.NoError(t, json.Unmarshal([]byte(o), &as))
		return len(as) == 4 // the ping and three attempts
	}, 30*time.Second, 100*time.Millisecond)
	mu.Lock()
	fail = false
	mu.Unlock()
	o, e, err = l.cli(app, "subscriptions", "recover", id, "--since", since)
	require.NoError(t, err, e)
	require.Contains(t, o, "1 deliveries")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(received) == 2
	}, 30*time.Second, 50*time.Millisecond)
	o, _, err = l.cli(app, "subscriptions", "attempts", id)
	require.NoError(t, err)
	require.Contains(t, o, "/bus-test h-1")
	require.Contains(t, o, "503")

	o, e, err = l.cli(app, "subscriptions", "update", id, "--disable")
	require.NoError(t, err, e)
	require.Contains(t, o, "status:    disabled")
	o, _, err = l.cli(app, "subscriptions", "list")
	require.NoError(t, err)
	require.Contains(t, o, id)
	_, e, err = l.cli(app, "subscriptions", "delete", id)
	require.NoError(t, err, e)
	_, _, err = l.cli(app, "subscriptions", "show", id)
	require.Error(t, err)
	_, _, err = l.cli(app, "subscriptions", "update", id)
	var ee exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.code, "nothing to change is a usage error")
}
