package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/subjects"
	governancesvc "github.com/prost-platform/prost/services/governance"
)

// poisonBed is the platform with tenant A, whose event will fail the audit
// consumer, B and C, whose tenants hash to other lanes of that consumer, and
// D, whose tenant hashes to A's: with lanes fixed by that hash D waited
// behind A's failing event; now a failing tenant moves to a retry worker and
// D waits for nothing.
type poisonBed struct {
	s          *stack
	a, b, c, d creds
	lanes      int
}

func newPoisonBed(t *testing.T, budget time.Duration) *poisonBed {
	s := startStack(t, func(e *env) { e.RetryBudget = budget })
	pol := s.p.policies[governancesvc.ConsumerName]
	require.Greater(t, pol.TenantLanes, 1, "nats/consumers/governance-audit.json runs tenant lanes")
	bed := &poisonBed{s: s, lanes: pol.TenantLanes, a: s.createApp("poison-a")}
	lane := func(c creds) int { return consumer.TenantLane(c.AppID.String(), bed.lanes) }
	var others []creds
	for i := 0; len(others) < 2 || bed.d.APIKey == ""; i++ {
		require.Less(t, i, 200)
		c := s.createApp(fmt.Sprintf("poison-%d", i))
		switch {
		case lane(c) == lane(bed.a) && bed.d.APIKey == "":
			bed.d = c
		case lane(c) != lane(bed.a) && len(others) < 2:
			others = append(others, c)
		}
	}
	bed.b, bed.c = others[0], others[1]
	return bed
}

// post records an event through the gateway and returns when it was accepted.
func (bed *poisonBed) post(t *testing.T, c creds, id string) time.Time {
	t.Helper()
	code, body := bed.s.post(c, "application/cloudevents+json", fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/p","type":"t","actorid":"u"}`, id))
	require.Equal(t, http.StatusAccepted, code, string(body))
	return time.Now()
}

// auditedAt waits until the event is in its tenant's audit log and returns
// when that was seen.
func (bed *poisonBed) auditedAt(t *testing.T, c creds, id string, within time.Duration) time.Time {
	t.Helper()
	var at time.Time
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, bed.s.p.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND event_id = $2 AND event_type = 't'`, c.AppID, id).Scan(&n))
		at = time.Now()
		return n == 1
	}, within, 5*time.Millisecond, "event %s of %s not audited within %s", id, c.AppID, within)
	return at
}

// deadLetter waits for the audit consumer's dead letter of msgID.
func (bed *poisonBed) deadLetter(t *testing.T, msgID string, within time.Duration) (dlq.Entry, time.Time) {
	t.Helper()
	var found dlq.Entry
	require.Eventually(t, func() bool {
		es, _, err := dlq.List(context.Background(), bed.s.p.pool, dlq.Filter{Consumer: governancesvc.ConsumerName})
		require.NoError(t, err)
		for _, e := range es {
			if e.MsgID == msgID {
				found = e
				return true
			}
		}
		return false
	}, within, 5*time.Millisecond, "the poison event is not in the DLQ within %s", within)
	return found, time.Now()
}

// normalLatency is the most a healthy event of B or C may take from 202 to
// its audit entry while A's event fails (the relay polls every 100 ms in
// these tests; an event audited takes tens of milliseconds).
const normalLatency = 2 * time.Second

// TestPoisonEventPermanent reproduces issue 12 case 2: an event of tenant A
// that the audit insert refuses for good (a NUL byte in actorid: SQLSTATE
// 22021) was retried for about 53 minutes in the audit consumer's one lane,
// and every other tenant's events waited behind it. The event arrives as one
// written behind the gateway would (the gateway now refuses NUL), signed on
// the bus. Now it is dead-lettered after one attempt, B's and C's events
// sent at the same time are audited within the normal latency, and A's own
// next event is audited after it.
func TestPoisonEventPermanent(t *testing.T) {
	bed := newPoisonBed(t, 15*time.Minute)
	s := bed.s
	// Warm up: every tenant audited once.
	for _, c := range []creds{bed.a, bed.b, bed.c, bed.d} {
		bed.post(t, c, "warm")
		bed.auditedAt(t, c, "warm", 20*time.Second)
	}

	env := fmt.Sprintf(`{"specversion":"1.0","id":"poison","source":"/p","type":"t","actorid":"a\u0000b","tenantid":%q}`, bed.a.AppID)
	subject := subjects.Event(bed.a.AppID, 0, "t")
	msgID := subjects.MsgID(bed.a.AppID, "/p", "poison")
	msg := &nats.Msg{Subject: subject, Data: []byte(env), Header: nats.Header{}}
	s.p.signer.Sign(msg.Header, subject, msgID, msg.Data)
	_, err := s.p.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(msgID))
	require.NoError(t, err)
	sentB, sentC := bed.post(t, bed.b, "b-1"), bed.post(t, bed.c, "c-1")
	bed.post(t, bed.a, "a-after")
	sentD := bed.post(t, bed.d, "d-1")

	for _, x := range []struct {
		c    creds
		id   string
		sent time.Time
	}{{bed.b, "b-1", sentB}, {bed.c, "c-1", sentC}, {bed.d, "d-1", sentD}} {
		took := bed.auditedAt(t, x.c, x.id, 20*time.Second).Sub(x.sent)
		t.Logf("%s audited %s after it was accepted", x.id, took)
		require.Less(t, took, normalLatency)
	}
	e, _ := bed.deadLetter(t, msgID, normalLatency)
	require.Equal(t, dlq.ReasonPermanent, e.Reason)
	require.Equal(t, 1, e.DeliveryCount, "one attempt")
	require.Contains(t, e.LastError, "22021")
	require.Equal(t, bed.a.AppID, *e.TenantID)
	bed.auditedAt(t, bed.a, "a-after", normalLatency)
	bed.verify(t)
}

// verify checks the bed's tenants' chains (other tests of the package
// tamper with chains of their own on purpose).
func (bed *poisonBed) verify(t *testing.T) {
	t.Helper()
	for _, c := range []creds{bed.a, bed.b, bed.c, bed.d} {
		out, err := bed.s.cli("audit", "verify", "--app", c.AppID.String())
		require.NoError(t, err, out)
	}
}

// TestPoisonEventTransient: an event of A whose audit insert keeps failing
// with an error a retry could fix (here a trigger raising an ordinary
// exception) is retried on its schedule, but only until the retry budget is
// spent, and then dead-lettered. Meanwhile B's and C's events are audited
// within the normal latency, and so are D's (whose tenant hashes to A's lane);
// A's next event waits behind its failing one.
func TestPoisonEventTransient(t *testing.T) {
	const budget = 4 * time.Second
	bed := newPoisonBed(t, budget)
	s := bed.s
	ctx := context.Background()
	_, err := s.p.pool.Exec(ctx, `CREATE FUNCTION test_audit_outage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id = 'poison' THEN RAISE EXCEPTION 'the audit store is unavailable for this event'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_audit_outage BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION test_audit_outage();`)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = testDB.Pool.Exec(ctx, `DROP TRIGGER IF EXISTS test_audit_outage ON audit_log; DROP FUNCTION IF EXISTS test_audit_outage()`)
	})
	for _, c := range []creds{bed.a, bed.b, bed.c, bed.d} {
		bed.post(t, c, "warm")
		bed.auditedAt(t, c, "warm", 20*time.Second)
	}

	sentPoison := bed.post(t, bed.a, "poison")
	sentB, sentC := bed.post(t, bed.b, "b-1"), bed.post(t, bed.c, "c-1")
	sentD := bed.post(t, bed.d, "d-1")
	bed.post(t, bed.a, "a-after")
	for _, x := range []struct {
		c    creds
		id   string
		sent time.Time
	}{{bed.b, "b-1", sentB}, {bed.c, "c-1", sentC}, {bed.d, "d-1", sentD}} {
		took := bed.auditedAt(t, x.c, x.id, 20*time.Second).Sub(x.sent)
		t.Logf("%s audited %s after it was accepted", x.id, took)
		require.Less(t, took, normalLatency)
	}

	msgID := subjects.MsgID(bed.a.AppID, "/p", "poison")
	e, deadAt := bed.deadLetter(t, msgID, budget+10*time.Second)
	t.Logf("poison dead-lettered %s after it was accepted, after %d attempts", deadAt.Sub(sentPoison), e.DeliveryCount)
	require.Equal(t, dlq.ReasonRetryBudget, e.Reason)
	require.Greater(t, e.DeliveryCount, 1, "retried on its schedule meanwhile")
	require.Contains(t, e.LastError, "the audit store is unavailable")
	require.Less(t, deadAt.Sub(sentPoison), budget+normalLatency+2*time.Second)
	bed.auditedAt(t, bed.a, "a-after", normalLatency)

	// The replay, once the store is back, is applied; the chain verifies.
	_, err = s.p.pool.Exec(ctx, `DROP TRIGGER test_audit_outage ON audit_log`)
	require.NoError(t, err)
	out, err := s.cli("dlq", "replay", fmt.Sprint(e.ID))
	require.NoError(t, err, out)
	bed.auditedAt(t, bed.a, "poison", 10*time.Second)
	bed.verify(t)
	var n int
	require.NoError(t, s.p.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE tenant_id = $1`, bed.a.AppID).Scan(&n))
	require.Equal(t, 4, n, "warm, a-after, poison and the replay's record")
}
