package eventstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

// TestMain gives the package one fresh migrated database, shared by every
// test (each records events of its own tenant), and fails the run when a
// goroutine outlives the tests.
func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// newEvent returns an event of tenant with a structured-mode envelope.
func newEvent(tenant uuid.UUID, source, id, typ string) eventstore.NewEvent {
	env, _ := json.Marshal(map[string]string{
		"specversion": "1.0", "id": id, "source": source, "type": typ, "tenantid": tenant.String(),
	})
	return eventstore.NewEvent{
		TenantID: tenant, Source: source, ID: id, Type: typ, Envelope: env,
		OutboxSubject: subjects.Event(tenant, subjects.Partition(source+"\x00"+id, 4), typ),
	}
}

// appendTx appends evs in a transaction of its own and commits it.
func appendTx(t *testing.T, evs ...eventstore.NewEvent) []eventstore.Outcome {
	t.Helper()
	return appendTxTo(t, testDB, evs...)
}

func appendTxTo(t *testing.T, db *prosttest.Database, evs ...eventstore.NewEvent) []eventstore.Outcome {
	t.Helper()
	var out []eventstore.Outcome
	err := pgx.BeginFunc(t.Context(), db.Pool, func(tx pgx.Tx) error {
		var err error
		out, err = eventstore.AppendTx(t.Context(), tx, evs)
		return err
	})
	require.NoError(t, err)
	require.Len(t, out, len(evs))
	return out
}

func countRows(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), query, args...).Scan(&n))
	return n
}

func tenantEvents(t *testing.T, tenant uuid.UUID) int {
	t.Helper()
	return countRows(t, `SELECT count(*) FROM events WHERE tenant_id = $1`, tenant)
}

func tenantOutbox(t *testing.T, tenant uuid.UUID) int {
	t.Helper()
	return countRows(t, `SELECT count(*) FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE e.tenant_id = $1`, tenant)
}

// holdIdentity inserts ev in a transaction it keeps open, so that whoever
// inserts the same (tenant, source, id) next waits for it. release rolls the
// transaction back, letting the waiter store its event.
func holdIdentity(t *testing.T, ev eventstore.NewEvent) (release func()) {
	t.Helper()
	tx, err := testDB.Pool.Begin(t.Context())
	require.NoError(t, err)
	_, err = eventstore.AppendTx(t.Context(), tx, []eventstore.NewEvent{ev})
	require.NoError(t, err)
	done := false
	release = func() {
		if !done {
			done = true
			require.NoError(t, tx.Rollback(context.WithoutCancel(t.Context())))
		}
	}
	t.Cleanup(release)
	return release
}

// committerPool opens a pool whose sessions carry a unique application_name,
// so a test can see in pg_stat_activity what the committer's writers do.
func committerPool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "committer-test-" + hex.EncodeToString(b[:])
	pc, err := pgxpool.ParseConfig(testDB.URL)
	require.NoError(t, err)
	pc.ConnConfig.RuntimeParams["application_name"] = name
	pc.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(t.Context(), pc)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, name
}

// waitLockWaiters waits until n sessions named app wait for a lock.
func waitLockWaiters(t *testing.T, app string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return countRows(t, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, app) == n
	}, 10*time.Second, 5*time.Millisecond, "the committer's writer never blocked on the held event")
}
