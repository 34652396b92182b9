// Package eventstore is PROST's append-only record of accepted CloudEvents and
// the transactional outbox that feeds NATS JetStream.
//
// AppendTx writes events and their outbox rows in the caller's transaction, so
// a consumer that emits events does so atomically with its other effects.
// Committer is the ingest path: it coalesces concurrent appends into shared
// transactions (group commit) and answers each caller only after the shared
// commit, so nothing is acknowledged before it is durable.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/eventstore/internal/eventsdb"
	"github.com/prost-platform/prost/pkg/problem"
)

// NewEvent is an event ready to be stored: its identity, the columns it is
// indexed by, and its canonical structured-mode JSON.
type NewEvent struct {
	TenantID uuid.UUID
	Source   string
	ID       string
	Type     string
	// Subject, Time and PartitionKey are empty when absent.
	Subject      string
	Time         time.Time
	PartitionKey string
	// Envelope is the structured-mode JSON of the event, tenantid included.
	Envelope []byte
	// OutboxSubject is the NATS subject the relay publishes the event on.
	OutboxSubject string
	// TraceParent and TraceState are the event's W3C trace context, carried
	// by the relay into the message headers; empty when absent.
	TraceParent, TraceState string
}

// Outcome is what became of one NewEvent.
type Outcome struct {
	// Seq is the event's position in the store; 0 for a duplicate.
	Seq int64
	// Duplicate is true when (tenant, source, id) was already stored, or
	// appeared earlier in the same append.
	Duplicate bool
}

// DB is what AppendTx needs: a transaction, or a connection inside one.
type DB = eventsdb.DBTX

// AppendTx stores evs with their outbox rows using db, which must be a
// transaction the caller commits. The data keys of an event's encrypted
// values (pkg/dataprotect tokens in its envelope) are recorded with it, so
// EventsByDataKeys finds a data subject's events. It returns one Outcome per event, in order.
// A (tenant, source, id) seen before, in the store or earlier in evs, is a
// duplicate: not stored again and given no outbox row.
func AppendTx(ctx context.Context, db DB, evs []NewEvent) ([]Outcome, error) {
	return appendEvents(ctx, db, evs, false)
}

// appendEvents is AppendTx in one statement, which also notifies
// prost_outbox when notify is set. Run on a connection outside a
// transaction, that statement is a transaction of its own: the events, their
// outbox rows and the notification are committed together when it returns,
// in one round trip (the ingest committer's way).
func appendEvents(ctx context.Context, db DB, evs []NewEvent, notify bool) ([]Outcome, error) {
	out := make([]Outcome, len(evs))
	if len(evs) == 0 {
		return out, nil
	}
	type ident struct {
		tenant     uuid.UUID
		source, id string
	}
	first := make(map[ident]int, len(evs))
	n := len(evs)
	p := eventsdb.AppendEventsParams{
		Ords: make([]int32, 0, n), TenantIds: make([]uuid.UUID, 0, n), Sources: make([]string, 0, n),
		Ids: make([]string, 0, n), Types: make([]string, 0, n), Subjects: make([]string, 0, n),
		Times: make([]string, 0, n), PartitionKeys: make([]string, 0, n), Envelopes: make([]string, 0, n),
		OutboxSubjects: make([]string, 0, n), TraceParents: make([]string, 0, n), TraceStates: make([]string, 0, n),
		KeyOrds: []int32{}, KeyIds: []uuid.UUID{}, Notify: notify,
	}
	for i := range evs {
		e := &evs[i]
		k := ident{e.TenantID, e.Source, e.ID}
		if _, seen := first[k]; seen {
			out[i].Duplicate = true
			continue
		}
		first[k] = i
		var ts string
		if !e.Time.IsZero() {
			ts = e.Time.Format(time.RFC3339Nano)
		}
		p.Ords = append(p.Ords, int32(i))
		p.TenantIds = append(p.TenantIds, e.TenantID)
		p.Sources = append(p.Sources, e.Source)
		p.Ids = append(p.Ids, e.ID)
		p.Types = append(p.Types, e.Type)
		p.Subjects = append(p.Subjects, e.Subject)
		p.Times = append(p.Times, ts)
		p.PartitionKeys = append(p.PartitionKeys, e.PartitionKey)
		p.Envelopes = append(p.Envelopes, string(e.Envelope))
		p.OutboxSubjects = append(p.OutboxSubjects, e.OutboxSubject)
		p.TraceParents = append(p.TraceParents, e.TraceParent)
		p.TraceStates = append(p.TraceStates, e.TraceState)
		for _, k := range dataprotect.KeyIDs(e.Envelope) {
			p.KeyOrds = append(p.KeyOrds, int32(i)) //nolint:gosec // a batch index
			p.KeyIds = append(p.KeyIds, k)
		}
	}
	rows, err := eventsdb.New(db).AppendEvents(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("append events: %w", err)
	}
	// Everything not returned was already stored: a duplicate.
	stored := make(map[ident]int64, len(rows))
	for _, r := range rows {
		stored[ident{r.TenantID, r.Source, r.ID}] = r.Seq
	}
	for i := range evs {
		if out[i].Duplicate {
			continue
		}
		if seq, ok := stored[ident{evs[i].TenantID, evs[i].Source, evs[i].ID}]; ok {
			out[i].Seq = seq
		} else {
			out[i].Duplicate = true
		}
	}
	return out, nil
}

// NotifyTx wakes relays listening on the prost_outbox channel when the
// transaction commits.
func NotifyTx(ctx context.Context, db DB) error { return eventsdb.New(db).NotifyOutbox(ctx) }

// ListParams selects a page of one tenant's events.
type ListParams struct {
	TenantID uuid.UUID
	// Type and Source, when non-empty, must match exactly.
	Type, Source string
	// Since, when non-zero, keeps events recorded at or after it.
	Since time.Time
	// Cursor continues a previous page ("" for the first).
	Cursor string
	// Limit is the page size. Defaults to 100; at most 1,000.
	Limit int
}

// Page is a page of events as structured-mode JSON documents.
type Page struct {
	Items [][]byte
	// NextCursor continues after this page; it is set on every page, the
	// last included, so a poller can come back later for what is new.
	NextCursor string
	// HasMore is true when more events were ready after this page.
	HasMore bool
}

// Position is where a page ends: events are listed in the order of the
// transactions that stored them (XID), then of their sequence number.
type Position struct {
	XID uint64
	Seq int64
}

// horizonWait bounds how long List waits for transactions older than the
// events it found to end before it answers without those events.
const horizonWait = 500 * time.Millisecond

// List returns a page of one tenant's events, oldest first, and a cursor to
// continue from. An event is listed only once every transaction that
// started before the one that stored it has ended, so an event committed
// late is never behind a cursor already handed out: a poller that resumes
// with its cursor reads exactly what is new. When older transactions are
// still running (anywhere on the Postgres server), List waits for them up
// to horizonWait and otherwise answers without the events behind them
// (the next call lists them).
func List(ctx context.Context, pool *pgxpool.Pool, p ListParams) (Page, error) {
	after, err := DecodeCursor(p.Cursor)
	if err != nil {
		return Page{}, err
	}
	if p.Limit <= 0 {
		p.Limit = 100
	}
	p.Limit = min(p.Limit, 1000)
	arg := eventsdb.ListEventsParams{TenantID: p.TenantID, AfterXid: strconv.FormatUint(after.XID, 10), AfterSeq: after.Seq,
		MaxRows: int32(p.Limit + 1)}
	if p.Type != "" {
		arg.Type = &p.Type
	}
	if p.Source != "" {
		arg.Source = &p.Source
	}
	if !p.Since.IsZero() {
		arg.Since = &p.Since
	}
	deadline := time.Now().Add(horizonWait)
	for tries := 0; ; {
		rows, err := eventsdb.New(pool).ListEvents(ctx, arg)
		if err != nil {
			return Page{}, fmt.Errorf("list events: %w", err)
		}
		ready, held := readyPrefix(rows)
		if held && len(ready) <= p.Limit && time.Now().Before(deadline) {
			// A transaction that ended while the statement ran is gone from
			// the next one's snapshot: try again at once, then wait.
			if tries++; tries > 2 {
				select {
				case <-ctx.Done():
					return Page{}, ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
			continue
		}
		page := Page{NextCursor: EncodeCursor(after)}
		if len(ready) > p.Limit {
			ready, page.HasMore = ready[:p.Limit], true
		}
		page.Items = make([][]byte, len(ready))
		for i, r := range ready {
			page.Items[i] = []byte(r.Envelope)
		}
		if n := len(ready); n > 0 {
			page.NextCursor = EncodeCursor(ready[n-1].pos)
		}
		return page, nil
	}
}

type readyRow struct {
	pos      Position
	Envelope string
}

// readyPrefix keeps the rows stored by transactions older than every
// transaction still running; held reports rows left out.
func readyPrefix(rows []eventsdb.ListEventsRow) (ready []readyRow, held bool) {
	ready = make([]readyRow, 0, len(rows))
	for _, r := range rows {
		x, err1 := strconv.ParseUint(r.Xid, 10, 64)
		horizon, err2 := strconv.ParseUint(r.Horizon, 10, 64)
		if err1 != nil || err2 != nil || x >= horizon {
			return ready, true
		}
		ready = append(ready, readyRow{pos: Position{XID: x, Seq: r.Seq}, Envelope: r.Envelope})
	}
	return ready, false
}

// Stored is one event as the store holds it.
type Stored struct {
	// Seq is the event's position in the store.
	Seq int64
	// RecordedAt is when the store accepted it.
	RecordedAt time.Time
	// Envelope is the structured-mode JSON document, as published.
	Envelope []byte
	// Pending is true while the relay has not yet published the event.
	Pending bool
}

// ErrNotFound means the tenant has no event with that source and id.
var ErrNotFound = problem.Errorf(problem.NotFound, "no event with that source and id")

// Get returns one of a tenant's events by its identity (source, id).
func Get(ctx context.Context, db DB, tenant uuid.UUID, source, id string) (Stored, error) {
	r, err := eventsdb.New(db).GetEvent(ctx, eventsdb.GetEventParams{TenantID: tenant, Source: source, ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Stored{}, ErrNotFound
	}
	if err != nil {
		return Stored{}, fmt.Errorf("get event: %w", err)
	}
	return Stored{Seq: r.Seq, RecordedAt: r.RecordedAt, Envelope: []byte(r.Envelope), Pending: r.Pending}, nil
}

// Key is an event's identity: its tenant, source and id.
type Key struct {
	Tenant     uuid.UUID
	Source, ID string
}

// RecordedAt returns, in one statement, when each of keys was recorded;
// events not in the store are left out of the map.
func RecordedAt(ctx context.Context, db DB, keys []Key) (map[Key]time.Time, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	p := eventsdb.RecordedAtParams{TenantIds: make([]uuid.UUID, len(keys)), Sources: make([]string, len(keys)), Ids: make([]string, len(keys))}
	for i, k := range keys {
		p.TenantIds[i], p.Sources[i], p.Ids[i] = k.Tenant, k.Source, k.ID
	}
	rows, err := eventsdb.New(db).RecordedAt(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("read when events were recorded: %w", err)
	}
	out := make(map[Key]time.Time, len(rows))
	for _, r := range rows {
		out[Key{r.TenantID, r.Source, r.ID}] = r.RecordedAt
	}
	return out, nil
}

// EncodeCursor makes an opaque cursor from a position.
func EncodeCursor(p Position) string {
	return cursor.String("p", strconv.FormatUint(p.XID, 10)+"."+strconv.FormatInt(p.Seq, 10))
}

// DecodeCursor reads a cursor made by EncodeCursor, or by earlier versions
// (a sequence number alone, the position of events stored before
// transaction ids were kept); "" is the start. Any other text is
// cursor.ErrInvalid.
func DecodeCursor(c string) (Position, error) {
	if c == "" {
		return Position{}, nil
	}
	if s, err := cursor.ParseString("p", c); err == nil {
		xs, ss, ok := strings.Cut(s, ".")
		x, err1 := strconv.ParseUint(xs, 10, 64)
		n, err2 := strconv.ParseInt(ss, 10, 64)
		if !ok || err1 != nil || err2 != nil || n < 0 || strconv.FormatUint(x, 10) != xs || strconv.FormatInt(n, 10) != ss {
			return Position{}, cursor.ErrInvalid
		}
		return Position{XID: x, Seq: n}, nil
	}
	n, err := cursor.ParseInt("s", c)
	if err != nil {
		return Position{}, err
	}
	return Position{Seq: n}, nil
}

// EventsByDataKeys returns up to limit (1 to 1,000) of the tenant's events
// holding values encrypted with any of keys, after position after (0 for the
// first page), in store order, with the position of the last one (0 when
// there are none).
func EventsByDataKeys(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, keys []uuid.UUID, after int64, limit int) ([][]byte, int64, error) {
	if len(keys) == 0 {
		return nil, 0, nil
	}
	limit = min(max(limit, 1), 1000)
	rows, err := eventsdb.New(pool).EventsByDataKeys(ctx, eventsdb.EventsByDataKeysParams{TenantID: tenant, KeyIds: keys, AfterSeq: after, MaxRows: int32(limit)}) //nolint:gosec // bounded
	if err != nil {
		return nil, 0, fmt.Errorf("events by data keys: %w", err)
	}
	out := make([][]byte, len(rows))
	var last int64
	for i, r := range rows {
		out[i] = []byte(r.Envelope)
		last = r.Seq
	}
	return out, last, nil
}
