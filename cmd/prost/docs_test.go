package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/prosttest"
)

// docBlock is a shell example marked to run: a ```sh fence right after a
// line <!-- doctest --> (or <!-- doctest exit=N --> when the example shows
// a command failing with exit code N).
type docBlock struct {
	file string
	line int
	exit int
	code string
}

var doctestMarker = regexp.MustCompile(`^<!--\s*doctest(?:\s+exit=(\d+))?\s*-->\s*$`)

// docBlocks reads the marked blocks of a Markdown file, in order.
func docBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []docBlock
	sc := bufio.NewScanner(f)
	n, marked, exit := 0, false, 0
	var cur *docBlock
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		case doctestMarker.MatchString(line):
			marked = true
			exit = 0
			if m := doctestMarker.FindStringSubmatch(line); m[1] != "" {
				exit, _ = strconv.Atoi(m[1])
			}
		case marked && (line == "```sh" || line == "```bash"):
			cur = &docBlock{file: path, line: n, exit: exit}
			marked = false
		case marked && strings.TrimSpace(line) != "":
			t.Fatalf("%s:%d: <!-- doctest --> must come right before a ```sh block", path, n)
		}
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "%s: a marked block is not closed", path)
	return out
}

// TestDocsRun runs every marked shell example of README.md and docs/ against
// a live `prost dev`, as a reader would after `make run`: with PROST_URL,
// PROST_ADMIN_TOKEN, PROST_APP_KEY and PROST_APP_SECRET (the demo App)
// exported, bin/prost built, in a scratch directory that sees the
// repository's schemas/, contracts/, nats/ and examples/. curl runs with
// --fail-with-body, so an example whose request the server refuses fails.
// The blocks of one file run in order in one shell, so a block may use what
// an earlier one set.
func TestDocsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts prost dev")
	}
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	files := []string{filepath.Join(repo, "README.md")}
	err = filepath.WalkDir(filepath.Join(repo, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	require.NoError(t, err)
	var blocks []docBlock
	for _, f := range files {
		blocks = append(blocks, docBlocks(t, f)...)
	}
	require.NotEmpty(t, blocks)

	// bin/prost, as make build makes it.
	build := exec.Command("go", "build", "-o", filepath.Join(repo, "bin", "prost"), ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	// prost dev on a database and ports of its own, its Stripe calls
	// answered by stripe-mock (docs/billing.md).
	db := prosttest.NewDatabase(t)
	t.Setenv("PROST_STRIPE_API_URL", prosttest.StartStripeMock(t).URL)
	dataDir := t.TempDir()
	t.Setenv("DATABASE_URL", db.URL)
	t.Setenv("NATS_URL", "")
	t.Setenv("PROST_ADMIN_TOKEN", "")
	t.Setenv("PROST_DATA_DIR", dataDir)
	t.Setenv("PROST_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("PROST_EMBEDDED_NATS_ADDR", "127.0.0.1:0")
	t.Setenv("PROST_NATS_DIR", filepath.Join(repo, "nats"))
	t.Setenv("PROST_SCHEMAS_DIR", filepath.Join(repo, "schemas"))
	t.Setenv("PROST_LOG_LEVEL", "warn")
	ctx, cancel := context.WithCancel(context.Background())
	var welcome syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"dev"}, &welcome, &welcome) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("prost dev did not stop")
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(welcome.String(), "bin/prost audit verify") }, 60*time.Second, 20*time.Millisecond)
	text := welcome.String()
	find := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		require.NotNil(t, m, "%s in:\n%s", re, text)
		return m[1]
	}
	env := append(os.Environ(),
		"PROST_URL="+find(`export PROST_URL=(\S+)`),
		"PROST_ADMIN_TOKEN="+find(`export PROST_ADMIN_TOKEN=(\S+)`),
		"PROST_APP_KEY="+find(`export PROST_APP_KEY=(\S+)`),
		"PROST_APP_SECRET="+find(`export PROST_APP_SECRET=(\S+)`),
		"PROST_ACTOR=docs-test",
	)

	scratch := t.TempDir()
	for _, d := range []string{"bin", "schemas", "contracts", "nats", "examples"} {
		if _, err := os.Stat(filepath.Join(repo, d)); err == nil {
			require.NoError(t, os.Symlink(filepath.Join(repo, d), filepath.Join(scratch, d)))
		}
	}
	byFile := map[string][]docBlock{}
	var order []string
	for _, b := range blocks {
		if _, ok := byFile[b.file]; !ok {
			order = append(order, b.file)
		}
		byFile[b.file] = append(byFile[b.file], b)
	}
	for _, f := range order {
		rel, _ := filepath.Rel(repo, f)
		t.Run(rel, func(t *testing.T) {
			var script strings.Builder
			script.WriteString("set -euo pipefail\ncurl() { command curl --silent --show-error --fail-with-body \"$@\"; }\n")
			if rel != "README.md" {
				// Each page gets an App of its own, so one page's schemas,
				// rules and settings never change what another page sees.
				script.WriteString(`eval "$(bin/prost apps create --name "doc-$RANDOM" --json | sed -n 's/.*"api_key":"\([^"]*\)".*"api_secret":"\([^"]*\)".*/export PROST_APP_KEY=\1 PROST_APP_SECRET=\2/p')"` + "\n")
			}
			for i, b := range byFile[f] {
				fmt.Fprintf(&script, "echo '>>> %s:%d' >&2\n", rel, b.line)
				if b.exit == 0 {
					script.WriteString(b.code)
				} else {
					fmt.Fprintf(&script, "set +e\n(\n%s)\nrc=$?\nset -e\nif [ $rc -ne %d ]; then echo \"%s:%d: exit $rc, the doc says %d\" >&2; exit 1; fi\n",
						b.code, b.exit, rel, b.line, b.exit)
				}
				fmt.Fprintf(&script, "echo '<<< ok %d' >&2\n", i)
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer ccancel()
			cmd := exec.CommandContext(cctx, "bash", "-c", script.String())
			cmd.Dir = scratch
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "a marked example in %s failed as written:\n%s", rel, out)
		})
	}
}
