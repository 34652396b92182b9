package schemacompat

import (
	"fmt"
	"sort"
	"strings"
)

// combinators are the combination keywords: allOf is a product type, anyOf
// and oneOf are sum types.
var combinators = []string{"allOf", "anyOf", "oneOf"}

type subschema struct {
	idx int
	n   node
}

// subschemas lists the subschemas under a combination keyword, optionally
// dropping later duplicates (by canonical JSON) as Confluent does.
func subschemas(n node, kw string, dedupe bool) []subschema {
	var out []subschema
	seen := map[string]bool{}
	for i, raw := range n.list(kw) {
		if dedupe {
			k := canonical(raw)
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		out = append(out, subschema{idx: i, n: n.child(raw, fmt.Sprintf("/%s/%d", kw, i))})
	}
	return out
}

func hasCombinator(n node) bool {
	for _, kw := range combinators {
		if len(n.list(kw)) > 0 {
			return true
		}
	}
	return false
}

// singletonWrapper reports a schema that validates only through one
// combination keyword holding one subschema ({"allOf": [X]} plus
// annotations), and that keyword.
func singletonWrapper(n node) (string, bool) {
	if n.isFalse || n.opaqueRef != "" {
		return "", false
	}
	kw := ""
	for k, v := range n.m {
		if !validationKeywords[k] {
			continue
		}
		switch k {
		case "allOf", "anyOf", "oneOf":
			l, ok := v.([]any)
			if !ok || len(l) != 1 || kw != "" {
				return "", false
			}
			kw = k
		default:
			return "", false
		}
	}
	return kw, kw != ""
}

// unwrapSingleton compares through a singleton wrapper on one side when the
// other side has no combination keyword, as Confluent does for singleton
// unions. It reports false when that comparison is not compatible, so the
// caller compares the schemas as they are.
func (c *comparer) unwrapSingleton(a, b node) ([]Difference, bool) {
	if kw, ok := singletonWrapper(a); ok && !hasCombinator(b) {
		sub := a.child(a.m[kw].([]any)[0], "/"+kw+"/0")
		if ds, ok := c.probe(sub, b); ok {
			return ds, true
		}
	}
	if kw, ok := singletonWrapper(b); ok && !hasCombinator(a) {
		sub := b.child(b.m[kw].([]any)[0], "/"+kw+"/0")
		if ds, ok := c.probe(a, sub); ok {
			out := diffs{c: c}
			out.nest("/"+kw+"/0", ds)
			return out.ds, true
		}
	}
	return nil, false
}

func (c *comparer) compareCombined(a, b node, out *diffs) {
	var onlyA, onlyB []string
	for _, kw := range combinators {
		la, lb := len(a.list(kw)) > 0, len(b.list(kw)) > 0
		switch {
		case la && lb:
			c.compareSubschemaLists(a, b, kw, kw, out)
		case la:
			onlyA = append(onlyA, kw)
		case lb:
			onlyB = append(onlyB, kw)
		}
	}
	if len(onlyA) == 1 && len(onlyB) == 1 {
		ka, kb := onlyA[0], onlyB[0]
		na, nb := len(subschemas(a, ka, true)), len(subschemas(b, kb, true))
		t := criterionChange(kb, na, nb)
		out.add(t, "/"+kb, "%s changed to %s", ka, kb)
		if t != CombinedTypeChanged {
			c.compareSubschemaLists(a, b, ka, kb, out)
		}
		return
	}
	for _, ka := range onlyA {
		c.combinatorRemoved(a, b, ka, out)
	}
	for _, kb := range onlyB {
		c.combinatorAdded(a, b, kb, out)
	}
}

// criterionChange judges a switch of combination keyword: anything to anyOf
// is compatible, a singleton to oneOf is, and a singleton to a singleton
// allOf is; the rest is not.
func criterionChange(to string, na, nb int) ChangeType {
	switch {
	case to == "anyOf":
		return CombinedTypeExtended
	case to == "oneOf" && na == 1:
		return CombinedTypeExtended
	case to == "allOf" && na == 1 && nb == 1:
		return CombinedTypeExtended
	default:
		return CombinedTypeChanged
	}
}

type edge struct {
	j  int
	ds []Difference
}

// compareSubschemaLists compares the subschemas of two combination keywords
// by best pairing: a maximum matching over the compatible pairs, preferring
// identical pairs, then pairs with fewer differences. The differences of
// matched pairs are reported under the new subschema's pointer; if the
// matching does not cover the smaller list, the lists changed incompatibly
// (COMBINED_TYPE_SUBSCHEMAS_CHANGED) and each unmatched old subschema is
// also paired with its closest unmatched new one, whose differences are
// reported to explain why.
func (c *comparer) compareSubschemaLists(a, b node, ka, kb string, out *diffs) {
	sa, sb := subschemas(a, ka, true), subschemas(b, kb, true)
	ptr := "/" + kb
	product := kb == "allOf"
	switch {
	case len(sa) < len(sb) && product:
		out.add(ProductTypeExtended, ptr, "allOf has %d subschemas, was %d: more constraints", len(sb), len(sa))
	case len(sa) < len(sb):
		out.add(SumTypeExtended, ptr, "%s has %d alternatives, was %d", kb, len(sb), len(sa))
	case len(sa) > len(sb) && product:
		out.add(ProductTypeNarrowed, ptr, "allOf has %d subschemas, was %d: fewer constraints", len(sb), len(sa))
	case len(sa) > len(sb):
		out.add(SumTypeNarrowed, ptr, "%s has %d alternatives, was %d", kb, len(sb), len(sa))
	}

	all := make([][][]Difference, len(sa))
	edges := make([][]edge, len(sa))
	for i := range sa {
		all[i] = make([][]Difference, len(sb))
		for j := range sb {
			ds, ok := c.probe(sa[i].n, sb[j].n)
			all[i][j] = ds
			if ok {
				edges[i] = append(edges[i], edge{j: j, ds: ds})
			}
		}
		sort.SliceStable(edges[i], func(x, y int) bool { return len(edges[i][x].ds) < len(edges[i][y].ds) })
	}
	matchB := maxMatching(edges, len(sb))
	pairOfA := make([]int, len(sa))
	for i := range pairOfA {
		pairOfA[i] = -1
	}
	matched := 0
	for j, i := range matchB {
		if i >= 0 {
			matched++
			pairOfA[i] = j
		}
	}
	if matched < min(len(sa), len(sb)) {
		// Explain: pair each unmatched old subschema with the closest
		// unmatched new one and report that pair's differences too.
		var lone []string
		for i := range sa {
			if pairOfA[i] >= 0 {
				continue
			}
			best := -1
			for j := range sb {
				if matchB[j] >= 0 {
					continue
				}
				if best < 0 || closer(all[i][j], all[i][best], abs(i-j), abs(i-best)) {
					best = j
				}
			}
			if best < 0 {
				lone = append(lone, fmt.Sprintf("%s/%d", ka, sa[i].idx))
				continue
			}
			matchB[best] = i
			pairOfA[i] = best
			lone = append(lone, fmt.Sprintf("%s/%d (closest: %s/%d)", ka, sa[i].idx, kb, sb[best].idx))
		}
		out.add(CombinedTypeSubschemasChanged, ptr, "subschemas changed: no compatible counterpart for previous %s", strings.Join(lone, ", "))
	}
	for i, j := range pairOfA {
		if j >= 0 {
			out.nest(fmt.Sprintf("%s/%d", ptr, sb[j].idx), all[i][j])
		}
	}
}

// closer reports whether differences x (at index distance dx) explain a
// pairing better than y (at dy): fewer incompatible changes, then nearer
// position, then fewer changes.
func closer(x, y []Difference, dx, dy int) bool {
	ix, iy := countIncompatible(x), countIncompatible(y)
	if ix != iy {
		return ix < iy
	}
	if dx != dy {
		return dx < dy
	}
	return len(x) < len(y)
}

func countIncompatible(ds []Difference) int {
	n := 0
	for _, d := range ds {
		if !d.Compatible {
			n++
		}
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// maxMatching finds a maximum bipartite matching (augmenting paths), first
// over edges without differences, then over all. It returns, for each right
// vertex, the matched left vertex or -1.
func maxMatching(edges [][]edge, nb int) []int {
	matchB := make([]int, nb)
	for j := range matchB {
		matchB[j] = -1
	}
	var augment func(i int, seen []bool, exactOnly bool) bool
	augment = func(i int, seen []bool, exactOnly bool) bool {
		for _, e := range edges[i] {
			if (exactOnly && len(e.ds) > 0) || seen[e.j] {
				continue
			}
			seen[e.j] = true
			if matchB[e.j] < 0 || augment(matchB[e.j], seen, exactOnly) {
				matchB[e.j] = i
				return true
			}
		}
		return false
	}
	matchedA := make([]bool, len(edges))
	for _, exact := range []bool{true, false} {
		for i := range edges {
			if !matchedA[i] && augment(i, make([]bool, nb), exact) {
				matchedA[i] = true
			}
		}
	}
	return matchB
}

// combinatorAdded judges a combination keyword the new schema has and the
// previous one had not (and that is not a switch from another keyword).
func (c *comparer) combinatorAdded(a, b node, kb string, out *diffs) {
	ptr := "/" + kb
	subs := subschemas(b, kb, false)
	if kb == "allOf" {
		var blocking []string
		for _, s := range subs {
			if ds, ok := c.probe(a, s.n); !ok {
				blocking = append(blocking, fmt.Sprintf("allOf/%d: %s", s.idx, summarize(ds)))
			}
		}
		if len(blocking) == 0 {
			out.add(CombinedTypeExtended, ptr, "allOf added; each of its subschemas accepts data valid under the previous schema")
		} else {
			out.add(ProductTypeExtended, ptr, "allOf added with subschemas that reject data valid under the previous schema (%s)", strings.Join(blocking, "; "))
		}
		return
	}
	if c.unionCovers(a, subs) {
		out.add(SumTypeExtended, ptr, "%s added; data valid under the previous schema matches one of its alternatives", kb)
	} else {
		out.add(CombinedTypeSubschemasChanged, ptr, "%s added; no alternative accepts all data valid under the previous schema", kb)
	}
}

// unionCovers reports whether one alternative accepts everything a
// accepts, or, splitting a by its JSON types, each part has one.
func (c *comparer) unionCovers(a node, subs []subschema) bool {
	covers := func(x node) bool {
		for _, s := range subs {
			if _, ok := c.probe(x, s.n); ok {
				return true
			}
		}
		return false
	}
	if covers(a) {
		return true
	}
	parts := c.effectiveTypes(a, 0).split()
	if len(parts) < 2 {
		return false
	}
	for _, t := range parts {
		if !covers(withType(a, t, "|type="+t)) {
			return false
		}
	}
	return true
}

// withType returns a copy of n whose type keyword is t.
func withType(n node, t any, suffix string) node {
	m := make(map[string]any, len(n.m)+1)
	for k, v := range n.m {
		m[k] = v
	}
	m["type"] = t
	return node{doc: n.doc, loc: n.loc + suffix, path: n.path, origin: n.origin, m: m, opaqueRef: n.opaqueRef}
}

// combinatorRemoved judges a combination keyword the previous schema had
// and the new one has not.
func (c *comparer) combinatorRemoved(a, b node, ka string, out *diffs) {
	ptr := "/" + ka
	if ka == "allOf" {
		out.add(ProductTypeNarrowed, ptr, "allOf removed: its constraints no longer apply")
		return
	}
	baseType, hasBaseType := a.m["type"]
	var blocking []string
	for _, s := range subschemas(a, ka, false) {
		alt := s.n
		// The alternative held together with the schema's own type.
		if _, has := alt.m["type"]; hasBaseType && !has && !alt.isFalse {
			alt = withType(alt, baseType, "|type="+canonical(baseType))
		}
		if ds, ok := c.probe(alt, b); !ok {
			blocking = append(blocking, fmt.Sprintf("%s/%d: %s", ka, s.idx, summarize(ds)))
		}
	}
	if len(blocking) == 0 {
		out.add(SumTypeExtended, ptr, "%s removed; the new schema accepts every previous alternative", ka)
	} else {
		out.add(CombinedTypeSubschemasChanged, ptr, "%s removed; the new schema rejects data of previous alternatives (%s)", ka, strings.Join(blocking, "; "))
	}
}
