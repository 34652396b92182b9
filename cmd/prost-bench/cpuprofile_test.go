package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/require"
)

// TestSplitByComponent: samples are summed by their "component" label,
// unlabelled ones under one row, largest first, and per event is the share
// of the step's PROST CPU per event; "gateway" counts its nested components.
func TestSplitByComponent(t *testing.T) {
	t.Parallel()
	cpu := func(ms int64, component string) *profile.Sample {
		s := &profile.Sample{Value: []int64{1, ms * 1e6}}
		if component != "" {
			s.Label = map[string][]string{"component": {component}}
		}
		return s
	}
	prof := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			cpu(300, "gateway"), cpu(100, "gateway/ingest"), cpu(400, "governance"),
			cpu(150, ""), cpu(50, ""),
		},
	}
	c := splitByComponent(prof, 10)
	require.NotNil(t, c)
	require.InDelta(t, 1.0, c.TotalSeconds, 1e-9)
	var names []string
	for _, x := range c.Components {
		names = append(names, x.Component)
	}
	require.Equal(t, []string{"governance", "gateway", unlabelled, "gateway/ingest"}, names)
	require.InDelta(t, 0.2, c.Components[2].Share, 1e-9)

	c.perEvent(500)
	gw, ok := c.micros("gateway")
	require.True(t, ok)
	require.InDelta(t, 200, gw, 1e-9) // (300+100)/1000 of 500 us
	_, ok = c.micros("relay")
	require.False(t, ok)
	var none *CPUProfile
	_, ok = none.micros("gateway")
	require.False(t, ok)
}

// TestSplitByComponentReadsARealProfile: a CPU profile the Go runtime wrote
// while a labelled goroutine burned CPU parses, and the time lands under
// its label.
func TestSplitByComponentReadsARealProfile(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, pprof.StartCPUProfile(&buf))
	pprof.Do(context.Background(), pprof.Labels("component", "relay"), func(context.Context) {
		deadline := time.Now().Add(300 * time.Millisecond)
		x := 0
		for time.Now().Before(deadline) {
			x++
		}
		_ = x
	})
	pprof.StopCPUProfile()
	prof, err := profile.Parse(&buf)
	require.NoError(t, err)
	c := splitByComponent(prof, 1)
	require.NotNil(t, c)
	require.NotEmpty(t, c.Components)
	require.Equal(t, "relay", c.Components[0].Component)
	require.Greater(t, c.Components[0].Share, 0.5)
}

// TestWriteComponents: the two steps' splits share one row per component,
// in the single-event step's order, with a blank cell where a step had none.
func TestWriteComponents(t *testing.T) {
	t.Parallel()
	single := &CPUProfile{Components: []ComponentCPU{{Component: "gateway/http", Share: 0.5, MicrosPerEvent: 100}, {Component: "relay", Share: 0.5, MicrosPerEvent: 100}}}
	e2e := &CPUProfile{Components: []ComponentCPU{{Component: "relay", Share: 0.25, MicrosPerEvent: 200}, {Component: "governance", Share: 0.75, MicrosPerEvent: 600}}}
	var b strings.Builder
	writeComponents(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, single, e2e)
	out := b.String()
	require.Contains(t, out, "| gateway/http | 50% | 100 |  |  |\n")
	require.Contains(t, out, "| relay | 50% | 100 | 25% | 200 |\n")
	require.Contains(t, out, "| governance |  |  | 75% | 600 |\n")
	require.Less(t, strings.Index(out, "| relay"), strings.Index(out, "| governance"))
}
