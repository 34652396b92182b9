package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

// TestMain gives the package one fresh migrated database (shared by all tests,
// which therefore each use their own job kinds) and fails the run when a
// goroutine outlives the tests. A helper process (see TestHelperProcess)
// works on its parent's database instead.
func TestMain(m *testing.M) { prosttest.Main(m, &testDB, prosttest.UnlessEnv(envHelperMode)) }

var (
	kindsMu sync.Mutex
	kinds   = map[*testing.T]string{}
)

// testKind is the job kind of test t: its name plus a random suffix, so
// tests never claim each other's jobs and -count=N runs do not see the jobs
// of earlier runs in the package database. Every call in t returns the same.
func testKind(t *testing.T) string {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	k, ok := kinds[t]
	if !ok {
		var b [4]byte
		_, _ = rand.Read(b[:])
		k = t.Name() + "#" + hex.EncodeToString(b[:])
		kinds[t] = k
	}
	return k
}

// startClient starts a client on the test database with handlers and stops
// it gracefully when the test ends. PollInterval defaults to 50ms here.
func startClient(t *testing.T, cfg Config, handlers map[string]Handler) *Client {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	c, err := NewClient(testDB.Pool, cfg)
	require.NoError(t, err)
	for k, h := range handlers {
		require.NoError(t, c.Register(k, h))
	}
	// Not t.Context(): it ends before cleanups run, which would be a hard stop.
	require.NoError(t, c.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, c.Stop(ctx))
	})
	return c
}

// reader is a client that is never started: Get, List and Retry only.
func reader(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(testDB.Pool, Config{})
	require.NoError(t, err)
	return c
}

func insert(t *testing.T, p InsertParams) Job {
	t.Helper()
	j, inserted, err := Insert(t.Context(), testDB.Pool, p)
	require.NoError(t, err)
	require.True(t, inserted)
	return j
}

// waitState polls job id until it is in state and returns it.
func waitState(t *testing.T, id int64, state State) Job {
	t.Helper()
	c := reader(t)
	var j Job
	require.Eventually(t, func() bool {
		got, err := c.Get(t.Context(), id)
		if err != nil {
			return false
		}
		j = got
		return j.State == state
	}, 30*time.Second, 20*time.Millisecond, "job %d never became %s", id, state)
	return j
}

// recorder collects values from handlers.
type recorder[T any] struct {
	mu   sync.Mutex
	vals []T
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vals = append(r.vals, v)
}

func (r *recorder[T]) get() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.vals...)
}

// syncBuffer is a bytes.Buffer safe for a child process writer and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
