package rules

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestRuleSetIndex: an event is tried only on the rules whose filters allow
// its type (exact or prefix), plus those that may match any type; the set
// is read once and read again only when the tenant's rules change.
func TestRuleSetIndex(t *testing.T) {
	t.Parallel()
	b := setup(t)
	emit := `"actions":[{"emit":{"type":"seen","source":"/r"}}]`
	names := map[string]string{}
	for name, filters := range map[string]string{
		"exact":    `[{"exact":{"type":"payment.failed"}}]`,
		"prefix":   `[{"prefix":{"type":"payment."}}]`,
		"other":    `[{"exact":{"type":"order.placed"}}]`,
		"any":      `[{"sql":"source = '/billing'"}]`,
		"nofilter": `[]`,
	} {
		r := b.create(t, fmt.Sprintf(`{"name":%q,"filters":%s,%s}`, name, filters, emit))
		names[r.ID.String()] = name
	}
	b.handle(t, b.record(t, b.tenant, payment("p-1", 5)))
	b.engine.mu.Lock()
	set := b.engine.sets[b.tenant]
	b.engine.mu.Unlock()
	require.NotNil(t, set)
	got := map[string]bool{}
	for _, i := range set.candidates("payment.failed") {
		got[names[set.heads[i].id.String()]] = true
	}
	require.Equal(t, map[string]bool{"exact": true, "prefix": true, "any": true, "nofilter": true}, got,
		"the order.placed rule is not tried on a payment")
	require.Len(t, b.decisions(t, DecisionQuery{}), 4)

	// Nothing changed: the next batch uses the same set.
	b.handle(t, b.record(t, b.tenant, payment("p-2", 5)))
	b.engine.mu.Lock()
	same := b.engine.sets[b.tenant]
	b.engine.mu.Unlock()
	require.Same(t, set, same)

	// A new rule moves the tenant's generation: the next batch reads the
	// rules again and the new one fires at once.
	b.create(t, `{"name":"new","filters":[{"exact":{"type":"payment.failed"}}],`+emit+`}`)
	b.handle(t, b.record(t, b.tenant, payment("p-3", 5)))
	require.Len(t, b.decisions(t, DecisionQuery{EventID: "p-3"}), 5)
	b.engine.mu.Lock()
	require.NotSame(t, set, b.engine.sets[b.tenant])
	b.engine.mu.Unlock()

	// Disabling a rule takes effect at once too.
	for id, name := range names {
		if name == "exact" {
			_, err := b.store.SetStatus(t.Context(), b.tenant, uuid.MustParse(id), StatusDisabled)
			require.NoError(t, err)
		}
	}
	b.handle(t, b.record(t, b.tenant, payment("p-4", 5)))
	require.Len(t, b.decisions(t, DecisionQuery{EventID: "p-4"}), 4)
}

// TestMayMatch: mayMatch answers what candidates would, without building
// the list (Relevant asks it for every message).
func TestMayMatch(t *testing.T) {
	t.Parallel()
	typed := &ruleSet{heads: make([]ruleHead, 3),
		exact:  map[string][]int{"payment.failed": {0}},
		prefix: map[string][]int{"order.": {1}, "x": {2}}}
	anyType := &ruleSet{heads: make([]ruleHead, 1), exact: map[string][]int{}, prefix: map[string][]int{}, always: []int{0}}
	for _, typ := range []string{"payment.failed", "payment.failedx", "order.placed", "order", "xyz", "", "shipment.sent"} {
		for name, s := range map[string]*ruleSet{"typed": typed, "any type": anyType} {
			require.Equal(t, len(s.candidates(typ)) > 0, s.mayMatch(typ), "%s: %q", name, typ)
		}
	}
	require.False(t, typed.mayMatch("shipment.sent"))
	require.True(t, anyType.mayMatch("shipment.sent"))
}
