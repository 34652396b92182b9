package billing

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePath(t *testing.T) {
	t.Parallel()
	data, err := decodeData([]byte(`{"a":{"b c":[1,{"d":2.50}]},"x":null,"n":7}`))
	require.NoError(t, err)
	for _, tc := range []struct {
		path, pointer, value string
		found                bool
	}{
		{"$.n", "/n", "7", true},
		{"$['a']['b c'][1].d", "/a/b c/1/d", "2.50", true},
		{`$["a"]["b c"][0]`, "/a/b c/0", "1", true},
		{"$.a['b c'][5]", "/a/b c/5", "", false},
		{"$.x", "/x", "", false},
		{"$.missing.deeper", "/missing/deeper", "", false},
		{"$.n[0]", "/n/0", "", false},
	} {
		p, err := ParsePath(tc.path)
		require.NoError(t, err, tc.path)
		require.Equal(t, tc.pointer, p.Pointer(), tc.path)
		v, ok := p.Lookup(data)
		require.Equal(t, tc.found, ok, tc.path)
		if ok {
			s, _ := scalarText(v)
			require.Equal(t, tc.value, s, tc.path)
		}
	}
	for _, bad := range []string{"", "tokens", "$", "$.", "$..a", "$.a[*]", "$.a[-1]", "$.a[?(@.x)]", "$['a'", "$.a b"} {
		_, err := ParsePath(bad)
		require.Error(t, err, bad)
	}
}

func TestCheckPath(t *testing.T) {
	t.Parallel()
	schema, err := decodeData([]byte(`{
	  "type": "object",
	  "properties": {
	    "tokens": {"type": "integer"},
	    "model": {"type": "string"},
	    "usage": {"$ref": "#/$defs/usage"},
	    "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": ["number", "null"]}}}},
	    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
	    "open": {"type": "object"},
	    "either": {"anyOf": [{"type": "object", "properties": {"a": {"type": "number"}}}, {"type": "object", "properties": {"b": {"type": "string"}}}]},
	    "elsewhere": {"$ref": "urn:prost:schema:other:1"}
	  },
	  "$defs": {"usage": {"type": "object", "properties": {"input": {"type": "number"}}}}
	}`))
	require.NoError(t, err)
	for _, tc := range []struct {
		path     string
		produced bool
		at       string
		numeric  bool
	}{
		{"$.tokens", true, "", true},
		{"$.model", true, "", false},
		{"$.tokns", false, "$.tokns", false},
		{"$.usage.input", true, "", true},
		{"$.usage.output", false, "$.usage.output", false},
		{"$.items[3].n", true, "", true},
		{"$.labels.region", true, "", false},
		{"$.open.anything", false, "$.open.anything", false},
		{"$.either.a", true, "", true},
		{"$.either.b", true, "", false},
		{"$.either.c", false, "$.either.c", false},
		{"$.elsewhere.deep", true, "", true}, // cannot be followed: not refused
	} {
		c := checkPath(schema, mustPath(t, tc.path))
		require.Equal(t, tc.produced, c.produced, tc.path)
		require.Equal(t, tc.at, c.at, tc.path)
		if tc.produced {
			require.Equal(t, tc.numeric, c.numeric(), tc.path)
		}
	}
}

func mustPath(t *testing.T, s string) Path {
	t.Helper()
	p, err := ParsePath(s)
	require.NoError(t, err)
	return p
}
