package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/jobs"
)

// TestJobsListCLI: `prost jobs list` lists jobs through the admin API,
// filtered by state and kind.
func TestJobsListCLI(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	for _, kind := range []string{"cli.test.a", "cli.test.a", "cli.test.b"} {
		_, inserted, err := jobs.Insert(ctx, testDB.Pool, jobs.InsertParams{Kind: kind})
		require.NoError(t, err)
		require.True(t, inserted)
	}
	out, err := s.cli("jobs", "list", "--kind", "cli.test.a", "--json")
	require.NoError(t, err, out)
	var listed []jobs.Job
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 2)
	for _, j := range listed {
		require.Equal(t, "cli.test.a", j.Kind)
		require.Equal(t, jobs.StateAvailable, j.State)
	}
	out, err = s.cli("jobs", "list", "--kind", "cli.test.b", "--state", "completed", "--json")
	require.NoError(t, err, out)
	require.JSONEq(t, `[]`, out)
	out, err = s.cli("jobs", "list", "--kind", "cli.test.b")
	require.NoError(t, err, out)
	require.Contains(t, out, "cli.test.b")
	require.Contains(t, out, "available")
	_, err = s.cli("jobs", "list", "--state", "bogus")
	require.ErrorContains(t, err, "state")

	// A job that failed once and then succeeded: the table shows no error
	// for it (the JSON keeps the history), a job still retrying shows its.
	for kind, state := range map[string]string{"cli.test.healed": "completed", "cli.test.retrying": "retryable"} {
		j, _, err := jobs.Insert(ctx, testDB.Pool, jobs.InsertParams{Kind: kind})
		require.NoError(t, err)
		_, err = testDB.Pool.Exec(ctx, `UPDATE jobs SET state = $2, attempt = 2, last_error = 'receiver answered 503',
			finished_at = CASE WHEN $2 = 'completed' THEN now() END WHERE id = $1`, j.ID, state)
		require.NoError(t, err)
	}
	out, err = s.cli("jobs", "list", "--kind", "cli.test.healed")
	require.NoError(t, err, out)
	require.Contains(t, out, "completed")
	require.NotContains(t, out, "receiver answered 503", "a completed job's earlier error is not its state")
	out, err = s.cli("jobs", "list", "--kind", "cli.test.healed", "--json")
	require.NoError(t, err, out)
	require.Contains(t, out, "receiver answered 503", "the JSON keeps the history")
	out, err = s.cli("jobs", "list", "--kind", "cli.test.retrying")
	require.NoError(t, err, out)
	require.Contains(t, out, "receiver answered 503")
}
