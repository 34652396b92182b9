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

// A module with a planted secret (an AWS key in deploy.env) and a
// vulnerable dependency it calls (golang.org/x/text v0.3.5,
// language.ParseAcceptLanguage): NORMAL fails closed at the secrets, vulns
// and deps gates, each finding naming its file and rule; PRESSAO does not
// check dependencies and fails at the secret only.
func TestPlantedSecretAndVulnerableDependency(t *testing.T) {
	codegen, testgen := tinyExecutors("leaky", "\nrequire golang.org/x/text v0.3.5\n", "\t\"strings\"\n\n\t\"golang.org/x/text/language\"", `
// note says how many languages the caller accepts.
func note(r *http.Request) string {
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil {
		return "no languages"
	}
	return strings.Repeat("*", len(tags))
}
`, map[string]string{"deploy.env": "AWS_ACCESS_KEY_ID=AKIAZ7VQXK3M2WJ4PL6R\nREGION=sa-east-1\n"}, "")
	h := start(t, func(c *factorysvc.Config) {
		c.Executors = factorysvc.Executors{Codegen: codegen, Testgen: testgen}
	})
	ctx := context.Background()
	findings := func(id interface{ String() string }, gate string) []factory.Finding {
		run, err := h.runs.Get(ctx, h.tenant, mustUUID(id.String()))
		require.NoError(t, err)
		fs, err := h.store.Findings(ctx, h.tenant, run.ID, gate)
		require.NoError(t, err)
		return fs
	}
	hasFinding := func(fs []factory.Finding, file, rulePrefix string) bool {
		for _, f := range fs {
			if f.Blocking && f.File == file && strings.HasPrefix(f.Rule, rulePrefix) {
				return true
			}
		}
		return false
	}

	normal, err := h.runs.Start(ctx, h.tenant, factory.Request{Module: "leaky", Pack0: tinyPack0(t, "leaky"), AutoDeploy: true})
	require.NoError(t, err)
	run := h.waitFinal(normal.ID, 3*time.Minute)
	require.Equal(t, factory.StatusFailed, run.Status)
	require.Contains(t, run.Error, "fail closed")
	require.Equal(t, "failed", stage(run, factory.StageGates).Status)
	require.Nil(t, stage(run, factory.StageApproval), "a run whose gates failed goes no further")
	for _, g := range []string{factory.GateSecrets, factory.GateVulns, factory.GateDeps} {
		require.Equal(t, "failed", gate(run, g).Status, g)
	}
	secrets := findings(run.ID, factory.GateSecrets)
	require.True(t, hasFinding(secrets, "deploy.env", "aws-access-token"), "%v", secrets)
	vulns := findings(run.ID, factory.GateVulns)
	require.True(t, hasFinding(vulns, "main.go", "GO-"), "%v", vulns)
	deps := findings(run.ID, factory.GateDeps)
	require.True(t, hasFinding(deps, "go.mod", "GO-"), "%v", deps)
	for _, f := range deps {
		require.Contains(t, f.Message, "golang.org/x/text@v0.3.5")
	}

	pressao, err := h.runs.Start(ctx, h.tenant, factory.Request{Module: "leaky", Pack0: tinyPack0(t, "leaky"), State: factory.Pressao, AutoDeploy: true})
	require.NoError(t, err)
	run = h.waitFinal(pressao.ID, 3*time.Minute)
	require.Equal(t, factory.StatusFailed, run.Status)
	require.True(t, run.MVP)
	require.Equal(t, "failed", gate(run, factory.GateSecrets).Status)
	require.True(t, hasFinding(findings(run.ID, factory.GateSecrets), "deploy.env", "aws-access-token"))
	require.Nil(t, gate(run, factory.GateVulns), "PRESSAO does not check vulnerabilities")
	require.Nil(t, gate(run, factory.GateDeps), "PRESSAO does not check dependencies")
	require.Equal(t, "passed", gate(run, factory.GateContracts).Status)
	require.Equal(t, "passed", gate(run, factory.GateTests).Status)
	attempts, err := h.store.Attempts(ctx, h.tenant, run.ID)
	require.NoError(t, err)
	require.Len(t, attempts, 1, "the planted module compiles and passes its tests at once")
	require.Contains(t, run.Error, "secrets")
	require.NotContains(t, run.Error, "deps")
}
