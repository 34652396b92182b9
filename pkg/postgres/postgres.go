// Package postgres opens PROST's connection pool, creating the database when it
// does not exist yet.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the database PROST uses when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/prost?sslmode=disable"

// DefaultMaxConns caps a pool when Config sets no MaxConns.
const DefaultMaxConns = 24

// Config tunes the pool. The zero value is usable.
type Config struct {
	// URL is the connection string. Defaults to DefaultURL.
	URL string
	// MaxConns caps the pool. Defaults to DefaultMaxConns.
	MaxConns int32
	// ConnectTimeout bounds each connection attempt. Defaults to 5s.
	ConnectTimeout time.Duration
}

// Open creates the database named in cfg.URL if it is missing, then returns a
// pool that has answered a ping.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DATABASE_URL: %w", err)
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pc.AfterConnect = AfterConnect
	if err := EnsureDatabase(ctx, pc.ConnConfig); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return pool, nil
}

// AfterConnect prepares each new connection of a PROST pool: it registers
// RegisterUUID's codec. Open sets it; a pool made elsewhere (the tests') sets
// it too, to run the same encodings.
func AfterConnect(_ context.Context, c *pgx.Conn) error {
	RegisterUUID(c.TypeMap())
	return nil
}

// EnsureDatabase creates cc.Database when it does not exist, connecting to the
// server's "postgres" database to do so.
func EnsureDatabase(ctx context.Context, cc *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("postgres: connect: %w", err)
	}
	admin := cc.Copy()
	admin.Database = "postgres"
	aconn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("postgres: connect to create database %q: %w", cc.Database, err)
	}
	defer aconn.Close(ctx)
	_, err = aconn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cc.Database}.Sanitize())
	if err != nil && !createdConcurrently(err) {
		return fmt.Errorf("postgres: create database %q: %w", cc.Database, err)
	}
	return nil
}

// createdConcurrently reports whether CREATE DATABASE failed only because
// another process created the same database first. Postgres says so with
// duplicate_database when the other creation had committed, and with a
// unique violation on pg_database's name index when both ran at once.
func createdConcurrently(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "42P04" || // duplicate_database
		pgErr.Code == "23505" && pgErr.ConstraintName == "pg_database_datname_index" // unique_violation
}
