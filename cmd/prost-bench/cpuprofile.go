package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/prost-platform/prost/pkg/lifecycle"
)

// unlabelled names the CPU of goroutines no lifecycle component started:
// the embedded nats-server, the NATS and Postgres clients' own I/O
// goroutines, the garbage collector's workers.
const unlabelled = "(no component: embedded nats-server, client I/O, GC)"

// ComponentCPU is one component's share of PROST's CPU in a profile: the
// samples of the goroutines carrying its pprof label "component" (set by
// pkg/lifecycle; nested components read "gateway/ingest").
type ComponentCPU struct {
	Component string  `json:"component"`
	Seconds   float64 `json:"cpu_s"`
	Share     float64 `json:"share"`
	// MicrosPerEvent is Share of the step's PROST CPU per accepted event.
	MicrosPerEvent float64 `json:"us_per_event"`
}

// CPUProfile is a CPU profile of PROST over a step's measured window, split
// by component.
type CPUProfile struct {
	WindowSeconds float64        `json:"window_s"`
	TotalSeconds  float64        `json:"cpu_s"`
	Components    []ComponentCPU `json:"components"`
}

// profileCPU asks PROST's pprof listener for a CPU profile of step's measured
// window (after warmup, whole seconds of measure) and splits it by
// component. It returns nil when PROST serves no profiles or the profile
// cannot be had: the step's figures do not depend on it.
func (p *prostProc) profileCPU(ctx context.Context, warmup, measure time.Duration, step string) func() *CPUProfile {
	done := make(chan *CPUProfile, 1)
	secs := int(measure / time.Second)
	if p.pprofBase == "" || secs < 1 {
		done <- nil
		return func() *CPUProfile { return <-done }
	}
	go func() {
		if !sleepCtx(ctx, warmup) {
			done <- nil
			return
		}
		prof, err := fetchCPUProfile(ctx, p.pprofBase, secs)
		if err != nil {
			p.log.Warn("prost: CPU profile of the step failed; its split by component is left out", "error", err)
			done <- nil
			return
		}
		// Kept for `go tool pprof -tagfocus component=gateway/http ...`.
		path := filepath.Join(os.TempDir(), "prost-bench-"+step+".pprof")
		if f, err := os.Create(path); err == nil {
			if prof.Write(f) == nil && f.Close() == nil {
				p.log.Info("prost: CPU profile of the step", "step", step, "path", path)
			} else {
				_ = f.Close()
			}
		}
		done <- splitByComponent(prof, float64(secs))
	}()
	return func() *CPUProfile { return <-done }
}

func fetchCPUProfile(ctx context.Context, base string, secs int) (*profile.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("pprof answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return profile.Parse(resp.Body)
}

// splitByComponent sums the profile's CPU time by the label "component",
// largest first.
func splitByComponent(prof *profile.Profile, window float64) *CPUProfile {
	idx := -1
	for i, st := range prof.SampleType {
		if st.Type == "cpu" {
			idx = i
		}
	}
	if idx < 0 {
		return nil
	}
	by := map[string]int64{}
	var total int64
	for _, s := range prof.Sample {
		name := unlabelled
		if v := s.Label[lifecycle.ProfileLabel]; len(v) > 0 && v[0] != "" {
			name = v[0]
		}
		by[name] += s.Value[idx]
		total += s.Value[idx]
	}
	out := &CPUProfile{WindowSeconds: window, TotalSeconds: float64(total) / 1e9}
	for name, ns := range by {
		c := ComponentCPU{Component: name, Seconds: float64(ns) / 1e9}
		if total > 0 {
			c.Share = float64(ns) / float64(total)
		}
		out.Components = append(out.Components, c)
	}
	sort.Slice(out.Components, func(i, j int) bool {
		a, b := out.Components[i], out.Components[j]
		if a.Seconds != b.Seconds {
			return a.Seconds > b.Seconds
		}
		return a.Component < b.Component
	})
	return out
}

// perEvent fills each component's MicrosPerEvent from the step's PROST CPU
// per accepted event.
func (c *CPUProfile) perEvent(prostMicros float64) {
	if c == nil {
		return
	}
	for i := range c.Components {
		c.Components[i].MicrosPerEvent = c.Components[i].Share * prostMicros
	}
}

// micros is the MicrosPerEvent of the components named name or nested under
// it ("gateway" counts "gateway/ingest").
func (c *CPUProfile) micros(name string) (float64, bool) {
	if c == nil {
		return 0, false
	}
	var us float64
	found := false
	for _, x := range c.Components {
		if x.Component == name || strings.HasPrefix(x.Component, name+"/") {
			us += x.MicrosPerEvent
			found = true
		}
	}
	return us, found
}
