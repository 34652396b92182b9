package dataprotect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/invalidate"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/prosttest"
)

// clock is a settable time for keyrings under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type bundle struct {
	kr    *dataprotect.Keyring
	kek   string
	clock *clock
}

func setup(t *testing.T) *bundle {
	t.Helper()
	spec := dataprotect.NewKEKSpec()
	kek, err := dataprotect.ParseKEK(spec)
	require.NoError(t, err)
	c := &clock{now: time.Now()}
	kr, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek, Now: c.Now})
	require.NoError(t, err)
	return &bundle{kr: kr, kek: spec, clock: c}
}

func policy(t *testing.T, subject string, fields ...dataprotect.Field) *dataprotect.Policy {
	t.Helper()
	p, err := dataprotect.NewPolicy(subject, fields)
	require.NoError(t, err)
	return p
}

func personal(ptr, purpose, retention string) dataprotect.Field {
	r, err := dataprotect.ParseRetention(retention)
	if err != nil {
		panic(err)
	}
	return dataprotect.Field{Pointer: ptr, Class: "personal", Purpose: purpose, Retention: r}
}

func TestProtectRevealErase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	tenant, other := uuid.New(), uuid.New()
	p := policy(t, "/user_id", personal("/email", "receipts", "400d"), personal("/phone", "support", "forever"),
		personal("/address", "shipping", "30d"))
	data := []byte(`{"user_id":"user-42","email":"jane@example.com","phone":"+351 912 345 678","address":{"city":"Porto","zip":"4000"},"total":12,"email":"jane.doe@example.com"}`)

	out, err := b.kr.Protect(ctx, tenant, data, p)
	require.NoError(t, err)
	for _, plain := range []string{"jane@example.com", "jane.doe@example.com", "912 345", "Porto"} {
		require.NotContains(t, string(out), plain, "every classified value is encrypted, repeated members too")
	}
	require.True(t, dataprotect.HasTokens(out))
	require.Contains(t, string(out), `{"user_id":"user-42","email":"prost:enc:v1:`, "the rest is kept as it was")
	require.Contains(t, string(out), `,"total":12,`)
	require.Len(t, dataprotect.KeyIDs(out), 3, "one key per purpose")

	// The owning tenant reads the plain values, in place.
	got, err := b.kr.Reveal(ctx, tenant, out)
	require.NoError(t, err)
	require.Equal(t, string(data), string(got))

	// Another tenant never reads them.
	got, err = b.kr.Reveal(ctx, other, out)
	require.NoError(t, err)
	require.NotContains(t, string(got), "jane")
	require.Contains(t, string(got), `"email":{"erased":true}`)

	// Another subject's values are independent of this one's.
	out2, err := b.kr.Protect(ctx, tenant, []byte(`{"user_id":7,"email":"bob@example.com"}`), p)
	require.NoError(t, err)
	keys, err := b.kr.SubjectKeys(ctx, tenant, "user-42")
	require.NoError(t, err)
	require.Len(t, keys, 3)

	// Erase user-42: its values read erased; the other subject's do not.
	erasure := uuid.New()
	var destroyed []dataprotect.DestroyedKey
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		destroyed, err = b.kr.EraseSubjectTx(ctx, tx, tenant, "user-42", erasure)
		return err
	}))
	b.kr.Forget(ctx, destroyed)
	require.Len(t, destroyed, 3)
	got, err = b.kr.Reveal(ctx, tenant, out)
	require.NoError(t, err)
	require.Equal(t, `{"user_id":"user-42","email":{"erased":true},"phone":{"erased":true},"address":{"erased":true},"total":12,"email":{"erased":true}}`, string(got))
	got, err = b.kr.Reveal(ctx, tenant, out2)
	require.NoError(t, err)
	require.Equal(t, `{"user_id":7,"email":"bob@example.com"}`, string(got))
	keys, err = b.kr.SubjectKeys(ctx, tenant, "user-42")
	require.NoError(t, err)
	require.Empty(t, keys)

	// Every destroyed key has a tombstone naming the erasure.
	ts, next, err := b.kr.Tombstones(ctx, tenant, dataprotect.TombstoneQuery{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, ts, 3)
	for _, tomb := range ts {
		require.Equal(t, dataprotect.ReasonErasure, tomb.Reason)
		require.Equal(t, erasure, tomb.ErasureID)
	}

	// New events of the erased subject get a new key, readable.
	out3, err := b.kr.Protect(ctx, tenant, data, p)
	require.NoError(t, err)
	got, err = b.kr.Reveal(ctx, tenant, out3)
	require.NoError(t, err)
	require.Equal(t, string(data), string(got))
}

func TestProtectShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	tenant := uuid.New()
	cases := []struct {
		name, data string
		policy     *dataprotect.Policy
		plain      []string // must not appear once protected
		missing    bool
	}{
		{name: "subject inside a classified object", data: `{"customer":{"id":"c-1","email":"a@b.c"}}`,
			policy: policy(t, "/customer/id", personal("/customer", "billing", "7y")), plain: []string{"a@b.c", "c-1"}},
		{name: "whole data", data: `{"email":"a@b.c","id":"u"}`,
			policy: policy(t, "/id", personal("", "all", "1y")), plain: []string{"a@b.c"}},
		{name: "array element and escaped member names", data: `{"id":"u","list":["x@y.z","keep"],"a/b":"s~ecret"}`,
			policy: policy(t, "/id", personal("/list/0", "p", "1y"), personal("/a~1b", "p", "1y")), plain: []string{"x@y.z", "s~ecret"}},
		{name: "whitespace and a string holding a token-like text", data: "{ \"id\" : \"u\" ,\n \"email\" : \"a@b.c\", \"note\":\"\\\"prost:enc:v1:x\" }",
			policy: policy(t, "/id", personal("/email", "p", "1y")), plain: []string{"a@b.c"}},
		{name: "a pointer naming nothing", data: `{"id":"u","other":1}`,
			policy: policy(t, "/id", personal("/email", "p", "1y"))},
		{name: "subject missing", data: `{"email":"a@b.c"}`, policy: policy(t, "/id", personal("/email", "p", "1y")), missing: true},
		{name: "subject empty", data: `{"id":"  ","email":"a@b.c"}`, policy: policy(t, "/id", personal("/email", "p", "1y")), missing: true},
		{name: "subject an object", data: `{"id":{},"email":"a@b.c"}`, policy: policy(t, "/id", personal("/email", "p", "1y")), missing: true},
		{name: "no data", data: ``, policy: policy(t, "/id", personal("/email", "p", "1y")), missing: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := b.kr.Protect(ctx, tenant, []byte(c.data), c.policy)
			if c.missing {
				var me *dataprotect.MissingSubjectError
				require.ErrorAs(t, err, &me)
				require.Equal(t, c.policy.Subject, me.Pointer)
				require.True(t, errors.Is(err, problem.Invalid))
				return
			}
			require.NoError(t, err)
			require.True(t, json.Valid(out), string(out))
			for _, s := range c.plain {
				require.NotContains(t, string(out), s)
			}
			back, err := b.kr.Reveal(ctx, tenant, out)
			require.NoError(t, err)
			require.Equal(t, c.data, string(back))
		})
	}
}

func TestRetentionShredsByPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	tenant := uuid.New()
	short := policy(t, "/id", personal("/email", "marketing", "1s"))
	long := policy(t, "/id", personal("/phone", "support", "10d"))
	data := []byte(`{"id":"u-1","email":"a@b.c","phone":"123"}`)
	e1, err := b.kr.Protect(ctx, tenant, data, short)
	require.NoError(t, err)
	p1, err := b.kr.Protect(ctx, tenant, data, long)
	require.NoError(t, err)

	shred := func(now time.Time) []dataprotect.DestroyedKey {
		var out []dataprotect.DestroyedKey
		require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
			var err error
			out, err = b.kr.ShredExpiredTx(ctx, tx, now, 1000, func(uuid.UUID) uuid.UUID { return uuid.New() })
			return err
		}))
		b.kr.Forget(ctx, out)
		var mine []dataprotect.DestroyedKey
		for _, d := range out {
			if d.TenantID == tenant {
				mine = append(mine, d)
			}
		}
		return mine
	}
	// Within the retention nothing is shredded.
	require.Empty(t, shred(b.clock.Now()))
	// A value is kept at least its retention: 1s after its period (1s) ended.
	b.clock.Add(3 * time.Second)
	// A value encrypted now falls in a later period, with its own key.
	e2, err := b.kr.Protect(ctx, tenant, data, short)
	require.NoError(t, err)
	require.NotEqual(t, dataprotect.KeyIDs(e1), dataprotect.KeyIDs(e2))
	gone := shred(b.clock.Now())
	require.Len(t, gone, 1)
	require.Equal(t, dataprotect.KeyIDs(e1)[0], gone[0].KeyID)
	require.Equal(t, "marketing", gone[0].Purpose)
	require.Equal(t, "1s", gone[0].Retention)

	got, err := b.kr.Reveal(ctx, tenant, e1)
	require.NoError(t, err)
	require.Equal(t, `{"id":"u-1","email":{"erased":true},"phone":"123"}`, string(got))
	for _, doc := range [][]byte{e2, p1} {
		got, err = b.kr.Reveal(ctx, tenant, doc)
		require.NoError(t, err)
		require.Equal(t, string(data), string(got))
	}
	ts, _, err := b.kr.Tombstones(ctx, tenant, dataprotect.TombstoneQuery{Reason: dataprotect.ReasonRetention})
	require.NoError(t, err)
	require.Len(t, ts, 1)

	// Ten days and a period later the support key goes too.
	require.Len(t, shred(b.clock.Now().Add(10*24*time.Hour+25*time.Hour)), 2)
}

// TestRestoredBackup: a destroyed key whose row comes back (a backup taken
// before the erasure is restored) stays destroyed: reads see its tombstone,
// reconcile deletes it again, and encryption never uses it.
func TestRestoredBackup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	tenant := uuid.New()
	p := policy(t, "/id", personal("/email", "p", "forever"))
	data := []byte(`{"id":"u","email":"a@b.c"}`)
	out, err := b.kr.Protect(ctx, tenant, data, p)
	require.NoError(t, err)
	id := dataprotect.KeyIDs(out)[0]

	// "Back up" the key row, erase the subject, then "restore" the row.
	var backup string
	require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT to_jsonb(k)::text FROM privacy_keys k WHERE key_id = $1`, id).Scan(&backup))
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		d, err := b.kr.EraseSubjectTx(ctx, tx, tenant, "u", uuid.New())
		b.kr.Forget(ctx, d)
		return err
	}))
	restore := func() {
		_, err := testDB.Pool.Exec(ctx, `INSERT INTO privacy_keys SELECT * FROM jsonb_populate_record(NULL::privacy_keys, $1::jsonb)`, backup)
		require.NoError(t, err)
	}
	left := func() int {
		var n int
		require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT count(*) FROM privacy_keys WHERE key_id = $1`, id).Scan(&n))
		return n
	}
	restore()
	require.Equal(t, 1, left())

	// A fresh keyring (another process, nothing cached) still reads erased.
	kek, err := dataprotect.ParseKEK(b.kek)
	require.NoError(t, err)
	fresh, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek})
	require.NoError(t, err)
	got, err := fresh.Reveal(ctx, tenant, out)
	require.NoError(t, err)
	require.Equal(t, `{"id":"u","email":{"erased":true}}`, string(got))

	// Reconcile deletes the restored row.
	var again []dataprotect.DestroyedKey
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		again, err = fresh.ReconcileTx(ctx, tx)
		return err
	}))
	require.Contains(t, again, dataprotect.DestroyedKey{TenantID: tenant, KeyID: id})
	require.Equal(t, 0, left())

	// Restored again: encrypting in its period replaces it with a new key.
	restore()
	enc, err := fresh.Protect(ctx, tenant, data, p)
	require.NoError(t, err)
	require.NotEqual(t, id, dataprotect.KeyIDs(enc)[0])
	require.Equal(t, 0, left())
	got, err = fresh.Reveal(ctx, tenant, enc)
	require.NoError(t, err)
	require.Equal(t, string(data), string(got))
}

func TestKEKRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v1 := dataprotect.NewKEKSpec()
	v2 := strings.Replace(dataprotect.NewKEKSpec(), "1:", "2:", 1)
	k1, err := dataprotect.ParseKEK(v1)
	require.NoError(t, err)
	require.EqualValues(t, 1, k1.Version())
	// Rewrap reads every stored key: a database of its own.
	db := prosttest.NewDatabase(t)
	kr1, err := dataprotect.New(db.Pool, dataprotect.Config{KEK: k1})
	require.NoError(t, err)
	tenant := uuid.New()
	p := policy(t, "/id", personal("/email", "p", "forever"))
	data := []byte(`{"id":"u","email":"a@b.c"}`)
	out, err := kr1.Protect(ctx, tenant, data, p)
	require.NoError(t, err)

	// Both versions configured, v2 the highest: v1's keys still open, and
	// Rewrap moves them (and the tenant's key) to v2.
	k12, err := dataprotect.ParseKEK(v2 + "," + v1)
	require.NoError(t, err)
	require.EqualValues(t, 2, k12.Version())
	kr12, err := dataprotect.New(db.Pool, dataprotect.Config{KEK: k12})
	require.NoError(t, err)
	got, err := kr12.Reveal(ctx, tenant, out)
	require.NoError(t, err)
	require.Equal(t, string(data), string(got))
	for {
		n, err := kr12.Rewrap(ctx, 100)
		require.NoError(t, err)
		if n == 0 {
			break
		}
	}
	byKEK, err := kr12.KeysByKEK(ctx)
	require.NoError(t, err)
	require.Zero(t, byKEK[1], "no key is left under version 1")

	// v2 alone now opens everything.
	k2, err := dataprotect.ParseKEK(v2)
	require.NoError(t, err)
	kr2, err := dataprotect.New(db.Pool, dataprotect.Config{KEK: k2})
	require.NoError(t, err)
	got, err = kr2.Reveal(ctx, tenant, out)
	require.NoError(t, err)
	require.Equal(t, string(data), string(got))
}

func TestParseKEK(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "abc", "0:" + strings.TrimPrefix(dataprotect.NewKEKSpec(), "1:"), "1:c2hvcnQ=",
		dataprotect.NewKEKSpec() + "," + dataprotect.NewKEKSpec(), "x:" + strings.TrimPrefix(dataprotect.NewKEKSpec(), "1:")} {
		_, err := dataprotect.ParseKEK(bad)
		require.Error(t, err, bad)
	}
}

func TestParseRetention(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"1s": at.Add(time.Second), "2h": at.Add(2 * time.Hour), "3d": at.AddDate(0, 0, 3), "1w": at.AddDate(0, 0, 7),
		"1m": at.AddDate(0, 1, 0), "7y": at.AddDate(7, 0, 0), "forever": {},
	} {
		r, err := dataprotect.ParseRetention(in)
		require.NoError(t, err, in)
		require.Equal(t, in, r.String())
		require.Equal(t, want, r.After(at), in)
	}
	for _, bad := range []string{"", "0d", "1", "d", "1min", "-1d", "1.5y", "1000000d"} {
		_, err := dataprotect.ParseRetention(bad)
		require.Error(t, err, bad)
	}
}

func TestSealWithAndNesting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	tenant := uuid.New()
	a := policy(t, "/id", personal("/name", "p", "forever"))
	ea, err := b.kr.Protect(ctx, tenant, []byte(`{"id":"a","name":"Ann"}`), a)
	require.NoError(t, err)
	eb, err := b.kr.Protect(ctx, tenant, []byte(`{"id":"b","name":"Bob"}`), a)
	require.NoError(t, err)

	// A value derived from both subjects is sealed under both keys.
	_, used, err := b.kr.RevealUsed(ctx, tenant, append(append([]byte(`[`), ea...), append([]byte(`,`), append(eb, ']')...)...))
	require.NoError(t, err)
	require.Len(t, used, 2)
	sealed, err := b.kr.SealWith(ctx, tenant, used, []byte(`"Ann and Bob"`))
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "Ann")
	doc := []byte(`{"greeting":` + string(sealed) + `}`)
	got, err := b.kr.Reveal(ctx, tenant, doc)
	require.NoError(t, err)
	require.Equal(t, `{"greeting":"Ann and Bob"}`, string(got))

	// Erasing either subject erases the derived value.
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		d, err := b.kr.EraseSubjectTx(ctx, tx, tenant, "b", uuid.New())
		b.kr.Forget(ctx, d)
		return err
	}))
	got, err = b.kr.Reveal(ctx, tenant, doc)
	require.NoError(t, err)
	require.Equal(t, `{"greeting":{"erased":true}}`, string(got))
}

func TestTokensAndNilKeyring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var kr *dataprotect.Keyring
	doc := []byte(`{"a":"prost:enc:v1:not-a-token"}`)
	got, err := kr.Reveal(ctx, uuid.New(), doc)
	require.NoError(t, err)
	require.Equal(t, doc, got)
	require.NoError(t, kr.RevealAll(ctx, uuid.New(), [][]byte{doc}))
	_, err = kr.Protect(ctx, uuid.New(), []byte(`{"id":"x"}`), policy(t, "/id", personal("/e", "p", "1y")))
	require.ErrorIs(t, err, dataprotect.ErrNoKEK)

	// Look-alikes are not tokens: a bad key id, bad base64, an escaped quote.
	require.Empty(t, dataprotect.KeyIDs([]byte(`{"a":"prost:enc:v1:zzz:abc","b":"x\"prost:enc:v1:`+uuid.NewString()+`:AAAA\""}`)))
	require.False(t, dataprotect.IsToken("prost:enc:v1:"+uuid.NewString()+":***"))

	// RevealAll reads a page's keys in one go and leaves plain documents alone.
	b := setup(t)
	tenant := uuid.New()
	p := policy(t, "/id", personal("/e", "p", "1y"))
	var docs [][]byte
	for _, id := range []string{"1", "2", "3"} {
		out, err := b.kr.Protect(ctx, tenant, []byte(`{"id":"`+id+`","e":"e`+id+`@x"}`), p)
		require.NoError(t, err)
		docs = append(docs, out)
	}
	docs = append(docs, []byte(`{"plain":true}`))
	require.NoError(t, b.kr.RevealAll(ctx, tenant, docs))
	require.Equal(t, `{"id":"2","e":"e2@x"}`, string(docs[1]))
	require.True(t, bytes.Equal([]byte(`{"plain":true}`), docs[3]))
}

// TestErasureReachesOtherProcesses: with a Feed, a key destroyed by one
// process is forgotten by the others at once, not after their cache TTL.
func TestErasureReachesOtherProcesses(t *testing.T) {
	ctx := context.Background()
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(t, err)
	feedA, feedB := invalidate.New(testDB.Pool, nil), invalidate.New(testDB.Pool, nil)
	a, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek, CacheTTL: time.Hour, Feed: feedA})
	require.NoError(t, err)
	b, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek, CacheTTL: time.Hour, Feed: feedB})
	require.NoError(t, err)
	for _, f := range []*invalidate.Feed{feedA, feedB} {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- f.Run(fctx) }()
		t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	}
	tenant := uuid.New()
	p := policy(t, "/id", personal("/email", "p", "forever"))
	doc, err := a.Protect(ctx, tenant, []byte(`{"id":"u","email":"a@b.c"}`), p)
	require.NoError(t, err)
	got, err := b.Reveal(ctx, tenant, doc) // b caches the key for an hour
	require.NoError(t, err)
	require.Contains(t, string(got), "a@b.c")

	var d []dataprotect.DestroyedKey
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error {
		d, err = a.EraseSubjectTx(ctx, tx, tenant, "u", uuid.New())
		return err
	}))
	a.Forget(ctx, d) // after the commit
	require.Eventually(t, func() bool {
		got, err := b.Reveal(ctx, tenant, doc)
		require.NoError(t, err)
		return string(got) == `{"id":"u","email":{"erased":true}}`
	}, 30*time.Second, 20*time.Millisecond)
}
