// Package prosttest starts the real parts PROST's tests need: a fresh,
// migrated Postgres database per test package and an embedded nats-server
// with JetStream on a free port. It is imported only from _test.go files, so
// it never reaches a production binary.
//
// The Postgres server is taken from PROST_TEST_DATABASE_URL, defaulting to
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable; each database
// made here gets a random name and is dropped when the package's tests end.
package prosttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/prost-platform/prost/pkg/migrate"
	"github.com/prost-platform/prost/pkg/natsembed"
)

// ServerURL is the Postgres server the tests use.
func ServerURL() string {
	if u := os.Getenv("PROST_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Database is a fresh, migrated database.
type Database struct {
	Name string
	URL  string
	Pool *pgxpool.Pool
}

// CreateDatabase makes a new database with a random name, applies every
// migration and opens a pool on it. drop closes the pool and removes the
// database. Use it from TestMain; tests use DB.
func CreateDatabase(ctx context.Context) (db *Database, drop func(), err error) {
	base, err := url.Parse(ServerURL())
	if err != nil {
		return nil, nil, err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "prost_test_" + hex.EncodeToString(b[:])

	admin, err := pgx.Connect(ctx, base.String())
	if err != nil {
		return nil, nil, fmt.Errorf("prosttest: connect to %s: %w", base.Redacted(), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, nil, fmt.Errorf("prosttest: create database: %w", err)
	}
	u := *base
	u.Path = "/" + name
	pc, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, nil, err
	}
	pc.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, nil, err
	}
	drop = func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base.String()); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	}
	if _, err := migrate.New(pool).Up(ctx); err != nil {
		drop()
		return nil, nil, fmt.Errorf("prosttest: migrate: %w", err)
	}
	return &Database{Name: name, URL: u.String(), Pool: pool}, drop, nil
}

// Main runs a test package with a fresh database stored in *db, dropping it afterwards.
//
//	var testDB *prosttest.Database
//	func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }
func Main(m *testing.M, db **Database) { os.Exit(run(m, db, false)) }

// MainCheckingLeaks is Main that also fails a passing run when a goroutine
// outlives the tests (checked with goleak after the database is dropped).
func MainCheckingLeaks(m *testing.M, db **Database) { os.Exit(run(m, db, true)) }

// MainNoDatabase runs a test package that needs no database, failing a
// passing run when a goroutine outlives the tests.
func MainNoDatabase(m *testing.M) { os.Exit(run(m, nil, true)) }

func run(m *testing.M, db **Database, leaks bool) int {
	if db == nil {
		code := m.Run()
		if code == 0 && leaks {
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	d, drop, err := CreateDatabase(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*db = d
	code := m.Run()
	drop()
	if code == 0 && leaks {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// NATS starts an embedded nats-server with JetStream on a free port with its
// store in a temporary directory, and shuts it down when the test ends.
func NATS(t testing.TB) *natsembed.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Config{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), ServerName: "prost-test"})
	if err != nil {
		t.Fatalf("prosttest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}
