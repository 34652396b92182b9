package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/openapi"
	"github.com/prost-platform/prost/pkg/telemetry"
)

var (
	specOnce      sync.Once
	specValidator validator.Validator
	specErr       error
)

func spec(t testing.TB) validator.Validator {
	t.Helper()
	specOnce.Do(func() {
		b, err := openapi.JSON()
		if err != nil {
			specErr = err
			return
		}
		doc, err := libopenapi.NewDocument(b)
		if err != nil {
			specErr = err
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			specErr = errs[0]
			return
		}
		specValidator = v
	})
	require.NoError(t, specErr)
	return specValidator
}

// validating is an http.RoundTripper that checks every response against the
// OpenAPI document and fails the test on any mismatch: the end-to-end tests
// send their requests through it, so the document is checked against what
// the server really answers.
type validating struct {
	t    testing.TB
	next http.RoundTripper
	mu   sync.Mutex
}

func validatingTransport(t testing.TB) *validating {
	return &validating{t: t, next: http.DefaultTransport}
}

func (v *validating) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.next.RoundTrip(req)
	if err != nil || req.URL.Path == "/console" || strings.HasPrefix(req.URL.Path, "/console/") {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	check := *resp
	check.Body = io.NopCloser(bytes.NewReader(body))
	creq := req.Clone(req.Context())
	creq.Body = http.NoBody
	ok, errs := spec(v.t).ValidateHttpResponse(creq, &check)
	if !ok {
		for _, e := range errs {
			// A probe of a route that does not exist is the router's test,
			// not the document's.
			if (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) &&
				(e.IsPathMissingError() || e.IsOperationMissingError()) {
				continue
			}
			msg := e.Message + ": " + e.Reason
			for _, se := range e.SchemaValidationErrors {
				msg += "; " + se.Reason + " at " + se.FieldPath
			}
			v.mu.Lock()
			v.t.Errorf("response to %s %s (%d) does not match pkg/openapi/openapi.yaml: %s\nbody: %.400s", req.Method, req.URL.Path, resp.StatusCode, msg, body)
			v.mu.Unlock()
		}
	}
	return resp, nil
}

// TestRoutesMatchTheDocument: every route the gateway serves is in the
// OpenAPI document and every operation in the document is served.
func TestRoutesMatchTheDocument(t *testing.T) {
	s := startStack(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	gw, err := s.p.gateway(ln, "token", telemetry.NewMetrics(nil), nil, nil)
	require.NoError(t, err)
	var served []string
	for _, p := range gw.Patterns() {
		method, path, ok := strings.Cut(p, " ")
		require.True(t, ok, "route %q names its method", p)
		if method == "" {
			continue
		}
		served = append(served, method+" "+path)
	}
	slices.Sort(served)
	documented, err := openapi.Operations()
	require.NoError(t, err)
	for _, r := range served {
		require.Contains(t, documented, r, "%s is served but not in pkg/openapi/openapi.yaml", r)
	}
	for _, d := range documented {
		require.Contains(t, served, d, "%s is in pkg/openapi/openapi.yaml but not served", d)
	}
	code, body := s.do(http.MethodGet, "/openapi.json", nil, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"openapi":"3.1.0"`)
}
