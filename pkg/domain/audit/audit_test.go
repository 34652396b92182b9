package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

// TestMain gives the package one fresh migrated database, shared by every
// test (each writes the chains of tenants of its own), and fails the run when
// a goroutine outlives the tests.
func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

func records(tenant uuid.UUID, prefix string, n int) []audit.Record {
	out := make([]audit.Record, n)
	for i := range out {
		out[i] = audit.Record{TenantID: tenant, EventID: prefix + strconv.Itoa(i), EventSource: "src", EventType: "t", ActorID: "u1", Action: "create"}
	}
	return out
}

// appendTx appends recs in a transaction of its own.
func appendTx(t *testing.T, recs []audit.Record) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		var err error
		out, err = audit.AppendTx(t.Context(), tx, recs)
		return err
	})
	require.NoError(t, err)
	return out
}

// chain returns a tenant's whole chain.
func chain(t *testing.T, tenant uuid.UUID) []audit.Entry {
	t.Helper()
	var all []audit.Entry
	cursor := ""
	for {
		p, err := audit.List(t.Context(), testDB.Pool, tenant, cursor, 1000)
		require.NoError(t, err)
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all
		}
		cursor = p.NextCursor
	}
}

// requireValidChain checks a chain link by link, independently of Verify.
func requireValidChain(t *testing.T, entries []audit.Entry) {
	t.Helper()
	prev := audit.Genesis
	for i, e := range entries {
		require.Equal(t, int64(i+1), e.Seq, "no gaps")
		require.Equal(t, prev, e.PrevHash, "entry %d links to its predecessor", e.Seq)
		sum := sha256.Sum256(append([]byte(e.PrevHash), e.Canonical()...))
		require.Equal(t, hex.EncodeToString(sum[:]), e.Hash, "entry %d", e.Seq)
		prev = e.Hash
	}
}

func requireVerifies(t *testing.T, tenant uuid.UUID, entries int) {
	t.Helper()
	res, err := audit.Verify(t.Context(), testDB.Pool, tenant)
	require.NoError(t, err)
	require.Nil(t, res.Break, "chain of %s should verify", tenant)
	require.EqualValues(t, entries, res.Entries)
	require.Equal(t, tenant, res.TenantID)
}

func TestAppendTxChains(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	first := appendTx(t, records(tenant, "a", 3))
	second := appendTx(t, records(tenant, "b", 2))
	require.Len(t, first, 3)
	require.Len(t, second, 2)
	require.Equal(t, audit.Genesis, first[0].PrevHash)
	require.Equal(t, first[2].Hash, second[0].PrevHash, "a later transaction continues the chain")

	stored := chain(t, tenant)
	require.Equal(t, append(first, second...), stored, "AppendTx returns exactly what it stored")
	requireValidChain(t, stored)
	for i, id := range []string{"a0", "a1", "a2", "b0", "b1"} {
		require.Equal(t, id, stored[i].EventID)
		require.Equal(t, "u1", stored[i].ActorID)
		require.Equal(t, "create", stored[i].Action)
		require.Equal(t, time.UTC, stored[i].RecordedAt.Location())
	}
	requireVerifies(t, tenant, 5)

	out, err := audit.AppendTx(t.Context(), nil, nil)
	require.NoError(t, err)
	require.Empty(t, out)
}

// TestAppendTxSeveralTenants: one call extends each tenant's own chain, in
// the order given within the tenant.
func TestAppendTxSeveralTenants(t *testing.T) {
	t.Parallel()
	a, b := uuid.New(), uuid.New()
	recs := []audit.Record{
		{TenantID: a, EventID: "a1"}, {TenantID: b, EventID: "b1"}, {TenantID: a, EventID: "a2"},
		{TenantID: b, EventID: "b2"}, {TenantID: a, EventID: "a3"},
	}
	out := appendTx(t, recs)
	require.Len(t, out, len(recs))
	for tenant, want := range map[uuid.UUID][]string{a: {"a1", "a2", "a3"}, b: {"b1", "b2"}} {
		entries := chain(t, tenant)
		requireValidChain(t, entries)
		var got []string
		for _, e := range entries {
			got = append(got, e.EventID)
		}
		require.Equal(t, want, got)
		requireVerifies(t, tenant, len(want))
	}
	tenants, err := audit.Tenants(t.Context(), testDB.Pool)
	require.NoError(t, err)
	require.Contains(t, tenants, a)
	require.Contains(t, tenants, b)
}

// TestAppendTxConcurrent: many transactions extend one new chain at once
// (the first ones race to create its head); the result is one chain without
// gaps or forks, each transaction's entries consecutive and in order. A
// second part appends to two tenants in opposite orders, which must not
// deadlock.
func TestAppendTxConcurrent(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	const goroutines, txs, per = 8, 8, 3
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*txs)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range txs {
				err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
					_, err := audit.AppendTx(t.Context(), tx, records(tenant, fmt.Sprintf("g%d-t%d-", g, i), per))
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	entries := chain(t, tenant)
	require.Len(t, entries, goroutines*txs*per)
	requireValidChain(t, entries)
	for i := 0; i < len(entries); i += per {
		prefix := entries[i].EventID[:len(entries[i].EventID)-1]
		for j := range per {
			require.Equal(t, prefix+strconv.Itoa(j), entries[i+j].EventID, "a transaction's entries are consecutive")
		}
	}
	requireVerifies(t, tenant, goroutines*txs*per)

	a, b := uuid.New(), uuid.New()
	wg = sync.WaitGroup{}
	errs = make(chan error, 2*txs)
	for _, order := range [][2]uuid.UUID{{a, b}, {b, a}} {
		wg.Go(func() {
			for i := range txs {
				err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
					_, err := audit.AppendTx(t.Context(), tx, []audit.Record{
						{TenantID: order[0], EventID: "x" + strconv.Itoa(i)},
						{TenantID: order[1], EventID: "y" + strconv.Itoa(i)},
					})
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "opposite tenant orders must not deadlock")
	}
	requireVerifies(t, a, 2*txs)
	requireVerifies(t, b, 2*txs)
}

// tamper runs sql with the append-only triggers bypassed, as an attacker
// with superuser rights could.
func tamper(t *testing.T, sql string, args ...any) {
	t.Helper()
	err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
		tag, err := tx.Exec(t.Context(), sql, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("tampering changed nothing: %s", sql)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestVerifyReportsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tamper  func(t *testing.T, tenant uuid.UUID, entries []audit.Entry)
		wantSeq int64
	}{
		{
			name: "changed field",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `UPDATE audit_log SET action = 'x' WHERE tenant_id = $1 AND seq = 3`, tenant)
			},
			wantSeq: 3,
		},
		{
			name: "changed first entry",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `UPDATE audit_log SET actor_id = 'someone else' WHERE tenant_id = $1 AND seq = 1`, tenant)
			},
			wantSeq: 1,
		},
		{
			name: "changed time by a microsecond",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `UPDATE audit_log SET recorded_at = recorded_at + interval '1 microsecond' WHERE tenant_id = $1 AND seq = 4`, tenant)
			},
			wantSeq: 4,
		},
		{
			name: "changed field with its hash recomputed",
			tamper: func(t *testing.T, tenant uuid.UUID, entries []audit.Entry) {
				e := entries[2]
				e.Action = "x"
				tamper(t, `UPDATE audit_log SET action = 'x', hash = $2 WHERE tenant_id = $1 AND seq = 3`, tenant, e.ComputeHash())
			},
			wantSeq: 4, // entry 3 verifies on its own; entry 4 no longer links to it
		},
		{
			name: "swapped entries",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `UPDATE audit_log a SET event_id = b.event_id, event_source = b.event_source, event_type = b.event_type,
					actor_id = b.actor_id, action = b.action, recorded_at = b.recorded_at, prev_hash = b.prev_hash, hash = b.hash
					FROM audit_log b WHERE a.tenant_id = $1 AND b.tenant_id = $1 AND a.seq IN (2, 3) AND b.seq = 5 - a.seq`, tenant)
			},
			wantSeq: 2,
		},
		{
			name: "deleted entry",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `DELETE FROM audit_log WHERE tenant_id = $1 AND seq = 2`, tenant)
			},
			wantSeq: 2,
		},
		{
			name: "deleted last entry",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `DELETE FROM audit_log WHERE tenant_id = $1 AND seq = 5`, tenant)
			},
			wantSeq: 5,
		},
		{
			name: "deleted head",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `DELETE FROM audit_heads WHERE tenant_id = $1`, tenant)
			},
			wantSeq: 5,
		},
		{
			name: "tampered head hash",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `UPDATE audit_heads SET hash = $2 WHERE tenant_id = $1`, tenant, audit.Genesis)
			},
			wantSeq: 5,
		},
		{
			name: "head ahead of the entries",
			tamper: func(t *testing.T, tenant uuid.UUID, _ []audit.Entry) {
				tamper(t, `UPDATE audit_heads SET seq = 6 WHERE tenant_id = $1`, tenant)
			},
			wantSeq: 6,
		},
		{
			name: "forged entry appended without the head",
			tamper: func(t *testing.T, tenant uuid.UUID, entries []audit.Entry) {
				e := audit.Entry{TenantID: tenant, Seq: 6, EventID: "forged", RecordedAt: time.Now().UTC().Truncate(time.Microsecond), PrevHash: entries[4].Hash}
				e.Hash = e.ComputeHash()
				tamper(t, `INSERT INTO audit_log (tenant_id, seq, event_id, event_source, event_type, recorded_at, prev_hash, hash) VALUES ($1, 6, 'forged', '', '', $2, $3, $4)`,
					tenant, e.RecordedAt, e.PrevHash, e.Hash)
			},
			wantSeq: 6,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := uuid.New()
			entries := appendTx(t, records(tenant, "e", 5))
			requireVerifies(t, tenant, 5)

			tt.tamper(t, tenant, entries)
			res, err := audit.Verify(t.Context(), testDB.Pool, tenant)
			require.NoError(t, err)
			require.NotNil(t, res.Break, "tampering must be reported")
			require.Equal(t, tt.wantSeq, res.Break.Seq, "reason: %s", res.Break.Reason)
			require.Equal(t, tenant, res.Break.TenantID)
			require.NotEmpty(t, res.Break.Reason)
			require.Contains(t, res.Break.Error(), tenant.String())
		})
	}
}

// TestVerifyLongChain crosses Verify's internal page of 1,000 entries.
func TestVerifyLongChain(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	appendTx(t, records(tenant, "e", 1003))
	appendTx(t, records(tenant, "f", 2))
	requireVerifies(t, tenant, 1005)

	tamper(t, `UPDATE audit_log SET event_type = 'x' WHERE tenant_id = $1 AND seq = 1002`, tenant)
	res, err := audit.Verify(t.Context(), testDB.Pool, tenant)
	require.NoError(t, err)
	require.NotNil(t, res.Break)
	require.EqualValues(t, 1002, res.Break.Seq)
	require.EqualValues(t, 1001, res.Entries, "entries before the break were verified")
}

// TestVerifyWhileAppending: an untouched chain verifies while it grows.
func TestVerifyWhileAppending(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	appendTx(t, records(tenant, "seed", 3))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_ = pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
					_, err := audit.AppendTx(ctx, tx, records(tenant, fmt.Sprintf("g%d-%d-", g, i), 1))
					return err
				})
			}
		})
	}
	for i := range 150 {
		res, err := audit.Verify(t.Context(), testDB.Pool, tenant)
		require.NoError(t, err)
		require.Nil(t, res.Break, "verification %d of an untouched chain reported a break", i)
	}
}

// TestAuditLogIsAppendOnly is not parallel: TRUNCATE waits for every
// transaction on the log.
func TestAuditLogIsAppendOnly(t *testing.T) {
	tenant := uuid.New()
	appendTx(t, records(tenant, "e", 2))
	tests := []struct {
		name, sql string
		args      []any
	}{
		{"update", `UPDATE audit_log SET action = 'x' WHERE tenant_id = $1`, []any{tenant}},
		{"delete", `DELETE FROM audit_log WHERE tenant_id = $1`, []any{tenant}},
		{"truncate", `TRUNCATE audit_log`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := testDB.Pool.Begin(t.Context())
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(t.Context()) }()
			_, err = tx.Exec(t.Context(), tt.sql, tt.args...)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "42501", pgErr.Code)
			require.Contains(t, pgErr.Message, "append-only")
		})
	}
	requireVerifies(t, tenant, 2)
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tenant := uuid.New()
	want := appendTx(t, records(tenant, "e", 5))
	appendTx(t, records(uuid.New(), "other", 3))

	for _, limit := range []int{1, 2, 5, 6} {
		var got []audit.Entry
		cursor := ""
		for pages := 1; ; pages++ {
			require.LessOrEqual(t, pages, 5)
			p, err := audit.List(ctx, testDB.Pool, tenant, cursor, limit)
			require.NoError(t, err)
			require.LessOrEqual(t, len(p.Items), limit)
			got = append(got, p.Items...)
			if p.NextCursor == "" {
				break
			}
			require.Len(t, p.Items, limit, "only the last page is short")
			cursor = p.NextCursor
		}
		require.Equal(t, want, got, "limit %d", limit)
	}

	p, err := audit.List(ctx, testDB.Pool, uuid.New(), "", 0)
	require.NoError(t, err)
	require.Empty(t, p.Items)
	require.Empty(t, p.NextCursor)

	for _, bad := range []string{"x", "b1", "a", "a-1", "a!", "azzzzzzzzzzzzzzzzzzzz"} {
		_, err := audit.List(ctx, testDB.Pool, tenant, bad, 10)
		require.ErrorIs(t, err, cursor.ErrInvalid, "cursor %q", bad)
	}
}

// TestCanonicalGolden pins the canonical form and the hash, computed here
// from the documented definition: a change to either breaks every stored
// chain.
func TestCanonicalGolden(t *testing.T) {
	t.Parallel()
	e := audit.Entry{
		TenantID:    uuid.MustParse("0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"),
		Seq:         42,
		EventID:     `evt-"1"`,
		EventSource: "https://shop.example/orders?a=1&b=<2>",
		EventType:   "com.example.order.créé",
		ActorID:     "user\\7\n",
		Action:      "",
		RecordedAt:  time.Date(2025, 3, 1, 13, 30, 45, 123456789, time.FixedZone("CET", 3600)),
		PrevHash:    audit.Genesis,
		Hash:        "ignored",
	}
	const want = `{"tenant_id":"0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b","seq":42,"event_id":"evt-\"1\"",` +
		`"event_source":"https://shop.example/orders?a=1\u0026b=\u003c2\u003e","event_type":"com.example.order.créé",` +
		`"actor_id":"user\\7\n","action":"","recorded_at":"2025-03-01T12:30:45.123456Z"}`
	require.Equal(t, want, string(e.Canonical()))
	require.Equal(t, want, string(e.Canonical()), "Canonical is stable")

	sum := sha256.Sum256([]byte(audit.Genesis + want))
	require.Equal(t, hex.EncodeToString(sum[:]), e.ComputeHash())

	// The hash covers prev_hash.
	e2 := e
	e2.PrevHash = e.ComputeHash()
	require.NotEqual(t, e.ComputeHash(), e2.ComputeHash())
	// Fields that are not part of the entry's content do not change it.
	e2 = e
	e2.Hash = "something else"
	require.Equal(t, e.ComputeHash(), e2.ComputeHash())
}

// statementCounter counts the statements a connection sends.
type statementCounter struct{ n int }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n++
	return ctx
}
func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *statementCounter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	c.n++
	return ctx
}
func (c *statementCounter) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// TestAppendTxHeadsOncePerBatch: a batch of events of many tenants (1,000
// Apps sending at once) costs the same few statements as one tenant's: the
// heads are created (the first time), locked and moved for all tenants
// together, each head written once per batch, not three statements per
// tenant (issue 13).
func TestAppendTxHeadsOncePerBatch(t *testing.T) {
	t.Parallel()
	cfg, err := pgx.ParseConfig(testDB.URL)
	require.NoError(t, err)
	counter := &statementCounter{}
	cfg.Tracer = counter
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(t.Context()))

	tenants := make([]uuid.UUID, 50)
	var recs []audit.Record
	for i := range tenants {
		tenants[i] = uuid.New()
		recs = append(recs, records(tenants[i], "first-", 2)...)
	}
	for round := range 2 {
		counter.n = 0
		err = pgx.BeginFunc(t.Context(), conn, func(tx pgx.Tx) error {
			_, err := audit.AppendTx(t.Context(), tx, recs)
			return err
		})
		require.NoError(t, err)
		// begin, ensure heads (new tenants only), lock heads, update heads,
		// copy entries, commit
		want := 5
		if round == 0 {
			want = 6
		}
		require.Equal(t, want, counter.n, "round %d: statements for a batch of 50 tenants", round)
		for i := range recs {
			recs[i].EventID = "second-" + strconv.Itoa(i)
		}
	}
	for _, tenant := range tenants {
		requireVerifies(t, tenant, 4)
	}
}

// TestAppendTxAfterRollback: a tenant whose head was created in a
// transaction that rolled back (so AppendTx has seen it, but it is not
// there) still gets its chain, starting at the genesis.
func TestAppendTxAfterRollback(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	errRollback := errors.New("rolled back")
	err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		if _, err := audit.AppendTx(t.Context(), tx, records(tenant, "gone-", 2)); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	out := appendTx(t, records(tenant, "kept-", 2))
	require.Equal(t, int64(1), out[0].Seq)
	require.Equal(t, audit.Genesis, out[0].PrevHash)
	requireVerifies(t, tenant, 2)
}
