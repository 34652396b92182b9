package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestEndToEnd drives the spine as clients do: two Apps post events in all
// three CloudEvents modes, read them back, and find each one exactly once in
// their own audit chain after it travelled through the outbox and JetStream.
func TestEndToEnd(t *testing.T) {
	s := startStack(t, nil)
	a, b := s.createApp("app-a"), s.createApp("app-b")

	// Structured mode.
	code, body := s.post(a, "application/cloudevents+json; charset=utf-8",
		`{"specversion":"1.0","id":"a-1","source":"/shop","type":"order.placed","actorid":"user-1","action":"place","partitionkey":"order-9","data":{"total":12}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.JSONEq(t, `{"accepted":1,"duplicates":0,"results":[{"id":"a-1","source":"/shop","status":"accepted"}]}`, string(body))

	// Binary mode, JSON data, percent-encoded header value.
	code, body = s.post(a, "application/json", `{"amount":5}`,
		"ce-specversion", "1.0", "ce-id", "a-2", "ce-source", "/billing", "ce-type", "payment.failed",
		"ce-actorid", "user%201", "ce-time", "2026-11-27T10:00:00Z")
	require.Equal(t, http.StatusAccepted, code, string(body))

	// Binary mode, non-JSON data.
	code, body = s.post(a, "text/plain", "hello",
		"ce-specversion", "1.0", "ce-id", "a-3", "ce-source", "/notes", "ce-type", "note.written")
	require.Equal(t, http.StatusAccepted, code, string(body))

	// Batch mode, with a repeat of a-1 inside: stored once.
	code, body = s.post(a, "Application/CloudEvents-Batch+JSON", `[
		{"specversion":"1.0","id":"a-4","source":"/shop","type":"order.shipped","subject":"order-9"},
		{"specversion":"1.0","id":"a-5","source":"/shop","type":"order.delivered","action":"deliver"},
		{"specversion":"1.0","id":"a-1","source":"/shop","type":"order.placed"}]`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	var res struct {
		Accepted   int `json:"accepted"`
		Duplicates int `json:"duplicates"`
		Results    []struct{ ID, Source, Status string }
	}
	require.NoError(t, json.Unmarshal(body, &res))
	require.Equal(t, 2, res.Accepted)
	require.Equal(t, 1, res.Duplicates)
	require.Equal(t, "duplicate", res.Results[2].Status)

	// A retry of a-2 is a duplicate: answered, not stored again.
	code, body = s.post(a, "application/json", `{"amount":5}`,
		"ce-specversion", "1.0", "ce-id", "a-2", "ce-source", "/billing", "ce-type", "payment.failed")
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.JSONEq(t, `{"accepted":0,"duplicates":1,"results":[{"id":"a-2","source":"/billing","status":"duplicate"}]}`, string(body))

	// App B uses the same (source, id) as A: a different tenant, a different fact.
	code, body = s.post(b, "application/cloudevents+json",
		`{"specversion":"1.0","id":"a-1","source":"/shop","type":"order.placed","data":{"total":1}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Contains(t, string(body), `"accepted":1`)

	// B cannot write as A: naming A's tenant is refused and stores nothing.
	code, body = s.post(b, "application/cloudevents+json",
		fmt.Sprintf(`{"specversion":"1.0","id":"b-x","source":"/evil","type":"t","tenantid":%q}`, a.AppID))
	require.Equal(t, http.StatusForbidden, code, string(body))
	code, body = s.post(b, "application/cloudevents+json",
		fmt.Sprintf(`{"specversion":"1.0","id":"b-y","source":"/evil","type":"t","data":{"tenant_id":%q}}`, a.AppID))
	require.Equal(t, http.StatusForbidden, code, string(body))

	// Read back: A sees its five events, stamped with its tenant, in order.
	pa := s.events(a, "")
	require.Len(t, pa.Items, 5)
	var ids []string
	for _, it := range pa.Items {
		ids = append(ids, it["id"].(string))
		require.Equal(t, a.AppID.String(), it["tenantid"])
	}
	require.Equal(t, []string{"a-1", "a-2", "a-3", "a-4", "a-5"}, ids)
	require.Equal(t, "user 1", pa.Items[1]["actorid"], "binary header values are percent-decoded")
	require.Equal(t, map[string]any{"amount": float64(5)}, pa.Items[1]["data"])
	require.Equal(t, "aGVsbG8=", pa.Items[2]["data_base64"])
	require.Equal(t, "text/plain", pa.Items[2]["datacontenttype"])

	// Filters and pagination.
	require.Len(t, s.events(a, "?type=order.placed").Items, 1)
	require.Len(t, s.events(a, "?source=/shop").Items, 3)
	p1 := s.events(a, "?limit=2")
	require.Len(t, p1.Items, 2)
	require.NotNil(t, p1.NextCursor)
	p2 := s.events(a, "?limit=2&cursor="+*p1.NextCursor)
	require.Equal(t, "a-3", p2.Items[0]["id"])

	// B sees only its own event, whatever it asks for.
	pb := s.events(b, "")
	require.Len(t, pb.Items, 1)
	require.Equal(t, b.AppID.String(), pb.Items[0]["tenantid"])
	require.Empty(t, s.events(b, "?source=/billing").Items)
	require.Empty(t, s.events(b, "?cursor="+*p1.NextCursor+"&type=order.shipped").Items)

	// Audit: every accepted event exactly once in its tenant's chain.
	require.Eventually(t, func() bool { return len(s.audit(a)) >= 5 && len(s.audit(b)) >= 1 }, 20*time.Second, 50*time.Millisecond)
	s.waitQuiet(t)
	ea, eb := s.audit(a), s.audit(b)
	require.Len(t, ea, 5)
	require.Len(t, eb, 1)
	seen := map[string]int{}
	for i, e := range ea {
		seen[e.EventSource+" "+e.EventID]++
		require.Equal(t, int64(i+1), e.Seq)
	}
	require.Equal(t, map[string]int{"/shop a-1": 1, "/billing a-2": 1, "/notes a-3": 1, "/shop a-4": 1, "/shop a-5": 1}, seen)
	byID := map[string]auditEntry{}
	for _, e := range ea {
		byID[e.EventID] = e
	}
	require.Equal(t, "user-1", byID["a-1"].ActorID)
	require.Equal(t, "place", byID["a-1"].Action)
	require.Equal(t, "user 1", byID["a-2"].ActorID)
	require.Equal(t, "/shop", eb[0].EventSource)

	// The chains verify through the CLI. Each App's own: the package's
	// database also holds earlier tests' events, and what a finished
	// test's stack accepted and never audited (its NATS server is gone)
	// would be reported missing once older than the settle time.
	out, err := s.cli("audit", "verify", "--app", a.AppID.String())
	require.NoError(t, err, out)
	require.Contains(t, out, "ok      app "+a.AppID.String()+": 5 entries verified")
	out, err = s.cli("audit", "verify", "--app", b.AppID.String())
	require.NoError(t, err, out)
	require.Contains(t, out, "ok      app "+b.AppID.String()+": 1 entries verified")

	// Alter a stored entry behind the trigger's back: verify names it.
	tamper(t, `UPDATE audit_log SET actor_id = 'mallory' WHERE tenant_id = $1 AND seq = 3`, a.AppID)
	out, err = s.cli("audit", "verify", "--app", a.AppID.String())
	var ee exitError
	require.ErrorAs(t, err, &ee, out)
	require.Equal(t, 1, ee.code)
	require.Contains(t, ee.msg, "broken at entry 3")
	require.Contains(t, out, "BROKEN  app "+a.AppID.String()+": entry 3")
	out, err = s.cli("audit", "verify", "--app", b.AppID.String())
	require.NoError(t, err, "B's chain is untouched: "+out)
}

// waitQuiet waits until the outbox is drained and the audit consumer has no
// pending messages, so "exactly once" is checked after redeliveries had
// their chance.
func (s *stack) waitQuiet(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		var pending int
		err := s.p.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL AND refused_at IS NULL`).Scan(&pending)
		if err != nil || pending > 0 {
			return false
		}
		// Every durable consumer of the stream has nothing left to deliver
		// or to be acknowledged.
		st, err := s.p.js.Stream(context.Background(), "PROST_EVENTS")
		if err != nil {
			return false
		}
		// Read the whole list before deciding: the lister's goroutine blocks
		// on a send nobody reads if the loop stops early, even after its
		// context ends (nats.go v1.55).
		lister := st.ListConsumers(context.Background())
		var infos []*jetstream.ConsumerInfo
		for ci := range lister.Info() {
			infos = append(infos, ci)
		}
		n := len(infos)
		for _, ci := range infos {
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				return false
			}
		}
		return lister.Err() == nil && n > 0
	}, 20*time.Second, 50*time.Millisecond)
}

// tamper runs one statement with triggers bypassed, as an attacker with
// superuser access to the database could.
func tamper(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	tx, err := testDB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SET LOCAL session_replication_role = replica`)
	require.NoError(t, err)
	tag, err := tx.Exec(ctx, sql, args...)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	require.NoError(t, tx.Commit(ctx))
}

// TestAppendOnly: the database itself refuses to change facts.
func TestAppendOnly(t *testing.T) {
	ctx := context.Background()
	for _, stmt := range []string{
		`UPDATE events SET type = 'x'`, `DELETE FROM events`, `TRUNCATE events`,
		`UPDATE audit_log SET action = 'x'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`,
	} {
		// Seed a row so the row triggers have something to refuse.
		_, err := testDB.Pool.Exec(ctx, `INSERT INTO events (tenant_id, source, id, type, envelope) VALUES (gen_random_uuid(), '/s', gen_random_uuid()::text, 't', '{}')`)
		require.NoError(t, err)
		_, err = testDB.Pool.Exec(ctx, `INSERT INTO audit_log (tenant_id, seq, event_id, event_source, event_type, recorded_at, prev_hash, hash) VALUES (gen_random_uuid(), 1, 'e', 's', 't', now(), 'p', 'h')`)
		require.NoError(t, err)
		_, err = testDB.Pool.Exec(ctx, stmt)
		require.Error(t, err, stmt)
		require.True(t, strings.Contains(err.Error(), "append-only"), err.Error())
	}
}
