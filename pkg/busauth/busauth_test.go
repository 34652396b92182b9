package busauth_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busauth"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	k1, k2 := busauth.NewKey(), busauth.NewKey()
	s, err := busauth.Parse(k1)
	require.NoError(t, err)
	h := nats.Header{}
	s.Sign(h, "prost.events.t.1.x", "id-1", []byte("body"))
	require.Len(t, h.Get(busauth.Header), busauth.SignatureLen)
	require.NoError(t, s.Verify(h, "prost.events.t.1.x", "id-1", []byte("body")))

	// Every signed part matters.
	require.ErrorIs(t, s.Verify(h, "prost.events.u.1.x", "id-1", []byte("body")), busauth.ErrBadSignature)
	require.ErrorIs(t, s.Verify(h, "prost.events.t.1.x", "id-2", []byte("body")), busauth.ErrBadSignature)
	require.ErrorIs(t, s.Verify(h, "prost.events.t.1.x", "id-1", []byte("bodY")), busauth.ErrBadSignature)
	// The separators make the parts unambiguous.
	require.ErrorIs(t, s.Verify(h, "prost.events.t.1.xid-1", "", []byte("body")), busauth.ErrBadSignature)
	require.ErrorIs(t, s.Verify(nats.Header{}, "prost.events.t.1.x", "id-1", []byte("body")), busauth.ErrUnsigned)
	for _, bad := range []string{"v2,abc", "v1,!!", "v1," + strings.Repeat("A", 43)} {
		require.ErrorIs(t, s.Verify(nats.Header{busauth.Header: {bad}}, "s", "i", nil), busauth.ErrBadSignature, bad)
	}

	// Another key does not verify; a rotation list accepts both and signs
	// with the first.
	other, err := busauth.Parse(k2)
	require.NoError(t, err)
	require.ErrorIs(t, other.Verify(h, "prost.events.t.1.x", "id-1", []byte("body")), busauth.ErrBadSignature)
	rot, err := busauth.Parse(k2 + ", " + k1)
	require.NoError(t, err)
	require.NoError(t, rot.Verify(h, "prost.events.t.1.x", "id-1", []byte("body")))
	h2 := nats.Header{}
	rot.Sign(h2, "s", "i", nil)
	require.NoError(t, other.Verify(h2, "s", "i", nil))
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "not base64!", "AAAA", busauth.NewKey() + ",short"} {
		_, err := busauth.Parse(bad)
		require.Error(t, err, bad)
	}
}
