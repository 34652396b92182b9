package factorysvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// A NORMAL run without auto-deploy waits for an approval record; a second
// run of the same module waits in the queue meanwhile (one active run per
// tenant and module); a rejection is a record too. The approved build's PEC
// chain verifies until a stored artifact is altered.
func TestApprovalQueueAndVerify(t *testing.T) {
	codegen, testgen := tinyExecutors("approved", "", "", plainNote, nil, "")
	h := start(t, func(c *factorysvc.Config) {
		c.Executors = factorysvc.Executors{Codegen: codegen, Testgen: testgen}
	})
	ctx := context.Background()
	req := factory.Request{Module: "approved", Pack0: tinyPack0(t, "approved"), DeployTarget: factory.TargetCompose}
	first, err := h.runs.Start(ctx, h.tenant, req)
	require.NoError(t, err)
	waiting := h.wait(first.ID, 3*time.Minute, "the approval stage", func(r *factory.Run) bool {
		return r.Status == factory.StatusAwaitingApproval || r.Status.Final()
	})
	require.Equal(t, factory.StatusAwaitingApproval, waiting.Status, waiting.Error)
	for _, g := range waiting.Gates {
		require.Equal(t, "passed", g.Status, "gate %s: %s", g.Gate, g.Summary)
	}

	quick := req
	quick.State = factory.Pressao // waits for a decision too, without auto-deploy; checks less
	second, err := h.runs.Start(ctx, h.tenant, quick)
	require.NoError(t, err)
	time.Sleep(time.Second)
	queued, err := h.runs.Get(ctx, h.tenant, second.ID)
	require.NoError(t, err)
	require.Equal(t, factory.StatusQueued, queued.Status, "a second run of the module waits for the first")

	_, err = h.runs.Decide(ctx, h.tenant, second.ID, factory.Approval{Decision: factory.DecisionApprove, Actor: "alice"})
	require.ErrorIs(t, err, factory.ErrNotAwaitingApproval)
	_, err = h.runs.Decide(ctx, h.tenant, first.ID, factory.Approval{Decision: factory.DecisionApprove, Actor: "alice", Reason: "reviewed"})
	require.NoError(t, err)
	done := h.waitFinal(first.ID, time.Minute)
	require.Equal(t, factory.StatusSucceeded, done.Status, done.Error)
	require.Equal(t, factory.TargetCompose, done.Deployment.Target)
	approvals, err := h.store.Approvals(ctx, h.tenant, first.ID)
	require.NoError(t, err)
	require.Len(t, approvals, 1)
	require.Equal(t, "alice", approvals[0].Actor)
	_, body, err := h.store.Artifact(ctx, h.tenant, first.ID, "deploy/compose.yaml")
	require.NoError(t, err)
	require.Contains(t, string(body), "dockerfile: deploy/Dockerfile")

	// The second run starts once the first ended; it is rejected.
	h.wait(second.ID, 3*time.Minute, "the approval stage", func(r *factory.Run) bool { return r.Status == factory.StatusAwaitingApproval })
	_, err = h.runs.Decide(ctx, h.tenant, second.ID, factory.Approval{Decision: factory.DecisionReject, Actor: "bob", Reason: "not now"})
	require.NoError(t, err)
	rejected := h.waitFinal(second.ID, time.Minute)
	require.Equal(t, factory.StatusRejected, rejected.Status)
	require.Equal(t, "rejected by bob: not now", rejected.Error)
	require.Nil(t, stage(rejected, factory.StageManifest))
	rep, err := h.store.Verify(ctx, h.tenant, second.ID)
	require.NoError(t, err)
	require.True(t, rep.OK, "%v", rep.Failures)

	// Verification, then an altered artifact.
	rep, err = h.store.Verify(ctx, h.tenant, first.ID)
	require.NoError(t, err)
	require.True(t, rep.OK, "%v", rep.Failures)
	require.NotEmpty(t, rep.Manifest)
	bin, _, err := h.store.Artifact(ctx, h.tenant, first.ID, "bin/approved")
	require.NoError(t, err)
	_, err = h.db.Pool.Exec(ctx, `UPDATE factory_blobs SET content = content || '\x00'::bytea WHERE tenant_id = $1 AND digest = $2`, h.tenant, bin.Digest)
	require.NoError(t, err)
	rep, err = h.store.Verify(ctx, h.tenant, first.ID)
	require.NoError(t, err)
	require.False(t, rep.OK)
	require.NotEmpty(t, rep.Failures)
	for _, f := range rep.Failures {
		require.Contains(t, f, "bin/approved")
	}

	// Cancel: a run waiting for its decision stops.
	third, err := h.runs.Start(ctx, h.tenant, quick)
	require.NoError(t, err)
	h.wait(third.ID, 3*time.Minute, "the approval stage", func(r *factory.Run) bool { return r.Status == factory.StatusAwaitingApproval })
	cancelled, err := h.runs.Cancel(ctx, h.tenant, third.ID, "carol")
	require.NoError(t, err)
	require.Equal(t, factory.StatusCancelled, cancelled.Status)
	_, err = h.runs.Cancel(ctx, h.tenant, third.ID, "carol")
	require.ErrorIs(t, err, factory.ErrRunFinished)
	time.Sleep(500 * time.Millisecond)
	again, err := h.runs.Get(ctx, h.tenant, third.ID)
	require.NoError(t, err)
	require.Equal(t, factory.StatusCancelled, again.Status)
}
