package factorysvc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// The module's code runs without PROST's settings and secrets: its tests
// see the allow-listed environment and the module database, nothing else.
func TestModuleCodeSeesNoProstSecrets(t *testing.T) {
	t.Setenv("PROST_SECRETS_KEY", "must-not-leak")
	t.Setenv("PROST_ADMIN_TOKEN", "must-not-leak")
	t.Setenv("NATS_URL", "nats://must-not-leak")
	codegen, _ := tinyExecutors("sandboxed", "", "", plainNote, nil, "")
	envTest := `package main

import (
	"os"
	"strings"
	"testing"
)

func TestEnvironment(t *testing.T) {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PROST_") || strings.HasPrefix(kv, "NATS_URL=") || strings.Contains(kv, "must-not-leak") {
			t.Errorf("the module sees %s", kv)
		}
	}
	if os.Getenv("GOTOOLCHAIN") != "local" || os.Getenv("CGO_ENABLED") != "0" {
		t.Errorf("GOTOOLCHAIN=%q CGO_ENABLED=%q", os.Getenv("GOTOOLCHAIN"), os.Getenv("CGO_ENABLED"))
	}
	if os.Getenv("DATABASE_URL") == "" {
		t.Error("no module database")
	}
}
`
	var sawEnv []string
	testgen := filesExecutor{name: "env-testgen", calls: counter(), files: func(int) map[string]string {
		return map[string]string{"env_test.go": envTest}
	}}
	h := start(t, func(c *factorysvc.Config) {
		c.Executors = factorysvc.Executors{Codegen: envRecorder{codegen, &sawEnv}, Testgen: testgen}
		c.Gates = map[factory.State][]factorysvc.Gate{}
	})
	ctx := context.Background()
	run, err := h.runs.Start(ctx, h.tenant, factory.Request{Module: "sandboxed", Pack0: tinyPack0(t, "sandboxed"), State: factory.Pressao, DryRun: true})
	require.NoError(t, err)
	run = h.waitFinal(run.ID, 2*time.Minute)
	require.Equal(t, factory.StatusSucceeded, run.Status, run.Error)
	require.NotEmpty(t, sawEnv)
	for _, kv := range sawEnv {
		require.False(t, strings.HasPrefix(kv, "PROST_") || strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "NATS_URL="),
			"an executor's environment holds %s", kv)
	}
}

// envRecorder keeps the environment its executor was given.
type envRecorder struct {
	factorysvc.Executor
	env *[]string
}

func (e envRecorder) Run(ctx context.Context, job factorysvc.Job) (factorysvc.Output, error) {
	*e.env = job.Env
	return e.Executor.Run(ctx, job)
}
