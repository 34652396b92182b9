package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/problem"
)

// MaxPageSize is the largest page a list route answers.
const MaxPageSize = 1000

// Limit reads the limit query parameter: 0 when absent, else 1 to
// MaxPageSize.
func Limit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, problem.BadParam("limit", "must be an integer from 1 to 1000")
	}
	return n, nil
}

// TimeParam reads an RFC 3339 time from query parameter name; the zero time
// when absent.
func TimeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, problem.BadParam(name, "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return t, nil
}

// UUIDParam reads an optional UUID from query parameter name; nil when
// absent.
func UUIDParam(r *http.Request, name string) (*uuid.UUID, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return nil, problem.BadParam(name, "must be a UUID")
	}
	return &id, nil
}

// PathUUID reads the path parameter name as a UUID; what names the resource
// in the message ("an App id").
func PathUUID(r *http.Request, name, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue(name))
	if err != nil {
		return uuid.Nil, problem.BadPathParam(name, "must be "+what+" (a UUID)")
	}
	return id, nil
}

// PathInt reads the path parameter name as a positive integer; what names the
// resource in the message.
func PathInt(r *http.Request, name, what string) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || n < 1 {
		return 0, problem.BadPathParam(name, "must be "+what+" (a positive integer)")
	}
	return n, nil
}

// MaxActorLen bounds the X-Prost-Actor header.
const MaxActorLen = 128

// Actor names who asked for an operator action, for the audit log and the
// logs: the X-Prost-Actor header (the CLI sends user@host), else "admin".
// The name is written into the immutable audit chain, so it is restricted
// to 1 to MaxActorLen characters of letters, digits, space and . _ @ + : / -
// (no control, bidirectional or other invisible characters); any other
// value is refused (422 naming the header).
func Actor(r *http.Request) (string, error) {
	a := strings.TrimSpace(r.Header.Get("X-Prost-Actor"))
	if a == "" {
		return "admin", nil
	}
	if len(a) > MaxActorLen {
		return "", problem.InvalidField("X-Prost-Actor", "must be at most "+strconv.Itoa(MaxActorLen)+" characters")
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && !strings.ContainsRune(" ._@+:/-", rune(c)) {
			return "", problem.InvalidField("X-Prost-Actor", "may hold only letters, digits, space and . _ @ + : / -")
		}
	}
	return a, nil
}
