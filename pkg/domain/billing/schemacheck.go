package billing

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// schemaCheck is what a JSON Schema says about the member a path names.
type schemaCheck struct {
	// produced is false when the schema cannot produce the member.
	produced bool
	// at is the part of the path the schema stops producing, when it does.
	at string
	// types lists the JSON types the member may have; nil when the schema
	// does not restrict them (or cannot be followed, as through a $ref to
	// another registered schema).
	types []string
}

// checkPath follows p through a JSON Schema document (decoded JSON) of an
// event's data. A member is produced when the schema declares it: in
// properties, patternProperties or an additionalProperties schema, in items
// or prefixItems; allOf, anyOf and oneOf branches and local $refs are
// followed. A member that is merely allowed (additionalProperties left
// open) is not produced: a typo in a path must not pass. What cannot be
// followed (a $ref to another schema, the schema true) produces anything.
func checkPath(root any, p Path) schemaCheck {
	nodes := []any{root}
	for i, s := range p.segs {
		var next []any
		for _, n := range expand(root, nodes) {
			if n == nil { // unknown: anything goes from here on
				return schemaCheck{produced: true}
			}
			next = append(next, children(n, s)...)
		}
		if len(next) == 0 {
			return schemaCheck{at: pathPrefix(p, i+1)}
		}
		nodes = next
	}
	// The member's types: those of every schema that applies and says
	// (a wrapper such as {"allOf": [...]} says nothing itself).
	var types []string
	for _, n := range expand(root, nodes) {
		if n == nil {
			return schemaCheck{produced: true}
		}
		types = append(types, typesOf(n)...)
	}
	if len(types) == 0 {
		return schemaCheck{produced: true}
	}
	slices.Sort(types)
	return schemaCheck{produced: true, types: slices.Compact(types)}
}

// pathPrefix renders the first n segments of p as a JSONPath.
func pathPrefix(p Path, n int) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, s := range p.segs[:n] {
		switch {
		case s.isIdx:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case s.name != "" && strings.IndexFunc(s.name, func(r rune) bool { return r < 0x80 && !isNameByte(byte(r)) }) < 0:
			b.WriteString("." + s.name)
		default:
			b.WriteString("['" + strings.ReplaceAll(s.name, "'", `\'`) + "']")
		}
	}
	return b.String()
}

// expand resolves local $refs and spreads allOf, anyOf and oneOf into the
// schemas that may apply. nil in the result means "cannot be followed".
func expand(root any, nodes []any) []any {
	var out []any
	var walk func(n any, depth int)
	walk = func(n any, depth int) {
		if depth > 32 {
			out = append(out, nil)
			return
		}
		switch s := n.(type) {
		case bool:
			if s {
				out = append(out, nil)
			}
			return
		case map[string]any:
			if ref, ok := s["$ref"].(string); ok {
				target, ok := resolveLocal(root, ref)
				if !ok {
					out = append(out, nil)
					return
				}
				walk(target, depth+1)
			}
			out = append(out, s)
			for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
				if branches, ok := s[kw].([]any); ok {
					for _, b := range branches {
						walk(b, depth+1)
					}
				}
			}
		default:
			out = append(out, nil)
		}
	}
	for _, n := range nodes {
		walk(n, 0)
	}
	return out
}

// resolveLocal follows a "#/..." reference inside root.
func resolveLocal(root any, ref string) (any, bool) {
	ptr, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	cur := root
	if ptr == "" {
		return cur, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := cur.(type) {
		case map[string]any:
			if cur, ok = c[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// children are the schemas that declare member s of a value of schema n.
func children(n any, s segment) []any {
	m, ok := n.(map[string]any)
	if !ok {
		return nil
	}
	var out []any
	if s.isIdx {
		if prefix, ok := m["prefixItems"].([]any); ok && s.index < len(prefix) {
			return append(out, prefix[s.index])
		}
		switch items := m["items"].(type) {
		case map[string]any, bool:
			if items != false {
				out = append(out, items)
			}
		case []any: // draft-07 tuple
			if s.index < len(items) {
				out = append(out, items[s.index])
			} else if add, ok := m["additionalItems"]; ok && add != false {
				out = append(out, add)
			}
		}
		return out
	}
	if props, ok := m["properties"].(map[string]any); ok {
		if c, ok := props[s.name]; ok {
			out = append(out, c)
		}
	}
	if pats, ok := m["patternProperties"].(map[string]any); ok {
		for pat, c := range pats {
			if re, err := regexp.Compile(pat); err == nil && re.MatchString(s.name) {
				out = append(out, c)
			}
		}
	}
	if len(out) == 0 {
		if add, ok := m["additionalProperties"].(map[string]any); ok {
			out = append(out, add)
		}
	}
	return out
}

// typesOf lists the JSON types schema n allows; nil when it does not say.
func typesOf(n any) []string {
	m, ok := n.(map[string]any)
	if !ok {
		return nil
	}
	switch t := m["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// numeric reports whether a member of the given types can be a number.
func (c schemaCheck) numeric() bool {
	return c.types == nil || slices.Contains(c.types, "number") || slices.Contains(c.types, "integer")
}

func (c schemaCheck) describeTypes() string { return strings.Join(c.types, " or ") }
