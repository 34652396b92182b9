package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/lifecycle"
	"github.com/prost-platform/prost/pkg/prosttest"
)

func TestMain(m *testing.M) { prosttest.MainNoDatabase(m) }

// recorder notes the order components stop in.
type recorder struct {
	mu      sync.Mutex
	stopped []string
}

func (r *recorder) component(name string, linger time.Duration) lifecycle.Component {
	return lifecycle.Func(func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(linger)
		r.mu.Lock()
		r.stopped = append(r.stopped, name)
		r.mu.Unlock()
		return nil
	})
}

func TestStopsInReverseOrder(t *testing.T) {
	var r recorder
	var g lifecycle.Group
	// The first added lingers longest: it must still stop last.
	g.Add("consumers", r.component("consumers", 30*time.Millisecond))
	g.Add("relay", r.component("relay", 20*time.Millisecond))
	g.Add("http", r.component("http", 0))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, []string{"http", "relay", "consumers"}, r.stopped)
}

func TestAFailureStopsTheOthers(t *testing.T) {
	var r recorder
	var g lifecycle.Group
	g.Add("consumers", r.component("consumers", 0))
	g.Add("broken", lifecycle.Func(func(context.Context) error { return errors.New("boom") }))
	g.Add("http", r.component("http", 0))
	err := g.Run(t.Context())
	require.ErrorContains(t, err, "broken: boom")
	require.Equal(t, []string{"http", "consumers"}, r.stopped)
}

func TestReturningEarlyIsAFailure(t *testing.T) {
	var g lifecycle.Group
	g.Add("quitter", lifecycle.Func(func(context.Context) error { return nil }))
	require.ErrorContains(t, g.Run(t.Context()), "quitter: stopped before it was asked to")
}

func TestShutdownTimeoutNamesTheStuck(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	g := lifecycle.Group{ShutdownTimeout: 50 * time.Millisecond}
	g.Add("stuck", lifecycle.Func(func(ctx context.Context) error {
		<-ctx.Done()
		<-release
		return nil
	}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := g.Run(ctx)
	require.ErrorContains(t, err, "stuck did not stop within 50ms")
}

// TestProfileLabels: every goroutine a component starts carries its name
// as a pprof label, after its parent's when Groups nest, so a CPU profile
// can say which component spent the time.
func TestProfileLabels(t *testing.T) {
	seen := make(chan string, 1)
	parked := make(chan struct{})
	inner := lifecycle.Func(func(ctx context.Context) error {
		label, _ := pprof.Label(ctx, lifecycle.ProfileLabel)
		seen <- label
		// A goroutine the component starts inherits the label.
		go func() { <-parked }()
		<-ctx.Done()
		return nil
	})
	outer := lifecycle.Func(func(ctx context.Context) error {
		var g lifecycle.Group
		g.Add("ingest", inner)
		return g.Run(ctx)
	})
	var g lifecycle.Group
	g.Add("gateway", outer)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	require.Equal(t, "gateway/ingest", <-seen)

	var dump bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&dump, 1))
	// Two goroutines with different stacks carry it: the component's own
	// and the one it started.
	require.Equal(t, 2, strings.Count(dump.String(), `# labels: {"component":"gateway/ingest"}`), dump.String())
	close(parked)
	cancel()
	require.NoError(t, <-done)
}
