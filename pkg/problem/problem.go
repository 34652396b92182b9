// Package problem is PROST's error taxonomy and its one mapping to HTTP: a
// small set of kinds (not found, invalid, conflict, forbidden, unavailable
// ...) that domain errors wrap, and From, the only function that turns an
// error into an RFC 9457 problem details document
// (application/problem+json).
//
// A domain declares its errors with a kind:
//
//	var ErrNotFound = problem.Errorf(problem.NotFound, "no rule with that id")
//
// or, for a typed error, by unwrapping to a Kind and, when it carries more
// than a message (compatibility differences, lint findings, validation
// pointers), by implementing Detailer. Handlers return errors; the HTTP
// layer (pkg/httpapi) writes From(err).
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Kind classifies an error by what the client can do about it. A Kind is an
// error itself, so errors.Is(err, problem.NotFound) asks whether err is of
// that kind wherever it sits in a chain.
type Kind uint8

// The kinds, each with the HTTP status From gives it.
const (
	// Internal is a failure of PROST's, not the client's (500). Its message
	// is logged, never sent.
	Internal Kind = iota
	// Malformed: the request cannot be read: unparsable JSON, a bad query
	// or path parameter, an unknown cursor (400).
	Malformed
	// Unauthenticated: missing or wrong credentials (401).
	Unauthenticated
	// Forbidden: authenticated, but not allowed (403).
	Forbidden
	// NotFound: no such resource for this caller (404). Another tenant's
	// resources are not found, never forbidden.
	NotFound
	// MethodNotAllowed: the route exists with other methods (405).
	MethodNotAllowed
	// Conflict: the request clashes with the resource's state (409).
	Conflict
	// TooLarge: a body, batch or value over a limit (413).
	TooLarge
	// UnsupportedMediaType: a Content-Type the route does not take (415).
	UnsupportedMediaType
	// Invalid: the request was read and breaks a rule; the field errors
	// name each failing member (422).
	Invalid
	// RateLimited: over a rate limit; retry after RetryAfter (429).
	RateLimited
	// Unavailable: PROST cannot serve it now (overloaded, shutting down, a
	// dependency missing); retry later (503).
	Unavailable
	// NotAcceptable: the route cannot answer in a media type the request's
	// Accept allows (406).
	NotAcceptable
	// Gone: what the request names existed and is no longer kept (410).
	Gone
)

var kinds = [...]struct {
	name   string
	status int
}{
	Internal:             {"internal error", http.StatusInternalServerError},
	Malformed:            {"malformed request", http.StatusBadRequest},
	Unauthenticated:      {"unauthenticated", http.StatusUnauthorized},
	Forbidden:            {"forbidden", http.StatusForbidden},
	NotFound:             {"not found", http.StatusNotFound},
	MethodNotAllowed:     {"method not allowed", http.StatusMethodNotAllowed},
	Conflict:             {"conflict", http.StatusConflict},
	TooLarge:             {"too large", http.StatusRequestEntityTooLarge},
	UnsupportedMediaType: {"unsupported media type", http.StatusUnsupportedMediaType},
	Invalid:              {"invalid", http.StatusUnprocessableEntity},
	RateLimited:          {"rate limited", http.StatusTooManyRequests},
	Unavailable:          {"unavailable", http.StatusServiceUnavailable},
	NotAcceptable:        {"not acceptable", http.StatusNotAcceptable},
	Gone:                 {"gone", http.StatusGone},
}

func (k Kind) Error() string {
	if int(k) < len(kinds) {
		return kinds[k].name
	}
	return "kind " + strconv.Itoa(int(k))
}

// Status is the HTTP status of the kind (500 for an unknown kind).
func (k Kind) Status() int {
	if int(k) < len(kinds) {
		return kinds[k].status
	}
	return http.StatusInternalServerError
}

// Error is an error of a Kind whose message is written for the client, with
// the individual failures behind it.
type Error struct {
	Kind Kind
	// Msg is the message; for every kind but Internal it is the problem's
	// detail, so it must be safe and useful to show the client.
	Msg string
	// Fields lists the failing fields, parameters or members.
	Fields []FieldError
	// RetryAfter, when positive, is sent as Retry-After in seconds.
	RetryAfter int
	cause      error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the kind and, when the message wrapped one with %w, the
// cause.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Kind, e.cause}
	}
	return []error{e.Kind}
}

// Errorf returns an error of kind k. A %w verb keeps its operand as the
// cause (errors.Is and errors.As see both the kind and the cause).
func Errorf(k Kind, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := &Error{Kind: k, Msg: err.Error()}
	if u := errors.Unwrap(err); u != nil {
		e.cause = u
	}
	return e
}

// WithField returns a copy of e that also names a failing field.
func (e *Error) WithField(field, detail string) *Error {
	c := *e
	c.Fields = append(append([]FieldError(nil), e.Fields...), FieldError{Field: field, Detail: detail})
	return &c
}

// InvalidField is a 422 naming one failing member of a request body.
func InvalidField(field, detail string) *Error {
	return &Error{Kind: Invalid, Msg: "invalid " + field + ": " + detail, Fields: []FieldError{{Field: field, Detail: detail}}}
}

// On returns an error of kind k about one field: its problem names field,
// with the message of the whole error chain (what wrapped it included) as
// the field's detail. Use it for sentinels that callers wrap with the
// reason: fmt.Errorf("%w: %s", ErrInvalidSchema, why).
func On(k Kind, field, msg string) *Error {
	return &Error{Kind: k, Msg: msg, Fields: []FieldError{{Field: field}}}
}

// BadParam is a 400 naming a query parameter that cannot be used.
func BadParam(name, detail string) *Error {
	return &Error{Kind: Malformed, Msg: "invalid query parameter " + name, Fields: []FieldError{{Field: name, Detail: detail}}}
}

// BadPathParam is a 400 naming a path parameter that cannot be used.
func BadPathParam(name, detail string) *Error {
	return &Error{Kind: Malformed, Msg: "invalid path parameter " + name, Fields: []FieldError{{Field: name, Detail: detail}}}
}

// Detailer is implemented by errors that carry more than a message: From
// calls DetailProblem with the problem it built from the error's kind and
// message, to add field errors, extension members or a better detail.
type Detailer interface {
	DetailProblem(p *Problem)
}

// From maps err to its problem: the one place where errors become HTTP
// statuses. A *Problem in the chain is used as it is; otherwise the Kind in
// the chain gives the status (a context deadline is Unavailable; no kind is
// Internal), the error's message the detail (a generic text for Internal,
// whose message is for the logs only, and for a kind it does not know), and
// *Error and Detailer add the rest.
func From(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var k Kind
	switch {
	case errors.As(err, &k):
	case errors.Is(err, context.DeadlineExceeded):
		p = New(http.StatusServiceUnavailable, "the request timed out; retry later")
		p.RetryAfter = 1
		return p
	default:
		k = Internal
	}
	if k == Internal || int(k) >= len(kinds) {
		return New(http.StatusInternalServerError, "internal error; the request id identifies it in the logs")
	}
	p = New(k.Status(), err.Error())
	var e *Error
	if errors.As(err, &e) {
		for _, f := range e.Fields {
			if f.Detail == "" {
				f.Detail = err.Error()
			}
			p.Errors = append(p.Errors, f)
		}
		p.RetryAfter = e.RetryAfter
	}
	if p.RetryAfter == 0 && (k == Unavailable || k == RateLimited) {
		p.RetryAfter = 1
	}
	var d Detailer
	if errors.As(err, &d) {
		d.DetailProblem(p)
	}
	return p
}

// Problem is an RFC 9457 problem details document. Errors extends it with the
// individual failures behind it, each naming the field (and, in a batch, the
// entry) that failed; Extensions adds members of a problem type's own.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists every individual failure, when there are any.
	Errors []FieldError `json:"errors,omitempty"`
	// Extensions are more top-level members (for example the differences
	// of an incompatible schema). They never replace the members above.
	Extensions map[string]any `json:"-"`
	// RetryAfter, when positive, is sent as the Retry-After header in seconds.
	RetryAfter int `json:"-"`
}

// FieldError is one failure: which entry and field, and why.
type FieldError struct {
	// Index is the position of the entry in a batch; absent outside batches.
	Index *int `json:"index,omitempty"`
	// Field names the attribute, header, parameter or JSON pointer that
	// failed.
	Field string `json:"field,omitempty"`
	// Pointer, when set, is the JSON pointer of the failing value inside
	// Field: the instance location in an event's data that failed its
	// schema, or the location in a schema of an incompatible change.
	Pointer string `json:"pointer,omitempty"`
	// Keyword, when set, is the JSON Schema keyword that failed (maximum,
	// required ...), the change type of an incompatible schema change, or
	// the gate of a contract finding.
	Keyword string `json:"keyword,omitempty"`
	// Detail says what is wrong, in words a client developer can act on.
	Detail string `json:"detail"`
	// Line and Column locate the failure inside an expression (CESQL, CEL,
	// a template), counting from 1.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// Error lets a Problem travel as an error.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// New returns a Problem with a type URI derived from the status.
func New(status int, detail string) *Problem {
	return &Problem{
		Type:   "https://prost.dev/problems/" + strconv.Itoa(status),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	}
}

// MarshalJSON writes the standard members, then the extensions.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	b, err := json.Marshal((*plain)(p))
	if err != nil || len(p.Extensions) == 0 {
		return b, err
	}
	ext := make(map[string]any, len(p.Extensions))
	for k, v := range p.Extensions {
		switch k {
		case "type", "title", "status", "detail", "instance", "errors":
		default:
			ext[k] = v
		}
	}
	eb, err := json.Marshal(ext)
	if err != nil {
		return nil, err
	}
	if len(eb) <= 2 {
		return b, nil
	}
	// Both are objects: splice the extensions' members in before the '}'.
	return append(append(b[:len(b)-1:len(b)-1], ','), eb[1:]...), nil
}

// Write sends p as the response.
func Write(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Cache-Control", "no-store")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
