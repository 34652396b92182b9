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
}
