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
