package schemacompat

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// slotKind classifies keywords such as additionalProperties whose value
// decides what happens to instance parts no other keyword covers.
type slotKind int

const (
	slotOpen   slotKind = iota // absent, true or an empty schema
	slotFalse                  // false: nothing more is accepted
	slotSchema                 // a constraining schema
)

type slot struct {
	kind slotKind
	s    node
}

func slotOf(n node, kw string) slot {
	s, ok := n.sub(kw)
	switch {
	case !ok || s.isEmpty():
		return slot{kind: slotOpen}
	case s.isFalse:
		return slot{kind: slotFalse, s: s}
	default:
		return slot{kind: slotSchema, s: s}
	}
}

type slotKinds struct{ added, removed, extended, narrowed ChangeType }

var (
	additionalPropertiesKinds  = slotKinds{AdditionalPropertiesAdded, AdditionalPropertiesRemoved, AdditionalPropertiesExtended, AdditionalPropertiesNarrowed}
	unevaluatedPropertiesKinds = slotKinds{UnevaluatedPropertiesAdded, UnevaluatedPropertiesRemoved, UnevaluatedPropertiesExtended, UnevaluatedPropertiesNarrowed}
	additionalItemsKinds       = slotKinds{AdditionalItemsAdded, AdditionalItemsRemoved, AdditionalItemsExtended, AdditionalItemsNarrowed}
	unevaluatedItemsKinds      = slotKinds{UnevaluatedItemsAdded, UnevaluatedItemsRemoved, UnevaluatedItemsExtended, UnevaluatedItemsNarrowed}
)

// compareSlot compares two slot keywords at ptr (kw names them in messages).
func (c *comparer) compareSlot(ptr, kw string, a, b slot, k slotKinds, out *diffs) {
	switch {
	case a.kind == b.kind && a.kind != slotSchema:
	case b.kind == slotFalse:
		out.add(k.removed, ptr, "%s is now false: what it allowed before is rejected", kw)
	case a.kind == slotFalse:
		out.add(k.added, ptr, "%s was false and now allows more", kw)
	case a.kind == slotOpen:
		out.add(k.narrowed, ptr, "%s was open and now has a schema", kw)
	case b.kind == slotOpen:
		out.add(k.extended, ptr, "%s had a schema and is now open", kw)
	default:
		out.nest(ptr, c.compare(a.s, b.s))
	}
}

// rest describes what a content model accepts for the parts that its named
// parts (properties, tuple positions) and patterns do not cover.
type rest struct {
	kind    slotKind
	schemas []node
	via     string
}

// restOf resolves the additional-then-unevaluated fallback of a content
// model.
func restOf(additional slot, additionalKW string, unevaluated slot, unevaluatedKW string) rest {
	switch additional.kind {
	case slotSchema:
		return rest{kind: slotSchema, schemas: []node{additional.s}, via: additionalKW}
	case slotFalse:
		return rest{kind: slotFalse, via: additionalKW}
	}
	switch unevaluated.kind {
	case slotSchema:
		return rest{kind: slotSchema, schemas: []node{unevaluated.s}, via: unevaluatedKW}
	case slotFalse:
		return rest{kind: slotFalse, via: unevaluatedKW}
	}
	return rest{kind: slotOpen}
}

type patternProp struct {
	key string
	re  *regexp.Regexp // nil when the pattern does not compile in RE2
	s   node
}

// objectModel is the content model of an object schema.
type objectModel struct {
	additional  slot
	unevaluated slot
	patterns    []patternProp
}

func (c *comparer) objectModel(n node) objectModel {
	m := objectModel{
		additional:  slotOf(n, "additionalProperties"),
		unevaluated: slotOf(n, "unevaluatedProperties"),
	}
	pp := n.object("patternProperties")
	for _, k := range sortedKeys(pp) {
		m.patterns = append(m.patterns, patternProp{
			key: k,
			re:  c.compile(k),
			s:   n.child(pp[k], "/patternProperties/"+escapeToken(k)),
		})
	}
	return m
}

// compile compiles a pattern with Go's RE2 engine, caching the result. A
// pattern RE2 cannot compile (lookaround, backreferences) matches nothing.
func (c *comparer) compile(p string) *regexp.Regexp {
	if re, ok := c.regex[p]; ok {
		return re
	}
	re, err := regexp.Compile(p)
	if err != nil {
		re = nil
	}
	c.regex[p] = re
	return re
}

// open reports an open content model: additionalProperties absent or true,
// no patternProperties, unevaluatedProperties absent or true.
func (m objectModel) open() bool {
	return m.additional.kind == slotOpen && len(m.patterns) == 0 && m.unevaluated.kind == slotOpen
}

func (m objectModel) rest() rest {
	return restOf(m.additional, "additionalProperties", m.unevaluated, "unevaluatedProperties")
}

// fallbackFor is what the model accepts for a property name it does not
// define: the matching patternProperties schemas, else the rest.
func (m objectModel) fallbackFor(name string) rest {
	var matched []node
	var keys []string
	for _, p := range m.patterns {
		if p.re != nil && p.re.MatchString(name) {
			matched = append(matched, p.s)
			keys = append(keys, fmt.Sprintf("%q", p.key))
		}
	}
	if len(matched) > 0 {
		return rest{kind: slotSchema, schemas: matched, via: "patternProperties " + strings.Join(keys, ", ")}
	}
	return m.rest()
}

func stringSet(v any) map[string]bool {
	l, _ := v.([]any)
	set := make(map[string]bool, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			set[s] = true
		}
	}
	return set
}

// reservedNames reads [ReservedKeyword]: an array of strings or one
// comma-separated string.
func reservedNames(n node) map[string]bool {
	switch v := n.m[ReservedKeyword].(type) {
	case []any:
		set := stringSet(v)
		delete(set, "")
		return set
	case string:
		set := map[string]bool{}
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				set[s] = true
			}
		}
		return set
	}
	return nil
}

func hasDefault(n node) bool {
	_, ok := n.m["default"]
	return ok
}

func (c *comparer) compareObjects(a, b node, out *diffs) {
	ma, mb := c.objectModel(a), c.objectModel(b)
	pa, pb := a.object("properties"), b.object("properties")
	ra, rb := stringSet(a.m["required"]), stringSet(b.m["required"])

	c.compareReserved(a, b, pb, out)

	names := map[string]bool{}
	for k := range pa {
		names[k] = true
	}
	for k := range pb {
		names[k] = true
	}
	for _, name := range sortedKeys(names) {
		ptr := "/properties/" + escapeToken(name)
		va, ina := pa[name]
		vb, inb := pb[name]
		switch {
		case ina && inb:
			out.nest(ptr, c.compare(a.child(va, ptr), b.child(vb, ptr)))
		case ina:
			c.propertyRemoved(name, ptr, a.child(va, ptr), mb, out)
		default:
			c.propertyAdded(name, ptr, b.child(vb, ptr), ma, rb[name], out)
		}
	}

	required := map[string]bool{}
	for k := range ra {
		required[k] = true
	}
	for k := range rb {
		required[k] = true
	}
	for _, name := range sortedKeys(required) {
		_, ina := pa[name]
		vb, inb := pb[name]
		if inb && !ina {
			continue // an added property: its kind already says whether it is required
		}
		ptr := "/required/" + escapeToken(name)
		switch {
		case ra[name] && !rb[name]:
			out.add(RequiredAttributeRemoved, ptr, "%q is no longer required", name)
		case !ra[name] && rb[name]:
			if inb && hasDefault(b.child(vb, "/properties/"+escapeToken(name))) {
				out.add(RequiredAttributeWithDefaultAdded, ptr, "%q is now required and has a default", name)
			} else {
				out.add(RequiredAttributeAdded, ptr, "%q is now required; data without it is rejected", name)
			}
		}
	}

	c.compareSlot("/additionalProperties", "additionalProperties", ma.additional, mb.additional, additionalPropertiesKinds, out)
	c.comparePatternProperties(a, b, ma, mb, pa, pb, out)
	c.compareSlot("/unevaluatedProperties", "unevaluatedProperties", ma.unevaluated, mb.unevaluated, unevaluatedPropertiesKinds, out)
	out.bound("maxProperties", keywordNumber(a, "maxProperties"), keywordNumber(b, "maxProperties"), maxPropertiesKinds)
	out.bound("minProperties", keywordNumber(a, "minProperties"), keywordNumber(b, "minProperties"), minPropertiesKinds)
	c.compareDependencies(a, b, out)

	sa, oka := a.sub("propertyNames")
	sb, okb := b.sub("propertyNames")
	noneA, noneB := !oka || sa.isEmpty(), !okb || sb.isEmpty()
	switch {
	case noneA && noneB:
	case noneA:
		out.add(PropertyNamesAdded, "/propertyNames", "propertyNames added: property names are now constrained")
	case noneB:
		out.add(PropertyNamesRemoved, "/propertyNames", "propertyNames removed: any property name is accepted")
	default:
		out.nest("/propertyNames", c.compare(sa, sb))
	}
}

func (c *comparer) compareReserved(a, b node, pb map[string]any, out *diffs) {
	ra, rb := reservedNames(a), reservedNames(b)
	for _, name := range sortedKeys(ra) {
		if !rb[name] {
			out.add(ReservedPropertyRemoved, "/"+escapeToken(ReservedKeyword), "%q is no longer reserved", name)
		}
	}
	for _, name := range sortedKeys(rb) {
		if _, ok := pb[name]; ok {
			out.add(ReservedPropertyConflictsWithProperty, "/properties/"+escapeToken(name), "property %q is reserved", name)
		}
	}
}

// propertyRemoved judges a property the previous schema defined and the new
// one does not, by the new content model.
func (c *comparer) propertyRemoved(name, ptr string, p node, mb objectModel, out *diffs) {
	if mb.open() {
		out.add(PropertyRemovedFromOpenContentModel, ptr, "property %q removed; the new open content model accepts it with any value", name)
		return
	}
	fb := mb.fallbackFor(name)
	switch fb.kind {
	case slotOpen:
		out.add(PropertyRemovedIsCoveredByPartiallyOpenContentModel, ptr, "property %q removed; no pattern or additional schema of the new schema constrains it", name)
	case slotFalse:
		if p.isFalse {
			out.add(PropertyWithFalseRemovedFromClosedContentModel, ptr, "property %q, which was false, removed from a closed content model", name)
		} else {
			out.add(PropertyRemovedFromClosedContentModel, ptr, "property %q removed and the new %s is false: data holding it is rejected", name, fb.via)
		}
	default:
		var bad []Difference
		for _, s := range fb.schemas {
			if ds, ok := c.probe(p, s); !ok {
				bad = append(bad, ds...)
			}
		}
		if len(bad) == 0 {
			out.add(PropertyRemovedIsCoveredByPartiallyOpenContentModel, ptr, "property %q removed; its values are accepted by the new %s", name, fb.via)
		} else {
			out.add(PropertyRemovedNotCoveredByPartiallyOpenContentModel, ptr, "property %q removed; the new %s rejects some of its values (%s)", name, fb.via, summarize(bad))
		}
	}
}

// propertyAdded judges a property the new schema defines and the previous
// one did not, by the previous content model.
func (c *comparer) propertyAdded(name, ptr string, q node, ma objectModel, required bool, out *diffs) {
	withDefault := hasDefault(q)
	if ma.open() {
		switch {
		case q.isFalse:
			out.add(PropertyAddedToOpenContentModel, ptr, "property %q added as false; the previous open content model accepted it with any value", name)
		case required && withDefault:
			out.add(RequiredPropertyWithDefaultAddedToOpenContentModel, ptr, "required property %q with a default added to an open content model", name)
		case required:
			out.add(RequiredPropertyAddedToOpenContentModel, ptr, "required property %q added to an open content model", name)
		case q.isEmpty():
			out.add(PropertyWithEmptySchemaAddedToOpenContentModel, ptr, "property %q with an empty schema added to an open content model", name)
		default:
			out.add(OptionalPropertyAddedToOpenContentModel, ptr, "optional property %q added to an open content model: old data may hold it with other values", name)
		}
		return
	}
	fb := ma.fallbackFor(name)
	switch fb.kind {
	case slotOpen:
		if ds, ok := c.probe(trueNode(), q); ok {
			out.add(PropertyAddedIsCoveredByPartiallyOpenContentModel, ptr, "property %q added; it accepts any value, as the previous schema did", name)
		} else {
			out.add(PropertyAddedNotCoveredByPartiallyOpenContentModel, ptr, "property %q added; the previous schema accepted it with any value (%s)", name, summarize(ds))
		}
	case slotSchema:
		var bad []Difference
		covered := false
		for _, s := range fb.schemas {
			ds, ok := c.probe(s, q)
			if ok {
				covered = true
				break
			}
			if bad == nil || len(ds) < len(bad) {
				bad = ds
			}
		}
		if covered {
			out.add(PropertyAddedIsCoveredByPartiallyOpenContentModel, ptr, "property %q added; it accepts the values the previous %s accepted", name, fb.via)
		} else {
			out.add(PropertyAddedNotCoveredByPartiallyOpenContentModel, ptr, "property %q added; it rejects values the previous %s accepted (%s)", name, fb.via, summarize(bad))
		}
	}
	switch {
	case required && withDefault:
		out.add(RequiredPropertyWithDefaultAddedToUnopenContentModel, ptr, "required property %q with a default added", name)
	case required:
		out.add(RequiredPropertyAddedToUnopenContentModel, ptr, "required property %q added: data without it is rejected", name)
	default:
		out.add(OptionalPropertyAddedToUnopenContentModel, ptr, "optional property %q added", name)
	}
}

// comparePatternProperties compares patternProperties by key. Shared keys
// are compared as subschemas; added and removed keys get a verdict from the
// content model around them (see the package documentation).
func (c *comparer) comparePatternProperties(a, b node, ma, mb objectModel, pa, pb map[string]any, out *diffs) {
	keys := map[string]bool{}
	byKeyA := map[string]patternProp{}
	byKeyB := map[string]patternProp{}
	for _, p := range ma.patterns {
		keys[p.key] = true
		byKeyA[p.key] = p
	}
	for _, p := range mb.patterns {
		keys[p.key] = true
		byKeyB[p.key] = p
	}
	lenient := c.policy == PolicyLenient
	for _, key := range sortedKeys(keys) {
		ptr := "/patternProperties/" + escapeToken(key)
		pA, inA := byKeyA[key]
		pB, inB := byKeyB[key]
		switch {
		case inA && inB:
			out.nest(ptr, c.compare(pA.s, pB.s))
		case inB:
			c.patternAdded(key, ptr, pB, ma, a, pa, pb, lenient, out)
		default:
			c.patternRemoved(key, ptr, pA, mb, lenient, out)
		}
	}
}

func (c *comparer) patternAdded(key, ptr string, p patternProp, ma objectModel, a node, pa, pb map[string]any, lenient bool, out *diffs) {
	if p.s.isEmpty() {
		out.addVerdict(PatternPropertyAdded, ptr, true, "pattern property %q added with an empty schema: it constrains nothing", key)
		return
	}
	compatible := true
	var reasons []string
	// Properties both schemas define must now also match the pattern schema.
	for _, name := range sortedKeys(pa) {
		if _, still := pb[name]; !still || p.re == nil || !p.re.MatchString(name) {
			continue
		}
		ptrA := "/properties/" + escapeToken(name)
		if ds, ok := c.probe(a.child(pa[name], ptrA), p.s); !ok {
			compatible = false
			reasons = append(reasons, fmt.Sprintf("property %q now also has to match it (%s)", name, summarize(ds)))
		}
	}
	// Other names matching the pattern fell to the previous rest.
	fb := ma.rest()
	switch fb.kind {
	case slotOpen:
		if p.s.isFalse {
			compatible = false
			reasons = append(reasons, "names matching it were accepted with any value and are now forbidden")
		} else {
			compatible = compatible && lenient
			reasons = append(reasons, "names matching it were accepted with any value")
		}
	case slotSchema:
		if ds, ok := c.probe(fb.schemas[0], p.s); !ok {
			compatible = compatible && lenient
			reasons = append(reasons, fmt.Sprintf("it rejects values the previous %s accepted (%s)", fb.via, summarize(ds)))
		}
	case slotFalse:
		// Names matching it were not accepted before (unless named).
	}
	if len(reasons) == 0 {
		out.addVerdict(PatternPropertyAdded, ptr, compatible, "pattern property %q added", key)
		return
	}
	sort.Strings(reasons)
	out.addVerdict(PatternPropertyAdded, ptr, compatible, "pattern property %q added: %s", key, strings.Join(reasons, "; "))
}

func (c *comparer) patternRemoved(key, ptr string, p patternProp, mb objectModel, lenient bool, out *diffs) {
	if p.s.isFalse {
		out.addVerdict(PatternPropertyRemoved, ptr, true, "pattern property %q, which forbade matching names, removed", key)
		return
	}
	fb := mb.rest()
	switch fb.kind {
	case slotOpen:
		out.addVerdict(PatternPropertyRemoved, ptr, true, "pattern property %q removed; matching names are now accepted with any value", key)
	case slotFalse:
		out.addVerdict(PatternPropertyRemoved, ptr, lenient, "pattern property %q removed and the new %s is false: data with matching names is rejected", key, fb.via)
	default:
		if ds, ok := c.probe(p.s, fb.schemas[0]); ok {
			out.addVerdict(PatternPropertyRemoved, ptr, true, "pattern property %q removed; matching names are covered by the new %s", key, fb.via)
		} else {
			out.addVerdict(PatternPropertyRemoved, ptr, lenient, "pattern property %q removed; the new %s rejects some values it accepted (%s)", key, fb.via, summarize(ds))
		}
	}
}

// dependency is one entry of dependencies, dependentRequired or
// dependentSchemas.
type dependency struct {
	kw    string
	names map[string]bool // property dependency
	raw   any             // schema dependency
}

func dependenciesOf(n node) (arrays, schemas map[string]dependency) {
	arrays, schemas = map[string]dependency{}, map[string]dependency{}
	for _, kw := range []string{"dependencies", "dependentRequired", "dependentSchemas"} {
		obj := n.object(kw)
		for _, name := range sortedKeys(obj) {
			v := obj[name]
			if l, ok := v.([]any); ok && kw != "dependentSchemas" {
				if set := stringSet(l); len(set) > 0 {
					arrays[name] = dependency{kw: kw, names: set}
				}
				continue
			}
			if kw == "dependentRequired" {
				continue
			}
			if s := n.child(v, "/"+kw+"/"+escapeToken(name)); !s.isEmpty() {
				schemas[name] = dependency{kw: kw, raw: v}
			}
		}
	}
	return arrays, schemas
}

func (c *comparer) compareDependencies(a, b node, out *diffs) {
	arrA, schA := dependenciesOf(a)
	arrB, schB := dependenciesOf(b)

	for _, name := range unionKeys(arrA, arrB) {
		da, inA := arrA[name]
		db, inB := arrB[name]
		switch {
		case !inA:
			out.add(DependencyArrayAdded, "/"+db.kw+"/"+escapeToken(name), "when %q is present, %s are now required", name, quoteSet(db.names))
		case !inB:
			out.add(DependencyArrayRemoved, "/"+da.kw+"/"+escapeToken(name), "the dependency of %q on %s was removed", name, quoteSet(da.names))
		default:
			ptr := "/" + db.kw + "/" + escapeToken(name)
			moreB, moreA := subtract(db.names, da.names), subtract(da.names, db.names)
			switch {
			case len(moreB) == 0 && len(moreA) == 0:
			case len(moreA) == 0:
				out.add(DependencyArrayExtended, ptr, "when %q is present, %s are now also required", name, strings.Join(moreB, ", "))
			case len(moreB) == 0:
				out.add(DependencyArrayNarrowed, ptr, "when %q is present, %s are no longer required", name, strings.Join(moreA, ", "))
			default:
				out.add(DependencyArrayChanged, ptr, "the properties %q depends on changed: %s added, %s removed", name, strings.Join(moreB, ", "), strings.Join(moreA, ", "))
			}
		}
	}
	for _, name := range unionKeys(schA, schB) {
		da, inA := schA[name]
		db, inB := schB[name]
		switch {
		case !inA:
			out.add(DependencySchemaAdded, "/"+db.kw+"/"+escapeToken(name), "a schema dependency on %q was added", name)
		case !inB:
			out.add(DependencySchemaRemoved, "/"+da.kw+"/"+escapeToken(name), "the schema dependency on %q was removed", name)
		default:
			pa := "/" + da.kw + "/" + escapeToken(name)
			pb := "/" + db.kw + "/" + escapeToken(name)
			out.nest(pb, c.compare(a.child(da.raw, pa), b.child(db.raw, pb)))
		}
	}
}

func unionKeys[V any](a, b map[string]V) []string {
	set := make(map[string]bool, len(a)+len(b))
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	return sortedKeys(set)
}

// subtract returns the sorted names in a and not in b, quoted.
func subtract(a, b map[string]bool) []string {
	var out []string
	for _, k := range sortedKeys(a) {
		if !b[k] {
			out = append(out, fmt.Sprintf("%q", k))
		}
	}
	return out
}

func quoteSet(s map[string]bool) string {
	return strings.Join(subtract(s, nil), ", ")
}
