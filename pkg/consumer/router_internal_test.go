package consumer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRouter: every tenant starts on the main worker; a failing tenant moves
// to its retry worker with its messages (from the failed batch and from the
// main worker's queue, in order), the others stay on the main worker ahead
// of what was queued; the tenant's later messages follow it; it goes back to
// the main worker only once its retry worker holds nothing.
func TestRouter(t *testing.T) {
	r := newRouter(4)
	msg := func(tenant, id string) *Message { return &Message{ID: id, Subject: "prost.events." + tenant + ".0.t"} }
	ids := func(w *worker) []string {
		var out []string
		for _, m := range w.queued() {
			out = append(out, m.ID)
		}
		return out
	}
	a1, a2, a3, b1, b2 := msg("a", "a1"), msg("a", "a2"), msg("a", "a3"), msg("b", "b1"), msg("b", "b2")
	r.push(a3)
	r.push(b2)
	require.Equal(t, []string{"a3", "b2"}, ids(r.workers[0]))

	// a1 failed on the main worker in the batch [a1 b1 a2].
	r.quarantine([]*Message{a1, b1, a2})
	k := 1 + TenantLane("a", 3)
	require.Equal(t, []string{"a1", "a2", "a3"}, ids(r.workers[k]))
	require.Equal(t, []string{"b1", "b2"}, ids(r.workers[0]))
	wait, ok := r.workers[0].ready(100, time.Hour, 0)
	require.True(t, ok)
	require.Zero(t, wait, "b1, back from the failed batch, is taken at once")
	r.workers[0].take(1)
	wait, _ = r.workers[0].ready(100, time.Hour, 0)
	require.Positive(t, wait, "b2 lingers as it did before")

	a4 := msg("a", "a4")
	r.push(a4)
	require.Equal(t, []string{"a1", "a2", "a3", "a4"}, ids(r.workers[k]), "a's later messages follow it")
	r.release(k)
	r.push(msg("a", "a5"))
	require.Equal(t, "a5", ids(r.workers[k])[4], "not given back while its retry worker holds messages")

	r.workers[k].drain()
	r.release(k)
	r.push(msg("a", "a6"))
	require.Equal(t, []string{"b2", "a6"}, ids(r.workers[0]), "given back once its retry worker is empty")
	require.Empty(t, ids(r.workers[k]))
}

// TestLingerQuiet: a worker holding fewer than a batch lingers for more until
// the oldest has waited Linger, or, with LingerQuiet, until nothing has
// arrived for LingerQuiet (a burst that stopped is whole); a full batch is
// taken at once.
func TestLingerQuiet(t *testing.T) {
	w := newRouter(1).workers[0]
	// age moves every arrival d into the past, in place of sleeping: a
	// slow machine can neither stretch a wait the test means to be short
	// nor let a quiet period pass that it means to be still running.
	age := func(d time.Duration) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i := range w.arrived {
			w.arrived[i] = w.arrived[i].Add(-d)
		}
	}
	_, ok := w.ready(3, time.Hour, 0)
	require.False(t, ok, "an empty queue waits for a push")
	w.push(&Message{ID: "1"})
	age(30 * time.Minute)
	w.push(&Message{ID: "2"})

	wait, ok := w.ready(3, time.Hour, 0)
	require.True(t, ok)
	require.Greater(t, wait, 29*time.Minute, "without LingerQuiet it lingers until the oldest has waited Linger")
	require.LessOrEqual(t, wait, 30*time.Minute, "Linger counts from the oldest arrival")
	wait, _ = w.ready(3, time.Hour, time.Minute)
	require.Positive(t, wait, "the last arrival is not a minute old")
	require.LessOrEqual(t, wait, time.Minute, "LingerQuiet counts from the last arrival")

	age(2 * time.Minute)
	wait, _ = w.ready(3, time.Hour, time.Minute)
	require.Zero(t, wait, "quiet for longer than LingerQuiet: taken now")
	wait, _ = w.ready(3, time.Hour, 0)
	require.Positive(t, wait, "still lingering without it")

	w.push(&Message{ID: "3"})
	wait, _ = w.ready(3, time.Hour, time.Minute)
	require.Zero(t, wait, "a full batch is taken at once")
	wait, _ = w.ready(4, time.Hour, time.Minute)
	require.Positive(t, wait, "a new arrival restarts the quiet wait")
}
