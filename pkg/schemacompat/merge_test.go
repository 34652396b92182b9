package schemacompat

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// nodeOf resolves a schema text as the root of a side named name.
func nodeOf(t *testing.T, name, s string) node {
	t.Helper()
	v := mustParse(t, s)
	return newSide(name, v, newLoadCache(nil)).root.nodeAt(v, "", nil)
}

// TestConj checks the schema conj assembles against the same schema
// written out: no differences either way.
func TestConj(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, x, y, want string
	}{
		{"types and lengths", `{"type":["string","null"],"maxLength":10}`, `{"type":"string","maxLength":5,"minLength":1}`, `{"type":"string","maxLength":5,"minLength":1}`},
		{"enum and const", `{"enum":[1,2,3]}`, `{"const":2}`, `{"enum":[2]}`},
		{"bounds keyword by keyword", `{"minimum":1,"exclusiveMaximum":10}`, `{"minimum":3,"maximum":10}`, `{"minimum":3,"exclusiveMaximum":10,"maximum":10}`},
		{"draft-04 bounds", `{"minimum":1,"exclusiveMinimum":true}`, `{"minimum":0}`, `{"exclusiveMinimum":1,"minimum":0}`},
		{"multipleOf, least common multiple", `{"multipleOf":0.5}`, `{"multipleOf":0.2}`, `{"multipleOf":1}`},
		{"required and properties", `{"required":["a"],"properties":{"a":{"maxLength":3}}}`, `{"required":["b"],"properties":{"a":{"minLength":1},"b":{}}}`,
			`{"required":["a","b"],"properties":{"a":{"maxLength":3,"minLength":1},"b":{}}}`},
		{"a name the other side forbids", `{"properties":{"a":{}},"additionalProperties":false}`, `{"properties":{"b":{"type":"string"}}}`,
			`{"properties":{"a":{},"b":false},"additionalProperties":false}`},
		{"items", `{"items":{"type":"string"}}`, `{"items":{"maxLength":2}}`, `{"items":{"type":"string","maxLength":2}}`},
		{"two patterns", `{"pattern":"^a"}`, `{"pattern":"b$"}`, `{"pattern":"^a","allOf":[{"pattern":"b$"}]}`},
		{"allOf concatenated", `{"allOf":[{"minLength":1}]}`, `{"allOf":[{"maxLength":9}],"not":{"const":"x"}}`, `{"allOf":[{"minLength":1},{"maxLength":9}],"not":{"const":"x"}}`},
		{"uniqueItems and reserved names", `{"uniqueItems":false,"x-reserved":"a"}`, `{"uniqueItems":true,"x-reserved":["b"]}`, `{"uniqueItems":true,"x-reserved":["a","b"]}`},
		{"an empty side", `{"maxLength":3}`, `{"title":"t"}`, `{"maxLength":3}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newComparer(PolicyStrict)
			got := conj(nodeOf(t, "X", tc.x), nodeOf(t, "Y", tc.y), false)
			want := nodeOf(t, "W", tc.want)
			require.Empty(t, c.compare(got, want), "assembled to written")
			require.Empty(t, c.compare(want, got), "written to assembled")
		})
	}
	t.Run("nothing in common", func(t *testing.T) {
		t.Parallel()
		require.True(t, conj(nodeOf(t, "X", `{"type":"string"}`), nodeOf(t, "Y", `{"type":"integer"}`), false).isFalse)
		require.True(t, conj(nodeOf(t, "X", `{"enum":[1]}`), nodeOf(t, "Y", `{"const":2}`), false).isFalse)
		require.True(t, conj(nodeOf(t, "X", `false`), nodeOf(t, "Y", `{}`), false).isFalse)
	})
	t.Run("lift", func(t *testing.T) {
		t.Parallel()
		// Around a branch, unevaluatedProperties does not reach the
		// branch's properties; between two independent schemas it does.
		x := nodeOf(t, "X", `{"properties":{"a":{}},"unevaluatedProperties":false}`)
		y := nodeOf(t, "Y", `{"properties":{"b":{"type":"string"}}}`)
		c := newComparer(PolicyStrict)
		require.Empty(t, c.compare(conj(x, y, true), nodeOf(t, "W", `{"properties":{"a":{},"b":{"type":"string"}},"unevaluatedProperties":false}`)))
		require.Empty(t, c.compare(conj(x, y, false), nodeOf(t, "V", `{"properties":{"a":{},"b":false},"unevaluatedProperties":false}`)))
	})
}
