// Package jsonbody reads and writes the JSON bodies of the tenant APIs that
// live outside the gateway (the schema registry, contracts), with the same
// rules as the gateway's own: one JSON value, known members only, a size
// cap, problem+json errors.
package jsonbody

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/prost-platform/prost/pkg/problem"
)

// Read returns the request body, at most max bytes, after checking its
// media type is one of types (compared case-insensitively, parameters
// ignored; an absent Content-Type is accepted). Failures are problems: 415
// for another media type, 413 over max.
func Read(w http.ResponseWriter, r *http.Request, max int64, types ...string) ([]byte, string, error) {
	mt := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil || !slices.Contains(types, strings.ToLower(mt)) {
			return nil, "", problem.New(http.StatusUnsupportedMediaType, "send "+strings.Join(types, " or "))
		}
		mt = strings.ToLower(mt)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", problem.New(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", max))
		}
		return nil, "", problem.New(http.StatusBadRequest, "cannot read the body: "+err.Error())
	}
	return b, mt, nil
}

// Decode reads one JSON value from b into v strictly: unknown members and
// trailing data are 400 problems.
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.New(http.StatusBadRequest, "malformed JSON body: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.New(http.StatusBadRequest, "malformed JSON body: more than one JSON value")
	}
	return nil
}

// Write sends v as JSON with status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
