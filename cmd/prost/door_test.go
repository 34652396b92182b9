package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// problemDoc is the part of a problem document the security tests read.
type problemDoc struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Index   *int   `json:"index"`
		Field   string `json:"field"`
		Pointer string `json:"pointer"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

func parseProblem(t *testing.T, body []byte) problemDoc {
	t.Helper()
	var p problemDoc
	require.NoError(t, json.Unmarshal(body, &p), string(body))
	return p
}

// requireField asserts the problem names field (and, when set, pointer)
// with a detail containing detail.
func requireField(t *testing.T, p problemDoc, field, pointer, detail string) {
	t.Helper()
	for _, e := range p.Errors {
		if e.Field == field && (pointer == "" || e.Pointer == pointer) && strings.Contains(e.Detail, detail) {
			return
		}
	}
	require.Failf(t, "field not named", "want field %q pointer %q detail %q in %+v", field, pointer, detail, p)
}

// TestDoorLimits reproduces issue 10 cases 1 and 2 at the gateway. A type of
// 5,000 characters used to be accepted and then closed the relay's NATS
// connection; the event whose strings expand when re-encoded, with a large
// tracestate, used to be accepted and then refused by JetStream forever.
// Both are refused now, naming the limit; and the size of an event as it
// will be published is bounded by what the bus takes, at the exact edge.
func TestDoorLimits(t *testing.T) {
	s := startStack(t, func(e *env) { e.MaxBodyBytes = 4 << 20 })
	app := s.createApp("door")
	const structured = "application/cloudevents+json"

	code, body := s.post(app, structured, `{"specversion":"1.0","id":"long-type","source":"/s","type":"`+strings.Repeat("t", 5000)+`"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	requireField(t, parseProblem(t, body), "type", "", "is 5000 bytes long; the limit is 256 bytes")

	// The expanding event of the issue: U+2028 is 3 bytes as sent and 6
	// once re-encoded (\u2028), plus a tracestate copied into the headers.
	expanding := fmt.Sprintf(`{"specversion":"1.0","id":"expanding","source":"/s","type":"t","note":%q,"tracestate":"k=%s","data":{}}`,
		strings.Repeat("\u2028", 100_000), strings.Repeat("v", 200_000))
	require.Less(t, len(expanding), 1<<20)
	code, body = s.post(app, structured, expanding)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	p := parseProblem(t, body)
	requireField(t, p, "note", "", "the limit is 1024 bytes")
	requireField(t, p, "tracestate", "", "the limit is 512 bytes")

	// An event over what the bus takes as published (the stream's 2 MiB
	// max_msg_size here) is 413, naming the event and the limit...
	limit := s.p.maxMessage
	require.EqualValues(t, 2<<20, limit)
	event := func(id string, dataLen int) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/s","type":"t","data":%q}`, id, strings.Repeat("x", dataLen))
	}
	code, body = s.post(app, structured, event("edge-1", 2<<20))
	require.Equal(t, http.StatusRequestEntityTooLarge, code, string(body))
	p = parseProblem(t, body)
	requireField(t, p, "event", "", fmt.Sprintf("the limit is %d bytes", limit))
	m := regexp.MustCompile(`the event is (\d+) bytes`).FindStringSubmatch(p.Errors[0].Detail)
	require.NotNil(t, m, p.Errors[0].Detail)
	size, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	over := size - int(limit)

	// ... and one byte less than that is accepted, published and audited.
	code, body = s.post(app, structured, event("edge-2", 2<<20-over))
	require.Equal(t, http.StatusAccepted, code, string(body))
	code, body = s.post(app, structured, event("edge-3", 2<<20-over+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, code, string(body))
	require.Contains(t, string(body), fmt.Sprintf("the event is %d bytes", limit+1))
	require.Eventually(t, func() bool { return len(s.audit(app)) == 1 }, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, "edge-2", s.audit(app)[0].EventID)
	var refused int
	require.NoError(t, testDB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE e.tenant_id = $1 AND o.refused_at IS NOT NULL`, app.AppID).Scan(&refused))
	require.Zero(t, refused, "what the gateway accepts, the bus takes")
}

// TestNothingTheStoresRejectIsAccepted reproduces issue 12 case 1: NUL in
// id, type, subject or partitionkey answered 500 (Postgres: invalid byte
// sequence for encoding "UTF8": 0x00), and NUL in a data member or an
// extension such as actorid was accepted and then failed the audit consumer
// at every attempt. Each is now 422 naming the attribute, header or data
// member, in every ingest mode and on every route that stores text; nothing
// is stored and no request answers 5xx. The same holds for the other values
// the stores refuse: an escaped unpaired UTF-16 surrogate (an attribute
// holding one was answered 400 as unreadable JSON, without its name) and a
// number jsonb cannot hold (1e200000 in a rule's data answered 500).
func TestNothingTheStoresRejectIsAccepted(t *testing.T) {
	s := startStack(t, nil)
	app := s.createApp("nul")
	admin := map[string]string{"Authorization": "Bearer " + s.token, "Content-Type": "application/json"}
	tenantJSON := auth(app, "Content-Type", "application/json")
	ce := func(kv ...string) []string {
		base := map[string]string{"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/s", "ce-type": "t"}
		for i := 0; i+1 < len(kv); i += 2 {
			base[kv[i]] = kv[i+1]
		}
		var out []string
		for k, v := range base {
			out = append(out, k, v)
		}
		return out
	}
	structured := func(member, value string) string {
		m := map[string]string{"specversion": "1.0", "id": "s-1", "source": "/s", "type": "t"}
		m[member] = value
		var parts []string
		for k, v := range m {
			parts = append(parts, fmt.Sprintf(`"%s":"%s"`, k, v))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	cases := []struct {
		name          string
		method, path  string
		headers       map[string]string
		body          string
		status        int
		field, ptr    string
		detailContain string
	}{
		{name: "structured id", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"), body: structured("id", `a\u0000b`), status: 422, field: "id"},
		{name: "structured type", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"), body: structured("type", `a\u0000b`), status: 422, field: "type"},
		{name: "structured subject", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"), body: structured("subject", `a\u0000b`), status: 422, field: "subject"},
		{name: "structured partitionkey", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"), body: structured("partitionkey", `a\u0000b`), status: 422, field: "partitionkey"},
		{name: "structured actorid", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"), body: structured("actorid", `a\u0000b`), status: 422, field: "actorid"},
		{name: "structured data member", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"),
			body: `{"specversion":"1.0","id":"d-1","source":"/s","type":"t","data":{"actorid":"a\u0000b"}}`, status: 422, field: "data", ptr: "/actorid"},
		{name: "structured data surrogate", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"),
			body: `{"specversion":"1.0","id":"d-2","source":"/s","type":"t","data":{"a":["\ud800"]}}`, status: 422, field: "data", ptr: "/a/0"},
		{name: "batch id", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents-batch+json"),
			body: `[{"specversion":"1.0","id":"ok","source":"/s","type":"t"},` + structured("id", `a\u0000b`) + `]`, status: 422, field: "id"},
		{name: "binary ce-id", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce("ce-id", "a%00b")), body: `{}`, status: 422, field: "ce-id"},
		{name: "binary ce-type", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce("ce-type", "a%00b")), body: `{}`, status: 422, field: "ce-type"},
		{name: "binary ce-subject", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce("ce-subject", "a%00b")), body: `{}`, status: 422, field: "ce-subject"},
		{name: "binary ce-partitionkey", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce("ce-partitionkey", "a%00b")), body: `{}`, status: 422, field: "ce-partitionkey"},
		{name: "binary ce-actorid", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce("ce-actorid", "a%00b")), body: `{}`, status: 422, field: "ce-actorid"},
		{name: "binary data member", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce()), body: `{"actorid":"a\u0000b"}`, status: 422, field: "data", ptr: "/actorid"},
		{name: "binary ce-source", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce("ce-source", "/a%00b")), body: `{}`, status: 422, field: "ce-source"},
		{name: "binary extension", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce("ce-region", "%00")), body: `{}`, status: 422, field: "ce-region"},
		{name: "binary data surrogate", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce()), body: `{"a":{"b":"\udfff"}}`, status: 422, field: "data", ptr: "/a/b"},
		{name: "binary data number", method: "POST", path: "/v1/events", headers: withPairs(auth(app, "Content-Type", "application/json"), ce()), body: `{"n":[0.0e-16383]}`, status: 422, field: "data", ptr: "/n/0"},
		{name: "structured subject surrogate", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"), body: structured("subject", `\ud800`), status: 422, field: "subject"},
		{name: "structured extension surrogate", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"), body: structured("actorid", `x\udc00`), status: 422, field: "actorid"},
		{name: "structured data number", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents+json"),
			body: `{"specversion":"1.0","id":"d-3","source":"/s","type":"t","data":{"n":1e200000}}`, status: 422, field: "data", ptr: "/n"},
		{name: "batch data member", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents-batch+json"),
			body: `[{"specversion":"1.0","id":"ok","source":"/s","type":"t"},{"specversion":"1.0","id":"b-2","source":"/s","type":"t","data":{"k":"\u0000"}}]`, status: 422, field: "data", ptr: "/k"},
		{name: "batch data number", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents-batch+json"),
			body: `[{"specversion":"1.0","id":"b-3","source":"/s","type":"t","data":[-1e131072]}]`, status: 422, field: "data", ptr: "/0"},
		{name: "batch subject surrogate", method: "POST", path: "/v1/events", headers: auth(app, "Content-Type", "application/cloudevents-batch+json"),
			body: `[` + structured("subject", `\ud800`) + `]`, status: 422, field: "subject"},
		{name: "rule name", method: "POST", path: "/v1/rules", headers: tenantJSON,
			body: `{"name":"a\u0000b","filters":[],"actions":[{"emit":{"type":"x","source":"/r"}}]}`, status: 422, field: "/name"},
		{name: "rule filter", method: "POST", path: "/v1/rules", headers: tenantJSON,
			body: `{"name":"r","filters":[{"exact":{"type":"\ud800"}}],"actions":[{"emit":{"type":"x","source":"/r"}}]}`, status: 422, field: "/filters/0/exact/type"},
		{name: "registry schema object", method: "POST", path: "/v1/registry/subjects/t/versions", headers: tenantJSON,
			body: `{"schema":{"type":"object","description":"a\u0000b"}}`, status: 422, field: "/schema/description"},
		{name: "registry schema string", method: "POST", path: "/v1/registry/subjects/t/versions", headers: tenantJSON,
			body: `{"schema":"{\"type\":\"object\",\"title\":\"a\\u0000b\"}"}`, status: 422, field: "schema/title"},
		{name: "registry config", method: "PUT", path: "/v1/registry/config", headers: tenantJSON,
			body: `{"compatibility":"BACKWARD\u0000"}`, status: 422, field: "/compatibility"},
		{name: "contract", method: "PUT", path: "/v1/contracts/t", headers: tenantJSON,
			body: `{"type":"t","level":"light","description":"a\u0000b"}`, status: 422, field: "/description"},
		{name: "app name", method: "POST", path: "/admin/v1/apps", headers: admin, body: `{"name":"a\u0000b"}`, status: 422, field: "/name"},
		{name: "app name surrogate", method: "POST", path: "/admin/v1/apps", headers: admin, body: `{"name":"a\ud800b"}`, status: 422, field: "/name"},
		{name: "rule data number", method: "POST", path: "/v1/rules", headers: tenantJSON,
			body: `{"name":"r","filters":[],"actions":[{"emit":{"type":"x","source":"/r","data":{"n":1e200000}}}]}`, status: 422, field: "/actions/0/emit/data/n"},
		{name: "registry schema number", method: "POST", path: "/v1/registry/subjects/t/versions", headers: tenantJSON,
			body: `{"schema":{"type":"number","maximum":1e-20000}}`, status: 422, field: "/schema/maximum"},
		{name: "contract surrogate", method: "PUT", path: "/v1/contracts/t", headers: tenantJSON,
			body: `{"type":"t","level":"light","description":"\udc00"}`, status: 422, field: "/description"},
		{name: "subscription type", method: "POST", path: "/v1/subscriptions", headers: tenantJSON,
			body: `{"protocol":"HTTP","types":["a\u0000"],"sink":"http://127.0.0.1:1/x"}`, status: 422, field: "/types/0"},
		{name: "subscription filter number", method: "POST", path: "/v1/subscriptions", headers: tenantJSON,
			body: `{"protocol":"NATS","filters":[{"exact":{"type":1e200000}}]}`, status: 422, field: "/filters/0/exact/type"},
		{name: "meter event type", method: "POST", path: "/v1/meters", headers: tenantJSON,
			body: `{"slug":"m","event_type":"a\u0000","aggregation":"COUNT"}`, status: 422, field: "/event_type"},
		{name: "meter group surrogate", method: "POST", path: "/v1/meters", headers: tenantJSON,
			body: `{"slug":"m","event_type":"x","aggregation":"COUNT","group_by":{"k":"\ud800"}}`, status: 422, field: "/group_by/k"},
		{name: "billing customer", method: "PUT", path: "/v1/billing/customers/c1", headers: tenantJSON,
			body: `{"email":"a@example.com","name":"a\u0000"}`, status: 422, field: "/name"},
		{name: "billing product", method: "POST", path: "/v1/billing/products", headers: tenantJSON, body: `{"name":"\ud800"}`, status: 422, field: "/name"},
		{name: "factory run", method: "POST", path: "/v1/factory/runs", headers: tenantJSON,
			body: `{"module":"notes","state":"NORMAL","pack0":{"pack0":"1","module":"notes","description":"a\u0000","entities":[{"name":"note","key":"id","fields":[{"name":"id","type":"uuid"}]}]}}`, status: 422, field: "/pack0/description"},
		{name: "factory run number", method: "POST", path: "/v1/factory/runs", headers: tenantJSON,
			body: `{"module":"notes","state":"NORMAL","pack0":{"pack0":"1","module":"notes","budget":1e200000}}`, status: 422, field: "/pack0/budget"},
		{name: "factory check", method: "POST", path: "/v1/factory/pack0/check", headers: tenantJSON,
			body: `{"pack0":{"pack0":"1","module":"notes","description":"\ud800"}}`, status: 422, field: "/pack0/description"},
		{name: "path parameter", method: "GET", path: "/v1/contracts/a%00b", headers: auth(app), status: 400, field: "path"},
		{name: "path not UTF-8", method: "GET", path: "/v1/registry/subjects/%FF/versions", headers: auth(app), status: 400, field: "path"},
		{name: "query parameter", method: "GET", path: "/v1/events?type=a%00b", headers: auth(app), status: 400, field: "type"},
		{name: "query parameter not UTF-8", method: "GET", path: "/v1/decisions?event_id=%FF", headers: auth(app), status: 400, field: "event_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.do(tc.method, tc.path, tc.headers, []byte(tc.body))
			require.Equal(t, tc.status, code, string(body))
			p := parseProblem(t, body)
			requireField(t, p, tc.field, tc.ptr, "")
		})
	}

	// Nothing of it was stored.
	var n int
	require.NoError(t, testDB.Pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM events WHERE tenant_id = $1) + (SELECT count(*) FROM rules WHERE tenant_id = $1) +
		(SELECT count(*) FROM registry_subjects WHERE tenant_id = $1) + (SELECT count(*) FROM contracts WHERE tenant_id = $1) +
		(SELECT count(*) FROM subscriptions WHERE tenant_id = $1) + (SELECT count(*) FROM billing_meters WHERE tenant_id = $1) +
		(SELECT count(*) FROM billing_customers WHERE tenant_id = $1) + (SELECT count(*) FROM billing_products WHERE tenant_id = $1) +
		(SELECT count(*) FROM factory_runs WHERE tenant_id = $1) +
		(SELECT count(*) FROM apps WHERE strpos(name, 'a') = 1 AND name LIKE 'a%b')`, app.AppID).Scan(&n))
	require.Zero(t, n)
}

func withPairs(h map[string]string, kv []string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// TestTenantCheckReadsTheDecodedName reproduces issue 10 case 6: the
// data.tenant_id check ran only when the raw bytes held "tenant_id", so a
// name written with an escape named another tenant and was stored (202).
func TestTenantCheckReadsTheDecodedName(t *testing.T) {
	s := startStack(t, nil)
	victim, app := s.createApp("victim"), s.createApp("attacker")
	for _, data := range []string{
		fmt.Sprintf(`{"tenant\u005fid":%q}`, victim.AppID),
		fmt.Sprintf(`{"\u0074enant_id":%q}`, victim.AppID),
		fmt.Sprintf(`{"tenant_id":%q,"tenant\u005fid":%q}`, app.AppID, victim.AppID),
	} {
		code, body := s.post(app, "application/cloudevents+json", `{"specversion":"1.0","id":"x","source":"/s","type":"t","data":`+data+`}`)
		require.Equal(t, http.StatusForbidden, code, data+": "+string(body))
		requireField(t, parseProblem(t, body), "data.tenant_id", "", "")
	}
	code, body := s.post(app, "application/cloudevents+json", fmt.Sprintf(`{"specversion":"1.0","id":"own","source":"/s","type":"t","data":{"tenant\u005fid":%q,"n":"\u00e9"}}`, app.AppID))
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Len(t, s.events(app, "").Items, 1)
}

// TestBusConnectionClosedByServer reproduces issue 10 case 1's lasting
// damage: a protocol line over NATS's limit made the server close the
// shared connection, which stayed CLOSED (nats.go gives up on such errors)
// with /readyz at 503. The platform now connects again and restarts its
// services on the same address.
func TestBusConnectionClosedByServer(t *testing.T) {
	s := startStack(t, nil)
	app := s.createApp("reconnect")
	code, body := s.post(app, "application/cloudevents+json", `{"specversion":"1.0","id":"before","source":"/s","type":"t"}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Eventually(t, func() bool { return len(s.audit(app)) == 1 }, 20*time.Second, 50*time.Millisecond)

	old := s.p.nc
	_ = old.Publish("prost.x."+strings.Repeat("y", 5000), nil) // over max_control_line: the server closes the connection
	_ = old.Flush()
	require.Eventually(t, func() bool { return old.Status() == nats.CLOSED }, 10*time.Second, 10*time.Millisecond)

	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false // the services are restarting
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the platform connects again")
	code, body = s.post(app, "application/cloudevents+json", `{"specversion":"1.0","id":"after","source":"/s","type":"t"}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Eventually(t, func() bool { return len(s.audit(app)) == 2 }, 20*time.Second, 50*time.Millisecond, "the services run again")
}

// TestReadyzReportsAStuckRelay: /readyz answered 200 while nothing was
// published (issue 10 case 2); it now fails when the oldest pending outbox
// row is older than PROST_READY_OUTBOX_MAX_AGE.
func TestReadyzReportsAStuckRelay(t *testing.T) {
	s := startStack(t, func(e *env) { e.ReadyOutboxMaxAge = time.Minute })
	code, body := s.do(http.MethodGet, "/readyz", nil, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	// A row the relay can never read (its event is missing) waits forever.
	var id int64
	require.NoError(t, testDB.Pool.QueryRow(context.Background(),
		`INSERT INTO outbox (event_seq, subject, created_at) VALUES (-1, 'prost.events.x', now() - interval '5 minutes') RETURNING id`).Scan(&id))
	t.Cleanup(func() { _, _ = testDB.Pool.Exec(context.Background(), `DELETE FROM outbox WHERE id = $1`, id) })
	code, body = s.do(http.MethodGet, "/readyz", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, code, string(body))
	require.Contains(t, string(body), "relay stuck")
	require.Contains(t, string(body), "PROST_READY_OUTBOX_MAX_AGE=1m0s")
	_, err := testDB.Pool.Exec(context.Background(), `DELETE FROM outbox WHERE id = $1`, id)
	require.NoError(t, err)
	code, body = s.do(http.MethodGet, "/readyz", nil, nil)
	require.Equal(t, http.StatusOK, code, string(body))
}
