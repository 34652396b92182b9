// Package filter implements the CloudEvents Subscriptions API filter dialects
// (subscriptions/spec.md, 0.1): exact, prefix, suffix, all, any, not and sql
// (CESQL v1, through github.com/cloudevents/sdk-go/sql/v2).
//
// A list of filters is compiled once (Compile) and then matched against any
// number of events, concurrently. Compile refuses every invalid filter,
// including an unknown dialect and an invalid CESQL expression, and names
// where the problem is: a JSON pointer below the filters list and, for CESQL,
// the line and column inside the expression.
//
// Matching follows the specification: every filter of the list must match
// (an empty list matches everything); exact, prefix and suffix compare the
// canonical string form of attributes and extensions, case-sensitively, and
// an absent attribute never matches; a CESQL expression matches only when it
// evaluates to the boolean TRUE — an evaluation error (a missing attribute, a
// failed cast, a math error) or a non-boolean result is no match.
package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	cesdk "github.com/cloudevents/sdk-go/v2"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

// Limits on a filter list, so a rule stays cheap to evaluate on every event.
const (
	// MaxFilters caps the filters of one list and the nested filters of
	// one all/any.
	MaxFilters = 64
	// MaxDepth caps the nesting of all, any and not.
	MaxDepth = 8
	// MaxSQLLen caps a CESQL expression, in bytes.
	MaxSQLLen = 4096
)

// Error is one invalid filter.
type Error struct {
	// Pointer is the JSON pointer (RFC 6901) of the invalid member, relative
	// to the document that holds the filter list (e.g. /filters/0/sql).
	Pointer string
	// Line and Column locate the problem inside a CESQL expression (1-based);
	// 0 when the problem is not inside an expression.
	Line, Column int
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d, column %d: %s", e.Pointer, e.Line, e.Column, e.Msg)
	}
	return e.Pointer + ": " + e.Msg
}

// Event is an event being matched. It caches the conversions the dialects
// need, so build one per event with NewEvent and share it between filters of
// one goroutine (it is not safe for concurrent use).
type Event struct {
	E *cloudevent.Event
	// Deadline, when set, stops matching once passed: the filters not yet
	// evaluated do not match (the caller tells an overrun by the clock).
	Deadline time.Time
	sdk      *cesdk.Event
}

// expired reports whether ev's Deadline has passed.
func (ev *Event) expired() bool {
	return !ev.Deadline.IsZero() && time.Now().After(ev.Deadline)
}

// NewEvent wraps e for matching.
func NewEvent(e *cloudevent.Event) *Event { return &Event{E: e} }

// Filter is a compiled filter. Match is safe for concurrent use.
type Filter interface {
	Match(ev *Event) bool
	// attributes adds the attributes an exact, prefix or suffix filter reads.
	attributes(into map[string]bool)
}

// List is a compiled filter list: every filter must match.
type List []Filter

// Match reports whether every filter matches ev (true for an empty list).
func (l List) Match(ev *Event) bool {
	for _, f := range l {
		if ev.expired() || !f.Match(ev) {
			return false
		}
	}
	return true
}

// Attributes lists, sorted, the attributes named by the exact, prefix and
// suffix filters of the list (at any depth): what a decision trail records
// as the inputs the filters read.
func (l List) Attributes() []string {
	set := map[string]bool{}
	for _, f := range l {
		f.attributes(set)
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Compile compiles a filter list given as JSON entries. base is the JSON
// pointer of the list in its document (e.g. "/filters"). It returns every
// problem found, each an *Error.
func Compile(base string, filters []json.RawMessage) (List, []*Error) {
	if len(filters) > MaxFilters {
		return nil, []*Error{{Pointer: base, Msg: fmt.Sprintf("at most %d filters are allowed", MaxFilters)}}
	}
	var errs []*Error
	out := make(List, 0, len(filters))
	for i, raw := range filters {
		f, fe := compile(base+"/"+strconv.Itoa(i), raw, 1)
		errs = append(errs, fe...)
		if f != nil {
			out = append(out, f)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// Dialects are the filter dialects this package supports.
var Dialects = []string{"exact", "prefix", "suffix", "all", "any", "not", "sql"}

func compile(ptr string, raw json.RawMessage, depth int) (Filter, []*Error) {
	fail := func(p, msg string) (Filter, []*Error) { return nil, []*Error{{Pointer: p, Msg: msg}} }
	if depth > MaxDepth {
		return fail(ptr, fmt.Sprintf("filters may be nested at most %d deep", MaxDepth))
	}
	var obj map[string]json.RawMessage
	if err := strictObject(raw, &obj); err != nil {
		return fail(ptr, "a filter must be a JSON object with exactly one dialect: "+strings.Join(Dialects, ", "))
	}
	if len(obj) != 1 {
		return fail(ptr, fmt.Sprintf("a filter must name exactly one dialect (%s), got %d members", strings.Join(Dialects, ", "), len(obj)))
	}
	var dialect string
	var body json.RawMessage
	for k, v := range obj {
		dialect, body = k, v
	}
	p := ptr + "/" + escapePointer(dialect)
	switch dialect {
	case "exact", "prefix", "suffix":
		var attrs map[string]json.RawMessage
		if err := strictObject(body, &attrs); err != nil || len(attrs) == 0 {
			return fail(p, dialect+" must be an object of at least one attribute name and its string value")
		}
		c := &compare{kind: dialect, attrs: make([][2]string, 0, len(attrs))}
		var errs []*Error
		for name, v := range attrs {
			ap := p + "/" + escapePointer(name)
			var s string
			if name == "" {
				errs = append(errs, &Error{Pointer: ap, Msg: "attribute names must not be empty"})
				continue
			}
			if err := json.Unmarshal(v, &s); err != nil || s == "" {
				errs = append(errs, &Error{Pointer: ap, Msg: "the value must be a non-empty string"})
				continue
			}
			c.attrs = append(c.attrs, [2]string{name, s})
		}
		if len(errs) > 0 {
			return nil, errs
		}
		sort.Slice(c.attrs, func(i, j int) bool { return c.attrs[i][0] < c.attrs[j][0] })
		return c, nil
	case "all", "any":
		var subs []json.RawMessage
		if err := json.Unmarshal(body, &subs); err != nil || len(subs) == 0 || body[0] != '[' {
			return fail(p, dialect+" must be a non-empty array of filters")
		}
		if len(subs) > MaxFilters {
			return fail(p, fmt.Sprintf("at most %d nested filters are allowed", MaxFilters))
		}
		n := &nested{any: dialect == "any"}
		var errs []*Error
		for i, s := range subs {
			f, fe := compile(p+"/"+strconv.Itoa(i), s, depth+1)
			errs = append(errs, fe...)
			n.subs = append(n.subs, f)
		}
		if len(errs) > 0 {
			return nil, errs
		}
		return n, nil
	case "not":
		f, errs := compile(p, body, depth+1)
		if len(errs) > 0 {
			return nil, errs
		}
		return &not{sub: f}, nil
	case "sql":
		var s string
		if err := json.Unmarshal(body, &s); err != nil {
			return fail(p, "sql must be a string holding a CESQL expression")
		}
		expr, err := CompileSQL(s)
		if err != nil {
			var se *SQLError
			if errors.As(err, &se) {
				return nil, []*Error{{Pointer: p, Line: se.Line, Column: se.Column, Msg: se.Msg}}
			}
			return fail(p, err.Error())
		}
		return expr, nil
	default:
		return fail(p, fmt.Sprintf("unsupported filter dialect %q (supported: %s)", dialect, strings.Join(Dialects, ", ")))
	}
}

// strictObject decodes a JSON object, refusing duplicate member names (which
// encoding/json would silently merge) and anything that is not an object.
func strictObject(raw json.RawMessage, into *map[string]json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return errors.New("not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return err
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if _, dup := out[k]; dup {
			return fmt.Errorf("duplicate member %q", k)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		out[k] = v
	}
	*into = out
	return nil
}

// escapePointer escapes a JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// compare is an exact, prefix or suffix filter.
type compare struct {
	kind  string
	attrs [][2]string
}

func (c *compare) Match(ev *Event) bool {
	for _, a := range c.attrs {
		v, ok := ev.E.Attribute(a[0])
		if !ok {
			return false
		}
		switch c.kind {
		case "exact":
			ok = v == a[1]
		case "prefix":
			ok = strings.HasPrefix(v, a[1])
		default:
			ok = strings.HasSuffix(v, a[1])
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c *compare) attributes(into map[string]bool) {
	for _, a := range c.attrs {
		into[a[0]] = true
	}
}

// nested is all or any.
type nested struct {
	any  bool
	subs []Filter
}

func (n *nested) Match(ev *Event) bool {
	for _, f := range n.subs {
		if ev.expired() {
			return false
		}
		if f.Match(ev) == n.any {
			return n.any
		}
	}
	return !n.any
}

func (n *nested) attributes(into map[string]bool) {
	for _, f := range n.subs {
		f.attributes(into)
	}
}

type not struct{ sub Filter }

func (n *not) Match(ev *Event) bool { return !n.sub.Match(ev) }

func (n *not) attributes(into map[string]bool) { n.sub.attributes(into) }

// sdkEvent converts the event to the sdk-go type CESQL evaluates, once.
func (ev *Event) sdkEvent() *cesdk.Event {
	if ev.sdk != nil {
		return ev.sdk
	}
	e := ev.E
	out := cesdk.NewEvent(cesdk.VersionV1)
	out.SetID(e.ID)
	out.SetSource(e.Source)
	out.SetType(e.Type)
	if e.Subject != "" {
		out.SetSubject(e.Subject)
	}
	if !e.Time.IsZero() {
		out.SetTime(e.Time)
	}
	if e.DataSchema != "" {
		out.SetDataSchema(e.DataSchema)
	}
	if e.DataContentType != "" {
		out.SetDataContentType(e.DataContentType)
	}
	for k, v := range e.Extensions {
		out.SetExtension(k, v)
	}
	ev.sdk = &out
	return ev.sdk
}

// TypeKey is what a filter list requires of an event's type, for indexing
// rules by the events they can match: Exact, the type it must equal, or
// else Prefix, a prefix it must start with.
type TypeKey struct {
	Exact  string
	Prefix string
}

// TypeKey returns what every match of the list requires of the event's
// type: an exact or prefix filter on "type" that the list (or an all inside
// it) demands. ok is false when a matching event may have any type (no such
// filter, or only inside any or not): such a list must be tried on every
// event.
func (l List) TypeKey() (TypeKey, bool) {
	var k TypeKey
	var walk func(fs []Filter)
	walk = func(fs []Filter) {
		for _, f := range fs {
			switch x := f.(type) {
			case *compare:
				for _, a := range x.attrs {
					if a[0] != "type" {
						continue
					}
					switch x.kind {
					case "exact":
						k.Exact = a[1]
					case "prefix":
						if len(a[1]) > len(k.Prefix) {
							k.Prefix = a[1]
						}
					}
				}
			case *nested:
				if !x.any {
					walk(x.subs)
				}
			}
		}
	}
	walk(l)
	if k.Exact != "" {
		k.Prefix = ""
		return k, true
	}
	return k, k.Prefix != ""
}
