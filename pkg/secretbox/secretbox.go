// Package secretbox seals the secrets PROST must use later (webhook signing
// secrets) with AES-256-GCM under a key from configuration
// (PROST_SECRETS_KEY), so the database never holds them in clear.
//
// A sealed value is: version byte 0x01, a 12-byte random nonce, then the GCM
// ciphertext and tag. The associated data binds a sealed value to its owner
// (a rule id), so a value copied to another row does not open.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Key is an AES-256 key.
type Key [32]byte

// ErrOpen means a sealed value could not be opened: wrong key, wrong
// associated data, or a damaged value.
var ErrOpen = errors.New("secretbox: cannot open sealed value (wrong key or damaged)")

const version = 0x01

// ParseKey decodes a key written as base64 (standard or URL alphabet,
// padded or not) of exactly 32 bytes.
func ParseKey(s string) (Key, error) {
	var k Key
	s = strings.TrimSpace(s)
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return k, errors.New("secretbox: the key is not base64")
	}
	if len(b) != len(k) {
		return k, fmt.Errorf("secretbox: the key must be 32 bytes, got %d", len(b))
	}
	copy(k[:], b)
	return k, nil
}

// NewKey returns a random key and its base64 form.
func NewKey() (Key, string) {
	var k Key
	_, _ = rand.Read(k[:])
	return k, base64.StdEncoding.EncodeToString(k[:])
}

func (k *Key) aead() cipher.AEAD {
	b, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // a 32-byte key never fails
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

// Seal encrypts plaintext bound to ad.
func (k *Key) Seal(plaintext, ad []byte) []byte {
	g := k.aead()
	out := make([]byte, 1+g.NonceSize(), 1+g.NonceSize()+len(plaintext)+g.Overhead())
	out[0] = version
	_, _ = rand.Read(out[1:])
	return g.Seal(out, out[1:1+g.NonceSize()], plaintext, ad)
}

// Open decrypts a value made by Seal with the same key and ad.
func (k *Key) Open(sealed, ad []byte) ([]byte, error) {
	g := k.aead()
	if len(sealed) < 1+g.NonceSize()+g.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := g.Open(nil, sealed[1:1+g.NonceSize()], sealed[1+g.NonceSize():], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
