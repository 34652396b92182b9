package eventstore_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/prosttest"
)

func TestAppendTxStoresEventsWithOneOutboxRowEach(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tenant := uuid.New()

	at := time.Date(2025, 3, 1, 12, 30, 45, 123456000, time.FixedZone("CET", 3600))
	full := newEvent(tenant, "shop", "e3", "order.created")
	full.Subject, full.Time, full.PartitionKey = "order-7", at, "customer-1"
	evs := []eventstore.NewEvent{
		newEvent(tenant, "shop", "e1", "order.created"),
		newEvent(tenant, "shop", "e2", "order.paid"),
		full,
	}
	out := appendTx(t, evs...)
	for i, o := range out {
		require.False(t, o.Duplicate, "event %d", i)
		require.Positive(t, o.Seq)
		if i > 0 {
			require.Greater(t, o.Seq, out[i-1].Seq, "events are stored in the order given")
		}
	}

	for i, ev := range evs {
		var (
			source, id, typ string
			subject, pkey   *string
			ts              *time.Time
			envelope        string
		)
		require.NoError(t, testDB.Pool.QueryRow(ctx,
			`SELECT source, id, type, subject, time, partition_key, envelope::text FROM events WHERE seq = $1 AND tenant_id = $2`,
			out[i].Seq, tenant).Scan(&source, &id, &typ, &subject, &ts, &pkey, &envelope))
		require.Equal(t, ev.Source, source)
		require.Equal(t, ev.ID, id)
		require.Equal(t, ev.Type, typ)
		require.Equal(t, string(ev.Envelope), envelope, "the envelope is stored exactly as given")
		if ev.Subject == "" {
			require.Nil(t, subject, "an empty subject is NULL")
			require.Nil(t, ts, "an absent time is NULL")
			require.Nil(t, pkey, "an empty partition key is NULL")
			continue
		}
		require.Equal(t, ev.Subject, *subject)
		require.Equal(t, ev.PartitionKey, *pkey)
		require.True(t, at.Equal(*ts), "time %v stored as %v", at, *ts)

		var outboxSubject string
		var published *time.Time
		require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT subject, published_at FROM outbox WHERE event_seq = $1`, out[i].Seq).Scan(&outboxSubject, &published))
		require.Equal(t, ev.OutboxSubject, outboxSubject)
		require.Nil(t, published, "a new outbox row is pending")
	}
	for _, o := range out {
		require.Equal(t, 1, countRows(t, `SELECT count(*) FROM outbox WHERE event_seq = $1`, o.Seq), "exactly one outbox row per event")
	}
	require.Equal(t, 3, tenantEvents(t, tenant))
	require.Equal(t, 3, tenantOutbox(t, tenant))
}

func TestAppendTxDuplicates(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	first := appendTx(t, newEvent(tenant, "shop", "e1", "order.created"))

	changed := newEvent(tenant, "shop", "e1", "order.cancelled") // same identity, other content
	out := appendTx(t,
		changed,
		newEvent(tenant, "shop", "e2", "order.created"),
		newEvent(tenant, "shop", "e2", "order.created"), // repeated within the call
		newEvent(tenant, "shop", "e3", "order.created"),
		newEvent(tenant, "shop", "e2", "order.paid"),
	)
	require.Equal(t, []bool{true, false, true, false, true}, []bool{out[0].Duplicate, out[1].Duplicate, out[2].Duplicate, out[3].Duplicate, out[4].Duplicate})
	for _, i := range []int{0, 2, 4} {
		require.Zero(t, out[i].Seq, "a duplicate has no seq")
	}
	require.Positive(t, out[1].Seq)
	require.Greater(t, out[3].Seq, out[1].Seq)
	require.Greater(t, out[1].Seq, first[0].Seq)

	require.Equal(t, 3, tenantEvents(t, tenant))
	require.Equal(t, 3, tenantOutbox(t, tenant), "duplicates get no outbox row")
	var typ string
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT type FROM events WHERE seq = $1`, first[0].Seq).Scan(&typ))
	require.Equal(t, "order.created", typ, "a duplicate never overwrites the stored event")

	// The same (source, id) in two tenants is two events.
	other := uuid.New()
	out = appendTx(t, newEvent(tenant, "shop", "e9", "x"), newEvent(other, "shop", "e9", "x"), newEvent(other, "shop", "e1", "x"))
	for i, o := range out {
		require.False(t, o.Duplicate, "event %d", i)
	}
	require.Equal(t, 4, tenantEvents(t, tenant))
	require.Equal(t, 2, tenantEvents(t, other))
	require.Equal(t, 2, tenantOutbox(t, other))

	// Nothing to store is not an error.
	out, err := eventstore.AppendTx(t.Context(), testDB.Pool, nil)
	require.NoError(t, err)
	require.Empty(t, out)
}

// TestAppendTxIsTheCallersTransaction: a rolled-back transaction leaves no
// event and no outbox row.
func TestAppendTxIsTheCallersTransaction(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	errRollback := errors.New("caller fails after appending")
	err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		out, err := eventstore.AppendTx(t.Context(), tx, []eventstore.NewEvent{newEvent(tenant, "s", "1", "t")})
		require.NoError(t, err)
		require.False(t, out[0].Duplicate)
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.Zero(t, tenantEvents(t, tenant))
	require.Zero(t, tenantOutbox(t, tenant))
	// And the identity is free again.
	out := appendTx(t, newEvent(tenant, "s", "1", "t"))
	require.False(t, out[0].Duplicate)
}

func TestAppendTxRejectsAnEnvelopeThatIsNotJSON(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	bad := newEvent(tenant, "s", "bad", "t")
	bad.Envelope = []byte("not json")
	err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(t.Context(), tx, []eventstore.NewEvent{newEvent(tenant, "s", "good", "t"), bad})
		return err
	})
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "22P02", pgErr.Code, "invalid_text_representation")
	require.Zero(t, tenantEvents(t, tenant), "the whole append fails")
}

// TestEventsAreAppendOnly: the database itself refuses to change or remove
// a stored event. It is not parallel: TRUNCATE waits for every transaction
// on events, the held ones of the committer tests included.
func TestEventsAreAppendOnly(t *testing.T) {
	tenant := uuid.New()
	out := appendTx(t, newEvent(tenant, "s", "1", "t"))
	seq := out[0].Seq

	tests := []struct {
		name, sql string
		args      []any
	}{
		{"update", `UPDATE events SET type = 'changed' WHERE seq = $1`, []any{seq}},
		{"update envelope", `UPDATE events SET envelope = '{}' WHERE seq = $1`, []any{seq}},
		{"delete", `DELETE FROM events WHERE seq = $1`, []any{seq}},
		{"truncate", `TRUNCATE events`, nil},
		{"truncate cascade", `TRUNCATE events CASCADE`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Inside a transaction that is rolled back whatever happens, so
			// that a failure here cannot wipe the other tests' events.
			tx, err := testDB.Pool.Begin(t.Context())
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(t.Context()) }()
			_, err = tx.Exec(t.Context(), tt.sql, tt.args...)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "42501", pgErr.Code, "insufficient_privilege")
			require.Contains(t, pgErr.Message, "append-only")
		})
	}
	var typ string
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT type FROM events WHERE seq = $1`, seq).Scan(&typ))
	require.Equal(t, "t", typ)
}

// ids lists the "id" member of each envelope.
func ids(t *testing.T, items [][]byte) []string {
	t.Helper()
	out := make([]string, len(items))
	for i, it := range items {
		var e struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(it, &e))
		out[i] = e.ID
	}
	return out
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// A database of its own: a transaction another test holds open in the
	// package's database would hold these events back.
	db := prosttest.NewDatabase(t)
	tenant, other := uuid.New(), uuid.New()

	appendTxTo(t, db,
		newEvent(tenant, "shop", "1", "order.created"),
		newEvent(tenant, "shop", "2", "order.paid"),
		newEvent(tenant, "crm", "3", "order.created"),
		newEvent(other, "shop", "o1", "order.created"),
	)
	second := appendTxTo(t, db,
		newEvent(tenant, "crm", "4", "customer.created"),
		newEvent(tenant, "shop", "5", "order.created"),
		newEvent(other, "shop", "o2", "order.created"),
	)
	var since time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT recorded_at FROM events WHERE seq = $1`, second[0].Seq).Scan(&since))

	tests := []struct {
		name string
		p    eventstore.ListParams
		want []string
	}{
		{"all", eventstore.ListParams{}, []string{"1", "2", "3", "4", "5"}},
		{"type", eventstore.ListParams{Type: "order.created"}, []string{"1", "3", "5"}},
		{"source", eventstore.ListParams{Source: "crm"}, []string{"3", "4"}},
		{"type and source", eventstore.ListParams{Type: "order.created", Source: "shop"}, []string{"1", "5"}},
		{"since", eventstore.ListParams{Since: since}, []string{"4", "5"}},
		{"since and type", eventstore.ListParams{Since: since, Type: "order.created"}, []string{"5"}},
		{"since later", eventstore.ListParams{Since: since.Add(time.Hour)}, []string{}},
		{"no match", eventstore.ListParams{Type: "nope"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.p.TenantID = tenant
			page, err := eventstore.List(t.Context(), db.Pool, tt.p)
			require.NoError(t, err)
			require.Equal(t, tt.want, ids(t, page.Items))
			require.False(t, page.HasMore)
			require.NotEmpty(t, page.NextCursor, "the last page has a cursor too")
		})
	}

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		for _, limit := range []int{1, 2, 4, 5, 6} {
			var got []string
			cursor := ""
			for pages := 1; ; pages++ {
				require.LessOrEqual(t, pages, 5)
				page, err := eventstore.List(t.Context(), db.Pool, eventstore.ListParams{TenantID: tenant, Limit: limit, Cursor: cursor})
				require.NoError(t, err)
				require.LessOrEqual(t, len(page.Items), limit)
				got = append(got, ids(t, page.Items)...)
				if !page.HasMore {
					break
				}
				require.Len(t, page.Items, limit, "only the last page is short")
				cursor = page.NextCursor
			}
			require.Equal(t, []string{"1", "2", "3", "4", "5"}, got, "limit %d", limit)
		}

		// Filters and cursors combine.
		page, err := eventstore.List(t.Context(), db.Pool, eventstore.ListParams{TenantID: tenant, Type: "order.created", Limit: 1})
		require.NoError(t, err)
		require.Equal(t, []string{"1"}, ids(t, page.Items))
		page, err = eventstore.List(t.Context(), db.Pool, eventstore.ListParams{TenantID: tenant, Type: "order.created", Limit: 1, Cursor: page.NextCursor})
		require.NoError(t, err)
		require.Equal(t, []string{"3"}, ids(t, page.Items))
	})

	t.Run("tenant isolation", func(t *testing.T) {
		t.Parallel()
		page, err := eventstore.List(t.Context(), db.Pool, eventstore.ListParams{TenantID: other})
		require.NoError(t, err)
		require.Equal(t, []string{"o1", "o2"}, ids(t, page.Items))
		page, err = eventstore.List(t.Context(), db.Pool, eventstore.ListParams{TenantID: uuid.New()})
		require.NoError(t, err)
		require.Empty(t, page.Items)
		// A cursor taken from another tenant's listing does not reveal its events.
		page, err = eventstore.List(t.Context(), db.Pool, eventstore.ListParams{TenantID: other, Cursor: eventstore.EncodeCursor(eventstore.Position{})})
		require.NoError(t, err)
		require.Equal(t, []string{"o1", "o2"}, ids(t, page.Items))
	})
}

func TestCursor(t *testing.T) {
	t.Parallel()
	for _, p := range []eventstore.Position{{}, {XID: 1, Seq: 1}, {XID: 7, Seq: 42}, {XID: 1 << 63, Seq: 1 << 62}} {
		got, err := eventstore.DecodeCursor(eventstore.EncodeCursor(p))
		require.NoError(t, err)
		require.Equal(t, p, got)
	}
	got, err := eventstore.DecodeCursor("")
	require.NoError(t, err)
	require.Zero(t, got)
	// A cursor of the earlier format (a sequence number) still works: it is
	// the position of events stored before transaction ids were kept.
	got, err = eventstore.DecodeCursor(cursor.Int("s", 12))
	require.NoError(t, err)
	require.Equal(t, eventstore.Position{Seq: 12}, got)

	b64 := base64.RawURLEncoding.EncodeToString
	bad := []string{
		"!!!",
		"s:1", // not encoded
		b64([]byte("x:1")),
		b64([]byte("s:")),
		b64([]byte("s:-1")),
		b64([]byte("s:abc")),
		b64([]byte("s:1 ")),
		b64([]byte("s:99999999999999999999")),
		base64.StdEncoding.EncodeToString([]byte("s:12")), // padded
		b64([]byte("p:1")),
		b64([]byte("p:1.")),
		b64([]byte("p:.1")),
		b64([]byte("p:1.-1")),
		b64([]byte("p:01.1")),
		b64([]byte("p:1.2.3")),
	}
	for _, c := range bad {
		t.Run(c, func(t *testing.T) {
			t.Parallel()
			_, err := eventstore.DecodeCursor(c)
			require.ErrorIs(t, err, cursor.ErrInvalid)
			_, err = eventstore.List(t.Context(), testDB.Pool, eventstore.ListParams{TenantID: uuid.New(), Cursor: c})
			require.ErrorIs(t, err, cursor.ErrInvalid)
		})
	}
}

// TestEventsByDataKeys: the data keys of encrypted values are recorded with
// their event, and find it again.
func TestEventsByDataKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tenant := uuid.New()
	k1, k2, k3 := uuid.New(), uuid.New(), uuid.New()
	tok := func(k uuid.UUID) string { return `"prost:enc:v1:` + k.String() + `:AAAA"` }
	withData := func(id, data string) eventstore.NewEvent {
		e := newEvent(tenant, "/s", id, "user.signup")
		e.Envelope = []byte(`{"specversion":"1.0","id":"` + id + `","source":"/s","type":"user.signup","data":` + data + `}`)
		return e
	}
	appendTx(t,
		withData("e1", `{"email":`+tok(k1)+`,"phone":`+tok(k2)+`}`),
		withData("e2", `{"plain":true}`),
		withData("e3", `{"email":`+tok(k1)+`}`),
		withData("e4", `{"email":`+tok(k3)+`}`),
	)
	appendTx(t, withData("e1", `{"email":`+tok(k1)+`}`)) // a duplicate adds nothing

	ids := func(docs [][]byte) []string {
		var out []string
		for _, d := range docs {
			var e struct{ ID string }
			require.NoError(t, json.Unmarshal(d, &e))
			out = append(out, e.ID)
		}
		return out
	}
	docs, last, err := eventstore.EventsByDataKeys(ctx, testDB.Pool, tenant, []uuid.UUID{k1, k2}, 0, 100)
	require.NoError(t, err)
	require.Equal(t, []string{"e1", "e3"}, ids(docs), "each event once, in store order")
	// Paging.
	docs, last1, err := eventstore.EventsByDataKeys(ctx, testDB.Pool, tenant, []uuid.UUID{k1}, 0, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"e1"}, ids(docs))
	docs, _, err = eventstore.EventsByDataKeys(ctx, testDB.Pool, tenant, []uuid.UUID{k1}, last1, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"e3"}, ids(docs))
	docs, _, err = eventstore.EventsByDataKeys(ctx, testDB.Pool, tenant, []uuid.UUID{k1}, last, 100)
	require.NoError(t, err)
	require.Empty(t, docs)
	// Another tenant finds nothing with the same keys.
	docs, _, err = eventstore.EventsByDataKeys(ctx, testDB.Pool, uuid.New(), []uuid.UUID{k1, k2, k3}, 0, 100)
	require.NoError(t, err)
	require.Empty(t, docs)
}

// TestListNeverSkipsALateCommit: an event whose transaction commits after a
// later event's (so its seq is smaller) is still read by a poller resuming
// from the cursor it got while the transaction was open; and a poller that
// reached the end reads exactly what is new.
func TestListNeverSkipsALateCommit(t *testing.T) {
	t.Parallel()
	db := prosttest.NewDatabase(t)
	ctx := t.Context()
	tenant := uuid.New()
	appendTxTo(t, db, newEvent(tenant, "s", "1", "t"))
	page, err := eventstore.List(ctx, db.Pool, eventstore.ListParams{TenantID: tenant})
	require.NoError(t, err)
	require.Equal(t, []string{"1"}, ids(t, page.Items))
	require.False(t, page.HasMore)
	atEnd := page.NextCursor

	// The poller reached the end; it comes back later with its cursor.
	page, err = eventstore.List(ctx, db.Pool, eventstore.ListParams{TenantID: tenant, Cursor: atEnd})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	require.Equal(t, atEnd, page.NextCursor)

	late, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer late.Rollback(context.WithoutCancel(ctx))
	_, err = eventstore.AppendTx(ctx, late, []eventstore.NewEvent{newEvent(tenant, "s", "2-late", "t")})
	require.NoError(t, err)
	appendTxTo(t, db, newEvent(tenant, "s", "3", "t")) // a larger seq, committed first

	page, err = eventstore.List(ctx, db.Pool, eventstore.ListParams{TenantID: tenant, Cursor: atEnd})
	require.NoError(t, err)
	require.Empty(t, page.Items, "3 waits for the older transaction still open")
	require.Equal(t, atEnd, page.NextCursor)
	require.NoError(t, late.Commit(ctx))

	page, err = eventstore.List(ctx, db.Pool, eventstore.ListParams{TenantID: tenant, Cursor: page.NextCursor})
	require.NoError(t, err)
	require.Equal(t, []string{"2-late", "3"}, ids(t, page.Items), "exactly what is new, the late commit included")
	page, err = eventstore.List(ctx, db.Pool, eventstore.ListParams{TenantID: tenant, Cursor: page.NextCursor})
	require.NoError(t, err)
	require.Empty(t, page.Items)
}

// TestRecordedAt: one statement answers when each named event was recorded,
// by its full identity (a tenant's id is not another tenant's), and leaves
// out what is not stored.
func TestRecordedAt(t *testing.T) {
	t.Parallel()
	tenant, other := uuid.New(), uuid.New()
	appendTxTo(t, testDB, newEvent(tenant, "shop", "1", "order.created"), newEvent(other, "shop", "1", "order.created"))
	second := appendTxTo(t, testDB, newEvent(tenant, "crm", "1", "customer.created"))
	var want time.Time
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT recorded_at FROM events WHERE seq = $1`, second[0].Seq).Scan(&want))

	mine := eventstore.Key{Tenant: tenant, Source: "crm", ID: "1"}
	got, err := eventstore.RecordedAt(t.Context(), testDB.Pool, []eventstore.Key{
		{Tenant: tenant, Source: "shop", ID: "1"}, mine, {Tenant: other, Source: "crm", ID: "1"}, {Tenant: tenant, Source: "shop", ID: "missing"},
	})
	require.NoError(t, err)
	require.Len(t, got, 2, "the other tenant has no crm/1, and shop/missing is not stored")
	require.True(t, got[mine].Equal(want))
	require.Contains(t, got, eventstore.Key{Tenant: tenant, Source: "shop", ID: "1"})

	none, err := eventstore.RecordedAt(t.Context(), testDB.Pool, nil)
	require.NoError(t, err)
	require.Empty(t, none)
}
