package storable_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/storable"
)

func TestText(t *testing.T) {
	t.Parallel()
	require.Empty(t, storable.Text("any text, é, \u2028, \U0001F600, \x01"))
	require.Equal(t, storable.NUL, storable.Text("a\x00b"))
	require.Equal(t, storable.InvalidUTF8, storable.Text("\xff"))
}

func TestJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		json, pointer, reason string
	}{
		{`{"a":"\u0000"}`, "/a", storable.NUL},
		{`{"a" : [1, true, null, {"b":["x", "y\u0000"]}]}`, "/a/3/b/1", storable.NUL},
		{`{"k\u0000":1}`, `/k\u0000`, storable.NUL},
		{`{"a/b":{"c~d":"\u0000"}}`, "/a~1b/c~0d", storable.NUL},
		{`{"\u00e9":{"x":"\u0000"}}`, "/\u00e9/x", storable.NUL},
		{`"\u0000"`, "", storable.NUL},
		{`["\ud800"]`, "/0", storable.Surrogate},
		{`{"s":"\udc00"}`, "/s", storable.Surrogate},
		{`{"s":"\ud800\u0041"}`, "/s", storable.Surrogate},
		{`{"s":"\ud800"`, "/s", storable.Surrogate},
		{`{"ok":"\ud83d\ude00", "n": -1.5e3, "e": "\\u0000", "q":"\"\u0000"}`, "/q", storable.NUL},
	} {
		ptr, reason, ok := storable.JSON([]byte(tc.json))
		require.False(t, ok, tc.json)
		require.Equal(t, tc.pointer, ptr, tc.json)
		require.Equal(t, tc.reason, reason, tc.json)
	}
	for _, good := range []string{
		`{}`, `[]`, `"x"`, `1`, `{"a":"\\u0000"}`, `{"s":"\ud83d\ude00","t":"\u0001\u2028\u00e9"}`,
		`{"a":[{"b":{"c":[1,2,{"d":"\u0041"}]}}]}`,
	} {
		require.True(t, json.Valid([]byte(good)), good)
		_, _, ok := storable.JSON([]byte(good))
		require.True(t, ok, good)
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, `["\ud800"]`, `{"k\u0000":{"x":[1,"\udc00"]}}`, `{"a":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		_, reason, ok := storable.JSON([]byte(s))
		// Numbers as written: a valid one may overflow float64 (testdata).
		var v any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&v))
		// What the scanner passes, Go decodes to strings without NUL (Go
		// turns unpaired surrogates into U+FFFD, so only NUL is checked).
		if ok {
			require.False(t, holdsNUL(v), s)
		} else {
			require.NotEmpty(t, reason)
		}
	})
}

func holdsNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case []any:
		for _, e := range x {
			if holdsNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}
