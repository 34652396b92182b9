package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLayout keeps the rules of docs/architecture.md ("Layout", decision
// 0009) that nothing else would catch: a mechanism in pkg/ imports no
// domain (pkg/domain/...), and no two packages of pkg/ and services/ share
// a name, so none needs an import alias.
func TestLayout(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	const module = "github.com/prost-platform/prost/"
	names := map[string][]string{} // package name -> directories
	var wrong []string
	for _, top := range []string{"pkg", "services"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			switch d.Name() {
			case "testdata", "node_modules", "dist":
				return filepath.SkipDir
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			entries, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			name := ""
			for _, e := range entries {
				if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
					continue
				}
				f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(path, e.Name()), nil, parser.ImportsOnly)
				require.NoError(t, err)
				name = f.Name.Name
				if top != "pkg" || strings.HasPrefix(rel, "pkg/domain/") || rel == "pkg/domain" {
					continue
				}
				for _, imp := range f.Imports {
					p, _ := strconv.Unquote(imp.Path.Value)
					if strings.HasPrefix(p, module+"pkg/domain/") {
						wrong = append(wrong, rel+"/"+e.Name()+" imports "+p)
					}
				}
			}
			if name != "" && name != "main" {
				names[name] = append(names[name], rel)
			}
			return nil
		})
		require.NoError(t, err)
	}
	require.Empty(t, wrong, "a mechanism (pkg/ outside pkg/domain) must not import a domain")
	var repeated []string
	for name, dirs := range names {
		if len(dirs) > 1 {
			repeated = append(repeated, name+": "+strings.Join(dirs, ", "))
		}
	}
	sort.Strings(repeated)
	require.Empty(t, repeated, "package names must not repeat across pkg/ and services/")
	require.Greater(t, len(names), 40, "the walk found too few packages to mean anything")
}
