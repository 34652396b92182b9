// Package dlq is PROST's dead-letter queue: the messages a consumer could not
// process, kept with everything a platform engineer needs to understand and
// replay them.
//
// The consumer runtime (pkg/consumer) records an entry when a message fails
// permanently or exhausts its deliveries, in its own transaction, and only
// then terminates the message in JetStream: a dead letter is never lost
// between the broker giving up and the entry being written.
//
// A replay republishes the entry's event on the replay subject of the one
// consumer that failed,
//
//	prost.replay.<consumer>.<tenant>.<partition>.<type>
//
// (stream PROST_REPLAY), with the Prost-Msg-Id header set to the original
// message id. The consumer runtime uses that id as its idempotency key, so a
// replay is applied at most once and never reaches the consumers that had
// already processed the event. Every replay and purge is recorded in
// dlq_actions (who, when, which entry) and, through the OnReplay hook, in the
// tenant's audit log.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/dlq/internal/dlqdb"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/subjects"
)

// Reasons a message is dead-lettered.
const (
	ReasonMaxDeliveries = "max_deliveries"
	ReasonPermanent     = "permanent"
)

// States of an entry.
const (
	StateDead     = "dead"
	StateReplayed = "replayed"
	StatePurged   = "purged"
)

// ConsumerRelay is the consumer name of the dead letters the outbox relay
// stores: events the bus refused for good (see pkg/outbox). They cannot be
// replayed (the bus would refuse them again); purge them once understood.
const ConsumerRelay = "outbox-relay"

// HeaderMsgID carries the original message id on a replayed message; the
// consumer runtime prefers it to Nats-Msg-Id as the idempotency key.
const HeaderMsgID = "Prost-Msg-Id"

// HeaderReplayOf carries the id of the DLQ entry a replayed message comes from.
const HeaderReplayOf = "Prost-Replay-Of"

// ReplayRoot is the first part of every replay subject.
const ReplayRoot = "prost.replay"

// ReplaySubject is where a replay for consumer goes: the original event
// subject with its prost.events prefix replaced by prost.replay.<consumer>.
func ReplaySubject(consumer, original string) string {
	rest := strings.TrimPrefix(original, subjects.Root+".")
	return ReplayRoot + "." + subjects.Token(consumer) + "." + rest
}

// ReplayFilter matches every replay for consumer.
func ReplayFilter(consumer string) string {
	return ReplayRoot + "." + subjects.Token(consumer) + ".>"
}

// Entry is one dead letter.
type Entry struct {
	ID             int64           `json:"id"`
	Consumer       string          `json:"consumer"`
	TenantID       *uuid.UUID      `json:"tenant_id"`
	EventID        string          `json:"event_id"`
	EventSource    string          `json:"event_source"`
	EventType      string          `json:"event_type"`
	MsgID          string          `json:"msg_id"`
	Subject        string          `json:"subject"`
	Stream         string          `json:"stream"`
	StreamSeq      int64           `json:"stream_seq"`
	DeliveryCount  int             `json:"delivery_count"`
	Reason         string          `json:"reason"`
	LastError      string          `json:"last_error"`
	FirstFailureAt time.Time       `json:"first_failure_at"`
	LastFailureAt  time.Time       `json:"last_failure_at"`
	Event          json.RawMessage `json:"event"`
	State          string          `json:"state"`
	ReplayCount    int             `json:"replay_count"`
	ReplayedAt     *time.Time      `json:"replayed_at,omitempty"`
	ReplayedBy     string          `json:"replayed_by,omitempty"`
	PurgedAt       *time.Time      `json:"purged_at,omitempty"`
	PurgedBy       string          `json:"purged_by,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	// JobID is set when the dead letter is a discarded background job (a
	// webhook delivery); replaying it retries the job.
	JobID *int64 `json:"job_id,omitempty"`
}

// DB is a transaction, connection or pool.
type DB = dlqdb.DBTX

// Failure is one failed delivery as the consumer runtime saw it.
type Failure struct {
	Consumer  string
	MsgID     string
	Subject   string
	Stream    string
	StreamSeq uint64
	// Deliveries is the broker's delivery count of the failed delivery.
	Deliveries int
	Err        string
	// Event is the message data (a structured CloudEvent).
	Event []byte
	// Untrusted marks a message that failed authentication: what it claims
	// is not believed, so the entry names no tenant and no event (it is
	// visible to operators only) and keeps the data as received.
	Untrusted bool
}

// RecordFailure counts a failed delivery and returns when the message first
// and last failed.
func RecordFailure(ctx context.Context, db DB, consumer, msgID, errText string) (first, last time.Time, err error) {
	r, err := dlqdb.New(db).RecordFailure(ctx, dlqdb.RecordFailureParams{Consumer: consumer, MsgID: msgID, LastError: truncate(errText, 4000)})
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("dlq: record failure: %w", err)
	}
	return r.FirstFailedAt, r.LastFailedAt, nil
}

// ClearFailures forgets the failure counts of messages that finally succeeded.
func ClearFailures(ctx context.Context, db DB, consumer string, msgIDs []string) error {
	if len(msgIDs) == 0 {
		return nil
	}
	return dlqdb.New(db).ClearFailures(ctx, dlqdb.ClearFailuresParams{Consumer: consumer, MsgIds: msgIDs})
}

// DeadLetter stores f as a dead letter for reason and returns the entry id.
// Recording the same message again while it is dead updates that entry.
func DeadLetter(ctx context.Context, db DB, f Failure, reason string) (int64, error) {
	q := dlqdb.New(db)
	first, last, err := RecordFailure(ctx, db, f.Consumer, f.MsgID, f.Err)
	if err != nil {
		return 0, err
	}
	var ev struct {
		ID       string `json:"id"`
		Source   string `json:"source"`
		Type     string `json:"type"`
		TenantID string `json:"tenantid"`
	}
	if !f.Untrusted {
		_ = json.Unmarshal(f.Event, &ev) // a message that is not an event is still kept, with empty identity
	}
	var tenant *uuid.UUID
	if t, err := uuid.Parse(ev.TenantID); err == nil {
		tenant = &t
	}
	id, err := q.InsertEntry(ctx, dlqdb.InsertEntryParams{
		Consumer: f.Consumer, TenantID: tenant, EventID: ev.ID, EventSource: ev.Source, EventType: ev.Type,
		MsgID: f.MsgID, Subject: f.Subject, Stream: f.Stream, StreamSeq: int64(f.StreamSeq),
		DeliveryCount: int32(f.Deliveries), Reason: reason, LastError: truncate(f.Err, 4000),
		FirstFailureAt: first, LastFailureAt: last, Envelope: f.Event,
	})
	if err != nil {
		return 0, fmt.Errorf("dlq: store entry: %w", err)
	}
	return id, nil
}

// JobFailure is a background job the job engine discarded after its last
// attempt.
type JobFailure struct {
	// Consumer names the service whose job it was, e.g. "rules-webhook".
	Consumer string
	JobID    int64
	Kind     string
	TenantID *uuid.UUID
	// MsgID identifies the message the job delivers (stable across retries).
	MsgID string
	// EventID, EventSource and EventType identify the triggering event.
	EventID, EventSource, EventType string
	Attempts                        int
	LastError                       string
	FirstFailure, LastFailure       time.Time
	// Payload is kept as the entry's event: the job's arguments.
	Payload []byte
}

// DeadLetterJob stores a discarded job as a dead letter and returns the
// entry id. Replaying the entry retries the job (see Manager.RetryJob).
func DeadLetterJob(ctx context.Context, db DB, f JobFailure) (int64, error) {
	if f.MsgID == "" {
		f.MsgID = "job:" + strconv.FormatInt(f.JobID, 10)
	}
	id, err := dlqdb.New(db).InsertJobEntry(ctx, dlqdb.InsertJobEntryParams{
		Consumer: f.Consumer, TenantID: f.TenantID, EventID: f.EventID, EventSource: f.EventSource, EventType: f.EventType,
		MsgID: f.MsgID, Subject: "job:" + f.Kind, JobID: f.JobID, DeliveryCount: int32(f.Attempts),
		LastError: truncate(f.LastError, 4000), FirstFailureAt: f.FirstFailure, LastFailureAt: f.LastFailure, Envelope: f.Payload,
	})
	if err != nil {
		return 0, fmt.Errorf("dlq: store job entry: %w", err)
	}
	return id, nil
}

// Filter selects entries. Zero fields select everything.
type Filter struct {
	// IDs selects these entries only.
	IDs      []int64
	Consumer string
	TenantID *uuid.UUID
	Type     string
	// Since keeps entries dead-lettered at or after it.
	Since time.Time
	// State defaults to dead.
	State string
	// Limit is the page size for List. Defaults to 100; at most 1,000.
	Limit int
	// AfterID continues a listing after this entry id.
	AfterID int64
}

// ErrNotFound means no entry has the id.
var ErrNotFound = problem.Errorf(problem.NotFound, "no dead-letter entry with that id")

func (f Filter) params(limit int) dlqdb.ListEntriesParams {
	p := dlqdb.ListEntriesParams{State: f.State, AfterID: f.AfterID, Ids: f.IDs, TenantID: f.TenantID, MaxRows: int32(limit)}
	if p.State == "" {
		p.State = StateDead
	}
	if p.Ids == nil {
		p.Ids = []int64{}
	}
	if f.Consumer != "" {
		p.Consumer = &f.Consumer
	}
	if f.Type != "" {
		p.EventType = &f.Type
	}
	if !f.Since.IsZero() {
		p.Since = &f.Since
	}
	return p
}

// List returns a page of entries matching f, oldest first, and the cursor of
// the next page ("" on the last).
func List(ctx context.Context, db DB, f Filter) ([]Entry, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	rows, err := dlqdb.New(db).ListEntries(ctx, f.params(limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("dlq: list: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = EncodeCursor(rows[len(rows)-1].ID)
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, next, nil
}

// Get returns one entry.
func Get(ctx context.Context, db DB, id int64) (Entry, error) {
	r, err := dlqdb.New(db).GetEntry(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("dlq: get: %w", err)
	}
	return fromRow(r), nil
}

// EncodeCursor and DecodeCursor make list cursors from entry ids.
func EncodeCursor(id int64) string { return cursor.Int("d", id) }

// DecodeCursor reads a cursor made by EncodeCursor; "" is the start. Any
// other text is cursor.ErrInvalid.
func DecodeCursor(c string) (int64, error) { return cursor.ParseInt("d", c) }

// Result says what a replay or purge did (or, in a dry run, would do).
type Result struct {
	DryRun bool    `json:"dry_run"`
	IDs    []int64 `json:"ids"`
	Count  int     `json:"count"`
}

// Manager replays and purges entries.
type Manager struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	// OnReplay runs inside the transaction that marks an entry replayed;
	// the platform uses it to record the replay in the tenant's audit log.
	OnReplay func(ctx context.Context, tx pgx.Tx, e Entry, actor string) error
	// RetryJob replays an entry that is a discarded job: it makes the job
	// available again. Without it such entries cannot be replayed.
	RetryJob func(ctx context.Context, jobID int64) error
	// Signer signs replayed messages (PROST_BUS_KEY), as the relay signs
	// events: consumers that verify signatures dead-letter a replay without
	// one. nil sends replays unsigned.
	Signer *busauth.Signer
}

// NewManager returns a Manager publishing replays with js.
func NewManager(pool *pgxpool.Pool, js jetstream.JetStream) *Manager {
	return &Manager{pool: pool, js: js}
}

// maxSelect bounds how many entries one replay or purge touches.
const maxSelect = 10_000

func (m *Manager) selectAll(ctx context.Context, f Filter) ([]Entry, error) {
	f.State = StateDead
	var out []Entry
	for len(out) < maxSelect {
		f.Limit = 1000
		page, next, err := List(ctx, m.pool, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			break
		}
		f.AfterID = page[len(page)-1].ID
	}
	return out, nil
}

// Replay republishes every dead entry matching f to its consumer's replay
// subject, marks it replayed and records who did it. The publish comes
// first: if marking fails afterwards the entry stays dead and a second
// replay is harmless, because the consumer's idempotency record absorbs it.
func (m *Manager) Replay(ctx context.Context, f Filter, actor string, dryRun bool) (Result, error) {
	entries, err := m.selectAll(ctx, f)
	if err != nil {
		return Result{}, err
	}
	res := Result{DryRun: dryRun, IDs: []int64{}}
	for _, e := range entries {
		if dryRun {
			res.IDs = append(res.IDs, e.ID)
			continue
		}
		ok, err := m.replayOne(ctx, e, actor)
		if err != nil {
			return res, err
		}
		if ok {
			res.IDs = append(res.IDs, e.ID)
		}
	}
	res.Count = len(res.IDs)
	return res, nil
}

func (m *Manager) replayOne(ctx context.Context, e Entry, actor string) (bool, error) {
	if e.Consumer == ConsumerRelay {
		return false, problem.Errorf(problem.Conflict, "dlq: entry %d is an event the bus refused for good (%s); it cannot be replayed, only purged", e.ID, e.LastError)
	}
	if e.JobID != nil {
		if m.RetryJob == nil {
			return false, fmt.Errorf("dlq: entry %d is a discarded job and this process cannot retry jobs", e.ID)
		}
		if err := m.RetryJob(ctx, *e.JobID); err != nil {
			return false, fmt.Errorf("dlq: retry job %d of entry %d: %w", *e.JobID, e.ID, err)
		}
		return m.markReplayed(ctx, e, actor)
	}
	msg := &nats.Msg{
		Subject: ReplaySubject(e.Consumer, e.Subject),
		Data:    e.Event,
		Header: nats.Header{
			HeaderMsgID:    []string{e.MsgID},
			HeaderReplayOf: []string{strconv.FormatInt(e.ID, 10)},
			"Content-Type": []string{"application/cloudevents+json"},
		},
	}
	if m.Signer != nil {
		m.Signer.Sign(msg.Header, msg.Subject, e.MsgID, msg.Data)
	}
	// A fresh Nats-Msg-Id per replay: replaying the same entry twice within
	// the duplicate window is a second, deliberate attempt.
	if _, err := m.js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("replay-%d-%d", e.ID, e.ReplayCount+1))); err != nil {
		return false, fmt.Errorf("dlq: publish replay of entry %d: %w", e.ID, err)
	}
	return m.markReplayed(ctx, e, actor)
}

// markReplayed records a replay that was sent.
func (m *Manager) markReplayed(ctx context.Context, e Entry, actor string) (bool, error) {
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		q := dlqdb.New(tx)
		if _, err := q.LockEntry(ctx, e.ID); err != nil {
			return err
		}
		if err := q.MarkReplayed(ctx, dlqdb.MarkReplayedParams{ID: e.ID, Actor: &actor}); err != nil {
			return err
		}
		if err := q.InsertAction(ctx, dlqdb.InsertActionParams{EntryID: e.ID, Action: "replay", Actor: actor}); err != nil {
			return err
		}
		if m.OnReplay != nil {
			return m.OnReplay(ctx, tx, e, actor)
		}
		return nil
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // replayed or purged meanwhile by someone else
	}
	if err != nil {
		return false, fmt.Errorf("dlq: mark entry %d replayed: %w", e.ID, err)
	}
	return true, nil
}

// Purge marks every dead entry matching f purged (kept, but no longer dead)
// and records who did it.
func (m *Manager) Purge(ctx context.Context, f Filter, actor string, dryRun bool) (Result, error) {
	entries, err := m.selectAll(ctx, f)
	if err != nil {
		return Result{}, err
	}
	res := Result{DryRun: dryRun, IDs: []int64{}}
	for _, e := range entries {
		if dryRun {
			res.IDs = append(res.IDs, e.ID)
			continue
		}
		err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
			q := dlqdb.New(tx)
			if _, err := q.LockEntry(ctx, e.ID); err != nil {
				return err
			}
			if err := q.MarkPurged(ctx, dlqdb.MarkPurgedParams{ID: e.ID, Actor: &actor}); err != nil {
				return err
			}
			return q.InsertAction(ctx, dlqdb.InsertActionParams{EntryID: e.ID, Action: "purge", Actor: actor})
		})
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("dlq: purge entry %d: %w", e.ID, err)
		}
		res.IDs = append(res.IDs, e.ID)
	}
	res.Count = len(res.IDs)
	return res, nil
}

// CountDead returns the number of dead entries per consumer.
func CountDead(ctx context.Context, db DB) (map[string]int64, error) {
	rows, err := dlqdb.New(db).CountDead(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Consumer] = r.Dead
	}
	return out, nil
}

func fromRow(r dlqdb.DlqEntry) Entry {
	e := Entry{ID: r.ID, Consumer: r.Consumer, TenantID: r.TenantID, EventID: r.EventID, EventSource: r.EventSource,
		EventType: r.EventType, MsgID: r.MsgID, Subject: r.Subject, Stream: r.Stream, StreamSeq: r.StreamSeq,
		DeliveryCount: int(r.DeliveryCount), Reason: r.Reason, LastError: r.LastError,
		FirstFailureAt: r.FirstFailureAt, LastFailureAt: r.LastFailureAt, State: r.State,
		ReplayCount: int(r.ReplayCount), ReplayedAt: r.ReplayedAt, PurgedAt: r.PurgedAt, CreatedAt: r.CreatedAt, JobID: r.JobID}
	if json.Valid(r.Envelope) {
		e.Event = r.Envelope
	} else {
		b, _ := json.Marshal(string(r.Envelope))
		e.Event = b
	}
	if r.ReplayedBy != nil {
		e.ReplayedBy = *r.ReplayedBy
	}
	if r.PurgedBy != nil {
		e.PurgedBy = *r.PurgedBy
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
