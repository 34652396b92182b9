package schemacompat

import (
	"fmt"
	"strconv"
	"strings"
)

// maxContexts bounds the conditionals compared in context on one path (a
// branch that refers back to its own schema would otherwise be combined
// with it again and again); past it, if/then/else are compared keyword by
// keyword.
const maxContexts = 8

// conditional is a schema's if with a then and/or an else.
type conditional struct {
	ifNode           node
	then, els        node // the empty schema when absent
	hasThen, hasElse bool
	base             node // the schema without if, then and else
}

func conditionalOf(n node) (conditional, bool) {
	if n.isFalse {
		return conditional{}, false
	}
	ifRaw, hasIf := n.m["if"]
	cd := conditional{then: trueNode(), els: trueNode()}
	cd.then, cd.hasThen = n.sub("then")
	cd.els, cd.hasElse = n.sub("else")
	if !hasIf || (!cd.hasThen && !cd.hasElse) {
		return conditional{}, false
	}
	if !cd.hasThen {
		cd.then = trueNode()
	}
	if !cd.hasElse {
		cd.els = trueNode()
	}
	cd.ifNode = n.child(ifRaw, "/if")
	cd.base = restrict(n, "|base", func(k string) bool { return k != "if" && k != "then" && k != "else" })
	return cd, true
}

// cases returns what the schema accepts when the if holds and when it does
// not, as far as the schema around the branch and the branch say (the if
// itself is not taken into account: that only makes the cases wider).
func (cd conditional) cases() (node, node) {
	return conj(cd.base, cd.then, true), conj(cd.base, cd.els, true)
}

// branches returns the branch of each conditional that a case uses.
func branches(kw string, cds ...*conditional) []node {
	var out []node
	for _, cd := range cds {
		switch {
		case cd == nil:
		case kw == "then" && cd.hasThen:
			out = append(out, cd.then)
		case kw == "else" && cd.hasElse:
			out = append(out, cd.els)
		}
	}
	return out
}

// compareConditionals compares two schemas of which at least one has a
// conditional, case by case: each case (the if holding, or not) is the
// schema around the branch combined with the branch, and a schema without
// a conditional is the same in both cases. So a constraint moved between
// the schema and its branches, or a branch restating the schema, is judged
// by what each case accepts. Differences located in a branch get its
// pointer ("/then/...", "/else/..."); the others the schema's, noting the
// case when only one case has them. ok is false when neither schema has a
// conditional (or too many are being compared on this path).
func (c *comparer) compareConditionals(a, b node) ([]Difference, bool) {
	ca, okA := conditionalOf(a)
	cb, okB := conditionalOf(b)
	if (!okA && !okB) || c.contexts >= maxContexts {
		return nil, false
	}
	c.contexts++
	defer func() { c.contexts-- }()

	var pa, pb *conditional
	thenA, elseA := a, a
	if okA {
		pa = &ca
		thenA, elseA = ca.cases()
	}
	thenB, elseB := b, b
	if okB {
		pb = &cb
		thenB, elseB = cb.cases()
	}
	out := diffs{c: c}
	cs := caseDiffs{}
	cs.add("then", c.compare(thenA, thenB), branches("then", pb, pa))
	cs.add("else", c.compare(elseA, elseB), branches("else", pb, pa))
	switch {
	case okA && okB && c.sameCondition(ca.ifNode, cb.ifNode):
		out.nest("/if", c.compare(ca.ifNode, cb.ifNode)) // annotations only
	case okA && okB:
		covered := true
		for _, p := range [][2]node{{thenA, thenB}, {thenA, elseB}, {elseA, thenB}, {elseA, elseB}} {
			if _, ok := c.probe(p[0], p[1]); !ok {
				covered = false
			}
		}
		if covered {
			out.add(ConditionalChangedIsCovered, "/if", "the if condition changed, but each new branch, with the schema around it, accepts what either previous branch accepted")
		} else {
			out.add(ConditionalChanged, "/if", "the if condition changed, so then and else apply to different data")
		}
	case okB:
		if bad := cs.incompatibleInBranches(); len(bad) > 0 {
			out.add(ConditionalAdded, "/if", "if/then/else added; a branch rejects data the previous schema accepted (%s)", summarize(bad))
		} else {
			out.add(ConditionalAddedIsCovered, "/if", "if/then/else added; data the previous schema accepted passes the branch that applies to it")
		}
	default:
		out.add(ConditionalRemoved, "/if", "if/then/else removed")
	}
	return append(out.ds, cs.result()...), true
}

// sameCondition reports whether two if schemas differ in nothing but
// annotations.
func (c *comparer) sameCondition(x, y node) bool {
	for _, ds := range [][]Difference{c.compare(x, y), c.compare(y, x)} {
		for _, d := range ds {
			switch d.Type {
			case IDChanged, TitleChanged, DescriptionChanged, DefaultChanged:
			default:
				return false
			}
		}
	}
	return true
}

// caseDiffs gathers the differences of the two cases.
type caseDiffs struct {
	kws   []string
	lists [][]caseDiff
}

type caseDiff struct {
	d        Difference
	inBranch bool
}

// add records a case's differences, located in a branch when their pointer
// names something one of the branches has.
func (cs *caseDiffs) add(kw string, ds []Difference, brs []node) {
	var l []caseDiff
	for _, d := range ds {
		in := false
		if len(brs) > 0 {
			if d.Pointer == "" {
				in = true // the case itself became or stopped being false
			}
			for _, br := range brs {
				in = in || pointerIn(br, d.Pointer)
			}
		}
		if in {
			d.Pointer = "/" + kw + d.Pointer
		}
		l = append(l, caseDiff{d: d, inBranch: in})
	}
	cs.kws = append(cs.kws, kw)
	cs.lists = append(cs.lists, l)
}

func (cs *caseDiffs) incompatibleInBranches() []Difference {
	var out []Difference
	for _, l := range cs.lists {
		for _, e := range l {
			if e.inBranch && !e.d.Compatible {
				out = append(out, e.d)
			}
		}
	}
	return out
}

// result lists the differences once each; one the schema itself has in a
// single case says which.
func (cs *caseDiffs) result() []Difference {
	count := map[Difference]int{}
	for _, l := range cs.lists {
		seen := map[Difference]bool{}
		for _, e := range l {
			if !seen[e.d] {
				seen[e.d] = true
				count[e.d]++
			}
		}
	}
	note := map[string]string{"then": " (when the if condition holds)", "else": " (when the if condition does not hold)"}
	var out []Difference
	done := map[Difference]bool{}
	for i, l := range cs.lists {
		for _, e := range l {
			if done[e.d] {
				continue
			}
			done[e.d] = true
			d := e.d
			if !e.inBranch && count[e.d] < len(cs.lists) {
				d.Message += note[cs.kws[i]]
			}
			out = append(out, d)
		}
	}
	return out
}

// pointerIn reports whether the relative pointer p (as differences carry
// it) names something schema n has: a keyword, a property, a required
// name, a subschema.
func pointerIn(n node, p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	toks := strings.Split(p[1:], "/")
	for i := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(toks[i], "~1", "/"), "~0", "~")
	}
	cur := n
	for i := 0; i < len(toks); i++ {
		if cur.isFalse || cur.m == nil {
			return false
		}
		kw := toks[i]
		v, ok := cur.m[kw]
		if !ok {
			return false
		}
		if i == len(toks)-1 {
			return true
		}
		next := toks[i+1]
		last := i+1 == len(toks)-1
		switch val := v.(type) {
		case []any:
			if kw == "required" || kw == "enum" || kw == ReservedKeyword {
				return last && containsString(val, next)
			}
			j, err := strconv.Atoi(next)
			if err != nil || j < 0 || j >= len(val) {
				return false
			}
			cur = cur.child(val[j], fmt.Sprintf("/%s/%d", escapeToken(kw), j))
			i++
		case map[string]any:
			if !isSchemaMap(kw) {
				cur = cur.child(val, "/"+escapeToken(kw))
				continue
			}
			sv, ok := val[next]
			if !ok {
				return false
			}
			if last {
				return true
			}
			if l, isList := sv.([]any); isList {
				return i+2 == len(toks)-1 && containsString(l, toks[i+2])
			}
			cur = cur.child(sv, "/"+escapeToken(kw)+"/"+escapeToken(next))
			i++
		case string:
			return kw == ReservedKeyword && last
		default:
			cur = cur.child(val, "/"+escapeToken(kw))
		}
	}
	return true
}

func isSchemaMap(kw string) bool {
	for _, k := range schemaMapKeywords {
		if k == kw {
			return true
		}
	}
	return kw == "dependentRequired"
}

func containsString(l []any, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

// compareConditionalKeywords compares if/then/else keyword by keyword: the
// if as text, then and else as subschemas. It is what remains when too
// many conditionals are compared in context on one path.
func (c *comparer) compareConditionalKeywords(a, b node, out *diffs) {
	ifA, hasA := a.m["if"]
	ifB, hasB := b.m["if"]
	_, thenA := a.m["then"]
	_, elseA := a.m["else"]
	_, thenB := b.m["then"]
	_, elseB := b.m["else"]
	activeA := hasA && (thenA || elseA)
	activeB := hasB && (thenB || elseB)
	switch {
	case !activeA && !activeB:
		return
	case !activeA:
		out.add(ConditionalAdded, "/if", "if/then/else added")
		return
	case !activeB:
		out.add(ConditionalRemoved, "/if", "if/then/else removed")
		return
	}
	if canonical(ifA) != canonical(ifB) {
		out.add(ConditionalChanged, "/if", "the if condition changed, so then and else apply to different data")
	}
	for _, kw := range []string{"then", "else"} {
		sa, ok := a.sub(kw)
		if !ok {
			sa = trueNode()
		}
		sb, ok := b.sub(kw)
		if !ok {
			sb = trueNode()
		}
		out.nest("/"+kw, c.compare(sa, sb))
	}
}
