// Package storable finds the values PostgreSQL cannot store, so that a
// request holding one is refused at the door with the field it is in (422)
// instead of failing deep inside a transaction (a 500, or a consumer that
// can never apply a message):
//
//   - U+0000 (NUL) in a text value: a text column refuses it whatever the
//     encoding (and jsonb refuses the escape \u0000);
//   - in JSON, a \u escape of a UTF-16 surrogate that is not part of a pair:
//     json accepts it, jsonb refuses it;
//   - in JSON, a number jsonb's numeric cannot hold: more than 131072
//     digits before the decimal point or 16383 after it, counting the
//     exponent (1e200000, 1e-20000, 0.0e-16383).
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
	Number = "must be a number the database can store: at most 131072 digits before the decimal point and 16383 after it, exponent included"
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
// pointer (RFC 6901) of the first one and the reason, or ok. JSON without a
// \u escape, a long exponent or a long run of digits (almost all of it) is
// done after one quick look at its bytes; otherwise the cost is one more
// pass over b.
func JSON(b []byte) (pointer, reason string, ok bool) {
	if !suspect(b) {
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

// suspect reports whether b may hold something JSON must look for: a \u
// escape, an exponent of four digits or more, or a run of 8192 digits or
// more. A number with fewer digits before and after its point and a smaller
// exponent is always storable (its scale and weight stay under 16384).
func suspect(b []byte) bool {
	run := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			if run++; run >= 8192 {
				return true
			}
			continue
		case c == 'u' && i > 0 && b[i-1] == '\\':
			return true
		case (c == 'e' || c == 'E') && run > 0:
			j := i + 1
			if j < len(b) && (b[j] == '+' || b[j] == '-') {
				j++
			}
			k := j
			for k < len(b) && b[k] >= '0' && b[k] <= '9' {
				k++
			}
			if k-j >= 4 {
				return true
			}
		}
		run = 0
	}
	return false
}

// numberReason returns "" when the JSON number lit fits PostgreSQL's
// numeric (what jsonb stores numbers as), else Number. numeric holds at
// most 16383 digits after the point (its scale: the fraction's digits minus
// the exponent) and a most significant digit at most 131071 places before
// it; exponents beyond ±1073741822 are refused outright.
func numberReason(lit []byte) string {
	i := 0
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	start := i
	for i < len(lit) && lit[i] >= '0' && lit[i] <= '9' {
		i++
	}
	intPart := lit[start:i]
	var frac []byte
	if i < len(lit) && lit[i] == '.' {
		i++
		fs := i
		for i < len(lit) && lit[i] >= '0' && lit[i] <= '9' {
			i++
		}
		frac = lit[fs:i]
	}
	var exp int64
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		neg := false
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			neg = lit[i] == '-'
			i++
		}
		for ; i < len(lit); i++ {
			c := lit[i]
			if c < '0' || c > '9' {
				break
			}
			if exp = exp*10 + int64(c-'0'); exp >= maxExponent {
				return Number
			}
		}
		if neg {
			exp = -exp
		}
	}
	if int64(len(frac))-exp > maxScale {
		return Number
	}
	weight, zero := int64(0), true
	if j := strings.IndexFunc(string(intPart), func(r rune) bool { return r != '0' }); j >= 0 {
		weight, zero = int64(len(intPart)-j-1), false
	} else if j := strings.IndexFunc(string(frac), func(r rune) bool { return r != '0' }); j >= 0 {
		weight, zero = int64(-(j + 1)), false
	}
	if !zero && weight+exp > maxWeight {
		return Number
	}
	return ""
}

// PostgreSQL's numeric limits, in decimal digits.
const (
	maxScale    = 16383      // NUMERIC_DSCALE_MAX
	maxWeight   = 131071     // 4 * (NUMERIC_WEIGHT_MAX + 1) - 1
	maxExponent = 1073741823 // INT_MAX / 2: numeric_in refuses such exponents
)

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
	lit:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				break lit
			}
			s.i++
		}
		if c == '-' || (c >= '0' && c <= '9') {
			return ptr, numberReason(s.b[start:s.i])
		}
		return ptr, ""
	}
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
