package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/domain/audit/internal/auditdb"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/subjects"
)

// Defaults of VerifyOptions.
const (
	// DefaultVerifyBudget is how long one call of VerifyPaged works before it
	// answers with a cursor: far below the HTTP server's 60 s write timeout.
	DefaultVerifyBudget = 10 * time.Second
	// DefaultSettle is how old an event must be to be expected in the log:
	// younger ones may still be on their way through the relay and the audit
	// consumer.
	DefaultSettle = time.Minute
)

// Page sizes of a verification: chain entries, then events, read at a time.
const (
	verifyEntriesPage = 1000
	verifyEventsPage  = 2000
)

// VerifyOptions choose what VerifyPaged checks.
type VerifyOptions struct {
	// Tenant, when set, verifies that tenant only; else every tenant with a
	// chain or events, in tenant id order.
	Tenant *uuid.UUID
	// Cursor resumes a verification where the previous call's NextCursor
	// left it.
	Cursor string
	// Budget bounds the time of one call. Defaults to DefaultVerifyBudget.
	Budget time.Duration
	// Settle: events stored later than Settle before the verification began
	// are not yet expected in the log. Defaults to DefaultSettle; negative is
	// zero.
	Settle time.Duration
	// Consumer is the audit consumer's name (governance-audit), to name an
	// event it dead-lettered.
	Consumer string
}

// Missing is the first stored event of a tenant without its audit entry.
type Missing struct {
	EventID     string    `json:"event_id"`
	EventSource string    `json:"event_source"`
	EventType   string    `json:"event_type"`
	RecordedAt  time.Time `json:"recorded_at"`
	// Note says what is known of why: dead-lettered by the audit consumer,
	// or replayed from the DLQ and not yet applied. Empty when nothing is.
	Note string `json:"note,omitempty"`
}

// VerifyPage is one call's work: the tenants it finished, and where the
// next call resumes ("" when every tenant is done).
type VerifyPage struct {
	Chains     []VerifyResult
	NextCursor string
}

// verifyCursor is where a verification stands, and what it found so far of
// the current tenant. It is handed to the client as opaque base64url JSON.
type verifyCursor struct {
	// Cutoff: events stored at or after it are not checked.
	Cutoff time.Time `json:"c"`
	Tenant uuid.UUID `json:"t"`
	// Phase 0 recomputes the chain, phase 1 looks for every event's entry.
	Phase int `json:"p"`
	// Seq and Hash are the chain's last verified entry.
	Seq  int64  `json:"s"`
	Hash string `json:"h"`
	// At and ESeq are the last event checked (recorded_at, seq).
	At   time.Time `json:"a"`
	ESeq int64     `json:"e"`
	// Res is the tenant's result so far.
	Res VerifyResult `json:"r"`
}

func (c *verifyCursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeVerifyCursor(s string) (verifyCursor, error) {
	var c verifyCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Tenant == uuid.Nil || c.Phase < 0 || c.Phase > 1 {
		return c, problem.BadParam("cursor", "is not a cursor this route handed out")
	}
	return c, nil
}

func startTenant(tenant uuid.UUID, cutoff time.Time) verifyCursor {
	return verifyCursor{Cutoff: cutoff, Tenant: tenant, Hash: Genesis, Res: VerifyResult{TenantID: tenant}}
}

// VerifyPaged verifies the audit log one budget at a time, with constant
// memory however long it is. For each tenant it recomputes the chain from
// the first entry (the first entry whose sequence, prev_hash or hash is
// wrong, or a head that does not match the last entry, is the Break), then
// checks that every event stored before the verification began (less
// Settle) has its own entry, counting those that do not and naming the
// first (Missing). Events not expected in the log are left out: those still
// waiting for the relay, those the bus refused for good (dead-lettered by
// the relay), and those whose dead letter for the audit consumer an
// operator purged.
//
// A call stops after Budget and returns the tenants it finished with a
// cursor to continue from; the chain is append-only, so what a call
// verified stays verified. Each call reads in one snapshot.
func VerifyPaged(ctx context.Context, pool *pgxpool.Pool, o VerifyOptions) (VerifyPage, error) {
	if o.Budget <= 0 {
		o.Budget = DefaultVerifyBudget
	}
	if o.Settle == 0 {
		o.Settle = DefaultSettle
	}
	o.Settle = max(o.Settle, 0)
	page := VerifyPage{Chains: []VerifyResult{}}
	deadline := time.Now().Add(o.Budget)
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := auditdb.New(tx)
		var cur verifyCursor
		if o.Cursor != "" {
			var err error
			if cur, err = decodeVerifyCursor(o.Cursor); err != nil {
				return err
			}
			if o.Tenant != nil && cur.Tenant != *o.Tenant {
				return problem.BadParam("cursor", "belongs to another verification")
			}
		} else {
			cutoff := time.Now().Add(-o.Settle)
			first := uuid.Nil
			if o.Tenant != nil {
				first = *o.Tenant
			} else {
				var err error
				if first, err = q.NextTenant(ctx, uuid.Nil); err != nil {
					return fmt.Errorf("verify audit: %w", err)
				}
				if first == uuid.Nil {
					return nil // nothing stored yet
				}
			}
			cur = startTenant(first, cutoff)
		}
		for {
			done, err := verifyStep(ctx, q, &cur, o)
			if err != nil {
				return err
			}
			if done {
				page.Chains = append(page.Chains, cur.Res)
				if o.Tenant != nil {
					return nil
				}
				next, err := q.NextTenant(ctx, cur.Tenant)
				if err != nil {
					return fmt.Errorf("verify audit: %w", err)
				}
				if next == uuid.Nil {
					return nil
				}
				cur = startTenant(next, cur.Cutoff)
			}
			if time.Now().After(deadline) {
				page.NextCursor = cur.encode()
				return nil
			}
		}
	})
	return page, err
}

// verifyStep does one page of the current tenant's work and reports whether
// the tenant is done.
func verifyStep(ctx context.Context, q *auditdb.Queries, cur *verifyCursor, o VerifyOptions) (bool, error) {
	if cur.Phase == 0 {
		return false, chainStep(ctx, q, cur)
	}
	return eventsStep(ctx, q, cur, o)
}

// chainStep verifies the next page of the chain, and its head at its end;
// then (or at the first break) it moves on to the events.
func chainStep(ctx context.Context, q *auditdb.Queries, cur *verifyCursor) error {
	brk := func(seq int64, format string, args ...any) {
		cur.Res.Break = &Break{TenantID: cur.Tenant, Seq: seq, Reason: fmt.Sprintf(format, args...)}
		cur.Phase = 1
	}
	rows, err := q.ListEntries(ctx, auditdb.ListEntriesParams{TenantID: cur.Tenant, AfterSeq: cur.Seq, MaxRows: verifyEntriesPage})
	if err != nil {
		return fmt.Errorf("verify audit: %w", err)
	}
	for _, r := range rows {
		e := fromRow(r)
		want := cur.Seq + 1
		switch {
		case e.Seq != want:
			brk(want, "entry %d is missing (found %d next)", want, e.Seq)
		case e.PrevHash != cur.Hash:
			brk(e.Seq, "prev_hash %s does not match the previous entry's hash %s", e.PrevHash, cur.Hash)
		case e.ComputeHash() != e.Hash:
			brk(e.Seq, "stored hash %s does not match the entry's content (recomputed %s)", e.Hash, e.ComputeHash())
		}
		if cur.Res.Break != nil {
			return nil
		}
		cur.Seq, cur.Hash = e.Seq, e.Hash
		cur.Res.Entries++
	}
	if len(rows) == verifyEntriesPage {
		return nil
	}
	head, err := q.GetHead(ctx, cur.Tenant)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if cur.Res.Entries > 0 {
			brk(cur.Res.Entries, "chain head is missing")
		}
	case err != nil:
		return fmt.Errorf("verify audit: %w", err)
	case head.Seq != cur.Res.Entries || head.Hash != cur.Hash:
		brk(max(head.Seq, cur.Res.Entries), "chain head (%d, %s) does not match the last entry (%d, %s)", head.Seq, head.Hash, cur.Res.Entries, cur.Hash)
	}
	cur.Phase = 1
	return nil
}

// eventsStep checks the next page of the tenant's events for their audit
// entries and reports whether the tenant's events are done.
func eventsStep(ctx context.Context, q *auditdb.Queries, cur *verifyCursor, o VerifyOptions) (bool, error) {
	rows, err := q.EventsToAudit(ctx, auditdb.EventsToAuditParams{TenantID: cur.Tenant, AfterAt: cur.At, AfterSeq: cur.ESeq,
		Cutoff: cur.Cutoff, MaxRows: verifyEventsPage})
	if err != nil {
		return false, fmt.Errorf("verify audit: %w", err)
	}
	var unaudited []auditdb.EventsToAuditRow
	for _, r := range rows {
		if !r.Audited {
			unaudited = append(unaudited, r)
		}
	}
	cur.Res.Events += int64(len(rows))
	if len(unaudited) > 0 {
		missing, notes, err := classify(ctx, q, cur.Tenant, unaudited, o.Consumer)
		if err != nil {
			return false, err
		}
		cur.Res.Events -= int64(len(unaudited) - len(missing))
		cur.Res.Missing += int64(len(missing))
		if cur.Res.FirstMissing == nil && len(missing) > 0 {
			r := missing[0]
			cur.Res.FirstMissing = &Missing{EventID: r.ID, EventSource: r.Source, EventType: r.Type,
				RecordedAt: r.RecordedAt.UTC(), Note: notes[0]}
		}
	}
	if len(rows) > 0 {
		last := rows[len(rows)-1]
		cur.At, cur.ESeq = last.RecordedAt, last.Seq
	}
	return len(rows) < verifyEventsPage, nil
}

// classify keeps, of events without an audit entry, those the log should
// hold, in order, with a note on each: it leaves out events still waiting
// for the relay, events the bus refused for good, and events whose dead
// letter for the audit consumer was purged.
func classify(ctx context.Context, q *auditdb.Queries, tenant uuid.UUID, rows []auditdb.EventsToAuditRow, consumer string) ([]auditdb.EventsToAuditRow, []string, error) {
	seqs := make([]int64, len(rows))
	ids := make([]string, len(rows))
	for i, r := range rows {
		seqs[i], ids[i] = r.Seq, subjects.MsgID(tenant, r.Source, r.ID)
	}
	skip := map[int64]bool{}
	pending, err := q.PendingEvents(ctx, seqs)
	if err != nil {
		return nil, nil, fmt.Errorf("verify audit: %w", err)
	}
	refused, err := q.RefusedEvents(ctx, seqs)
	if err != nil {
		return nil, nil, fmt.Errorf("verify audit: %w", err)
	}
	for _, s := range append(pending, refused...) {
		skip[s] = true
	}
	dead := map[string]auditdb.AuditDeadLettersRow{} // msg id -> its latest dead letter
	if consumer != "" {
		dls, err := q.AuditDeadLetters(ctx, auditdb.AuditDeadLettersParams{TenantID: &tenant, Consumer: consumer, MsgIds: ids})
		if err != nil {
			return nil, nil, fmt.Errorf("verify audit: %w", err)
		}
		for _, d := range dls {
			dead[d.MsgID] = d
		}
	}
	var out []auditdb.EventsToAuditRow
	var notes []string
	for i, r := range rows {
		if skip[r.Seq] {
			continue
		}
		note := ""
		if d, ok := dead[ids[i]]; ok {
			switch d.State {
			case "purged":
				continue // an operator dropped it
			case "dead":
				note = fmt.Sprintf("dead-lettered by %s (dlq entry %d)", consumer, d.ID)
			default:
				note = fmt.Sprintf("replayed from dlq entry %d, not yet applied", d.ID)
			}
		}
		out = append(out, r)
		notes = append(notes, note)
	}
	return out, notes, nil
}
