package subjects_test

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"testing/quick"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/subjects"
)

func TestMain(m *testing.M) { prosttest.MainNoDatabase(m) }

// decodeToken inverts Token; ok is false for anything Token cannot produce.
func decodeToken(tok string) (s string, ok bool) {
	if tok == "%" {
		return "", true
	}
	b := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		if tok[i] != '%' {
			b = append(b, tok[i])
			continue
		}
		if i+3 > len(tok) {
			return "", false
		}
		n, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b = append(b, byte(n))
		i += 2
	}
	return string(b), true
}

// validToken reports whether tok can stand as one NATS subject token of the
// alphabet Token promises.
func validToken(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '%') {
			return false
		}
	}
	return true
}

func requireValidToken(t *testing.T, tok string) {
	t.Helper()
	require.True(t, validToken(tok), "%q is not a valid subject token", tok)
}

func TestToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", "%"},
		{"order", "order"},
		{"Order-created_V2", "Order-created_V2"},
		{"%", "%25"},
		{"%25", "%2525"},
		{"a.b", "a%2Eb"},
		{"*", "%2A"},
		{">", "%3E"},
		{"a b", "a%20b"},
		{"\t", "%09"},
		{"é", "%C3%A9"},
		{"\x00", "%00"},
		{"\xff", "%FF"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got := subjects.Token(tt.in)
			require.Equal(t, tt.want, got)
			requireValidToken(t, got)
			decoded, ok := decodeToken(got)
			require.True(t, ok)
			require.Equal(t, tt.in, decoded)
		})
	}
}

// TestTokenOneToOne checks the property the doc promises: different inputs
// never share a token, because each token decodes back to its input.
func TestTokenOneToOne(t *testing.T) {
	t.Parallel()
	roundTrip := func(s string) bool {
		tok := subjects.Token(s)
		decoded, ok := decodeToken(tok)
		return ok && validToken(tok) && decoded == s
	}
	require.NoError(t, quick.Check(roundTrip, &quick.Config{MaxCount: 2000}))
	// Arbitrary bytes, not only valid UTF-8.
	rawRoundTrip := func(b []byte) bool { return roundTrip(string(b)) }
	require.NoError(t, quick.Check(rawRoundTrip, &quick.Config{MaxCount: 2000}))

	// Pairs that a careless encoding would merge.
	seen := map[string]string{}
	for _, s := range []string{"", "%", "%25", "%2525", "a.b", "a%2Eb", "a_b", "a-b", "A", "a", "%41", "\x00", "0"} {
		tok := subjects.Token(s)
		prev, dup := seen[tok]
		require.False(t, dup, "%q and %q share token %q", prev, s, tok)
		seen[tok] = s
	}
}

func TestTypeTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"com.example.order.created", "com.example.order.created"},
		{"com.example.v1.0", "com.example.v1.0"},
		{"a..b", "a.%.b"},
		{"a.b*c.>", "a.b%2Ac.%3E"},
		{".", "%.%"},
		{"", "%"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got := subjects.TypeTokens(tt.in)
			require.Equal(t, tt.want, got)
			parts := strings.Split(got, ".")
			require.Len(t, parts, strings.Count(tt.in, ".")+1)
			for _, p := range parts {
				requireValidToken(t, p)
			}
		})
	}
}

func TestEvent(t *testing.T) {
	t.Parallel()
	tenant := uuid.MustParse("0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")
	tests := []struct {
		name      string
		partition int
		typ       string
		want      string
	}{
		{"simple", 0, "order.created", "prost.events.0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b.0.order.created"},
		{"partition", 15, "a", "prost.events.0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b.15.a"},
		{"escaped type", 3, "a b.*", "prost.events.0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b.3.a%20b.%2A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := subjects.Event(tenant, tt.partition, tt.typ)
			require.Equal(t, tt.want, got)
			require.True(t, strings.HasPrefix(got, strings.TrimSuffix(subjects.Tenant(tenant), ">")),
				"subject %q is outside the tenant's filter %q", got, subjects.Tenant(tenant))
			require.True(t, strings.HasPrefix(got, strings.TrimSuffix(subjects.All, ">")))
			tokens := strings.Split(got, ".")
			require.Equal(t, []string{"prost", "events", tenant.String(), strconv.Itoa(tt.partition)}, tokens[:4])
		})
	}
	require.Equal(t, "prost.events.0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b.>", subjects.Tenant(tenant))
	require.Equal(t, "prost.events.>", subjects.All)
}

// fnv1a32 is FNV-1a written out from its definition, independent of hash/fnv.
func fnv1a32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func TestPartition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		n    int
		want int
	}{
		{"", 16, int(2166136261 % 16)},
		{"a", 16, int(0xe40c292c % 16)}, // published FNV-1a test vector
		{"foobar", 7, int(0xbf9cf968 % 7)},
		{"anything", 1, 0},
		{"anything", 0, 0},
		{"anything", -3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+strconv.Itoa(tt.n), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, subjects.Partition(tt.key, tt.n))
		})
	}

	inRangeAndStable := func(key string, n uint8) bool {
		parts := int(n) + 1
		p := subjects.Partition(key, parts)
		return p >= 0 && p < parts && p == subjects.Partition(key, parts) && (parts == 1 || p == int(fnv1a32(key)%uint32(parts)))
	}
	require.NoError(t, quick.Check(inRangeAndStable, &quick.Config{MaxCount: 2000}))

	// Keys spread over the partitions.
	hit := map[int]bool{}
	for i := range 1000 {
		hit[subjects.Partition("key-"+strconv.Itoa(i), 16)] = true
	}
	require.Len(t, hit, 16)
}

func TestMsgID(t *testing.T) {
	t.Parallel()
	tenant := uuid.MustParse("0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")
	other := uuid.MustParse("0193a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c")

	// Golden: computed here from the documented definition.
	sum := sha256.Sum256(append(append(append(append(tenant[:], 0), "src"...), 0), "id-1"...))
	want := base64.RawURLEncoding.EncodeToString(sum[:24])
	got := subjects.MsgID(tenant, "src", "id-1")
	require.Equal(t, want, got)
	require.Len(t, got, 32)
	require.Equal(t, got, subjects.MsgID(tenant, "src", "id-1"), "MsgID must be stable")

	// Every input differs from the base in one way, including the ways a
	// separator-less concatenation would confuse.
	distinct := []struct {
		tenant     uuid.UUID
		source, id string
	}{
		{tenant, "src", "id-1"},
		{other, "src", "id-1"},
		{tenant, "src2", "id-1"},
		{tenant, "src", "id-2"},
		{tenant, "srci", "d-1"},
		{tenant, "sr", "cid-1"},
		{tenant, "", "srcid-1"},
		{tenant, "src\x00id-1", ""},
	}
	seen := map[string]int{}
	for i, in := range distinct {
		id := subjects.MsgID(in.tenant, in.source, in.id)
		j, dup := seen[id]
		require.False(t, dup, "inputs %d and %d share MsgID %q", j, i, id)
		seen[id] = i
	}
}
