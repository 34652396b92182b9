package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/eventstore"
)

// newCommitter runs a Committer on a pool of its own (see committerPool)
// and stops it when the test ends.
func newCommitter(t *testing.T, cfg eventstore.CommitterConfig) (*eventstore.Committer, string) {
	t.Helper()
	pool, app := committerPool(t)
	c := eventstore.NewCommitter(pool, cfg)
	stop := runCommitter(c)
	t.Cleanup(func() {
		select {
		case err := <-stop():
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("the committer did not stop")
		}
	})
	return c, app
}

// runCommitter runs c; the returned stop ends its context and gives the
// channel Run's result arrives on.
func runCommitter(c *eventstore.Committer) (stop func() <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() <-chan error { cancel(); return done }
}

type appendResult struct {
	out []eventstore.Outcome
	err error
}

// appendAsync runs Append in the background.
func appendAsync(ctx context.Context, c *eventstore.Committer, evs ...eventstore.NewEvent) <-chan appendResult {
	ch := make(chan appendResult, 1)
	go func() {
		out, err := c.Append(ctx, evs)
		ch <- appendResult{out, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan appendResult) appendResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("Append did not return")
		return appendResult{}
	}
}

// TestCommitterConcurrentAppends: fifty callers at once; every event is stored
// exactly once and each caller gets its own outcomes, in its order.
func TestCommitterConcurrentAppends(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var commits atomic.Int64
	c, _ := newCommitter(t, eventstore.CommitterConfig{Writers: 2, OnCommit: func() { commits.Add(1) }})
	tenant := uuid.New()

	const callers = 50
	results := make([]appendResult, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			evs := []eventstore.NewEvent{
				newEvent(tenant, "caller-"+strconv.Itoa(i), "a", "t"),
				newEvent(tenant, "shared", "common", "t"), // every caller sends this one
				newEvent(tenant, "caller-"+strconv.Itoa(i), "b", "t"),
				newEvent(tenant, "caller-"+strconv.Itoa(i), "a", "t"), // repeats its own first event
			}
			results[i].out, results[i].err = c.Append(ctx, evs)
		})
	}
	close(start)
	wg.Wait()

	commonStored := 0
	for i, r := range results {
		require.NoError(t, r.err, "caller %d", i)
		require.Len(t, r.out, 4)
		for j, want := range []string{"a", "", "b"} {
			if want == "" {
				continue
			}
			o := r.out[j]
			require.False(t, o.Duplicate)
			var source, id string
			require.NoError(t, testDB.Pool.QueryRow(ctx, `SELECT source, id FROM events WHERE seq = $1`, o.Seq).Scan(&source, &id))
			require.Equal(t, "caller-"+strconv.Itoa(i), source, "caller %d got another caller's outcome", i)
			require.Equal(t, want, id)
		}
		require.Greater(t, r.out[2].Seq, r.out[0].Seq, "one caller's events are stored in its order")
		require.True(t, r.out[3].Duplicate, "a repeat within one append is a duplicate")
		require.Zero(t, r.out[3].Seq)
		if !r.out[1].Duplicate {
			commonStored++
			require.Positive(t, r.out[1].Seq)
		}
	}
	require.Equal(t, 1, commonStored, "exactly one caller stores the shared event")
	require.Equal(t, 2*callers+1, tenantEvents(t, tenant))
	require.Equal(t, 2*callers+1, tenantOutbox(t, tenant))
	require.Positive(t, commits.Load())
	require.LessOrEqual(t, commits.Load(), int64(callers), "OnCommit runs once per committed transaction")
}

// TestCommitterIsolatesAFailingAppend groups appends deterministically: the
// only writer is held on an event whose identity another transaction holds
// while the other appends queue up, so they are all taken as one group. One of
// them cannot be stored; the others must be.
func TestCommitterIsolatesAFailingAppend(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	c, app := newCommitter(t, eventstore.CommitterConfig{Writers: 1, Logger: logger})
	tenant := uuid.New()

	held := newEvent(tenant, "s", "held", "t")
	release := holdIdentity(t, held)
	first := appendAsync(ctx, c, held)
	waitLockWaiters(t, app, 1)

	const good = 5
	var pending []<-chan appendResult
	for i := range good {
		pending = append(pending, appendAsync(ctx, c, newEvent(tenant, "s", "good-"+strconv.Itoa(i), "t"), newEvent(tenant, "s", "good-"+strconv.Itoa(i)+"b", "t")))
	}
	bad := newEvent(tenant, "s", "bad", "t")
	bad.Envelope = []byte("not json")
	badCh := appendAsync(ctx, c, bad)
	require.Eventually(t, func() bool { return c.QueueLen() == good+1 }, 10*time.Second, 5*time.Millisecond)

	release()
	r := receive(t, first)
	require.NoError(t, r.err)
	require.False(t, r.out[0].Duplicate, "the held event was rolled back, so it is new")

	r = receive(t, badCh)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, r.err, &pgErr)
	require.Equal(t, "22P02", pgErr.Code)
	require.Nil(t, r.out)
	for i, ch := range pending {
		r := receive(t, ch)
		require.NoError(t, r.err, "append %d failed because another one in its group did", i)
		require.Len(t, r.out, 2)
		require.False(t, r.out[0].Duplicate)
		require.False(t, r.out[1].Duplicate)
	}
	require.Equal(t, 1+2*good, tenantEvents(t, tenant))
	require.Zero(t, countRows(t, `SELECT count(*) FROM events WHERE tenant_id = $1 AND id = 'bad'`, tenant))
	logMu.Lock()
	defer logMu.Unlock()
	require.Contains(t, logs.String(), "shared ingest transaction failed", "the appends must have shared a transaction first")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestCommitterOverloaded fills the queue deterministically: the only writer
// is held in the database, one append waits in the queue of one, and the
// next is refused at once.
func TestCommitterOverloaded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, app := newCommitter(t, eventstore.CommitterConfig{Writers: 1, QueueSize: 1})
	tenant := uuid.New()

	held := newEvent(tenant, "s", "held", "t")
	release := holdIdentity(t, held)
	first := appendAsync(ctx, c, held)
	waitLockWaiters(t, app, 1) // the writer took it off the queue and waits
	require.Zero(t, c.QueueLen())

	queued := appendAsync(ctx, c, newEvent(tenant, "s", "queued", "t"))
	require.Eventually(t, func() bool { return c.QueueLen() == 1 }, 10*time.Second, 5*time.Millisecond)

	began := time.Now()
	out, err := c.Append(ctx, []eventstore.NewEvent{newEvent(tenant, "s", "refused", "t")})
	require.ErrorIs(t, err, eventstore.ErrOverloaded)
	require.Nil(t, out)
	require.Less(t, time.Since(began), time.Second, "an overloaded committer answers at once")

	release()
	require.NoError(t, receive(t, first).err)
	require.NoError(t, receive(t, queued).err)
	require.Zero(t, countRows(t, `SELECT count(*) FROM events WHERE tenant_id = $1 AND id = 'refused'`, tenant))
	require.Equal(t, 2, tenantEvents(t, tenant))

	// With room again, appends are accepted.
	_, err = c.Append(ctx, []eventstore.NewEvent{newEvent(tenant, "s", "later", "t")})
	require.NoError(t, err)
}

// TestCommitterStop: when Run's context ends the committer refuses new
// appends at once, finishes the queued ones, and Run waits for them.
func TestCommitterStop(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, app := committerPool(t)
	c := eventstore.NewCommitter(pool, eventstore.CommitterConfig{Writers: 1})
	stop := runCommitter(c)
	tenant := uuid.New()

	held := newEvent(tenant, "s", "held", "t")
	release := holdIdentity(t, held)
	first := appendAsync(ctx, c, held)
	waitLockWaiters(t, app, 1)
	queued := appendAsync(ctx, c, newEvent(tenant, "s", "queued", "t"))
	require.Eventually(t, func() bool { return c.QueueLen() == 1 }, 10*time.Second, 5*time.Millisecond)

	// The writer is stuck, so Run does not return yet, but it has closed.
	done := stop()
	probe := uuid.New() // probes accepted before the close commit later, for another tenant
	require.Eventually(t, func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		_, err := c.Append(pctx, []eventstore.NewEvent{newEvent(probe, "s", uuid.NewString(), "t")})
		return errors.Is(err, eventstore.ErrClosed)
	}, 10*time.Second, 5*time.Millisecond)
	select {
	case <-done:
		t.Fatal("Run returned while a writer still held a queued append")
	case <-time.After(50 * time.Millisecond):
	}

	release()
	select {
	case err := <-done:
		require.NoError(t, err, "Run waits for the writers")
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the writer finished")
	}
	require.NoError(t, receive(t, first).err)
	require.NoError(t, receive(t, queued).err, "appends queued before the stop are still committed")
	require.Equal(t, 2, tenantEvents(t, tenant))

	_, err := c.Append(ctx, []eventstore.NewEvent{newEvent(tenant, "s", "after-close-2", "t")})
	require.ErrorIs(t, err, eventstore.ErrClosed)
}

// TestCommitterCallerGivesUp: an Append whose context ends while it waits
// returns the context's error at once.
func TestCommitterCallerGivesUp(t *testing.T) {
	t.Parallel()
	c, app := newCommitter(t, eventstore.CommitterConfig{Writers: 1})
	tenant := uuid.New()

	held := newEvent(tenant, "s", "held", "t")
	release := holdIdentity(t, held)
	first := appendAsync(t.Context(), c, held)
	waitLockWaiters(t, app, 1)

	ctx, cancel := context.WithCancel(t.Context())
	waiting := appendAsync(ctx, c, newEvent(tenant, "s", "abandoned", "t"))
	require.Eventually(t, func() bool { return c.QueueLen() == 1 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	r := receive(t, waiting)
	require.ErrorIs(t, r.err, context.Canceled)

	release()
	require.NoError(t, receive(t, first).err)
	// The abandoned append was still queued when its caller left: the writer
	// drops it rather than storing what nobody waits for.
	_, err := c.Append(t.Context(), []eventstore.NewEvent{newEvent(tenant, "s", "after", "t")})
	require.NoError(t, err)
	require.Zero(t, countRows(t, `SELECT count(*) FROM events WHERE tenant_id = $1 AND id = 'abandoned'`, tenant))
}

// TestCommitterNotifies: every commit calls OnCommit and, unless NoNotify,
// sends NOTIFY prost_outbox when it stored anything (a commit of repeats
// only has nothing new for the relay). Not parallel, so that the only notifications on
// the channel are this test's.
func TestCommitterNotifies(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDB.URL)
	require.NoError(t, err)
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "LISTEN prost_outbox")
	require.NoError(t, err)

	for _, noNotify := range []bool{true, false} {
		t.Run(fmt.Sprintf("NoNotify=%v", noNotify), func(t *testing.T) {
			var commits atomic.Int64
			c, _ := newCommitter(t, eventstore.CommitterConfig{NoNotify: noNotify, OnCommit: func() { commits.Add(1) }})
			tenant := uuid.New()
			for i := range 3 {
				_, err := c.Append(ctx, []eventstore.NewEvent{newEvent(tenant, "s", strconv.Itoa(i), "t")})
				require.NoError(t, err)
				require.EqualValues(t, i+1, commits.Load(), "OnCommit has run when Append returns")
			}
			// A duplicate-only append commits too.
			out, err := c.Append(ctx, []eventstore.NewEvent{newEvent(tenant, "s", "0", "t")})
			require.NoError(t, err)
			require.True(t, out[0].Duplicate)
			require.EqualValues(t, 4, commits.Load())
		})
	}
	// Only the second committer notified: exactly its three commits that
	// stored events arrive (one notification each; Postgres does not fold
	// them across transactions), and not the one of a repeat.
	for i := range 3 {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := conn.WaitForNotification(wctx)
		wcancel()
		require.NoError(t, err, "notification %d", i)
		require.Equal(t, "prost_outbox", n.Channel)
	}
	// Nothing else is pending: a notification of the NoNotify committer would
	// have come before the ones just received (it committed first), and one
	// of the repeat, which committed last, within this wait.
	wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer wcancel()
	_, err = conn.WaitForNotification(wctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
