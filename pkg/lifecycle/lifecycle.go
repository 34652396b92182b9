// Package lifecycle runs PROST's long-running components with one shape:
// each is a Component whose Run(ctx) works until ctx ends and then returns,
// having finished what it had accepted. A Group runs several in one process
// and stops them in order, so that adding a service is one Add.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Component is a long-running part of PROST. Run works until ctx ends, then
// finishes what it accepted and returns nil; it returns an error when it
// cannot go on (the Group then stops the others).
type Component interface {
	Run(ctx context.Context) error
}

// Func adapts a function to Component.
type Func func(ctx context.Context) error

// Run calls f.
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// DefaultShutdownTimeout bounds a Group's stop when Config sets none.
const DefaultShutdownTimeout = 20 * time.Second

// ProfileLabel is the pprof label a Group puts on each component's
// goroutines, and on every goroutine they start: its value is the
// component's name, after its parent's when Groups nest ("gateway/ingest").
// A CPU profile then splits the process's time by component (see
// docs/benchmarks.md); goroutines no Group started (an embedded server, a
// client library's I/O, the garbage collector's workers) carry none.
const ProfileLabel = "component"

// labelPath is name under the component ctx already belongs to, if any.
func labelPath(ctx context.Context, name string) string {
	if parent, ok := pprof.Label(ctx, ProfileLabel); ok && parent != "" {
		return parent + "/" + name
	}
	return name
}

// Group runs components. The zero value is usable; Add every component
// before Run.
type Group struct {
	// ShutdownTimeout bounds the whole stop, from the end of Run's context
	// to the last component's return. Defaults to DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives the start, the stop and failures. Defaults to
	// discarding.
	Logger *slog.Logger

	members []member
}

type member struct {
	name string
	c    Component
}

// Add adds a component. Components stop in the reverse order of Add: add
// what others depend on first (consumers, then the relay, then the ingest
// committer, then the HTTP server), and the HTTP server stops taking
// requests before the committer closes, which commits before the relay
// drains, which publishes before the consumers stop.
func (g *Group) Add(name string, c Component) {
	g.members = append(g.members, member{name: name, c: c})
}

// Run runs every component until ctx ends or one of them fails, then stops
// them in the reverse order of Add: a component's context ends only once
// every component added after it has returned. It returns the first
// component's failure, or an error naming the components that did not stop
// within ShutdownTimeout, or nil after a clean stop.
func (g *Group) Run(ctx context.Context) error {
	log := g.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := g.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	n := len(g.members)
	cancels := make([]context.CancelFunc, n)
	done := make([]chan struct{}, n)
	failed := make(chan struct{})
	var failOnce sync.Once
	var eg errgroup.Group
	for i, m := range g.members {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i], done[i] = cancel, make(chan struct{})
		eg.Go(func() error {
			defer close(done[i])
			var err error
			pprof.Do(cctx, pprof.Labels(ProfileLabel, labelPath(cctx, m.name)), func(ctx context.Context) {
				err = m.c.Run(ctx)
			})
			if err == nil && cctx.Err() == nil {
				err = errors.New("stopped before it was asked to")
			}
			if err != nil {
				failOnce.Do(func() { close(failed) })
				return fmt.Errorf("%s: %w", m.name, err)
			}
			return nil
		})
	}
	select {
	case <-ctx.Done():
	case <-failed:
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var stuck []string
	for i := n - 1; i >= 0; i-- {
		cancels[i]()
		select {
		case <-done[i]:
		case <-deadline.C:
			for j := i; j >= 0; j-- {
				cancels[j]()
				select {
				case <-done[j]:
				default:
					stuck = append(stuck, g.members[j].name)
				}
			}
			log.Error("components did not stop within the shutdown timeout", "timeout", timeout, "components", strings.Join(stuck, ","))
			return fmt.Errorf("lifecycle: %s did not stop within %s", strings.Join(stuck, ", "), timeout)
		}
	}
	return eg.Wait()
}
