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
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/prost-platform/prost/pkg/invalidate"
	"github.com/prost-platform/prost/pkg/migrate"
	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/natsembed"
	"github.com/prost-platform/prost/pkg/postgres"
	"github.com/prost-platform/prost/pkg/streams"
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
// database.
func CreateDatabase(ctx context.Context) (db *Database, drop func(), err error) {
	db, drop, err = createDatabase(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	if _, err := migrate.New(db.Pool).Up(ctx); err != nil {
		drop()
		return nil, nil, fmt.Errorf("prosttest: migrate: %w", err)
	}
	return db, drop, nil
}

// createDatabase makes an empty database, or a copy of template.
func createDatabase(ctx context.Context, template string) (*Database, func(), error) {
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
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	if _, err := admin.Exec(ctx, stmt); err != nil {
		return nil, nil, fmt.Errorf("prosttest: create database: %w", err)
	}
	drop := func() { dropDatabase(base, name) }
	u := *base
	u.Path = "/" + name
	pc, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		drop()
		return nil, nil, err
	}
	pc.MaxConns = 32
	pc.AfterConnect = postgres.AfterConnect // as postgres.Open's pools
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		drop()
		return nil, nil, err
	}
	return &Database{Name: name, URL: u.String(), Pool: pool}, func() { pool.Close(); drop() }, nil
}

func dropDatabase(base *url.URL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, base.String()); err == nil {
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = c.Close(ctx)
	}
}

// template is the migrated database, with no connections, that NewDatabase
// copies; Main makes it.
var template string

// NewDatabase returns a database of the test's own, a copy of the package's
// migrated template, dropped when the test ends: for tests whose assertions
// read tables as a whole (pending rows, counts, every tenant), which would
// otherwise depend on what other tests left. It needs the package's TestMain
// to call Main.
func NewDatabase(t testing.TB) *Database {
	t.Helper()
	if template == "" {
		t.Fatal("prosttest: NewDatabase needs TestMain to call prosttest.Main")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, drop, err := createDatabase(ctx, template)
	if err != nil {
		t.Fatalf("prosttest: %v", err)
	}
	t.Cleanup(drop)
	return db
}

// Option adjusts Main.
type Option func(*options)

type options struct {
	setup  func(ctx context.Context, db *Database) error
	unless string
}

// WithSetup runs setup on the package's database (and the template
// NewDatabase copies) after the migrations: extra tables the tests need.
func WithSetup(setup func(ctx context.Context, db *Database) error) Option {
	return func(o *options) { o.setup = setup }
}

// UnlessEnv makes Main run the tests plainly, with no database made and no
// leak check, when the environment variable name is set: for a test binary
// that re-executes itself as a helper process.
func UnlessEnv(name string) Option { return func(o *options) { o.unless = name } }

// Main is every test package's TestMain: it makes a migrated template
// database (for NewDatabase) and, when db is not nil, a database for the
// package in *db; runs the tests; drops the databases; and fails a passing
// run when a goroutine outlives the tests (goleak).
//
//	var testDB *prosttest.Database
//	func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }
func Main(m *testing.M, db **Database, opts ...Option) { os.Exit(run(m, db, opts)) }

// MainNoDatabase is Main for a package whose tests need no database.
func MainNoDatabase(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func run(m *testing.M, db **Database, opts []Option) int {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.unless != "" && os.Getenv(o.unless) != "" {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tpl, dropTpl, err := CreateDatabase(ctx)
	if err == nil && o.setup != nil {
		err = o.setup(ctx, tpl)
	}
	if err != nil {
		if dropTpl != nil {
			dropTpl()
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tpl.Pool.Close() // a template must have no connections
	template = tpl.Name
	defer dropTpl()
	if db != nil {
		d, drop, err := createDatabase(ctx, template)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		*db = d
		defer drop()
	}
	cancel()
	code := m.Run()
	if db != nil {
		(*db).Pool.Close()
	}
	if code == 0 {
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

// Bus starts a NATS server (see NATS) with PROST's streams declared as
// nats/streams/*.json of the repository describe them, and returns a
// JetStream context on a connection closed when the test ends.
func Bus(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(NATS(t).URL())
	if err != nil {
		t.Fatalf("prosttest: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("prosttest: %v", err)
	}
	cfgs, err := streams.Load(filepath.Join(RepoRoot(t), "nats", "streams"))
	if err != nil {
		t.Fatalf("prosttest: %v", err)
	}
	if err := streams.Ensure(t.Context(), js, cfgs, streams.Options{}); err != nil {
		t.Fatalf("prosttest: declare the streams: %v", err)
	}
	return js
}

// RepoRoot is the repository's root: the nearest directory above the test's
// own that holds go.work.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("prosttest: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("prosttest: no go.work above the test's directory")
		}
		dir = parent
	}
}

// SecureNATS starts an embedded nats-server like NATS, but private as PROST
// runs it: in operator mode with a freshly generated key set (pkg/natsauth),
// so every client must authenticate. It returns the server and the keys;
// connect as PROST's services with Connect.
func SecureNATS(t testing.TB) (*natsembed.Server, *natsauth.KeySet) {
	t.Helper()
	keys, err := natsauth.Generate()
	if err != nil {
		t.Fatalf("prosttest: %v", err)
	}
	dir := t.TempDir()
	s, err := natsembed.Start(natsembed.Config{Addr: "127.0.0.1:0", StoreDir: filepath.Join(dir, "store"), ServerName: "prost-test",
		Accounts: &natsembed.Accounts{OperatorJWT: keys.OperatorJWT, Preload: keys.Preload(), ResolverDir: filepath.Join(dir, "jwt")}})
	if err != nil {
		t.Fatalf("prosttest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s, keys
}

// Connect connects to url with creds (a .creds file's content; nil for no
// credentials) and closes the connection when the test ends.
func Connect(t testing.TB, url string, creds []byte, opts ...nats.Option) *nats.Conn {
	t.Helper()
	if creds != nil {
		o, err := natsauth.ConnectOption(creds)
		if err != nil {
			t.Fatalf("prosttest: %v", err)
		}
		opts = append(opts, o)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("prosttest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Feed runs an invalidation feed on pool until the test ends and returns it
// once it listens: a change committed after Feed returns reaches its
// subscribers.
func Feed(t testing.TB, pool *pgxpool.Pool) *invalidate.Feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := invalidate.New(pool, nil)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("invalidation feed: %v", err)
		}
	})
	select {
	case <-f.Listening():
	case <-time.After(10 * time.Second):
		t.Fatal("the invalidation feed did not start listening")
	}
	return f
}
