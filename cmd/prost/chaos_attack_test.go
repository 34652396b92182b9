//go:build chaos

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/subjects"
)

// hostileTenantScenario (issue 10): under the usual load of two Apps, the
// second App sends every attack of the issue while its own load goes on:
// over-long and unstorable attributes, an event that expands past the bus's
// limit, a data.tenant_id naming the other App behind an escape, a forged
// actor, an unauthenticated scrape, webhooks aimed inside, heavy rules and
// schemas on the other App's partitions, forged messages on the bus in the
// other App's name, and outbox rows the bus can never take. The load's
// checks then require every accepted event of both Apps audited, once, in
// order; verify checks that no attack left a trace where it must not.
func hostileTenantScenario() chaosScenario {
	return chaosScenario{
		name:  "hostile-tenant",
		rules: true,
		// Webhooks may go to public addresses only (the last value of a
		// variable wins).
		env: []string{"PROST_MAX_BODY_BYTES=4194304", "PROST_OUTBOUND_ALLOW="},
		fault: func(t *testing.T, s *scenarioEnv) {
			victim, attacker := s.apps[0], s.apps[1]
			a := &attack{t: t, base: "http://" + s.gateway.addr, app: attacker}
			// The victim's keys (clients 0, 2, 4, 6) decide its partitions;
			// the attacker aims at the same ones.
			victimKey := "c00-k0"
			part := subjects.Partition(victimKey, subjects.DefaultPartitions)

			a.expect(422, "application/cloudevents+json", `{"specversion":"1.0","id":"long-type","source":"/attack","type":"`+strings.Repeat("t", 5000)+`"}`)
			a.expect(422, "application/cloudevents+json", fmt.Sprintf(`{"specversion":"1.0","id":"expanding","source":"/attack","type":"t","note":%q,"tracestate":"k=%s","data":{}}`,
				strings.Repeat("\u2028", 100_000), strings.Repeat("v", 200_000)))
			for _, m := range []string{"id", "type", "subject", "partitionkey", "actorid"} {
				attrs := map[string]string{"id": `"nul"`, "type": `"t"`}
				attrs[m] = `"a\u0000b"`
				body := `{"specversion":"1.0","source":"/attack"`
				for k, v := range attrs {
					body += `,"` + k + `":` + v
				}
				a.expect(422, "application/cloudevents+json", body+"}")
			}
			a.expect(422, "application/cloudevents+json", `{"specversion":"1.0","id":"nul-data","source":"/attack","type":"t","data":{"actorid":"a\u0000b"}}`)
			a.expect(422, "application/json", `{}`, "ce-specversion", "1.0", "ce-id", "a%00b", "ce-source", "/attack", "ce-type", "t")
			a.expect(403, "application/cloudevents+json", fmt.Sprintf(`{"specversion":"1.0","id":"escape","source":"/attack","type":"t","data":{"tenant\u005fid":%q}}`, victim.AppID))
			a.do(401, "GET", "/metrics", "", nil)
			a.do(422, "POST", "/admin/v1/dlq/purge", `{"all":true,"dry_run":true}`, map[string]string{
				"Authorization": "Bearer " + chaosAdminToken, "X-Prost-Actor": "ops\u202e", "Content-Type": "application/json"})
			for _, u := range []string{"http://127.0.0.1:4222/", "http://localhost:8222/varz", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://169.254.169.254/"} {
				a.do(422, "POST", "/v1/rules", `{"name":"ssrf","actions":[{"webhook":{"url":"`+u+`"}}]}`, a.json())
			}

			// Heavy rules and schemas, aimed at the victim's partition.
			a.do(200, "PUT", "/v1/registry/config", `{"unregistered_types":"accept"}`, a.json())
			a.expect(413, "application/cloudevents+json", fmt.Sprintf(`{"specversion":"1.0","id":"huge","source":"/attack","type":"t","data":%q}`, strings.Repeat("x", 2500_000)))
			for i := range 20 {
				a.do(201, "POST", "/v1/rules", fmt.Sprintf(`{"name":"heavy-%d","filters":[{"exact":{"type":"attack.heavy"}}],"condition":"data.items.exists(x, x == 'no-%d')","actions":[{"emit":{"type":"attack.hit","source":"/attack"}}]}`, i, i), a.json())
			}
			vals := make([]string, 2000)
			for i := range vals {
				vals[i] = fmt.Sprintf(`"v%04d"`, i)
			}
			a.do(200, "POST", "/v1/registry/subjects/attack.validated/versions", `{"schema":{"type":"object","properties":{"items":{"type":"array","items":{"enum":[`+strings.Join(vals, ",")+`]}}}}}`, a.json())
			items := make([]string, 100_000)
			for i := range items {
				items[i] = fmt.Sprintf(`"i%06d"`, i)
			}
			// Far past the validation budget on any machine: 20,000 items
			// were sometimes validated within it (CI, 2026-12-03).
			validated := make([]string, 100_000)
			for i := range validated {
				validated[i] = `"v1999"`
			}
			for i := range 4 {
				a.expect(202, "application/cloudevents+json", fmt.Sprintf(`{"specversion":"1.0","id":"heavy-%d","source":"/attack","type":"attack.heavy","partitionkey":%q,"data":{"items":[%s]}}`,
					i, victimKey, strings.Join(items, ",")))
				// 422 past the validation budget; 429 while the App's one
				// validation slot is still taken by an earlier one.
				a.expect(422|429<<16, "application/cloudevents+json", fmt.Sprintf(`{"specversion":"1.0","id":"validated-%d","source":"/attack","type":"attack.validated","partitionkey":%q,"data":{"items":[%s]}}`,
					i, victimKey, strings.Join(validated, ",")))
			}

			// Forged messages in the victim's name, with bus access.
			nc, js := connectNATS(t, natsURLs(s.nats), s.keys.ServiceCreds) // bus access: a leaked service credential
			defer nc.Close()
			for i := range 3 {
				id := fmt.Sprintf("forged-%d", i)
				env := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":%q,"partitionkey":%q,"actorid":"mallory","tenantid":%q,"data":{"key":%q,"seq":1}}`,
					id, chaosSource, chaosType, victimKey, victim.AppID, victimKey)
				if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subjects.Event(victim.AppID, part, chaosType), Data: []byte(env)},
					jetstream.WithMsgID(subjects.MsgID(victim.AppID, chaosSource, id))); err != nil {
					t.Errorf("forge: %v", err)
				}
			}

			// Outbox rows the bus can never take (written behind the
			// gateway's back): larger than the stream's maximum, and a
			// subject over NATS's control line.
			ctx := context.Background()
			for _, row := range []struct{ id, subject, data string }{
				{"refused-large", subjects.Event(attacker.AppID, part, "attack.raw"), strings.Repeat("x", 3<<20)},
				{"refused-subject", subjects.Event(attacker.AppID, part, strings.Repeat("y", 5000)), "x"},
			} {
				env := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/attack","type":"attack.raw","tenantid":%q,"data":%q}`, row.id, attacker.AppID, row.data)
				if _, err := s.pool.Exec(ctx, `WITH e AS (INSERT INTO events (tenant_id, source, id, type, partition_key, envelope)
					VALUES ($1, '/attack', $2, 'attack.raw', $3, $4) RETURNING seq)
					INSERT INTO outbox (event_seq, subject) SELECT seq, $5 FROM e`, attacker.AppID, row.id, victimKey, env, row.subject); err != nil {
					t.Errorf("outbox row %s: %v", row.id, err)
				}
			}
			_, _ = s.pool.Exec(ctx, `NOTIFY prost_outbox`)
		},
		verify: func(t *testing.T, s *scenarioEnv) {
			ctx := context.Background()
			victim, attacker := s.apps[0].AppID, s.apps[1].AppID
			var forged int
			if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE event_id LIKE 'forged-%' OR actor_id = 'mallory'`).Scan(&forged); err != nil {
				t.Fatal(err)
			}
			if forged != 0 {
				t.Errorf("%d forged messages reached an audit chain", forged)
			}
			count := func(consumer string, tenant *uuid.UUID) int {
				es, _, err := dlq.List(ctx, s.pool, dlq.Filter{Consumer: consumer, TenantID: tenant})
				if err != nil {
					t.Fatal(err)
				}
				return len(es)
			}
			if n := count("governance-audit", nil); n < 3 {
				t.Errorf("the audit consumer dead-lettered %d forged messages, want 3", n)
			}
			if n := count("rules-engine", nil); n < 3 {
				t.Errorf("the rules consumer dead-lettered %d forged messages, want 3", n)
			}
			if n := count(dlq.ConsumerRelay, &attacker); n != 2 {
				t.Errorf("the relay dead-lettered %d refused rows, want 2", n)
			}
			if n := count("governance-audit", &victim) + count("rules-engine", &victim); n != 0 {
				t.Errorf("%d dead letters are in the victim's name", n)
			}
			var overruns, disabled int
			if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM decisions WHERE tenant_id = $1 AND status = 'overrun'),
				(SELECT count(*) FROM rules WHERE tenant_id = $1 AND status = 'disabled')`, attacker).Scan(&overruns, &disabled); err != nil {
				t.Fatal(err)
			}
			t.Logf("attacker: %d overrun decisions, %d rules disabled", overruns, disabled)
			var heavy int
			if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND event_type = 'attack.heavy'`, attacker).Scan(&heavy); err != nil {
				t.Fatal(err)
			}
			if heavy != 4 {
				t.Errorf("the attacker's accepted heavy events: %d audited, want 4", heavy)
			}
		},
	}
}

// attack sends the attacker's requests and checks each answer's status.
type attack struct {
	t    *testing.T
	base string
	app  creds
}

func (a *attack) json() map[string]string {
	return map[string]string{"Content-Type": "application/json", "X-Prost-App-Key": a.app.APIKey, "X-Prost-App-Secret": a.app.APISecret}
}

// expect posts an event (headers: name, value pairs) and checks the status.
func (a *attack) expect(status int, contentType, body string, headers ...string) {
	a.t.Helper()
	h := map[string]string{"Content-Type": contentType, "X-Prost-App-Key": a.app.APIKey, "X-Prost-App-Secret": a.app.APISecret}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	a.do(status, "POST", "/v1/events", body, h)
}

func (a *attack) do(status int, method, path, body string, headers map[string]string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		a.t.Errorf("%s %s: %v", method, path, err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		a.t.Errorf("%s %s answered %d: %s", method, path, resp.StatusCode, truncateText(b))
		return
	}
	// status may hold two statuses: low | high<<16.
	if resp.StatusCode != status&0xffff && resp.StatusCode != status>>16 {
		a.t.Errorf("%s %s answered %d, want %d: %s", method, path, resp.StatusCode, status&0xffff, truncateText(b))
	}
}

func truncateText(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
