// Package storable finds the values PostgreSQL cannot store, so that a
// request holding one is refused at the door with the field it is in (422)
// instead of failing deep inside a transaction (a 500, or a consumer that
// can never apply a message):
//
//   - U+0000 (NUL) in a text value: a text column refuses it whatever the
//     encoding (and jsonb refuses the escape \u0000);
//   - in JSON, a \u escape of a UTF-16 surrogate that is not part of a pair:
//     json accepts it, jsonb refuses it;
//   - in JSON, a number jsonb cannot hold (its numbers are Postgres numeric):
//     more than 131,072 digits before the decimal point or 16,383 after it,
//     the exponent applied (1e999999, 1e-999999), or an exponent of 2^30-1
//     or more either way.
//
// Every other code point of valid UTF-8 is storable.
package storable

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Reasons, used as problem details.
const (
	// NUL is the reason a value holding U+0000 is refused.
	NUL = "must not contain U+0000 (NUL), which the database cannot store"
	// Surrogate is the reason a JSON string with an unpaired surrogate
	// escape is refused.
	Surrogate = "must not contain an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF), which the database cannot store"
	// InvalidUTF8 is the reason a value that is not UTF-8 is refused.
	InvalidUTF8 = "must be valid UTF-8"
	// Number is the reason a JSON number jsonb cannot hold is refused.
	Number = "must be a number the database can store: at most 131072 digits before the decimal point and 16383 after it, the exponent applied"
)

// Limits of a Postgres numeric, the type of jsonb's numbers, in decimal
// digits.
const (
	// MaxNumericIntegerDigits bounds the digits before the decimal point
	// (from the first that is not 0).
	MaxNumericIntegerDigits = 131072
	// MaxNumericScale bounds the digits after the decimal point, trailing
	// zeros included: jsonb keeps them (1.50 stays 1.50).
	MaxNumericScale = 16383
	// maxNumericExponent: numeric_in refuses an exponent this large either
	// way (INT_MAX / 2), even on 0.
	maxNumericExponent = 1<<30 - 1
)

// Text returns "" when s can be stored in a text column, else the reason.
func Text(s string) string {
	if !utf8.ValidString(s) {
		return InvalidUTF8
	}
	if strings.IndexByte(s, 0) >= 0 {
		return NUL
	}
	return ""
}

// JSON looks through b, which must be valid JSON (check it first), for a
// string, member name or number PostgreSQL cannot store. It returns the JSON
// pointer (RFC 6901) of the first one and the reason, or ok. JSON with no \u
// escape, no exponent and under MaxNumericScale bytes (almost all of it) is
// done at once; otherwise the cost is one pass over b.
func JSON(b []byte) (pointer, reason string, ok bool) {
	if len(b) <= MaxNumericScale && !strings.Contains(string(b), `\u`) && !exponent(b) {
		return "", "", true
	}
	s := scanner{b: b}
	s.ws()
	ptr, reason := s.value(make([]byte, 0, 64), 0)
	if reason == "" {
		return "", "", true
	}
	return string(ptr), reason, false
}

// maxDepth bounds the nesting followed (deeper values are not looked at);
// PROST's parsers refuse JSON nested deeper than this anyway.
const maxDepth = 10000

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str consumes the string at s.i and returns its raw content (between the
// quotes) and the reason it cannot be stored, or "".
func (s *scanner) str() (raw []byte, reason string) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, reason
		case c == '\\' && s.i+1 < len(s.b):
			if s.b[s.i+1] != 'u' {
				s.i += 2
				continue
			}
			r, ok := hex4(s.b, s.i+2)
			s.i += 6
			switch {
			case !ok:
			case r == 0:
				if reason == "" {
					reason = NUL
				}
			case r >= 0xD800 && r <= 0xDBFF:
				if lo, ok := lowSurrogate(s.b, s.i); ok && lo {
					s.i += 6
				} else if reason == "" {
					reason = Surrogate
				}
			case r >= 0xDC00 && r <= 0xDFFF:
				if reason == "" {
					reason = Surrogate
				}
			}
		default:
			s.i++
		}
	}
	return s.b[start:], reason
}

// lowSurrogate reports whether a \u escape of a low surrogate starts at i.
func lowSurrogate(b []byte, i int) (bool, bool) {
	if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return false, false
	}
	r, ok := hex4(b, i+2)
	return r >= 0xDC00 && r <= 0xDFFF, ok
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// value walks the value at s.i and returns the pointer and reason of the
// first unstorable string in it, or "" as reason.
func (s *scanner) value(ptr []byte, depth int) ([]byte, string) {
	if s.i >= len(s.b) {
		return ptr, ""
	}
	switch c := s.b[s.i]; c {
	case '"':
		_, reason := s.str()
		return ptr, reason
	case '{', '[':
		if depth >= maxDepth {
			return ptr, ""
		}
		s.i++
		for n := 0; ; n++ {
			s.ws()
			if s.i >= len(s.b) {
				return ptr, ""
			}
			if s.b[s.i] == '}' || s.b[s.i] == ']' {
				s.i++
				return ptr, ""
			}
			if s.b[s.i] == ',' {
				s.i++
				s.ws()
			}
			child := append(ptr, '/')
			if c == '{' {
				raw, reason := s.str()
				child = appendToken(child, raw)
				if reason != "" {
					return child, reason
				}
				s.ws()
				if s.i < len(s.b) && s.b[s.i] == ':' {
					s.i++
				}
				s.ws()
			} else {
				child = strconv.AppendInt(child, int64(n), 10)
			}
			if p, reason := s.value(child, depth+1); reason != "" {
				return p, reason
			}
		}
	default:
		// A number or literal: up to the next delimiter.
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return ptr, number(s.b[start:s.i])
			}
			s.i++
		}
		return ptr, number(s.b[start:])
	}
}

// exponent reports whether b may hold a number with an exponent: an e or E
// after a digit or a decimal point.
func exponent(b []byte) bool {
	for i := 1; i < len(b); i++ {
		if c := b[i]; (c == 'e' || c == 'E') && (b[i-1] >= '0' && b[i-1] <= '9' || b[i-1] == '.') {
			return true
		}
	}
	return false
}

// number returns the reason a JSON number (valid, as written) does not fit
// a Postgres numeric, or "" (also for true, false and null).
func number(n []byte) string {
	i := 0
	if i < len(n) && n[i] == '-' {
		i++
	}
	if i >= len(n) || n[i] < '0' || n[i] > '9' {
		return "" // a literal
	}
	digits := func() []byte {
		start := i
		for i < len(n) && n[i] >= '0' && n[i] <= '9' {
			i++
		}
		return n[start:i]
	}
	integer := digits()
	var fraction []byte
	if i < len(n) && n[i] == '.' {
		i++
		fraction = digits()
	}
	var exp int64
	if i < len(n) && (n[i] == 'e' || n[i] == 'E') {
		i++
		neg := i < len(n) && n[i] == '-'
		if i < len(n) && (n[i] == '-' || n[i] == '+') {
			i++
		}
		for _, d := range digits() {
			if exp <= maxNumericExponent {
				exp = exp*10 + int64(d-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	if exp >= maxNumericExponent || exp <= -maxNumericExponent {
		return Number
	}
	if int64(len(fraction))-exp > MaxNumericScale {
		return Number
	}
	// The digits before the point, from the first that is not 0.
	first := -1
	for k, d := range integer {
		if d != '0' {
			first = k
			break
		}
	}
	if first < 0 {
		for k, d := range fraction {
			if d != '0' {
				first = len(integer) + k
				break
			}
		}
	}
	if first >= 0 && int64(len(integer))+exp-int64(first) > MaxNumericIntegerDigits {
		return Number
	}
	return ""
}

// appendToken appends a member name, given raw (as written between the
// quotes), as a JSON pointer token: decoded, ~ and / escaped, and a NUL
// written \u0000 so that the pointer stays printable.
func appendToken(dst, raw []byte) []byte {
	name := string(raw)
	if strings.IndexByte(name, '\\') >= 0 {
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) == nil {
			name = s
		}
	}
	for _, r := range name {
		switch r {
		case '~':
			dst = append(dst, '~', '0')
		case '/':
			dst = append(dst, '~', '1')
		case 0:
			dst = append(dst, `\u0000`...)
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
