package schemacompat

import "fmt"

// Result is the outcome of [Check], shaped like the Confluent REST answer
// to POST /compatibility/subjects/{s}/versions.
type Result struct {
	// Compatible is true when no difference is incompatible.
	Compatible bool `json:"is_compatible"`
	// Messages has one line per incompatible difference, naming the version
	// compared, the direction, the change type and the pointer. Never nil.
	Messages []string `json:"messages"`
	// Differences lists every difference found (compatible or not), each
	// with its Version and Direction set, in comparison order: versions from
	// the latest back to the oldest, backward before forward. Never nil.
	Differences []Difference `json:"differences"`
}

// Check checks a new schema version next against the existing versions of
// a subject, given oldest first, under mode and policy:
//
//   - BACKWARD: Diff(latest, next).
//   - FORWARD: Diff(next, latest): the previous version must read new data.
//   - FULL: both.
//   - BACKWARD_TRANSITIVE, FORWARD_TRANSITIVE, FULL_TRANSITIVE: the same
//     against every earlier version, latest first.
//   - NONE: compatible without comparing.
//
// With no existing versions every mode is compatible. mode and policy are
// parsed with [ParseMode] and [ParsePolicy] (so case does not matter and an
// empty policy is STRICT). next must be a valid schema root in every mode;
// errors wrap [ErrUnknownMode], [ErrUnknownPolicy] or [ErrInvalidSchema]
// (naming the offending version).
func Check(mode Mode, policy Policy, versions []any, next any) (Result, error) {
	return Checker{Policy: policy}.Check(mode, versions, next)
}

// Checker compares schemas under a policy, loading the documents that
// references name and the schemas do not contain with its Loader. The zero
// value is what [Diff] and [Check] use: STRICT, and references that do not
// resolve within their schema are compared by their text.
type Checker struct {
	Policy Policy
	Loader Loader
}

// Check is [Check] under the checker's policy, resolving references with
// its Loader (each document loaded once for all the comparisons).
func (k Checker) Check(mode Mode, versions []any, next any) (Result, error) {
	m, err := ParseMode(string(mode))
	if err != nil {
		return Result{}, err
	}
	pol, err := ParsePolicy(string(k.Policy))
	if err != nil {
		return Result{}, err
	}
	cache := newLoadCache(k.Loader)
	if _, err := rootValue(next); err != nil {
		return Result{}, fmt.Errorf("new schema: %w", err)
	}
	res := Result{Compatible: true, Messages: []string{}, Differences: []Difference{}}
	if m == ModeNone || len(versions) == 0 {
		return res, nil
	}
	oldest := len(versions) - 1
	if m.transitive() {
		oldest = 0
	}
	for i := len(versions) - 1; i >= oldest; i-- {
		for _, dir := range []Direction{DirectionBackward, DirectionForward} {
			var ds []Difference
			switch {
			case dir == DirectionBackward && m.backward():
				ds, err = diff(pol, cache, versions[i], next)
			case dir == DirectionForward && m.forward():
				ds, err = diff(pol, cache, next, versions[i])
			default:
				continue
			}
			if err != nil {
				return Result{}, fmt.Errorf("version %d: %w", i+1, err)
			}
			for _, d := range ds {
				d.Version = i + 1
				d.Direction = dir
				res.Differences = append(res.Differences, d)
				if !d.Compatible {
					res.Compatible = false
					res.Messages = append(res.Messages, fmt.Sprintf("version %d (%s): %s at %s: %s", d.Version, dir, d.Type, d.Pointer, d.Message))
				}
			}
		}
	}
	return res, nil
}
