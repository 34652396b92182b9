package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/storable"
)

// DefaultMaxJSONBytes caps a JSON request body read with ReadJSON when the
// route gives no other limit: 64 KiB.
const DefaultMaxJSONBytes = 64 << 10

// WriteJSON sends v as JSON with status. It returns nil: a failure to write
// means the client went away, and nothing can be answered then.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}

// ReadBody returns the request body, at most max bytes, after checking its
// media type is one of types (compared case-insensitively, parameters
// ignored; an absent Content-Type is accepted and "" returned). Failures are
// errors of kind UnsupportedMediaType (415) or TooLarge (413).
func ReadBody(w http.ResponseWriter, r *http.Request, max int64, types ...string) ([]byte, string, error) {
	mt := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil || !slices.Contains(types, strings.ToLower(mt)) {
			return nil, "", problem.Errorf(problem.UnsupportedMediaType, "send %s", strings.Join(types, " or "))
		}
		mt = strings.ToLower(mt)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", problem.Errorf(problem.TooLarge, "body over %d bytes", max)
		}
		return nil, "", problem.Errorf(problem.Malformed, "cannot read the body: %v", err)
	}
	return b, mt, nil
}

// Decode reads one JSON value from b into v strictly: unknown members and
// trailing data are Malformed (400); a string the database cannot store
// (U+0000, an unpaired surrogate escape: see pkg/storable) is Invalid (422)
// naming its JSON pointer.
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.Errorf(problem.Malformed, "malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.Errorf(problem.Malformed, "malformed JSON body: more than one JSON value")
	}
	if ptr, reason, ok := storable.JSON(b); !ok {
		return Unstorable(ptr, reason)
	}
	return nil
}

// Unstorable is the 422 for a value the database cannot store (see
// pkg/storable), naming the member by its JSON pointer.
func Unstorable(pointer, reason string) error {
	field := pointer
	if field == "" {
		field = "/"
	}
	return problem.InvalidField(field, reason)
}

// ReadJSON reads an application/json body of at most max bytes (0:
// DefaultMaxJSONBytes) into v strictly (see Decode).
func ReadJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if max <= 0 {
		max = DefaultMaxJSONBytes
	}
	b, _, err := ReadBody(w, r, max, "application/json")
	if err != nil {
		var pe *problem.Error
		if errors.As(err, &pe) && pe.Kind == problem.TooLarge {
			return problem.Errorf(problem.TooLarge, "body over %s", byteSize(max))
		}
		return err
	}
	return Decode(b, v)
}

func byteSize(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
