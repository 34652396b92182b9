package contracts

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// FindCardNumber looks through decoded JSON data (as encoding/json or a
// decoder with UseNumber produces it) for a value that looks like a payment
// card number: a run of 13 to 19 digits, optionally grouped by single spaces
// or dashes, that passes the Luhn check, inside a string or as an integer.
// It returns the JSON pointer of the first such value, visiting object
// members in name order.
//
// Any 13-digit number passes Luhn one time in ten, so a millisecond Unix
// timestamp may match: events of payment contracts should carry times as
// RFC 3339 strings.
func FindCardNumber(v any) (string, bool) {
	return findCard(v, "")
}

func findCard(v any, at string) (string, bool) {
	switch x := v.(type) {
	case string:
		if hasCardNumber(x) {
			return at, true
		}
	case json.Number:
		if s := string(x); isDigits(s) && len(s) >= 13 && len(s) <= 19 && luhn(s) {
			return at, true
		}
	case float64:
		if x >= 1e12 && x < 1e19 && x == float64(int64(x)) {
			if s := strconv.FormatInt(int64(x), 10); len(s) >= 13 && luhn(s) {
				return at, true
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := findCard(x[k], at+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")); ok {
				return p, true
			}
		}
	case []any:
		for i, e := range x {
			if p, ok := findCard(e, at+"/"+strconv.Itoa(i)); ok {
				return p, true
			}
		}
	}
	return "", false
}

// hasCardNumber scans s for runs of digits separated by at most one space
// or dash between digits, and checks each run of 13 to 19 digits.
func hasCardNumber(s string) bool {
	var run []byte
	check := func() bool {
		ok := len(run) >= 13 && len(run) <= 19 && luhn(string(run))
		run = run[:0]
		return ok
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			run = append(run, c)
		case (c == ' ' || c == '-') && len(run) > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// a single separator inside a number
		default:
			if check() {
				return true
			}
		}
	}
	return check()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// luhn reports whether a string of digits passes the Luhn (mod 10) check.
func luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
