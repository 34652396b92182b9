package audit_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/subjects"
)

const auditConsumer = "governance-audit"

// storeEvents stores events "<prefix><i>" of a tenant as the gateway does
// and marks them published (by the relay) unless pending.
func storeEvents(t *testing.T, db *prosttest.Database, tenant uuid.UUID, prefix string, n int, pending bool) {
	t.Helper()
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		id := fmt.Sprintf("%s%d", prefix, i)
		env, _ := json.Marshal(map[string]string{"specversion": "1.0", "id": id, "source": "src", "type": "t", "tenantid": tenant.String()})
		evs[i] = eventstore.NewEvent{TenantID: tenant, Source: "src", ID: id, Type: "t", Envelope: env,
			OutboxSubject: subjects.Event(tenant, 0, "t")}
	}
	require.NoError(t, pgx.BeginFunc(t.Context(), db.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(t.Context(), tx, evs)
		return err
	}))
	if !pending {
		_, err := db.Pool.Exec(t.Context(), `UPDATE outbox SET published_at = now() WHERE published_at IS NULL AND refused_at IS NULL`)
		require.NoError(t, err)
	}
}

// audited appends the entries of events "<prefix><i>" for i in is.
func audited(t *testing.T, db *prosttest.Database, tenant uuid.UUID, prefix string, is ...int) {
	t.Helper()
	var recs []audit.Record
	for _, i := range is {
		recs = append(recs, audit.Record{TenantID: tenant, EventID: fmt.Sprintf("%s%d", prefix, i), EventSource: "src", EventType: "t"})
	}
	require.NoError(t, pgx.BeginFunc(t.Context(), db.Pool, func(tx pgx.Tx) error {
		_, err := audit.AppendTx(t.Context(), tx, recs)
		return err
	}))
}

// verifyAll runs a verification to its end, one call per budget, and
// returns every tenant's result and the number of calls.
func verifyAll(t *testing.T, db *prosttest.Database, o audit.VerifyOptions) ([]audit.VerifyResult, int) {
	t.Helper()
	var all []audit.VerifyResult
	for calls := 1; ; calls++ {
		p, err := audit.VerifyPaged(t.Context(), db.Pool, o)
		require.NoError(t, err)
		all = append(all, p.Chains...)
		if p.NextCursor == "" {
			return all, calls
		}
		o.Cursor = p.NextCursor
		require.Less(t, calls, 10_000)
	}
}

// TestVerifyFindsMissingEntries reproduces issue 12 item 4's last finding:
// with events published and never audited, `prost audit verify` exited 0,
// because it checked only that each chain was intact. Now it checks that
// every stored event has its entry and names the first one missing, leaving
// out the events the log is not expected to hold yet or at all.
func TestVerifyFindsMissingEntries(t *testing.T) {
	db := prosttest.NewDatabase(t)
	a, b := uuid.New(), uuid.New()
	storeEvents(t, db, a, "a-", 5, false)
	audited(t, db, a, "a-", 0, 1, 3, 4) // a-2 was never audited
	storeEvents(t, db, a, "refused-", 1, true)
	_, err := db.Pool.Exec(t.Context(), `UPDATE outbox SET refused_at = now() FROM events e
		WHERE e.seq = outbox.event_seq AND e.id = 'refused-0'`)
	require.NoError(t, err)
	storeEvents(t, db, a, "dead-", 1, false)
	storeEvents(t, db, a, "purged-", 1, false)
	for _, id := range []string{"dead-0", "purged-0"} {
		env, _ := json.Marshal(map[string]string{"id": id, "source": "src", "type": "t", "tenantid": a.String()})
		entry, err := dlq.DeadLetter(t.Context(), db.Pool, dlq.Failure{Consumer: auditConsumer, MsgID: subjects.MsgID(a, "src", id),
			Err: "boom", Event: env, Deliveries: 1}, dlq.ReasonPermanent)
		require.NoError(t, err)
		if id == "purged-0" {
			_, err = db.Pool.Exec(t.Context(), `UPDATE dlq_entries SET state = 'purged', purged_at = now(), purged_by = 'op' WHERE id = $1`, entry)
			require.NoError(t, err)
		}
	}
	storeEvents(t, db, b, "b-", 3, false)
	audited(t, db, b, "b-", 0, 1, 2)
	storeEvents(t, db, a, "pending-", 1, true) // last: storing marks what is pending published

	for _, budget := range []time.Duration{0, time.Nanosecond} {
		t.Run(fmt.Sprintf("budget %s", budget), func(t *testing.T) {
			res, calls := verifyAll(t, db, audit.VerifyOptions{Settle: -1, Consumer: auditConsumer, Budget: budget})
			if budget > 0 {
				require.Greater(t, calls, 2, "one step per call")
			}
			byTenant := map[uuid.UUID]audit.VerifyResult{}
			for _, r := range res {
				byTenant[r.TenantID] = r
			}
			require.Len(t, byTenant, 2)
			ra := byTenant[a]
			require.Nil(t, ra.Break)
			require.False(t, ra.OK())
			require.EqualValues(t, 4, ra.Entries)
			require.EqualValues(t, 6, ra.Events, "a-0..4 and dead-0: not the pending, refused or purged ones")
			require.EqualValues(t, 2, ra.Missing)
			require.Equal(t, "a-2", ra.FirstMissing.EventID)
			require.Equal(t, "src", ra.FirstMissing.EventSource)
			require.Contains(t, ra.Problem(), `the first is event "a-2"`)
			rb := byTenant[b]
			require.True(t, rb.OK(), rb.Problem())
			require.EqualValues(t, 3, rb.Events)
		})
	}

	// The dead-lettered one, named when it is the first.
	one, _ := verifyAll(t, db, audit.VerifyOptions{Tenant: &a, Settle: -1, Consumer: auditConsumer})
	require.Len(t, one, 1)
	audited(t, db, a, "a-", 2)
	one, _ = verifyAll(t, db, audit.VerifyOptions{Tenant: &a, Settle: -1, Consumer: auditConsumer})
	require.EqualValues(t, 1, one[0].Missing)
	require.Equal(t, "dead-0", one[0].FirstMissing.EventID)
	require.Regexp(t, `^dead-lettered by governance-audit \(dlq entry \d+\)$`, one[0].FirstMissing.Note)

	// Events younger than the settle time are not expected yet.
	one, _ = verifyAll(t, db, audit.VerifyOptions{Tenant: &a, Settle: time.Hour, Consumer: auditConsumer})
	require.True(t, one[0].OK())
	require.Zero(t, one[0].Events)
}

// TestVerifyPagesALongLog: a log longer than any one page is verified in
// budgeted calls with a cursor, each reading a page at a time, and finds a
// break or a missing entry past the first pages as a single call does.
func TestVerifyPagesALongLog(t *testing.T) {
	db := prosttest.NewDatabase(t)
	tenant := uuid.New()
	const n = 2600
	storeEvents(t, db, tenant, "e-", n, false)
	is := make([]int, 0, n)
	for i := range n {
		if i != 2345 {
			is = append(is, i)
		}
	}
	audited(t, db, tenant, "e-", is...)

	res, calls := verifyAll(t, db, audit.VerifyOptions{Settle: -1, Budget: time.Nanosecond})
	require.GreaterOrEqual(t, calls, 5, "3 pages of the chain, 2 of the events")
	require.Len(t, res, 1)
	require.Nil(t, res[0].Break)
	require.EqualValues(t, n-1, res[0].Entries)
	require.EqualValues(t, n, res[0].Events)
	require.EqualValues(t, 1, res[0].Missing)
	require.Equal(t, "e-2345", res[0].FirstMissing.EventID)

	// A chain altered past the first page is broken there.
	_, err := db.Pool.Exec(t.Context(), `ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(t.Context(), `UPDATE audit_log SET actor_id = 'mallory' WHERE tenant_id = $1 AND seq = 2001`, tenant)
	require.NoError(t, err)
	_, err = db.Pool.Exec(t.Context(), `ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only`)
	require.NoError(t, err)
	res, _ = verifyAll(t, db, audit.VerifyOptions{Settle: -1, Budget: time.Nanosecond})
	require.NotNil(t, res[0].Break)
	require.EqualValues(t, 2001, res[0].Break.Seq)
	require.EqualValues(t, 1, res[0].Missing, "completeness is checked past a break too")

	// A cursor is this route's own.
	_, err = audit.VerifyPaged(t.Context(), db.Pool, audit.VerifyOptions{Cursor: "bogus"})
	require.ErrorIs(t, err, problem.Malformed)
	p, err := audit.VerifyPaged(t.Context(), db.Pool, audit.VerifyOptions{Budget: time.Nanosecond})
	require.NoError(t, err)
	require.NotEmpty(t, p.NextCursor)
	other := uuid.New()
	_, err = audit.VerifyPaged(t.Context(), db.Pool, audit.VerifyOptions{Tenant: &other, Cursor: p.NextCursor})
	require.ErrorIs(t, err, problem.Malformed)
}
