package migrate_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/migrate"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

// TestMain gives the package one fresh migrated database and fails the run
// when a goroutine outlives the tests.
func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// freshDB is a database of the test's own, migrated by prosttest, dropped at
// the end of the test.
func freshDB(t *testing.T) *prosttest.Database {
	t.Helper()
	db, drop, err := prosttest.CreateDatabase(t.Context())
	require.NoError(t, err)
	t.Cleanup(drop)
	return db
}

func versions(ms []migrate.Migration) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.Version
	}
	return out
}

// tables lists the tables of the public schema.
func tables(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		out = append(out, n)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestAll(t *testing.T) {
	t.Parallel()
	all, err := migrate.All()
	require.NoError(t, err)
	require.NotEmpty(t, all)

	// Every file in migrations/ is used, once, by the migration it names.
	entries, err := os.ReadDir("migrations")
	require.NoError(t, err)
	files := map[string]bool{}
	for _, e := range entries {
		files[e.Name()] = true
	}
	require.Len(t, files, 2*len(all), "every migration is one up and one down file")
	for i, m := range all {
		require.Equal(t, i+1, m.Version, "versions are 1..n without gaps, in order")
		require.NotEmpty(t, m.Name)
		require.NotEmpty(t, strings.TrimSpace(m.Up))
		require.NotEmpty(t, strings.TrimSpace(m.Down))
		require.NotEqual(t, m.Up, m.Down)
		for _, dir := range []string{"up", "down"} {
			name := fmt.Sprintf("%03d_%s.%s.sql", m.Version, m.Name, dir)
			require.True(t, files[name], "migration %d has no file %s", m.Version, name)
			body, err := os.ReadFile("migrations/" + name)
			require.NoError(t, err)
			if dir == "up" {
				require.Equal(t, string(body), m.Up)
			} else {
				require.Equal(t, string(body), m.Down)
			}
		}
	}
}

func TestUpIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	m := migrate.New(testDB.Pool)

	// prosttest already applied everything: nothing is left to do, twice.
	for range 2 {
		applied, err := m.Up(ctx)
		require.NoError(t, err)
		require.Empty(t, applied)
	}

	all, err := migrate.All()
	require.NoError(t, err)
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st, len(all))
	var prev time.Time
	for i, s := range st {
		require.Equal(t, all[i].Version, s.Version)
		require.NotNil(t, s.AppliedAt, "migration %d must be reported applied", s.Version)
		require.WithinDuration(t, time.Now(), *s.AppliedAt, 5*time.Minute)
		require.False(t, s.AppliedAt.Before(prev), "migrations are applied in version order")
		prev = *s.AppliedAt
	}
	require.Subset(t, tables(t, testDB.Pool), []string{"apps", "events", "outbox", "consumer_processed", "audit_log", "audit_heads", "prost_migrations"})
}

// TestUpDownUp reverts everything on a database of its own, checks the schema
// is gone, and applies it all again; then does the same one step at a time.
func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := freshDB(t)
	m := migrate.New(db.Pool)
	all, err := migrate.All()
	require.NoError(t, err)
	want := versions(all)
	wantReversed := slices.Clone(want)
	slices.Reverse(wantReversed)

	reverted, err := m.Down(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, wantReversed, reverted, "Down(0) reverts everything, newest first")
	require.Equal(t, []string{"prost_migrations"}, tables(t, db.Pool), "Down must leave no table behind but the ledger")
	var funcs int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_proc WHERE proname LIKE 'prost_%'`).Scan(&funcs))
	require.Zero(t, funcs, "Down must drop the functions too")
	st, err := m.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.Nil(t, s.AppliedAt, "migration %d is still reported applied", s.Version)
	}

	// Nothing left to revert.
	reverted, err = m.Down(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, reverted)

	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, want, applied)
	st, err = m.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.NotNil(t, s.AppliedAt)
	}

	// Steps: Down(1) reverts only the newest, Up puts it back.
	last := want[len(want)-1]
	reverted, err = m.Down(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []int{last}, reverted)
	st, err = m.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.Equal(t, s.Version != last, s.AppliedAt != nil, "migration %d", s.Version)
	}
	reverted, err = m.Down(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, wantReversed[1:3], reverted)
	applied, err = m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, want[len(want)-3:], applied)

	// The re-applied schema works: an event and its outbox row can be written.
	_, err = db.Pool.Exec(ctx, `INSERT INTO events (tenant_id, source, id, type, envelope) VALUES (gen_random_uuid(), 's', 'i', 't', '{}')`)
	require.NoError(t, err)
}

// TestConcurrentUp runs two migrators (two "processes", each with its own
// pool) at once on an empty schema: the advisory lock lets exactly one apply
// each migration, and neither fails.
func TestConcurrentUp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := freshDB(t)
	_, err := migrate.New(db.Pool).Down(ctx, 0)
	require.NoError(t, err)

	const n = 4
	var wg sync.WaitGroup
	results := make([][]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		pool, err := pgxpool.New(ctx, db.URL)
		require.NoError(t, err)
		defer pool.Close()
		wg.Go(func() {
			<-start
			results[i], errs[i] = migrate.New(pool).Up(ctx)
		})
	}
	close(start)
	wg.Wait()

	var got []int
	for i := range n {
		require.NoError(t, errs[i])
		got = append(got, results[i]...)
	}
	all, err := migrate.All()
	require.NoError(t, err)
	slices.Sort(got)
	require.Equal(t, versions(all), got, "each migration is applied exactly once across the migrators")

	var rows int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM prost_migrations`).Scan(&rows))
	require.Equal(t, len(all), rows)
}

// TestHotTablesIndexes pins the indexes of the tables every accepted event
// writes a row to: each index is a write per event, so one is added only for
// a query that reads through it (and this list with it).
func TestHotTablesIndexes(t *testing.T) {
	t.Parallel()
	want := map[string][]string{
		"consumer_processed": {"consumer_processed_pkey"},
		"audit_log":          {"audit_log_event", "audit_log_pkey"},
		"outbox":             {"outbox_pending", "outbox_pkey", "outbox_refused"},
	}
	for table, idx := range want {
		rows, err := testDB.Pool.Query(t.Context(), `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 ORDER BY indexname`, table)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, idx, got, "indexes of %s", table)
	}
}
