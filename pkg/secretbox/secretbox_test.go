package secretbox_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/secretbox"
)

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k, text := secretbox.NewKey()
	parsed, err := secretbox.ParseKey(text)
	require.NoError(t, err)
	require.Equal(t, k, parsed)

	secret := []byte("whsec_abc")
	sealed := k.Seal(secret, []byte("rule-1"))
	require.False(t, bytes.Contains(sealed, secret), "sealed value holds no clear text")
	require.NotEqual(t, sealed, k.Seal(secret, []byte("rule-1")), "random nonce")
	got, err := k.Open(sealed, []byte("rule-1"))
	require.NoError(t, err)
	require.Equal(t, secret, got)

	_, err = k.Open(sealed, []byte("rule-2"))
	require.ErrorIs(t, err, secretbox.ErrOpen, "bound to its owner")
	other, _ := secretbox.NewKey()
	_, err = other.Open(sealed, []byte("rule-1"))
	require.ErrorIs(t, err, secretbox.ErrOpen)
	sealed[len(sealed)-1] ^= 1
	_, err = k.Open(sealed, []byte("rule-1"))
	require.ErrorIs(t, err, secretbox.ErrOpen)
	_, err = k.Open([]byte{1, 2}, nil)
	require.ErrorIs(t, err, secretbox.ErrOpen)
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	_, err := secretbox.ParseKey("c2hvcnQ=")
	require.ErrorContains(t, err, "32 bytes")
	_, err = secretbox.ParseKey("not base64!!")
	require.Error(t, err)
	_, err = secretbox.ParseKey("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") // raw, 32 zero bytes
	require.NoError(t, err)
}
