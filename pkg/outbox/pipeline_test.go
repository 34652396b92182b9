package outbox_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

// keyedEvents are n events over keys partition keys, in order.
func keyedEvents(tenant uuid.UUID, prefix string, n, keys int) []eventstore.NewEvent {
	evs := testEvents(tenant, prefix, n)
	for i := range evs {
		key := "customer-" + strconv.Itoa(i%keys)
		evs[i].PartitionKey = key
		evs[i].OutboxSubject = subjects.Event(tenant, subjects.Partition(key, 4), evs[i].Type)
	}
	return evs
}

// requireStreamOrder checks the stream holds exactly evs, once each, in
// their order.
func (b *bundle) requireStreamOrder(t *testing.T, tenant uuid.UUID, evs []eventstore.NewEvent) {
	t.Helper()
	msgs := b.messages(t, tenant)
	require.Len(t, msgs, len(evs), "one copy of each event")
	for i, m := range msgs {
		require.Equal(t, subjects.MsgID(tenant, evs[i].Source, evs[i].ID), m.Headers().Get(jetstream.MsgIDHeader), "message %d", i)
	}
}

// TestRelayAtomicBatches: a backlog is published as atomic batches of at
// most BatchSize rows, pipelined with the marks, signed, once each and in
// outbox order; a short round goes one message at a time.
func TestRelayAtomicBatches(t *testing.T) {
	b := setup(t)
	tenant := uuid.New()
	evs := keyedEvents(tenant, "e", 2500, 7)
	ids := b.store(t, false, evs...)

	signer, err := busauth.Parse(busauth.NewKey())
	require.NoError(t, err)
	r := outbox.New(b.db.Pool, b.js, outbox.Config{LockKey: lockKey(), PollInterval: 50 * time.Millisecond, BatchSize: 400, Signer: signer})
	start(t, r)
	b.waitMarked(t, ids)
	require.Eventually(t, func() bool { return r.Published() == 2500 }, 30*time.Second, 5*time.Millisecond)
	require.EqualValues(t, 7, r.Batches(), "2,500 rows in rounds of 400: seven batches")
	require.Zero(t, r.Fallbacks())
	require.Zero(t, r.Singles())

	msgs := b.messages(t, tenant)
	require.Len(t, msgs, len(evs))
	for i, m := range msgs {
		id := subjects.MsgID(tenant, evs[i].Source, evs[i].ID)
		require.Equal(t, id, m.Headers().Get(jetstream.MsgIDHeader), "message %d in outbox order", i)
		require.NoError(t, signer.Verify(m.Headers(), m.Subject(), id, m.Data()), "message %d is signed", i)
	}

	few := b.store(t, true, testEvents(tenant, "few", 3)...)
	b.waitMarked(t, few)
	require.EqualValues(t, 3, r.Singles(), "a round below AtomicMinRows goes one message at a time")
	require.EqualValues(t, 7, r.Batches())
}

// TestRelayPipelineNeverRereads: the marks lag far behind the publishing
// (each takes 150ms), so rounds are read while earlier ones are published
// but not yet marked; no read returns a row an earlier read returned.
// Were one republished, JetStream would refuse its batch as holding a
// duplicate, which Fallbacks counts.
func TestRelayPipelineNeverRereads(t *testing.T) {
	b := setup(t)
	tenant := uuid.New()
	evs := keyedEvents(tenant, "e", 1500, 5)
	ids := b.store(t, false, evs...)

	var marks atomic.Int32
	cfg := outbox.Config{LockKey: lockKey(), PollInterval: 50 * time.Millisecond, BatchSize: 100}
	outbox.SetBeforeMark(&cfg, func([]int64) error {
		marks.Add(1)
		time.Sleep(150 * time.Millisecond)
		return nil
	})
	r := outbox.New(b.db.Pool, b.js, cfg)
	start(t, r)
	b.waitMarked(t, ids)
	require.EqualValues(t, 15, marks.Load(), "one mark per round")
	require.EqualValues(t, 15, r.Batches())
	require.Zero(t, r.Fallbacks(), "no row was published twice")
	b.requireStreamOrder(t, tenant, evs)
}

// TestRelayLateCommitWhilePipelined: a transaction that took its outbox ids
// early commits after the relay has read past them, while it is publishing
// a backlog round after round. Its rows are still published (once), and a
// row of the same key written after it commits is published after it.
func TestRelayLateCommitWhilePipelined(t *testing.T) {
	b := setup(t)
	tenant := uuid.New()

	late, err := b.db.Pool.Begin(t.Context())
	require.NoError(t, err)
	defer func() { _ = late.Rollback(t.Context()) }()
	lateEvs := keyedEvents(tenant, "late", 3, 1) // key customer-0
	_, err = eventstore.AppendTx(t.Context(), late, lateEvs)
	require.NoError(t, err)

	backlog := keyedEvents(tenant, "backlog", 3000, 5)
	first := b.store(t, false, backlog[:1500]...)
	var marks atomic.Int32
	cfg := outbox.Config{LockKey: lockKey(), PollInterval: 20 * time.Millisecond, BatchSize: 100}
	outbox.SetBeforeMark(&cfg, func([]int64) error {
		marks.Add(1)
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	r := outbox.New(b.db.Pool, b.js, cfg)
	start(t, r)
	require.Eventually(t, func() bool { return marks.Load() >= 3 }, 10*time.Second, 5*time.Millisecond, "the relay is working through the backlog")

	// The late rows commit while the relay reads ahead of its marks; then
	// more of the backlog, and a row of their key.
	require.NoError(t, late.Commit(t.Context()))
	second := b.store(t, false, backlog[1500:]...)
	after := keyedEvents(tenant, "after-late", 1, 1)
	third := b.store(t, false, after...)
	all := append(append(append([]int64{}, first...), second...), third...)
	b.waitMarked(t, all)
	var lateIDs []int64
	require.NoError(t, pgx.BeginFunc(t.Context(), b.db.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(t.Context(), `SELECT o.id FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE e.tenant_id = $1 AND e.id LIKE 'late%'`, tenant)
		if err != nil {
			return err
		}
		lateIDs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	}))
	require.Len(t, lateIDs, 3)
	require.Less(t, lateIDs[2], first[0], "the late rows have the lowest ids")
	b.waitMarked(t, lateIDs)
	require.Zero(t, r.Fallbacks(), "no row was published twice")

	// Once each, and per key in commit order: the late rows before the row
	// of their key written after they committed.
	msgs := b.messages(t, tenant)
	require.Len(t, msgs, 3000+3+1)
	pos := map[string]int{}
	for i, m := range msgs {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		_, dup := pos[id]
		require.False(t, dup, "message %s published twice", id)
		pos[id] = i
	}
	afterPos := pos[subjects.MsgID(tenant, "shop", after[0].ID)]
	for _, ev := range lateEvs {
		require.Less(t, pos[subjects.MsgID(tenant, "shop", ev.ID)], afterPos, "a late row comes before the later row of its key")
	}
}

// TestRelayAtomicBatchRefusedForADuplicate is the crash between publish and
// mark with atomic batches: the next leader's batch holds rows JetStream
// stored already, so JetStream refuses it whole; the relay publishes it
// again one message at a time, and JetStream keeps one copy of each.
func TestRelayAtomicBatchRefusedForADuplicate(t *testing.T) {
	b := setup(t)
	tenant := uuid.New()
	key := lockKey()
	evs := keyedEvents(tenant, "e", 100, 3)

	cfg := outbox.Config{LockKey: key, PollInterval: 50 * time.Millisecond}
	crashed := make(chan []int64, 1)
	outbox.SetBeforeMark(&cfg, func(ids []int64) error {
		select {
		case crashed <- ids:
		default:
		}
		return errors.New("simulated crash between publish and mark")
	})
	doomed := outbox.New(b.db.Pool, b.js, cfg)
	stopDoomed := start(t, doomed)
	ids := b.store(t, false, evs...)
	select {
	case lost := <-crashed:
		require.Equal(t, ids, lost)
	case <-time.After(15 * time.Second):
		t.Fatal("the relay never reached the crash point")
	}
	stopDoomed()
	require.GreaterOrEqual(t, doomed.Batches(), int64(1))
	require.Equal(t, 100, b.unmarked(t, ids))
	require.Equal(t, 100, b.streamCount(t, tenant))

	fresh := outbox.New(b.db.Pool, b.js, outbox.Config{LockKey: key, PollInterval: 50 * time.Millisecond})
	start(t, fresh)
	b.waitMarked(t, ids)
	require.EqualValues(t, 1, fresh.Fallbacks(), "the batch with stored rows was refused and published message by message")
	require.Zero(t, fresh.Batches())
	require.EqualValues(t, 100, fresh.Published())
	b.requireStreamOrder(t, tenant, evs)
}

// TestRelayAtomicBatchWithARefusedRow: a row the stream refuses for good
// makes JetStream refuse its whole batch; published again one at a time,
// the row is dead-lettered and the others go on, in order.
func TestRelayAtomicBatchWithARefusedRow(t *testing.T) {
	b := setup(t)
	s, err := b.js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	scfg := s.CachedInfo().Config
	scfg.MaxMsgSize = 64 << 10
	_, err = b.js.UpdateStream(t.Context(), scfg)
	require.NoError(t, err)

	tenant := uuid.New()
	evs := keyedEvents(tenant, "e", 60, 2)
	evs[30].Envelope = fmt.Appendf(nil, `{"specversion":"1.0","id":"e30","source":"shop","type":"order.created","tenantid":%q,"data":%q}`,
		tenant, strings.Repeat("x", 80<<10))
	ids := b.store(t, false, evs...)
	r := outbox.New(b.db.Pool, b.js, outbox.Config{LockKey: lockKey(), PollInterval: 50 * time.Millisecond})
	start(t, r)
	b.waitSettled(t, ids)
	require.EqualValues(t, 1, r.Fallbacks())
	require.EqualValues(t, 1, r.Refused())
	require.EqualValues(t, 59, r.Published())
	b.requireStreamOrder(t, tenant, append(append([]eventstore.NewEvent{}, evs[:30]...), evs[31:]...))
	entries, _, err := dlq.List(t.Context(), b.db.Pool, dlq.Filter{Consumer: dlq.ConsumerRelay})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "e30", entries[0].EventID)
}
