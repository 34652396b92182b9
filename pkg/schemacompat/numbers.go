package schemacompat

import (
	"fmt"
	"math/big"
	"strings"
)

// Numbers are compared as sets: the range (minimum, exclusiveMinimum,
// maximum and exclusiveMaximum together), multipleOf and whether only
// integers are accepted. The keyword-by-keyword kinds are reported as
// Confluent reports them whenever they are right; where a change looks
// narrowing keyword by keyword but every number the previous schema
// accepted is still accepted, one *_IS_COVERED difference replaces them.
// (Relaxing every keyword never narrows the set, so only narrowing-looking
// changes need the closer look.)

// numericBounds reads maximum, exclusiveMaximum, minimum and
// exclusiveMinimum, turning the draft-04 boolean exclusive forms into the
// numeric ones.
func numericBounds(n node) (maximum, exMaximum, minimum, exMinimum *number) {
	maximum = keywordNumber(n, "maximum")
	minimum = keywordNumber(n, "minimum")
	exMaximum = keywordNumber(n, "exclusiveMaximum")
	exMinimum = keywordNumber(n, "exclusiveMinimum")
	if b, ok := n.m["exclusiveMaximum"].(bool); ok && b && maximum != nil {
		exMaximum, maximum = maximum, nil
	}
	if b, ok := n.m["exclusiveMinimum"].(bool); ok && b && minimum != nil {
		exMinimum, minimum = minimum, nil
	}
	return maximum, exMaximum, minimum, exMinimum
}

// numberSet is what a schema accepts among numbers, as far as its range,
// multipleOf and types say.
type numberSet struct {
	max, exMax, min, exMin *number
	multipleOf             *number // positive, or nil
	integer                bool    // only integers
}

func numberSetOf(n node, types typeSet) numberSet {
	s := numberSet{multipleOf: positive(keywordNumber(n, "multipleOf")), integer: types&tNumber == tInteger}
	s.max, s.exMax, s.min, s.exMin = numericBounds(n)
	return s
}

// step is the spacing of the numbers the set accepts when they are
// discrete, nil when they are not: multipleOf, 1 for integers, and for both
// the least common multiple of multipleOf and 1 (the numerator of
// multipleOf in lowest terms: integers that are multiples of 1.5 are the
// multiples of 3).
func (s numberSet) step() *big.Rat {
	switch {
	case s.multipleOf != nil && s.integer:
		return new(big.Rat).SetInt(s.multipleOf.r.Num())
	case s.multipleOf != nil:
		return s.multipleOf.r
	case s.integer:
		return big.NewRat(1, 1)
	}
	return nil
}

// describeStep names the numbers a set with this step accepts.
func describeStep(step *big.Rat) string {
	switch {
	case step == nil:
		return "numbers"
	case step.Cmp(big.NewRat(1, 1)) == 0:
		return "integers"
	default:
		return "multiples of " + ratText(step)
	}
}

// end is one end of a range: its bound and whether it is exclusive.
type end struct {
	v    *big.Rat
	excl bool
}

// tighter returns the end that admits fewer numbers: upper ends are
// compared the other way round.
func tighter(inclusive, exclusive *number, upper bool) *end {
	var e *end
	if inclusive != nil {
		e = &end{v: inclusive.r}
	}
	if exclusive != nil {
		x := &end{v: exclusive.r, excl: true}
		c := 0
		if e != nil {
			c = x.v.Cmp(e.v)
			if upper {
				c = -c
			}
		}
		if e == nil || c >= 0 {
			e = x
		}
	}
	return e
}

// extreme returns the smallest (or, for the upper end, largest) number a
// set with this step accepts at end e, and whether that is an infimum
// never reached (a continuous range with an exclusive bound).
func extreme(e *end, step *big.Rat, upper bool) (*big.Rat, bool) {
	if step == nil {
		return e.v, e.excl
	}
	q := new(big.Rat).Quo(e.v, step)
	var k *big.Int
	switch {
	case !upper && e.excl:
		k = new(big.Int).Add(floor(q), big.NewInt(1))
	case !upper:
		k = ceil(q)
	case e.excl:
		k = new(big.Int).Sub(ceil(q), big.NewInt(1))
	default:
		k = floor(q)
	}
	return new(big.Rat).Mul(new(big.Rat).SetInt(k), step), false
}

func floor(r *big.Rat) *big.Int {
	// DivMod is Euclidean division: with the denominator positive, the
	// quotient is the floor.
	q, _ := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int))
	return q
}

func ceil(r *big.Rat) *big.Int {
	q := floor(r)
	if !r.IsInt() {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// admits reports whether end e admits v (which is an unreached infimum or
// supremum when open).
func (e *end) admits(v *big.Rat, open, upper bool) bool {
	c := v.Cmp(e.v)
	if upper {
		c = -c
	}
	switch {
	case c > 0:
		return true
	case c < 0:
		return false
	default:
		return !e.excl || open
	}
}

// rangeKeywords describes the keywords of one end of a set.
func rangeKeywords(inclusive, exclusive *number, inclusiveKW, exclusiveKW string) string {
	var parts []string
	if inclusive != nil {
		parts = append(parts, inclusiveKW+" "+inclusive.text)
	}
	if exclusive != nil {
		parts = append(parts, exclusiveKW+" "+exclusive.text)
	}
	return strings.Join(parts, " and ")
}

func compareNumbers(a, b node, ta, tb typeSet, out *diffs) {
	sa, sb := numberSetOf(a, ta), numberSetOf(b, tb)
	compareEnd(sa, sb, false, out)
	compareEnd(sa, sb, true, out)
	compareMultipleOf(sa, sb, out)
}

// compareEnd compares the lower (or upper) ends of two number sets.
func compareEnd(sa, sb numberSet, upper bool, out *diffs) {
	inKW, exKW, side := "minimum", "exclusiveMinimum", "lower"
	inA, exA, inB, exB := sa.min, sa.exMin, sb.min, sb.exMin
	inKinds, exKinds, covered := minimumKinds, exclusiveMinimumKinds, LowerBoundIsCovered
	if upper {
		inKW, exKW, side = "maximum", "exclusiveMaximum", "upper"
		inA, exA, inB, exB = sa.max, sa.exMax, sb.max, sb.exMax
		inKinds, exKinds, covered = maximumKinds, exclusiveMaximumKinds, UpperBoundIsCovered
	}
	perKeyword := diffs{c: out.c}
	perKeyword.bound(inKW, inA, inB, inKinds)
	perKeyword.bound(exKW, exA, exB, exKinds)
	ea, eb := tighter(inA, exA, upper), tighter(inB, exB, upper)
	if ea == nil || eb == nil || IsCompatible(perKeyword.ds) {
		out.ds = append(out.ds, perKeyword.ds...)
		return
	}
	step := sa.step()
	v, open := extreme(ea, step, upper)
	if !eb.admits(v, open, upper) {
		out.ds = append(out.ds, perKeyword.ds...)
		return
	}
	kw := inKW
	if eb.excl {
		kw = exKW
	}
	bound := "at least"
	switch {
	case upper && open:
		bound = "below"
	case upper:
		bound = "at most"
	case open:
		bound = "above"
	}
	out.add(covered, "/"+kw, "the %s bound changed from %s to %s, which admits every number the previous schema accepted (%s %s %s)",
		side, rangeKeywords(inA, exA, inKW, exKW), rangeKeywords(inB, exB, inKW, exKW), describeStep(step), bound, ratText(v))
}

// compareMultipleOf compares multipleOf exactly: the new one must divide
// every number the previous schema accepted.
func compareMultipleOf(sa, sb numberSet, out *diffs) {
	ma, mb := sa.multipleOf, sb.multipleOf
	const ptr = "/multipleOf"
	var t ChangeType
	var msg string
	switch {
	case ma == nil && mb == nil:
		return
	case ma == nil:
		t, msg = MultipleOfAdded, fmt.Sprintf("multipleOf %s added", mb.text)
	case mb == nil:
		t, msg = MultipleOfRemoved, fmt.Sprintf("multipleOf %s removed", ma.text)
	case ma.r.Cmp(mb.r) == 0:
		return
	case new(big.Rat).Quo(mb.r, ma.r).IsInt():
		t, msg = MultipleOfExpanded, fmt.Sprintf("multipleOf changed from %s to its multiple %s: fewer values accepted", ma.text, mb.text)
	case new(big.Rat).Quo(ma.r, mb.r).IsInt():
		t, msg = MultipleOfReduced, fmt.Sprintf("multipleOf changed from %s to its divisor %s: more values accepted", ma.text, mb.text)
	default:
		t, msg = MultipleOfChanged, fmt.Sprintf("multipleOf changed from %s to %s, neither a multiple of the other", ma.text, mb.text)
	}
	if !t.CompatibleUnder(out.c.policy) && mb != nil {
		if step := sa.step(); step != nil && new(big.Rat).Quo(step, mb.r).IsInt() {
			what := fmt.Sprintf("multipleOf %s added", mb.text)
			if ma != nil {
				what = fmt.Sprintf("multipleOf changed from %s to %s", ma.text, mb.text)
			}
			out.add(MultipleOfIsCovered, ptr, "%s: the previous schema accepted only %s, all multiples of %s",
				what, describeStep(step), mb.text)
			return
		}
	}
	out.add(t, ptr, "%s", msg)
}

// positive drops multipleOf values that are not strictly positive (invalid).
func positive(n *number) *number {
	if n == nil || n.r.Sign() <= 0 {
		return nil
	}
	return n
}

// ratText renders an exact number as a decimal when it has a finite one,
// else as a fraction.
func ratText(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	d := new(big.Int).Set(r.Denom())
	for _, p := range []int64{2, 5} {
		bp, m := big.NewInt(p), new(big.Int)
		for {
			q, rem := new(big.Int).QuoRem(d, bp, m)
			if rem.Sign() != 0 {
				break
			}
			d = q
		}
	}
	if d.Cmp(big.NewInt(1)) != 0 {
		return r.RatString()
	}
	digits := 0
	ten := big.NewRat(10, 1)
	for x := new(big.Rat).Set(r); !x.IsInt(); digits++ {
		x.Mul(x, ten)
	}
	return r.FloatString(digits)
}
