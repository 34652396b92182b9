package dataprotect

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// span is the byte range of one value in a JSON document.
type span struct{ start, end int }

// ParsePointer splits an RFC 6901 JSON pointer ("" is the whole document)
// into its unescaped tokens.
func ParsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%q is not a JSON pointer (it starts with /)", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		if strings.Contains(strings.ReplaceAll(strings.ReplaceAll(t, "~0", ""), "~1", ""), "~") {
			return nil, fmt.Errorf("%q: ~ must be written ~0 (and / as ~1)", p)
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

var errJSON = errors.New("dataprotect: data is not well-formed JSON")

// findSpans returns, for each target pointer, the ranges in doc of every
// value it names: an object that repeats a member name yields every
// repetition. Targets may nest (one value inside another's).
func findSpans(doc []byte, targets [][]string) ([][]span, error) {
	f := spanFinder{doc: doc, targets: targets, found: make([][]span, len(targets))}
	active := make([]int, len(targets))
	for i := range active {
		active[i] = i
	}
	i := f.ws(0)
	end, err := f.value(i, 0, active)
	if err != nil {
		return nil, err
	}
	if f.ws(end) != len(doc) {
		return nil, errJSON
	}
	return f.found, nil
}

type spanFinder struct {
	doc     []byte
	targets [][]string
	found   [][]span
}

func (f *spanFinder) ws(i int) int {
	for i < len(f.doc) {
		switch f.doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value reads the value at i, whose path has depth tokens and matches the
// active targets so far; it returns the index after the value.
func (f *spanFinder) value(i, depth int, active []int) (int, error) {
	if i >= len(f.doc) {
		return 0, errJSON
	}
	var exact, deeper []int
	for _, t := range active {
		if len(f.targets[t]) == depth {
			exact = append(exact, t)
		} else {
			deeper = append(deeper, t)
		}
	}
	var end int
	var err error
	if len(deeper) == 0 {
		end, err = f.skip(i)
	} else {
		end, err = f.descend(i, depth, deeper)
	}
	if err != nil {
		return 0, err
	}
	for _, t := range exact {
		f.found[t] = append(f.found[t], span{i, end})
	}
	return end, nil
}

// descend reads the object or array at i (any other value is skipped),
// following the targets that go deeper.
func (f *spanFinder) descend(i, depth int, deeper []int) (int, error) {
	next := make([]int, 0, len(deeper))
	switch f.doc[i] {
	case '{':
		i = f.ws(i + 1)
		if i < len(f.doc) && f.doc[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(f.doc) || f.doc[i] != '"' {
				return 0, errJSON
			}
			kend, err := f.str(i)
			if err != nil {
				return 0, err
			}
			key, err := f.key(i, kend)
			if err != nil {
				return 0, err
			}
			i = f.ws(kend)
			if i >= len(f.doc) || f.doc[i] != ':' {
				return 0, errJSON
			}
			i = f.ws(i + 1)
			next = next[:0]
			for _, t := range deeper {
				if f.targets[t][depth] == key {
					next = append(next, t)
				}
			}
			if i, err = f.value(i, depth+1, next); err != nil {
				return 0, err
			}
			i = f.ws(i)
			if i >= len(f.doc) {
				return 0, errJSON
			}
			if f.doc[i] == '}' {
				return i + 1, nil
			}
			if f.doc[i] != ',' {
				return 0, errJSON
			}
			i = f.ws(i + 1)
		}
	case '[':
		i = f.ws(i + 1)
		if i < len(f.doc) && f.doc[i] == ']' {
			return i + 1, nil
		}
		for n := 0; ; n++ {
			idx := strconv.Itoa(n)
			next = next[:0]
			for _, t := range deeper {
				if f.targets[t][depth] == idx {
					next = append(next, t)
				}
			}
			var err error
			if i, err = f.value(i, depth+1, next); err != nil {
				return 0, err
			}
			i = f.ws(i)
			if i >= len(f.doc) {
				return 0, errJSON
			}
			if f.doc[i] == ']' {
				return i + 1, nil
			}
			if f.doc[i] != ',' {
				return 0, errJSON
			}
			i = f.ws(i + 1)
		}
	default:
		return f.skip(i)
	}
}

// key decodes the member name doc[start:end] (quotes included).
func (f *spanFinder) key(start, end int) (string, error) {
	raw := f.doc[start:end]
	if !strings.ContainsRune(string(raw), '\\') {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errJSON
	}
	return s, nil
}

// str returns the index after the string that starts at i.
func (f *spanFinder) str(i int) (int, error) {
	for j := i + 1; j < len(f.doc); j++ {
		switch f.doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errJSON
}

// skip returns the index after the value that starts at i.
func (f *spanFinder) skip(i int) (int, error) {
	if i >= len(f.doc) {
		return 0, errJSON
	}
	switch f.doc[i] {
	case '"':
		return f.str(i)
	case '{', '[':
		depth := 0
		for j := i; j < len(f.doc); j++ {
			switch f.doc[j] {
			case '"':
				e, err := f.str(j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errJSON
	default:
		j := i
		for j < len(f.doc) {
			c := f.doc[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			j++
		}
		if j == i {
			return 0, errJSON
		}
		return j, nil
	}
}
