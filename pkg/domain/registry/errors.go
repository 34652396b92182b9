package registry

import (
	"fmt"
	"strings"

	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/schemacompat"
)

// ErrTooManySubjects refuses a new subject beyond the tenant's limit
// (Config.MaxSubjects, PROST_MAX_SUBJECTS).
var ErrTooManySubjects = problem.Errorf(problem.Invalid, "the App has as many subjects as it may have; delete one it no longer uses")

var (
	// ErrSubjectNotFound: the tenant has no live version of the subject and
	// it is not a platform subject.
	ErrSubjectNotFound = problem.Errorf(problem.NotFound, "registry: subject not found")
	// ErrVersionNotFound: the subject exists but not that version (or the
	// version was deleted).
	ErrVersionNotFound = problem.Errorf(problem.NotFound, "registry: version not found")
	// ErrInvalidSchema wraps every reason a schema cannot be registered:
	// not JSON, not a schema, not valid against its metaschema, a draft
	// PROST does not accept, a $ref to anything but this registry.
	ErrInvalidSchema = problem.On(problem.Invalid, "schema", "registry: invalid schema")
	// ErrInvalidSubject: the subject is not a usable event type.
	ErrInvalidSubject = problem.On(problem.Invalid, "subject", "registry: invalid subject")
	// ErrInvalidVersion: the version is neither a positive integer nor
	// "latest".
	ErrInvalidVersion = problem.On(problem.Invalid, "version", "registry: invalid version")
	// ErrInvalidConfig: a compatibility mode, policy or unregistered-types
	// policy that does not exist, or a tenant-wide setting on a subject.
	ErrInvalidConfig = problem.Errorf(problem.Invalid, "registry: invalid configuration")
	// ErrReadOnly: platform subjects cannot be changed by tenants.
	ErrReadOnly = problem.Errorf(problem.Forbidden, "registry: platform subjects are read-only")
	// ErrNotSoftDeleted: a permanent delete needs the version (or every
	// version of the subject) to be soft-deleted first.
	ErrNotSoftDeleted = problem.Errorf(problem.Conflict, "registry: delete without permanent=true first")
)

// IncompatibleError is returned when a new version breaks the subject's
// compatibility mode. Result lists every difference found.
type IncompatibleError struct {
	Subject string
	Mode    schemacompat.Mode
	Policy  schemacompat.Policy
	Result  schemacompat.Result
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("registry: the schema is incompatible with subject %q under %s (%s): %s",
		e.Subject, e.Mode, e.Policy, strings.Join(e.Result.Messages, "; "))
}

// Unwrap gives the error's kind, problem.Conflict (409).
func (e *IncompatibleError) Unwrap() error { return problem.Conflict }

// DetailProblem lists each incompatible difference in errors (pointer,
// change type as keyword) and every difference, compatible or not, in the
// differences member, with the mode and policy applied.
func (e *IncompatibleError) DetailProblem(p *problem.Problem) {
	p.Detail = fmt.Sprintf("the schema is incompatible with the earlier versions of %q under %s (%s)", e.Subject, e.Mode, e.Policy)
	for _, d := range e.Result.Differences {
		if !d.Compatible {
			p.Errors = append(p.Errors, problem.FieldError{Field: "schema", Pointer: d.Pointer, Keyword: string(d.Type),
				Detail: fmt.Sprintf("version %d (%s): %s at %s: %s", d.Version, d.Direction, d.Type, d.Pointer, d.Message)})
		}
	}
	p.Extensions = map[string]any{"compatibility": e.Mode, "policy": e.Policy, "differences": e.Result.Differences}
}

// Problem is one reason an event was refused at ingest.
type Problem struct {
	// Index is the event's position in a batch, or -1 outside batches.
	Index int
	// Field is the CloudEvents attribute that failed: "data", "dataschema"
	// or "type".
	Field string
	// Pointer is the JSON pointer in data of the failing value ("" for data
	// itself), set when Field is "data".
	Pointer string
	// Keyword is the JSON Schema keyword that failed ("maximum",
	// "required"...), or "contract" for a contract rule.
	Keyword string
	// Detail says what is wrong.
	Detail string
}

// IngestError lists every problem of every refused event of a request.
type IngestError struct {
	Problems []Problem
}

func (e *IngestError) Error() string {
	var b strings.Builder
	b.WriteString("registry: events refused")
	for i, p := range e.Problems {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-3)
			break
		}
		b.WriteString("; ")
		if p.Index >= 0 {
			fmt.Fprintf(&b, "[%d] ", p.Index)
		}
		b.WriteString(p.Field + p.Pointer + ": " + p.Detail)
	}
	return b.String()
}

// Unwrap gives the error's kind, problem.Invalid (422): the events are
// valid CloudEvents whose data breaks their schema or contract, or whose
// type is not registered (decision 0006).
func (e *IngestError) Unwrap() error { return problem.Invalid }

// DetailProblem lists every problem with its entry, field, pointer and
// keyword.
func (e *IngestError) DetailProblem(p *problem.Problem) {
	p.Detail = "the request holds events whose data breaks their schema or contract"
	for _, ip := range e.Problems {
		fe := problem.FieldError{Field: ip.Field, Pointer: ip.Pointer, Keyword: ip.Keyword, Detail: ip.Detail}
		if ip.Index >= 0 {
			i := ip.Index
			fe.Index = &i
		}
		p.Errors = append(p.Errors, fe)
	}
}
