package outbox_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

// TestRelayDeadLettersRefusedRows reproduces issue 10 cases 1 and 2 at the
// relay: a row whose message is larger than the stream's maximum (JetStream
// refuses it with error 10054) and a row whose subject is over NATS's
// control line (the server would close the connection) used to stay
// pending forever, holding back every row after them. Now each is moved to
// the DLQ with the reason, and the rows after them, of the same partition
// key included, are published in order; the connection stays up.
func TestRelayDeadLettersRefusedRows(t *testing.T) {
	b := setup(t)
	s, err := b.js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 64 << 10
	_, err = b.js.UpdateStream(t.Context(), cfg)
	require.NoError(t, err)

	tenant := uuid.New()
	keyed := func(id string, mutate func(*eventstore.NewEvent)) eventstore.NewEvent {
		ev := testEvent(tenant, id)
		ev.PartitionKey = "order-1"
		if mutate != nil {
			mutate(&ev)
		}
		return ev
	}
	evs := []eventstore.NewEvent{
		keyed("1", nil),
		keyed("too-large", func(ev *eventstore.NewEvent) {
			ev.Envelope = fmt.Appendf(nil, `{"specversion":"1.0","id":"too-large","source":"shop","type":"order.created","tenantid":%q,"data":%q}`, tenant, strings.Repeat("\u2028", 30<<10))
		}),
		keyed("2", nil),
		keyed("long-subject", func(ev *eventstore.NewEvent) {
			ev.OutboxSubject = subjects.Event(tenant, 0, strings.Repeat("t", 5000))
		}),
		keyed("3", nil),
	}
	ids := b.store(t, false, evs...)

	signer, err := busauth.Parse(busauth.NewKey())
	require.NoError(t, err)
	r := outbox.New(b.db.Pool, b.js, outbox.Config{LockKey: lockKey(), PollInterval: 50 * time.Millisecond, Signer: signer})
	start(t, r)
	b.waitSettled(t, ids)

	msgs := b.messages(t, tenant)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Headers().Get(jetstream.MsgIDHeader))
		require.NoError(t, signer.Verify(m.Headers(), m.Subject(), m.Headers().Get(jetstream.MsgIDHeader), m.Data()), "every message is signed")
	}
	want := []string{subjects.MsgID(tenant, "shop", "1"), subjects.MsgID(tenant, "shop", "2"), subjects.MsgID(tenant, "shop", "3")}
	require.Equal(t, want, got, "the rows after a refused row are published, in order")
	require.EqualValues(t, 3, r.Published())
	require.EqualValues(t, 2, r.Refused())
	require.Equal(t, nats.CONNECTED, b.nc.Status(), "nothing was sent that makes NATS close the connection")

	entries, _, err := dlq.List(t.Context(), b.db.Pool, dlq.Filter{Consumer: dlq.ConsumerRelay})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, "too-large", entries[0].EventID)
	require.Contains(t, entries[0].LastError, "message size exceeds maximum")
	require.Equal(t, "long-subject", entries[1].EventID)
	require.Contains(t, entries[1].LastError, "the subject is 5")
	require.Contains(t, entries[1].LastError, "the limit is 2048")
	for _, e := range entries {
		require.Equal(t, dlq.ReasonPermanent, e.Reason)
		require.Equal(t, &tenant, e.TenantID)
	}
	var refused int
	require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM outbox WHERE refused_at IS NOT NULL AND published_at IS NULL`).Scan(&refused))
	require.Equal(t, 2, refused)
	st, err := outbox.PendingStats(t.Context(), b.db.Pool)
	require.NoError(t, err)
	require.Zero(t, st.Pending, "a refused row is no longer pending")

	// A refused event cannot be replayed: the bus would refuse it again.
	_, err = dlq.NewManager(b.db.Pool, b.js).Replay(t.Context(), dlq.Filter{IDs: []int64{entries[0].ID}}, "test", false)
	require.ErrorContains(t, err, "cannot be replayed")
}

// waitSettled waits until every row of ids is published or refused.
func (b *bundle) waitSettled(t *testing.T, ids []int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM outbox WHERE id = ANY($1) AND published_at IS NULL AND refused_at IS NULL`, ids).Scan(&n))
		return n == 0
	}, 15*time.Second, 10*time.Millisecond, "rows were not settled")
}

func TestRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nats.ErrMaxPayload, true},
		{fmt.Errorf("publish: %w", nats.ErrBadSubject), true},
		{nats.ErrBadHeaderMsg, true},
		{jetstream.ErrStreamMessageExceedsMaximum, true},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamMessageExceedsMaximum, Code: 400}, true},
		{nats.ErrNoResponders, false},
		{nats.ErrTimeout, false},
		{jetstream.ErrStreamNotFound, false},
		{errors.New("timed out waiting for JetStream acknowledgements"), false},
		{nil, false},
	} {
		require.Equal(t, tc.want, outbox.Refused(tc.err), "%v", tc.err)
	}
}
