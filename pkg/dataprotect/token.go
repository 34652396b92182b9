package dataprotect

import (
	"bytes"
	"encoding/base64"

	"github.com/google/uuid"
)

// An encrypted value is stored in place of the plain one as a JSON string:
//
//	"prost:enc:v1:<key id>:<base64url of the Tink AEAD ciphertext>"
//
// The key id names the data key (a UUID); the ciphertext is the value's
// compact JSON encrypted with it. A token has no characters that JSON
// escapes, so tokens are found in a stored document by bytes alone.
const tokenPrefix = "prost:enc:v1:"

var quotedPrefix = []byte(`"` + tokenPrefix)

// Erased is what a reader sees in place of a value whose data key was
// destroyed.
var Erased = []byte(`{"erased":true}`)

// HasTokens reports whether a JSON document may hold encrypted values: a
// cheap test that lets readers pass documents without any through untouched.
func HasTokens(doc []byte) bool { return bytes.Contains(doc, quotedPrefix) }

// IsToken reports whether s (an unquoted JSON string value) is an encrypted
// value.
func IsToken(s string) bool {
	_, _, ok := parseToken([]byte(s))
	return ok
}

// TokenKey returns the data key of an encrypted value s (an unquoted JSON
// string value).
func TokenKey(s string) (uuid.UUID, bool) {
	k, _, ok := parseToken([]byte(s))
	return k, ok
}

// appendToken appends the quoted token of a ciphertext.
func appendToken(dst []byte, key uuid.UUID, ct []byte) []byte {
	dst = append(dst, quotedPrefix...)
	var k [36]byte
	encodeUUID(k[:], key)
	dst = append(dst, k[:]...)
	dst = append(dst, ':')
	dst = base64.RawURLEncoding.AppendEncode(dst, ct)
	return append(dst, '"')
}

func encodeUUID(dst []byte, u uuid.UUID) {
	const hex = "0123456789abcdef"
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = hex[b>>4], hex[b&0x0f]
		j += 2
	}
}

// parseToken reads an unquoted token.
func parseToken(s []byte) (uuid.UUID, []byte, bool) {
	if !bytes.HasPrefix(s, quotedPrefix[1:]) {
		return uuid.UUID{}, nil, false
	}
	s = s[len(tokenPrefix):]
	if len(s) < 38 || s[36] != ':' {
		return uuid.UUID{}, nil, false
	}
	key, err := uuid.ParseBytes(s[:36])
	if err != nil {
		return uuid.UUID{}, nil, false
	}
	ct, err := base64.RawURLEncoding.DecodeString(string(s[37:]))
	if err != nil {
		return uuid.UUID{}, nil, false
	}
	return key, ct, true
}

// tokenAt is one encrypted value found in a document: doc[start:end] is the
// quoted token.
type tokenAt struct {
	start, end int
	key        uuid.UUID
	ct         []byte
}

// scanTokens finds the encrypted values of a JSON document. A candidate is a
// string that starts with the prefix at an unescaped quote; strings that only
// look like tokens are left alone.
func scanTokens(doc []byte) []tokenAt {
	var out []tokenAt
	i := 0
	for {
		j := bytes.Index(doc[i:], quotedPrefix)
		if j < 0 {
			return out
		}
		start := i + j
		i = start + 1
		// The quote must open a string: an escaped quote (an odd run of
		// backslashes before it) is inside one.
		bs := 0
		for k := start - 1; k >= 0 && doc[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 1 {
			continue
		}
		end := start + 1
		for end < len(doc) && tokenByte(doc[end]) {
			end++
		}
		if end >= len(doc) || doc[end] != '"' {
			continue
		}
		key, ct, ok := parseToken(doc[start+1 : end])
		if !ok {
			continue
		}
		out = append(out, tokenAt{start: start, end: end + 1, key: key, ct: ct})
		i = end + 1
	}
}

// tokenBytes are the bytes a token may hold: base64url, hex, '-' and ':'.
var tokenBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '-' || c == '_'
	}
	return t
}()

func tokenByte(c byte) bool { return tokenBytes[c] }

// KeyIDs returns the distinct data keys whose values a document holds, in
// the order they first appear.
func KeyIDs(doc []byte) []uuid.UUID {
	if !HasTokens(doc) {
		return nil
	}
	var out []uuid.UUID
	for _, t := range scanTokens(doc) {
		dup := false
		for _, k := range out {
			if k == t.key {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, t.key)
		}
	}
	return out
}
