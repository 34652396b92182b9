// Package webhook signs and verifies webhook messages per the Standard
// Webhooks specification (standardwebhooks.com):
//
//	webhook-id:        the message id, the same on every retry of the message
//	webhook-timestamp: the attempt's Unix time in seconds
//	webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
//
// The signing secret is "whsec_" followed by the base64 of 24 random bytes;
// the HMAC key is those bytes (the base64 part decoded). A receiver verifies
// with Verify, or with any Standard Webhooks library.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a signed message.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a message's timestamp may be from the
// receiver's clock before Verify refuses it (replay protection).
const DefaultTolerance = 5 * time.Minute

// Errors of Verify; test with errors.Is.
var (
	ErrInvalidSecret    = errors.New("webhook: invalid signing secret")
	ErrMissingHeaders   = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidTimestamp = errors.New("webhook: timestamp is invalid or outside the tolerance")
	ErrNoMatch          = errors.New("webhook: no signature matches")
)

// NewSecret returns a new random signing secret.
func NewSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// key decodes the HMAC key of a secret ("whsec_" is optional).
func key(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		return nil, ErrInvalidSecret
	}
	return k, nil
}

// Sign returns the webhook-signature value of a message: "v1,<base64>".
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(k, msgID, ts.Unix(), body)), nil
}

func mac(k []byte, msgID string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(msgID))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SetHeaders signs the message and sets the three webhook headers on h.
func SetHeaders(h http.Header, secret, msgID string, ts time.Time, body []byte) error {
	sig, err := Sign(secret, msgID, ts, body)
	if err != nil {
		return err
	}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return nil
}

// Verify checks a received message: the headers are present, the timestamp
// is within tolerance of now (0 means DefaultTolerance), and one of the
// space-separated signatures is a valid v1 signature, compared in constant
// time.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	k, err := key(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s off", ErrInvalidTimestamp, d)
	}
	want := mac(k, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatch
}
