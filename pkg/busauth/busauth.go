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
	"strings"

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
	}
	return &out, nil
}

func mac(key []byte, subject, msgID string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("prost-bus-v1\x00"))
	m.Write([]byte(subject))
	m.Write([]byte{0})
	m.Write([]byte(msgID))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)
}

// Sign sets the signature of a message on subject with idempotency key
// msgID and body, replacing any signature h held.
func (s *Signer) Sign(h nats.Header, subject, msgID string, body []byte) {
	h.Set(Header, "v1,"+base64.RawURLEncoding.EncodeToString(mac(s.keys[0], subject, msgID, body)))
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
	got, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return ErrBadSignature
	}
	for _, k := range s.keys {
		if hmac.Equal(got, mac(k, subject, msgID, body)) {
			return nil
		}
	}
	return ErrBadSignature
}
