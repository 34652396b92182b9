package billing

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MaxPathLen is the longest JSONPath a meter accepts.
const MaxPathLen = 256

// Path is a parsed JSONPath naming one member of an event's data: the
// subset of RFC 9535 that names a single value, $ followed by member names
// ($.a.b, $['a b']) and array indexes ($.items[0]). Wildcards, slices,
// filters and descendant segments are refused: a meter reads one value per
// event.
type Path struct {
	text string
	segs []segment
}

type segment struct {
	name  string
	index int // used when isIndex
	isIdx bool
}

// String is the path as it was written.
func (p Path) String() string { return p.text }

// IsZero reports whether p is the zero Path (no path given).
func (p Path) IsZero() bool { return p.text == "" }

// ParsePath reads a JSONPath of the supported subset.
func ParsePath(s string) (Path, error) {
	if len(s) > MaxPathLen {
		return Path{}, fmt.Errorf("a path is at most %d bytes", MaxPathLen)
	}
	if !strings.HasPrefix(s, "$") {
		return Path{}, fmt.Errorf("%q is not a JSONPath: it must start with $ (such as $.tokens)", s)
	}
	p := Path{text: s}
	i := 1
	for i < len(s) {
		switch s[i] {
		case '.':
			j := i + 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j == i+1 {
				return Path{}, fmt.Errorf("%q: expected a member name after '.' at offset %d (use $['name'] for other characters)", s, i)
			}
			p.segs = append(p.segs, segment{name: s[i+1 : j]})
			i = j
		case '[':
			end, seg, err := bracket(s, i)
			if err != nil {
				return Path{}, err
			}
			p.segs = append(p.segs, seg)
			i = end
		default:
			return Path{}, fmt.Errorf("%q: unexpected %q at offset %d; the supported paths are $.a.b, $['a'] and $.a[0]", s, s[i], i)
		}
	}
	if len(p.segs) == 0 {
		return Path{}, fmt.Errorf("%q names the whole data; name a member, such as $.tokens", s)
	}
	return p, nil
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// bracket reads the bracketed segment starting at s[i] == '['.
func bracket(s string, i int) (int, segment, error) {
	if i+1 >= len(s) {
		return 0, segment{}, fmt.Errorf("%q: unclosed '[' at offset %d", s, i)
	}
	switch q := s[i+1]; {
	case q == '\'' || q == '"':
		var b strings.Builder
		j := i + 2
		for ; j < len(s) && s[j] != q; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
		}
		if j+1 >= len(s) || s[j+1] != ']' {
			return 0, segment{}, fmt.Errorf("%q: unclosed quoted name at offset %d", s, i)
		}
		return j + 2, segment{name: b.String()}, nil
	case q >= '0' && q <= '9':
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j >= len(s) || s[j] != ']' {
			return 0, segment{}, fmt.Errorf("%q: expected ']' after the index at offset %d", s, j)
		}
		n, err := strconv.Atoi(s[i+1 : j])
		if err != nil || n > 1<<20 {
			return 0, segment{}, fmt.Errorf("%q: index out of range at offset %d", s, i)
		}
		return j + 1, segment{index: n, isIdx: true}, nil
	default:
		return 0, segment{}, fmt.Errorf("%q: only names ($['a']) and non-negative indexes ($[0]) may stand in brackets (offset %d)", s, i)
	}
}

// Pointer is the JSON Pointer (RFC 6901) of the member, relative to data.
func (p Path) Pointer() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		if s.isIdx {
			b.WriteString(strconv.Itoa(s.index))
			continue
		}
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(s.name))
	}
	return b.String()
}

// Lookup returns the value p names in v (data decoded with UseNumber), and
// whether it is there. A JSON null is absent.
func (p Path) Lookup(v any) (any, bool) {
	for _, s := range p.segs {
		switch c := v.(type) {
		case map[string]any:
			if s.isIdx {
				return nil, false
			}
			var ok bool
			if v, ok = c[s.name]; !ok {
				return nil, false
			}
		case []any:
			if !s.isIdx || s.index >= len(c) {
				return nil, false
			}
			v = c[s.index]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// MarshalJSON writes the path as its text.
func (p Path) MarshalJSON() ([]byte, error) { return json.Marshal(p.text) }

// scalarText renders a scalar JSON value (decoded with UseNumber) as text:
// a string as it is, a number as its literal, a boolean as true or false.
// ok is false for objects and arrays.
func scalarText(v any) (string, bool) {
	switch c := v.(type) {
	case string:
		return c, true
	case json.Number:
		return c.String(), true
	case bool:
		return strconv.FormatBool(c), true
	default:
		return "", false
	}
}
