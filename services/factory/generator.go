package factorysvc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"golang.org/x/tools/imports"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// GeneratedPGXVersion is the pgx version generated modules require.
const GeneratedPGXVersion = "v5.13.0"

// ModulePathPrefix prefixes the module path of every generated module.
const ModulePathPrefix = "prost.factory/"

// Generator is PROST's deterministic code generator: from a Pack0 it writes a
// Go module (codegen) - a server with its migrations, HTTP CRUD handlers
// with validation, tenant scoping and role checks, the CloudEvents it emits
// with their JSON Schemas and contracts - and its tests (testgen). The same
// Pack0 always gives the same files. It needs no network beyond what `go
// mod tidy` resolves from the module cache (pgx).
type Generator struct{}

// Name is "generator".
func (Generator) Name() string { return "generator" }

// Run writes the module (codegen) or its tests (testgen) into job.Dir.
func (g Generator) Run(ctx context.Context, job Job) (Output, error) {
	if job.Pack0 == nil {
		return Output{}, fmt.Errorf("generator: no Pack0")
	}
	m := newGenModule(job.Pack0)
	var files map[string][]byte
	var err error
	switch job.Action {
	case ActionCodegen:
		files, err = m.codeFiles()
	case ActionTestgen:
		files, err = m.testFiles()
	default:
		return Output{}, fmt.Errorf("generator: it does not %s", job.Action)
	}
	if err != nil {
		return Output{}, err
	}
	names := make([]string, 0, len(files))
	for n, b := range files {
		p := filepath.Join(job.Dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return Output{}, err
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return Output{}, err
		}
		names = append(names, n)
	}
	slices.Sort(names)
	notes := fmt.Sprintf("wrote %d files", len(names))
	if job.Action == ActionCodegen {
		out, err := command(ctx, job.Dir, job.Env, job.Go, "mod", "tidy")
		if err != nil {
			return Output{}, fmt.Errorf("generator: go mod tidy: %v: %s", err, out)
		}
		notes += "; go mod tidy wrote go.sum"
	}
	return Output{Notes: notes}, nil
}

// genModule is the generator's view of a Pack0.
type genModule struct {
	Module, Path, Description string
	Entities                  []*genEntity
	Roles                     []factory.Role
	HasRoles                  bool
	HasEmail                  bool
	PGX                       string
	Go                        string
}

type genEntity struct {
	M                                    *genModule
	Name, Plural, Type, Var, Description string
	Key, KeyGo                           string
	Fields                               []*genField
	Events                               []string
	Migration                            int
	Personal                             bool
}

type genField struct {
	factory.Field
	Go, GoType, SQLType string
	Optional            bool
	SampleGo            string // a valid value as Go source of GoType
	SampleJSON          string // the same as JSON
	OtherJSON           string // another valid value as JSON
	BadJSON             string // a value of the right JSON type that fails validation ("" if none)
}

func newGenModule(p *factory.Pack0) *genModule {
	m := &genModule{Module: p.Module, Path: ModulePathPrefix + p.Module, Description: p.Description, Roles: p.Roles,
		HasRoles: len(p.Roles) > 0, PGX: GeneratedPGXVersion, Go: "1.26"}
	for i, e := range p.Entities {
		ge := &genEntity{M: m, Name: e.Name, Plural: e.PluralName(), Type: goName(e.Name), Var: lowerFirst(goName(e.Name)),
			Description: e.Description, Key: e.Key, KeyGo: goName(e.Key), Events: e.EventNames(), Migration: i + 1}
		for _, f := range e.Fields {
			if f.Name == e.Key {
				continue
			}
			gf := &genField{Field: f, Go: goName(f.Name), Optional: !f.Required}
			gf.fill()
			if f.Personal() {
				ge.Personal = true
			}
			if f.Type == "email" {
				m.HasEmail = true
			}
			ge.Fields = append(ge.Fields, gf)
		}
		m.Entities = append(m.Entities, ge)
	}
	return m
}

func (f *genField) fill() {
	lo, hi := 0.0, 1e12
	if f.Minimum != nil {
		lo = *f.Minimum
	}
	if f.Maximum != nil {
		hi = *f.Maximum
	}
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	sample := func(prefix string) string {
		s := prefix + "-" + strings.ReplaceAll(f.Name, "_", "-")
		if f.MaxLength > 0 && len(s) > f.MaxLength {
			s = s[:f.MaxLength]
		}
		return s
	}
	switch f.Type {
	case "string", "text":
		f.GoType, f.SQLType = "string", "text"
		f.SampleJSON, f.OtherJSON = str(sample("sample")), str(sample("other"))
		if f.MaxLength > 0 {
			f.BadJSON = str(strings.Repeat("x", f.MaxLength+1))
		}
	case "email":
		f.GoType, f.SQLType = "string", "text"
		f.SampleJSON, f.OtherJSON, f.BadJSON = `"person@example.com"`, `"other@example.com"`, `"not an address"`
	case "uuid":
		f.GoType, f.SQLType = "string", "uuid"
		f.SampleJSON, f.OtherJSON, f.BadJSON = `"3b241101-e2bb-4255-8caf-4136c566a962"`, `"5c9a2b1e-7d4f-4e8a-9b6c-2f1d3e4a5b6c"`, `"not-a-uuid"`
	case "enum":
		f.GoType, f.SQLType = "string", "text"
		f.SampleJSON, f.OtherJSON, f.BadJSON = str(f.Values[0]), str(f.Values[len(f.Values)-1]), `"not-one-of-the-values"`
	case "integer":
		f.GoType, f.SQLType = "int64", "bigint"
		v := int64(lo)
		if float64(v) < lo {
			v++
		}
		if v < 1 && hi >= 1 {
			v = 1
		}
		f.SampleJSON, f.OtherJSON = strconv.FormatInt(v, 10), strconv.FormatInt(min(v+1, int64(hi)), 10)
		if f.Minimum != nil {
			f.BadJSON = strconv.FormatInt(int64(lo)-1, 10)
		} else if f.Maximum != nil {
			f.BadJSON = strconv.FormatInt(int64(hi)+1, 10)
		}
	case "number":
		f.GoType, f.SQLType = "float64", "double precision"
		v := lo + 1.5
		if v > hi {
			v = lo
		}
		f.SampleJSON, f.OtherJSON = strconv.FormatFloat(v, 'f', -1, 64), strconv.FormatFloat(lo, 'f', -1, 64)
		if f.Minimum != nil {
			f.BadJSON = strconv.FormatFloat(lo-1, 'f', -1, 64)
		} else if f.Maximum != nil {
			f.BadJSON = strconv.FormatFloat(hi+1, 'f', -1, 64)
		}
	case "boolean":
		f.GoType, f.SQLType = "bool", "boolean"
		f.SampleJSON, f.OtherJSON = "true", "false"
	case "time":
		f.GoType, f.SQLType = "time.Time", "timestamptz"
		f.SampleJSON, f.OtherJSON = `"2026-01-02T03:04:05Z"`, `"2026-02-03T04:05:06Z"`
	}
}

// goName turns snake_case into an exported Go name (id -> ID, url -> URL).
func goName(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part == "" {
			continue
		}
		switch part {
		case "id", "url", "uri", "ip", "api", "http", "json", "sku", "uuid":
			b.WriteString(strings.ToUpper(part))
		default:
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	out := b.String()
	if out == "" || (out[0] >= '0' && out[0] <= '9') {
		out = "F" + out
	}
	return out
}

func lowerFirst(s string) string {
	for i, r := range s {
		if r < 'A' || r > 'Z' {
			if i == 0 {
				return s
			}
			if i > 1 {
				i--
			}
			return strings.ToLower(s[:i]) + s[i:]
		}
	}
	return strings.ToLower(s)
}

var funcs = template.FuncMap{
	"quote": strconv.Quote,
	"join":  strings.Join,
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
	"eventType": func(m *genModule, e *genEntity, ev string) string {
		return m.Module + "." + e.Name + "." + ev
	},
	"fnum":   func(f *float64) string { return strconv.FormatFloat(*f, 'f', -1, 64) },
	"a":      article,
	"perm":   func(e *genEntity, action string) string { return e.Name + ":" + action },
	"isLast": func(i int, n int) bool { return i == n-1 },
	"pad":    func(n int) string { return fmt.Sprintf("%03d", n) },
}

func render(name, text string, data any) ([]byte, error) {
	t, err := template.New(name).Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("generator: template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("generator: template %s: %w", name, err)
	}
	if strings.HasSuffix(name, ".go") {
		src, err := format.Source(buf.Bytes())
		if err == nil {
			// Drop the imports a module's shape leaves unused.
			src, err = imports.Process(name, src, &imports.Options{Comments: true, TabIndent: true, TabWidth: 8})
		}
		if err != nil {
			return nil, fmt.Errorf("generator: %s does not parse: %w\n%s", name, err, buf.String())
		}
		return src, nil
	}
	return buf.Bytes(), nil
}

// codeFiles are the module's sources.
func (m *genModule) codeFiles() (map[string][]byte, error) {
	files := map[string][]byte{}
	add := func(name, text string, data any) error {
		b, err := render(name, text, data)
		if err == nil {
			files[name] = b
		}
		return err
	}
	type ent struct {
		M *genModule
		E *genEntity
	}
	steps := []struct {
		name, text string
		data       any
	}{
		{"go.mod", goModTmpl, m},
		{"main.go", mainTmpl, m},
		{"server.go", serverTmpl, m},
		{"migrate.go", migrateTmpl, m},
		{"events.go", eventsTmpl, m},
		{"README.md", readmeTmpl, m},
		{"migrations/" + fmt.Sprintf("%03d", len(m.Entities)+1) + "_events.up.sql", eventsUpTmpl, m},
		{"migrations/" + fmt.Sprintf("%03d", len(m.Entities)+1) + "_events.down.sql", "DROP TABLE IF EXISTS events;\n", m},
	}
	for _, e := range m.Entities {
		d := ent{m, e}
		steps = append(steps,
			struct {
				name, text string
				data       any
			}{e.Name + ".go", entityTmpl, d},
			struct {
				name, text string
				data       any
			}{fmt.Sprintf("migrations/%03d_%s.up.sql", e.Migration, e.Plural), tableUpTmpl, d},
			struct {
				name, text string
				data       any
			}{fmt.Sprintf("migrations/%03d_%s.down.sql", e.Migration, e.Plural), "DROP TABLE IF EXISTS {{.E.Plural}};\n", d},
		)
		for _, ev := range e.Events {
			typ := m.Module + "." + e.Name + "." + ev
			d := struct {
				M     *genModule
				E     *genEntity
				Event string
				Type  string
			}{m, e, ev, typ}
			steps = append(steps,
				struct {
					name, text string
					data       any
				}{"schemas/" + typ + "/v1.json", schemaTmpl, d},
				struct {
					name, text string
					data       any
				}{"contracts/" + typ + ".yaml", contractTmpl, d},
			)
		}
	}
	for _, s := range steps {
		if err := add(s.name, s.text, s.data); err != nil {
			return nil, err
		}
	}
	for name, b := range files {
		if strings.HasSuffix(name, ".json") {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				return nil, fmt.Errorf("generator: %s is not JSON: %w", name, err)
			}
			out, _ := json.MarshalIndent(v, "", "  ")
			files[name] = append(out, '\n')
		}
	}
	return files, nil
}

// testFiles are the module's tests.
func (m *genModule) testFiles() (map[string][]byte, error) {
	files := map[string][]byte{}
	b, err := render("main_test.go", mainTestTmpl, m)
	if err != nil {
		return nil, err
	}
	files["main_test.go"] = b
	for _, e := range m.Entities {
		b, err := render(e.Name+"_test.go", entityTestTmpl, struct {
			M *genModule
			E *genEntity
		}{m, e})
		if err != nil {
			return nil, err
		}
		files[e.Name+"_test.go"] = b
	}
	return files, nil
}

// roleFor is a role allowed action on entity, or "" when no role is.
func (m *genModule) roleFor(entity, action string) string {
	for _, r := range m.Roles {
		for _, p := range r.Permissions {
			if p == entity+":"+action || p == entity+":*" {
				return r.Name
			}
		}
	}
	return ""
}

// roleWithout is a role not allowed action on entity, or "".
func (m *genModule) roleWithout(entity, action string) string {
	for _, r := range m.Roles {
		if !slices.ContainsFunc(r.Permissions, func(p string) bool { return p == entity+":"+action || p == entity+":*" }) {
			return r.Name
		}
	}
	return ""
}
