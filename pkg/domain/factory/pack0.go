package factory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.yaml.in/yaml/v3"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// Pack0 is the requirements of a module (format version 1): its entities with
// typed and classified fields, roles and permissions, flows, integrations,
// performance budgets, the data retention matrix and the threats it must
// resist. Its JSON Schema is schemas/factory.pack0/v1.json; docs/factory.md
// is the reference.
type Pack0 struct {
	Pack0        json.RawMessage `json:"pack0"`
	Module       string          `json:"module"`
	Description  string          `json:"description"`
	Owner        string          `json:"owner,omitempty"`
	Entities     []Entity        `json:"entities"`
	Roles        []Role          `json:"roles,omitempty"`
	Flows        []Flow          `json:"flows,omitempty"`
	Integrations []Integration   `json:"integrations,omitempty"`
	Budgets      []Budget        `json:"budgets,omitempty"`
	Retention    []Retention     `json:"retention,omitempty"`
	Threats      []Threat        `json:"threats,omitempty"`
}

// Entity is a kind of record the module keeps.
type Entity struct {
	Name        string   `json:"name"`
	Plural      string   `json:"plural,omitempty"`
	Description string   `json:"description,omitempty"`
	Key         string   `json:"key"`
	Fields      []Field  `json:"fields"`
	Events      []string `json:"events,omitempty"`
}

// PluralName is Plural, or Name + "s".
func (e *Entity) PluralName() string {
	if e.Plural != "" {
		return e.Plural
	}
	return e.Name + "s"
}

// EventNames are the events the module emits for the entity (default: all).
func (e *Entity) EventNames() []string {
	if len(e.Events) == 0 {
		return []string{"created", "updated", "deleted"}
	}
	return e.Events
}

// Field returns the named field, or nil.
func (e *Entity) Field(name string) *Field {
	for i := range e.Fields {
		if e.Fields[i].Name == name {
			return &e.Fields[i]
		}
	}
	return nil
}

// Field is one typed field of an entity.
type Field struct {
	Name           string   `json:"name"`
	Type           string   `json:"type"`
	Required       bool     `json:"required,omitempty"`
	MaxLength      int      `json:"max_length,omitempty"`
	Minimum        *float64 `json:"minimum,omitempty"`
	Maximum        *float64 `json:"maximum,omitempty"`
	Values         []string `json:"values,omitempty"`
	Classification string   `json:"classification,omitempty"`
	Purpose        string   `json:"purpose,omitempty"`
	Retention      string   `json:"retention,omitempty"`
	Description    string   `json:"description,omitempty"`
}

// Personal reports whether the field holds personal or sensitive data.
func (f *Field) Personal() bool {
	return f.Classification == "personal" || f.Classification == "sensitive"
}

// Role is a role and what it may do.
type Role struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Permissions []string `json:"permissions"`
}

// Flow is a business flow across the module's entities.
type Flow struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Trigger     string   `json:"trigger,omitempty"`
	Steps       []string `json:"steps,omitempty"`
}

// Integration is a system the module talks to.
type Integration struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Direction   string `json:"direction"`
	Description string `json:"description,omitempty"`
}

// Budget is a performance budget: the 95th percentile latency a route must
// stay under in the perf gate's load.
type Budget struct {
	Route string `json:"route"`
	P95Ms int    `json:"p95_ms"`
}

// Retention is a row of the data retention matrix.
type Retention struct {
	Entity string `json:"entity"`
	Period string `json:"period"`
	Action string `json:"action,omitempty"`
	Basis  string `json:"basis,omitempty"`
}

// Threat is a threat the module must resist and its mitigation.
type Threat struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Category   string   `json:"category"`
	Mitigation string   `json:"mitigation"`
	Entities   []string `json:"entities,omitempty"`
}

// Routes lists the routes the generated module serves for each entity, in
// the form budgets name them.
func (p *Pack0) Routes() []string {
	var out []string
	for _, e := range p.Entities {
		base := "/v1/" + e.PluralName()
		out = append(out, "POST "+base, "GET "+base, "GET "+base+"/{id}", "PUT "+base+"/{id}", "DELETE "+base+"/{id}")
	}
	return out
}

// EventTypes lists the types of the CloudEvents the generated module emits,
// <module>.<entity>.<event>, entity by entity.
func (p *Pack0) EventTypes() []string {
	var out []string
	for i := range p.Entities {
		e := &p.Entities[i]
		for _, ev := range e.EventNames() {
			out = append(out, p.Module+"."+e.Name+"."+ev)
		}
	}
	return out
}

// Entity returns the named entity, or nil.
func (p *Pack0) Entity(name string) *Entity {
	for i := range p.Entities {
		if p.Entities[i].Name == name {
			return &p.Entities[i]
		}
	}
	return nil
}

// Pack0Problem is one failure of the pack0 gate: where (a JSON pointer into
// the Pack0), which rule, and why.
type Pack0Problem struct {
	Pointer string `json:"pointer"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

func (p Pack0Problem) String() string { return p.Pointer + " " + p.Rule + ": " + p.Message }

// Pack0SchemaPath is where the Pack0 schema lives in a schemas directory.
const Pack0SchemaPath = "factory.pack0/v1.json"

// Pack0Schema is the compiled Pack0 JSON Schema.
type Pack0Schema struct{ sch *jsonschema.Schema }

// LoadPack0Schema reads and compiles the Pack0 schema from a schemas
// directory (PROST_SCHEMAS_DIR).
func LoadPack0Schema(schemasDir string) (*Pack0Schema, error) {
	b, err := os.ReadFile(filepath.Join(schemasDir, Pack0SchemaPath))
	if err != nil {
		return nil, fmt.Errorf("factory: the Pack0 schema: %w", err)
	}
	return CompilePack0Schema(b)
}

// CompilePack0Schema compiles a Pack0 schema document.
func CompilePack0Schema(text []byte) (*Pack0Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("factory: the Pack0 schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	const loc = "urn:prost:schema:factory.pack0:1"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("factory: the Pack0 schema: %w", err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("factory: the Pack0 schema: %w", err)
	}
	return &Pack0Schema{sch: sch}, nil
}

// Pack0JSON converts a Pack0 written as YAML or JSON into compact JSON.
func Pack0JSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("the Pack0 is neither JSON nor YAML: %w", err)
	}
	v, err := jsonable(v)
	if err != nil {
		return nil, err
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("the Pack0 must be an object (a mapping)")
	}
	return json.Marshal(v)
}

// jsonable turns what YAML decoding gives into values encoding/json takes.
func jsonable(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			y, err := jsonable(x)
			if err != nil {
				return nil, err
			}
			t[k] = y
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			y, err := jsonable(x)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = y
		}
		return m, nil
	case []any:
		for i, x := range t {
			y, err := jsonable(x)
			if err != nil {
				return nil, err
			}
			t[i] = y
		}
		return t, nil
	}
	return v, nil
}

// CheckPack0 is the pack0 gate: it checks doc (JSON) against the schema and
// then against the objective rules, and returns the parsed Pack0 with every
// failure, each naming where and which rule. NORMAL also requires budgets,
// threats and a retention row for every entity with personal data.
func CheckPack0(schema *Pack0Schema, doc []byte, state State) (*Pack0, []Pack0Problem) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, []Pack0Problem{{Pointer: "", Rule: "json", Message: err.Error()}}
	}
	if err := schema.sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, []Pack0Problem{{Rule: "schema", Message: err.Error()}}
		}
		var out []Pack0Problem
		schemaProblems(ve, &out)
		return nil, out
	}
	var p Pack0
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, []Pack0Problem{{Rule: "schema", Message: err.Error()}}
	}
	return &p, p.rules(state)
}

func schemaProblems(e *jsonschema.ValidationError, out *[]Pack0Problem) {
	if len(*out) >= 50 {
		return
	}
	switch e.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
	default:
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				schemaProblems(c, out)
			}
			return
		}
	}
	kw := "schema"
	if p := e.ErrorKind.KeywordPath(); len(p) > 0 {
		kw = "schema." + p[0]
	}
	var ptr strings.Builder
	for _, t := range e.InstanceLocation {
		ptr.WriteByte('/')
		ptr.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	*out = append(*out, Pack0Problem{Pointer: ptr.String(), Rule: kw, Message: e.ErrorKind.LocalizedString(printer)})
}

// rules checks what a schema cannot say.
func (p *Pack0) rules(state State) []Pack0Problem {
	var out []Pack0Problem
	add := func(ptr, rule, format string, args ...any) {
		out = append(out, Pack0Problem{Pointer: ptr, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	reserved := []string{"tenant_id", "created_at", "updated_at"}
	entities := map[string]bool{}
	plurals := map[string]bool{}
	for i, e := range p.Entities {
		at := "/entities/" + strconv.Itoa(i)
		if entities[e.Name] {
			add(at+"/name", "unique-names", "entity %q is declared twice", e.Name)
		}
		entities[e.Name] = true
		if plurals[e.PluralName()] {
			add(at+"/plural", "unique-names", "two entities share the route /v1/%s", e.PluralName())
		}
		plurals[e.PluralName()] = true
		fields := map[string]bool{}
		for j, f := range e.Fields {
			fat := at + "/fields/" + strconv.Itoa(j)
			if fields[f.Name] {
				add(fat+"/name", "unique-names", "field %q is declared twice in entity %q", f.Name, e.Name)
			}
			fields[f.Name] = true
			if slices.Contains(reserved, f.Name) {
				add(fat+"/name", "reserved-field", "%q is kept by the module itself (%s are reserved)", f.Name, strings.Join(reserved, ", "))
			}
			if f.Personal() {
				if strings.TrimSpace(f.Purpose) == "" {
					add(fat+"/purpose", "personal-purpose", "%s.%s holds %s data: state its purpose", e.Name, f.Name, f.Classification)
				}
				if f.Retention == "" {
					add(fat+"/retention", "personal-retention", "%s.%s holds %s data: state how long it is kept", e.Name, f.Name, f.Classification)
				}
			}
			if f.Type == "enum" && len(f.Values) == 0 {
				add(fat+"/values", "enum-values", "an enum field lists its values")
			}
			if f.Type != "enum" && len(f.Values) > 0 {
				add(fat+"/values", "enum-values", "only an enum field has values")
			}
			if f.MaxLength > 0 && f.Type != "string" && f.Type != "text" && f.Type != "email" {
				add(fat+"/max_length", "field-bounds", "max_length applies to string, text and email fields")
			}
			if (f.Minimum != nil || f.Maximum != nil) && f.Type != "integer" && f.Type != "number" {
				add(fat, "field-bounds", "minimum and maximum apply to integer and number fields")
			}
			if f.Minimum != nil && f.Maximum != nil && *f.Minimum > *f.Maximum {
				add(fat, "field-bounds", "minimum %v is above maximum %v", *f.Minimum, *f.Maximum)
			}
		}
		key := e.Field(e.Key)
		switch {
		case e.Key == "":
			add(at+"/key", "entity-key", "entity %q has no key", e.Name)
		case key == nil:
			add(at+"/key", "entity-key", "entity %q: its key %q is not one of its fields", e.Name, e.Key)
		case key.Type != "uuid":
			add(at+"/key", "entity-key", "entity %q: its key %q must be a uuid field (the module assigns it)", e.Name, e.Key)
		}
	}
	roles := map[string]bool{}
	for i, r := range p.Roles {
		at := "/roles/" + strconv.Itoa(i)
		if roles[r.Name] {
			add(at+"/name", "unique-names", "role %q is declared twice", r.Name)
		}
		roles[r.Name] = true
		for j, perm := range r.Permissions {
			ent, _, _ := strings.Cut(perm, ":")
			if !entities[ent] {
				add(at+"/permissions/"+strconv.Itoa(j), "role-permission", "%q names no entity of the module", perm)
			}
		}
	}
	routes := p.Routes()
	for i, b := range p.Budgets {
		if !slices.Contains(routes, b.Route) {
			add("/budgets/"+strconv.Itoa(i)+"/route", "budget-route", "%q is not a route of the module (its routes: %s)", b.Route, strings.Join(routes, ", "))
		}
	}
	retained := map[string]bool{}
	for i, r := range p.Retention {
		if !entities[r.Entity] {
			add("/retention/"+strconv.Itoa(i)+"/entity", "retention-entity", "%q is not an entity of the module", r.Entity)
		}
		retained[r.Entity] = true
	}
	for i, t := range p.Threats {
		for j, e := range t.Entities {
			if !entities[e] {
				add(fmt.Sprintf("/threats/%d/entities/%d", i, j), "threat-entity", "%q is not an entity of the module", e)
			}
		}
	}
	if state == Normal {
		if len(p.Budgets) == 0 {
			add("/budgets", "normal-budgets", "a NORMAL run needs performance budgets (p95 per route) for the perf gate")
		}
		if len(p.Threats) == 0 {
			add("/threats", "normal-threats", "a NORMAL run needs the threats the module must resist, each with its mitigation")
		}
		for i, e := range p.Entities {
			personal := slices.ContainsFunc(e.Fields, func(f Field) bool { return f.Personal() })
			if personal && !retained[e.Name] {
				add("/entities/"+strconv.Itoa(i), "normal-retention-matrix", "entity %q holds personal data: the retention matrix needs a row for it", e.Name)
			}
		}
	}
	return out
}
