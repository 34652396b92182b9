package cloudevent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInt32Of(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lit  string
		want int32
		ok   bool
	}{
		{"0", 0, true},
		{"-0", 0, true},
		{"42", 42, true},
		{"2147483647", 2147483647, true},
		{"-2147483648", -2147483648, true},
		{"2147483648", 0, false},
		{"-2147483649", 0, false},
		{"99999999999999999999", 0, false},
		{"1.0", 1, true},
		{"1.000", 1, true},
		{"1e2", 100, true},
		{"1E+2", 100, true},
		{"100e-2", 1, true},
		{"12.30e1", 123, true},
		{"-2.147483648e9", -2147483648, true},
		{"2.147483648e9", 0, false},
		{"0.0e99999999999999999999", 0, true},
		{"0e-5", 0, true},
		{"1.5", 0, false},
		{"1e-1", 0, false},
		{"1e-400", 0, false},
		{"1e400", 0, false},
		{"1e99999999999999999999", 0, false},
		{"0.5e1", 5, true},
		{"0.05e1", 0, false},
	}
	for _, tt := range tests {
		got, ok := int32Of(tt.lit)
		require.Equal(t, tt.ok, ok, tt.lit)
		require.Equal(t, tt.want, got, tt.lit)
	}
}

func TestAppendCompact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{ "a" : [ 1 , 2 ] }`, `{"a":[1,2]}`},
		{"[\n\t\"a b\\\" c\" ,\r\n null ]", `["a b\" c",null]`},
		{`"x\\"`, `"x\\"`},
		{`{"k\\":" v "}`, `{"k\\":" v "}`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, string(appendCompact(nil, []byte(tt.in))), tt.in)
	}
}

func TestPercentDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"plain", "plain", true},
		{"", "", true},
		{"a%20b", "a b", true},
		{"%25%22", `%"`, true},
		{"%c3%A9", "é", true},
		{"a+b", "a+b", true},
		{"%", "", false},
		{"%4", "", false},
		{"x%4g", "", false},
		{"%%41", "", false},
	}
	for _, tt := range tests {
		got, err := percentDecode(tt.in)
		require.Equal(t, tt.ok, err == nil, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", truncate("short"))
	long := "a" + string(make([]byte, 62)) + "é!" // byte 64 is inside é
	require.Equal(t, long[:63]+"...", truncate(long))
}
