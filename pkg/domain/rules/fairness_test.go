package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/rules/filter"
	"github.com/prost-platform/prost/pkg/problem"
)

const cheapRule = `{"name": %q, "filters": [{"exact": {"type": "payment.failed"}}],
	"actions": [{"emit": {"type": "alert.raised", "source": "/rules/x", "data": {"amount": "${data.amount}"}}}]}`

// TestOverrunningRuleIsRecordedAndDisabled: a rule whose evaluation overruns
// the event's budget gets a decision of status overrun (no actions; its
// inputs name the budget and the rules left unevaluated), and after
// MaxOverruns in a row it is disabled with the reason; enabling it clears
// both. A budget of one nanosecond makes every evaluation overrun.
func TestOverrunningRuleIsRecordedAndDisabled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.engine = NewEngine(testDB.Pool, EngineConfig{Partitions: 4, EvalBudget: time.Nanosecond, MaxOverruns: 2})
	first := b.create(t, fmt.Sprintf(cheapRule, "first"))
	second := b.create(t, fmt.Sprintf(cheapRule, "second"))

	b.handle(t, b.record(t, b.tenant, payment("p-1", 10)))
	ds := b.decisions(t, DecisionQuery{})
	require.Len(t, ds, 1)
	require.Equal(t, DecisionOverrun, ds[0].Status)
	require.Equal(t, first.ID, ds[0].RuleID)
	require.Empty(t, ds[0].Actions, "an overrun takes no action")
	require.JSONEq(t, fmt.Sprintf(`{"budget":"1ns","not_evaluated":[%q],"overruns_in_a_row":1}`, second.ID), string(ds[0].Inputs))
	require.Empty(t, storedEvents(t, b.tenant, "alert.raised"))
	r, err := b.store.Get(t.Context(), b.tenant, first.ID)
	require.NoError(t, err)
	require.Equal(t, StatusActive, r.Status)

	b.handle(t, b.record(t, b.tenant, payment("p-2", 10)))
	r, err = b.store.Get(t.Context(), b.tenant, first.ID)
	require.NoError(t, err)
	require.Equal(t, StatusDisabled, r.Status, "the second overrun in a row disables the rule")
	require.Contains(t, r.DisabledReason, "2 evaluations in a row overran the 1ns")
	out, err := json.Marshal(r)
	require.NoError(t, err)
	require.Contains(t, string(out), `"disabled_reason"`)

	// With a workable budget the other rule fires; the disabled one stays off.
	b.engine = NewEngine(testDB.Pool, EngineConfig{Partitions: 4})
	b.handle(t, b.record(t, b.tenant, payment("p-3", 10)))
	ds = b.decisions(t, DecisionQuery{EventID: "p-3"})
	require.Len(t, ds, 1)
	require.Equal(t, second.ID, ds[0].RuleID)
	require.Equal(t, DecisionFired, ds[0].Status)

	r, err = b.store.SetStatus(t.Context(), b.tenant, first.ID, StatusActive)
	require.NoError(t, err)
	require.Empty(t, r.DisabledReason)
	var overruns int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT overruns FROM rules WHERE rule_id = $1`, first.ID).Scan(&overruns))
	require.Zero(t, overruns)
}

// TestOverrunsCountInARow: a rule that overran once and then evaluates
// within the budget starts counting again.
func TestOverrunsCountInARow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rule := b.create(t, fmt.Sprintf(cheapRule, "r"))
	tight := NewEngine(testDB.Pool, EngineConfig{Partitions: 4, EvalBudget: time.Nanosecond, MaxOverruns: 2})
	normal := NewEngine(testDB.Pool, EngineConfig{Partitions: 4, MaxOverruns: 2})
	count := func() int {
		var n int
		require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT overruns FROM rules WHERE rule_id = $1`, rule.ID).Scan(&n))
		return n
	}
	for i, e := range []*Engine{tight, normal, tight, normal} {
		b.engine = e
		b.handle(t, b.record(t, b.tenant, payment(fmt.Sprintf("q-%d", i), 10)))
		require.Equal(t, 1-i%2, count(), "after event %d", i)
	}
	r, err := b.store.Get(t.Context(), b.tenant, rule.ID)
	require.NoError(t, err)
	require.Equal(t, StatusActive, r.Status, "never two overruns in a row")
}

// TestFiltersStopAtTheDeadline: a filter list stops matching once the
// deadline passed, so an expensive list cannot run past the budget.
func TestFiltersStopAtTheDeadline(t *testing.T) {
	t.Parallel()
	c, err := ParseDocument([]byte(`{"name":"n","filters":[{"exact":{"type":"t"}},{"exact":{"source":"/s"}}],"actions":[{"emit":{"type":"x","source":"/r"}}]}`))
	require.NoError(t, err)
	ev := minimalEvent()
	fev := filter.NewEvent(&ev)
	require.True(t, c.Filters.Match(fev))
	fev.Deadline = time.Now().Add(-time.Millisecond)
	require.False(t, c.Filters.Match(fev))
}

// TestRuleLimit: a tenant may have MaxRules rules; one more is 422, other
// tenants are not affected.
func TestRuleLimit(t *testing.T) {
	t.Parallel()
	k := setup(t).store.key
	store := NewStore(testDB.Pool, StoreConfig{SecretsKey: k, MaxRules: 3})
	tenant, other := uuid.New(), uuid.New()
	c, err := ParseDocument([]byte(fmt.Sprintf(cheapRule, "r")))
	require.NoError(t, err)
	for range 3 {
		_, _, err := store.Create(t.Context(), tenant, c)
		require.NoError(t, err)
	}
	_, _, err = store.Create(t.Context(), tenant, c)
	require.ErrorIs(t, err, ErrTooManyRules)
	p := problem.From(err)
	require.Equal(t, 422, p.Status)
	require.True(t, strings.Contains(p.Detail, "3 rules"), p.Detail)
	_, _, err = store.Create(t.Context(), other, c)
	require.NoError(t, err)
}

// TestReservedEmitSource: a rule may not emit events with a source only
// PROST records (a verified Stripe webhook's), directly or from a schedule;
// the gateway refuses the same source in an App's own events.
func TestReservedEmitSource(t *testing.T) {
	t.Parallel()
	k := setup(t).store.key
	store := NewStore(testDB.Pool, StoreConfig{SecretsKey: k, ReservedSources: map[string]string{"/billing/stripe": "verified Stripe webhooks"}})
	tenant := uuid.New()
	doc := `{"name": "forge", "actions": [
		{"emit": {"type": "stripe.invoice.paid", "source": "/billing/stripe"}},
		{"schedule": {"after": "1h", "action": {"emit": {"type": "stripe.invoice.paid", "source": "/billing/stripe"}}}},
		{"emit": {"type": "alert.raised", "source": "/rules/alerts"}}]}`
	c, err := ParseDocument([]byte(doc))
	require.NoError(t, err)
	_, _, err = store.Create(t.Context(), tenant, c)
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, []string{"/actions/0/emit/source", "/actions/1/schedule/action/emit/source"}, []string{inv.Problems[0].Pointer, inv.Problems[1].Pointer})
	require.Len(t, inv.Problems, 2)
	require.Contains(t, inv.Problems[0].Detail, `source "/billing/stripe" is reserved for the events PROST records from verified Stripe webhooks`)
	require.Equal(t, 422, problem.From(err).Status)

	ok, err := ParseDocument([]byte(`{"name": "fine", "actions": [{"emit": {"type": "alert.raised", "source": "/rules/alerts"}}]}`))
	require.NoError(t, err)
	r, _, err := store.Create(t.Context(), tenant, ok)
	require.NoError(t, err)
	_, _, err = store.Update(t.Context(), tenant, r.ID, c)
	require.ErrorAs(t, err, &inv, "an update is checked too")
}

func minimalEvent() cloudevent.Event {
	return cloudevent.Event{SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t"}
}
