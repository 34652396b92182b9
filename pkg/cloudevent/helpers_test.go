package cloudevent_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

const (
	ctStructured = "application/cloudevents+json"
	ctBatch      = "application/cloudevents-batch+json"
)

// newRequest builds an ingest request. Header names in hdr are set as given
// (canonicalised by Header.Add).
func newRequest(t testing.TB, contentType, body string, hdr map[string]string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		r.Header.Add(k, v)
	}
	return r
}

// validationProblems asserts that err is a *ValidationError (and ErrInvalid)
// and returns its problems.
func validationProblems(t testing.TB, err error) []cloudevent.Problem {
	t.Helper()
	require.Error(t, err)
	verr, ok := errors.AsType[*cloudevent.ValidationError](err)
	require.True(t, ok, "want *ValidationError, got %T: %v", err, err)
	require.ErrorIs(t, err, cloudevent.ErrInvalid)
	require.NotEmpty(t, verr.Problems)
	require.NotErrorIs(t, err, cloudevent.ErrTooLarge)
	require.NotErrorIs(t, err, cloudevent.ErrUnsupportedMediaType)
	return verr.Problems
}

// requireProblem asserts that err is a *ValidationError holding a problem
// with the given index and field whose detail contains detail.
func requireProblem(t testing.TB, err error, index int, field, detail string) {
	t.Helper()
	probs := validationProblems(t, err)
	for _, p := range probs {
		if p.Index == index && p.Field == field && strings.Contains(p.Detail, detail) {
			return
		}
	}
	require.Failf(t, "problem not found", "want index %d field %q detail containing %q; got %+v", index, field, detail, probs)
}

// requireEventEqual compares events, times by instant and offset (the
// *time.Location pointers of two parses may differ).
func requireEventEqual(t testing.TB, want, got cloudevent.Event) {
	t.Helper()
	require.True(t, want.Time.Equal(got.Time), "time: want %v, got %v", want.Time, got.Time)
	_, wantOff := want.Time.Zone()
	_, gotOff := got.Time.Zone()
	require.Equal(t, wantOff, gotOff, "time offset")
	want.Time, got.Time = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

// requireRoundTrip encodes ev, checks the JSON is valid and canonical (a
// second encode is identical) and that it parses back to an equal event.
func requireRoundTrip(t testing.TB, ev cloudevent.Event) {
	t.Helper()
	require.NoError(t, ev.Validate())
	out := ev.AppendJSON(nil)
	require.True(t, json.Valid(out), "invalid JSON: %s", out)
	marshalled, err := ev.MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, string(out), string(marshalled))
	back, err := cloudevent.ParseStructured(out)
	require.NoError(t, err, "output: %s", out)
	requireEventEqual(t, ev, back)
	require.Equal(t, string(out), string(back.AppendJSON(nil)))
}

// limitedReader serves an endless body of spaces and fails the test if more
// than max bytes are read from it.
type limitedReader struct {
	t    testing.TB
	max  int64
	read int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	r.read += int64(len(p))
	if r.read > r.max {
		r.t.Errorf("read %d bytes, more than the allowed %d", r.read, r.max)
		return 0, io.ErrUnexpectedEOF
	}
	return len(p), nil
}
