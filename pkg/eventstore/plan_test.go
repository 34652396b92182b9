package eventstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/eventstore"
)

// capture records the SQL and arguments of the queries a pool runs.
type capture struct {
	mu   sync.Mutex
	sql  string
	args []any
}

func (c *capture) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "FROM events e") {
		c.mu.Lock()
		c.sql, c.args = d.SQL, d.Args
		c.mu.Unlock()
	}
	return ctx
}

func (c *capture) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestListFiltersUseIndexes: reading a tenant's events by time or source is
// planned with indexes, never a scan of the whole events table, so its cost
// stays flat as the table grows. (Measured at 3M rows in make bench.)
func TestListFiltersUseIndexes(t *testing.T) {
	tr := &capture{}
	pc, err := pgxpool.ParseConfig(testDB.URL)
	require.NoError(t, err)
	pc.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(t.Context(), pc)
	require.NoError(t, err)
	defer pool.Close()
	tenant := uuid.New()
	source := "/plan"
	for _, c := range []struct {
		p     eventstore.ListParams
		index string
	}{
		{eventstore.ListParams{TenantID: tenant, Since: time.Now().Add(-time.Hour)}, "events_tenant_recorded"},
		{eventstore.ListParams{TenantID: tenant, Source: source}, "events_tenant_source_xid_seq"},
		{eventstore.ListParams{TenantID: tenant, Type: "t"}, "events_tenant_type_xid_seq"},
		{eventstore.ListParams{TenantID: tenant}, "events_tenant_xid_seq"},
		{eventstore.ListParams{TenantID: tenant, Since: time.Now().Add(-time.Hour), Source: source}, "events_tenant_recorded"},
	} {
		p := c.p
		_, err := eventstore.List(t.Context(), pool, p)
		require.NoError(t, err)
		tr.mu.Lock()
		sql, args := tr.sql, tr.args
		tr.mu.Unlock()
		require.NotEmpty(t, sql)
		var plan []string
		err = pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(t.Context(), "SET LOCAL enable_seqscan = off"); err != nil {
				return err
			}
			rows, err := tx.Query(t.Context(), "EXPLAIN "+sql, args...)
			if err != nil {
				return err
			}
			plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		require.NoError(t, err)
		text := strings.Join(plan, "\n")
		require.NotContains(t, text, "Seq Scan", "the read must use an index:\n%s", text)
		require.Contains(t, text, c.index, "the filter is served by its index:\n%s", text)
	}
}
