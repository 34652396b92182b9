package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prost-platform/prost/pkg/schemacompat"
)

var (
	// ErrSubjectNotFound: the tenant has no live version of the subject and
	// it is not a platform subject.
	ErrSubjectNotFound = errors.New("registry: subject not found")
	// ErrVersionNotFound: the subject exists but not that version (or the
	// version was deleted).
	ErrVersionNotFound = errors.New("registry: version not found")
	// ErrInvalidSchema wraps every reason a schema cannot be registered:
	// not JSON, not a schema, not valid against its metaschema, a draft
	// PROST does not accept, a $ref to anything but this registry.
	ErrInvalidSchema = errors.New("registry: invalid schema")
	// ErrInvalidSubject: the subject is not a usable event type.
	ErrInvalidSubject = errors.New("registry: invalid subject")
	// ErrInvalidVersion: the version is neither a positive integer nor
	// "latest".
	ErrInvalidVersion = errors.New("registry: invalid version")
	// ErrInvalidConfig: a compatibility mode, policy or unregistered-types
	// policy that does not exist, or a tenant-wide setting on a subject.
	ErrInvalidConfig = errors.New("registry: invalid configuration")
	// ErrReadOnly: platform subjects cannot be changed by tenants.
	ErrReadOnly = errors.New("registry: platform subjects are read-only")
	// ErrNotSoftDeleted: a permanent delete needs the version (or every
	// version of the subject) to be soft-deleted first.
	ErrNotSoftDeleted = errors.New("registry: delete without permanent=true first")
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
