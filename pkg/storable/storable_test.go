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
		var v any
		require.NoError(t, json.Unmarshal([]byte(s), &v))
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

// TestJSONNumbers: numbers jsonb's numeric cannot hold are named, at the
// exact edges PostgreSQL 15 draws (every value below was cast to jsonb on
// the server: the first list fails with "value overflows numeric format",
// the second is stored).
func TestJSONNumbers(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"1e200000", "1E+131072", "100e131070", "0.01e131074", "-1e131072", "1e-16384", "0e-20000", "0.0e-16383",
		"12345e-16384", "0e1073741823", "0e-1073741823", "0e99999999999999999999", "1" + strings.Repeat("0", 131072),
		"0." + strings.Repeat("1", 16384),
	} {
		ptr, reason, ok := storable.JSON([]byte(`{"a":[1,` + bad + `]}`))
		require.False(t, ok, bad)
		require.Equal(t, "/a/1", ptr, bad)
		require.Equal(t, storable.Number, reason, bad)
	}
	for _, good := range []string{
		"0e200000", "1.5e131070", "100e131069", "99e131070", "12345e-16383", "1e-16383", "-1e131071", "1E+131071",
		"0.01e131073", "0e1073741822", "1" + strings.Repeat("0", 131071), "0." + strings.Repeat("1", 16383),
		"-0.5e-3", "123456789012345678901234567890",
	} {
		_, reason, ok := storable.JSON([]byte(`{"a":[` + good + `]}`))
		require.True(t, ok, "%s: %s", good, reason)
	}
}
