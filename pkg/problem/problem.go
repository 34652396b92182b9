// Package problem writes RFC 9457 problem details (application/problem+json).
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem details document. Errors extends it with the
// individual failures behind it, each naming the field (and, in a batch, the
// entry) that failed.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists every individual failure, when there are any.
	Errors []FieldError `json:"errors,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header in seconds.
	RetryAfter int `json:"-"`
}

// FieldError is one failure: which entry and field, and why.
type FieldError struct {
	// Index is the position of the entry in a batch; absent outside batches.
	Index *int `json:"index,omitempty"`
	// Field names the attribute, header or JSON pointer that failed.
	Field string `json:"field,omitempty"`
	// Pointer, when set, is the JSON pointer of the failing value inside
	// Field: the instance location in an event's data that failed its
	// schema, or the location in a schema of an incompatible change.
	Pointer string `json:"pointer,omitempty"`
	// Keyword, when set, is the JSON Schema keyword that failed (maximum,
	// required ...), or the change type of an incompatible schema change.
	Keyword string `json:"keyword,omitempty"`
	// Detail says what is wrong, in words a client developer can act on.
	Detail string `json:"detail"`
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
