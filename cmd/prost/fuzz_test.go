package main

// Fuzzing the HTTP surface (issue 12, item 5). Each Fuzz target drives the
// real gateway, as `prost serve gateway` assembles it (every domain's
// routes, the group committer, the schema registry, contracts, the privacy
// keyring), over HTTP on its own database and an embedded nats-server with
// the private bus. Every input must be answered below 500, without a panic,
// with a problem document when it is refused; and a refused request (4xx)
// must leave every table as it was (the rows of each are counted before and
// after).
//
// `go test` runs each target's seeds (f.Add and testdata/fuzz/<target>/) as
// ordinary tests; `make test` then fuzzes each target for a few seconds and
// `make fuzz` for FUZZTIME each (see the Makefile). A finding is fixed where
// it lives and its input kept in testdata/fuzz/<target>/.
//
// fuzzTargets lists the routes of every target: TestFuzzTargetsCoverTheAPI
// fails when a route of pkg/openapi/openapi.yaml that reads a body or a
// query parameter is in none.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http/httpguts"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/openapi"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
)

// fuzzStack is the gateway alone, on a database and a nats-server of its
// own, with fixtures made through the API (an App, a schema, a contract, a
// rule, subscriptions, a meter, billing objects, a factory run) so that the
// fuzzer reaches past the look-up of an id.
type fuzzStack struct {
	url     string
	token   string
	app     creds
	client  *http.Client
	db      *prosttest.Database
	count   string // one query counting the rows of every table
	fx      map[string]string
	failed  atomic.Int64 // "request failed" and "panic" log records
	lastLog atomic.Value // the last of them
}

// fuzzLog counts the gateway's records of a failed request or a panic,
// which the fuzz check asserts never happen.
type fuzzLog struct{ s *fuzzStack }

func (h fuzzLog) Enabled(context.Context, slog.Level) bool { return true }

func (h fuzzLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && (strings.Contains(r.Message, "panic") || r.Message == "request failed") {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		h.s.lastLog.Store(b.String())
		h.s.failed.Add(1)
	}
	return nil
}

func (h fuzzLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h fuzzLog) WithGroup(string) slog.Handler      { return h }

// Limits of the fuzzed gateway: small, so that the fuzzer reaches them.
const (
	fuzzRequestTimeout = 5 * time.Second
	fuzzMaxBody        = 64 << 10
	fuzzMaxBatch       = 16
)

// fuzzCoordinating reports whether this process coordinates `go test
// -fuzz` (run with -run '^$', as the Makefile does): it hands inputs to its
// worker processes and runs none itself, so it needs no stack.
func fuzzCoordinating() bool {
	fz, worker, run := flag.Lookup("test.fuzz"), flag.Lookup("test.fuzzworker"), flag.Lookup("test.run")
	return fz != nil && fz.Value.String() != "" && worker != nil && worker.Value.String() != "true" &&
		run != nil && run.Value.String() == "^$"
}

// fuzzShort is the short pass of `make test` (PROST_FUZZ_SHORT set): a
// fuzzing run starts by replaying every seed in its workers, slowly (each
// with its coverage), so the short pass seeds each target with a few inputs;
// every seed runs in `go test` anyway.
func fuzzShort() bool { return os.Getenv("PROST_FUZZ_SHORT") != "" }

// few is seeds, or their first n in the short pass.
func few[T any](seeds []T, n int) []T {
	if fuzzShort() && len(seeds) > n {
		return seeds[:n]
	}
	return seeds
}

// ready skips an input in a process without a stack (never reached but
// through a misuse of the flags fuzzCoordinating reads).
func (s *fuzzStack) ready(t *testing.T) {
	if s == nil {
		t.Skip("the coordinating process of go test -fuzz runs no input")
	}
}

func startFuzzStack(f *testing.F) *fuzzStack {
	f.Helper()
	if fuzzCoordinating() {
		return nil
	}
	s := &fuzzStack{token: "fuzz-admin-token", db: prosttest.NewDatabase(f), fx: map[string]string{}}
	// Stripe knows the account of any key and answers every other call
	// 401: nothing reaches the network.
	stripe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/account" {
			_, _ = io.WriteString(w, `{"id":"acct_fuzz","object":"account"}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
	}))
	f.Cleanup(stripe.Close)
	e := envFromOS()
	e.DatabaseURL = s.db.URL
	e.NATSURL = "" // the embedded server, with the private bus's key set
	e.DataDir = f.TempDir()
	e.NATSAuthDir = ""
	e.EmbeddedNATSAddr = "127.0.0.1:0"
	e.HTTPAddr = "127.0.0.1:0"
	e.NATSDir = "../../nats"
	e.SchemasDir = "../../schemas"
	e.UnregisteredTypes = "accept"
	e.PrivacyKEK = dataprotect.NewKEKSpec()
	e.BusKey = busauth.NewKey()
	_, e.SecretsKey = secretbox.NewKey()
	e.MaxBodyBytes = fuzzMaxBody
	e.MaxBatch = fuzzMaxBatch
	e.RateLimit = -1
	e.ShutdownTimeout = 10 * time.Second
	e.StreamHeartbeat = 100 * time.Millisecond
	e.StripeAPIURL = stripe.URL
	e.OutboundAllow = ""
	e.PprofAddr, e.MetricsAddr = "", ""
	log := slog.New(fuzzLog{s: s})
	ctx, cancel := context.WithCancel(context.Background())
	p, err := openPlatform(ctx, e, log, true)
	require.NoError(f, err)
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, []string{"gateway"}, s.token, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-done:
		f.Fatalf("gateway stopped: %v", err)
	case <-time.After(60 * time.Second):
		f.Fatal("gateway did not start")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
	// No input may take long: a slow answer is a finding too.
	s.client = &http.Client{Transport: tr, Timeout: fuzzRequestTimeout}
	f.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			require.NoError(f, err)
		case <-time.After(30 * time.Second):
			f.Error("gateway did not stop within 30s")
		}
		p.close()
	})
	s.countQuery(f)
	s.app = s.newApp(f, "fuzz")
	s.fixtures(f)
	return s
}

// countQuery makes the query that counts the rows of every table of the
// database.
func (s *fuzzStack) countQuery(f *testing.F) {
	f.Helper()
	rows, err := s.db.Pool.Query(context.Background(), `SELECT format('SELECT %L, count(*) FROM %I.%I', schemaname || '.' || tablename, schemaname, tablename)
		FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY schemaname, tablename`)
	require.NoError(f, err)
	var parts []string
	for rows.Next() {
		var q string
		require.NoError(f, rows.Scan(&q))
		parts = append(parts, q)
	}
	require.NoError(f, rows.Err())
	require.Greater(f, len(parts), 30, "the tables of the database")
	s.count = strings.Join(parts, " UNION ALL ")
}

// rows counts the rows of every table.
func (s *fuzzStack) rows(t testing.TB) map[string]int64 {
	t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), s.count)
	require.NoError(t, err)
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		require.NoError(t, rows.Scan(&name, &n))
		out[name] = n
	}
	require.NoError(t, rows.Err())
	return out
}

func (s *fuzzStack) newApp(f *testing.F, name string) creds {
	f.Helper()
	code, body := s.send(f, http.MethodPost, "/admin/v1/apps", s.adminHeaders("application/json"), []byte(`{"name":"`+name+`"}`))
	require.Equal(f, http.StatusCreated, code, string(body))
	var c creds
	require.NoError(f, json.Unmarshal(body, &c))
	return c
}

func (s *fuzzStack) adminHeaders(ct string) http.Header {
	h := http.Header{"Authorization": {"Bearer " + s.token}}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return h
}

func (s *fuzzStack) tenantHeaders(c creds, ct string) http.Header {
	h := http.Header{"X-Prost-App-Key": {c.APIKey}, "X-Prost-App-Secret": {c.APISecret}}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return h
}

// send sends a request and reads the whole answer (a stream only up to its
// headers).
func (s *fuzzStack) send(t testing.TB, method, target string, h http.Header, body []byte) (int, []byte) {
	t.Helper()
	resp, b := s.roundTrip(t, method, target, h, body)
	return resp.StatusCode, b
}

func (s *fuzzStack) roundTrip(t testing.TB, method, target string, h http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+target, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = h.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err, "%s %s", method, target)
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp, nil // a live stream: its headers are the answer
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// fixture makes something through the API, keeping the value of member of
// its answer as s.fx[name].
func (s *fuzzStack) fixture(f *testing.F, name, method, path, ct, body string, want int, member string) {
	f.Helper()
	code, b := s.send(f, method, path, s.tenantHeaders(s.app, ct), []byte(body))
	require.Equal(f, want, code, "fixture %s: %s", name, b)
	if member == "" {
		return
	}
	var m map[string]any
	require.NoError(f, json.Unmarshal(b, &m))
	v, ok := m[member]
	require.True(f, ok, "fixture %s: no %q in %s", name, member, b)
	s.fx[name] = fmt.Sprint(v)
}

// The fixtures' names and values the targets use.
const (
	fxType     = "fz.order" // a registered type with a contract classifying personal data
	fxContract = `{"owner":"fuzz","description":"An order was placed.","level":"standard",
		"schema":"urn:prost:schema:fz.order:1","compatibility":"BACKWARD","idempotency":{"key":["source","id"]},
		"retry":{"max_attempts":5,"backoff":["1s"]},"data_subject":"/customer","partition_key":"/customer",
		"classification":{"/email":"personal"},"purpose":"fuzzing","retention":"400d"}`
	fxSchema = `{"schema":{"type":"object","properties":{"customer":{"type":"string"},"email":{"type":"string"},"amount":{"type":"number"},"items":{"type":"array"}},"required":["customer"]}}`
	fxRule   = `{"name":"fz","filters":[{"exact":{"type":"fz.order"}}],"condition":"data.amount > 10","actions":[{"emit":{"type":"fz.big","source":"/fz","data":{"amount":"${data.amount}"}}}]}`
	fxMeter  = `{"slug":"fz-meter","event_type":"fz.order","aggregation":"SUM","value_property":"$.amount","group_by":{"customer":"$.customer"},"customer_property":"$.customer"}`
	fxEvent  = `{"specversion":"1.0","id":"fx-1","source":"/fz","type":"fz.order","data":{"customer":"c-1","email":"a@example.com","amount":12}}`
)

func (s *fuzzStack) fixtures(f *testing.F) {
	f.Helper()
	js := "application/json"
	s.fixture(f, "schema", "POST", "/v1/registry/subjects/"+fxType+"/versions", js, fxSchema, http.StatusOK, "version")
	s.fixture(f, "contract", "PUT", "/v1/contracts/"+fxType, js, fxContract, http.StatusCreated, "")
	s.fixture(f, "event", "POST", "/v1/events", "application/cloudevents+json", fxEvent, http.StatusAccepted, "")
	s.fixture(f, "rule", "POST", "/v1/rules", js, fxRule, http.StatusCreated, "id")
	s.fixture(f, "subscription", "POST", "/v1/subscriptions", js, `{"protocol":"HTTP","types":["fz.order"],"sink":"https://receiver.example/hook"}`, http.StatusCreated, "id")
	s.fixture(f, "nats-subscription", "POST", "/v1/subscriptions", js, `{"protocol":"NATS","types":["fz.order"]}`, http.StatusCreated, "id")
	s.fixture(f, "meter", "POST", "/v1/meters", js, fxMeter, http.StatusCreated, "slug")
	s.fixture(f, "stripe", "PUT", "/v1/billing/stripe", js, `{"secret_key":"sk_test_fuzz","webhook_secret":"whsec_fuzz"}`, http.StatusOK, "")
	s.fixture(f, "product", "POST", "/v1/billing/products", js, `{"name":"fuzz"}`, http.StatusCreated, "id")
	s.fixture(f, "price", "POST", "/v1/billing/prices", js, `{"product":"`+s.fx["product"]+`","meter":"fz-meter","currency":"eur","unit_amount":"0.25"}`, http.StatusCreated, "id")
	s.fixture(f, "customer", "PUT", "/v1/billing/customers/c-1", js, `{"email":"a@example.com","name":"C"}`, http.StatusCreated, "customer")
	s.fixture(f, "run", "POST", "/v1/factory/runs", js, `{"module":"fz","pack0":`+fuzzPack0+`}`, http.StatusCreated, "id")
	s.fx["subject"] = fxType
	s.fx["type"] = fxType
	s.fx["slug"] = "fz-meter"
	s.fx["app"] = s.app.AppID.String()
	s.fx["version"] = "latest"
	s.fx["data_subject"] = "c-1"
}

// fuzzPack0 is a small valid Pack0 (JSON).
const fuzzPack0 = `{"pack0":"1","module":"fz","description":"A fuzzed module.","owner":"fuzz",
	"entities":[{"name":"item","description":"A thing.","key":"id","fields":[{"name":"id","type":"uuid","required":true},{"name":"n","type":"integer"}],"events":["created"]}],
	"roles":[{"name":"admin","permissions":["item:*"]}]}`

// check sends one fuzzed request and asserts what every answer must be.
func (s *fuzzStack) check(t *testing.T, method, target string, h http.Header, body []byte) {
	t.Helper()
	for name, vs := range h {
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(v) {
				return // no HTTP client can send it; net/http's server refuses it before any route
			}
		}
	}
	before := s.rows(t)
	failed := s.failed.Load()
	resp, b := s.roundTrip(t, method, target, h, body)
	if os.Getenv("PROST_FUZZ_LOG") != "" {
		t.Logf("%s %s -> %d %.300s", method, target, resp.StatusCode, b)
	}
	desc := fmt.Sprintf("%s %s %v\nbody (%d bytes): %.2000q\nanswer %d: %.2000s", method, target, h, len(body), body, resp.StatusCode, b)
	if n := s.failed.Load(); n != failed || resp.StatusCode >= 500 {
		t.Fatalf("the gateway logged a failure: %v\n%s", s.lastLog.Load(), desc)
	}
	if resp.StatusCode < 400 {
		return
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	require.Equal(t, "application/problem+json", mt, desc)
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	require.NoError(t, json.Unmarshal(b, &p), desc)
	require.Equal(t, resp.StatusCode, p.Status, desc)
	require.NotEmpty(t, p.Title, desc)
	after := s.rows(t)
	if !maps.Equal(before, after) {
		var diff []string
		for k, n := range after {
			if before[k] != n {
				diff = append(diff, fmt.Sprintf("%s %d -> %d", k, before[k], n))
			}
		}
		slices.Sort(diff)
		t.Fatalf("a refused request (%d) changed tables: %s\n%s", resp.StatusCode, strings.Join(diff, ", "), desc)
	}
}

// Events -------------------------------------------------------------------

// The cases: NUL in each attribute, invalid UTF-8, lone
// surrogates, huge numbers, wrong types, malformed JSON, oversize.
func eventSeeds() []string {
	ev := func(extra string) string {
		return `{"specversion":"1.0","id":"s-1","source":"/s","type":"t"` + extra + `}`
	}
	seeds := []string{
		fxEvent,
		ev(""),
		`{"specversion":"1.0","id":"a\u0000b","source":"/x","type":"t","data":{}}`,
		`{"specversion":"1.0","id":"x","source":"/x\u0000","type":"t"}`,
		`{"specversion":"1.0","id":"x","source":"/x","type":"a\u0000b"}`,
		ev(`,"subject":"a\u0000b"`),
		ev(`,"partitionkey":"a\u0000b"`),
		ev(`,"actorid":"a\u0000b"`),
		ev(`,"data":{"actorid":"a\u0000b"}`),
		ev(`,"data":{"a":["\ud800"]}`),
		ev(`,"subject":"\udc00"`),
		ev(`,"subject":"` + "\xff\xfe" + `"`),
		ev(`,"data":{"n":1e999999}`),
		ev(`,"data":{"n":1.5e-16383}`),
		ev(`,"data":[0e1073741823]`),
		ev(`,"data":{"n":-123456789012345678901234567890123456789012345678901234567890}`),
		ev(`,"ext":1e400`),
		ev(`,"ext":123456789012345678901234567890`),
		ev(`,"time":"0000-01-01T00:00:00Z"`),
		ev(`,"time":"9999-12-31T23:59:59.999999999+14:00"`),
		ev(`,"time":"-0001-01-01T00:00:00Z"`),
		`{"specversion":"1.0","id":7,"source":"/s","type":"t"}`,
		`{"specversion":"1.0","id":"x","source":["/s"],"type":"t"}`,
		ev(`,"data_base64":"!!"`),
		ev(`,"data_base64":"AAEC","datacontenttype":"application/octet-stream"`),
		ev(`,"datacontenttype":"text/plain","data":"plain"`),
		ev(`,"dataschema":"http://example.com/s"`),
		ev(`,"tenantid":"00000000-0000-0000-0000-000000000000"`),
		ev(`,"data":{"tenant_id":"me"}`),
		ev(`,"type":"fz.order","data":{"customer":"c","email":"\u0000"}`),
		`{"specversion":"1.0","id":"x","source":"/fz","type":"fz.order","data":{"email":"a@b"}}`,
		`{"specversion":"1.0","id":"x","source":"/fz","type":"fz.order","data":{"customer":"` + strings.Repeat("c", 300) + `"}}`,
		`{"specversion":"1.0","id":"x","source":"/fz","type":"fz.order","data":{"customer":"c","amount":"12"}}`,
		ev(`,"data":` + strings.Repeat("[", 200) + strings.Repeat("]", 200)),
		ev(`,"type":"` + strings.Repeat("t", 300) + `"`),
		ev(`,"id":"` + strings.Repeat("i", 3000) + `"`),
		ev(`,"data":"` + strings.Repeat("x", fuzzMaxBody) + `"`),
		`{"specversion":"1.0",`,
		`{"specversion":"1.0","id":"x","source":"/s","type":"t"}{}`,
		`null`,
		`[]`,
		``,
	}
	return seeds
}

func FuzzEventsStructured(f *testing.F) {
	for _, s := range few(eventSeeds(), 10) {
		f.Add([]byte(s))
	}
	s := startFuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.ready(t)
		s.check(t, http.MethodPost, "/v1/events", s.tenantHeaders(s.app, "application/cloudevents+json"), body)
	})
}

func FuzzEventsBatch(f *testing.F) {
	seeds := eventSeeds()
	f.Add([]byte(`[` + seeds[0] + `]`))
	f.Add([]byte(`[` + strings.Join(seeds[1:4], ",") + `]`))
	f.Add([]byte(`[` + seeds[1] + `,` + seeds[1] + `]`))
	f.Add([]byte(`[` + strings.Repeat(seeds[1]+",", fuzzMaxBatch) + seeds[1] + `]`))
	f.Add([]byte(`[1,"x",null,{}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{}`))
	for _, s := range few(seeds, 0) {
		f.Add([]byte(`[` + s + `]`))
	}
	s := startFuzzStack(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.ready(t)
		s.check(t, http.MethodPost, "/v1/events", s.tenantHeaders(s.app, "application/cloudevents-batch+json"), body)
	})
}

// FuzzEventsBinary fuzzes binary mode: the attributes in ce- headers
// (percent-encoded, as the CloudEvents HTTP binding says), more headers as
// "name: value" lines, and the data in the body.
func FuzzEventsBinary(f *testing.F) {
	n := 0
	add := func(ct, id, source, typ, more, body string) {
		if n++; !fuzzShort() || n <= 10 {
			f.Add(ct, id, source, typ, more, []byte(body))
		}
	}
	add("application/json", "b-1", "/s", "t", "", `{}`)
	add("application/json", "b-1", "/fz", fxType, "", `{"customer":"c-1","email":"a@example.com","amount":3}`)
	add("application/json", "a%00b", "/s", "t", "", `{}`)
	add("application/json", "b", "/s%00", "t", "", `{}`)
	add("application/json", "b", "/s", "a%00b", "", `{}`)
	add("application/json", "b", "/s", "t", "ce-subject: a%00b", `{}`)
	add("application/json", "b", "/s", "t", "ce-partitionkey: a%00b", `{}`)
	add("application/json", "b", "/s", "t", "ce-actorid: a%00b", `{}`)
	add("application/json", "b", "/s", "t", "ce-subject: %FF%FE", `{}`)
	add("application/json", "b", "/s", "t", "ce-subject: %ED%A0%80", `{}`)
	add("application/json", "b", "/s", "t", "ce-subject: %G1", `{}`)
	add("application/json", "b", "/s", "t", "ce-time: 0000-01-01T00:00:00Z", `{}`)
	add("application/json", "b", "/s", "t", "ce-time: 9999-12-31T23:59:59Z", `{}`)
	add("application/json", "b", "/s", "t", "ce-ext: 1e400", `{}`)
	add("application/json", "b", "/s", "t", "ce-dataschema: /relative", `{}`)
	add("application/json", "b", "/s", "t", "ce-tenantid: me", `{}`)
	add("application/json", "b", "/s", "t", "ce-specversion: 0.3", `{}`)
	add("application/json", "b", "/s", "t", "", `{"a":"\u0000"}`)
	add("application/json", "b", "/s", "t", "", `{"a":"\ud800"}`)
	add("application/json", "b", "/s", "t", "", `{"n":1e999999}`)
	add("application/json", "b", "/s", "t", "", `{nope`)
	add("application/json", "b", "/s", "t", "", "\xff")
	add("text/plain", "b", "/s", "t", "", "a\x00b")
	add("application/octet-stream", "b", "/s", "t", "", "\x00\x01\xff")
	add("application/json; charset=latin1", "b", "/s", "t", "", `{}`)
	add("", "b", "/s", "t", "", ``)
	add("application/json", "", "", "", "", `{}`)
	add("application/json", "b", "/s", "t", "", strings.Repeat("x", fuzzMaxBody+1))
	s := startFuzzStack(f)
	f.Fuzz(func(t *testing.T, ct, id, source, typ, more string, body []byte) {
		s.ready(t)
		h := s.tenantHeaders(s.app, ct)
		h.Set("Ce-Specversion", "1.0")
		for k, v := range map[string]string{"Ce-Id": id, "Ce-Source": source, "Ce-Type": typ} {
			if v != "" {
				h.Set(k, v)
			}
		}
		addHeaderLines(h, more)
		s.check(t, http.MethodPost, "/v1/events", h, body)
	})
}

// addHeaderLines adds "name: value" lines to h (credentials excepted: the
// targets fuzz what an App sends, not who it is).
func addHeaderLines(h http.Header, lines string) {
	for _, line := range strings.Split(lines, "\n") {
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.HasPrefix(strings.ToLower(name), "x-prost-app-") || strings.EqualFold(name, "Authorization") {
			continue
		}
		h.Add(name, strings.TrimSpace(value))
	}
}

// Routes --------------------------------------------------------------------

type fuzzAuth int

const (
	asTenant fuzzAuth = iota
	asAdmin
	asNobody
)

// fuzzRoute is a route a target drives: its pattern as in the OpenAPI
// document and the Content-Type of its body.
type fuzzRoute struct {
	method, pattern string
	auth            fuzzAuth
	ct              string
	// variant tells two entries of one route apart (another media type,
	// a signed webhook).
	variant string
	// sign signs the body as Stripe would (the fixture's webhook secret),
	// so the fuzzer reaches past the signature.
	sign bool
	// accept is the Accept header sent.
	accept string
}

func (r fuzzRoute) name() string {
	if r.variant != "" {
		return r.method + " " + r.pattern + " (" + r.variant + ")"
	}
	return r.method + " " + r.pattern
}

// fuzzTargets are the routes of each route target, by the target's name.
var fuzzTargets = map[string][]fuzzRoute{}

// fuzzSeed is one seed of a route target.
type fuzzSeed struct{ route, params, query, headers, body string }

// fuzzRoutes is a target over routes: the fuzzer chooses the route (by
// name; any other name picks one by its hash), the path parameters
// ("\n"-separated; empty takes the fixture's), the query ("k=v&..."; each
// key and value is sent percent-encoded, so any byte reaches the server),
// headers ("name: value" lines) and the body. Each route gets an empty
// seed besides those given.
func fuzzRoutes(f *testing.F, target string, seeds []fuzzSeed) {
	f.Helper()
	routes := fuzzTargets[target]
	require.NotEmpty(f, routes, "fuzzTargets[%q]", target)
	for _, r := range routes {
		f.Add(r.name(), "", "", "", []byte(nil))
	}
	for _, sd := range few(seeds, 0) {
		f.Add(sd.route, sd.params, sd.query, sd.headers, []byte(sd.body))
	}
	s := startFuzzStack(f)
	f.Fuzz(func(t *testing.T, route, params, query, headers string, body []byte) {
		s.ready(t)
		r := pickRoute(routes, route)
		h := http.Header{}
		switch r.auth {
		case asTenant:
			h = s.tenantHeaders(s.app, "")
		case asAdmin:
			h = s.adminHeaders("")
		}
		if r.ct != "" {
			h.Set("Content-Type", r.ct)
		}
		if r.accept != "" {
			h.Set("Accept", r.accept)
		}
		addHeaderLines(h, headers)
		if r.sign {
			h.Set("Stripe-Signature", stripeSignature(body, "whsec_fuzz"))
		}
		s.check(t, r.method, s.path(r.pattern, params)+encodeQuery(query), h, body)
	})
}

// stripeSignature signs payload as Stripe signs a webhook.
func stripeSignature(payload []byte, secret string) string {
	ts := time.Now().Unix()
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.", ts)
	m.Write(payload)
	return fmt.Sprintf("t=%d,v1=%s", ts, hex.EncodeToString(m.Sum(nil)))
}

func pickRoute(routes []fuzzRoute, name string) fuzzRoute {
	for _, r := range routes {
		if r.name() == name {
			return r
		}
	}
	hs := fnv.New32a()
	_, _ = hs.Write([]byte(name))
	return routes[int(hs.Sum32()%uint32(len(routes)))]
}

// path fills the pattern's parameters from params, or the fixtures.
func (s *fuzzStack) path(pattern, params string) string {
	values := strings.Split(params, "\n")
	i := 0
	var b strings.Builder
	for {
		open := strings.IndexByte(pattern, '{')
		if open < 0 {
			b.WriteString(pattern)
			return b.String()
		}
		end := strings.IndexByte(pattern[open:], '}') + open
		b.WriteString(pattern[:open])
		name := pattern[open+1 : end]
		v := ""
		if i < len(values) {
			v = values[i]
		}
		i++
		if v == "" {
			v = s.fx[name]
			if name == "id" {
				v = s.fx[fixtureOf(pattern)]
			}
		}
		b.WriteString(url.PathEscape(v))
		pattern = pattern[end+1:]
	}
}

// fixtureOf names the fixture an {id} of pattern stands for.
func fixtureOf(pattern string) string {
	for _, p := range [][2]string{{"/v1/rules/", "rule"}, {"/v1/subscriptions/", "subscription"}, {"/v1/billing/products/", "product"},
		{"/v1/billing/prices/", "price"}, {"/v1/billing/invoices/", "invoice"}, {"/v1/factory/runs/", "run"},
		{"/admin/v1/apps/", "app"}, {"/v1/data-subjects/", "data_subject"}, {"/dlq/", "dlq"}} {
		if strings.Contains(pattern, p[0]) {
			return p[1]
		}
	}
	return ""
}

// encodeQuery sends "k=v&..." with each key and value percent-encoded.
func encodeQuery(q string) string {
	if q == "" {
		return ""
	}
	var parts []string
	for _, kv := range strings.Split(q, "&") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
		} else {
			parts = append(parts, url.QueryEscape(k))
		}
	}
	return "?" + strings.Join(parts, "&")
}

// The route targets -----------------------------------------------------------

const (
	ctJSON = "application/json"
	sse    = "text/event-stream"
)

func init() {
	fuzzTargets["FuzzEventsRead"] = []fuzzRoute{
		{method: "GET", pattern: "/v1/events"},
		{method: "GET", pattern: "/v1/events/lookup"},
		{method: "GET", pattern: "/v1/events/stream", accept: sse},
		{method: "GET", pattern: "/v1/audit"},
		{method: "GET", pattern: "/v1/audit/verify"},
	}
	fuzzTargets["FuzzPrivacy"] = []fuzzRoute{
		{method: "DELETE", pattern: "/v1/data-subjects/{id}"},
		{method: "GET", pattern: "/v1/data-subjects/{id}/export"},
		{method: "GET", pattern: "/v1/privacy/shredded"},
	}
	fuzzTargets["FuzzRegistry"] = []fuzzRoute{
		{method: "POST", pattern: "/v1/registry/subjects/{subject}/versions", ct: ctJSON},
		{method: "POST", pattern: "/v1/registry/subjects/{subject}/versions", ct: "application/vnd.schemaregistry.v1+json", variant: "confluent"},
		{method: "POST", pattern: "/v1/registry/compatibility/subjects/{subject}/versions", ct: ctJSON},
		{method: "POST", pattern: "/v1/registry/compatibility/subjects/{subject}/versions/{version}", ct: ctJSON},
		{method: "GET", pattern: "/v1/registry/subjects"},
		{method: "GET", pattern: "/v1/registry/subjects/{subject}/versions"},
		{method: "GET", pattern: "/v1/registry/subjects/{subject}/versions/{version}"},
		{method: "GET", pattern: "/v1/registry/subjects/{subject}/versions/{version}/schema"},
		{method: "DELETE", pattern: "/v1/registry/subjects/{subject}"},
		{method: "DELETE", pattern: "/v1/registry/subjects/{subject}/versions/{version}"},
		{method: "GET", pattern: "/v1/registry/config"},
		{method: "PUT", pattern: "/v1/registry/config", ct: ctJSON},
		{method: "GET", pattern: "/v1/registry/config/{subject}"},
		{method: "PUT", pattern: "/v1/registry/config/{subject}", ct: ctJSON},
		{method: "DELETE", pattern: "/v1/registry/config/{subject}"},
	}
	fuzzTargets["FuzzRules"] = []fuzzRoute{
		{method: "POST", pattern: "/v1/rules", ct: ctJSON},
		{method: "PUT", pattern: "/v1/rules/{id}", ct: ctJSON},
		{method: "GET", pattern: "/v1/rules"},
		{method: "GET", pattern: "/v1/rules/{id}"},
		{method: "GET", pattern: "/v1/rules/{id}/versions"},
		{method: "GET", pattern: "/v1/rules/{id}/versions/{version}"},
		{method: "GET", pattern: "/v1/decisions"},
	}
	fuzzTargets["FuzzContracts"] = []fuzzRoute{
		{method: "PUT", pattern: "/v1/contracts/{type}", ct: ctJSON},
		{method: "PUT", pattern: "/v1/contracts/{type}", ct: "application/yaml", variant: "yaml"},
		{method: "GET", pattern: "/v1/contracts"},
		{method: "GET", pattern: "/v1/contracts/{type}"},
	}
	fuzzTargets["FuzzSubscriptions"] = []fuzzRoute{
		{method: "POST", pattern: "/v1/subscriptions", ct: ctJSON},
		{method: "PATCH", pattern: "/v1/subscriptions/{id}", ct: ctJSON},
		{method: "PATCH", pattern: "/v1/subscriptions/{id}", ct: "application/merge-patch+json", variant: "merge-patch"},
		{method: "POST", pattern: "/v1/subscriptions/{id}/recover", ct: ctJSON},
		{method: "GET", pattern: "/v1/subscriptions"},
		{method: "GET", pattern: "/v1/subscriptions/{id}"},
		{method: "GET", pattern: "/v1/subscriptions/{id}/attempts"},
		{method: "GET", pattern: "/v1/subscriptions/{id}/credentials"},
	}
	fuzzTargets["FuzzAdmin"] = []fuzzRoute{
		{method: "POST", pattern: "/admin/v1/apps", auth: asAdmin, ct: ctJSON},
		{method: "GET", pattern: "/admin/v1/apps", auth: asAdmin},
		{method: "GET", pattern: "/admin/v1/apps/{id}", auth: asAdmin},
		{method: "GET", pattern: "/admin/v1/audit/verify", auth: asAdmin},
		{method: "GET", pattern: "/admin/v1/console/sessions", auth: asAdmin},
		{method: "POST", pattern: "/admin/v1/console/sessions/revoke", auth: asAdmin, ct: ctJSON},
		{method: "GET", pattern: "/admin/v1/dlq", auth: asAdmin},
		{method: "GET", pattern: "/admin/v1/dlq/{id}", auth: asAdmin},
		{method: "POST", pattern: "/admin/v1/dlq/replay", auth: asAdmin, ct: ctJSON},
		{method: "POST", pattern: "/admin/v1/dlq/purge", auth: asAdmin, ct: ctJSON},
		{method: "GET", pattern: "/admin/v1/jobs", auth: asAdmin},
		{method: "GET", pattern: "/admin/v1/backlog", auth: asAdmin},
		{method: "POST", pattern: "/admin/v1/streams/rebuild", auth: asAdmin, ct: ctJSON},
		{method: "GET", pattern: "/admin/v1/streams/rebuilds/{id}", auth: asAdmin},
		{method: "GET", pattern: "/v1/dlq"},
		{method: "GET", pattern: "/v1/dlq/{id}"},
		{method: "POST", pattern: "/v1/dlq/replay", ct: ctJSON},
		{method: "POST", pattern: "/console/api/session", auth: asNobody, ct: ctJSON},
	}
	fuzzTargets["FuzzBilling"] = []fuzzRoute{
		{method: "POST", pattern: "/v1/meters", ct: ctJSON},
		{method: "GET", pattern: "/v1/meters"},
		{method: "GET", pattern: "/v1/meters/{slug}"},
		{method: "PATCH", pattern: "/v1/meters/{slug}", ct: ctJSON},
		{method: "GET", pattern: "/v1/meters/{slug}/usage"},
		{method: "GET", pattern: "/v1/meters/{slug}/usage", accept: "text/csv", variant: "csv"},
		{method: "PUT", pattern: "/v1/billing/stripe", ct: ctJSON},
		{method: "GET", pattern: "/v1/billing/stripe"},
		{method: "PUT", pattern: "/v1/billing/customers/{customer}", ct: ctJSON},
		{method: "GET", pattern: "/v1/billing/customers"},
		{method: "GET", pattern: "/v1/billing/customers/{customer}"},
		{method: "POST", pattern: "/v1/billing/products", ct: ctJSON},
		{method: "GET", pattern: "/v1/billing/products"},
		{method: "GET", pattern: "/v1/billing/products/{id}"},
		{method: "POST", pattern: "/v1/billing/prices", ct: ctJSON},
		{method: "GET", pattern: "/v1/billing/prices"},
		{method: "GET", pattern: "/v1/billing/prices/{id}"},
		{method: "POST", pattern: "/v1/billing/invoices", ct: ctJSON},
		{method: "GET", pattern: "/v1/billing/invoices"},
		{method: "GET", pattern: "/v1/billing/invoices/{id}"},
		{method: "GET", pattern: "/v1/billing/reconciliation"},
		{method: "POST", pattern: "/v1/billing/stripe/webhooks/{app}", auth: asNobody, ct: ctJSON},
		{method: "POST", pattern: "/v1/billing/stripe/webhooks/{app}", auth: asNobody, ct: ctJSON, sign: true, variant: "signed"},
	}
	fuzzTargets["FuzzFactory"] = []fuzzRoute{
		{method: "POST", pattern: "/v1/factory/runs", ct: ctJSON},
		{method: "GET", pattern: "/v1/factory/runs"},
		{method: "GET", pattern: "/v1/factory/runs/{id}"},
		{method: "POST", pattern: "/v1/factory/runs/{id}/approve", ct: ctJSON},
		{method: "POST", pattern: "/v1/factory/runs/{id}/reject", ct: ctJSON},
		{method: "POST", pattern: "/v1/factory/runs/{id}/rerun", ct: ctJSON},
		{method: "GET", pattern: "/v1/factory/runs/{id}/logs"},
		{method: "GET", pattern: "/v1/factory/runs/{id}/findings"},
		{method: "GET", pattern: "/v1/factory/runs/{id}/attempts"},
		{method: "GET", pattern: "/v1/factory/runs/{id}/artifacts"},
		{method: "GET", pattern: "/v1/factory/runs/{id}/artifact"},
		{method: "GET", pattern: "/v1/factory/runs/{id}/verify"},
		{method: "POST", pattern: "/v1/factory/pack0/check", ct: ctJSON},
	}
}

// Values every target's seeds try somewhere: the cases.
var (
	nulText    = "a\x00b"
	badUTF8    = "\xff\xfe"
	hugeInt    = "123456789012345678901234567890"
	hugeNumber = "1e400"
	// Valid JSON numbers over what jsonb (Postgres numeric) holds.
	overNumeric = []string{"1e999999", "1e-999999", "1.5e-16383", "10e131071", "0e1073741823"}
	longText    = strings.Repeat("x", 5000)
	badTimes    = []string{"0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-01-01T00:00:00+23:59", "-1", "now"}
	jsonOddites = []string{`{`, `[]`, `null`, `"x"`, `1`, `{"a":1}{}`, `{"a":"\u0000"}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `{"a":1e400}`}
)

// querySeeds tries each query parameter with the values.
func querySeeds(route string, params ...string) []fuzzSeed {
	var out []fuzzSeed
	for _, p := range params {
		for _, v := range append([]string{nulText, badUTF8, hugeInt, "-1", "0", longText, "%", "'"}, badTimes...) {
			out = append(out, fuzzSeed{route: route, query: p + "=" + v})
		}
	}
	return out
}

// bodySeeds tries a route with each body, and with the malformed ones.
func bodySeeds(route string, bodies ...string) []fuzzSeed {
	var out []fuzzSeed
	for _, b := range append(bodies, jsonOddites...) {
		out = append(out, fuzzSeed{route: route, body: b})
	}
	return out
}

// numberSeeds tries a route with each body format (its %s replaced) with
// each number jsonb cannot hold.
func numberSeeds(route string, formats ...string) []fuzzSeed {
	var out []fuzzSeed
	for _, f := range formats {
		for _, n := range overNumeric {
			out = append(out, fuzzSeed{route: route, body: strings.ReplaceAll(f, "%s", n)})
		}
	}
	return out
}

// paramSeeds tries a route's path parameter with the values.
func paramSeeds(route string) []fuzzSeed {
	var out []fuzzSeed
	for _, v := range []string{nulText, badUTF8, hugeInt, "-1", "0", longText, "%", "..", "00000000-0000-0000-0000-000000000000"} {
		out = append(out, fuzzSeed{route: route, params: v + "\n" + v})
	}
	return out
}

func joinSeeds(sets ...[]fuzzSeed) []fuzzSeed {
	var out []fuzzSeed
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

func FuzzEventsRead(f *testing.F) {
	fuzzRoutes(f, "FuzzEventsRead", joinSeeds(
		querySeeds("GET /v1/events", "type", "source", "since", "limit", "cursor"),
		querySeeds("GET /v1/events/lookup", "source", "id"),
		querySeeds("GET /v1/events/stream", "types", "filter", "last_event_id"),
		querySeeds("GET /v1/audit", "limit", "cursor", "event_id", "source"),
		[]fuzzSeed{
			{route: "GET /v1/events/lookup", query: "source=/fz&id=fx-1"},
			{route: "GET /v1/events/stream", query: `filter={"exact":{"type":"fz.order"}}`},
			{route: "GET /v1/events/stream", query: `filter={"sql":"type = 'a' AND"}`},
			{route: "GET /v1/events/stream", headers: "Last-Event-ID: " + hugeInt},
			{route: "GET /v1/events/stream", headers: "Last-Event-ID: -1"},
			{route: "GET /v1/events", query: "cursor=eyJ4IjoxfQ"},
		},
	))
}

func FuzzPrivacy(f *testing.F) {
	fuzzRoutes(f, "FuzzPrivacy", joinSeeds(
		paramSeeds("DELETE /v1/data-subjects/{id}"),
		paramSeeds("GET /v1/data-subjects/{id}/export"),
		querySeeds("GET /v1/privacy/shredded", "reason", "since", "limit", "cursor"),
		[]fuzzSeed{
			{route: "DELETE /v1/data-subjects/{id}", params: "c-2", headers: "X-Prost-Actor: " + longText},
			{route: "DELETE /v1/data-subjects/{id}", params: "c-2", headers: "X-Prost-Actor: a\x01b"},
		},
	))
}

func FuzzRegistry(f *testing.F) {
	schema := func(s string) string { return `{"schema":` + s + `}` }
	fuzzRoutes(f, "FuzzRegistry", joinSeeds(
		bodySeeds("POST /v1/registry/subjects/{subject}/versions", fxSchema,
			schema(`{"type":"object","properties":{"customer":{"type":"string"}}}`),
			schema(`"{\"type\":\"string\"}"`), schema(`"{"`), schema(`{"$ref":"#/definitions/x"}`),
			schema(`{"$ref":"http://example.com/s.json"}`), schema(`{"type":"object","description":"a\u0000b"}`),
			schema(`"{\"type\":\"object\",\"title\":\"a\\u0000b\"}"`), schema(`{"maximum":`+hugeNumber+`}`),
			schema(`{"minLength":`+hugeInt+`}`), schema(`{"pattern":"(a"}`), schema(`{"pattern":"(a+)+$"}`),
			schema(`{"type":"integer","multipleOf":0}`), schema(`true`), schema(`false`), schema(`{}`),
			schema(`{"type":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`),
			`{"schema":{},"schemaType":"AVRO"}`, `{"schema":{},"references":[{"name":"x","subject":"y","version":1}]}`),
		numberSeeds("POST /v1/registry/subjects/{subject}/versions", `{"schema":{"type":"object","maximum":%s}}`, `{"schema":"{\"maximum\":%s}"}`),
		numberSeeds("PUT /v1/registry/config", `{"compatibility":"FULL","n":%s}`),
		bodySeeds("POST /v1/registry/compatibility/subjects/{subject}/versions", fxSchema, schema(`{"type":"string"}`)),
		bodySeeds("POST /v1/registry/compatibility/subjects/{subject}/versions/{version}", fxSchema),
		bodySeeds("PUT /v1/registry/config", `{"compatibility":"FULL"}`, `{"compatibility":"BACKWARD\u0000"}`,
			`{"unregistered_types":"reject"}`, `{"policy":"x"}`, `{"compatibility":1}`),
		bodySeeds("PUT /v1/registry/config/{subject}", `{"compatibility":"NONE"}`, `{"compatibilityLevel":"FULL"}`),
		paramSeeds("GET /v1/registry/subjects/{subject}/versions/{version}"),
		paramSeeds("POST /v1/registry/compatibility/subjects/{subject}/versions/{version}"),
		paramSeeds("POST /v1/registry/subjects/{subject}/versions"),
		[]fuzzSeed{
			{route: "GET /v1/registry/subjects/{subject}/versions/{version}", params: fxType + "\n" + hugeInt},
			{route: "GET /v1/registry/subjects/{subject}/versions/{version}", params: fxType + "\n-1"},
			{route: "GET /v1/registry/subjects/{subject}/versions/{version}", params: fxType + "\n2147483648"},
			{route: "DELETE /v1/registry/subjects/{subject}", params: "gone", query: "permanent=true"},
			{route: "DELETE /v1/registry/subjects/{subject}/versions/{version}", params: "gone\n1", query: "permanent=" + nulText},
			{route: "POST /v1/registry/subjects/{subject}/versions", params: longText, body: fxSchema},
		},
	))
}

func FuzzRules(f *testing.F) {
	fuzzRoutes(f, "FuzzRules", joinSeeds(
		bodySeeds("POST /v1/rules", fxRule,
			`{"name":"a\u0000b","filters":[],"actions":[{"emit":{"type":"x","source":"/r"}}]}`,
			`{"name":"r","filters":[{"exact":{"type":"\ud800"}}],"actions":[{"emit":{"type":"x","source":"/r"}}]}`,
			`{"name":"r","filters":[{"sql":"type = 'a' AND"}],"actions":[{"emit":{"type":"x","source":"/r"}}]}`,
			`{"name":"r","filters":[{"sql":"amount > `+hugeInt+`"}],"actions":[{"emit":{"type":"x","source":"/r"}}]}`,
			`{"name":"r","condition":"data.amount > `+hugeNumber+`","actions":[{"emit":{"type":"x","source":"/r"}}]}`,
			`{"name":"r","condition":"`+strings.Repeat("(", 500)+`","actions":[{"emit":{"type":"x","source":"/r"}}]}`,
			`{"name":"r","actions":[{"webhook":{"url":"http://127.0.0.1/x"}}]}`,
			`{"name":"r","actions":[{"webhook":{"url":"https://receiver.example/x"}}]}`,
			`{"name":"r","actions":[{"schedule":{"in":"`+hugeInt+`h","emit":{"type":"x","source":"/r"}}}]}`,
			`{"name":"r","actions":[{"emit":{"type":"x","source":"/r","data":{"a":"${data.x}"}}}]}`,
			`{"name":7,"actions":[]}`, `{"name":"r","actions":{}}`),
		numberSeeds("POST /v1/rules", `{"name":"r","actions":[{"emit":{"type":"x","source":"/r","data":{"n":%s}}}]}`,
			`{"name":"r","filters":[{"exact":{"type":"a"}}],"condition":"data.n > 1","actions":[{"emit":{"type":"x","source":"/r"}}],"n":%s}`),
		bodySeeds("PUT /v1/rules/{id}", fxRule),
		paramSeeds("PUT /v1/rules/{id}"),
		paramSeeds("GET /v1/rules/{id}/versions/{version}"),
		querySeeds("GET /v1/rules", "limit", "cursor"),
		querySeeds("GET /v1/decisions", "rule", "event_id", "limit", "cursor"),
	))
}

func FuzzContracts(f *testing.F) {
	fuzzRoutes(f, "FuzzContracts", joinSeeds(
		bodySeeds("PUT /v1/contracts/{type}", fxContract, `{"type":"fz.order","level":"light","description":"a\u0000b"}`,
			`{"level":"strong"}`, `{"classification":{"/x":"secret"}}`, `{"data_subject":"not a pointer"}`,
			`{"retry":{"max_attempts":`+hugeInt+`}}`, `{"retry":{"backoff":["`+hugeInt+`h"]}}`, `{"retention":"`+hugeInt+`y"}`),
		numberSeeds("PUT /v1/contracts/{type}", `{"owner":"o","description":"d","level":"light","x-n":%s}`, `{"retry":{"max_attempts":%s}}`),
		[]fuzzSeed{
			{route: "PUT /v1/contracts/{type} (yaml)", body: "type: fz.order\nowner: x\nlevel: light\ndescription: d\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "a: &a [*a]\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "a: \"\\0\"\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "retry: {max_attempts: " + hugeInt + "}\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "level: [light\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "- 1\n- 2\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "? [a, b]\n: c\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "owner: o\ndescription: d\nlevel: light\nx-n: 1e999999\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "owner: o\ndescription: d\nlevel: light\nx-n: .inf\nx-m: .nan\n"},
			{route: "PUT /v1/contracts/{type} (yaml)", body: "owner: o\ndescription: d\nlevel: light\nx-n: " + strings.Repeat("9", 400) + "\n"},
		},
		paramSeeds("PUT /v1/contracts/{type}"),
		paramSeeds("GET /v1/contracts/{type}"),
		querySeeds("GET /v1/contracts", "limit", "cursor"),
	))
}

func FuzzSubscriptions(f *testing.F) {
	fuzzRoutes(f, "FuzzSubscriptions", joinSeeds(
		bodySeeds("POST /v1/subscriptions", `{"protocol":"HTTP","types":["fz.order"],"sink":"https://receiver.example/x"}`,
			`{"protocol":"NATS","types":["fz.order"]}`, `{"protocol":"HTTP","sink":"http://127.0.0.1:1/x"}`,
			`{"protocol":"HTTP","sink":"https://r.example/x","filters":[{"sql":"type = 'a' AND"}]}`,
			`{"protocol":"HTTP","sink":"https://r.example/x","filters":[{"prefix":{"type":"\u0000"}}]}`,
			`{"protocol":"HTTP","sink":"https://r.example/x","config":{"retry_schedule":["`+hugeInt+`h"]}}`,
			`{"protocol":"HTTP","sink":"https://r.example/x","protocolsettings":{"secret":"`+longText+`"}}`,
			`{"id":"x","source":"/y","protocol":"MQTT"}`),
		numberSeeds("POST /v1/subscriptions", `{"protocol":"HTTP","sink":"https://r.example/x","filters":[{"exact":{"n":%s}}]}`,
			`{"protocol":"HTTP","sink":"https://r.example/x","filters":[{"sql":"n = %s"}]}`),
		bodySeeds("PATCH /v1/subscriptions/{id}", `{"types":["a"]}`, `{"status":"disabled"}`, `{"sink":"ftp://x"}`),
		bodySeeds("PATCH /v1/subscriptions/{id} (merge-patch)", `{"types":null}`, `{"config":{"retry_schedule":[]}}`),
		bodySeeds("POST /v1/subscriptions/{id}/recover", `{"since":"2024-01-01T00:00:00Z"}`, `{"since":"0000-01-01T00:00:00Z"}`,
			`{"since":"9999-12-31T23:59:59Z"}`, `{"since":"2024-01-01T00:00:00+23:59"}`),
		paramSeeds("GET /v1/subscriptions/{id}"),
		querySeeds("GET /v1/subscriptions/{id}/attempts", "limit", "cursor"),
		querySeeds("GET /v1/subscriptions", "limit", "cursor"),
	))
}

func FuzzAdmin(f *testing.F) {
	fuzzRoutes(f, "FuzzAdmin", joinSeeds(
		bodySeeds("POST /admin/v1/apps", `{"name":"a"}`, `{"name":"a\u0000b"}`, `{"name":"`+longText+`"}`, `{"name":""}`),
		bodySeeds("POST /admin/v1/console/sessions/revoke", `{"all":true}`, `{"session_id":"x"}`, `{"app_id":"`+nulText+`"}`),
		bodySeeds("POST /admin/v1/dlq/replay", `{"ids":[1]}`, `{"ids":[`+hugeInt+`]}`, `{"ids":[-1]}`, `{"all":true,"dry_run":true}`,
			`{"consumer":"nope"}`, `{"since":"0000-01-01T00:00:00Z","all":true}`, `{"app_id":"x","all":true}`),
		bodySeeds("POST /admin/v1/dlq/purge", `{"ids":[1]}`, `{"all":true,"dry_run":true}`, `{"type":"a\u0000b","all":true}`),
		bodySeeds("POST /v1/dlq/replay", `{"ids":[1]}`, `{"all":true}`),
		bodySeeds("POST /admin/v1/streams/rebuild", `{"since":"0000-01-01T00:00:00Z"}`, `{"since":"a\u0000b"}`, `{"since":1}`, `{"nope":true}`),
		bodySeeds("POST /console/api/session", `{"kind":"tenant","api_key":"x","api_secret":"y"}`, `{"kind":"operator","admin_token":"nope"}`,
			`{"kind":"nope"}`, `{"kind":"tenant","api_key":"`+longText+`"}`),
		querySeeds("GET /admin/v1/dlq", "consumer", "type", "state", "app_id", "since", "limit", "cursor"),
		querySeeds("GET /v1/dlq", "consumer", "type", "state", "since", "limit", "cursor"),
		querySeeds("GET /admin/v1/jobs", "state", "kind", "limit", "cursor"),
		querySeeds("GET /admin/v1/apps", "limit", "cursor"),
		querySeeds("GET /admin/v1/audit/verify", "app_id"),
		querySeeds("GET /admin/v1/console/sessions", "app_id"),
		paramSeeds("GET /admin/v1/dlq/{id}"),
		paramSeeds("GET /v1/dlq/{id}"),
		paramSeeds("GET /admin/v1/apps/{id}"),
		paramSeeds("GET /admin/v1/streams/rebuilds/{id}"),
	))
}

func FuzzBilling(f *testing.F) {
	fuzzRoutes(f, "FuzzBilling", joinSeeds(
		bodySeeds("POST /v1/meters", fxMeter, `{"slug":"m2","event_type":"fz.order","aggregation":"COUNT"}`,
			`{"slug":"m3","event_type":"fz.order","aggregation":"SUM","value_property":"$.a[`+hugeInt+`]"}`,
			`{"slug":"m4","event_type":"fz.order","aggregation":"SUM","value_property":"$..a"}`,
			`{"slug":"M","event_type":"","aggregation":"sum"}`),
		numberSeeds("POST /v1/meters", `{"slug":"mn","event_type":"fz.order","aggregation":"SUM","value_property":"$.amount","group_by":{"a":%s}}`),
		bodySeeds("PATCH /v1/meters/{slug}", `{"description":"d"}`, `{"description":"a\u0000b"}`, `{"slug":"x"}`),
		bodySeeds("PUT /v1/billing/stripe", `{"secret_key":"sk_test_fuzz","webhook_secret":"whsec_fuzz"}`, `{"secret_key":"nope"}`,
			`{"secret_key":"sk_live_x","mode":"test"}`),
		bodySeeds("PUT /v1/billing/customers/{customer}", `{"email":"a@example.com"}`, `{"stripe_customer_id":"cus_x"}`, `{"name":"`+longText+`"}`),
		bodySeeds("POST /v1/billing/products", `{"name":"p"}`, `{"name":""}`),
		bodySeeds("POST /v1/billing/prices", `{"product":"00000000-0000-0000-0000-000000000000","meter":"fz-meter","currency":"eur","unit_amount":"1"}`,
			`{"product":"x","meter":"fz-meter","currency":"eur","unit_amount":`+hugeNumber+`}`,
			`{"product":"x","meter":"fz-meter","currency":"eur","unit_amount":"`+hugeInt+hugeInt+`"}`,
			`{"product":"x","meter":"fz-meter","currency":"eur","unit_amount":"-1"}`,
			`{"product":"x","meter":"fz-meter","currency":"eur","unit_amount":"0.0000000000000000000000001"}`),
		bodySeeds("POST /v1/billing/invoices", `{"customer":"c-1","period":"2026-11"}`, `{"customer":"c-1","period":"0000-01"}`,
			`{"customer":"c-1","period":"9999-12","tz":"Mars/Olympus"}`, `{"customer":"c-1","period":"2026-11","currency":"`+nulText+`"}`),
		bodySeeds("POST /v1/billing/stripe/webhooks/{app} (signed)", `{"id":"evt_1","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}`,
			`{"id":"evt_2","object":"event","type":"customer.created","created":`+hugeInt+`,"data":{"object":{}}}`,
			`{"id":"evt_\u0000","object":"event","type":"x","data":{"object":{}}}`),
		[]fuzzSeed{
			{route: "POST /v1/billing/stripe/webhooks/{app}", headers: "Stripe-Signature: t=1,v1=00", body: `{}`},
			{route: "POST /v1/billing/stripe/webhooks/{app}", headers: "Stripe-Signature: t=" + hugeInt + ",v1=00", body: `{}`},
		},
		querySeeds("GET /v1/meters/{slug}/usage", "from", "to", "window", "tz", "group_by", "customer"),
		[]fuzzSeed{
			{route: "GET /v1/meters/{slug}/usage (csv)", query: "window=DAY&group_by=customer"},
			{route: "GET /v1/meters/{slug}/usage", query: "from=0001-01-01T00:00:01Z&to=9999-12-31T23:59:59Z&window=MINUTE"},
			{route: "GET /v1/meters/{slug}/usage", query: "from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&window=HOUR&tz=Pacific/Kiritimati"},
		},
		querySeeds("GET /v1/billing/invoices", "customer", "period", "limit", "cursor"),
		querySeeds("GET /v1/billing/reconciliation", "period", "tz", "customer"),
		querySeeds("GET /v1/meters", "limit", "cursor"),
		paramSeeds("GET /v1/meters/{slug}"),
		paramSeeds("PUT /v1/billing/customers/{customer}"),
	))
}

func FuzzFactory(f *testing.F) {
	fuzzRoutes(f, "FuzzFactory", joinSeeds(
		bodySeeds("POST /v1/factory/runs", `{"module":"fz","pack0":`+fuzzPack0+`}`, `{"module":"fz"}`, `{"module":"a\u0000b"}`,
			`{"module":"fz","dry_run":true,"state":"PRESSAO","deploy_target":"compose"}`, `{"module":"`+longText+`"}`,
			`{"module":"fz","pack0":{"pack0":"1","module":"fz","entities":[{"name":"x","fields":[{"name":"n","type":"integer","maximum":`+hugeNumber+`}]}]}}`),
		numberSeeds("POST /v1/factory/runs", `{"module":"fz","pack0":{"pack0":"1","module":"fz","n":%s}}`,
			`{"module":"fz","pack0":{"pack0":"1","module":"fz","entities":[{"name":"x","fields":[{"name":"n","type":"integer","maximum":%s}]}]}}`),
		bodySeeds("POST /v1/factory/pack0/check", `{"pack0":`+fuzzPack0+`}`, `{"pack0":{}}`, `{"pack0":`+fuzzPack0+`,"state":"pressao"}`),
		bodySeeds("POST /v1/factory/runs/{id}/approve", `{"reason":"ok"}`, `{"reason":"a\u0000b"}`),
		bodySeeds("POST /v1/factory/runs/{id}/reject", `{"reason":"`+longText+`"}`),
		bodySeeds("POST /v1/factory/runs/{id}/rerun", `{"from":"gates"}`, `{"from":"nope"}`),
		querySeeds("GET /v1/factory/runs", "module", "status", "limit", "cursor"),
		querySeeds("GET /v1/factory/runs/{id}/logs", "after", "limit"),
		querySeeds("GET /v1/factory/runs/{id}/findings", "gate"),
		querySeeds("GET /v1/factory/runs/{id}/artifact", "name"),
		paramSeeds("GET /v1/factory/runs/{id}"),
	))
}

// fuzzFuncs are the route targets by name (fuzzTargets holds their routes);
// the events targets drive POST /v1/events in its three modes.
var (
	fuzzFuncs = map[string]func(*testing.F){
		"FuzzEventsRead": FuzzEventsRead, "FuzzPrivacy": FuzzPrivacy, "FuzzRegistry": FuzzRegistry, "FuzzRules": FuzzRules,
		"FuzzContracts": FuzzContracts, "FuzzSubscriptions": FuzzSubscriptions, "FuzzAdmin": FuzzAdmin, "FuzzBilling": FuzzBilling,
		"FuzzFactory": FuzzFactory,
	}
	fuzzEventTargets = []func(*testing.F){FuzzEventsStructured, FuzzEventsBinary, FuzzEventsBatch}
)

// TestFuzzTargetsCoverTheAPI: every operation of pkg/openapi/openapi.yaml
// that reads a request body or a query parameter is driven by a fuzz
// target, and every route a target names is in the document. (`make test`
// and `make fuzz` run every Fuzz target `go test -list` finds.)
func TestFuzzTargetsCoverTheAPI(t *testing.T) {
	b, err := openapi.JSON()
	require.NoError(t, err)
	type param struct {
		In  string `json:"in"`
		Ref string `json:"$ref"`
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]param `json:"parameters"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	in := func(p param) string {
		if p.Ref != "" {
			return doc.Components.Parameters[p.Ref[strings.LastIndexByte(p.Ref, '/')+1:]].In
		}
		return p.In
	}
	require.Len(t, fuzzFuncs, len(fuzzTargets), "every table of fuzzTargets has its Fuzz function in fuzzFuncs")
	fuzzed := map[string]bool{"POST /v1/events": len(fuzzEventTargets) == 3}
	for name, routes := range fuzzTargets {
		require.Contains(t, fuzzFuncs, name)
		for _, r := range routes {
			fuzzed[r.method+" "+r.pattern] = true
		}
	}
	documented := map[string]bool{}
	var missing []string
	for path, item := range doc.Paths {
		var common []param
		if raw, ok := item["parameters"]; ok {
			require.NoError(t, json.Unmarshal(raw, &common))
		}
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Parameters  []param         `json:"parameters"`
				RequestBody json.RawMessage `json:"requestBody"`
			}
			require.NoError(t, json.Unmarshal(raw, &op))
			name := strings.ToUpper(method) + " " + path
			documented[name] = true
			reads := op.RequestBody != nil
			for _, p := range append(common, op.Parameters...) {
				reads = reads || in(p) == "query"
			}
			if reads && !fuzzed[name] {
				missing = append(missing, name)
			}
		}
	}
	slices.Sort(missing)
	require.Empty(t, missing, "operations that read a body or a query parameter with no fuzz target (add them to fuzzTargets in fuzz_test.go)")
	for name := range fuzzed {
		require.True(t, documented[name], "fuzzTargets names %s, which pkg/openapi/openapi.yaml does not document", name)
	}
}
