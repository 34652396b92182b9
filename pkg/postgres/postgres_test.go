package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/postgres"
	"github.com/prost-platform/prost/pkg/prosttest"
)

func TestMain(m *testing.M) { prosttest.MainNoDatabase(m) }

// dbURL returns the test server's URL naming database name.
func dbURL(t *testing.T, name string) string {
	t.Helper()
	u, err := url.Parse(prosttest.ServerURL())
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// databaseExists asks the server's maintenance database.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), prosttest.ServerURL())
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))
	var exists bool
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists))
	return exists
}

// dropAtEnd removes the database when the test ends.
func dropAtEnd(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, prosttest.ServerURL())
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
}

func TestOpenCreatesMissingDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		db   string
	}{
		{"plain name", randomName("prost_pgtest_")},
		// Needs quoting: a dash and capitals must survive as written.
		{"name that needs quoting", randomName("Prost-PgTest-")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			dropAtEnd(t, tt.db)
			require.False(t, databaseExists(t, tt.db))

			pool, err := postgres.Open(ctx, postgres.Config{URL: dbURL(t, tt.db), MaxConns: 3})
			require.NoError(t, err)
			defer pool.Close()
			require.True(t, databaseExists(t, tt.db))
			var current string
			require.NoError(t, pool.QueryRow(ctx, `SELECT current_database()`).Scan(&current))
			require.Equal(t, tt.db, current)
			require.EqualValues(t, 3, pool.Config().MaxConns)

			// Opening an existing database is fine too.
			again, err := postgres.Open(ctx, postgres.Config{URL: dbURL(t, tt.db)})
			require.NoError(t, err)
			require.EqualValues(t, postgres.DefaultMaxConns, again.Config().MaxConns, "MaxConns defaults to DefaultMaxConns")
			require.Equal(t, 5*time.Second, again.Config().ConnConfig.ConnectTimeout, "ConnectTimeout defaults to 5s")
			again.Close()
		})
	}
}

// TestOpenConcurrently starts several "services" at once on a database that
// does not exist yet: all of them must come up.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	name := randomName("prost_pgtest_")
	dropAtEnd(t, name)

	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			pool, err := postgres.Open(ctx, postgres.Config{URL: dbURL(t, name), MaxConns: 1})
			if err == nil {
				err = pool.Ping(ctx)
				pool.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "opener %d", i)
	}
	require.True(t, databaseExists(t, name))
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	unreachable := "postgres://postgres@127.0.0.1:1/prost?sslmode=disable&connect_timeout=1"
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"unparsable url", "postgres://%zz", "parse DATABASE_URL"},
		{"unreachable server", unreachable, "postgres: connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, err := postgres.Open(ctx, postgres.Config{URL: tt.url, ConnectTimeout: time.Second})
			require.ErrorContains(t, err, tt.wantErr)
			require.Nil(t, pool)
		})
	}
}

// TestUUIDBinary: a pool from Open sends and reads uuid.UUID (alone, in
// arrays, through pointers, NULL) as the same values database/sql's methods
// gave, and does it without formatting them as text.
func TestUUIDBinary(t *testing.T) {
	name := randomName("prost_uuid_")
	dropAtEnd(t, name)
	pool, err := postgres.Open(t.Context(), postgres.Config{URL: dbURL(t, name)})
	require.NoError(t, err)
	defer pool.Close()
	ctx := t.Context()

	a, b := uuid.New(), uuid.New()
	var text string
	var got uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid::text, $1::uuid`, a).Scan(&text, &got))
	require.Equal(t, a.String(), text, "sent as its 16 bytes, read back by Postgres as the same UUID")
	require.Equal(t, a, got)

	var arr []uuid.UUID
	var arrText string
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid[], $1::uuid[]::text`, []uuid.UUID{a, b}).Scan(&arr, &arrText))
	require.Equal(t, []uuid.UUID{a, b}, arr)
	require.Equal(t, "{"+a.String()+","+b.String()+"}", arrText)

	var p *uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid`, &b).Scan(&p))
	require.NotNil(t, p)
	require.Equal(t, b, *p)
	require.NoError(t, pool.QueryRow(ctx, `SELECT NULL::uuid`).Scan(&p))
	require.Nil(t, p, "NULL into a pointer stays nil")
	// NULL into a uuid.UUID does what it did through (*uuid.UUID).Scan, on a
	// connection without RegisterUUID.
	plain, err := pgx.Connect(ctx, dbURL(t, name))
	require.NoError(t, err)
	defer plain.Close(context.WithoutCancel(ctx))
	want, got := a, a
	errPlain := plain.QueryRow(ctx, `SELECT NULL::uuid`).Scan(&want)
	errOurs := pool.QueryRow(ctx, `SELECT NULL::uuid`).Scan(&got)
	require.Equal(t, errPlain == nil, errOurs == nil, "plain: %v, registered: %v", errPlain, errOurs)
	require.Equal(t, want, got)
	var nilPtr *uuid.UUID
	var isNull bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT $1::uuid IS NULL`, nilPtr).Scan(&isNull))
	require.True(t, isNull)

	// The binary path is taken: pgx's plan for a uuid.UUID is PROST's, not
	// database/sql's Value (which formats the UUID as text).
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	plan := conn.Conn().TypeMap().PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, a)
	require.NotNil(t, plan)
	require.NotContains(t, fmt.Sprintf("%T", plan), "DriverValuer")
	buf, err := plan.Encode(a, nil)
	require.NoError(t, err)
	require.Equal(t, a[:], buf)
	var scanned uuid.UUID
	scan := conn.Conn().TypeMap().PlanScan(pgtype.UUIDOID, pgtype.BinaryFormatCode, &scanned)
	require.NotContains(t, fmt.Sprintf("%T", scan), "SQLScanner")
	require.NoError(t, scan.Scan(b[:], &scanned))
	require.Equal(t, b, scanned)
}
