package main

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/prosttest"
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

// TestCompletionAndBusyPorts: `prost completion SHELL` prints a script for
// the shell, and a port already taken is named with the variable that
// moves it, exit 1, instead of a bare "address already in use".
func TestCompletionAndBusyPorts(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "# bash completion V2 for prost", "zsh": "#compdef prost", "fish": "# fish completion for prost"} {
		var out strings.Builder
		require.NoError(t, run(context.Background(), []string{"completion", shell}, &out, &out), shell)
		require.Contains(t, out.String(), marker, shell)
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() })
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		return ln.Addr().String()
	}
	db := prosttest.NewDatabase(t)
	for _, c := range []struct{ name, httpAddr, natsAddr, want string }{
		{"the API's port", busy.Addr().String(), free(), busy.Addr().String() + " is in use; set PROST_HTTP_ADDR to a free address"},
		{"the embedded NATS port", free(), busy.Addr().String(), busy.Addr().String() + " is in use; set PROST_EMBEDDED_NATS_ADDR to a free address"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", db.URL)
			t.Setenv("NATS_URL", "")
			t.Setenv("PROST_DATA_DIR", t.TempDir())
			t.Setenv("PROST_HTTP_ADDR", c.httpAddr)
			t.Setenv("PROST_EMBEDDED_NATS_ADDR", c.natsAddr)
			t.Setenv("PROST_NATS_DIR", "../../nats")
			t.Setenv("PROST_SCHEMAS_DIR", "../../schemas")
			t.Setenv("PROST_LOG_LEVEL", "error")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out strings.Builder
			err := run(ctx, []string{"dev"}, &out, &out)
			var ee exitError
			require.ErrorAs(t, err, &ee, "%v\n%s", err, out.String())
			require.Equal(t, 1, ee.code)
			require.Contains(t, ee.msg, c.want)
		})
	}
}
