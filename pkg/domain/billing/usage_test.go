package billing_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/billing"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// row is a usage row reduced to what the assertions compare.
type row struct {
	Start, End string
	Customer   string
	Group      map[string]string
	Value      string
}

func rows(u billing.Usage) []row {
	out := []row{}
	for _, d := range u.Data {
		r := row{Start: d.WindowStart.Format(time.RFC3339), End: d.WindowEnd.Format(time.RFC3339), Value: d.Value.String()}
		if d.Customer != nil {
			r.Customer = *d.Customer
		}
		if len(d.GroupBy) > 0 {
			r.Group = map[string]string{}
			for k, v := range d.GroupBy {
				if v != nil {
					r.Group[k] = *v
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// TestUsageExactlyOnce is the scenario: usage events, some
// duplicated, some late by days, one corrected (twice: the newest
// correction wins), queried per hour and per month, give exactly the
// expected decimals; redelivering every message changes nothing.
func TestUsageExactlyOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	meters := map[string]billing.Meter{}
	for agg, doc := range map[string]string{
		"tokens": `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","group_by":{"model":"$.model"},"customer_property":"$.customer"}`,
		"calls":  `{"slug":"calls","event_type":"llm.call","aggregation":"COUNT","customer_property":"$.customer"}`,
		"max":    `{"slug":"max","event_type":"llm.call","aggregation":"MAX","value_property":"$.tokens"}`,
		"min":    `{"slug":"min","event_type":"llm.call","aggregation":"MIN","value_property":"$.tokens"}`,
		"avg":    `{"slug":"avg","event_type":"llm.call","aggregation":"AVG","value_property":"$.tokens"}`,
		"latest": `{"slug":"latest","event_type":"llm.call","aggregation":"LATEST","value_property":"$.tokens"}`,
		"models": `{"slug":"models","event_type":"llm.call","aggregation":"UNIQUE_COUNT","value_property":"$.model"}`,
	} {
		meters[agg] = b.meter(t, doc)
	}

	e1 := b.record(t, llmCall("e1", "2026-11-10T10:05:00Z", "A", "m1", 1.25))
	e2 := b.record(t, llmCall("e2", "2026-11-10T10:40:00Z", "A", "m2", 2.5))
	dup := b.record(t, llmCall("e2", "2026-11-10T10:40:00Z", "A", "m2", 2.5)) // a client's retry: a duplicate, not stored
	e3 := b.record(t, llmCall("e3", "2026-11-10T11:15:00Z", "B", "m1", "0.1"))
	e6 := b.record(t, llmCall("e6", "2026-11-10T10:59:59.999Z", "B", "m2", 0.0000001))
	e5 := b.record(t, llmCall("e5", "2026-12-01T00:00:00Z", "A", "m1", 100))
	// Late by a week: recorded after the others, counted in its own hour.
	e4 := b.record(t, llmCall("e4", "2026-11-03T23:59:59.999Z", "A", "m1", 3))
	c1 := b.record(t, correction("c1", "e1", `{"customer":"A","model":"m1","tokens":1.3}`))
	c2 := b.record(t, correction("c2", "e1", `{"customer":"A","model":"m1","tokens":"1.2"}`))

	// Delivered in batches, a duplicate message among them, the late event
	// and the corrections in the same batch as other events.
	require.NoError(t, b.handle(t, e1, e2, dup))
	require.NoError(t, b.handle(t, e3, e6, e5))
	require.NoError(t, b.handle(t, e4, c1, c2, e2))

	nov := billing.UsageQuery{From: ts("2026-11-01T00:00:00Z"), To: ts("2026-12-01T00:00:00Z")}
	check := func() {
		t.Helper()
		q := nov
		q.Window = "HOUR"
		u, err := b.svc.QueryUsage(ctx, b.tenant, "tokens", q)
		require.NoError(t, err)
		require.Equal(t, []row{
			{Start: "2026-11-03T23:00:00Z", End: "2026-11-04T00:00:00Z", Value: "3"},
			{Start: "2026-11-10T10:00:00Z", End: "2026-11-10T11:00:00Z", Value: "3.7000001"},
			{Start: "2026-11-10T11:00:00Z", End: "2026-11-10T12:00:00Z", Value: "0.1"},
		}, rows(u))
		require.Equal(t, "HOUR", *u.Window)

		q = billing.UsageQuery{From: nov.From, To: ts("2027-01-01T00:00:00Z"), Window: "MONTH"}
		u, err = b.svc.QueryUsage(ctx, b.tenant, "tokens", q)
		require.NoError(t, err)
		require.Equal(t, []row{
			{Start: "2026-11-01T00:00:00Z", End: "2026-12-01T00:00:00Z", Value: "6.8000001"},
			{Start: "2026-12-01T00:00:00Z", End: "2027-01-01T00:00:00Z", Value: "100"},
		}, rows(u))

		q.Customers, q.To = []string{"A", "B"}, nov.To
		u, err = b.svc.QueryUsage(ctx, b.tenant, "tokens", q)
		require.NoError(t, err)
		require.Equal(t, []row{
			{Start: "2026-11-01T00:00:00Z", End: "2026-12-01T00:00:00Z", Customer: "A", Value: "6.7"},
			{Start: "2026-11-01T00:00:00Z", End: "2026-12-01T00:00:00Z", Customer: "B", Value: "0.1000001"},
		}, rows(u))

		q.Customers, q.GroupBy = nil, []string{"model"}
		u, err = b.svc.QueryUsage(ctx, b.tenant, "tokens", q)
		require.NoError(t, err)
		require.Equal(t, []row{
			{Start: "2026-11-01T00:00:00Z", End: "2026-12-01T00:00:00Z", Group: map[string]string{"model": "m1"}, Value: "4.3"},
			{Start: "2026-11-01T00:00:00Z", End: "2026-12-01T00:00:00Z", Group: map[string]string{"model": "m2"}, Value: "2.5000001"},
		}, rows(u))

		// Days cut in Berlin: the late event at 23:59 UTC is on the 4th there.
		u, err = b.svc.QueryUsage(ctx, b.tenant, "tokens", billing.UsageQuery{From: nov.From, To: nov.To, Window: "DAY", TZ: "Europe/Berlin"})
		require.NoError(t, err)
		require.Equal(t, []row{
			{Start: "2026-11-04T00:00:00+01:00", End: "2026-11-05T00:00:00+01:00", Value: "3"},
			{Start: "2026-11-10T00:00:00+01:00", End: "2026-11-11T00:00:00+01:00", Value: "3.8000001"},
		}, rows(u))

		// No window: one row over the range.
		want := map[string]string{"tokens": "6.8000001", "calls": "5", "max": "3", "min": "0.0000001", "avg": "1.36000002",
			"latest": "0.1", "models": "2"}
		for slug, v := range want {
			u, err := b.svc.QueryUsage(ctx, b.tenant, slug, nov)
			require.NoError(t, err, slug)
			require.Len(t, u.Data, 1, slug)
			require.Equal(t, v, u.Data[0].Value.String(), slug)
			require.Nil(t, u.Window)
		}
	}
	check()

	// Redelivering every message, in one batch and one by one, changes
	// nothing: each (meter, event, revision) is counted once.
	require.NoError(t, b.handle(t, b.msgs...))
	for _, m := range b.msgs {
		require.NoError(t, b.handle(t, m))
	}
	check()

	// JSON: exact digits, never a float.
	u, err := b.svc.QueryUsage(ctx, b.tenant, "tokens", nov)
	require.NoError(t, err)
	out, err := json.Marshal(u)
	require.NoError(t, err)
	require.Contains(t, string(out), `"value":6.8000001`)
}

func TestUsageQueryErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.meter(t, `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","group_by":{"model":"$.model"}}`)
	for name, tc := range map[string]struct {
		q     billing.UsageQuery
		field string
	}{
		"window":   {billing.UsageQuery{Window: "WEEK"}, "window"},
		"tz":       {billing.UsageQuery{TZ: "Mars/Olympus"}, "tz"},
		"group":    {billing.UsageQuery{GroupBy: []string{"region"}}, "group_by"},
		"from>=to": {billing.UsageQuery{From: ts("2026-11-02T00:00:00Z"), To: ts("2026-11-01T00:00:00Z")}, "from"},
	} {
		_, err := b.svc.QueryUsage(t.Context(), b.tenant, "tokens", tc.q)
		require.Error(t, err, name)
		require.Contains(t, problemFields(err), tc.field, name)
	}
	_, err := b.svc.QueryUsage(t.Context(), b.tenant, "nope", billing.UsageQuery{})
	require.ErrorIs(t, err, billing.ErrMeterNotFound)
}

// TestUncountableEventsAreDeadLettered: an event a meter cannot count, or a
// correction of an event never recorded, fails permanently (the consumer
// runtime dead-letters it with the reason) instead of being dropped.
func TestUncountableEventsAreDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.meter(t, `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","customer_property":"$.customer"}`)
	for name, tc := range map[string]struct {
		event, reason string
	}{
		"missing value": {`{"specversion":"1.0","id":"x1","source":"/llm","type":"llm.call","data":{"customer":"A"}}`, "$.tokens is missing"},
		"not a number":  {`{"specversion":"1.0","id":"x2","source":"/llm","type":"llm.call","data":{"customer":"A","tokens":"lots"}}`, "is not a number"},
		"no customer":   {`{"specversion":"1.0","id":"x3","source":"/llm","type":"llm.call","data":{"tokens":1}}`, "(the customer) is missing"},
		"unknown event": {correction("c9", "never-sent", `{"tokens":1}`), "which this App has not recorded"},
		"encrypted customer": {`{"specversion":"1.0","id":"x4","source":"/llm","type":"llm.call","data":{"customer":"prost:enc:v1:0193b2c4-0000-7000-8000-000000000000:AAAA","tokens":1}}`,
			"(the customer) is encrypted"},
	} {
		err := b.handle(t, b.record(t, tc.event))
		require.Error(t, err, name)
		require.True(t, consumer.IsPermanent(err), name)
		require.ErrorContains(t, err, tc.reason, name)
	}
	// Events of other types, and of other Apps' meters, count nothing and pass.
	require.NoError(t, b.handle(t, b.record(t, `{"specversion":"1.0","id":"o1","source":"/x","type":"other.thing","data":{}}`)))
}

// TestVoidCorrection: a void correction counts nothing for its event.
func TestVoidCorrection(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.meter(t, `{"slug":"calls","event_type":"llm.call","aggregation":"COUNT"}`)
	e := b.record(t, llmCall("v1", "2026-11-10T10:00:00Z", "A", "m1", 1))
	f := b.record(t, llmCall("v2", "2026-11-10T10:00:01Z", "A", "m1", 1))
	c := b.record(t, `{"specversion":"1.0","id":"cv","source":"/corrections","type":"prost.billing.correction","data":{"event_id":"v1","event_source":"/llm","reason":"test traffic","void":true}}`)
	require.NoError(t, b.handle(t, c, e, f)) // the correction first: it still wins
	u, err := b.svc.QueryUsage(t.Context(), b.tenant, "calls", billing.UsageQuery{From: ts("2026-11-01T00:00:00Z"), To: ts("2026-12-01T00:00:00Z")})
	require.NoError(t, err)
	require.Equal(t, "1", u.Data[0].Value.String())
}

// TestBackfill: a meter made after events of its type were stored counts
// them (and their corrections) through its backfill job, and the consumer
// seeing them again changes nothing.
func TestBackfill(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(c *billing.Config) { c.BackfillPage = 2 }) // several pages
	var msgs []*consumer.Message
	for i, tok := range []float64{1.5, 2.25, 4} {
		msgs = append(msgs, b.record(t, llmCall("b"+string(rune('0'+i)), "2026-11-10T10:00:00Z", "A", "m1", tok)))
	}
	msgs = append(msgs, b.record(t, correction("bc", "b0", `{"customer":"A","model":"m1","tokens":0.5}`)))
	msgs = append(msgs, b.record(t, `{"specversion":"1.0","id":"bad","source":"/llm","type":"llm.call","data":{"customer":"A"}}`))
	m := b.meter(t, `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","customer_property":"$.customer"}`)
	require.Nil(t, m.Backfill.Done)
	c := b.runJobs(t)
	b.waitJobs(t, c)
	m, err := b.svc.Meter(t.Context(), b.tenant, "tokens")
	require.NoError(t, err)
	require.NotNil(t, m.Backfill.Done)
	require.EqualValues(t, 1, m.Backfill.Skipped)
	require.Contains(t, m.Backfill.Error, "event bad from /llm")
	q := billing.UsageQuery{From: ts("2026-11-01T00:00:00Z"), To: ts("2026-12-01T00:00:00Z")}
	u, err := b.svc.QueryUsage(t.Context(), b.tenant, "tokens", q)
	require.NoError(t, err)
	require.Equal(t, "6.75", u.Data[0].Value.String())
	require.NoError(t, b.handle(t, msgs[:4]...))
	u, err = b.svc.QueryUsage(t.Context(), b.tenant, "tokens", q)
	require.NoError(t, err)
	require.Equal(t, "6.75", u.Data[0].Value.String())
}

// TestUsageTimeWithoutEventTime: an event with no time of its own is counted
// at the moment it was recorded, read for the whole batch at once; one that
// is not in the event store is dead-lettered.
func TestUsageTimeWithoutEventTime(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.meter(t, `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens","customer_property":"$.customer"}`)
	msgs := []*consumer.Message{
		b.record(t, `{"specversion":"1.0","id":"n1","source":"/llm","type":"llm.call","data":{"customer":"A","tokens":1}}`),
		b.record(t, `{"specversion":"1.0","id":"n1","source":"/llm/eu","type":"llm.call","data":{"customer":"A","tokens":2}}`),
		b.record(t, llmCall("t1", "2026-11-10T10:00:00Z", "A", "m", 3)),
		b.record(t, `{"specversion":"1.0","id":"o1","source":"/x","type":"other.thing","data":{}}`),
	}
	require.NoError(t, b.handle(t, msgs...))

	rows, err := b.db.Pool.Query(t.Context(), `
		SELECT u.event_source || ' ' || u.event_id, u.time, e.recorded_at
		FROM billing_usage u JOIN events e ON e.tenant_id = u.tenant_id AND e.source = u.event_source AND e.id = u.event_id
		WHERE u.tenant_id = $1`, b.tenant)
	require.NoError(t, err)
	got := map[string]bool{}
	for rows.Next() {
		var key string
		var at, recorded time.Time
		require.NoError(t, rows.Scan(&key, &at, &recorded))
		if key == "/llm t1" {
			require.True(t, at.Equal(time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)), "its own time: %s", at)
		} else {
			require.True(t, at.Equal(recorded), "%s: counted at %s, recorded at %s", key, at, recorded)
		}
		got[key] = true
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]bool{"/llm n1": true, "/llm/eu n1": true, "/llm t1": true}, got)

	// Delivered but never stored (the store is the source of truth).
	ghost := &consumer.Message{ID: "ghost", Subject: msgs[0].Subject,
		Data: []byte(`{"specversion":"1.0","id":"ghost","source":"/llm","type":"llm.call","tenantid":"` + b.tenant.String() + `","data":{"customer":"A","tokens":1}}`), NumDelivered: 1}
	err = b.handle(t, ghost)
	require.True(t, consumer.IsPermanent(err))
	require.ErrorContains(t, err, "event ghost from /llm is not in the event store")
}

// TestManyTenantsInOneBatch: a batch of several Apps' events reads their
// meters in one statement and counts each event only towards its own App's
// meters; Relevant keeps exactly the events some meter of their App counts,
// and every correction.
func TestManyTenantsInOneBatch(t *testing.T) {
	t.Parallel()
	a, b, c := setup(t, nil), setup(t, nil), setup(t, nil)
	a.meter(t, `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens"}`)
	b.meter(t, `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens"}`)
	b.meter(t, `{"slug":"views","event_type":"page.viewed","aggregation":"COUNT"}`)
	// c has no meter.
	a1 := a.record(t, llmCall("a1", "2026-11-10T10:00:00Z", "x", "m", 1))
	aView := a.record(t, `{"specversion":"1.0","id":"av","source":"/web","type":"page.viewed","time":"2026-11-10T10:00:00Z"}`)
	b1 := b.record(t, llmCall("b1", "2026-11-10T10:00:00Z", "x", "m", 20))
	bView := b.record(t, `{"specversion":"1.0","id":"bv","source":"/web","type":"page.viewed","time":"2026-11-10T10:00:00Z"}`)
	c1 := c.record(t, llmCall("c1", "2026-11-10T10:00:00Z", "x", "m", 300))
	cFix := c.record(t, correction("cf", "c1", `{"tokens":3}`))
	a2 := a.record(t, llmCall("a2", "2026-11-10T11:00:00Z", "x", "m", 4000))
	batch := []*consumer.Message{a1, aView, b1, bView, c1, cFix, a2}

	var kept []*consumer.Message
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		var err error
		kept, err = a.svc.Relevant(t.Context(), tx, batch)
		return err
	}))
	require.Equal(t, []*consumer.Message{a1, b1, bView, cFix, a2}, kept)
	require.NoError(t, a.handle(t, kept...))

	total := func(x *bundle, slug string) string {
		t.Helper()
		u, err := x.svc.QueryUsage(t.Context(), x.tenant, slug, billing.UsageQuery{From: ts("2026-11-01T00:00:00Z"), To: ts("2026-12-01T00:00:00Z")})
		require.NoError(t, err)
		require.Len(t, u.Data, 1)
		return u.Data[0].Value.String()
	}
	require.Equal(t, "4001", total(a, "tokens"))
	require.Equal(t, "20", total(b, "tokens"))
	require.Equal(t, "1", total(b, "views"))
}
