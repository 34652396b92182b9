package schemacompat

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDiff checks that Diff never panics on arbitrary JSON, that it errors
// exactly when a root is not a schema, and that its output is sorted and
// deterministic. Normal test runs use the seed corpus only.
func FuzzDiff(f *testing.F) {
	for _, tc := range changeCases {
		f.Add(tc.old, tc.new)
	}
	odd := []string{
		`true`, `false`, `null`, `[1,2]`, `"s"`, `3`,
		`{"$ref":"#"}`, `{"$ref":"#/"}`, `{"$ref":"#/%zz"}`, `{"$ref":"#/items/0"}`,
		`{"items":[1,{"$ref":"#/items/0"}]}`,
		`{"allOf":[{"$ref":"#"}],"anyOf":[{"$ref":"#/allOf/0"},{"not":{"$ref":"#"}}]}`,
		`{"properties":{"a":{"$ref":"#/properties/a"}},"required":[1,null,"a"]}`,
		`{"patternProperties":{"(?<=a)":{},"[":false},"properties":{"a":{}}}`,
		`{"type":5,"enum":5,"const":null,"multipleOf":-1,"maximum":"x","exclusiveMaximum":true}`,
		`{"prefixItems":{},"items":[true,false],"additionalItems":{"$ref":"#"},"contains":false}`,
		`{"dependencies":{"a":["b",1],"c":false,"d":5},"dependentSchemas":{"x":[]},"dependentRequired":{"y":{}}}`,
		`{"if":false,"then":true,"else":{"$ref":"#/then"},"not":true,"propertyNames":false}`,
		`{"oneOf":[],"anyOf":[true],"allOf":[false,{}],"x-reserved":[1,""]}`,
		`{"$id":5,"id":"x","title":{},"default":[1e400]}`,
		// References by $id, anchors and dynamic scope; other documents.
		`{"$id":"https://example.com/r","$defs":{"a":{"$id":"a","$anchor":"x","minimum":1}},"properties":{"p":{"$ref":"a#x"},"q":{"$ref":"https://example.com/a"}}}`,
		`{"$dynamicAnchor":"n","$defs":{"t":{"$id":"t","$dynamicAnchor":"n","items":{"$dynamicRef":"#n"}}},"$ref":"t"}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"a":{"$id":"#a"}},"$ref":"#a","maxLength":1}`,
		`{"$schema":"http://json-schema.org/draft-04/schema#","id":"urn:x","maximum":5,"exclusiveMaximum":true}`,
		`{"$schema":"https://json-schema.org/draft/2019-09/schema","$recursiveAnchor":true,"items":{"$recursiveRef":"#"}}`,
		`{"$ref":"urn:prost:schema:x:1","$anchor":"","$id":"%zz"}`,
		`{"$id":"urn:a","x":{"$id":"b","$ref":"#/x"},"$ref":"#/x"}`,
		// Numbers as sets.
		`{"type":"integer","exclusiveMinimum":10,"multipleOf":1.5,"maximum":1e3}`,
		`{"type":"number","minimum":11,"exclusiveMaximum":-1e-3,"multipleOf":0.2}`,
		// Conditionals in context.
		`{"if":{"required":["a"]},"then":{"$ref":"#"},"else":{"required":["b"]},"required":["a"],"unevaluatedProperties":false}`,
		`{"properties":{"a":{"maxLength":3}},"if":{"properties":{"k":{"const":1}}},"then":{"properties":{"a":{"maxLength":2},"b":false},"items":{}},"else":{"if":true,"then":false}}`,
	}
	for _, a := range odd {
		for _, b := range odd[:8] {
			f.Add(a, b)
			f.Add(b, a)
		}
		for _, b := range odd[len(odd)-11:] {
			f.Add(a, b)
		}
	}

	f.Fuzz(func(t *testing.T, a, b string) {
		va, okA := decodeAny(a)
		vb, okB := decodeAny(b)
		if !okA || !okB {
			return
		}
		validRoots := checkRoot(va) == nil && checkRoot(vb) == nil
		for _, p := range []Policy{PolicyStrict, PolicyLenient} {
			ds, err := Diff(va, vb, p)
			if !validRoots {
				require.ErrorIs(t, err, ErrInvalidSchema)
				continue
			}
			if err != nil {
				// Only absurd nesting may fail on valid roots.
				require.True(t, errors.Is(err, ErrInvalidSchema), "%v", err)
				continue
			}
			require.NotNil(t, ds)
			for i := 1; i < len(ds); i++ {
				prev, cur := ds[i-1], ds[i]
				require.True(t, prev.Pointer < cur.Pointer || (prev.Pointer == cur.Pointer && prev.Type <= cur.Type), "unsorted: %v", ds)
			}
			again, err := Diff(va, vb, p)
			require.NoError(t, err)
			require.Equal(t, ds, again)
		}
		if validRoots {
			_, err := Check(ModeFullTransitive, PolicyStrict, []any{va, vb}, va)
			if err != nil {
				require.ErrorIs(t, err, ErrInvalidSchema)
			}
		}
	})
}

func decodeAny(s string) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// withoutConflicts drops RESERVED_PROPERTY_CONFLICTS_WITH_PROPERTY, which
// judges the new schema alone (a schema must not define a property it
// reserves), so a schema compared with itself reports it too: the
// generator makes such schemas (testdata/fuzz/FuzzDiffGenerated/
// c89b453c08f6f98d).
func withoutConflicts(ds []Difference) []Difference {
	var out []Difference
	for _, d := range ds {
		if d.Type != ReservedPropertyConflictsWithProperty {
			out = append(out, d)
		}
	}
	return out
}

// FuzzDiffGenerated builds schemas from the fuzz input with a small grammar
// covering every keyword this package reads, so that fuzzing explores valid
// schemas rather than broken JSON. Besides not panicking, a schema compared
// with itself must have no differences.
func FuzzDiffGenerated(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{8, 7, 6, 5, 4, 3, 2, 1})
	f.Add([]byte("allOf anyOf oneOf $ref properties"), []byte("items prefixItems additionalItems"))
	f.Add([]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, []byte{0xff, 0x01})
	for i := range 32 {
		a := make([]byte, 64)
		b := make([]byte, 64)
		for j := range a {
			a[j] = byte(i*31 + j*17)
			b[j] = byte(i*13 + j*7 + 3)
		}
		f.Add(a, b)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		x := (&schemaGen{b: a}).root()
		y := (&schemaGen{b: b}).root()
		for _, p := range []Policy{PolicyStrict, PolicyLenient} {
			self, err := Diff(x, x, p)
			require.NoError(t, err)
			require.Empty(t, withoutConflicts(self), "%s", canonical(x))
			ds, err := Diff(x, y, p)
			require.NoError(t, err)
			again, err := Diff(x, y, p)
			require.NoError(t, err)
			require.Equal(t, ds, again)
		}
		_, err := Check(ModeFullTransitive, PolicyLenient, []any{x, y}, x)
		require.NoError(t, err)
		// Another document, generated too, for the references to load.
		k := Checker{Loader: genLoader{a, b}}
		self, err := k.Diff(x, x)
		require.NoError(t, err)
		require.Empty(t, withoutConflicts(self), "%s", canonical(x))
		_, err = k.Diff(x, y)
		require.NoError(t, err)

		// LENIENT never rejects what STRICT accepts.
		strict, err := Diff(x, y, PolicyStrict)
		require.NoError(t, err)
		lenient, err := Diff(x, y, PolicyLenient)
		require.NoError(t, err)
		if IsCompatible(strict) {
			require.True(t, IsCompatible(lenient), "%v", lenient)
		}
		// Anything can become {}, unless it reserved names; false can become
		// anything; only false can become false.
		if !strings.Contains(canonical(x), ReservedKeyword) {
			ds, err := Diff(x, true, PolicyStrict)
			require.NoError(t, err)
			require.True(t, IsCompatible(ds), "%s: %v", canonical(x), ds)
		}
		ds, err := Diff(false, y, PolicyStrict)
		require.NoError(t, err)
		require.True(t, IsCompatible(ds))
		if s := newSide("P", x, newLoadCache(nil)); !s.root.nodeAt(x, "", nil).isFalse {
			ds, err = Diff(x, false, PolicyStrict)
			require.NoError(t, err)
			require.False(t, IsCompatible(ds))
		}
	})
}

// genLoader serves generated schemas for the URIs the generator uses.
type genLoader struct{ a, b []byte }

func (l genLoader) Load(uri string) (any, error) {
	switch uri {
	case "https://x/y":
		return (&schemaGen{b: l.a, i: len(l.a) / 2}).root(), nil
	case "urn:prost:schema:x:1":
		return (&schemaGen{b: l.b, i: len(l.b) / 2}).root(), nil
	}
	return nil, ErrUnresolvable
}

// schemaGen turns bytes into a schema.
type schemaGen struct {
	b []byte
	i int
}

func (g *schemaGen) next() int {
	if g.i >= len(g.b) {
		return 0
	}
	v := g.b[g.i]
	g.i++
	return int(v)
}

func (g *schemaGen) pick(options ...string) string { return options[g.next()%len(options)] }

func (g *schemaGen) root() any {
	s := g.schema(0)
	if m, ok := s.(map[string]any); ok && g.next()%2 == 0 {
		m["$defs"] = map[string]any{"a": g.schema(2), "b": g.schema(3)}
	}
	return s
}

var genKeywords = []string{
	"type", "enum", "const", "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf",
	"maxLength", "minLength", "pattern", "format", "properties", "required", "additionalProperties",
	"patternProperties", "unevaluatedProperties", "maxProperties", "minProperties", "dependencies",
	"dependentRequired", "dependentSchemas", "propertyNames", "items", "prefixItems", "additionalItems",
	"unevaluatedItems", "contains", "maxItems", "minItems", "maxContains", "minContains", "uniqueItems",
	"allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$id", "title", "description",
	"default", ReservedKeyword, "$anchor", "$dynamicAnchor", "$dynamicRef", "$schema", "if", "then",
}

func (g *schemaGen) schema(depth int) any {
	c := g.next()
	if depth >= 4 || c%8 == 0 {
		return c%16 != 0
	}
	m := map[string]any{}
	for range g.next() % 5 {
		kw := genKeywords[g.next()%len(genKeywords)]
		m[kw] = g.value(kw, depth)
	}
	return m
}

func (g *schemaGen) list(depth int) []any {
	n := 1 + g.next()%3
	out := make([]any, n)
	for i := range out {
		out[i] = g.schema(depth + 1)
	}
	return out
}

func (g *schemaGen) names() []any {
	var out []any
	for range g.next() % 3 {
		out = append(out, g.pick("a", "b", "x-a"))
	}
	return out
}

func (g *schemaGen) value(kw string, depth int) any {
	switch kw {
	case "type":
		if g.next()%3 == 0 {
			return []any{g.pick("string", "null", "integer"), g.pick("number", "object", "array", "boolean")}
		}
		return g.pick("string", "integer", "number", "object", "array", "boolean", "null")
	case "enum":
		return []any{g.literal(), g.literal()}
	case "const", "default":
		return g.literal()
	case "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum", "multipleOf", "maxLength", "minLength",
		"maxProperties", "minProperties", "maxItems", "minItems", "maxContains", "minContains":
		if g.next()%9 == 0 {
			return true
		}
		return json.Number(g.pick("0", "1", "2", "3", "0.5", "10", "-1", "1e2", "1.5", "0.2", "10.5"))
	case "pattern", "format", "title", "description":
		return g.pick("^a", "b$", "[", "date", "(?=x)")
	case "$id":
		return g.pick("^a", "a.json", "https://x/a", "#a", "urn:x:a", "b/")
	case "$anchor", "$dynamicAnchor":
		return g.pick("a", "n", "")
	case "$dynamicRef":
		return g.pick("#n", "#a", "#/$defs/a", "https://x/a#n")
	case "$schema":
		return g.pick("http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2020-12/schema",
			"http://json-schema.org/draft-04/schema#", "https://json-schema.org/draft/2019-09/schema")
	case "required":
		return g.names()
	case "properties", "patternProperties", "dependentSchemas":
		m := map[string]any{}
		for range g.next() % 3 {
			m[g.pick("a", "b", "x-a", "^x-", ".*")] = g.schema(depth + 1)
		}
		return m
	case "dependencies", "dependentRequired":
		m := map[string]any{}
		for range g.next() % 3 {
			if g.next()%2 == 0 {
				m[g.pick("a", "b")] = g.names()
			} else {
				m[g.pick("a", "b")] = g.schema(depth + 1)
			}
		}
		return m
	case "items", "prefixItems":
		if g.next()%2 == 0 {
			return g.list(depth)
		}
		return g.schema(depth + 1)
	case "allOf", "anyOf", "oneOf":
		return g.list(depth)
	case "$ref":
		return g.pick("#", "#/$defs/a", "#/$defs/b", "#/properties/a", "#/anyOf/0", "https://x/y", "#/nope",
			"#a", "#n", "a.json", "https://x/a#n", "urn:prost:schema:x:1", "https://x/y#/$defs/a")
	case ReservedKeyword:
		return g.names()
	case "uniqueItems":
		return g.next()%2 == 0
	default:
		return g.schema(depth + 1)
	}
}

func (g *schemaGen) literal() any {
	switch g.next() % 6 {
	case 0:
		return nil
	case 1:
		return g.next()%2 == 0
	case 2:
		return json.Number(g.pick("1", "1.0", "2", "0.5"))
	case 3:
		return g.pick("a", "b")
	case 4:
		return []any{json.Number("1")}
	default:
		return map[string]any{"k": g.pick("a", "b")}
	}
}
