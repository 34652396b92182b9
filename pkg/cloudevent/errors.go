package cloudevent

import (
	"errors"
	"strconv"
	"strings"

	"github.com/prost-platform/prost/pkg/problem"
)

var (
	// ErrUnsupportedMediaType reports a structured or batched Content-Type
	// whose format is not JSON (application/cloudevents+avro,
	// application/cloudevents-batch+xml, ...) or whose charset is not UTF-8.
	// A gateway answers it with 415 Unsupported Media Type.
	ErrUnsupportedMediaType error = problem.Errorf(problem.UnsupportedMediaType, "cloudevent: unsupported media type")

	// ErrTooLarge reports a body longer than [Limits.MaxBodyBytes] or a batch
	// with more than [Limits.MaxBatch] events. It is always wrapped with a
	// detail naming the limit. A gateway answers it with 413 Content Too Large.
	ErrTooLarge error = problem.Errorf(problem.TooLarge, "cloudevent: request too large")

	// ErrInvalid matches every [*ValidationError] with errors.Is, for callers
	// that only need the class of the error.
	ErrInvalid = errors.New("cloudevent: invalid event")
)

// Problem is one reason an event or request body was rejected.
type Problem struct {
	// Index is the position of the entry in a batch, or -1 when the request
	// is not a batch or the problem concerns the whole body.
	Index int
	// Field names what is wrong: an attribute or extension name such as
	// "source" in structured and batched mode, the header name such as
	// "ce-source" (or "content-type") in binary mode, "data" or
	// "data_base64" for the payload, or "" for the whole body (malformed
	// JSON, invalid UTF-8, a body or batch entry of the wrong JSON type).
	Field string
	// Pointer, for a problem inside the data, is the JSON pointer (RFC
	// 6901) of the offending value within it ("" for the data itself).
	Pointer string
	// Detail is a human-readable explanation, including a byte offset for
	// malformed JSON.
	Detail string
	// Malformed is true when the request itself could not be read as
	// CloudEvents (malformed JSON, invalid UTF-8, a body or entry of the wrong
	// JSON type, a duplicate member or header, a header that does not decode,
	// binary-mode JSON data that is not JSON), as opposed to a well-formed
	// event that breaks a CloudEvents rule. A gateway answers the first with
	// 400 and the second with 422.
	Malformed bool
}

// String formats the problem as "events[2].source: detail", "source:
// detail" or "body: detail".
func (p Problem) String() string {
	var b strings.Builder
	b.Grow(len(p.Field) + len(p.Detail) + 16)
	p.write(&b)
	return b.String()
}

func (p Problem) write(b *strings.Builder) {
	if p.Index >= 0 {
		b.WriteString("events[")
		b.WriteString(strconv.Itoa(p.Index))
		b.WriteByte(']')
		if p.Field != "" {
			b.WriteByte('.')
		}
	}
	switch {
	case p.Field != "":
		b.WriteString(p.Field)
	case p.Index < 0:
		b.WriteString("body")
	}
	b.WriteString(": ")
	b.WriteString(p.Detail)
}

// ValidationError lists every problem found in a request or an event. It is
// what [ParseRequest] and [Event.Validate] return for invalid input; a
// gateway answers it with 400 Bad Request and can return Problems to the
// client. Problems is never empty in an error returned by this package.
type ValidationError struct {
	Problems []Problem
}

// maxSummarised bounds how many problems Error spells out.
const maxSummarised = 5

// Error summarises the problems: the first few in full, then a count of the
// rest.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("cloudevent: invalid event")
	if len(e.Problems) == 0 {
		return b.String()
	}
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i == maxSummarised {
			b.WriteString("; and ")
			b.WriteString(strconv.Itoa(len(e.Problems) - maxSummarised))
			b.WriteString(" more")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		p.write(&b)
	}
	return b.String()
}

// Is reports whether target is [ErrInvalid].
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Unwrap gives the error's kind: problem.Malformed (400) when the request
// could not be read as CloudEvents, problem.Invalid (422) when it was read
// and an event breaks the CloudEvents rules (decision 0006).
func (e *ValidationError) Unwrap() error {
	if e.Malformed() {
		return problem.Malformed
	}
	return problem.Invalid
}

// DetailProblem lists every problem, each naming its field and, in a
// batch, its entry.
func (e *ValidationError) DetailProblem(p *problem.Problem) {
	p.Detail = "the request holds events that break the CloudEvents rules"
	if e.Malformed() {
		p.Detail = "the request cannot be read as CloudEvents"
	}
	for _, vp := range e.Problems {
		fe := problem.FieldError{Field: vp.Field, Pointer: vp.Pointer, Detail: vp.Detail}
		if vp.Index >= 0 {
			i := vp.Index
			fe.Index = &i
		}
		p.Errors = append(p.Errors, fe)
	}
}

// bodyProblem is a problem with the whole body.
func bodyProblem(detail string) *ValidationError {
	return &ValidationError{Problems: []Problem{{Index: -1, Detail: detail, Malformed: true}}}
}

// Malformed reports whether any problem is Malformed.
func (e *ValidationError) Malformed() bool {
	for _, p := range e.Problems {
		if p.Malformed {
			return true
		}
	}
	return false
}
