// Package audit keeps PROST's tamper-evident audit log: one hash-chained,
// append-only chain per tenant.
//
// Entry n of a tenant's chain stores prev_hash (entry n-1's hash, or 64 zeros
// for n = 1) and hash = hex(SHA-256(prev_hash || canonical entry)), where the
// canonical entry is the JSON object
//
//	{"tenant_id":…,"seq":…,"event_id":…,"event_source":…,"event_type":…,"actor_id":…,"action":…,"recorded_at":…}
//
// with members in exactly that order, strings escaped by encoding/json and
// recorded_at in RFC 3339 UTC with microseconds (Postgres' precision). Altering,
// removing or reordering any stored entry breaks every later hash, which
// Verify reports. The database refuses UPDATE, DELETE and TRUNCATE on the log.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/audit/internal/auditdb"
	"github.com/prost-platform/prost/pkg/internal/lru"
)

// Genesis is the prev_hash of the first entry of every chain.
var Genesis = strings.Repeat("0", 64)

// Record is what a caller asks to be audited.
type Record struct {
	TenantID    uuid.UUID
	EventID     string
	EventSource string
	EventType   string
	ActorID     string
	Action      string
}

// Entry is one stored link of a chain.
type Entry struct {
	TenantID    uuid.UUID `json:"tenant_id"`
	Seq         int64     `json:"seq"`
	EventID     string    `json:"event_id"`
	EventSource string    `json:"event_source"`
	EventType   string    `json:"event_type"`
	ActorID     string    `json:"actor_id"`
	Action      string    `json:"action"`
	RecordedAt  time.Time `json:"recorded_at"`
	PrevHash    string    `json:"prev_hash"`
	Hash        string    `json:"hash"`
}

// Canonical returns the bytes the entry's hash covers after prev_hash.
func (e *Entry) Canonical() []byte {
	b := make([]byte, 0, 256)
	str := func(k, v string) {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		q, _ := json.Marshal(v)
		b = append(b, q...)
	}
	b = append(b, `{"tenant_id":"`...)
	b = append(b, e.TenantID.String()...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	str("event_id", e.EventID)
	str("event_source", e.EventSource)
	str("event_type", e.EventType)
	str("actor_id", e.ActorID)
	str("action", e.Action)
	str("recorded_at", e.RecordedAt.UTC().Format("2006-01-02T15:04:05.000000Z"))
	return append(b, '}')
}

// ComputeHash returns the hash the entry must have given its PrevHash.
func (e *Entry) ComputeHash() string {
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(e.Canonical())
	return hex.EncodeToString(h.Sum(nil))
}

// knownHeads holds tenants whose chain head AppendTx has seen, so that it
// does not try to create their heads again: at most 100,000 tenants (about
// 10 MiB), the least recently appended to forgotten first. A tenant seen in
// a transaction that rolled back, or in another database, is found missing
// and its head created then.
var knownHeads = lru.New[uuid.UUID, struct{}](100_000, 0)

// AppendTx extends the chains of the records' tenants inside tx, in the order
// given within each tenant. Whatever the number of tenants, it costs two
// statements besides the inserted entries: every head is locked and read,
// and every head is moved to its chain's new last entry, once per call (and
// a third, first, when a tenant's head may not exist yet). Heads are locked
// in tenant order, so concurrent appenders do not deadlock (except in one
// rare case: a head seen in a transaction that rolled back is created while
// the others are held; Postgres breaks such a deadlock and the caller's
// retry settles it), and one chain only ever grows by one transaction at a
// time.
func AppendTx(ctx context.Context, tx pgx.Tx, recs []Record) ([]Entry, error) {
	all, _, err := appendTx(ctx, tx, recs, false)
	return all, err
}

// AppendNewTx is AppendTx for records that must be in the log once (the
// audit consumer's, one per event): a record whose entry is there already,
// with every field the same, is left out, and dup[i] says so for recs[i].
// It looks while holding the tenants' heads, which every appender of those
// tenants must take first, so no transaction can add the same entry
// meanwhile: this is the audit consumer's idempotency (its
// consumer.Config.Idempotent), one indexed read per batch instead of a
// record per event.
func AppendNewTx(ctx context.Context, tx pgx.Tx, recs []Record) (entries []Entry, dup []bool, err error) {
	return appendTx(ctx, tx, recs, true)
}

func appendTx(ctx context.Context, tx pgx.Tx, recs []Record, skipRecorded bool) ([]Entry, []bool, error) {
	if len(recs) == 0 {
		return nil, nil, nil
	}
	q := auditdb.New(tx)
	byTenant := map[uuid.UUID][]Record{}
	var tenants []uuid.UUID
	for _, r := range recs {
		if _, ok := byTenant[r.TenantID]; !ok {
			tenants = append(tenants, r.TenantID)
		}
		byTenant[r.TenantID] = append(byTenant[r.TenantID], r)
	}
	// uuid order is byte order, as in Postgres.
	slices.SortFunc(tenants, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ensure := func() error {
		if err := q.EnsureHeads(ctx, auditdb.EnsureHeadsParams{TenantIds: tenants, Genesis: Genesis}); err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
		return nil
	}
	// Chains are never deleted, so a head seen once is there: only a batch
	// with a tenant not seen yet creates the missing heads first.
	ensured := false
	if slices.ContainsFunc(tenants, func(t uuid.UUID) bool { _, ok := knownHeads.Get(t); return !ok }) {
		if err := ensure(); err != nil {
			return nil, nil, err
		}
		ensured = true
	}
	heads, err := q.LockHeads(ctx, tenants)
	if err != nil {
		return nil, nil, fmt.Errorf("audit head: %w", err)
	}
	if len(heads) != len(tenants) && !ensured {
		// A head seen in a transaction that then rolled back: create it.
		if err := ensure(); err != nil {
			return nil, nil, err
		}
		if heads, err = q.LockHeads(ctx, tenants); err != nil {
			return nil, nil, fmt.Errorf("audit head: %w", err)
		}
	}
	if len(heads) != len(tenants) {
		return nil, nil, fmt.Errorf("audit head: %d of %d chain heads found", len(heads), len(tenants))
	}
	for _, t := range tenants {
		knownHeads.Put(t, struct{}{})
	}
	var dup []bool
	if skipRecorded {
		var err error
		if dup, err = recorded(ctx, q, recs); err != nil {
			return nil, nil, err
		}
		kept := byTenant
		byTenant = make(map[uuid.UUID][]Record, len(kept))
		for i, r := range recs {
			if !dup[i] {
				byTenant[r.TenantID] = append(byTenant[r.TenantID], r)
			}
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	all := make([]Entry, 0, len(recs))
	rows := make([]auditdb.InsertEntriesParams, 0, len(recs))
	seqs := make([]int64, len(heads))
	hashes := make([]string, len(heads))
	for i, head := range heads {
		t := head.TenantID
		if t != tenants[i] {
			return nil, nil, fmt.Errorf("audit head: chain head %s found where %s was expected", t, tenants[i])
		}
		seq, prev := head.Seq, head.Hash
		for _, r := range byTenant[t] {
			seq++
			e := Entry{TenantID: t, Seq: seq, EventID: r.EventID, EventSource: r.EventSource, EventType: r.EventType,
				ActorID: r.ActorID, Action: r.Action, RecordedAt: now, PrevHash: prev}
			e.Hash = e.ComputeHash()
			prev = e.Hash
			all = append(all, e)
			rows = append(rows, auditdb.InsertEntriesParams{TenantID: t, Seq: e.Seq, EventID: e.EventID,
				EventSource: e.EventSource, EventType: e.EventType, ActorID: e.ActorID, Action: e.Action,
				RecordedAt: e.RecordedAt, PrevHash: e.PrevHash, Hash: e.Hash})
		}
		seqs[i], hashes[i] = seq, prev
	}
	if len(rows) == 0 {
		return all, dup, nil // every record was in the log already
	}
	if err := q.UpdateHeads(ctx, auditdb.UpdateHeadsParams{TenantIds: tenants, Seqs: seqs, Hashes: hashes}); err != nil {
		return nil, nil, fmt.Errorf("audit head: %w", err)
	}
	if _, err := q.InsertEntries(ctx, rows); err != nil {
		return nil, nil, fmt.Errorf("audit insert: %w", err)
	}
	return all, dup, nil
}

// recorded says, for each record, whether the log holds an entry with its
// tenant, event, type, actor and action already.
func recorded(ctx context.Context, q *auditdb.Queries, recs []Record) ([]bool, error) {
	p := auditdb.EntriesOfEventsParams{TenantIds: make([]uuid.UUID, len(recs)), EventIds: make([]string, len(recs))}
	for i, r := range recs {
		p.TenantIds[i], p.EventIds[i] = r.TenantID, r.EventID
	}
	rows, err := q.EntriesOfEvents(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("audit: read recorded entries: %w", err)
	}
	have := make(map[Record]bool, len(rows))
	for _, r := range rows {
		have[Record{TenantID: r.TenantID, EventID: r.EventID, EventSource: r.EventSource, EventType: r.EventType,
			ActorID: r.ActorID, Action: r.Action}] = true
	}
	dup := make([]bool, len(recs))
	for i, r := range recs {
		dup[i] = have[r]
	}
	return dup, nil
}

// Page is a page of one tenant's chain.
type Page struct {
	Items      []Entry
	NextCursor string
}

// List returns entries of one tenant's chain after cursor, oldest first.
// limit defaults to 100, at most 1,000.
func List(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, cursor string, limit int) (Page, error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return Page{}, err
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	rows, err := auditdb.New(pool).ListEntries(ctx, auditdb.ListEntriesParams{TenantID: tenant, AfterSeq: after, MaxRows: int32(limit + 1)})
	if err != nil {
		return Page{}, fmt.Errorf("list audit: %w", err)
	}
	var p Page
	if len(rows) > limit {
		rows = rows[:limit]
		p.NextCursor = encodeCursor(rows[len(rows)-1].Seq)
	}
	p.Items = make([]Entry, len(rows))
	for i, r := range rows {
		p.Items[i] = fromRow(r)
	}
	return p, nil
}

// ForEvent returns the entries of one tenant's chain about one event (its
// own entry, and those of operations on it such as a replay), oldest
// first, at most 1,000. source "" matches every source.
func ForEvent(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, eventID, source string) ([]Entry, error) {
	p := auditdb.ListEventEntriesParams{TenantID: tenant, EventID: eventID}
	if source != "" {
		p.EventSource = &source
	}
	rows, err := auditdb.New(pool).ListEventEntries(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, nil
}

// Break is the first entry of a chain that does not verify.
type Break struct {
	TenantID uuid.UUID `json:"tenant_id"`
	Seq      int64     `json:"seq"`
	Reason   string    `json:"reason"`
}

// Error describes the break.
func (b *Break) Error() string {
	return fmt.Sprintf("audit chain of tenant %s broken at entry %d: %s", b.TenantID, b.Seq, b.Reason)
}

// VerifyResult is the outcome of checking one tenant's chain (and, with
// VerifyPaged, that every stored event has its entry).
type VerifyResult struct {
	TenantID uuid.UUID `json:"tenant_id"`
	Entries  int64     `json:"entries"`
	// Break is nil when the whole chain verifies.
	Break *Break `json:"break,omitempty"`
	// Events counts the stored events expected in the log that were
	// checked; Missing those without their entry, FirstMissing the first of
	// them (VerifyPaged only).
	Events       int64    `json:"events"`
	Missing      int64    `json:"missing"`
	FirstMissing *Missing `json:"first_missing,omitempty"`
}

// OK reports whether the chain verifies and no event is missing from it.
func (r VerifyResult) OK() bool { return r.Break == nil && r.Missing == 0 }

// Problem describes what is wrong with the result ("" when OK).
func (r VerifyResult) Problem() string {
	switch {
	case r.Break != nil:
		return r.Break.Error()
	case r.FirstMissing != nil:
		m := r.FirstMissing
		s := fmt.Sprintf("audit log of tenant %s is incomplete: %d stored events have no entry; the first is event %q (source %q, type %q, stored %s)",
			r.TenantID, r.Missing, m.EventID, m.EventSource, m.EventType, m.RecordedAt.UTC().Format(time.RFC3339))
		if m.Note != "" {
			s += ": " + m.Note
		}
		return s
	}
	return ""
}

// Verify recomputes one tenant's chain from the first entry and reports the
// first entry whose sequence, prev_hash or hash is wrong, or a head that does
// not match the last entry. It reads the entries and the head in one
// snapshot, so appends committing meanwhile are not mistaken for a break.
func Verify(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID) (VerifyResult, error) {
	var res VerifyResult
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		res, err = verify(ctx, auditdb.New(tx), tenant)
		return err
	})
	return res, err
}

func verify(ctx context.Context, q *auditdb.Queries, tenant uuid.UUID) (VerifyResult, error) {
	res := VerifyResult{TenantID: tenant}
	prev, want := Genesis, int64(1)
	brk := func(seq int64, format string, args ...any) (VerifyResult, error) {
		res.Break = &Break{TenantID: tenant, Seq: seq, Reason: fmt.Sprintf(format, args...)}
		return res, nil
	}
	var after int64
	for {
		rows, err := q.ListEntries(ctx, auditdb.ListEntriesParams{TenantID: tenant, AfterSeq: after, MaxRows: 1000})
		if err != nil {
			return res, fmt.Errorf("verify audit: %w", err)
		}
		for _, r := range rows {
			e := fromRow(r)
			switch {
			case e.Seq != want:
				return brk(want, "entry %d is missing (found %d next)", want, e.Seq)
			case e.PrevHash != prev:
				return brk(e.Seq, "prev_hash %s does not match the previous entry's hash %s", e.PrevHash, prev)
			case e.ComputeHash() != e.Hash:
				return brk(e.Seq, "stored hash %s does not match the entry's content (recomputed %s)", e.Hash, e.ComputeHash())
			}
			prev, want = e.Hash, want+1
			res.Entries++
			after = e.Seq
		}
		if len(rows) < 1000 {
			break
		}
	}
	head, err := q.GetHead(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		if res.Entries > 0 {
			return brk(res.Entries, "chain head is missing")
		}
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("verify audit: %w", err)
	}
	if head.Seq != res.Entries || head.Hash != prev {
		return brk(max(head.Seq, res.Entries), "chain head (%d, %s) does not match the last entry (%d, %s)", head.Seq, head.Hash, res.Entries, prev)
	}
	return res, nil
}

// Tenants lists every tenant that has a chain.
func Tenants(ctx context.Context, pool *pgxpool.Pool) ([]uuid.UUID, error) {
	return auditdb.New(pool).ListChainTenants(ctx)
}

func fromRow(r auditdb.AuditLog) Entry {
	return Entry{TenantID: r.TenantID, Seq: r.Seq, EventID: r.EventID, EventSource: r.EventSource,
		EventType: r.EventType, ActorID: r.ActorID, Action: r.Action, RecordedAt: r.RecordedAt.UTC(),
		PrevHash: r.PrevHash, Hash: r.Hash}
}

func encodeCursor(seq int64) string { return cursor.Int("a", seq) }

func decodeCursor(c string) (int64, error) { return cursor.ParseInt("a", c) }
