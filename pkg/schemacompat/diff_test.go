package schemacompat

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// diffOf runs Diff under a policy on two JSON texts.
func diffOf(t *testing.T, old, next string, p Policy) []Difference {
	t.Helper()
	ds, err := Diff(mustParse(t, old), mustParse(t, next), p)
	require.NoError(t, err)
	return ds
}

// kinds renders differences as "TYPE POINTER" lines for exact comparisons.
func kinds(ds []Difference) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Type) + " " + d.Pointer
	}
	return out
}

func TestNestedPointers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		old  string
		new  string
		want []string
	}{
		{
			name: "property in items in property",
			old:  `{"type":"object","properties":{"orders":{"type":"array","items":{"type":"object","properties":{"amount":{"type":"number","maximum":100}}}}}}`,
			new:  `{"type":"object","properties":{"orders":{"type":"array","items":{"type":"object","properties":{"amount":{"type":"number","maximum":50}}}}}}`,
			want: []string{"MAXIMUM_DECREASED #/properties/orders/items/properties/amount/maximum"},
		},
		{
			name: "property in property in items in property",
			old:  `{"properties":{"order":{"properties":{"lines":{"items":{"properties":{"sku":{"type":"string","maxLength":8}}}}}}}}`,
			new:  `{"properties":{"order":{"properties":{"lines":{"items":{"properties":{"sku":{"type":"string","maxLength":12}}}}}}}}`,
			want: []string{"MAX_LENGTH_INCREASED #/properties/order/properties/lines/items/properties/sku/maxLength"},
		},
		{
			name: "RFC 6901 escaping",
			old:  `{"properties":{"a/b~c":{"type":"string"}}}`,
			new:  `{"properties":{"a/b~c":{"type":"integer"}}}`,
			want: []string{"TYPE_CHANGED #/properties/a~1b~0c/type"},
		},
		{
			name: "tuple item inside a property",
			old:  `{"properties":{"point":{"prefixItems":[{"type":"number"},{"type":"number"}]}}}`,
			new:  `{"properties":{"point":{"prefixItems":[{"type":"integer"},{"type":"number"}]}}}`,
			want: []string{"TYPE_NARROWED #/properties/point/prefixItems/0/type"},
		},
		{
			name: "through a $ref the pointer follows the referencing schema",
			old:  `{"$defs":{"money":{"type":"number","minimum":0}},"properties":{"price":{"$ref":"#/$defs/money"},"tax":{"$ref":"#/$defs/money"}}}`,
			new:  `{"$defs":{"money":{"type":"number","minimum":1}},"properties":{"price":{"$ref":"#/$defs/money"},"tax":{"$ref":"#/$defs/money"}}}`,
			want: []string{"MINIMUM_INCREASED #/properties/price/minimum", "MINIMUM_INCREASED #/properties/tax/minimum"},
		},
		{
			name: "additionalProperties and dependency schemas",
			old:  `{"additionalProperties":{"type":"string"},"dependentSchemas":{"a":{"properties":{"b":{"maxLength":3}}}}}`,
			new:  `{"additionalProperties":{"type":"string","format":"date"},"dependentSchemas":{"a":{"properties":{"b":{"maxLength":2}}}}}`,
			want: []string{
				"FORMAT_ADDED #/additionalProperties/format",
				"MAX_LENGTH_DECREASED #/dependentSchemas/a/properties/b/maxLength",
			},
		},
		{
			name: "then branch and propertyNames",
			old:  `{"if":{"required":["a"]},"then":{"required":["b"]},"propertyNames":{"maxLength":8}}`,
			new:  `{"if":{"required":["a"]},"then":{"required":["b","c"]},"propertyNames":{"maxLength":4}}`,
			want: []string{
				"MAX_LENGTH_DECREASED #/propertyNames/maxLength",
				"REQUIRED_ATTRIBUTE_ADDED #/then/required/c",
			},
		},
		{
			name: "pattern property schema",
			old:  `{"patternProperties":{"^x-":{"type":"string","maxLength":10}}}`,
			new:  `{"patternProperties":{"^x-":{"type":"string","maxLength":5}}}`,
			want: []string{"MAX_LENGTH_DECREASED #/patternProperties/^x-/maxLength"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, kinds(diffOf(t, tc.old, tc.new, PolicyStrict)))
		})
	}
}

func TestNoDifferences(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		`{}`, `true`, `false`,
		`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`,
		`{"$defs":{"n":{"properties":{"next":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`,
		`{"anyOf":[{"type":"string"},{"type":"string"}]}`,
	} {
		ds := diffOf(t, s, s, PolicyStrict)
		require.NotNil(t, ds, s)
		require.Empty(t, ds, s)
	}
	// Equivalent spellings.
	for _, p := range [][2]string{
		{`true`, `{}`},
		{`{"additionalProperties":true}`, `{}`},
		{`{"items":{}}`, `{}`},
		{`{"type":["integer","number"]}`, `{"type":"number"}`},
		{`{"enum":[1,"a"]}`, `{"enum":["a",1.0]}`},
		{`{"const":{"a":1,"b":[true]}}`, `{"enum":[{"b":[true],"a":1}]}`},
		{`{"maximum":10,"exclusiveMaximum":true}`, `{"exclusiveMaximum":10}`},
		{`{"multipleOf":0.5}`, `{"multipleOf":0.50}`},
		{`{"required":["a","a"]}`, `{"required":["a"]}`},
	} {
		require.Empty(t, diffOf(t, p[0], p[1], PolicyStrict), "%s vs %s", p[0], p[1])
	}
}

func TestBooleanSchemas(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"TYPE_NARROWED #"}, kinds(diffOf(t, `true`, `false`, PolicyStrict)))
	require.Equal(t, []string{"TYPE_EXTENDED #"}, kinds(diffOf(t, `false`, `{"type":"string"}`, PolicyStrict)))
	ds := diffOf(t, `{"properties":{"a":{}}}`, `{"properties":{"a":false}}`, PolicyLenient)
	require.Equal(t, []string{"TYPE_NARROWED #/properties/a"}, kinds(ds))
	require.False(t, IsCompatible(ds))
	require.True(t, IsCompatible(diffOf(t, `{"items":false}`, `{"items":{"type":"string"}}`, PolicyStrict)))
}

func TestTypeSpecificKeywordsNeedTheType(t *testing.T) {
	t.Parallel()
	// The string and number keywords do not matter once the type changed.
	ds := diffOf(t, `{"type":"string","maxLength":5}`, `{"type":"integer","maximum":3}`, PolicyStrict)
	require.Equal(t, []string{"TYPE_CHANGED #/type"}, kinds(ds))
	// Constraints for a type the old schema never accepted are compatible.
	ds = diffOf(t, `{"type":"integer"}`, `{"type":["integer","string"],"maxLength":5}`, PolicyStrict)
	require.Equal(t, []string{"TYPE_EXTENDED #/type"}, kinds(ds))
	require.True(t, IsCompatible(ds))
}

func TestDraft04ExclusiveBounds(t *testing.T) {
	t.Parallel()
	ds := diffOf(t, `{"type":"number","maximum":10}`, `{"type":"number","maximum":10,"exclusiveMaximum":true}`, PolicyStrict)
	require.Equal(t, []string{"EXCLUSIVE_MAXIMUM_ADDED #/exclusiveMaximum", "MAXIMUM_REMOVED #/maximum"}, kinds(ds))
	require.False(t, IsCompatible(ds))
	// > 0 to >= 0 admits every number it did: the range is compared whole.
	ds = diffOf(t, `{"type":"number","minimum":0,"exclusiveMinimum":true}`, `{"type":"number","minimum":0,"exclusiveMinimum":false}`, PolicyStrict)
	require.Equal(t, []string{"LOWER_BOUND_IS_COVERED #/minimum"}, kinds(ds))
	require.True(t, IsCompatible(ds))
	ds = diffOf(t, `{"type":"number","minimum":0,"exclusiveMinimum":false}`, `{"type":"number","minimum":0,"exclusiveMinimum":true}`, PolicyStrict)
	require.Equal(t, []string{"EXCLUSIVE_MINIMUM_ADDED #/exclusiveMinimum", "MINIMUM_REMOVED #/minimum"}, kinds(ds))
	require.False(t, IsCompatible(ds))
	// Draft-04 and draft-06 forms of the same bound compare equal.
	require.Empty(t, diffOf(t, `{"minimum":3,"exclusiveMinimum":true}`, `{"exclusiveMinimum":3}`, PolicyStrict))
}

func TestNumbers(t *testing.T) {
	t.Parallel()
	// float64 input (plain json.Unmarshal) compares like the JSON text.
	var old, next any
	require.NoError(t, json.Unmarshal([]byte(`{"multipleOf":0.1,"maximum":1e21}`), &old))
	require.NoError(t, json.Unmarshal([]byte(`{"multipleOf":0.01,"maximum":1e22}`), &next))
	ds, err := Diff(old, next, PolicyStrict)
	require.NoError(t, err)
	require.Equal(t, []string{"MAXIMUM_INCREASED #/maximum", "MULTIPLE_OF_REDUCED #/multipleOf"}, kinds(ds))
	// Go integer types work too.
	ds, err = Diff(map[string]any{"maxLength": int64(3)}, map[string]any{"maxLength": uint8(4)}, PolicyStrict)
	require.NoError(t, err)
	require.Equal(t, []string{"MAX_LENGTH_INCREASED #/maxLength"}, kinds(ds))
	// Large exact numbers.
	ds = diffOf(t, `{"maximum":12345678901234567890123}`, `{"maximum":12345678901234567890124}`, PolicyStrict)
	require.Equal(t, []string{"MAXIMUM_INCREASED #/maximum"}, kinds(ds))
	// multipleOf that is not positive is ignored as invalid.
	require.Empty(t, diffOf(t, `{"multipleOf":0}`, `{}`, PolicyStrict))
}

func TestReferences(t *testing.T) {
	t.Parallel()
	t.Run("definitions and $defs", func(t *testing.T) {
		t.Parallel()
		ds := diffOf(t,
			`{"definitions":{"id":{"type":"string"}},"properties":{"id":{"$ref":"#/definitions/id"}}}`,
			`{"$defs":{"id":{"type":"string","minLength":1}},"properties":{"id":{"$ref":"#/$defs/id"}}}`,
			PolicyStrict)
		require.Equal(t, []string{"MIN_LENGTH_ADDED #/properties/id/minLength"}, kinds(ds))
	})
	t.Run("recursive schema", func(t *testing.T) {
		t.Parallel()
		ds := diffOf(t,
			`{"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}`,
			`{"$defs":{"node":{"type":"object","properties":{"value":{"type":"number"},"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}`,
			PolicyStrict)
		require.Equal(t, []string{"TYPE_EXTENDED #/properties/value/type"}, kinds(ds))
	})
	t.Run("mutual recursion", func(t *testing.T) {
		t.Parallel()
		ds := diffOf(t,
			`{"$defs":{"a":{"properties":{"b":{"$ref":"#/$defs/b"}}},"b":{"properties":{"a":{"$ref":"#/$defs/a"},"n":{"maximum":3}}}},"$ref":"#/$defs/a"}`,
			`{"$defs":{"a":{"properties":{"b":{"$ref":"#/$defs/b"}}},"b":{"properties":{"a":{"$ref":"#/$defs/a"},"n":{"maximum":2}}}},"$ref":"#/$defs/a"}`,
			PolicyStrict)
		require.Equal(t, []string{"MAXIMUM_DECREASED #/properties/b/properties/n/maximum"}, kinds(ds))
	})
	t.Run("cycles of refs only", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{
			`{"$ref":"#"}`,
			`{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`,
			`{"allOf":[{"$ref":"#"}],"properties":{"x":{"$ref":"#/properties/x"}}}`,
		} {
			_, err := Diff(mustParse(t, s), mustParse(t, `{"type":"string"}`), PolicyStrict)
			require.NoError(t, err, s)
			_, err = Diff(mustParse(t, `{"type":"string"}`), mustParse(t, s), PolicyStrict)
			require.NoError(t, err, s)
		}
	})
	t.Run("escaped pointer", func(t *testing.T) {
		t.Parallel()
		ds := diffOf(t,
			`{"$defs":{"a/b c":{"type":"string"}},"properties":{"p":{"$ref":"#/$defs/a~1b%20c"}}}`,
			`{"$defs":{"a/b c":{"type":"integer"}},"properties":{"p":{"$ref":"#/$defs/a~1b%20c"}}}`,
			PolicyStrict)
		require.Equal(t, []string{"TYPE_CHANGED #/properties/p/type"}, kinds(ds))
	})
	t.Run("siblings of $ref override", func(t *testing.T) {
		t.Parallel()
		ds := diffOf(t,
			`{"$defs":{"s":{"type":"string","maxLength":10}},"properties":{"p":{"$ref":"#/$defs/s"}}}`,
			`{"$defs":{"s":{"type":"string","maxLength":10}},"properties":{"p":{"$ref":"#/$defs/s","maxLength":5}}}`,
			PolicyStrict)
		require.Equal(t, []string{"MAX_LENGTH_DECREASED #/properties/p/maxLength"}, kinds(ds))
	})
	t.Run("unresolvable refs compare by text", func(t *testing.T) {
		t.Parallel()
		same := `{"$ref":"https://example.com/a.json"}`
		require.Empty(t, diffOf(t, same, same, PolicyStrict))
		require.Equal(t, []string{"TYPE_CHANGED #/$ref"}, kinds(diffOf(t, same, `{"$ref":"https://example.com/b.json"}`, PolicyStrict)))
		require.Equal(t, []string{"SCHEMA_REMOVED #/$ref"}, kinds(diffOf(t, same, `{}`, PolicyStrict)))
		require.Equal(t, []string{"SCHEMA_ADDED #/$ref"}, kinds(diffOf(t, `{}`, `{"$ref":"#/$defs/missing"}`, PolicyStrict)))
	})
}

func TestCombinations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		old, new   string
		want       []string
		compatible bool
	}{
		{
			name:       "type array to oneOf",
			old:        `{"type":["string","null"]}`,
			new:        `{"oneOf":[{"type":"string"},{"type":"null"}]}`,
			want:       []string{"SUM_TYPE_EXTENDED #/oneOf"},
			compatible: true,
		},
		{
			name:       "oneOf to type array",
			old:        `{"oneOf":[{"type":"string"},{"type":"null"}]}`,
			new:        `{"type":["string","null"]}`,
			want:       []string{"SUM_TYPE_EXTENDED #/oneOf"},
			compatible: true,
		},
		{
			name:       "singleton allOf unwrapped",
			old:        `{"allOf":[{"type":"string","maxLength":5}]}`,
			new:        `{"type":"string","maxLength":6}`,
			want:       []string{"MAX_LENGTH_INCREASED #/maxLength"},
			compatible: true,
		},
		{
			name:       "wrapped into a singleton anyOf",
			old:        `{"type":"string"}`,
			new:        `{"anyOf":[{"type":"string"}]}`,
			want:       []string{},
			compatible: true,
		},
		{
			name:       "flat object moved into allOf with a $ref",
			old:        `{"type":"object","properties":{"a":{"type":"string"}}}`,
			new:        `{"$defs":{"base":{"type":"object","properties":{"a":{"type":"string"}}}},"allOf":[{"$ref":"#/$defs/base"},{"required":[]}]}`,
			want:       []string{"COMBINED_TYPE_EXTENDED #/allOf", "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL #/properties/a"},
			compatible: true,
		},
		{
			name:       "allOf added that constrains",
			old:        `{"type":"object"}`,
			new:        `{"type":"object","allOf":[{"required":["a"]}]}`,
			want:       []string{"PRODUCT_TYPE_EXTENDED #/allOf"},
			compatible: false,
		},
		{
			name:       "allOf removed",
			old:        `{"type":"object","properties":{"a":{}},"allOf":[{"required":["a"]}]}`,
			new:        `{"type":"object","properties":{"a":{}}}`,
			want:       []string{"PRODUCT_TYPE_NARROWED #/allOf"},
			compatible: true,
		},
		{
			name:       "anyOf added without an alternative for old data",
			old:        `{"type":"string"}`,
			new:        `{"anyOf":[{"type":"integer"},{"type":"boolean"}]}`,
			want:       []string{"COMBINED_TYPE_SUBSCHEMAS_CHANGED #/anyOf", "TYPE_CHANGED #/type"},
			compatible: false,
		},
		{
			name:       "anyOf removed with siblings",
			old:        `{"type":"object","properties":{"kind":{}},"anyOf":[{"required":["a"]},{"required":["b"]}]}`,
			new:        `{"type":"object","properties":{"kind":{}}}`,
			want:       []string{"SUM_TYPE_EXTENDED #/anyOf"},
			compatible: true,
		},
		{
			name:       "singleton anyOf to oneOf",
			old:        `{"anyOf":[{"type":"string"}],"title":"t"}`,
			new:        `{"oneOf":[{"type":"string"}],"title":"t"}`,
			want:       []string{"COMBINED_TYPE_EXTENDED #/oneOf"},
			compatible: true,
		},
		{
			name: "alternatives reordered, one relaxed",
			old:  `{"anyOf":[{"type":"string","maxLength":5},{"type":"integer"}]}`,
			new:  `{"anyOf":[{"type":"integer"},{"type":"string","maxLength":10}]}`,
			want: []string{"MAX_LENGTH_INCREASED #/anyOf/1/maxLength"},

			compatible: true,
		},
		{
			name:       "allOf to anyOf",
			old:        `{"allOf":[{"required":["a"]},{"required":["b"]}]}`,
			new:        `{"anyOf":[{"required":["a"]},{"required":["b"]}]}`,
			want:       []string{"COMBINED_TYPE_EXTENDED #/anyOf"},
			compatible: true,
		},
		{
			name:       "anyOf to allOf",
			old:        `{"anyOf":[{"required":["a"]},{"required":["b"]}]}`,
			new:        `{"allOf":[{"required":["a"]},{"required":["b"]}]}`,
			want:       []string{"COMBINED_TYPE_CHANGED #/allOf"},
			compatible: false,
		},
		{
			name:       "not added and removed",
			old:        `{"type":"string"}`,
			new:        `{"type":"string","not":{"enum":["x"]}}`,
			want:       []string{"NOT_TYPE_EXTENDED #/not"},
			compatible: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds := diffOf(t, tc.old, tc.new, PolicyStrict)
			require.Equal(t, tc.want, kinds(ds))
			require.Equal(t, tc.compatible, IsCompatible(ds), "%v", ds)
		})
	}
	require.Equal(t, []string{"NOT_TYPE_NARROWED #/not"}, kinds(diffOf(t, `{"not":{"const":1}}`, `{}`, PolicyStrict)))
}

// TestContextualVerdicts covers the beyond-Confluent kinds whose verdict
// depends on the content model around them.
func TestContextualVerdicts(t *testing.T) {
	t.Parallel()
	runChangeCases(t, []changeCase{
		{"pattern added to closed model", `{"additionalProperties":false}`, `{"additionalProperties":false,"patternProperties":{"^x-":{"type":"string"}}}`, PatternPropertyAdded, "#/patternProperties/^x-", yes, yes},
		{"false pattern added to open model", `{}`, `{"patternProperties":{"^x-":false}}`, PatternPropertyAdded, "#/patternProperties/^x-", no, no},
		{"empty pattern added to open model", `{}`, `{"patternProperties":{"^x-":{"title":"extensions"}}}`, PatternPropertyAdded, "#/patternProperties/^x-", yes, yes},
		{"pattern added, covered by additionalProperties", `{"additionalProperties":{"type":"string","maxLength":3}}`, `{"additionalProperties":{"type":"string","maxLength":3},"patternProperties":{"^x-":{"type":"string"}}}`, PatternPropertyAdded, "#/patternProperties/^x-", yes, yes},
		{"pattern added, not covered by additionalProperties", `{"additionalProperties":{"type":"string"}}`, `{"additionalProperties":{"type":"string"},"patternProperties":{"^x-":{"type":"integer"}}}`, PatternPropertyAdded, "#/patternProperties/^x-", no, yes},
		{"pattern added, conflicts with a defined property", `{"properties":{"x-a":{"type":"integer"}},"additionalProperties":false}`, `{"properties":{"x-a":{"type":"integer"}},"additionalProperties":false,"patternProperties":{"^x-":{"type":"string"}}}`, PatternPropertyAdded, "#/patternProperties/^x-", no, no},
		{"pattern removed, closed", `{"additionalProperties":false,"patternProperties":{"^x-":{"type":"string"}}}`, `{"additionalProperties":false}`, PatternPropertyRemoved, "#/patternProperties/^x-", no, yes},
		{"false pattern removed, closed", `{"additionalProperties":false,"patternProperties":{"^x-":false}}`, `{"additionalProperties":false}`, PatternPropertyRemoved, "#/patternProperties/^x-", yes, yes},
		{"pattern removed, covered", `{"additionalProperties":{"type":"string"},"patternProperties":{"^x-":{"type":"string","format":"uri"}}}`, `{"additionalProperties":{"type":"string"}}`, PatternPropertyRemoved, "#/patternProperties/^x-", yes, yes},
		{"pattern removed, not covered", `{"additionalProperties":{"type":"string"},"patternProperties":{"^x-":{"type":"integer"}}}`, `{"additionalProperties":{"type":"string"}}`, PatternPropertyRemoved, "#/patternProperties/^x-", no, yes},
		{"removed property covered by a pattern", `{"properties":{"x-a":{"type":"string"}},"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false}`, `{"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false}`, PropertyRemovedIsCoveredByPartiallyOpenContentModel, "#/properties/x-a", yes, yes},
		{"removed property not matched by a pattern falls to open", `{"properties":{"a":{"type":"string"}},"patternProperties":{"^x-":{"type":"string"}}}`, `{"patternProperties":{"^x-":{"type":"string"}}}`, PropertyRemovedIsCoveredByPartiallyOpenContentModel, "#/properties/a", yes, yes},
		{"removed property falls to unevaluatedProperties false", `{"properties":{"a":{"type":"string"}},"unevaluatedProperties":false}`, `{"unevaluatedProperties":false}`, PropertyRemovedFromClosedContentModel, "#/properties/a", no, yes},
		{"added property to a partially open model falling to open", `{"patternProperties":{"^x-":{}}}`, `{"patternProperties":{"^x-":{}},"properties":{"a":{"type":"string"}}}`, PropertyAddedNotCoveredByPartiallyOpenContentModel, "#/properties/a", no, yes},
		{"required name without a property", `{"type":"object"}`, `{"type":"object","required":["a"]}`, RequiredAttributeAdded, "#/required/a", no, no},
	})
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	old := `{"type":"object","properties":{"a":{"type":"string"}}}`
	next := `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`
	require.False(t, IsCompatible(diffOf(t, old, next, PolicyStrict)))
	require.True(t, IsCompatible(diffOf(t, old, next, PolicyLenient)))
	require.False(t, IsCompatible(diffOf(t, old, next, "")), "the zero policy is STRICT")
	require.True(t, IsCompatible(diffOf(t, old, next, "lenient")))

	_, err := Diff(true, true, "LOOSE")
	require.ErrorIs(t, err, ErrUnknownPolicy)
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	for _, v := range []any{nil, "a string", 1.5, []any{}, json.Number("3"), []byte(`[1]`), []byte(`{`), []byte(`{} {}`), map[string]string{}} {
		_, err := Diff(v, true, PolicyStrict)
		require.ErrorIs(t, err, ErrInvalidSchema, "%#v", v)
		_, err = Diff(true, v, PolicyStrict)
		require.ErrorIs(t, err, ErrInvalidSchema, "%#v", v)
	}
	// JSON text is accepted as []byte or json.RawMessage.
	ds, err := Diff([]byte(`{"type":"string"}`), json.RawMessage(`{"type":"integer"}`), PolicyStrict)
	require.NoError(t, err)
	require.Equal(t, []string{"TYPE_CHANGED #/type"}, kinds(ds))
	// Non-schemas where a subschema is expected are the empty schema, and
	// malformed keyword values are ignored.
	ds = diffOf(t, `{"properties":{"a":5},"maxLength":"x","required":"a","items":[1]}`, `{"properties":{"a":{"type":"string"}},"maxLength":3,"items":[{}]}`, PolicyStrict)
	require.Equal(t, []string{"MAX_LENGTH_ADDED #/maxLength", "TYPE_NARROWED #/properties/a/type"}, kinds(ds))
}

func TestDeepNestingIsAnError(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	const depth = 1500
	for range depth {
		b.WriteString(`{"properties":{"a":`)
	}
	b.WriteString(`{}`)
	for range depth {
		b.WriteString(`}}`)
	}
	s := mustParse(t, b.String())
	_, err := Diff(s, s, PolicyStrict)
	require.ErrorIs(t, err, ErrInvalidSchema)
}

func TestDiffIsSortedAndDeterministic(t *testing.T) {
	t.Parallel()
	old := `{"type":"object","title":"a","properties":{"z":{"type":"string"},"b":{"type":"integer","maximum":5},"a":{"enum":[1,2]}},"required":["z","b"],"patternProperties":{"^q":{"type":"string"}},"anyOf":[{"required":["a"]},{"required":["b"]}]}`
	next := `{"type":["object","null"],"title":"b","properties":{"y":{"type":"string"},"b":{"type":"number","maximum":4},"a":{"enum":[2,3]}},"required":["b","y"],"patternProperties":{"^r":{"type":"string"}},"oneOf":[{"required":["a"]},{"required":["c"]}]}`
	first := diffOf(t, old, next, PolicyStrict)
	require.NotEmpty(t, first)
	require.True(t, sort.SliceIsSorted(first, func(i, j int) bool {
		if first[i].Pointer != first[j].Pointer {
			return first[i].Pointer < first[j].Pointer
		}
		return first[i].Type < first[j].Type
	}))
	for range 20 {
		require.Equal(t, first, diffOf(t, old, next, PolicyStrict))
	}
}

func TestDiffDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	old := `{"$defs":{"s":{"type":"string"}},"properties":{"a":{"$ref":"#/$defs/s","maxLength":3}},"anyOf":[{"type":"object"}]}`
	next := `{"oneOf":[{"type":"object"},{"type":"null"}],"properties":{"a":{"type":"string"}}}`
	a, b := mustParse(t, old), mustParse(t, next)
	_, err := Diff(a, b, PolicyStrict)
	require.NoError(t, err)
	require.Equal(t, mustParse(t, old), a)
	require.Equal(t, mustParse(t, next), b)
}

func TestParseSchema(t *testing.T) {
	t.Parallel()
	v, err := ParseSchema([]byte(` {"maximum": 1.50} `))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"maximum": json.Number("1.50")}, v)
	_, err = ParseSchema([]byte(`"string"`))
	require.ErrorIs(t, err, ErrInvalidSchema)
}

func TestDifferenceJSON(t *testing.T) {
	t.Parallel()
	d := Difference{Type: MaximumDecreased, Pointer: "#/maximum", Compatible: false, Message: "m"}
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"MAXIMUM_DECREASED","pointer":"#/maximum","compatible":false,"message":"m"}`, string(b))
	require.Equal(t, "MAXIMUM_DECREASED at #/maximum: m", d.String())
	require.True(t, IsCompatible(nil))
}

func TestHugeExponentsAreMalformed(t *testing.T) {
	t.Parallel()
	ds := diffOf(t, `{"maximum":1e999999999,"multipleOf":1e-999999999}`, `{"maximum":2e999999999}`, PolicyStrict)
	require.Empty(t, ds)
	ds = diffOf(t, `{"maximum":1e300}`, `{"maximum":1e301}`, PolicyStrict)
	require.Equal(t, []string{"MAXIMUM_INCREASED #/maximum"}, kinds(ds))
	ds = diffOf(t, `{"enum":[1e999999999]}`, `{"enum":[1E+999999999]}`, PolicyStrict)
	require.Equal(t, []string{"ENUM_ARRAY_CHANGED #/enum"}, kinds(ds), "compared as text")
}

// TestNumericIntervals compares the numeric keywords as one set: the range
// (minimum, exclusiveMinimum, maximum, exclusiveMaximum), multipleOf and
// the integer type together. compatible is the verdict of Diff(old, new);
// reverse the verdict of Diff(new, old).
func TestNumericIntervals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		old, new   string
		want       []string
		compatible bool
		reverse    bool
	}{
		{
			name: "exclusiveMinimum to a lower minimum",
			old:  `{"type":"number","exclusiveMinimum":10}`, new: `{"type":"number","minimum":5}`,
			want: []string{"LOWER_BOUND_IS_COVERED #/minimum"}, compatible: true, reverse: false,
		},
		{
			name: "exclusiveMinimum to the same minimum",
			old:  `{"type":"number","exclusiveMinimum":10}`, new: `{"type":"number","minimum":10}`,
			want: []string{"LOWER_BOUND_IS_COVERED #/minimum"}, compatible: true, reverse: false,
		},
		{
			name: "exclusiveMinimum to a higher minimum",
			old:  `{"type":"number","exclusiveMinimum":10}`, new: `{"type":"number","minimum":10.5}`,
			want:       []string{"EXCLUSIVE_MINIMUM_REMOVED #/exclusiveMinimum", "MINIMUM_ADDED #/minimum"},
			compatible: false, reverse: true,
		},
		{
			name: "integers: exclusiveMinimum 10 is minimum 11",
			old:  `{"type":"integer","exclusiveMinimum":10}`, new: `{"type":"integer","minimum":11}`,
			want: []string{"LOWER_BOUND_IS_COVERED #/minimum"}, compatible: true, reverse: true,
		},
		{
			name: "integers: exclusiveMaximum 10 is maximum 9",
			old:  `{"type":"integer","maximum":9}`, new: `{"type":"integer","exclusiveMaximum":10}`,
			want: []string{"UPPER_BOUND_IS_COVERED #/exclusiveMaximum"}, compatible: true, reverse: true,
		},
		{
			name: "numbers: exclusiveMaximum 10 is not maximum 9",
			old:  `{"type":"number","maximum":9}`, new: `{"type":"number","exclusiveMaximum":10}`,
			want: []string{"UPPER_BOUND_IS_COVERED #/exclusiveMaximum"}, compatible: true, reverse: false,
		},
		{
			name: "exclusiveMaximum to the same maximum",
			old:  `{"type":"number","exclusiveMaximum":10}`, new: `{"type":"number","maximum":10}`,
			want: []string{"UPPER_BOUND_IS_COVERED #/maximum"}, compatible: true, reverse: false,
		},
		{
			name: "integers: an exclusive bound moved inside the same gap",
			old:  `{"type":"integer","exclusiveMinimum":10}`, new: `{"type":"integer","exclusiveMinimum":10.5}`,
			want: []string{"LOWER_BOUND_IS_COVERED #/exclusiveMinimum"}, compatible: true, reverse: true,
		},
		{
			name: "numbers: the same move loses values",
			old:  `{"type":"number","exclusiveMinimum":10}`, new: `{"type":"number","exclusiveMinimum":10.5}`,
			want: []string{"EXCLUSIVE_MINIMUM_INCREASED #/exclusiveMinimum"}, compatible: false, reverse: true,
		},
		{
			name: "multiples of 5 from 5 are all at least 3",
			old:  `{"type":"number","multipleOf":5,"minimum":1}`, new: `{"type":"number","multipleOf":5,"minimum":3}`,
			want: []string{"LOWER_BOUND_IS_COVERED #/minimum"}, compatible: true, reverse: true,
		},
		{
			name: "both lower keywords, the tighter one relaxed",
			old:  `{"minimum":5,"exclusiveMinimum":3}`, new: `{"minimum":4,"exclusiveMinimum":3}`,
			want: []string{"MINIMUM_DECREASED #/minimum"}, compatible: true, reverse: false,
		},
		{
			name: "a second lower keyword that binds less",
			old:  `{"minimum":5}`, new: `{"minimum":5,"exclusiveMinimum":4}`,
			want: []string{"LOWER_BOUND_IS_COVERED #/minimum"}, compatible: true, reverse: true,
		},
		{
			name: "a second lower keyword that binds more",
			old:  `{"minimum":5}`, new: `{"minimum":5,"exclusiveMinimum":5}`,
			want: []string{"EXCLUSIVE_MINIMUM_ADDED #/exclusiveMinimum"}, compatible: false, reverse: true,
		},
		{
			name: "a bound added where there was none",
			old:  `{"type":"integer"}`, new: `{"type":"integer","exclusiveMinimum":-1}`,
			want: []string{"EXCLUSIVE_MINIMUM_ADDED #/exclusiveMinimum"}, compatible: false, reverse: true,
		},
		{
			name: "multipleOf 1 added to integers",
			old:  `{"type":"integer","minimum":0}`, new: `{"type":"integer","minimum":0,"multipleOf":1}`,
			want: []string{"MULTIPLE_OF_IS_COVERED #/multipleOf"}, compatible: true, reverse: true,
		},
		{
			name: "integers that are multiples of 1.5 are multiples of 3",
			old:  `{"type":"integer","multipleOf":1.5}`, new: `{"type":"integer","multipleOf":3}`,
			want: []string{"MULTIPLE_OF_IS_COVERED #/multipleOf"}, compatible: true, reverse: true,
		},
		{
			name: "integers that are multiples of 0.5 are multiples of 0.2",
			old:  `{"type":"integer","multipleOf":0.5}`, new: `{"type":"integer","multipleOf":0.2}`,
			want: []string{"MULTIPLE_OF_IS_COVERED #/multipleOf"}, compatible: true, reverse: true,
		},
		{
			name: "numbers that are multiples of 0.5 are not multiples of 0.2",
			old:  `{"type":"number","multipleOf":0.5}`, new: `{"type":"number","multipleOf":0.2}`,
			want: []string{"MULTIPLE_OF_CHANGED #/multipleOf"}, compatible: false, reverse: false,
		},
		{
			name: "multipleOf divides exactly, no float rounding",
			old:  `{"type":"number","multipleOf":0.3}`, new: `{"type":"number","multipleOf":0.1}`,
			want: []string{"MULTIPLE_OF_REDUCED #/multipleOf"}, compatible: true, reverse: false,
		},
		{
			name: "multipleOf 2 added to integers",
			old:  `{"type":"integer"}`, new: `{"type":"integer","multipleOf":2}`,
			want: []string{"MULTIPLE_OF_ADDED #/multipleOf"}, compatible: false, reverse: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range []Policy{PolicyStrict, PolicyLenient} {
				ds := diffOf(t, tc.old, tc.new, p)
				require.Equal(t, tc.want, kinds(ds))
				require.Equal(t, tc.compatible, IsCompatible(ds), "%v", ds)
				back := diffOf(t, tc.new, tc.old, p)
				require.Equal(t, tc.reverse, IsCompatible(back), "reverse: %v", back)
			}
		})
	}
	// The message says why.
	ds := diffOf(t, `{"type":"integer","exclusiveMinimum":10}`, `{"type":"integer","minimum":11}`, PolicyStrict)
	require.Equal(t, "the lower bound changed from exclusiveMinimum 10 to minimum 11, which admits every number the previous schema accepted (integers at least 11)", ds[0].Message)
	ds = diffOf(t, `{"type":"number","exclusiveMinimum":10}`, `{"type":"number","minimum":5}`, PolicyStrict)
	require.Equal(t, "the lower bound changed from exclusiveMinimum 10 to minimum 5, which admits every number the previous schema accepted (numbers above 10)", ds[0].Message)
	ds = diffOf(t, `{"type":"integer","multipleOf":0.5}`, `{"type":"integer","multipleOf":0.2}`, PolicyStrict)
	require.Equal(t, "multipleOf changed from 0.5 to 0.2: the previous schema accepted only integers, all multiples of 0.2", ds[0].Message)
}

// TestConditionalsInContext compares if/then/else case by case: each
// branch together with the schema around it.
func TestConditionalsInContext(t *testing.T) {
	t.Parallel()
	// A payment: a card number when kind is "card".
	const base = `"type":"object","properties":{"kind":{"enum":["card","bank"]},"card":{"type":"string","maxLength":20},"iban":{"type":"string"}}`
	const cond = `"if":{"properties":{"kind":{"const":"card"}},"required":["kind"]}`
	obj := func(parts ...string) string { return "{" + strings.Join(append([]string{base}, parts...), ",") + "}" }
	tests := []struct {
		name       string
		old, new   string
		want       []string
		compatible bool
		reverse    bool // the verdict of Diff(new, old)
	}{
		{
			name:       "a constraint moved from the schema into the branch it matters for",
			old:        obj(`"required":["kind","card"]`, cond, `"then":{"properties":{"card":{"minLength":12}}}`),
			new:        obj(`"required":["kind"]`, cond, `"then":{"required":["card"],"properties":{"card":{"minLength":12}}}`),
			want:       []string{"REQUIRED_ATTRIBUTE_REMOVED #/required/card"},
			compatible: true, reverse: false,
		},
		{
			name:       "the same constraint in both branches is the constraint in the schema",
			old:        obj(cond, `"then":{"required":["card"]}`, `"else":{"required":["card"]}`),
			new:        obj(`"required":["card"]`, cond, `"then":{}`, `"else":{}`),
			want:       []string{},
			compatible: true, reverse: true,
		},
		{
			name:       "a branch that restates the schema",
			old:        obj(),
			new:        obj(cond, `"then":{"properties":{"card":{"type":"string"}}}`),
			want:       []string{"CONDITIONAL_ADDED_IS_COVERED #/if"},
			compatible: true, reverse: true,
		},
		{
			name:       "a branch that requires what was always required",
			old:        obj(`"required":["card"]`),
			new:        obj(`"required":["card"]`, cond, `"then":{"required":["card"],"properties":{"card":{"maxLength":30}}}`),
			want:       []string{"CONDITIONAL_ADDED_IS_COVERED #/if"},
			compatible: true, reverse: true,
		},
		{
			name:       "a branch that adds a requirement",
			old:        obj(),
			new:        obj(cond, `"then":{"required":["card"]}`),
			want:       []string{"CONDITIONAL_ADDED #/if", "REQUIRED_ATTRIBUTE_ADDED #/then/required/card"},
			compatible: false, reverse: true,
		},
		{
			name:       "a branch that tightens a property of the schema",
			old:        obj(),
			new:        obj(cond, `"then":{"properties":{"card":{"maxLength":16}}}`),
			want:       []string{"CONDITIONAL_ADDED #/if", "MAX_LENGTH_DECREASED #/then/properties/card/maxLength"},
			compatible: false, reverse: true,
		},
		{
			name:       "a conditional replaced by the schema requiring one branch",
			old:        obj(cond, `"then":{"required":["card"]}`, `"else":{"required":["iban"]}`),
			new:        obj(`"required":["card"]`),
			want:       []string{"REQUIRED_ATTRIBUTE_REMOVED #/else/required/iban", "CONDITIONAL_REMOVED #/if", "REQUIRED_ATTRIBUTE_ADDED #/required/card"},
			compatible: false, reverse: false,
		},
		{
			name:       "the schema changes in both cases",
			old:        obj(cond, `"then":{"required":["card"]}`),
			new:        `{"type":"object","properties":{"kind":{"enum":["card","bank"]},"card":{"type":"string","maxLength":19},"iban":{"type":"string"}},` + cond + `,"then":{"required":["card"]}}`,
			want:       []string{"MAX_LENGTH_DECREASED #/properties/card/maxLength"},
			compatible: false, reverse: true,
		},
		{
			name:       "the if changed and the branches differ",
			old:        obj(cond, `"then":{"required":["card"]}`),
			new:        obj(`"if":{"required":["card"]}`, `"then":{"required":["card"]}`),
			want:       []string{"CONDITIONAL_CHANGED #/if"},
			compatible: false, reverse: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds := diffOf(t, tc.old, tc.new, PolicyStrict)
			require.Equal(t, tc.want, kinds(ds))
			require.Equal(t, tc.compatible, IsCompatible(ds), "%v", ds)
			back := diffOf(t, tc.new, tc.old, PolicyStrict)
			require.Equal(t, tc.reverse, IsCompatible(back), "reverse: %v", back)
			require.Empty(t, diffOf(t, tc.old, tc.old, PolicyStrict))
		})
	}

	t.Run("a difference of one case says which", func(t *testing.T) {
		t.Parallel()
		ds := diffOf(t, tests[0].old, tests[0].new, PolicyStrict)
		require.Equal(t, `"card" is no longer required (when the if condition does not hold)`, ds[0].Message)
	})
	t.Run("unevaluatedProperties sees the branch's properties", func(t *testing.T) {
		t.Parallel()
		// In the then case, card is evaluated by the branch and allowed;
		// without the branch's property it falls to unevaluatedProperties.
		const s = `{"type":"object","properties":{"kind":{}},"unevaluatedProperties":false,` + cond + `,"then":{"properties":{%s}}}`
		old, next := fmt.Sprintf(s, `"card":{"type":"string"}`), fmt.Sprintf(s, "")
		ds := diffOf(t, old, next, PolicyStrict)
		require.Equal(t, []string{"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL #/then/properties/card"}, kinds(ds))
		require.False(t, IsCompatible(ds))
		require.True(t, IsCompatible(diffOf(t, old, next, PolicyLenient)))
		require.True(t, IsCompatible(diffOf(t, next, old, PolicyStrict)))
	})
	t.Run("additionalProperties does not see the branch's properties", func(t *testing.T) {
		t.Parallel()
		// additionalProperties false forbids card whatever the branch says:
		// dropping the branch's schema for card changes nothing.
		const s = `{"type":"object","properties":{"kind":{}},"additionalProperties":false,` + cond + `,"then":{"properties":{%s}}}`
		ds := diffOf(t, fmt.Sprintf(s, `"card":{"type":"string"}`), fmt.Sprintf(s, `"card":{"type":"integer"}`), PolicyStrict)
		require.True(t, IsCompatible(ds), "%v", ds)
	})
	t.Run("conditionals in properties", func(t *testing.T) {
		t.Parallel()
		old := `{"properties":{"pay":` + obj(`"required":["kind","card"]`, cond, `"then":{}`) + `}}`
		next := `{"properties":{"pay":` + obj(`"required":["kind"]`, cond, `"then":{"required":["card"]}`) + `}}`
		ds := diffOf(t, old, next, PolicyStrict)
		require.Equal(t, []string{"REQUIRED_ATTRIBUTE_REMOVED #/properties/pay/required/card"}, kinds(ds))
		require.True(t, IsCompatible(ds))
	})
	t.Run("a branch referring back to its schema terminates", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{
			`{"if":{"required":["a"]},"then":{"$ref":"#"},"else":{"maxProperties":3}}`,
			`{"$defs":{"n":{"if":{"type":"object"},"then":{"properties":{"next":{"$ref":"#/$defs/n"}}}}},"$ref":"#/$defs/n"}`,
			`{"if":true,"then":{"$ref":"#/else"},"else":{"$ref":"#/then"}}`,
		} {
			for _, other := range []string{s, `{"maxProperties":2}`, `{"if":{"required":["b"]},"then":{"$ref":"#"}}`} {
				_, err := Diff(mustParse(t, s), mustParse(t, other), PolicyStrict)
				require.NoError(t, err, s)
				_, err = Diff(mustParse(t, other), mustParse(t, s), PolicyStrict)
				require.NoError(t, err, s)
			}
			require.Empty(t, diffOf(t, s, s, PolicyStrict), s)
		}
	})
}
