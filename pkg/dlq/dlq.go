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
//
// Dead letters never vanish: every change of an entry's state (dead-lettered,
// replayed, purged) is one transaction, and a replay is recorded and sent
// under the entry's row lock, so a replayed message that fails again always
// becomes a new dead entry whose replay_of names the entry replayed.
package dlq

import (
	"context"
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
	// ReasonRetryBudget is a message whose consumer's retry budget (a
	// time) ran out before its attempts did.
	ReasonRetryBudget = "retry_budget"
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
	// ReplayOf is set when the dead letter is a replay that failed again:
	// the entry that was replayed.
	ReplayOf *int64 `json:"replay_of,omitempty"`
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
	// ReplayOf is the entry a replayed message came from (its
	// Prost-Replay-Of header), 0 for a first delivery. It is kept only when
	// that entry is of the same consumer and message.
	ReplayOf int64
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

// beginner starts a transaction (a pool) or a savepoint (a transaction).
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// DeadLetter stores f as a dead letter for reason and returns the entry id.
// Recording the same message again while it is dead updates that entry; a
// message whose entry was replayed gets a new entry. The failure count, the
// entry and the forgetting of the count are one transaction (a savepoint
// when db is a transaction), so the next failure of the message, a replay's,
// starts a count and a retry budget of its own.
func DeadLetter(ctx context.Context, db DB, f Failure, reason string) (int64, error) {
	b, ok := db.(beginner)
	if !ok {
		return deadLetter(ctx, db, f, reason)
	}
	var id int64
	err := pgx.BeginFunc(ctx, b, func(tx pgx.Tx) error {
		var err error
		id, err = deadLetter(ctx, tx, f, reason)
		return err
	})
	return id, err
}

func deadLetter(ctx context.Context, db DB, f Failure, reason string) (int64, error) {
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
	var replayOf *int64
	if f.ReplayOf > 0 {
		replayOf = &f.ReplayOf
	}
	id, err := q.InsertEntry(ctx, dlqdb.InsertEntryParams{
		Consumer: f.Consumer, TenantID: tenant, EventID: ev.ID, EventSource: ev.Source, EventType: ev.Type,
		MsgID: f.MsgID, Subject: f.Subject, Stream: f.Stream, StreamSeq: int64(f.StreamSeq),
		DeliveryCount: int32(f.Deliveries), Reason: reason, LastError: truncate(f.Err, 4000),
		FirstFailureAt: first, LastFailureAt: last, Envelope: f.Event, ReplayOf: replayOf,
	})
	if err != nil {
		return 0, fmt.Errorf("dlq: store entry: %w", err)
	}
	if err := q.ClearFailures(ctx, dlqdb.ClearFailuresParams{Consumer: f.Consumer, MsgIds: []string{f.MsgID}}); err != nil {
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

// Refusal is an entry a replay or purge named and could not act on.
type Refusal struct {
	ID int64 `json:"id"`
	// State is the entry's state; "" when there is no such entry (for a
	// tenant, also when it is another tenant's).
	State string `json:"state,omitempty"`
	// Reason says why, after "entry <id> ".
	Reason string `json:"reason"`
}

// RefusedError is the error of a replay or purge that named entries it
// cannot act on: entries that do not exist, are no longer dead, or (for a
// replay) are events the bus refused for good. It names every one. When the
// refusals are found before anything is done (the usual case: the named
// entries are checked first) Done is empty and nothing changed; an entry
// whose state changed while the others were handled is refused then, and
// Done lists what was done.
//
// Its kind is NotFound when every refused entry is missing, else Conflict.
type RefusedError struct {
	// Action is "replay" or "purge".
	Action  string
	Refused []Refusal
	Done    []int64
	// at is each named id's position in the request, for pointers.
	at map[int64]int
}

func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		parts[i] = "entry " + strconv.FormatInt(r.ID, 10) + " " + r.Reason
	}
	done := "nothing was " + e.past()
	if len(e.Done) > 0 {
		done = fmt.Sprintf("entries %v were %s", e.Done, e.past())
	}
	return fmt.Sprintf("cannot %s: %s (%s)", e.Action, strings.Join(parts, "; "), done)
}

func (e *RefusedError) past() string {
	if e.Action == "purge" {
		return "purged"
	}
	return "replayed"
}

// Unwrap gives the error its kind.
func (e *RefusedError) Unwrap() error {
	for _, r := range e.Refused {
		if r.State != "" {
			return problem.Conflict
		}
	}
	return problem.NotFound
}

// DetailProblem names each refused id by its pointer in the request, and
// adds the members refused (the list of Refusal) and done.
func (e *RefusedError) DetailProblem(p *problem.Problem) {
	for _, r := range e.Refused {
		fe := problem.FieldError{Field: "ids", Detail: "entry " + strconv.FormatInt(r.ID, 10) + " " + r.Reason}
		if i, ok := e.at[r.ID]; ok {
			fe.Pointer = "/ids/" + strconv.Itoa(i)
		}
		p.Errors = append(p.Errors, fe)
	}
	done := e.Done
	if done == nil {
		done = []int64{}
	}
	if p.Extensions == nil {
		p.Extensions = map[string]any{}
	}
	p.Extensions["refused"] = e.Refused
	p.Extensions["done"] = done
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
	// Consumers names the consumers that can dead-letter. A replay, purge or
	// operator's list selecting a consumer that is neither one of them nor
	// has any entry is refused (422), so a misspelt name is not taken for an
	// empty queue.
	Consumers []string
}

// NewManager returns a Manager publishing replays with js.
func NewManager(pool *pgxpool.Pool, js jetstream.JetStream) *Manager {
	return &Manager{pool: pool, js: js}
}

// maxSelect bounds how many entries one replay or purge touches.
const maxSelect = 10_000

// stateTimeout bounds the transaction of one entry's change of state, which
// runs to its end even when the caller's context ends (a replay sent and not
// recorded would leave its entry dead).
const stateTimeout = 30 * time.Second

// CheckConsumer refuses (422, field consumer) a consumer name that is
// neither one of Consumers nor has any entry: a misspelt name, which would
// otherwise read as an empty queue. "" is accepted.
func (m *Manager) CheckConsumer(ctx context.Context, name string) error {
	if name == "" || slices.Contains(m.Consumers, name) {
		return nil
	}
	has, err := dlqdb.New(m.pool).ConsumerHasEntries(ctx, name)
	if err != nil {
		return fmt.Errorf("dlq: check consumer: %w", err)
	}
	if has {
		return nil
	}
	known := "no consumer has dead letters"
	if len(m.Consumers) > 0 {
		known = "known consumers: " + strings.Join(m.Consumers, ", ")
	}
	return problem.Errorf(problem.Invalid, "no consumer is named %q", name).WithField("consumer", known)
}

// selection returns the dead entries f selects for action ("replay" or
// "purge"). Named ids are checked first: one that does not exist (for a
// tenant, is not its own), is not dead, or cannot be replayed makes the
// whole request a *RefusedError, and nothing is done.
func (m *Manager) selection(ctx context.Context, f Filter, action string) ([]Entry, error) {
	if err := m.CheckConsumer(ctx, f.Consumer); err != nil {
		return nil, err
	}
	if len(f.IDs) == 0 {
		entries, err := m.selectAll(ctx, f)
		if err != nil || action != "replay" {
			return entries, err
		}
		if f.Consumer == ConsumerRelay && len(entries) > 0 {
			return nil, problem.Errorf(problem.Conflict, "the dead letters of %s are events the bus refused for good: they cannot be replayed, only purged", ConsumerRelay).
				WithField("consumer", "purge them once understood")
		}
		// Everything (--all) is everything that can be replayed.
		return slices.DeleteFunc(entries, func(e Entry) bool { return e.Consumer == ConsumerRelay }), nil
	}
	if len(f.IDs) > maxSelect {
		return nil, problem.Errorf(problem.Invalid, "name at most %d entries at once", maxSelect).WithField("ids", fmt.Sprintf("%d ids", len(f.IDs)))
	}
	rows, err := dlqdb.New(m.pool).GetEntries(ctx, dlqdb.GetEntriesParams{Ids: f.IDs, TenantID: f.TenantID})
	if err != nil {
		return nil, fmt.Errorf("dlq: %s: %w", action, err)
	}
	byID := make(map[int64]Entry, len(rows))
	for _, r := range rows {
		byID[r.ID] = fromRow(r)
	}
	refused := &RefusedError{Action: action, at: map[int64]int{}}
	var out []Entry
	for i, id := range f.IDs {
		if _, seen := refused.at[id]; seen {
			continue // named twice: acted on once
		}
		refused.at[id] = i
		e, ok := byID[id]
		switch {
		case !ok:
			refused.Refused = append(refused.Refused, Refusal{ID: id, Reason: "does not exist"})
		case e.State != StateDead:
			refused.Refused = append(refused.Refused, Refusal{ID: id, State: e.State, Reason: "is " + e.State + ", not dead"})
		case action == "replay" && e.Consumer == ConsumerRelay:
			refused.Refused = append(refused.Refused, Refusal{ID: id, State: e.State,
				Reason: "is an event the bus refused for good (" + oneLine(e.LastError, 200) + "): it cannot be replayed, only purged"})
		default:
			out = append(out, e)
		}
	}
	if len(refused.Refused) > 0 {
		return nil, refused
	}
	return out, nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

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
// subject, marks it replayed and records who did it. Entries named by id
// that cannot be replayed make it fail with a *RefusedError naming each (see
// there); a consumer that is not known is refused too.
//
// Each entry is one transaction: its row is locked, marked replayed, the
// action and the OnReplay record written, and the replay sent last, before
// the commit. A replay that cannot be sent leaves the entry dead. The
// consumer that fails the replay before the commit waits on the row lock to
// store its dead letter, and then stores a new entry (replay_of the one
// replayed): a failed replay never leaves its entry looking settled. Should
// the commit itself fail after the send, the entry stays dead and a second
// replay is harmless, the consumer's idempotency record absorbing it.
func (m *Manager) Replay(ctx context.Context, f Filter, actor string, dryRun bool) (Result, error) {
	return m.act(ctx, f, "replay", actor, dryRun, m.replayOne)
}

// Purge marks every dead entry matching f purged (kept, but no longer dead)
// and records who did it, each entry in one transaction. Entries named by id
// that are missing or not dead make it fail with a *RefusedError.
func (m *Manager) Purge(ctx context.Context, f Filter, actor string, dryRun bool) (Result, error) {
	return m.act(ctx, f, "purge", actor, dryRun, m.purgeOne)
}

// act runs one entry's change (replayOne or purgeOne) over the selection.
func (m *Manager) act(ctx context.Context, f Filter, action, actor string, dryRun bool,
	one func(ctx context.Context, tx pgx.Tx, e Entry, actor string) error) (Result, error) {
	entries, err := m.selection(ctx, f, action)
	if err != nil {
		return Result{}, err
	}
	res := Result{DryRun: dryRun, IDs: []int64{}}
	refused := &RefusedError{Action: action, at: map[int64]int{}}
	for i, id := range f.IDs {
		if _, ok := refused.at[id]; !ok {
			refused.at[id] = i
		}
	}
	for _, e := range entries {
		if dryRun {
			res.IDs = append(res.IDs, e.ID)
			continue
		}
		r, err := m.change(ctx, e.ID, actor, one)
		if err != nil {
			res.Count = len(res.IDs)
			return res, fmt.Errorf("dlq: %s entry %d: %w", action, e.ID, err)
		}
		switch {
		case r == nil:
			res.IDs = append(res.IDs, e.ID)
		case len(f.IDs) > 0:
			refused.Refused = append(refused.Refused, *r)
		}
		// A selection (consumer, all) skips an entry another request
		// replayed or purged meanwhile.
	}
	res.Count = len(res.IDs)
	if len(refused.Refused) > 0 {
		refused.Done = res.IDs
		return res, refused
	}
	return res, nil
}

// change locks entry id and, when it is still dead, runs one in the same
// transaction. It returns the refusal when the entry is no longer dead.
func (m *Manager) change(ctx context.Context, id int64, actor string,
	one func(ctx context.Context, tx pgx.Tx, e Entry, actor string) error) (*Refusal, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateTimeout)
	defer cancel()
	var refusal *Refusal
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		row, err := dlqdb.New(tx).LockEntry(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			refusal = &Refusal{ID: id, Reason: "does not exist"}
			return nil
		}
		if err != nil {
			return err
		}
		if row.State != StateDead {
			refusal = &Refusal{ID: id, State: row.State, Reason: "is " + row.State + ", not dead"}
			return nil
		}
		return one(ctx, tx, fromRow(row), actor)
	})
	return refusal, err
}

// replayOne records the replay of e, locked in tx, and sends it last.
func (m *Manager) replayOne(ctx context.Context, tx pgx.Tx, e Entry, actor string) error {
	if e.Consumer == ConsumerRelay {
		return problem.Errorf(problem.Conflict, "dlq: entry %d is an event the bus refused for good (%s); it cannot be replayed, only purged", e.ID, e.LastError)
	}
	if e.JobID != nil && m.RetryJob == nil {
		return fmt.Errorf("dlq: entry %d is a discarded job and this process cannot retry jobs", e.ID)
	}
	q := dlqdb.New(tx)
	if _, err := q.MarkReplayed(ctx, dlqdb.MarkReplayedParams{ID: e.ID, Actor: &actor}); err != nil {
		return err
	}
	if err := q.InsertAction(ctx, dlqdb.InsertActionParams{EntryID: e.ID, Action: "replay", Actor: actor}); err != nil {
		return err
	}
	if m.OnReplay != nil {
		if err := m.OnReplay(ctx, tx, e, actor); err != nil {
			return err
		}
	}
	if e.JobID != nil {
		if err := m.RetryJob(ctx, *e.JobID); err != nil {
			return fmt.Errorf("retry job %d: %w", *e.JobID, err)
		}
		return nil
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
		return fmt.Errorf("publish replay: %w", err)
	}
	return nil
}

// purgeOne marks e, locked in tx, purged.
func (m *Manager) purgeOne(ctx context.Context, tx pgx.Tx, e Entry, actor string) error {
	q := dlqdb.New(tx)
	if _, err := q.MarkPurged(ctx, dlqdb.MarkPurgedParams{ID: e.ID, Actor: &actor}); err != nil {
		return err
	}
	return q.InsertAction(ctx, dlqdb.InsertActionParams{EntryID: e.ID, Action: "purge", Actor: actor})
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
		ReplayCount: int(r.ReplayCount), ReplayedAt: r.ReplayedAt, PurgedAt: r.PurgedAt, CreatedAt: r.CreatedAt, JobID: r.JobID,
		ReplayOf: r.ReplayOf}
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
