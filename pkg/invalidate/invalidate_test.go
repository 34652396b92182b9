package invalidate_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/invalidate"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

type heard struct {
	mu   sync.Mutex
	keys []string
}

func (h *heard) add(k string) { h.mu.Lock(); h.keys = append(h.keys, k); h.mu.Unlock() }

func (h *heard) has(k string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range h.keys {
		if x == k {
			return true
		}
	}
	return false
}

func run(t *testing.T, f *invalidate.Feed) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
}

// TestNotifyReachesEveryProcess: a change notified through one Feed reaches
// the subscribers of its topic in another, and only of its topic; a Feed
// that (re)connects tells its subscribers to drop everything.
func TestNotifyReachesEveryProcess(t *testing.T) {
	a, b := invalidate.New(testDB.Pool, nil), invalidate.New(testDB.Pool, nil)
	var apps, other heard
	b.Subscribe("apps", apps.add)
	b.Subscribe("registry", other.add)
	run(t, a)
	run(t, b)
	require.Eventually(t, func() bool { return apps.has("") }, 30*time.Second, 10*time.Millisecond, "a connecting Feed flushes")
	require.Eventually(t, func() bool {
		require.NoError(t, a.Notify(t.Context(), "apps", "prost_pk_1"))
		return apps.has("prost_pk_1")
	}, 30*time.Second, 50*time.Millisecond)
	require.False(t, other.has("prost_pk_1"), "another topic hears nothing")

	// Once Listening is closed, a change needs no retry to be heard.
	select {
	case <-b.Listening():
	default:
		t.Fatal("a Feed that heard a notice is listening")
	}
	require.NoError(t, a.Notify(t.Context(), "registry", "k-after-listening"))
	require.Eventually(t, func() bool { return other.has("k-after-listening") }, 30*time.Second, 10*time.Millisecond)
	select {
	case <-invalidate.New(testDB.Pool, nil).Listening():
		t.Fatal("a Feed that never ran is not listening")
	default:
	}

	var nilFeed *invalidate.Feed
	select {
	case <-nilFeed.Listening():
	default:
		t.Fatal("a nil Feed has nothing to wait for")
	}
	nilFeed.Subscribe("apps", apps.add)
	require.NoError(t, nilFeed.Notify(t.Context(), "apps", "x"), "a nil Feed does nothing")
}
