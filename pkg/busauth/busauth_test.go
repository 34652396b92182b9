package busauth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
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

// The signature is HMAC-SHA256 over the documented message, whatever the
// length of its parts, from any number of goroutines at once (the HMACs are
// reused).
func TestSignatureFormat(t *testing.T) {
	t.Parallel()
	key := busauth.NewKey()
	raw, err := base64.StdEncoding.DecodeString(key)
	require.NoError(t, err)
	s, err := busauth.Parse(key)
	require.NoError(t, err)
	want := func(subject, id string, body []byte) string {
		m := hmac.New(sha256.New, raw)
		m.Write([]byte("prost-bus-v1\x00" + subject + "\x00" + id + "\x00"))
		m.Write(body)
		return "v1," + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				// Parts longer than the stack buffer the prefix is built in.
				subject := "prost.events.t.1." + strings.Repeat("x", (g*200+i)%400)
				id := fmt.Sprintf("id-%d-%d", g, i)
				body := []byte(strings.Repeat("b", i))
				h := nats.Header{}
				s.Sign(h, subject, id, body)
				if got := h.Get(busauth.Header); got != want(subject, id, body) {
					t.Errorf("signature of %q/%q: got %s, want %s", subject, id, got, want(subject, id, body))
					return
				}
				if err := s.Verify(h, subject, id, body); err != nil {
					t.Errorf("verify %q/%q: %v", subject, id, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Verify runs for every message every consumer reads: it allocates nothing
// beyond reading the header.
func TestVerifyAllocations(t *testing.T) {
	s, err := busauth.Parse(busauth.NewKey())
	require.NoError(t, err)
	h := nats.Header{}
	body := []byte(strings.Repeat("b", 600))
	s.Sign(h, "prost.events.t.1.x", "id-1", body)
	allocs := testing.AllocsPerRun(200, func() {
		if err := s.Verify(h, "prost.events.t.1.x", "id-1", body); err != nil {
			panic(err)
		}
	})
	require.LessOrEqual(t, allocs, 1.0)
}
