package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// TestEveryCommandHasHelp walks the command tree: `prost <command> -h` (and
// --help) prints the command's help and exits 0 without doing anything: no
// data directory written, no database created, nothing listened on.
func TestEveryCommandHasHelp(t *testing.T) {
	dataDir := t.TempDir()
	t.Setenv("PROST_DATA_DIR", dataDir)
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/prost_help_must_not_exist?sslmode=disable")
	t.Setenv("PROST_HTTP_ADDR", "127.0.0.1:1")
	t.Setenv("PROST_URL", "http://127.0.0.1:1")
	t.Setenv("PROST_ADMIN_TOKEN", "x")

	var paths [][]string
	var walk func(cmd *cobra.Command, path []string)
	walk = func(cmd *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range cmd.Commands() {
			if sub.Name() == "help" {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	c := &cli{ctx: context.Background(), stdout: os.Stdout, stderr: os.Stderr, env: envFromOS()}
	walk(c.rootCmd(), nil)
	require.Greater(t, len(paths), 25, "the whole tree was walked")
	for _, p := range paths {
		for _, flag := range []string{"-h", "--help"} {
			var out, errOut strings.Builder
			err := run(context.Background(), append(append([]string(nil), p...), flag), &out, &errOut)
			require.NoError(t, err, "prost %s %s", strings.Join(p, " "), flag)
			require.Contains(t, out.String(), "Usage:", "prost %s %s prints help", strings.Join(p, " "), flag)
		}
	}
	entries, err := os.ReadDir(dataDir)
	require.NoError(t, err)
	require.Empty(t, entries, "help wrote nothing")
	var exists bool
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'prost_help_must_not_exist')`).Scan(&exists))
	require.False(t, exists, "help created no database")
}

func TestVersionAndUsageErrors(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"--version"}, &out, &out))
	require.Equal(t, "prost "+version+" (commit "+commit+")\n", out.String())
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"version"}, &out, &out))
	require.Contains(t, out.String(), "commit "+commit)

	for _, args := range [][]string{{}, {"nope"}, {"apps"}, {"apps", "create"}, {"apps", "disable"}, {"dlq", "show"},
		{"serve"}, {"migrate", "down", "1", "2"}, {"apps", "list", "--nope"}} {
		err := run(context.Background(), args, &out, &out)
		var ee exitError
		require.ErrorAs(t, err, &ee, args)
		require.Equal(t, 2, ee.code, "%v is a usage error", args)
	}

	t.Setenv("PROST_URL", "127.0.0.1:8080")
	t.Setenv("PROST_ADMIN_TOKEN", "x")
	err := run(context.Background(), []string{"apps", "list"}, &out, &out)
	require.ErrorContains(t, err, "must be an http:// or https:// URL")
}
