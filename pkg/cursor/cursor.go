// Package cursor makes the page tokens of PROST's list APIs. A cursor is
// opaque to clients: URL-safe text they pass back unchanged as ?cursor= to
// continue where a page ended. What it encodes (a sequence number, a key) is
// not part of the API and may change between versions; a cursor that this
// package did not make is ErrInvalid, a 400 naming the parameter.
package cursor

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/prost-platform/prost/pkg/problem"
)

// ErrInvalid is a cursor that no page handed out (or one of another list).
var ErrInvalid = problem.BadParam("cursor", "use the next_cursor of a previous page, unchanged")

// Int encodes a non-negative position n of the list named by tag (a short
// word that keeps one list's cursors from being read as another's).
func Int(tag string, n int64) string {
	return String(tag, strconv.FormatInt(n, 10))
}

// ParseInt reads a cursor made by Int with the same tag; "" is position 0.
func ParseInt(tag, c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	s, err := ParseString(tag, c)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, ErrInvalid
	}
	return n, nil
}

// String encodes a key s of the list named by tag.
func String(tag, s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tag + ":" + s))
}

// ParseString reads a cursor made by String with the same tag; "" is "".
func ParseString(tag, c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", ErrInvalid
	}
	s, ok := strings.CutPrefix(string(b), tag+":")
	if !ok || s == "" {
		return "", ErrInvalid
	}
	return s, nil
}
