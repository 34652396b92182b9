// Package busauth authenticates the messages PROST's services exchange on
// NATS, so that access to the bus alone cannot write into a tenant's audit
// chain or fire its rules.
//
// The publisher of every message (the outbox relay, and the dead-letter
// queue's replay) signs it with a key the services share (PROST_BUS_KEY):
//
//	Prost-Signature: v1,<base64url, unpadded, of HMAC-SHA256(key, m)>
//	m = "prost-bus-v1" 0x00 subject 0x00 message id 0x00 body
//
// where the message id is the consumer's idempotency key: the Prost-Msg-Id
// header of a replay, else Nats-Msg-Id. The consumer runtime verifies the
// signature before any handler sees the message and dead-letters what is
// unsigned or does not verify. Because the subject, the id and the body are
// covered, a signed message cannot be moved to another tenant's subject,
// given another id or altered; a verbatim copy carries the id of the
// original and is skipped by the consumers' idempotency record.
//
// A Signer holds one or more keys: it signs with the first and accepts a
// signature by any of them, so a key can be rotated by deploying "new,old"
// everywhere, then "new" once every message signed with the old key has
// been consumed.
package busauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Header is the NATS header carrying a message's signature.
const Header = "Prost-Signature"

// KeyLen is the length of a key in bytes.
const KeyLen = 32

// SignatureLen is the length of a Header value.
var SignatureLen = len("v1,") + base64.RawURLEncoding.EncodedLen(sha256.Size)

// Errors of Verify; test with errors.Is.
var (
	// ErrUnsigned: the message carries no signature.
	ErrUnsigned = errors.New("busauth: the message is not signed")
	// ErrBadSignature: the signature does not verify with any key.
	ErrBadSignature = errors.New("busauth: the message signature does not verify")
)

// Signer signs and verifies messages. Its methods are safe for concurrent
// use.
type Signer struct {
	keys [][]byte
	// macs holds, for each key, HMACs to reset and reuse: a new one per
	// message was ~6% of what the all-in-one process allocated while it
	// caught up a backlog (every consumer verifies every message).
	macs []*sync.Pool
}

// NewKey returns the base64 form of a new random key.
func NewKey() string {
	var k [KeyLen]byte
	_, _ = rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

// Parse reads a comma-separated list of keys, each the base64 (standard or
// URL alphabet, padded or not) of exactly 32 bytes. The first one signs.
func Parse(s string) (*Signer, error) {
	var out Signer
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		var b []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err = enc.DecodeString(part); err == nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("busauth: key %d is not base64", i+1)
		}
		if len(b) != KeyLen {
			return nil, fmt.Errorf("busauth: key %d must be %d bytes, got %d", i+1, KeyLen, len(b))
		}
		out.keys = append(out.keys, b)
		out.macs = append(out.macs, &sync.Pool{New: func() any { return &hmacState{h: hmac.New(sha256.New, b)} }})
	}
	return &out, nil
}

// hmacState is a reusable HMAC with the scratch space of one signature.
type hmacState struct {
	h   hash.Hash
	buf []byte // the prefix, subject and id, written at once
	sum [sha256.Size]byte
}

// mac appends to dst the HMAC with key i of a message on subject with
// idempotency key msgID and body.
func (s *Signer) mac(dst []byte, i int, subject, msgID string, body []byte) []byte {
	st := s.macs[i].Get().(*hmacState)
	st.h.Reset()
	p := append(st.buf[:0], "prost-bus-v1\x00"...)
	p = append(p, subject...)
	p = append(p, 0)
	p = append(p, msgID...)
	p = append(p, 0)
	st.h.Write(p)
	st.h.Write(body)
	dst = append(dst, st.h.Sum(st.sum[:0])...)
	if cap(p) <= 4096 {
		st.buf = p
	}
	s.macs[i].Put(st)
	return dst
}

// Sign sets the signature of a message on subject with idempotency key
// msgID and body, replacing any signature h held.
func (s *Signer) Sign(h nats.Header, subject, msgID string, body []byte) {
	var sum [sha256.Size]byte
	h.Set(Header, "v1,"+base64.RawURLEncoding.EncodeToString(s.mac(sum[:0], 0, subject, msgID, body)))
}

// Verify checks the signature in h of a message on subject with
// idempotency key msgID and body, in constant time. It returns nil,
// ErrUnsigned or ErrBadSignature.
func (s *Signer) Verify(h nats.Header, subject, msgID string, body []byte) error {
	v := h.Get(Header)
	if v == "" {
		return ErrUnsigned
	}
	b64, ok := strings.CutPrefix(v, "v1,")
	if !ok {
		return ErrBadSignature
	}
	var got, want [sha256.Size]byte
	if base64.RawURLEncoding.DecodedLen(len(b64)) != len(got) {
		return ErrBadSignature
	}
	if n, err := base64.RawURLEncoding.Decode(got[:], []byte(b64)); err != nil || n != len(got) {
		return ErrBadSignature
	}
	for i := range s.keys {
		if hmac.Equal(got[:], s.mac(want[:0], i, subject, msgID, body)) {
			return nil
		}
	}
	return ErrBadSignature
}
