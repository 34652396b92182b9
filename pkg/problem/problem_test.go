package problem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/problem"
)

// detailed adds a member to its problem, as a domain error may.
type detailed struct{ error }

func (d detailed) Unwrap() error { return d.error }

func (d detailed) DetailProblem(p *problem.Problem) {
	if p.Extensions == nil {
		p.Extensions = map[string]any{}
	}
	p.Extensions["differences"] = []string{"removed property"}
}

// TestFrom is the table of what every kind of error becomes: the one place
// errors become HTTP statuses (docs/architecture.md, decision 0009).
func TestFrom(t *testing.T) {
	t.Parallel()
	own := problem.New(http.StatusTeapot, "as it is")
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		detail     string
		retryAfter int
		fields     []problem.FieldError
	}{
		{"no kind is internal, its message kept from the client", errors.New("pq: secret table"), 500,
			"internal error; the request id identifies it in the logs", 0, nil},
		{"internal kind", problem.Errorf(problem.Internal, "disk full at /var/x"), 500,
			"internal error; the request id identifies it in the logs", 0, nil},
		{"a deadline is unavailable, retried", fmt.Errorf("query: %w", context.DeadlineExceeded), 503,
			"the request timed out; retry later", 1, nil},
		{"malformed", problem.Errorf(problem.Malformed, "body is not JSON"), 400, "body is not JSON", 0, nil},
		{"unauthenticated", problem.Unauthenticated, 401, "unauthenticated", 0, nil},
		{"forbidden", problem.Errorf(problem.Forbidden, "tenantid names another tenant"), 403, "tenantid names another tenant", 0, nil},
		{"not found, wrapped", fmt.Errorf("rule 7: %w", problem.NotFound), 404, "rule 7: not found", 0, nil},
		{"method not allowed", problem.MethodNotAllowed, 405, "method not allowed", 0, nil},
		{"conflict", problem.Errorf(problem.Conflict, "version exists"), 409, "version exists", 0, nil},
		{"too large", problem.Errorf(problem.TooLarge, "body over 1 MiB"), 413, "body over 1 MiB", 0, nil},
		{"unsupported media type", problem.UnsupportedMediaType, 415, "unsupported media type", 0, nil},
		{"not acceptable", problem.NotAcceptable, 406, "not acceptable", 0, nil},
		{"gone", problem.Errorf(problem.Gone, "older than the stream keeps"), 410, "older than the stream keeps", 0, nil},
		{"rate limited gets a Retry-After", problem.Errorf(problem.RateLimited, "slow down"), 429, "slow down", 1, nil},
		{"unavailable gets a Retry-After", problem.Errorf(problem.Unavailable, "shutting down"), 503, "shutting down", 1, nil},
		{"an explicit Retry-After is kept", &problem.Error{Kind: problem.RateLimited, Msg: "slow down", RetryAfter: 7}, 429, "slow down", 7, nil},
		{"invalid field", problem.InvalidField("type", "too long"), 422, "invalid type: too long",
			0, []problem.FieldError{{Field: "type", Detail: "too long"}}},
		{"a field without detail takes the whole chain's message", fmt.Errorf("%w: missing $id", problem.On(problem.Invalid, "schema", "invalid schema")), 422,
			"invalid schema: missing $id", 0, []problem.FieldError{{Field: "schema", Detail: "invalid schema: missing $id"}}},
		{"bad query parameter", problem.BadParam("limit", "must be 1 to 1000"), 400, "invalid query parameter limit",
			0, []problem.FieldError{{Field: "limit", Detail: "must be 1 to 1000"}}},
		{"bad path parameter", problem.BadPathParam("id", "not a UUID"), 400, "invalid path parameter id",
			0, []problem.FieldError{{Field: "id", Detail: "not a UUID"}}},
		{"an unknown kind is internal", problem.Kind(200), 500, "internal error; the request id identifies it in the logs", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := problem.From(tc.err)
			require.Equal(t, tc.status, p.Status)
			require.Equal(t, http.StatusText(tc.status), p.Title)
			require.Equal(t, fmt.Sprintf("https://prost.dev/problems/%d", tc.status), p.Type)
			require.Equal(t, tc.detail, p.Detail)
			require.Equal(t, tc.retryAfter, p.RetryAfter)
			require.Equal(t, tc.fields, p.Errors)
		})
	}

	t.Run("a Problem in the chain is used as it is", func(t *testing.T) {
		t.Parallel()
		require.Same(t, own, problem.From(fmt.Errorf("wrapped: %w", own)))
	})
	t.Run("a Detailer adds members", func(t *testing.T) {
		t.Parallel()
		p := problem.From(detailed{problem.Errorf(problem.Invalid, "incompatible schema")})
		require.Equal(t, 422, p.Status)
		require.Equal(t, []string{"removed property"}, p.Extensions["differences"])
	})
	t.Run("errors.Is sees the kind and the cause", func(t *testing.T) {
		t.Parallel()
		cause := errors.New("no rows")
		err := problem.Errorf(problem.NotFound, "rule 7: %w", cause)
		require.ErrorIs(t, err, problem.NotFound)
		require.ErrorIs(t, err, cause)
		require.NotErrorIs(t, err, problem.Invalid)
	})
}

// TestWrite: the response is problem+json, not cached, with Retry-After
// when the problem has one, and the extensions beside the standard members
// without replacing them.
func TestWrite(t *testing.T) {
	t.Parallel()
	p := problem.From(problem.Errorf(problem.RateLimited, "slow down"))
	p.Extensions = map[string]any{"limit": 100, "status": 200}
	rec := httptest.NewRecorder()
	problem.Write(rec, p)
	require.Equal(t, 429, rec.Code)
	require.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, map[string]any{
		"type": "https://prost.dev/problems/429", "title": "Too Many Requests", "status": float64(429),
		"detail": "slow down", "limit": float64(100),
	}, body)
}
