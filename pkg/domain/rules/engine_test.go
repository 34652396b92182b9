package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

type bundle struct {
	store  *Store
	engine *Engine
	tenant uuid.UUID
}

func setup(t *testing.T) *bundle {
	t.Helper()
	k, _ := secretbox.NewKey()
	return &bundle{store: NewStore(testDB.Pool, StoreConfig{SecretsKey: &k}), engine: NewEngine(testDB.Pool, EngineConfig{Partitions: 4}), tenant: uuid.New()}
}

func (b *bundle) create(t *testing.T, doc string) Rule {
	t.Helper()
	c, err := ParseDocument([]byte(doc))
	require.NoError(t, err)
	r, _, err := b.store.Create(t.Context(), b.tenant, c)
	require.NoError(t, err)
	return r
}

// record stores an event as the gateway does and returns its message as the
// consumer runtime would deliver it.
func (b *bundle) record(t *testing.T, tenant uuid.UUID, structured string) *consumer.Message {
	t.Helper()
	ev, err := cloudevent.ParseStructured([]byte(structured))
	require.NoError(t, err)
	ev.SetExtension(ExtTenant, tenant.String())
	env := ev.AppendJSON(nil)
	err = pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(t.Context(), tx, []eventstore.NewEvent{{TenantID: tenant, Source: ev.Source, ID: ev.ID,
			Type: ev.Type, Envelope: env, OutboxSubject: subjects.Event(tenant, 0, ev.Type)}})
		return err
	})
	require.NoError(t, err)
	return &consumer.Message{ID: subjects.MsgID(tenant, ev.Source, ev.ID), Subject: subjects.Event(tenant, 0, ev.Type), Data: env, NumDelivered: 1}
}

func (b *bundle) handle(t *testing.T, msgs ...*consumer.Message) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		return b.engine.HandleEvents(t.Context(), tx, msgs)
	}))
}

func (b *bundle) decisions(t *testing.T, q DecisionQuery) []Decision {
	t.Helper()
	q.TenantID = b.tenant
	ds, _, err := b.store.Decisions(t.Context(), q)
	require.NoError(t, err)
	return ds
}

func storedEvents(t *testing.T, tenant uuid.UUID, typ string) []map[string]any {
	t.Helper()
	p, err := eventstore.List(t.Context(), testDB.Pool, eventstore.ListParams{TenantID: tenant, Type: typ})
	require.NoError(t, err)
	out := make([]map[string]any, len(p.Items))
	for i, it := range p.Items {
		require.NoError(t, json.Unmarshal(it, &out[i]))
	}
	return out
}

func payment(id string, amount int) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/billing","type":"payment.failed","partitionkey":"cust-1","data":{"amount":%d}}`, id, amount)
}

func TestRuleFiresAndLeavesATrail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rule := b.create(t, alertRule)
	big := b.record(t, b.tenant, payment("p-1", 1200))
	small := b.record(t, b.tenant, payment("p-2", 10))
	other := b.record(t, b.tenant, `{"specversion":"1.0","id":"o-1","source":"/shop","type":"order.placed","data":{"amount":5000}}`)
	b.handle(t, big, small, other)

	ds := b.decisions(t, DecisionQuery{})
	require.Len(t, ds, 1, "only the big failed payment matches")
	d := ds[0]
	require.Equal(t, rule.ID, d.RuleID)
	require.Equal(t, 1, d.RuleVersion)
	require.Equal(t, "p-1", d.EventID)
	require.Equal(t, "/billing", d.EventSource)
	require.JSONEq(t, `{"type": "payment.failed", "data.amount": 1200}`, string(d.Inputs))
	require.Len(t, d.Actions, 3)
	require.Equal(t, "emitted", d.Actions[0].Status)
	require.Equal(t, "queued", d.Actions[1].Status)
	require.NotZero(t, d.Actions[1].JobID)
	require.NotEmpty(t, d.Actions[1].WebhookID)
	require.Equal(t, "scheduled", d.Actions[2].Status)
	require.NotNil(t, d.Actions[2].RunAt)

	// The alert: a proper envelope, templated data, and the trail back.
	alerts := storedEvents(t, b.tenant, "alert.raised")
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, d.Actions[0].Event.ID, a["id"])
	require.Equal(t, "/rules/big-payments", a["source"])
	require.Equal(t, b.tenant.String(), a["tenantid"])
	require.Equal(t, d.DecisionID.String(), a["decisionid"])
	require.Equal(t, rule.ID.String(), a["ruleid"])
	require.EqualValues(t, 1, a["ruleversion"])
	require.Equal(t, "p-1", a["causeid"])
	require.Equal(t, "/billing", a["causesource"])
	require.EqualValues(t, 1, a["ruledepth"])
	require.Equal(t, "cust-1", a["partitionkey"], "emitted events follow their cause's partition")
	require.Equal(t, map[string]any{"amount": float64(1200), "note": "payment p-1 failed"}, a["data"])

	// The decision is itself a governed fact.
	dec := storedEvents(t, b.tenant, DecisionType)
	require.Len(t, dec, 1)
	require.Equal(t, d.DecisionID.String(), dec[0]["id"])
	require.Equal(t, "/prost/rules/"+rule.ID.String(), dec[0]["source"])
	require.Equal(t, "p-1", dec[0]["subject"])
	data := dec[0]["data"].(map[string]any)
	require.Equal(t, "p-1", data["event_id"])
	require.EqualValues(t, 1, data["rule_version"])

	// Jobs were written in the same transaction.
	var n int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind IN ($2, $3)`,
		b.tenant, KindWebhook, KindScheduled).Scan(&n))
	require.Equal(t, 2, n)
}

func TestFiresOncePerEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, alertRule)
	m := b.record(t, b.tenant, payment("p-1", 5000))
	b.handle(t, m)
	// The same event handled again (as if the idempotency record were
	// bypassed) and twice in one batch: the rule still fired once.
	b.handle(t, m)
	b.handle(t, m, m)
	require.Len(t, b.decisions(t, DecisionQuery{}), 1)
	require.Len(t, storedEvents(t, b.tenant, "alert.raised"), 1)
	require.Len(t, storedEvents(t, b.tenant, DecisionType), 1)
}

func TestUpdateAppliesToLaterEventsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rule := b.create(t, `{"name": "v1", "filters": [{"exact": {"type": "payment.failed"}}], "condition": "data.amount > 1000",
		"actions": [{"emit": {"type": "alert.v1", "source": "/r"}}]}`)
	before := b.record(t, b.tenant, payment("p-1", 1500))
	c, err := ParseDocument([]byte(`{"name": "v2", "filters": [{"exact": {"type": "payment.failed"}}], "condition": "data.amount > 100",
		"actions": [{"emit": {"type": "alert.v2", "source": "/r"}}]}`))
	require.NoError(t, err)
	r2, _, err := b.store.Update(t.Context(), b.tenant, rule.ID, c)
	require.NoError(t, err)
	require.Equal(t, 2, r2.Version)
	after := b.record(t, b.tenant, payment("p-2", 500))

	// The event recorded before the update is decided by version 1 even
	// though it is consumed after the update.
	b.handle(t, before, after)
	ds := b.decisions(t, DecisionQuery{RuleID: &rule.ID})
	require.Len(t, ds, 2)
	require.Equal(t, "p-1", ds[0].EventID)
	require.Equal(t, 1, ds[0].RuleVersion)
	require.Equal(t, "p-2", ds[1].EventID)
	require.Equal(t, 2, ds[1].RuleVersion)
	require.Len(t, storedEvents(t, b.tenant, "alert.v1"), 1)
	require.Len(t, storedEvents(t, b.tenant, "alert.v2"), 1)

	// The filter by event works too.
	ds = b.decisions(t, DecisionQuery{EventID: "p-2"})
	require.Len(t, ds, 1)
	require.Equal(t, 2, ds[0].RuleVersion)
}

func TestNoLoops(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A rule that matches every event, its own output included.
	b.create(t, `{"name": "echo", "actions": [{"emit": {"type": "echo", "source": "/echo"}}]}`)
	m := b.record(t, b.tenant, payment("p-1", 1))
	b.handle(t, m)
	require.Len(t, b.decisions(t, DecisionQuery{}), 1)

	// Decisions are never evaluated.
	dec := storedEvents(t, b.tenant, DecisionType)
	require.Len(t, dec, 1)
	decMsg := b.redeliver(t, dec[0])
	b.handle(t, decMsg)
	require.Len(t, b.decisions(t, DecisionQuery{}), 1)

	// Emitted events chain until the maximum depth, then stop.
	for range 20 {
		echoes := storedEvents(t, b.tenant, "echo")
		var msgs []*consumer.Message
		for _, e := range echoes {
			msgs = append(msgs, b.redeliver(t, e))
		}
		b.handle(t, msgs...)
	}
	echoes := storedEvents(t, b.tenant, "echo")
	require.Len(t, echoes, b.engine.cfg.MaxChainDepth, "one echo per depth, then the chain ends")
}

// redeliver turns a stored event back into a message.
func (b *bundle) redeliver(t *testing.T, ev map[string]any) *consumer.Message {
	t.Helper()
	raw, err := json.Marshal(ev)
	require.NoError(t, err)
	return &consumer.Message{ID: subjects.MsgID(b.tenant, ev["source"].(string), ev["id"].(string)), Data: raw, NumDelivered: 1}
}

func TestTenantsAreIsolated(t *testing.T) {
	t.Parallel()
	a := setup(t)
	other := setup(t)
	a.create(t, alertRule)
	// Another tenant's matching event fires nothing of tenant a.
	m := a.record(t, other.tenant, payment("p-1", 5000))
	a.handle(t, m)
	require.Empty(t, a.decisions(t, DecisionQuery{}))
	require.Empty(t, other.decisions(t, DecisionQuery{}))
	require.Empty(t, storedEvents(t, other.tenant, "alert.raised"))
}

func TestDisabledRulesAndWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.create(t, alertRule)
	_, err := b.store.SetStatus(t.Context(), b.tenant, r.ID, StatusDisabled)
	require.NoError(t, err)
	b.handle(t, b.record(t, b.tenant, payment("p-1", 5000)))
	require.Empty(t, b.decisions(t, DecisionQuery{}), "a disabled rule does not fire")

	_, err = b.store.SetStatus(t.Context(), b.tenant, r.ID, StatusActive)
	require.NoError(t, err)
	require.NoError(t, b.store.DisableWebhook(t.Context(), b.tenant, r.ID, "410 Gone"))
	got, err := b.store.Get(t.Context(), b.tenant, r.ID)
	require.NoError(t, err)
	require.Equal(t, StatusDisabled, got.Webhook.Status)
	b.handle(t, b.record(t, b.tenant, payment("p-2", 5000)))
	ds := b.decisions(t, DecisionQuery{})
	require.Len(t, ds, 1)
	require.Equal(t, "skipped", ds[0].Actions[1].Status, "the webhook of a gone receiver is skipped")
	require.Equal(t, "emitted", ds[0].Actions[0].Status)

	// Enabling the rule turns the webhook back on.
	got, err = b.store.SetStatus(t.Context(), b.tenant, r.ID, StatusActive)
	require.NoError(t, err)
	require.Equal(t, StatusActive, got.Webhook.Status)
}

func TestRunScheduled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.create(t, `{"name": "later", "filters": [{"exact": {"type": "payment.failed"}}],
		"actions": [{"schedule": {"after": "1s", "action": {"emit": {"type": "reminder", "source": "/r", "data": {"of": "${id}"}}}}}]}`)
	b.handle(t, b.record(t, b.tenant, payment("p-1", 1)))
	ds := b.decisions(t, DecisionQuery{})
	require.Len(t, ds, 1)
	require.Empty(t, storedEvents(t, b.tenant, "reminder"))

	// Claim and run the job as a worker would.
	var id int64
	require.NoError(t, testDB.Pool.QueryRow(context.Background(),
		`UPDATE jobs SET state = 'running', attempt = 1, locked_at = now(), locked_by = 'test' WHERE id = $1 RETURNING id`,
		ds[0].Actions[0].JobID).Scan(&id))
	j := runningJob(t, id)
	require.NoError(t, b.engine.RunScheduled(t.Context(), j))
	rem := storedEvents(t, b.tenant, "reminder")
	require.Len(t, rem, 1)
	require.Equal(t, map[string]any{"of": "p-1"}, rem[0]["data"])
	require.Equal(t, ds[0].DecisionID.String(), rem[0]["decisionid"])
	var state string
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT state FROM jobs WHERE id = $1`, id).Scan(&state))
	require.Equal(t, "completed", state)
}

func runningJob(t *testing.T, id int64) *jobs.Job {
	t.Helper()
	c, err := jobs.NewClient(testDB.Pool, jobs.Config{})
	require.NoError(t, err)
	j, err := c.Get(t.Context(), id)
	require.NoError(t, err)
	return &j
}

// recordMany records n big failed payments p-0..p-(n-1).
func (b *bundle) recordMany(t *testing.T, n int) []*consumer.Message {
	t.Helper()
	out := make([]*consumer.Message, n)
	for i := range out {
		out[i] = b.record(t, b.tenant, payment(fmt.Sprintf("p-%d", i), 2000))
	}
	return out
}
