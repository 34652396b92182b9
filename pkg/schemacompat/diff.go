package schemacompat

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// maxDepth bounds how deeply Diff descends (nesting plus combinator probes).
const maxDepth = 1000

// Direction says which way [Check] compared two versions.
type Direction string

const (
	// DirectionBackward: the new version reads data written with the
	// compared version (Diff(version, next)).
	DirectionBackward Direction = "BACKWARD"
	// DirectionForward: the compared version reads data written with the
	// new version (Diff(next, version)).
	DirectionForward Direction = "FORWARD"
)

// Difference is one change found between a previous and a next schema.
type Difference struct {
	// Type is the kind of change.
	Type ChangeType `json:"type"`
	// Pointer locates the change: a URI-fragment JSON pointer such as
	// "#/properties/amount/maximum", with "~" and "/" inside names escaped
	// as "~0" and "~1" (RFC 6901) and no percent-encoding. It addresses the
	// next schema, except for things only the previous schema has (a
	// removed property, tuple item, pattern or union), which it addresses in
	// the previous schema. See the package documentation for the few
	// pointers whose last token is not a schema location.
	Pointer string `json:"pointer"`
	// Compatible is the verdict under the policy used: true when data valid
	// under the previous schema stays valid under the next one as far as
	// this change is concerned.
	Compatible bool `json:"compatible"`
	// Message explains the change in English.
	Message string `json:"message"`
	// Version is set by [Check]: the 1-based position, in the versions
	// passed to Check, of the version this difference was found against.
	// Diff leaves it zero.
	Version int `json:"version,omitempty"`
	// Direction is set by [Check]: which way the versions were compared.
	// Diff leaves it empty.
	Direction Direction `json:"direction,omitempty"`
}

// String renders the difference as "TYPE at POINTER: message".
func (d Difference) String() string {
	return fmt.Sprintf("%s at %s: %s", d.Type, d.Pointer, d.Message)
}

// IsCompatible reports whether every difference is compatible. An empty or
// nil list is compatible.
func IsCompatible(diffs []Difference) bool {
	for _, d := range diffs {
		if !d.Compatible {
			return false
		}
	}
	return true
}

// Diff compares two schemas in the backward direction (can a reader using
// next read data written with previous?) and returns every difference found,
// each with its verdict under policy, sorted by pointer, then type, then
// message, with exact duplicates removed. The result is deterministic and
// never nil.
//
// A schema is a decoded JSON value: map[string]any for objects, bool for
// boolean schemas, []any, string, nil and numbers inside. Numbers may be
// json.Number (decoding with UseNumber, as [ParseSchema] does, keeps them
// exact), float64 or any Go integer or float type. A []byte or
// json.RawMessage is parsed with [ParseSchema] first. A root that is not an
// object or boolean yields an error wrapping [ErrInvalidSchema]; a non-schema
// value where a subschema is expected is treated as the empty schema {}.
//
// An empty policy means [PolicyStrict]; an unknown one yields an error
// wrapping [ErrUnknownPolicy].
//
// Diff does not modify its arguments and is safe to call concurrently.
func Diff(previous, next any, policy Policy) ([]Difference, error) {
	return Checker{Policy: policy}.Diff(previous, next)
}

// Diff is [Diff] under the checker's policy, resolving references the
// schemas do not resolve themselves with the checker's Loader.
func (k Checker) Diff(previous, next any) ([]Difference, error) {
	pol, err := ParsePolicy(string(k.Policy))
	if err != nil {
		return nil, err
	}
	return diff(pol, newLoadCache(k.Loader), previous, next)
}

func diff(pol Policy, cache *loadCache, previous, next any) ([]Difference, error) {
	pv, err := rootValue(previous)
	if err != nil {
		return nil, fmt.Errorf("previous schema: %w", err)
	}
	nv, err := rootValue(next)
	if err != nil {
		return nil, fmt.Errorf("next schema: %w", err)
	}
	c := newComparer(pol)
	ps := newSide("P", pv, cache)
	ns := newSide("N", nv, cache)
	ds := c.compare(ps.root.nodeAt(pv, "", nil), ns.root.nodeAt(nv, "", nil))
	for _, err := range []error{ps.err, ns.err, c.err} {
		if err != nil {
			return nil, err
		}
	}
	return finish(ds), nil
}

// finish turns relative pointers into URI fragments, sorts and removes
// exact duplicates.
func finish(ds []Difference) []Difference {
	out := make([]Difference, 0, len(ds))
	for _, d := range ds {
		d.Pointer = "#" + d.Pointer
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Pointer != b.Pointer {
			return a.Pointer < b.Pointer
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Message < b.Message
	})
	uniq := out[:0]
	for i, d := range out {
		if i > 0 && d == out[i-1] {
			continue
		}
		uniq = append(uniq, d)
	}
	return uniq
}

// diffs collects differences with pointers relative to the schema pair
// being compared.
type diffs struct {
	c  *comparer
	ds []Difference
}

func (o *diffs) add(t ChangeType, ptr, format string, args ...any) {
	o.ds = append(o.ds, Difference{
		Type:       t,
		Pointer:    ptr,
		Compatible: t.CompatibleUnder(o.c.policy),
		Message:    fmt.Sprintf(format, args...),
	})
}

// addVerdict records a change whose verdict depends on context.
func (o *diffs) addVerdict(t ChangeType, ptr string, compatible bool, format string, args ...any) {
	o.ds = append(o.ds, Difference{Type: t, Pointer: ptr, Compatible: compatible, Message: fmt.Sprintf(format, args...)})
}

// nest adds differences found in a subschema at relative pointer prefix.
func (o *diffs) nest(prefix string, sub []Difference) {
	for _, d := range sub {
		d.Pointer = prefix + d.Pointer
		o.ds = append(o.ds, d)
	}
}

// summarize names the incompatible changes of a probe comparison, for
// messages.
func summarize(ds []Difference) string {
	var parts []string
	for _, d := range ds {
		if d.Compatible {
			continue
		}
		p := d.Pointer
		if p == "" {
			p = "/"
		}
		parts = append(parts, fmt.Sprintf("%s at %s", d.Type, p))
	}
	sort.Strings(parts)
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("and %d more", len(parts)-3))
	}
	return strings.Join(parts, ", ")
}

type pairKey struct{ a, b string }

// comparer holds the state of one Diff call: memoized pair results, the
// pairs being compared (to cut $ref cycles), and caches.
type comparer struct {
	policy Policy
	memo   map[pairKey][]Difference
	busy   map[pairKey]bool
	types  map[string]typeSet
	regex  map[string]*regexp.Regexp
	depth  int
	// contexts counts the conditionals being compared in context on the
	// current path; past maxContexts they are compared keyword by keyword.
	contexts int
	err      error
}

func newComparer(p Policy) *comparer {
	return &comparer{
		policy: p,
		memo:   map[pairKey][]Difference{},
		busy:   map[pairKey]bool{},
		types:  map[string]typeSet{},
		regex:  map[string]*regexp.Regexp{},
	}
}

func nodeKey(n node) string { return n.doc.id + n.loc + scopeKey(n.scope) }

// trueDoc holds the synthetic empty schema used where a keyword is absent.
var trueDoc = newDocument("T", nil, "", true)

func trueNode() node { return node{doc: trueDoc, m: emptyMap} }

// compare returns the differences between two schemas with pointers relative
// to them. Results are memoized per pair of schema locations; a pair met
// again while it is being compared (a $ref cycle) compares as equal.
// The returned slice is shared: callers must not modify it.
func (c *comparer) compare(a, b node) []Difference {
	if c.err != nil {
		return nil
	}
	k := pairKey{nodeKey(a), nodeKey(b)}
	if r, ok := c.memo[k]; ok {
		return r
	}
	if c.busy[k] {
		return nil
	}
	if c.depth >= maxDepth {
		c.err = fmt.Errorf("%w: nested deeper than %d levels", ErrInvalidSchema, maxDepth)
		return nil
	}
	c.busy[k] = true
	c.depth++
	r := c.compareNodes(a, b)
	c.depth--
	delete(c.busy, k)
	c.memo[k] = r
	return r
}

// probe compares a and b and reports whether every difference is
// compatible.
func (c *comparer) probe(a, b node) ([]Difference, bool) {
	ds := c.compare(a, b)
	return ds, IsCompatible(ds)
}

func (c *comparer) compareNodes(a, b node) []Difference {
	out := diffs{c: c}
	switch {
	case a.isFalse && b.isFalse:
		return nil
	case a.isFalse:
		out.add(TypeExtended, "", "the previous schema is false and accepted nothing; the new schema accepts data")
		return out.ds
	case b.isFalse:
		out.add(TypeNarrowed, "", "the new schema is false and rejects everything")
		return out.ds
	}
	if ds, ok := c.unwrapSingleton(a, b); ok {
		return ds
	}
	if ds, ok := c.compareConditionals(a, b); ok {
		return ds
	}

	c.annotations(a, b, &out)
	c.opaqueRefs(a, b, &out)
	ta, tb := c.effectiveTypes(a, 0), c.effectiveTypes(b, 0)
	_, typedA := a.m["type"]
	_, typedB := b.m["type"]
	if typedA || typedB {
		compareTypes(ta, tb, &out)
	}
	compareEnums(a, b, &out)
	compareFormat(a, b, &out)
	if ta&tString != 0 && tb&tString != 0 {
		compareStrings(a, b, &out)
	}
	if ta&tNumber != 0 && tb&tNumber != 0 {
		compareNumbers(a, b, ta, tb, &out)
	}
	if ta&tObject != 0 && tb&tObject != 0 {
		c.compareObjects(a, b, &out)
	}
	if ta&tArray != 0 && tb&tArray != 0 {
		c.compareArrays(a, b, &out)
	}
	c.compareCombined(a, b, &out)
	c.compareNot(a, b, &out)
	c.compareConditionalKeywords(a, b, &out)
	return out.ds
}

// ---- annotations and references ----

func schemaID(n node) (string, string) {
	if s, ok := n.m["$id"].(string); ok {
		return s, "$id"
	}
	if s, ok := n.m["id"].(string); ok {
		return s, "id"
	}
	return "", ""
}

func (c *comparer) annotations(a, b node, out *diffs) {
	ida, kwa := schemaID(a)
	idb, kwb := schemaID(b)
	if ida != idb {
		kw := kwb
		if kw == "" {
			kw = kwa
		}
		out.add(IDChanged, "/"+kw, "%s changed from %q to %q", kw, ida, idb)
	}
	for _, e := range []struct {
		kw string
		t  ChangeType
	}{{"title", TitleChanged}, {"description", DescriptionChanged}, {"default", DefaultChanged}} {
		va, oka := a.m[e.kw]
		vb, okb := b.m[e.kw]
		switch {
		case !oka && !okb:
		case !oka:
			out.add(e.t, "/"+e.kw, "%s added: %s", e.kw, display(vb))
		case !okb:
			out.add(e.t, "/"+e.kw, "%s removed (was %s)", e.kw, display(va))
		case canonical(va) != canonical(vb):
			out.add(e.t, "/"+e.kw, "%s changed from %s to %s", e.kw, display(va), display(vb))
		}
	}
}

// opaqueRefs compares $refs this package cannot resolve (remote documents,
// anchors) by their text.
func (c *comparer) opaqueRefs(a, b node, out *diffs) {
	switch ra, rb := a.opaqueRef, b.opaqueRef; {
	case ra == rb:
	case ra == "":
		out.add(SchemaAdded, "/$ref", "unresolvable $ref %q added", rb)
	case rb == "":
		out.add(SchemaRemoved, "/$ref", "unresolvable $ref %q removed", ra)
	default:
		out.add(TypeChanged, "/$ref", "unresolvable $ref changed from %q to %q", ra, rb)
	}
}

// ---- types ----

// effectiveTypes is the set of JSON types the schema can accept: its type
// keyword narrowed by const, enum and the types of allOf, anyOf and oneOf.
func (c *comparer) effectiveTypes(n node, depth int) typeSet {
	if n.isFalse {
		return 0
	}
	k := nodeKey(n)
	if t, ok := c.types[k]; ok {
		return t
	}
	t := declaredTypes(n)
	if vals, _, ok := enumValues(n); ok {
		var vt typeSet
		for _, v := range vals {
			vt |= typeOfValue(v)
		}
		t &= vt
	}
	if depth < 8 {
		for i, raw := range n.list("allOf") {
			t &= c.effectiveTypes(n.child(raw, fmt.Sprintf("/allOf/%d", i)), depth+1)
		}
		for _, kw := range []string{"anyOf", "oneOf"} {
			l := n.list(kw)
			if len(l) == 0 {
				continue
			}
			var u typeSet
			for i, raw := range l {
				u |= c.effectiveTypes(n.child(raw, fmt.Sprintf("/%s/%d", kw, i)), depth+1)
			}
			t &= u
		}
	}
	c.types[k] = t
	return t
}

func typeOfValue(v any) typeSet {
	switch v.(type) {
	case nil:
		return tNull
	case bool:
		return tBoolean
	case string:
		return tString
	case []any:
		return tArray
	case map[string]any:
		return tObject
	}
	if r, ok := toRat(v); ok {
		if r.IsInt() {
			return tInteger
		}
		return tNonInteger
	}
	if _, ok := v.(json.Number); ok {
		return tNumber // too large to evaluate, still a number
	}
	return 0
}

// compareTypes compares accepted types. It runs only when one schema has a
// type keyword: when neither has, any change of accepted types comes from
// enum, const or a combination keyword, which report it themselves.
func compareTypes(ta, tb typeSet, out *diffs) {
	switch {
	case ta == tb:
	case ta&^tb == 0:
		out.add(TypeExtended, "/type", "accepted types extended from [%s] to [%s]", ta, tb)
	case tb&^ta == 0:
		out.add(TypeNarrowed, "/type", "accepted types narrowed from [%s] to [%s]", ta, tb)
	default:
		out.add(TypeChanged, "/type", "accepted types changed from [%s] to [%s]", ta, tb)
	}
}

// ---- enum and const ----

// enumValues returns the values enum and const allow (their intersection
// when both are present), keyed by canonical JSON, and the keyword used.
func enumValues(n node) (map[string]any, string, bool) {
	var set map[string]any
	kw := ""
	if v, ok := n.m["enum"]; ok {
		if l, isList := v.([]any); isList {
			set = make(map[string]any, len(l))
			for _, e := range l {
				set[canonical(e)] = e
			}
			kw = "enum"
		}
	}
	if v, ok := n.m["const"]; ok {
		k := canonical(v)
		if set == nil {
			set = map[string]any{k: v}
			kw = "const"
		} else {
			_, had := set[k]
			set = map[string]any{}
			if had {
				set[k] = v
			}
		}
	}
	return set, kw, set != nil
}

func describeValues(set map[string]any, keys []string) string {
	var parts []string
	for i, k := range keys {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-5))
			break
		}
		parts = append(parts, display(set[k]))
	}
	return strings.Join(parts, ", ")
}

func compareEnums(a, b node, out *diffs) {
	sa, kwa, oka := enumValues(a)
	sb, kwb, okb := enumValues(b)
	kw := kwb
	if kw == "" {
		kw = kwa
	}
	ptr := "/" + kw
	switch {
	case !oka && !okb:
		return
	case !oka:
		out.add(EnumArrayNarrowed, ptr, "%s added: only %s accepted", kw, describeValues(sb, sortedKeys(sb)))
		return
	case !okb:
		out.add(EnumArrayExtended, ptr, "%s removed: any value accepted", kwa)
		return
	}
	var added, removed []string
	for _, k := range sortedKeys(sb) {
		if _, ok := sa[k]; !ok {
			added = append(added, k)
		}
	}
	for _, k := range sortedKeys(sa) {
		if _, ok := sb[k]; !ok {
			removed = append(removed, k)
		}
	}
	switch {
	case len(added) == 0 && len(removed) == 0:
	case len(removed) == 0:
		out.add(EnumArrayExtended, ptr, "%s values added: %s", kw, describeValues(sb, added))
	case len(added) == 0:
		out.add(EnumArrayNarrowed, ptr, "%s values removed: %s", kw, describeValues(sa, removed))
	default:
		out.add(EnumArrayChanged, ptr, "%s values removed: %s; added: %s", kw, describeValues(sa, removed), describeValues(sb, added))
	}
}

// ---- format ----

func compareFormat(a, b node, out *diffs) {
	fa, _ := a.m["format"].(string)
	fb, _ := b.m["format"].(string)
	switch {
	case fa == fb:
	case fa == "":
		out.add(FormatAdded, "/format", "format %q added", fb)
	case fb == "":
		out.add(FormatRemoved, "/format", "format %q removed", fa)
	default:
		out.add(FormatChanged, "/format", "format changed from %q to %q", fa, fb)
	}
}

// ---- bounds ----

type boundKinds struct{ added, removed, increased, decreased ChangeType }

var (
	maxLengthKinds        = boundKinds{MaxLengthAdded, MaxLengthRemoved, MaxLengthIncreased, MaxLengthDecreased}
	minLengthKinds        = boundKinds{MinLengthAdded, MinLengthRemoved, MinLengthIncreased, MinLengthDecreased}
	maximumKinds          = boundKinds{MaximumAdded, MaximumRemoved, MaximumIncreased, MaximumDecreased}
	minimumKinds          = boundKinds{MinimumAdded, MinimumRemoved, MinimumIncreased, MinimumDecreased}
	exclusiveMaximumKinds = boundKinds{ExclusiveMaximumAdded, ExclusiveMaximumRemoved, ExclusiveMaximumIncreased, ExclusiveMaximumDecreased}
	exclusiveMinimumKinds = boundKinds{ExclusiveMinimumAdded, ExclusiveMinimumRemoved, ExclusiveMinimumIncreased, ExclusiveMinimumDecreased}
	maxPropertiesKinds    = boundKinds{MaxPropertiesAdded, MaxPropertiesRemoved, MaxPropertiesIncreased, MaxPropertiesDecreased}
	minPropertiesKinds    = boundKinds{MinPropertiesAdded, MinPropertiesRemoved, MinPropertiesIncreased, MinPropertiesDecreased}
	maxItemsKinds         = boundKinds{MaxItemsAdded, MaxItemsRemoved, MaxItemsIncreased, MaxItemsDecreased}
	minItemsKinds         = boundKinds{MinItemsAdded, MinItemsRemoved, MinItemsIncreased, MinItemsDecreased}
	maxContainsKinds      = boundKinds{MaxContainsAdded, MaxContainsRemoved, MaxContainsIncreased, MaxContainsDecreased}
	minContainsKinds      = boundKinds{MinContainsAdded, MinContainsRemoved, MinContainsIncreased, MinContainsDecreased}
)

func keywordNumber(n node, kw string) *number {
	v, ok := n.m[kw]
	return numberOf(v, ok)
}

// bound compares one numeric keyword; malformed values count as absent.
func (o *diffs) bound(kw string, a, b *number, k boundKinds) {
	ptr := "/" + kw
	switch {
	case a == nil && b == nil:
	case a == nil:
		o.add(k.added, ptr, "%s %s added", kw, b.text)
	case b == nil:
		o.add(k.removed, ptr, "%s %s removed", kw, a.text)
	default:
		switch a.r.Cmp(b.r) {
		case -1:
			o.add(k.increased, ptr, "%s increased from %s to %s", kw, a.text, b.text)
		case 1:
			o.add(k.decreased, ptr, "%s decreased from %s to %s", kw, a.text, b.text)
		}
	}
}

// ---- strings ----

func compareStrings(a, b node, out *diffs) {
	out.bound("maxLength", keywordNumber(a, "maxLength"), keywordNumber(b, "maxLength"), maxLengthKinds)
	out.bound("minLength", keywordNumber(a, "minLength"), keywordNumber(b, "minLength"), minLengthKinds)
	pa, oka := a.m["pattern"].(string)
	pb, okb := b.m["pattern"].(string)
	switch {
	case oka == okb && pa == pb:
	case !oka:
		out.add(PatternAdded, "/pattern", "pattern %q added", pb)
	case !okb:
		out.add(PatternRemoved, "/pattern", "pattern %q removed", pa)
	default:
		out.add(PatternChanged, "/pattern", "pattern changed from %q to %q", pa, pb)
	}
}

// ---- not ----

func (c *comparer) compareNot(a, b node, out *diffs) {
	sa, oka := a.sub("not")
	sb, okb := b.sub("not")
	noneA := !oka || sa.isFalse
	noneB := !okb || sb.isFalse
	switch {
	case noneA && noneB:
	case noneA:
		out.add(NotTypeExtended, "/not", "not added: data matching its schema is now rejected")
	case noneB:
		out.add(NotTypeNarrowed, "/not", "not removed: data it rejected is now accepted")
	default:
		// The negated schemas swap roles: the new schema accepts more when
		// its not-schema accepts less.
		ds, ok := c.probe(sb, sa)
		switch {
		case len(ds) == 0:
		case ok:
			out.add(NotTypeNarrowed, "/not", "the schema under not accepts less, so more data is accepted")
		default:
			out.add(NotTypeExtended, "/not", "the schema under not accepts data it did not (%s), which is now rejected", summarize(ds))
		}
	}
}
