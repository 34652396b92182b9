package dataprotect

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Retention is how long a classified value is kept: a count of seconds,
// hours, days, weeks, months or years, or forever. The zero value is forever.
type Retention struct {
	// N is the count; 0 means forever.
	N int
	// Unit is 's', 'h', 'd', 'w', 'm' (months) or 'y'.
	Unit byte
}

// Forever is the retention of values kept until an erasure.
var Forever = Retention{}

var retentionRe = regexp.MustCompile(`^([1-9][0-9]{0,5})(s|h|d|w|m|y)$`)

// ErrRetention is a retention that cannot be read.
var ErrRetention = errors.New("want <n>s, <n>h, <n>d, <n>w, <n>m (months), <n>y or forever")

// ParseRetention reads "forever" or <n><unit> with unit s (seconds), h
// (hours), d (days), w (weeks), m (months) or y (years), n from 1 to 999999.
func ParseRetention(s string) (Retention, error) {
	if s == "forever" {
		return Forever, nil
	}
	m := retentionRe.FindStringSubmatch(s)
	if m == nil {
		return Retention{}, fmt.Errorf("retention %q: %w", s, ErrRetention)
	}
	n, _ := strconv.Atoi(m[1])
	return Retention{N: n, Unit: m[2][0]}, nil
}

// IsForever reports whether values are kept until an erasure.
func (r Retention) IsForever() bool { return r.N == 0 }

// String is the form ParseRetention reads.
func (r Retention) String() string {
	if r.IsForever() {
		return "forever"
	}
	return strconv.Itoa(r.N) + string(r.Unit)
}

// After returns the moment the retention ends for a value kept from t:
// calendar months and years, exact seconds, hours, days and weeks. The zero
// Time for forever.
func (r Retention) After(t time.Time) time.Time {
	switch r.Unit {
	case 's':
		return t.Add(time.Duration(r.N) * time.Second)
	case 'h':
		return t.Add(time.Duration(r.N) * time.Hour)
	case 'd':
		return t.AddDate(0, 0, r.N)
	case 'w':
		return t.AddDate(0, 0, 7*r.N)
	case 'm':
		return t.AddDate(0, r.N, 0)
	case 'y':
		return t.AddDate(r.N, 0, 0)
	}
	return time.Time{}
}

// approx is the retention's length as a duration (a month is 30 days, a
// year 365); 0 for forever.
func (r Retention) approx() time.Duration {
	day := 24 * time.Hour
	switch r.Unit {
	case 's':
		return time.Duration(r.N) * time.Second
	case 'h':
		return time.Duration(r.N) * time.Hour
	case 'd':
		return time.Duration(r.N) * day
	case 'w':
		return time.Duration(r.N) * 7 * day
	case 'm':
		return time.Duration(r.N) * 30 * day
	case 'y':
		return time.Duration(r.N) * 365 * day
	}
	return 0
}
