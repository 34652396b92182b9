package schemacompat

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReferencesByIDAndAnchor resolves references the way the validator
// does: to $id (absolute, or relative to the base URI), to plain-name
// anchors, and JSON pointers from the resource they are in. Each case's
// old and new differ inside the referenced schema only, so a reference that
// did not resolve would be compared by its text and find nothing.
func TestReferencesByIDAndAnchor(t *testing.T) {
	t.Parallel()
	// money renders a schema that uses the $defs entry "money" (with
	// %[1]s as its minimum) through the reference %[2]s.
	tests := []struct {
		name   string
		schema string // with %[1]s for a minimum and %[2]s nowhere else
		want   []string
	}{
		{
			name:   "absolute $id",
			schema: `{"$defs":{"m":{"$id":"https://example.com/money","type":"number","minimum":%s}},"properties":{"price":{"$ref":"https://example.com/money"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
		{
			name:   "$id relative to the root's $id",
			schema: `{"$id":"https://example.com/schemas/order","$defs":{"m":{"$id":"money","type":"number","minimum":%s}},"properties":{"price":{"$ref":"money"},"tax":{"$ref":"https://example.com/schemas/money"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum", "MINIMUM_INCREASED #/properties/tax/minimum"},
		},
		{
			name:   "relative $id without a base URI",
			schema: `{"$defs":{"m":{"$id":"money.json","type":"number","minimum":%s}},"properties":{"price":{"$ref":"money.json"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
		{
			name:   "$anchor",
			schema: `{"$defs":{"m":{"$anchor":"money","type":"number","minimum":%s}},"properties":{"price":{"$ref":"#money"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
		{
			name:   "$anchor inside another resource",
			schema: `{"$id":"https://example.com/order","$defs":{"lib":{"$id":"lib","$defs":{"m":{"$anchor":"money","type":"number","minimum":%s}}}},"properties":{"price":{"$ref":"lib#money"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
		{
			name:   "$dynamicAnchor as a plain anchor",
			schema: `{"$defs":{"m":{"$dynamicAnchor":"money","type":"number","minimum":%s}},"properties":{"price":{"$ref":"#money"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
		{
			name: "a JSON pointer resolves from the resource it is in",
			// lib's "#/$defs/m" is lib's own m, not the root's.
			schema: `{"$defs":{"m":{"type":"string"},"lib":{"$id":"https://example.com/lib","$defs":{"m":{"type":"number","minimum":%s}},"properties":{"price":{"$ref":"#/$defs/m"}}}},"$ref":"https://example.com/lib"}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
		{
			name:   "percent-encoded anchor",
			schema: `{"$defs":{"m":{"$anchor":"my-money","type":"number","minimum":%s}},"properties":{"price":{"$ref":"#my%%2Dmoney"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
		{
			name:   "draft-07 $id fragment as an anchor",
			schema: `{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"m":{"$id":"#money","type":"number","minimum":%s}},"properties":{"price":{"$ref":"#money"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
		{
			name:   "draft-04 id",
			schema: `{"$schema":"http://json-schema.org/draft-04/schema#","id":"https://example.com/order","definitions":{"m":{"id":"money","type":"number","minimum":%s}},"properties":{"price":{"$ref":"money"}}}`,
			want:   []string{"MINIMUM_INCREASED #/properties/price/minimum"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			old, next := fmt.Sprintf(tc.schema, "0"), fmt.Sprintf(tc.schema, "1")
			require.Equal(t, tc.want, kinds(diffOf(t, old, next, PolicyStrict)))
			require.Empty(t, diffOf(t, old, old, PolicyStrict))
		})
	}
}

func TestReferenceEdgeCases(t *testing.T) {
	t.Parallel()
	t.Run("draft-07 ignores the siblings of $ref", func(t *testing.T) {
		t.Parallel()
		const s = `{%s"definitions":{"s":{"type":"string","maxLength":10}},"properties":{"p":{"$ref":"#/definitions/s","maxLength":%d}}}`
		d7 := `"$schema":"http://json-schema.org/draft-07/schema#",`
		require.Empty(t, diffOf(t, fmt.Sprintf(s, d7, 8), fmt.Sprintf(s, d7, 5), PolicyStrict))
		require.Equal(t, []string{"MAX_LENGTH_DECREASED #/properties/p/maxLength"},
			kinds(diffOf(t, fmt.Sprintf(s, "", 8), fmt.Sprintf(s, "", 5), PolicyStrict)), "2020-12 applies them")
	})
	t.Run("an $id next to a draft-07 $ref is ignored", func(t *testing.T) {
		t.Parallel()
		// The validator ignores the $id, so "#/definitions/s" inside p is
		// the root's s.
		const s = `{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"s":{"type":"string","maxLength":%d}},"properties":{"p":{"$id":"https://example.com/p","$ref":"#/definitions/s"}}}`
		require.Equal(t, []string{"MAX_LENGTH_DECREASED #/properties/p/maxLength"}, kinds(diffOf(t, fmt.Sprintf(s, 8), fmt.Sprintf(s, 5), PolicyStrict)))
	})
	t.Run("unknown anchor and unknown $id stay unresolved", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, []string{"TYPE_CHANGED #/$ref"}, kinds(diffOf(t, `{"$ref":"#nope"}`, `{"$ref":"#other"}`, PolicyStrict)))
		require.Equal(t, []string{"SCHEMA_ADDED #/$ref"}, kinds(diffOf(t, `{}`, `{"$ref":"other.json"}`, PolicyStrict)))
	})
	t.Run("cycles through $id and anchors terminate", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{
			`{"$defs":{"a":{"$id":"a","$ref":"b"},"b":{"$id":"b","$ref":"a"}},"$ref":"a"}`,
			`{"$defs":{"a":{"$anchor":"a","$ref":"#b"},"b":{"$anchor":"b","$ref":"#a"}},"$ref":"#a"}`,
			`{"$id":"https://example.com/t","$anchor":"t","properties":{"next":{"$ref":"#t"},"also":{"$ref":"https://example.com/t"}}}`,
			`{"$dynamicAnchor":"n","items":{"$dynamicRef":"#n"}}`,
		} {
			for _, other := range []string{s, `{"type":"string"}`, `true`} {
				_, err := Diff(mustParse(t, s), mustParse(t, other), PolicyStrict)
				require.NoError(t, err, s)
				_, err = Diff(mustParse(t, other), mustParse(t, s), PolicyStrict)
				require.NoError(t, err, s)
			}
			require.Empty(t, diffOf(t, s, s, PolicyStrict), s)
		}
	})
	t.Run("recursive schema through an anchor", func(t *testing.T) {
		t.Parallel()
		const s = `{"$anchor":"node","type":"object","properties":{"value":{"type":%q},"next":{"$ref":"#node"}}}`
		require.Equal(t, []string{"TYPE_EXTENDED #/properties/value/type"},
			kinds(diffOf(t, fmt.Sprintf(s, "integer"), fmt.Sprintf(s, "number"), PolicyStrict)))
	})
	t.Run("a pointer into a place no keyword makes a subschema", func(t *testing.T) {
		t.Parallel()
		// x-lib is not a schema keyword: the $id inside it is found when a
		// pointer reaches it, and "#/$defs/m" then resolves from it.
		const s = `{"x-lib":{"$id":"https://example.com/lib","$defs":{"m":{"minimum":%d}},"$ref":"#/$defs/m"},"properties":{"p":{"$ref":"#/x-lib"}}}`
		require.Equal(t, []string{"MINIMUM_INCREASED #/properties/p/minimum"}, kinds(diffOf(t, fmt.Sprintf(s, 0), fmt.Sprintf(s, 1), PolicyStrict)))
	})
}

// TestDynamicReferences resolves $dynamicRef (2020-12) and $recursiveRef
// (2019-09) through the dynamic scope: the extension of a recursive schema
// applies to its nested nodes too.
func TestDynamicReferences(t *testing.T) {
	t.Parallel()
	// A reference back to a schema being compared closes a cycle and adds
	// nothing, so each case changes where a dynamic reference leads.
	t.Run("$dynamicRef", func(t *testing.T) {
		t.Parallel()
		// strict-tree extends tree. With its $dynamicAnchor, tree's
		// children ("#node") are strict trees; without it, plain trees.
		const s = `{"$id":"https://example.com/strict-tree",%s"$ref":"tree","unevaluatedProperties":false,
			"$defs":{"tree":{"$id":"tree","$dynamicAnchor":"node","type":"object",
				"properties":{"data":true,"children":{"type":"array","items":{"$dynamicRef":"#node"}}}}}}`
		strict, plain := fmt.Sprintf(s, `"$dynamicAnchor":"node",`), fmt.Sprintf(s, "")
		// The children are another resource now: ID_CHANGED says so.
		require.Equal(t, []string{"ID_CHANGED #/properties/children/items/$id", "UNEVALUATED_PROPERTIES_ADDED #/properties/children/items/unevaluatedProperties"},
			kinds(diffOf(t, strict, plain, PolicyStrict)))
		require.Equal(t, []string{"ID_CHANGED #/properties/children/items/$id", "UNEVALUATED_PROPERTIES_REMOVED #/properties/children/items/unevaluatedProperties"},
			kinds(diffOf(t, plain, strict, PolicyStrict)))
		require.Empty(t, diffOf(t, strict, strict, PolicyStrict))
	})
	t.Run("$dynamicRef whose first target is a plain $anchor is a $ref", func(t *testing.T) {
		t.Parallel()
		const s = `{"$id":"https://example.com/outer","$dynamicAnchor":"node","type":"object","maxProperties":5,
			"properties":{"inner":{"$ref":"inner"}},
			"$defs":{"inner":{"$id":"inner",%q:"node","type":"object","properties":{"x":{"$dynamicRef":"#node"}}}}}`
		// With $anchor, x is inner; with $dynamicAnchor, x is outer.
		ds := diffOf(t, fmt.Sprintf(s, "$anchor"), fmt.Sprintf(s, "$dynamicAnchor"), PolicyStrict)
		require.Contains(t, kinds(ds), "MAX_PROPERTIES_ADDED #/properties/inner/properties/x/maxProperties")
	})
	t.Run("$recursiveRef", func(t *testing.T) {
		t.Parallel()
		const s = `{"$schema":"https://json-schema.org/draft/2019-09/schema","$id":"https://example.com/strict",%s"$ref":"tree","maxProperties":3,
			"$defs":{"tree":{"$id":"tree","$recursiveAnchor":true,"type":"object","properties":{"children":{"items":{"$recursiveRef":"#"}}}}}}`
		strict, plain := fmt.Sprintf(s, `"$recursiveAnchor":true,`), fmt.Sprintf(s, "")
		require.Equal(t, []string{"ID_CHANGED #/properties/children/items/$id", "MAX_PROPERTIES_REMOVED #/properties/children/items/maxProperties"},
			kinds(diffOf(t, strict, plain, PolicyStrict)))
		require.Empty(t, diffOf(t, strict, strict, PolicyStrict))
	})
}

// mapLoader serves documents by URI and counts the loads.
type mapLoader struct {
	docs  map[string]string
	calls map[string]int
	fail  error
}

func (l *mapLoader) Load(uri string) (any, error) {
	if l.calls == nil {
		l.calls = map[string]int{}
	}
	l.calls[uri]++
	if l.fail != nil {
		return nil, l.fail
	}
	s, ok := l.docs[uri]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnresolvable, uri)
	}
	return []byte(s), nil
}

// TestLoader resolves references to other documents, such as the
// registry's urn:prost:schema:<subject>:<version>, through a Loader.
func TestLoader(t *testing.T) {
	t.Parallel()
	docs := map[string]string{
		"urn:prost:schema:money:1": `{"type":"number","maximum":100,"$defs":{"cents":{"type":"integer"}}}`,
		"urn:prost:schema:money:2": `{"type":"number","maximum":50,"$defs":{"cents":{"type":"integer"}}}`,
		"urn:prost:schema:price:1": `{"type":"object","properties":{"amount":{"$ref":"urn:prost:schema:money:1"},"cents":{"$ref":"urn:prost:schema:money:1#/$defs/cents"}}}`,
		"urn:prost:schema:price:2": `{"type":"object","properties":{"amount":{"$ref":"urn:prost:schema:money:2"},"cents":{"$ref":"urn:prost:schema:money:2#/$defs/cents"}}}`,
		"urn:prost:schema:loop:1":  `{"properties":{"next":{"$ref":"urn:prost:schema:loop:1"},"n":{"maximum":3}}}`,
		"urn:prost:schema:loop:2":  `{"properties":{"next":{"$ref":"urn:prost:schema:loop:2"},"n":{"maximum":2}}}`,
	}
	ref := func(u string) any { return mustParse(t, `{"properties":{"price":{"$ref":"`+u+`"}}}`) }

	t.Run("versions of a referenced subject", func(t *testing.T) {
		t.Parallel()
		k := Checker{Loader: &mapLoader{docs: docs}}
		ds, err := k.Diff(ref("urn:prost:schema:money:1"), ref("urn:prost:schema:money:2"))
		require.NoError(t, err)
		require.Equal(t, []string{"MAXIMUM_DECREASED #/properties/price/maximum"}, kinds(ds))
		// Without a Loader the references are compared by their text.
		ds, err = Diff(ref("urn:prost:schema:money:1"), ref("urn:prost:schema:money:2"), PolicyStrict)
		require.NoError(t, err)
		require.Equal(t, []string{"TYPE_CHANGED #/properties/price/$ref"}, kinds(ds))
	})
	t.Run("references inside loaded documents", func(t *testing.T) {
		t.Parallel()
		k := Checker{Loader: &mapLoader{docs: docs}}
		ds, err := k.Diff(ref("urn:prost:schema:price:1"), ref("urn:prost:schema:price:2"))
		require.NoError(t, err)
		require.Equal(t, []string{"MAXIMUM_DECREASED #/properties/price/properties/amount/maximum"}, kinds(ds))
	})
	t.Run("a cycle of documents terminates", func(t *testing.T) {
		t.Parallel()
		k := Checker{Loader: &mapLoader{docs: docs}}
		ds, err := k.Diff(ref("urn:prost:schema:loop:1"), ref("urn:prost:schema:loop:2"))
		require.NoError(t, err)
		require.Equal(t, []string{"MAXIMUM_DECREASED #/properties/price/properties/n/maximum"}, kinds(ds))
	})
	t.Run("a schema inlined instead of referenced", func(t *testing.T) {
		t.Parallel()
		k := Checker{Loader: &mapLoader{docs: docs}}
		ds, err := k.Diff(ref("urn:prost:schema:money:1"), mustParse(t, `{"properties":{"price":{"type":"number","maximum":100}}}`))
		require.NoError(t, err)
		require.Empty(t, ds)
	})
	t.Run("each document is loaded once per Check", func(t *testing.T) {
		t.Parallel()
		l := &mapLoader{docs: docs}
		res, err := Checker{Loader: l}.Check(ModeFullTransitive,
			[]any{ref("urn:prost:schema:price:1"), ref("urn:prost:schema:price:1")}, ref("urn:prost:schema:price:2"))
		require.NoError(t, err)
		require.False(t, res.Compatible)
		for u, n := range l.calls {
			require.Equal(t, 1, n, u)
		}
		require.Len(t, l.calls, 4) // price 1 and 2, money 1 and 2
	})
	t.Run("unresolvable and failing loads", func(t *testing.T) {
		t.Parallel()
		k := Checker{Loader: &mapLoader{docs: docs}}
		ds, err := k.Diff(ref("urn:prost:schema:gone:1"), ref("urn:prost:schema:gone:2"))
		require.NoError(t, err)
		require.Equal(t, []string{"TYPE_CHANGED #/properties/price/$ref"}, kinds(ds))

		boom := errors.New("database down")
		_, err = Checker{Loader: &mapLoader{fail: boom}}.Diff(ref("urn:prost:schema:money:1"), ref("urn:prost:schema:money:1"))
		require.ErrorIs(t, err, boom)
		_, err = Checker{Loader: &mapLoader{fail: boom}}.Check(ModeBackward, []any{ref("urn:x:1")}, true)
		require.ErrorIs(t, err, boom)

		_, err = Checker{Loader: &mapLoader{docs: map[string]string{"urn:x:1": `[1]`}}}.Diff(ref("urn:x:1"), true)
		require.ErrorIs(t, err, ErrInvalidSchema)
	})
}
