package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/prosttest"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) {
	factorysvc.MaybeGateProcess() // the factory's gate processes are this test binary
	prosttest.Main(m, &testDB)
}

// stack is the whole platform running in this process, as `prost dev` runs
// it, on the package's database and a private embedded nats-server.
type stack struct {
	t     *testing.T
	url   string
	token string
	p     *platform
	// storeDir is the embedded nats-server's JetStream store.
	storeDir string
}

func startStack(t *testing.T, tweak func(*env)) *stack {
	t.Helper()
	return startStackWith(t, tweak, nil)
}

// startStackWith also lets a test adjust the platform before it runs.
func startStackWith(t *testing.T, tweak func(*env), adjust func(*platform)) *stack {
	t.Helper()
	ns := prosttest.NATS(t)
	e := envFromOS()
	e.DatabaseURL = testDB.URL
	e.NATSURL = ns.URL()
	e.HTTPAddr = "127.0.0.1:0"
	e.NATSDir = "../../nats"
	e.SchemasDir = "../../schemas"
	// The tests written before the schema registry post events of types
	// they never register: the harness accepts unregistered types, and the
	// registry's tests set PROST_UNREGISTERED_TYPES' production default,
	// reject, through tweak.
	e.UnregisteredTypes = "accept"
	e.PrivacyKEK = dataprotect.NewKEKSpec()
	e.RelayPollInterval = 100 * time.Millisecond
	e.ShutdownTimeout = 10 * time.Second
	e.BusKey = busauth.NewKey()
	// Tests deliver webhooks and subscriptions to receivers on this
	// machine; the tests of the outbound guard itself set it to "".
	e.OutboundAllow = "127.0.0.1/32"
	// The package's database outlives each test's NATS server: watching
	// the bus for loss would take every new server for a lost one. Tests
	// of the bus's state use a database of their own and set it back.
	e.BusRebuild = busstate.ModeOff
	if tweak != nil {
		tweak(&e)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("PROST_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := openPlatform(ctx, e, log, false)
	require.NoError(t, err)
	if adjust != nil {
		adjust(p)
	}
	s := &stack{t: t, token: "test-admin-token-" + t.Name(), p: p, storeDir: ns.JetStreamConfig().StoreDir}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, services, s.token, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-done:
		t.Fatalf("platform stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("platform did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("platform did not stop within 30s")
		}
		p.close()
	})
	return s
}

// creds is an App's credentials.
type creds = apps.Credentials

func (s *stack) createApp(name string) creds {
	s.t.Helper()
	var out creds
	code, body := s.do(http.MethodPost, "/admin/v1/apps", map[string]string{"Authorization": "Bearer " + s.token, "Content-Type": "application/json"}, []byte(`{"name":"`+name+`"}`))
	require.Equal(s.t, http.StatusCreated, code, string(body))
	require.NoError(s.t, json.Unmarshal(body, &out))
	return out
}

func (s *stack) do(method, path string, headers map[string]string, body []byte) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	require.NoError(s.t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client().Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, b
}

// client sends requests whose answers are checked against the OpenAPI
// document.
func (s *stack) client() *http.Client {
	return &http.Client{Transport: validatingTransport(s.t), Timeout: 60 * time.Second}
}

func auth(c creds, more ...string) map[string]string {
	h := map[string]string{"X-Prost-App-Key": c.APIKey, "X-Prost-App-Secret": c.APISecret}
	for i := 0; i+1 < len(more); i += 2 {
		h[more[i]] = more[i+1]
	}
	return h
}

func (s *stack) post(c creds, contentType string, body string, more ...string) (int, []byte) {
	s.t.Helper()
	h := auth(c, more...)
	if contentType != "" {
		h["Content-Type"] = contentType
	}
	return s.do(http.MethodPost, "/v1/events", h, []byte(body))
}

type eventsPage struct {
	Items      []map[string]any `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

func (s *stack) events(c creds, query string) eventsPage {
	s.t.Helper()
	code, body := s.do(http.MethodGet, "/v1/events"+query, auth(c), nil)
	require.Equal(s.t, http.StatusOK, code, string(body))
	var p eventsPage
	require.NoError(s.t, json.Unmarshal(body, &p))
	return p
}

type auditEntry struct {
	Seq         int64  `json:"seq"`
	EventID     string `json:"event_id"`
	EventSource string `json:"event_source"`
	EventType   string `json:"event_type"`
	ActorID     string `json:"actor_id"`
	Action      string `json:"action"`
	PrevHash    string `json:"prev_hash"`
	Hash        string `json:"hash"`
}

func (s *stack) audit(c creds) []auditEntry {
	s.t.Helper()
	var all []auditEntry
	cursor := ""
	for {
		code, body := s.do(http.MethodGet, "/v1/audit?limit=2&cursor="+cursor, auth(c), nil)
		require.Equal(s.t, http.StatusOK, code, string(body))
		var p struct {
			Items      []auditEntry `json:"items"`
			NextCursor *string      `json:"next_cursor"`
		}
		require.NoError(s.t, json.Unmarshal(body, &p))
		all = append(all, p.Items...)
		if p.NextCursor == nil {
			return all
		}
		cursor = *p.NextCursor
	}
}

// cli runs a prost command against the stack, as a user would.
func (s *stack) cli(args ...string) (string, error) {
	s.t.Helper()
	s.t.Setenv("PROST_URL", s.url)
	s.t.Setenv("PROST_ADMIN_TOKEN", s.token)
	cliTransport = validatingTransport(s.t)
	defer func() { cliTransport = nil }()
	var out, errOut strings.Builder
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}
