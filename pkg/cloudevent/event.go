package cloudevent

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prost-platform/prost/pkg/storable"
)

// SpecVersion is the only CloudEvents specversion this package accepts.
const SpecVersion = "1.0"

// Event is one CloudEvent (v1.0).
//
// Events returned by [ParseRequest] have passed [Event.Validate]. Their
// strings and Data may share memory with the request body, so a caller that
// keeps one small event for long keeps the whole body alive; Data and
// DataBase64 are never shared between two events and may be modified.
//
// The methods that set nothing (AppendJSON, MarshalJSON, Validate,
// Extension, Attribute) only read the event and may run concurrently.
type Event struct {
	// SpecVersion, ID, Source and Type are the required attributes.
	SpecVersion, ID, Source, Type string
	// DataContentType, DataSchema and Subject are optional; "" when absent.
	DataContentType, DataSchema, Subject string
	// Time is the optional time attribute; the zero Time when absent (so
	// the parsers refuse the instant 0001-01-01T00:00:00Z). It keeps the
	// offset it was given with; digits beyond nanoseconds are dropped.
	Time time.Time
	// Extensions maps extension names to values of type string, bool or
	// int32. It is nil when the event has no extensions. In structured mode
	// a JSON number is accepted only if it is an integer in int32 range; in
	// binary mode every extension is a string, as headers carry strings.
	Extensions map[string]any
	// Data is the raw, compact JSON value of the data when the data is JSON:
	// the "data" member in structured mode, or the body in binary mode with
	// a JSON content type (see [IsJSONContentType]). nil when absent; a JSON
	// null data is treated as absent.
	Data []byte
	// DataBase64 holds binary (non-JSON) data: the decoded "data_base64"
	// member in structured mode, or the body in binary mode with a non-JSON
	// content type. nil when absent. At most one of Data and DataBase64 is
	// set.
	DataBase64 []byte
}

// Extension returns the value of the named extension and whether it is set.
func (e *Event) Extension(name string) (any, bool) {
	v, ok := e.Extensions[name]
	return v, ok
}

// SetExtension sets the named extension, allocating Extensions if needed. A
// nil v deletes the extension. Values of Go integer types other than int32
// are converted to int32 when they fit; any other value is stored as given
// and reported by [Event.Validate]. SetExtension does not check the name.
func (e *Event) SetExtension(name string, v any) {
	if v == nil {
		delete(e.Extensions, name)
		return
	}
	if n, ok := toInt64(v); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
		v = int32(n)
	}
	if e.Extensions == nil {
		e.Extensions = make(map[string]any, 4)
	}
	e.Extensions[name] = v
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int64:
		return n, true
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint:
		if uint64(n) <= math.MaxInt64 {
			return int64(n), true
		}
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), true
		}
	}
	return 0, false
}

// Attribute returns the canonical string form of a core attribute or
// extension, as CloudEvents subscription filters compare them: strings as
// they are, time in RFC 3339, booleans as "true"/"false" and integers in
// decimal. The bool is false when the attribute is absent. "data" and
// "data_base64" are not attributes.
func (e *Event) Attribute(name string) (string, bool) {
	var s string
	switch name {
	case "specversion":
		s = e.SpecVersion
	case "id":
		s = e.ID
	case "source":
		s = e.Source
	case "type":
		s = e.Type
	case "datacontenttype":
		s = e.DataContentType
	case "dataschema":
		s = e.DataSchema
	case "subject":
		s = e.Subject
	case "time":
		if e.Time.IsZero() {
			return "", false
		}
		return e.Time.Format(time.RFC3339Nano), true
	case "data", "data_base64":
		return "", false
	default:
		switch v := e.Extensions[name].(type) {
		case string:
			return v, true
		case bool:
			return strconv.FormatBool(v), true
		case int32:
			return strconv.FormatInt(int64(v), 10), true
		case nil:
			return "", false
		default:
			return fmt.Sprint(v), true
		}
	}
	return s, s != ""
}

// Validate checks the envelope against the CloudEvents v1.0 rules and
// returns a [*ValidationError] listing every problem (with Index -1), or nil:
//
//   - specversion is "1.0"; id and type are non-empty;
//   - source is a non-empty URI-reference without spaces or control
//     characters;
//   - dataschema, if set, is an absolute URI; datacontenttype, if set, is a
//     type/subtype media type;
//   - time, if set, can be written in RFC 3339 (year 0000-9999, an offset
//     in whole minutes under 24 hours);
//   - extension names are 1 to 20 characters a-z and 0-9 and not a core
//     attribute name; values are strings, bools or int32s;
//   - every string is valid UTF-8, Data (if set) is valid JSON and at most
//     one of Data and DataBase64 is set.
//
// Because Event cannot tell an empty optional attribute from an absent one,
// the rule that subject, dataschema and datacontenttype are non-empty when
// present is enforced by the parsers.
func (e *Event) Validate() error {
	v := validator{index: -1}
	e.validate(&v, 0, true)
	return v.err()
}

// Core attribute bits, used to track which members were seen and which
// already have a reported problem.
type fieldSet uint16

const (
	bitSpecVersion fieldSet = 1 << iota
	bitID
	bitSource
	bitType
	bitDataContentType
	bitDataSchema
	bitSubject
	bitTime
	bitData
	bitDataBase64
)

// coreBit returns the bit of a core attribute name, or 0 for an extension.
func coreBit(name string) fieldSet {
	switch name {
	case "specversion":
		return bitSpecVersion
	case "id":
		return bitID
	case "source":
		return bitSource
	case "type":
		return bitType
	case "datacontenttype":
		return bitDataContentType
	case "dataschema":
		return bitDataSchema
	case "subject":
		return bitSubject
	case "time":
		return bitTime
	case "data":
		return bitData
	case "data_base64":
		return bitDataBase64
	}
	return 0
}

// validator collects problems for one event.
type validator struct {
	index  int  // batch index or -1
	binary bool // name fields after headers
	// utf8Checked is set by the parsers, which have already rejected
	// invalid UTF-8, so that strings are not checked twice.
	utf8Checked bool
	probs       []Problem
}

// field maps an attribute name to the Field of a problem.
func (v *validator) field(attr string) string {
	if !v.binary {
		return attr
	}
	switch attr {
	case "datacontenttype":
		return "content-type"
	case "data", "data_base64":
		return "data"
	}
	return "ce-" + attr
}

func (v *validator) add(attr, detail string) {
	v.probs = append(v.probs, Problem{Index: v.index, Field: v.field(attr), Detail: detail})
}

// addMalformed records a problem that makes the request unreadable.
func (v *validator) addMalformed(attr, detail string) {
	v.probs = append(v.probs, Problem{Index: v.index, Field: v.field(attr), Detail: detail, Malformed: true})
}

func (v *validator) err() error {
	if len(v.probs) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.probs}
}

// validate appends the event's problems to v, skipping the attributes in
// skip (already reported while parsing). checkData makes it verify that
// Data is valid JSON, which the parsers have already done.
func (e *Event) validate(v *validator, skip fieldSet, checkData bool) {
	if skip&bitSpecVersion == 0 {
		switch e.SpecVersion {
		case SpecVersion:
		case "":
			v.add("specversion", "required attribute is missing or empty")
		default:
			v.add("specversion", fmt.Sprintf("unsupported specversion %q (want %q)", truncate(e.SpecVersion), SpecVersion))
		}
	}
	if skip&bitID == 0 {
		v.required("id", e.ID)
	}
	if skip&bitSource == 0 && v.required("source", e.Source) {
		if detail := checkURI(e.Source, false); detail != "" {
			v.add("source", detail)
		}
	}
	if skip&bitType == 0 {
		v.required("type", e.Type)
	}
	if skip&bitDataContentType == 0 && e.DataContentType != "" && v.text("datacontenttype", e.DataContentType) {
		if detail := checkMediaType(e.DataContentType); detail != "" {
			v.add("datacontenttype", detail)
		}
	}
	if skip&bitDataSchema == 0 && e.DataSchema != "" && v.text("dataschema", e.DataSchema) {
		if detail := checkURI(e.DataSchema, true); detail != "" {
			v.add("dataschema", detail)
		}
	}
	if skip&bitSubject == 0 && e.Subject != "" {
		v.text("subject", e.Subject)
	}
	if skip&bitTime == 0 && !e.Time.IsZero() {
		if detail := checkTime(e.Time); detail != "" {
			v.add("time", detail)
		}
	}
	if len(e.Extensions) > 0 {
		e.validateExtensions(v)
	}
	if e.Data != nil && e.DataBase64 != nil {
		v.add("data", "data and data_base64 are mutually exclusive")
	}
	if checkData && len(e.Data) > 0 && !json.Valid(e.Data) {
		v.add("data", "data is not a valid JSON value")
	} else if len(e.Data) > 0 {
		if ptr, detail, ok := storable.JSON(e.Data); !ok {
			v.probs = append(v.probs, Problem{Index: v.index, Field: v.field("data"), Pointer: ptr, Detail: "the value at " + quotePointer(ptr) + " " + detail})
		}
	}
}

// quotePointer names a JSON pointer in a detail ("the data itself" for "").
func quotePointer(p string) string {
	if p == "" {
		return "the top level of data"
	}
	return strconv.Quote(p)
}

// required reports an empty, invalid UTF-8, over-long or NUL-holding
// required attribute and returns whether the value is usable.
func (v *validator) required(attr, s string) bool {
	if s == "" {
		v.add(attr, "required attribute is missing or empty")
		return false
	}
	return v.text(attr, s)
}

// text reports a core attribute's value that is not valid UTF-8, is over
// its limit (see MaxIDLen and the others) or holds U+0000, and returns
// whether the value is usable.
func (v *validator) text(attr, s string) bool {
	if !v.utf8(attr, s) {
		return false
	}
	if max := maxLenOf(attr); max > 0 && len(s) > max {
		v.add(attr, tooLong(len(s), max))
		return false
	}
	if hasNUL(s) {
		v.add(attr, nulDetail)
		return false
	}
	return true
}

func (v *validator) utf8(attr, s string) bool {
	if !v.utf8Checked && !utf8.ValidString(s) {
		v.add(attr, "value is not valid UTF-8")
		return false
	}
	return true
}

func (e *Event) validateExtensions(v *validator) {
	start := len(v.probs)
	for name, val := range e.Extensions {
		if detail := checkExtensionName(name); detail != "" {
			v.add(name, detail)
		}
		switch x := val.(type) {
		case string:
			if v.utf8(name, x) {
				if detail := checkExtensionValue(name, x); detail != "" {
					v.add(name, detail)
				}
			}
		case bool, int32:
		case nil:
			v.add(name, "extension value is nil")
		default:
			v.add(name, fmt.Sprintf("extension value has type %T; want string, bool or int32", val))
		}
	}
	// Map order is random; keep the problem list deterministic.
	slices.SortStableFunc(v.probs[start:], func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
	if len(e.Extensions) > MaxExtensions {
		v.probs = append(v.probs, Problem{Index: v.index, Field: "extensions",
			Detail: "the event has " + strconv.Itoa(len(e.Extensions)) + " extensions; the limit is " + strconv.Itoa(MaxExtensions)})
	}
}

// maxExtensionName is the longest extension name accepted, as the
// CloudEvents specification recommends.
const maxExtensionName = 20

// checkExtensionName returns a problem detail, or "" if name is a valid
// extension name.
func checkExtensionName(name string) string {
	if name == "" || len(name) > maxExtensionName {
		return fmt.Sprintf("extension name must be 1 to %d characters long", maxExtensionName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return "extension name must contain only lower-case letters a-z and digits 0-9"
		}
	}
	if coreBit(name) != 0 {
		return "extension name is reserved for a core attribute"
	}
	return ""
}

// checkURI returns a problem detail, or "" if s is a URI-reference (or, with
// absolute, an absolute URI).
func checkURI(s string, absolute bool) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return "must be a URI-reference without spaces or control characters"
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return "must be a valid URI-reference: " + err.Error()
	}
	if absolute && u.Scheme == "" {
		return "must be an absolute URI (with a scheme)"
	}
	return ""
}

// checkMediaType returns a problem detail, or "" if s is a type/subtype
// media type with well-formed parameters.
func checkMediaType(s string) string {
	if !strings.Contains(s, ";") && isToken(s, true) {
		return "" // fast path: plain type/subtype
	}
	mt, _, err := mime.ParseMediaType(s)
	if err != nil {
		return "must be a valid media type: " + err.Error()
	}
	if !strings.Contains(mt, "/") {
		return "must be a media type of the form type/subtype"
	}
	return ""
}

// isToken reports whether s is an RFC 7230 token, or with slash two tokens
// joined by one '/'.
func isToken(s string, slash bool) bool {
	slashAt := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/' && slash && slashAt < 0:
			slashAt = i
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	if !slash {
		return s != ""
	}
	return slashAt > 0 && slashAt < len(s)-1
}

// checkTime returns a problem detail, or "" if t can be written in RFC 3339,
// read back as the same instant, and stored by PostgreSQL as written: its
// timestamptz takes no year 0000 (1 BC is year 0001 BC there) and no offset
// of 16 hours or more, both of which RFC 3339 allows.
func checkTime(t time.Time) string {
	if y := t.Year(); y < 1 || y > 9999 {
		return "year must be between 0001 and 9999"
	}
	_, off := t.Zone()
	if off%60 != 0 || off <= -MaxTimeOffset || off >= MaxTimeOffset {
		return "time zone offset must be whole minutes and under 16 hours"
	}
	return ""
}
