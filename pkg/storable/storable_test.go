package storable_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/storable"
)

func TestMain(m *testing.M) { prosttest.MainNoDatabase(m) }

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

// TestNumbersAsPostgresSays: storable.JSON refuses a number exactly when
// Postgres's jsonb does, at every edge of numeric (the digits before and
// after the point, the exponent either way).
func TestNumbersAsPostgresSays(t *testing.T) {
	t.Parallel()
	conn, err := pgx.Connect(t.Context(), prosttest.ServerURL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var numbers []string
	for _, m := range []string{"0", "-0.0", "1", "10", "9.9", "0.01", "1.0000", "100", "-5", "0.000", "123.456"} {
		for _, e := range []string{"", "e0", "E+3", "e-16384", "e-16383", "e-16382", "e-16381", "e-16380", "e131070", "e131071",
			"e131072", "e131073", "e1073741822", "e1073741823", "e-1073741822", "e-1073741823", "e99999999999", "e-99999999999",
			"e0000000000000000000000001"} {
			numbers = append(numbers, m+e)
		}
	}
	long := func(n int) string { return strings.Repeat("7", n) }
	numbers = append(numbers, "0."+long(16383), "0."+long(16384), "1."+strings.Repeat("0", 16383), "1."+strings.Repeat("0", 16384),
		long(131072), long(131073), long(131072)+".5", long(131072)+"e-1", long(131070)+"e2", long(131070)+"e3",
		"0."+strings.Repeat("0", 20)+"1e131092", "0."+strings.Repeat("0", 20)+"1e131093")
	for _, n := range numbers {
		require.True(t, json.Valid([]byte(n)), n)
		_, pgErr := conn.Exec(t.Context(), "SELECT $1::jsonb", "["+n+"]")
		_, reason, ok := storable.JSON([]byte(`{"n":` + n + `}`))
		short := n
		if len(short) > 40 {
			short = short[:20] + "..." + short[len(short)-20:]
		}
		require.Equal(t, pgErr == nil, ok, "%s (%d bytes): postgres says %v", short, len(n), pgErr)
		if !ok {
			require.Equal(t, storable.Number, reason)
		}
	}
	// The pointer names the number.
	ptr, reason, ok := storable.JSON([]byte(`{"a":[1,{"b":1e999999}]}`))
	require.False(t, ok)
	require.Equal(t, "/a/1/b", ptr)
	require.Equal(t, storable.Number, reason)
}

// FuzzNumber: for any JSON number, storable.JSON and Postgres's jsonb agree.
func FuzzNumber(f *testing.F) {
	for _, n := range []string{"1", "-0.5e-3", "1e999999", "1.5e-16383", "10e131071", "0e1073741823", "9.9E+131071"} {
		f.Add(n)
	}
	conn, err := pgx.Connect(context.Background(), prosttest.ServerURL())
	require.NoError(f, err)
	f.Cleanup(func() { _ = conn.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, n string) {
		var num json.Number
		if json.Unmarshal([]byte(n), &num) != nil || strings.ContainsAny(n, " \t\r\n\"") {
			return // not a number
		}
		_, pgErr := conn.Exec(t.Context(), "SELECT $1::jsonb", "["+n+"]")
		_, _, ok := storable.JSON([]byte("[" + n + "]"))
		require.Equal(t, pgErr == nil, ok, "%.80s: postgres says %v", n, pgErr)
	})
}
