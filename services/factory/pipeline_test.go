package factorysvc_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// The sample Pack0 through every NORMAL gate, auto-deployed locally.
func TestSamplePack0AutoDeployed(t *testing.T) {
	h := start(t, nil)
	ctx := context.Background()
	run, err := h.runs.Start(ctx, h.tenant, factory.Request{Module: "inventory", Pack0: samplePack0(t), AutoDeploy: true})
	require.NoError(t, err)
	run = h.waitFinal(run.ID, 5*time.Minute)
	for _, g := range run.Gates {
		t.Logf("gate %s %s %s: %s", g.Gate, g.Status, g.FinishedAt.Sub(g.StartedAt), g.Summary)
	}
	for _, s := range run.Stages {
		t.Logf("stage %s %s %s", s.Stage, s.Status, s.FinishedAt.Sub(s.StartedAt))
	}
	require.Equal(t, factory.StatusSucceeded, run.Status, run.Error)
	require.NotNil(t, run.Deployment)
	resp, err := http.Get("http://" + run.Deployment.Address + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rep, err := h.store.Verify(ctx, h.tenant, run.ID)
	require.NoError(t, err)
	require.True(t, rep.OK, "%v", rep.Failures)
}
