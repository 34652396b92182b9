package contracts

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/prost-platform/prost/pkg/schemacompat"
)

// FileReport is lint's answer for one contract file.
type FileReport struct {
	Path     string    `json:"path"`
	Type     string    `json:"type,omitempty"`
	Findings []Finding `json:"findings"`
}

// LintPaths lints contract files: each path is a YAML file or a directory
// whose *.yaml and *.yml files (not its subdirectories) are linted. A file
// that cannot be parsed is reported as a finding of gate "contract". Two
// files with the same type are reported too.
//
// schemasDir is where the schemas named by urn:prost:schema:<type>:<n> live
// (<schemasDir>/<type>/v<n>.json); "" means the schemas directory next to
// each file's directory (../schemas), if there is one. When the directory
// exists, a schema the contract names must be in it and gate C looks for
// card-number fields in it. Reports come in path order; an error is returned
// only for a path that cannot be read.
func LintPaths(paths []string, schemasDir string) ([]FileReport, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	sort.Strings(files)
	var out []FileReport
	seen := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		rep := FileReport{Path: f, Findings: []Finding{}}
		c, err := ParseYAML(b)
		if err != nil {
			rep.Findings = append(rep.Findings, Finding{Gate: "contract", Field: "document", Message: err.Error()})
			out = append(out, rep)
			continue
		}
		rep.Type = c.Type
		dir := schemasDir
		if dir == "" {
			dir = filepath.Join(filepath.Dir(f), "..", "schemas")
		}
		opts := LintOptions{}
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			opts.Schema = func(ref string) (any, error) { return schemaFile(dir, ref) }
			if c.Schema != "" && !c.HasPayment() {
				if _, err := schemaFile(dir, c.Schema); err != nil {
					rep.Findings = append(rep.Findings, Finding{Gate: "contract", Field: "schema", Message: err.Error()})
				}
			}
		}
		rep.Findings = append(rep.Findings, Lint(c, opts)...)
		if prev, dup := seen[c.Type]; dup && c.Type != "" {
			rep.Findings = append(rep.Findings, Finding{Gate: "contract", Field: "type", Message: fmt.Sprintf("%q is also the type of %s: one contract per type", c.Type, prev)})
		} else {
			seen[c.Type] = f
		}
		out = append(out, rep)
	}
	return out, nil
}

// schemaFile reads the schema a urn:prost:schema:<type>:<n> reference names
// from dir/<type>/v<n>.json.
func schemaFile(dir, ref string) (any, error) {
	const prefix = "urn:prost:schema:"
	if !strings.HasPrefix(ref, prefix) {
		return nil, fmt.Errorf("%s: lint reads schemas named as %s<type>:<version>", ref, prefix)
	}
	rest := ref[len(prefix):]
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return nil, fmt.Errorf("%s: want %s<type>:<version>", ref, prefix)
	}
	typ, err := url.PathUnescape(rest[:i])
	n, nerr := strconv.Atoi(rest[i+1:])
	if err != nil || nerr != nil || n < 1 || typ == "" || strings.ContainsAny(typ, `/\`) || typ == "." || typ == ".." {
		return nil, fmt.Errorf("%s: want %s<type>:<version>", ref, prefix)
	}
	path := filepath.Join(dir, typ, "v"+strconv.Itoa(n)+".json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no such schema (%s)", ref, path)
	}
	if err != nil {
		return nil, err
	}
	doc, err := schemacompat.ParseSchema(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}
