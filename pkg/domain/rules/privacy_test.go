package rules

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/eventstore"
)

// TestClassifiedValues: conditions and templates read classified values in
// clear; the decision and the emitted event store them encrypted, readable
// by the tenant until the data subject is erased.
func TestClassifiedValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setup(t)
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(t, err)
	kr, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek})
	require.NoError(t, err)
	b.engine = NewEngine(testDB.Pool, EngineConfig{Partitions: 4, Keyring: kr})
	pol, err := dataprotect.NewPolicy("/user_id", []dataprotect.Field{
		{Pointer: "/email", Class: "personal", Purpose: "p", Retention: dataprotect.Forever},
		{Pointer: "/address", Class: "personal", Purpose: "p", Retention: dataprotect.Forever},
	})
	require.NoError(t, err)
	data, err := kr.Protect(ctx, b.tenant, []byte(`{"user_id":"u-1","email":"jane@example.com","address":{"city":"Porto"},"amount":50}`), pol)
	require.NoError(t, err)

	b.create(t, `{"name": "porto", "filters": [{"exact": {"type": "user.signup"}}],
		"condition": "data.email.endsWith('@example.com') && data.address.city == 'Porto' && data.amount > 10",
		"actions": [{"emit": {"type": "user.welcomed", "source": "/r", "subject": "${data.email}",
			"data": {"who": "${data.email}", "greeting": "Hello ${data.email}!", "city": "${data.address.city}", "where": "${data.address}",
				"amount": "${data.amount}", "note": "amount ${data.amount}"}}}]}`)
	m := b.record(t, b.tenant, `{"specversion":"1.0","id":"s-1","source":"/accounts","type":"user.signup","data":`+string(data)+`}`)
	b.handle(t, m)

	ds := b.decisions(t, DecisionQuery{})
	require.Len(t, ds, 1, "the condition read the plain values")
	require.Equal(t, "emitted", ds[0].Actions[0].Status, ds[0].Actions[0].Error)
	raw := func(q string, args ...any) string {
		var s string
		require.NoError(t, testDB.Pool.QueryRow(ctx, q, args...).Scan(&s))
		return s
	}
	stored := raw(`SELECT string_agg(inputs::text, ' ') FROM decisions WHERE tenant_id = $1`, b.tenant) +
		raw(`SELECT string_agg(envelope::text, ' ') FROM events WHERE tenant_id = $1`, b.tenant)
	require.NotContains(t, stored, "jane")
	require.NotContains(t, stored, "Porto")
	require.Contains(t, stored, `"data.amount": 50`, "unclassified inputs stay plain")

	// The decision's inputs reveal to the plain values.
	in, err := kr.Reveal(ctx, b.tenant, ds[0].Inputs)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"user.signup","data.email":"jane@example.com","data.address.city":"Porto","data.amount":50}`, string(in))

	// The emitted event reads in clear for the tenant.
	welcomed := func() map[string]any {
		p, err := eventstore.List(ctx, testDB.Pool, eventstore.ListParams{TenantID: b.tenant, Type: "user.welcomed"})
		require.NoError(t, err)
		require.Len(t, p.Items, 1)
		require.NoError(t, kr.RevealAll(ctx, b.tenant, p.Items))
		var ev map[string]any
		require.NoError(t, json.Unmarshal(p.Items[0], &ev))
		return ev
	}
	ev := welcomed()
	require.Equal(t, "jane@example.com", ev["subject"])
	require.Equal(t, map[string]any{"who": "jane@example.com", "greeting": "Hello jane@example.com!", "city": "Porto",
		"where": map[string]any{"city": "Porto"}, "amount": float64(50), "note": "amount 50"}, ev["data"])

	// Erased: every copy reads erased; what was never classified stays.
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		d, err := kr.EraseSubjectTx(ctx, tx, b.tenant, "u-1", uuid.New())
		kr.Forget(ctx, d)
		return err
	}))
	ev = welcomed()
	erased := map[string]any{"erased": true}
	require.Equal(t, map[string]any{"who": erased, "greeting": erased, "city": erased, "where": erased,
		"amount": float64(50), "note": "amount 50"}, ev["data"])
	in, err = kr.Reveal(ctx, b.tenant, ds[0].Inputs)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"user.signup","data.email":{"erased":true},"data.address.city":{"erased":true},"data.amount":50}`, string(in))
}

func TestInputPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"data": nil, "data.a.b": {"a", "b"}, `data["k.x"][0]`: {"k.x", "0"}, `data.items[2].sku`: {"items", "2", "sku"},
		`data["a]b"]`: {"a]b"},
	} {
		got, ok := inputPath(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"type", "has(data.x)", "extensions.region", `data[`, "database"} {
		_, ok := inputPath(bad)
		require.False(t, ok, bad)
	}
}
