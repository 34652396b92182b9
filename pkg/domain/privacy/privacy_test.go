package privacy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/privacy"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// clock is a settable time.
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

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type bundle struct {
	t         *testing.T
	db        *prosttest.Database
	kr        *dataprotect.Keyring
	contracts *contracts.Store
	ingest    *registry.Ingest
	svc       *privacy.Service
	clock     *clock
	logs      *syncBuffer
	tenant    uuid.UUID
}

// setup gives a test a database of its own (the retention job sweeps every
// tenant), a keyring, the contracts and a tenant with a classified contract
// for user.signup: email (receipts, 400d), phone (support, forever) and
// marketing consent (marketing, 1s), the data subject at /user_id.
func setup(t *testing.T) *bundle {
	t.Helper()
	db := prosttest.NewDatabase(t)
	c := &clock{now: time.Now()}
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(t, err)
	kr, err := dataprotect.New(db.Pool, dataprotect.Config{KEK: kek, Now: c.Now})
	require.NoError(t, err)
	cs := contracts.NewStore(db.Pool, contracts.StoreConfig{})
	reg, err := registry.New(db.Pool, registry.Config{UnregisteredTypes: registry.UnregisteredAccept})
	require.NoError(t, err)
	logs := &syncBuffer{}
	b := &bundle{t: t, db: db, kr: kr, contracts: cs, ingest: registry.NewIngest(reg, cs, kr), clock: c, logs: logs, tenant: uuid.New(),
		svc: privacy.New(db.Pool, kr, cs, privacy.Config{Now: c.Now, Logger: slog.New(slog.NewJSONHandler(logs, nil))})}
	_, _, err = cs.Put(t.Context(), b.tenant, &contracts.Contract{Type: "user.signup", Owner: "accounts", Description: "a user signed up",
		Level: contracts.LevelStandard, Schema: "urn:prost:schema:user.signup:1", Compatibility: "BACKWARD",
		Idempotency: &contracts.Idempotency{Key: []string{"source", "id"}}, Retry: &contracts.Retry{MaxAttempts: 3},
		DataSubject: "/user_id", Purpose: "accounts", Retention: "400d",
		Classification: contracts.Classification{
			"/email":     {Class: contracts.ClassPersonal, Purpose: "receipts"},
			"/phone":     {Class: contracts.ClassPersonal, Purpose: "support", Retention: "forever"},
			"/marketing": {Class: contracts.ClassPersonal, Purpose: "marketing", Retention: "1s"},
		}})
	require.NoError(t, err)
	return b
}

// record ingests events as the gateway does: checked (and so encrypted)
// by the registry, then stored.
func (b *bundle) record(tenant uuid.UUID, id, data string) {
	b.t.Helper()
	ctx := b.t.Context()
	evs := []cloudevent.Event{{SpecVersion: "1.0", ID: id, Source: "/accounts", Type: "user.signup", Data: []byte(data)}}
	_, err := b.ingest.CheckEvents(ctx, tenant, evs, false)
	require.NoError(b.t, err)
	evs[0].SetExtension("tenantid", tenant.String())
	require.NoError(b.t, pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(ctx, tx, []eventstore.NewEvent{{TenantID: tenant, Source: evs[0].Source, ID: id, Type: evs[0].Type,
			Envelope: evs[0].AppendJSON(nil), OutboxSubject: subjects.Event(tenant, 0, evs[0].Type)}})
		return err
	}))
}

// export returns the export's lines.
func (b *bundle) export(tenant uuid.UUID, subject string) []privacy.ExportLine {
	b.t.Helper()
	var buf bytes.Buffer
	n, err := b.svc.Export(b.t.Context(), tenant, subject, &buf)
	require.NoError(b.t, err)
	var out []privacy.ExportLine
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var line privacy.ExportLine
		require.NoError(b.t, json.Unmarshal([]byte(l), &line))
		out = append(out, line)
	}
	require.Len(b.t, out, n)
	return out
}

// stored is every stored envelope of the tenant, as text.
func (b *bundle) stored(tenant uuid.UUID) string {
	b.t.Helper()
	var s string
	require.NoError(b.t, b.db.Pool.QueryRow(b.t.Context(), `SELECT coalesce(string_agg(envelope::text, E'\n' ORDER BY seq), '') FROM events WHERE tenant_id = $1`, tenant).Scan(&s))
	return s
}

func TestEraseAndExport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	b.record(b.tenant, "e-1", `{"user_id":"u-42","email":"jane@example.com","phone":"+351 912 345 678","plan":"pro"}`)
	b.record(b.tenant, "e-2", `{"user_id":"u-42","email":"jane.doe@example.com"}`)
	b.record(b.tenant, "e-3", `{"user_id":"u-7","email":"bob@example.com"}`)
	for _, plain := range []string{"jane", "912 345", "bob@"} {
		require.NotContains(t, b.stored(b.tenant), plain)
	}

	// Export: the subject's events, decrypted, with the contract.
	lines := b.export(b.tenant, "u-42")
	require.Len(t, lines, 2)
	require.Contains(t, string(lines[0].Event), `"email":"jane@example.com","phone":"+351 912 345 678","plan":"pro"`)
	require.Contains(t, string(lines[1].Event), `"jane.doe@example.com"`)
	require.NotNil(t, lines[0].Contract)
	require.Equal(t, "/user_id", lines[0].Contract.DataSubject)
	require.Len(t, b.export(b.tenant, "u-7"), 1)
	require.Empty(t, b.export(b.tenant, "nobody"))
	require.Empty(t, b.export(uuid.New(), "u-42"), "another tenant's subject of the same id is another person")

	// Erase u-42.
	e, err := b.svc.Erase(ctx, b.tenant, "u-42", "dpo@example.com")
	require.NoError(t, err)
	require.Equal(t, 2, e.KeysDestroyed, "receipts and support")
	require.Equal(t, dataprotect.ReasonErasure, e.Reason)
	require.Empty(t, b.export(b.tenant, "u-42"), "after the erasure, nothing")
	require.Len(t, b.export(b.tenant, "u-7"), 1, "other subjects keep theirs")

	// The events are untouched; the values read erased.
	docs, _, err := eventstore.EventsByDataKeys(ctx, b.db.Pool, b.tenant, []uuid.UUID{e.Keys[0].KeyID, e.Keys[1].KeyID}, 0, 10)
	require.NoError(t, err)
	require.Len(t, docs, 2)
	require.NoError(t, b.kr.RevealAll(ctx, b.tenant, docs))
	require.Contains(t, string(docs[0]), `"data":{"user_id":"u-42","email":{"erased":true},"phone":{"erased":true},"plan":"pro"}`)

	// The erasure is an event of the tenant's stream, naming keys, not the subject.
	var env string
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT envelope::text FROM events WHERE tenant_id = $1 AND type = $2`, b.tenant, privacy.ErasedType).Scan(&env))
	ev, err := cloudevent.ParseStructured([]byte(env))
	require.NoError(t, err)
	require.Equal(t, e.ErasureID.String(), ev.ID)
	require.Equal(t, privacy.Source, ev.Source)
	actor, _ := ev.Extension("actorid")
	action, _ := ev.Extension("action")
	require.Equal(t, "dpo@example.com", actor)
	require.Equal(t, privacy.ActionErase, action)
	require.NotContains(t, env, "u-42")
	require.Contains(t, env, e.Keys[0].KeyID.String())
	sch, err := jsonschema.NewCompiler().Compile("../../../schemas/prost.privacy.erased/v1.json")
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ev.Data))
	require.NoError(t, err)
	require.NoError(t, sch.Validate(doc), "the event matches its platform schema")
	var outbox int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE e.type = $1`, privacy.ErasedType).Scan(&outbox))
	require.Equal(t, 1, outbox, "published like any event, so governance audits it")
	require.Contains(t, b.logs.String(), `"msg":"privacy: data subject erased"`)
	require.NotContains(t, b.logs.String(), "u-42", "logs never name the subject")

	// Erasing again destroys nothing, and is still recorded.
	e2, err := b.svc.Erase(ctx, b.tenant, "u-42", "dpo@example.com")
	require.NoError(t, err)
	require.Zero(t, e2.KeysDestroyed)
	require.Equal(t, []dataprotect.DestroyedKey{}, e2.Keys)

	// Bad ids are refused.
	_, err = b.svc.Erase(ctx, b.tenant, " ", "x")
	require.ErrorIs(t, err, privacy.ErrSubjectID)
	_, err = b.svc.Export(ctx, b.tenant, strings.Repeat("x", privacy.MaxSubjectIDLen+1), &bytes.Buffer{})
	require.ErrorIs(t, err, privacy.ErrSubjectID)
}

// TestRetention: a one-second retention sees the value shredded by the job
// and reported (the report, the log line, the tombstones, the event).
func TestRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	b.record(b.tenant, "e-1", `{"user_id":"u-1","email":"ann@example.com","phone":"555-0100","marketing":{"consent":true,"channel":"sms"}}`)
	lines := b.export(b.tenant, "u-1")
	require.Contains(t, string(lines[0].Event), `"marketing":{"consent":true,"channel":"sms"}`)

	rep, err := b.svc.ApplyRetention(ctx)
	require.NoError(t, err)
	require.Zero(t, rep.Keys, "nothing has reached its retention")

	b.clock.Add(3 * time.Second) // 1s retention after a period of at most 1s
	rep, err = b.svc.ApplyRetention(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Keys)
	require.Len(t, rep.Shredded, 1)
	require.Equal(t, privacy.Shredded{TenantID: b.tenant, ErasureID: rep.Shredded[0].ErasureID, Purpose: "marketing", Retention: "1s", Keys: 1}, rep.Shredded[0])
	require.Contains(t, b.logs.String(), `"msg":"privacy: retention shredded data keys"`)
	require.Contains(t, b.logs.String(), `"purpose":"marketing","retention":"1s","keys":1`)

	lines = b.export(b.tenant, "u-1")
	require.Len(t, lines, 1, "the receipts and support keys live on")
	require.Contains(t, string(lines[0].Event), `"email":"ann@example.com","phone":"555-0100","marketing":{"erased":true}`)
	ts, _, err := b.svc.Tombstones(ctx, b.tenant, dataprotect.TombstoneQuery{Reason: dataprotect.ReasonRetention})
	require.NoError(t, err)
	require.Len(t, ts, 1)
	require.Equal(t, "marketing", ts[0].Purpose)
	var action string
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT envelope->>'action' FROM events WHERE tenant_id = $1 AND type = $2`, b.tenant, privacy.ErasedType).Scan(&action))
	require.Equal(t, privacy.ActionRetention, action)

	// The job handler runs the same and puts itself back for the interval.
	b.clock.Add(500 * 24 * time.Hour)
	err = b.svc.RunRetention(ctx, &jobs.Job{})
	var snooze interface{ Error() string }
	require.True(t, errors.As(err, &snooze) && strings.Contains(err.Error(), "snoozed"), "%v", err)
	lines = b.export(b.tenant, "u-1")
	require.Len(t, lines, 1, "support is kept forever")
	require.Contains(t, string(lines[0].Event), `"email":{"erased":true},"phone":"555-0100","marketing":{"erased":true}`)

	// The job is enqueued once, whatever the number of processes.
	require.NoError(t, privacy.EnsureRetentionJob(ctx, b.db.Pool))
	require.NoError(t, privacy.EnsureRetentionJob(ctx, b.db.Pool))
	var n int
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE kind = $1`, privacy.KindRetention).Scan(&n))
	require.Equal(t, 1, n)
}
