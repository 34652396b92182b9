package factorysvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// healing configures a service whose module's test fails until its healer
// fixes it on call fixAt (never when 0): a quick PRESSAO dry run without
// gates.
func healing(t *testing.T, fixAt int) (*harness, filesExecutor) {
	answer := func(n int) map[string]string {
		return map[string]string{"answer.go": "package main\n\nfunc answer() int { return " + itoa(n) + " }\n"}
	}
	codegen, _ := tinyExecutors("healme", "", "", plainNote, answer(41), "")
	testgen := filesExecutor{name: "test-testgen", calls: counter(), files: func(int) map[string]string {
		return map[string]string{"answer_test.go": "package main\n\nimport \"testing\"\n\nfunc TestAnswer(t *testing.T) {\n\tif got := answer(); got != 42 {\n\t\tt.Fatalf(\"answer() = %d, want 42\", got)\n\t}\n}\n"}
	}}
	healer := filesExecutor{name: "test-healer", calls: counter(), files: func(call int) map[string]string {
		if fixAt > 0 && call >= fixAt {
			return answer(42)
		}
		return nil
	}}
	h := start(t, func(c *factorysvc.Config) {
		c.Executors = factorysvc.Executors{Codegen: codegen, Testgen: testgen, Healer: healer}
		c.Gates = map[factory.State][]factorysvc.Gate{}
	})
	return h, healer
}

func itoa(n int) string {
	if n == 42 {
		return "42"
	}
	return "41"
}

// Tests that fail three times are healed on the fourth attempt.
func TestHealsOnTheFourthAttempt(t *testing.T) {
	h, healer := healing(t, 3)
	ctx := context.Background()
	run, err := h.runs.Start(ctx, h.tenant, factory.Request{Module: "healme", Pack0: tinyPack0(t, "healme"), State: factory.Pressao, DryRun: true})
	require.NoError(t, err)
	run = h.waitFinal(run.ID, 2*time.Minute)
	require.Equal(t, factory.StatusSucceeded, run.Status, run.Error)
	attempts, err := h.store.Attempts(ctx, h.tenant, run.ID)
	require.NoError(t, err)
	require.Len(t, attempts, 4)
	for i, a := range attempts[:3] {
		require.False(t, a.Passed, "attempt %d", i+1)
		require.Contains(t, a.Output, "answer() = 41, want 42")
		require.Equal(t, "test-healer", a.Healer)
	}
	require.True(t, attempts[3].Passed)
	require.EqualValues(t, 3, healer.calls.Load())
	require.Equal(t, "passed", gate(run, factory.GateTests).Status)
	require.Contains(t, gate(run, factory.GateTests).Summary, "attempt 4")
	require.Equal(t, "skipped", stage(run, factory.StageDeploy).Status, "a dry run stops after the gates")
}

// Tests that never pass stop the run after five attempts, with the last
// failure recorded.
func TestStopsAfterFiveAttempts(t *testing.T) {
	h, healer := healing(t, 0)
	ctx := context.Background()
	run, err := h.runs.Start(ctx, h.tenant, factory.Request{Module: "healme", Pack0: tinyPack0(t, "healme"), State: factory.Pressao, DryRun: true})
	require.NoError(t, err)
	run = h.waitFinal(run.ID, 2*time.Minute)
	require.Equal(t, factory.StatusFailed, run.Status)
	require.Contains(t, run.Error, "after 5 attempts")
	require.Contains(t, run.Error, "answer() = 41, want 42")
	attempts, err := h.store.Attempts(ctx, h.tenant, run.ID)
	require.NoError(t, err)
	require.Len(t, attempts, factorysvc.MaxTestAttempts)
	for _, a := range attempts {
		require.False(t, a.Passed)
	}
	require.Contains(t, attempts[4].Output, "answer() = 41, want 42")
	require.Empty(t, attempts[4].Healer, "no healing after the last attempt")
	require.EqualValues(t, 4, healer.calls.Load())
	require.Equal(t, "failed", stage(run, factory.StageTests).Status)
	fs, err := h.store.Findings(ctx, h.tenant, run.ID, factory.GateTests)
	require.NoError(t, err)
	require.NotEmpty(t, fs)
	require.Contains(t, fs[0].Message, "answer() = 41, want 42")
	require.Nil(t, stage(run, factory.StageGates))
}

// The default healer fixes what it can: a missing import (goimports) and
// a missing go.sum (go mod tidy).
func TestDefaultHealerFixesImports(t *testing.T) {
	codegen, testgen := tinyExecutors("tidy", "", "", `
func note(*http.Request) string { return strings.ToUpper("ok") }
`, nil, "")
	h := start(t, func(c *factorysvc.Config) {
		c.Executors = factorysvc.Executors{Codegen: codegen, Testgen: testgen}
		c.Gates = map[factory.State][]factorysvc.Gate{}
	})
	ctx := context.Background()
	run, err := h.runs.Start(ctx, h.tenant, factory.Request{Module: "tidy", Pack0: tinyPack0(t, "tidy"), State: factory.Pressao, DryRun: true})
	require.NoError(t, err)
	run = h.waitFinal(run.ID, 2*time.Minute)
	require.Equal(t, factory.StatusSucceeded, run.Status, run.Error)
	attempts, err := h.store.Attempts(ctx, h.tenant, run.ID)
	require.NoError(t, err)
	require.Len(t, attempts, 2)
	require.Contains(t, attempts[0].Output, "undefined: strings")
	require.Equal(t, "healer", attempts[0].Healer)
	require.Contains(t, attempts[0].Healed, "goimports: main.go")
	require.True(t, attempts[1].Passed)
}
