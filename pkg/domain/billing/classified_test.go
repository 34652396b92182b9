package billing_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/billing"
)

// TestClassifiedValuesAreCounted: with the keyring, a meter counts a value
// the App's contract encrypted at ingest, and keys usage by the pseudonym of
// an encrypted customer, so the usage tables hold no personal value in
// clear; without it, such an event fails naming the path.
func TestClassifiedValuesAreCounted(t *testing.T) {
	t.Parallel()
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(t, err)
	kr, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek})
	require.NoError(t, err)
	b := setup(t, nil, func(c *billing.Config) { c.Protect = kr })
	b.meter(t, `{"slug":"spend","event_type":"shop.paid","aggregation":"SUM","value_property":"$.amount","customer_property":"$.email"}`)
	pol, err := dataprotect.NewPolicy("/user_id", []dataprotect.Field{
		{Pointer: "/email", Class: "personal", Purpose: "billing", Retention: dataprotect.Forever},
		{Pointer: "/amount", Class: "payment", Purpose: "billing", Retention: dataprotect.Forever},
	})
	require.NoError(t, err)
	record := func(id string, amount string) {
		data, err := kr.Protect(t.Context(), b.tenant, []byte(`{"user_id":"u-1","email":"ada@example.com","amount":`+amount+`}`), pol)
		require.NoError(t, err)
		require.NotContains(t, string(data), "ada@example.com")
		m := b.record(t, fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/shop","type":"shop.paid","time":"2026-11-10T10:00:00Z","data":%s}`, id, data))
		require.NoError(t, b.handle(t, m))
	}
	record("p1", "10.5")
	record("p2", "2.25")

	ps, err := kr.Pseudonym(t.Context(), b.tenant, "ada@example.com")
	require.NoError(t, err)
	u, err := b.svc.QueryUsage(t.Context(), b.tenant, "spend", billing.UsageQuery{Customers: []string{ps}})
	require.NoError(t, err)
	require.Len(t, u.Data, 1)
	require.Equal(t, "12.75", u.Data[0].Value.String(), "the encrypted amounts are counted")
	require.NotNil(t, u.Data[0].Customer)
	require.Equal(t, ps, *u.Data[0].Customer, "an encrypted customer is kept as its pseudonym")
	var stored int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM billing_usage WHERE customer LIKE '%ada@%'`).Scan(&stored))
	require.Zero(t, stored, "no plain personal value in the usage table")

	// Without the keyring, the meter cannot count it and says which path.
	plainSvc := setup(t, nil)
	plainSvc.tenant = b.tenant
	plainSvc.meter(t, `{"slug":"spend2","event_type":"shop.paid","aggregation":"SUM","value_property":"$.amount"}`)
	err = plainSvc.handle(t, b.msgs[0])
	require.ErrorContains(t, err, "$.amount")
}
