package audit_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/audit"
)

func TestHandleEvents(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	ev := func(id, ext string) *consumer.Message {
		return &consumer.Message{ID: "m-" + id, Data: []byte(`{"specversion":"1.0","id":"` + id + `","source":"shop","type":"order.created","tenantid":"` + tenant.String() + `"` + ext + `}`)}
	}
	msgs := []*consumer.Message{
		ev("1", `,"actorid":"user-1","action":"create"`),
		ev("2", `,"actorid":42,"action":true`),
		ev("3", ``),
		ev("4", `,"actorid":null,"action":" spaced "`),
	}
	err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		return audit.HandleEvents(t.Context(), tx, msgs)
	})
	require.NoError(t, err)

	entries := chain(t, tenant)
	requireValidChain(t, entries)
	type rec struct{ id, source, typ, actor, action string }
	var got []rec
	for _, e := range entries {
		got = append(got, rec{e.EventID, e.EventSource, e.EventType, e.ActorID, e.Action})
	}
	require.Equal(t, []rec{
		{"1", "shop", "order.created", "user-1", "create"},
		{"2", "shop", "order.created", "42", "true"},
		{"3", "shop", "order.created", "", ""},
		{"4", "shop", "order.created", "", " spaced "},
	}, got)
}

func TestHandleEventsRejectsWhatIsNotAnEvent(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	good := &consumer.Message{ID: "good", Data: []byte(`{"id":"g","source":"s","type":"t","tenantid":"` + tenant.String() + `"}`)}
	tests := []struct {
		name string
		data string
	}{
		{"not json", `not json`},
		{"no tenantid", `{"id":"1","source":"s","type":"t"}`},
		{"bad tenantid", `{"id":"1","source":"s","type":"t","tenantid":"not-a-uuid"}`},
		{"tenantid not a string", `{"id":"1","source":"s","type":"t","tenantid":7}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
				return audit.HandleEvents(t.Context(), tx, []*consumer.Message{good, {ID: "bad", Data: []byte(tt.data)}})
			})
			require.Error(t, err)
			require.True(t, consumer.IsPermanent(err), "a message that is not an event cannot be fixed by retrying: %v", err)
		})
	}
	require.Empty(t, chain(t, tenant), "nothing of a failed batch is recorded")
}

// TestHandleEventsStoreRefusalIsPermanent: an event whose audit entry the
// database refuses (a NUL byte in actorid, which only an event written
// behind the gateway can carry) fails with an error the consumer runtime
// dead-letters at once (issue 12 case 2: it was retried for 53 minutes).
func TestHandleEventsStoreRefusalIsPermanent(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	msg := &consumer.Message{ID: "nul", Data: []byte(`{"id":"1","source":"s","type":"t","tenantid":"` + tenant.String() + `","actorid":"a\u0000b"}`)}
	err := pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		return audit.HandleEvents(t.Context(), tx, []*consumer.Message{msg})
	})
	require.ErrorContains(t, err, "22021")
	require.True(t, consumer.IsPermanent(err), "%v", err)
	require.Empty(t, chain(t, tenant))
}

// TestHandleEventsSkipsWhatIsRecorded: the audit consumer writes no
// idempotency record (consumer.Config.Idempotent); an event whose entry the
// chain holds is left out and marked Seen, in a batch of its own or mixed
// with new events, while a replay entry of the same event (another type,
// actor and action) does not count as its entry.
func TestHandleEventsSkipsWhatIsRecorded(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	ev := func(id string) *consumer.Message {
		return &consumer.Message{ID: "m-" + id, Data: []byte(`{"specversion":"1.0","id":"` + id + `","source":"shop","type":"order.created","tenantid":"` + tenant.String() + `","actorid":"u","action":"create"}`)}
	}
	handle := func(msgs ...*consumer.Message) {
		require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
			return audit.HandleEvents(t.Context(), tx, msgs)
		}))
	}
	// A replay entry of event 2 is in the chain before the event itself.
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		_, err := audit.AppendTx(t.Context(), tx, []audit.Record{{TenantID: tenant, EventID: "2", EventSource: "shop",
			EventType: "prost.dlq.replayed", ActorID: "admin", Action: "replay:governance-audit"}})
		return err
	}))
	handle(ev("1"), ev("2"))
	require.Len(t, chain(t, tenant), 3)

	// Both again, with a new one between them.
	var entries []audit.Entry
	var dup []bool
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		var err error
		entries, dup, err = audit.AppendNewTx(t.Context(), tx, []audit.Record{
			{TenantID: tenant, EventID: "1", EventSource: "shop", EventType: "order.created", ActorID: "u", Action: "create"},
			{TenantID: tenant, EventID: "3", EventSource: "shop", EventType: "order.created", ActorID: "u", Action: "create"},
			{TenantID: tenant, EventID: "2", EventSource: "shop", EventType: "order.created", ActorID: "u", Action: "create"},
		})
		return err
	}))
	require.Equal(t, []bool{true, false, true}, dup)
	require.Len(t, entries, 1)
	require.Equal(t, "3", entries[0].EventID)
	got := chain(t, tenant)
	requireValidChain(t, got)
	var ids []string
	for _, e := range got {
		ids = append(ids, e.EventID+"/"+e.EventType)
	}
	require.Equal(t, []string{"2/prost.dlq.replayed", "1/order.created", "2/order.created", "3/order.created"}, ids)

	// A batch of nothing but redeliveries changes nothing, head included.
	handle(ev("3"), ev("1"))
	require.Equal(t, got, chain(t, tenant))
	requireVerifies(t, tenant, 4)
}
