// Package migrate applies PROST's numbered, embedded SQL migrations.
//
// Migrations live in migrations/ as NNN_name.up.sql and NNN_name.down.sql and
// are compiled into the binary. Each one runs in its own transaction together
// with the row that records it in prost_migrations, so a failed migration
// leaves nothing behind. Concurrent migrators (several services starting at
// once) are serialised with a Postgres advisory lock.
package migrate

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var files embed.FS

// lockKey is the advisory lock that serialises migrators ("prost-mi").
const lockKey int64 = 0x70726f73742d6d69

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// Status is a migration and whether (and when) it has been applied.
type Status struct {
	Migration
	AppliedAt *time.Time
}

var fileName = regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.(up|down)\.sql$`)

// All returns every embedded migration in version order.
func All() ([]Migration, error) {
	entries, err := fs.ReadDir(files, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrate: unexpected file %q", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(files, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		mig := byVersion[v]
		if mig == nil {
			mig = &Migration{Version: v, Name: m[2]}
			byVersion[v] = mig
		} else if mig.Name != m[2] {
			return nil, fmt.Errorf("migrate: version %d has two names: %q and %q", v, mig.Name, m[2])
		}
		if m[3] == "up" {
			mig.Up = string(body)
		} else {
			mig.Down = string(body)
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migrate: version %d needs both an up and a down file", m.Version)
		}
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	return out, nil
}

// Migrator applies and reverts migrations on one database.
type Migrator struct {
	pool *pgxpool.Pool
}

// New returns a Migrator for the database behind pool.
func New(pool *pgxpool.Pool) *Migrator { return &Migrator{pool: pool} }

// Up applies every pending migration in order and returns the versions it applied.
func (m *Migrator) Up(ctx context.Context) ([]int, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	var applied []int
	err = m.locked(ctx, func(conn *pgxpool.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for _, mig := range all {
			if _, ok := done[mig.Version]; ok {
				continue
			}
			if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, mig.Up); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO prost_migrations (version, name) VALUES ($1, $2)`, mig.Version, mig.Name)
				return err
			}); err != nil {
				return fmt.Errorf("migrate: up %03d_%s: %w", mig.Version, mig.Name, err)
			}
			applied = append(applied, mig.Version)
		}
		return nil
	})
	return applied, err
}

// Down reverts the latest steps applied migrations (all of them when steps <= 0)
// and returns the versions it reverted.
func (m *Migrator) Down(ctx context.Context, steps int) ([]int, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	var reverted []int
	err = m.locked(ctx, func(conn *pgxpool.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for i := len(all) - 1; i >= 0; i-- {
			mig := all[i]
			if _, ok := done[mig.Version]; !ok {
				continue
			}
			if steps > 0 && len(reverted) == steps {
				break
			}
			if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, mig.Down); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `DELETE FROM prost_migrations WHERE version = $1`, mig.Version)
				return err
			}); err != nil {
				return fmt.Errorf("migrate: down %03d_%s: %w", mig.Version, mig.Name, err)
			}
			reverted = append(reverted, mig.Version)
		}
		return nil
	})
	return reverted, err
}

// Status lists every embedded migration and when it was applied, if it was.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(all))
	err = m.locked(ctx, func(conn *pgxpool.Conn) error {
		done, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for _, mig := range all {
			s := Status{Migration: mig}
			if at, ok := done[mig.Version]; ok {
				s.AppliedAt = &at
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

func (m *Migrator) locked(ctx context.Context, fn func(*pgxpool.Conn) error) (err error) {
	conn, err := m.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must run even when ctx was cancelled.
		_, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey)
		err = errors.Join(err, uerr)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS prost_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return fn(conn)
}

func appliedVersions(ctx context.Context, conn *pgxpool.Conn) (map[int]time.Time, error) {
	rows, err := conn.Query(ctx, `SELECT version, applied_at FROM prost_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	done := map[int]time.Time{}
	var v int
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&v, &at}, func() error {
		done[v] = at
		return nil
	})
	return done, err
}
