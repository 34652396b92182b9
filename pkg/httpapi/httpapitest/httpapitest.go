// Package httpapitest serves route sets for their httptest tests, behind a
// test authentication: a tenant request names its tenant in the
// X-Test-Tenant header, an admin request carries AdminToken. It is imported
// only from _test.go files.
package httpapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// AdminToken is the token admin requests carry.
const AdminToken = "test-admin-token"

// TenantHeader names the tenant of a test request.
const TenantHeader = "X-Test-Tenant"

// Server serves route sets for a test.
type Server struct {
	*httptest.Server
}

// New serves sets until the test ends.
func New(t testing.TB, sets ...httpapi.Routes) *Server {
	t.Helper()
	mux := http.NewServeMux()
	rt := httpapi.NewRouter(mux, httpapi.Config{
		Tenant: func(r *http.Request) (context.Context, error) {
			id, err := uuid.Parse(r.Header.Get(TenantHeader))
			if err != nil {
				return nil, problem.Errorf(problem.Unauthenticated, "missing or invalid %s", TenantHeader)
			}
			return httpapi.WithTenant(r.Context(), id), nil
		},
		Admin: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer "+AdminToken {
				return problem.Errorf(problem.Unauthenticated, "admin routes need Authorization: Bearer <PROST_ADMIN_TOKEN>")
			}
			return nil
		},
	})
	rt.Mount(sets...)
	s := &Server{httptest.NewServer(mux)}
	t.Cleanup(s.Close)
	return s
}

// Option shapes a request.
type Option func(*http.Request)

// AsTenant sends the request as tenant id.
func AsTenant(id uuid.UUID) Option {
	return func(r *http.Request) { r.Header.Set(TenantHeader, id.String()) }
}

// AsAdmin sends the request with the admin token.
func AsAdmin() Option {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+AdminToken) }
}

// Header sets a request header.
func Header(k, v string) Option { return func(r *http.Request) { r.Header.Set(k, v) } }

// Response is a test request's answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request. body is sent as it is when it is a string or []byte
// (Content-Type application/json unless an option sets another), else
// encoded as JSON; nil sends none.
func (s *Server) Do(t testing.TB, method, path string, body any, opts ...Option) *Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("httpapitest: encode body: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatalf("httpapitest: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("httpapitest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("httpapitest: read: %v", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("httpapitest: body is not the JSON expected (%v): %s", err, r.Body)
	}
}

// Problem decodes a problem+json body, failing the test when the answer is
// not one.
func (r *Response) Problem(t testing.TB) Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("httpapitest: Content-Type %q, want %s; body: %s", ct, problem.ContentType, r.Body)
	}
	var p Problem
	r.JSON(t, &p)
	return p
}

// Problem is a decoded problem document with its extension members.
type Problem struct {
	problem.Problem
	Raw map[string]json.RawMessage
}

// UnmarshalJSON keeps the standard members and every member raw.
func (p *Problem) UnmarshalJSON(b []byte) error {
	type plain problem.Problem
	if err := json.Unmarshal(b, (*plain)(&p.Problem)); err != nil {
		return err
	}
	return json.Unmarshal(b, &p.Raw)
}
