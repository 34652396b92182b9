package schemacompat

import (
	"math/big"
	"strings"
)

// conj assembles one schema that accepts what both x and y accept, so that
// a then or else branch can be compared together with the schema around it.
// Keywords only one of them has are kept as they are (with their
// locations, so differences inside keep their pointers); keywords both
// have are combined: types, enum and const intersected, bounds tightened,
// multipleOf to the least common multiple, required and reserved names
// joined, allOf concatenated, properties and items combined name by name
// and position by position. What cannot be combined into one keyword (two
// patterns, two not, two anyOf, patternProperties on both sides, tuples)
// keeps x's keyword and adds y's to allOf, which is exact.
//
// With lift, x is the schema around the branch y: names y evaluates
// (its properties, or every name when it has additionalProperties) are not
// subject to x's unevaluatedProperties, as the validator sees the
// branch's annotations. The same for items and unevaluatedItems.
func conj(x, y node, lift bool) node {
	switch {
	case x.isFalse:
		return x
	case y.isFalse:
		return y
	case y.isEmpty():
		return x
	case x.isEmpty():
		return y
	}
	key := "|and(" + nodeKey(x) + "," + nodeKey(y)
	if lift {
		key += ",lift"
	}
	key += ")"
	b := &builder{x: x, y: y, lift: lift, m: map[string]any{}, origin: map[string]source{}}
	if ok := b.build(); !ok {
		return node{doc: x.doc, loc: key, path: key, isFalse: true, scope: x.scope}
	}
	if len(b.extra) > 0 {
		b.m["allOf"] = append(b.allOf(), b.extra...)
	}
	return node{doc: x.doc, loc: key, path: key, origin: b.origin, m: b.m, opaqueRef: b.opaque, scope: x.scope}
}

// restrict returns n with only the keywords keep accepts: a schema derived
// from n whose subschemas are n's own.
func restrict(n node, suffix string, keep func(string) bool) node {
	m := make(map[string]any, len(n.m))
	for k, v := range n.m {
		if keep(k) {
			m[k] = v
		}
	}
	op := ""
	if keep("$ref") {
		op = n.opaqueRef
	}
	return node{doc: n.doc, loc: n.loc + suffix, path: n.path, origin: n.origin, m: m, opaqueRef: op, scope: n.scope}
}

type builder struct {
	x, y   node
	lift   bool
	m      map[string]any
	origin map[string]source
	extra  []any // subschemas of y's that could not be combined, for allOf
	opaque string
}

func (b *builder) has(n node, k string) bool { _, ok := n.m[k]; return ok }

func (b *builder) copyFrom(n node, keys ...string) {
	for _, k := range keys {
		if v, ok := n.m[k]; ok {
			b.m[k] = v
			b.origin[escapeToken(k)] = n.base(k)
		}
	}
}

// either copies the keywords from x when x has any of them, else from y.
func (b *builder) either(keys ...string) {
	for _, k := range keys {
		if b.has(b.x, k) {
			b.copyFrom(b.x, keys...)
			return
		}
	}
	b.copyFrom(b.y, keys...)
}

// apart keeps x's keywords and adds y's, as a schema of their own, to allOf.
func (b *builder) apart(keys ...string) {
	b.copyFrom(b.x, keys...)
	set := map[string]bool{}
	for _, k := range keys {
		set[k] = true
	}
	b.extra = append(b.extra, nodeValue{restrict(b.y, "|only("+strings.Join(keys, ",")+")", func(k string) bool { return set[k] })})
}

func (b *builder) hasAny(n node, keys ...string) bool {
	for _, k := range keys {
		if b.has(n, k) {
			return true
		}
	}
	return false
}

// group combines keywords that only make sense together: from one side as
// they are, or, when both have some, with both.
func (b *builder) group(keys []string, both func()) {
	hx, hy := b.hasAny(b.x, keys...), b.hasAny(b.y, keys...)
	switch {
	case hx && hy:
		both()
	case hx:
		b.copyFrom(b.x, keys...)
	case hy:
		b.copyFrom(b.y, keys...)
	}
}

var annotationKeywords = []string{"$id", "id", "title", "description", "default", "examples", "$comment",
	"deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "contentSchema"}

// build fills the keyword map; false when the two accept nothing in common
// (disjoint types or enums).
func (b *builder) build() bool {
	x, y := b.x, b.y
	for _, k := range annotationKeywords {
		b.either(k)
	}
	switch {
	case x.opaqueRef != "" && y.opaqueRef != "" && x.opaqueRef != y.opaqueRef:
		b.copyFrom(x, "$ref")
		b.opaque = x.opaqueRef
		b.extra = append(b.extra, nodeValue{restrict(y, "|only($ref)", func(k string) bool { return k == "$ref" })})
	case x.opaqueRef != "":
		b.copyFrom(x, "$ref")
		b.opaque = x.opaqueRef
	case y.opaqueRef != "":
		b.copyFrom(y, "$ref")
		b.opaque = y.opaqueRef
	}

	// Types.
	if b.has(x, "type") && b.has(y, "type") {
		t := declaredTypes(x) & declaredTypes(y)
		if t == 0 {
			return false
		}
		names := t.split()
		l := make([]any, len(names))
		for i, s := range names {
			l[i] = s
		}
		b.m["type"] = l
	} else {
		b.either("type")
	}

	// enum and const.
	ex, _, okx := enumValues(x)
	ey, _, oky := enumValues(y)
	switch {
	case okx && oky:
		var l []any
		for _, k := range sortedKeys(ex) {
			if _, ok := ey[k]; ok {
				l = append(l, ex[k])
			}
		}
		if len(l) == 0 {
			return false
		}
		b.m["enum"] = l
	case okx:
		b.copyFrom(x, "enum", "const")
	case oky:
		b.copyFrom(y, "enum", "const")
	}

	// The numeric range, keyword by keyword (draft-04 forms normalized).
	b.group([]string{"maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"}, func() {
		maxX, exMaxX, minX, exMinX := numericBounds(x)
		maxY, exMaxY, minY, exMinY := numericBounds(y)
		put := func(k string, n *number) {
			if n != nil {
				b.m[k] = n.r
			}
		}
		put("maximum", pickNumber(maxX, maxY, false))
		put("exclusiveMaximum", pickNumber(exMaxX, exMaxY, false))
		put("minimum", pickNumber(minX, minY, true))
		put("exclusiveMinimum", pickNumber(exMinX, exMinY, true))
	})
	mx, my := positive(keywordNumber(x, "multipleOf")), positive(keywordNumber(y, "multipleOf"))
	switch {
	case mx != nil && my != nil:
		b.m["multipleOf"] = lcm(mx.r, my.r)
	case mx != nil:
		b.copyFrom(x, "multipleOf")
	case my != nil:
		b.copyFrom(y, "multipleOf")
	}

	// Counts: the tighter of each.
	for _, k := range []string{"maxLength", "maxItems", "maxProperties"} {
		b.tighterCount(k, false)
	}
	for _, k := range []string{"minLength", "minItems", "minProperties"} {
		b.tighterCount(k, true)
	}

	// Keywords that combine only when equal.
	for _, k := range []string{"pattern", "format", "dependentRequired", "dependencies", "dependentSchemas", "not", "anyOf", "oneOf"} {
		// Schemas are the same only at the same location (their
		// references resolve from there).
		sameAt := k == "pattern" || k == "format" || k == "dependentRequired" || x.base(k) == y.base(k)
		b.group([]string{k}, func() {
			if sameAt && canonical(x.m[k]) == canonical(y.m[k]) {
				b.copyFrom(x, k)
			} else {
				b.apart(k)
			}
		})
	}
	b.group([]string{"if", "then", "else"}, func() { b.apart("if", "then", "else") })
	b.group([]string{"contains", "minContains", "maxContains"}, func() {
		if b.has(x, "contains") && b.has(y, "contains") {
			b.apart("contains", "minContains", "maxContains")
			return
		}
		b.copyFrom(y, "contains", "minContains", "maxContains")
		b.copyFrom(x, "contains", "minContains", "maxContains")
	})

	// Sets of names.
	b.group([]string{"required"}, func() { b.m["required"] = union(stringList(x.m["required"]), stringList(y.m["required"])) })
	b.group([]string{ReservedKeyword}, func() {
		b.m[ReservedKeyword] = union(sortedKeys(reservedNames(x)), sortedKeys(reservedNames(y)))
	})
	b.group([]string{"uniqueItems"}, func() {
		ux, _ := x.m["uniqueItems"].(bool)
		uy, _ := y.m["uniqueItems"].(bool)
		b.m["uniqueItems"] = ux || uy
	})

	// Subschemas.
	b.group([]string{"propertyNames"}, func() {
		sx, _ := x.sub("propertyNames")
		sy, _ := y.sub("propertyNames")
		b.m["propertyNames"] = nodeValue{conj(sx, sy, false)}
	})
	if l := b.allOf(); len(l) > 0 {
		b.m["allOf"] = l
	}
	b.group([]string{"properties", "patternProperties", "additionalProperties", "unevaluatedProperties"}, b.objects)
	b.group([]string{"items", "prefixItems", "additionalItems", "unevaluatedItems"}, b.arrays)
	return true
}

// allOf lists x's and y's allOf subschemas.
func (b *builder) allOf() []any {
	var out []any
	for _, s := range subschemas(b.x, "allOf", false) {
		out = append(out, nodeValue{s.n})
	}
	for _, s := range subschemas(b.y, "allOf", false) {
		out = append(out, nodeValue{s.n})
	}
	return out
}

func (b *builder) tighterCount(k string, lower bool) {
	nx, ny := keywordNumber(b.x, k), keywordNumber(b.y, k)
	switch {
	case nx != nil && ny != nil:
		if pickNumber(nx, ny, lower) == nx {
			b.copyFrom(b.x, k)
		} else {
			b.copyFrom(b.y, k)
		}
	case nx != nil:
		b.copyFrom(b.x, k)
	case ny != nil:
		b.copyFrom(b.y, k)
	}
}

// pickNumber returns the larger (or, with larger false, the smaller) of two
// optional numbers.
func pickNumber(a, b *number, larger bool) *number {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	c := a.r.Cmp(b.r)
	if (c >= 0) == larger || c == 0 {
		return a
	}
	return b
}

// lcm is the least common multiple of two positive rationals: the smallest
// positive number both divide.
func lcm(a, b *big.Rat) *big.Rat {
	num := new(big.Int).Mul(a.Num(), b.Num())
	num.Quo(num, new(big.Int).GCD(nil, nil, a.Num(), b.Num()))
	den := new(big.Int).GCD(nil, nil, a.Denom(), b.Denom())
	return new(big.Rat).SetFrac(num, den)
}

func stringList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// union lists the names of a then those of b not in a.
func union(a, b []string) []any {
	seen := map[string]bool{}
	var out []any
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// restSchema is the schema a content model applies to a name or position
// it does not define: its additional keyword, else its unevaluated one
// (unless lifted), else nothing (ok false).
func restSchema(n node, additionalKW, unevaluatedKW string, lifted bool) (node, string, bool) {
	if s := slotOf(n, additionalKW); s.kind != slotOpen {
		return s.s, additionalKW, true
	}
	if s := slotOf(n, unevaluatedKW); s.kind != slotOpen && !lifted {
		return s.s, unevaluatedKW, true
	}
	return node{}, "", false
}

// both combines two optional schemas: their conjunction, or the one present.
func both(x node, okx bool, y node, oky bool) (node, bool) {
	switch {
	case okx && oky:
		return conj(x, y, false), true
	case okx:
		return x, true
	case oky:
		return y, true
	}
	return node{}, false
}

// objects combines the object content models when neither side has
// patternProperties (patterns of both would need their overlap): each
// property gets what both apply to its name, and the rest what both apply
// to other names.
func (b *builder) objects() {
	x, y := b.x, b.y
	keys := []string{"properties", "patternProperties", "additionalProperties", "unevaluatedProperties"}
	if len(x.object("patternProperties")) > 0 || len(y.object("patternProperties")) > 0 {
		b.apart(keys...)
		return
	}
	px, py := x.object("properties"), y.object("properties")
	// With lift, the names y defines are evaluated: x's
	// unevaluatedProperties does not reach them; and when y has
	// additionalProperties, it evaluates every name.
	_, yEvaluatesAll := y.m["additionalProperties"]
	names := map[string]bool{}
	for k := range px {
		names[k] = true
	}
	for k := range py {
		names[k] = true
	}
	if len(names) > 0 {
		props := map[string]any{}
		for _, name := range sortedKeys(names) {
			ptr := "/properties/" + escapeToken(name)
			var sx, sy node
			var okx, oky bool
			if v, ok := px[name]; ok {
				sx, okx = x.child(v, ptr), true
			} else {
				sx, _, okx = restSchema(x, "additionalProperties", "unevaluatedProperties", b.lift)
			}
			if v, ok := py[name]; ok {
				sy, oky = y.child(v, ptr), true
			} else {
				sy, _, oky = restSchema(y, "additionalProperties", "unevaluatedProperties", false)
			}
			s, _ := both(sx, okx, sy, oky)
			props[name] = nodeValue{s}
		}
		b.m["properties"] = props
	}
	rx, kwx, okx := restSchema(x, "additionalProperties", "unevaluatedProperties", b.lift && yEvaluatesAll)
	ry, kwy, oky := restSchema(y, "additionalProperties", "unevaluatedProperties", false)
	if r, ok := both(rx, okx, ry, oky); ok {
		kw := "unevaluatedProperties"
		if kwx == "additionalProperties" || kwy == "additionalProperties" {
			kw = "additionalProperties"
		}
		b.m[kw] = nodeValue{r}
	}
}

// arrays combines the item keywords when neither side has a tuple: one
// items schema for both.
func (b *builder) arrays() {
	x, y := b.x, b.y
	keys := []string{"items", "prefixItems", "additionalItems", "unevaluatedItems"}
	if arrayViewOf(x).hasTuple || arrayViewOf(y).hasTuple {
		b.apart(keys...)
		return
	}
	ix, okx := x.sub("items")
	iy, oky := y.sub("items")
	ux, uokx := x.sub("unevaluatedItems")
	uy, uoky := y.sub("unevaluatedItems")
	// items evaluates every item, so the unevaluatedItems next to it never
	// applies; y's items do the same for x's with lift. What still applies
	// applies to every item, as items does.
	uokx = uokx && !okx && !(b.lift && oky)
	uoky = uoky && !oky
	if okx || oky {
		s, _ := both(ix, okx, iy, oky)
		s, _ = both(s, true, ux, uokx)
		s, _ = both(s, true, uy, uoky)
		b.m["items"] = nodeValue{s}
		return
	}
	if s, ok := both(ux, uokx, uy, uoky); ok {
		b.m["unevaluatedItems"] = nodeValue{s}
	}
}
