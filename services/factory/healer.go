package factorysvc

import (
	"bytes"
	"context"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/imports"
)

// Healer is the default healer: deterministic fixes that need no model. It
// formats every Go file (gofmt), adds missing and removes unused imports
// (goimports), and tidies go.mod and go.sum (go mod tidy). A failure it
// cannot fix stays; the tests stage stops after MaxTestAttempts.
type Healer struct{}

// Name is "healer".
func (Healer) Name() string { return "healer" }

// Run applies the fixes in job.Dir and says which files each changed.
func (Healer) Run(ctx context.Context, job Job) (Output, error) {
	var formatted, imported []string
	err := filepath.WalkDir(job.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(job.Dir, p)
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := src
		if f, err := format.Source(out); err == nil && !bytes.Equal(f, out) {
			out = f
			formatted = append(formatted, rel)
		}
		if f, err := imports.Process(p, out, &imports.Options{Comments: true, TabIndent: true, TabWidth: 8}); err == nil && !bytes.Equal(f, out) {
			out = f
			imported = append(imported, rel)
		}
		if !bytes.Equal(out, src) {
			return os.WriteFile(p, out, 0o600)
		}
		return nil
	})
	if err != nil {
		return Output{}, err
	}
	before := map[string][]byte{}
	for _, f := range []string{"go.mod", "go.sum"} {
		before[f], _ = os.ReadFile(filepath.Join(job.Dir, f))
	}
	var tidied []string
	if err := (Healer{}).Tidy(ctx, job); err != nil {
		return Output{}, err
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		after, _ := os.ReadFile(filepath.Join(job.Dir, f))
		if !bytes.Equal(before[f], after) {
			tidied = append(tidied, f)
		}
	}
	var parts []string
	for _, c := range []struct {
		what  string
		files []string
	}{{"gofmt", formatted}, {"goimports", imported}, {"go mod tidy", tidied}} {
		if len(c.files) > 0 {
			slices.Sort(c.files)
			parts = append(parts, c.what+": "+strings.Join(c.files, ", "))
		}
	}
	if len(parts) == 0 {
		return Output{Notes: "nothing the default healer can fix (gofmt, goimports, go mod tidy changed nothing)"}, nil
	}
	return Output{Notes: strings.Join(parts, "; ")}, nil
}

// Tidy runs go mod tidy in the job's module.
func (Healer) Tidy(ctx context.Context, job Job) error {
	if out, err := command(ctx, job.Dir, job.Env, job.Go, "mod", "tidy"); err != nil {
		return fmt.Errorf("go mod tidy: %v: %s", err, tail(string(out), 1000))
	}
	return nil
}
