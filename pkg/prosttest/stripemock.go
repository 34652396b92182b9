package prosttest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// StripeMockModule is the stripe-mock the tests run: the module and version
// `go install` builds it from. v0.203.0 serves Stripe's 2026-08-26.dahlia
// API, the release train of stripe-go v85 (docs/decisions/0012).
const StripeMockModule = "github.com/stripe/stripe-mock@v0.203.0"

// StripeMock is a stripe-mock server (Stripe's official API mock: every
// request is checked against Stripe's OpenAPI spec and answered from
// fixtures; nothing is stored) behind a recording proxy, so a test can see
// every request a client sent, its Idempotency-Key included.
type StripeMock struct {
	// URL is the proxy's base URL: pass it as the Stripe API URL.
	URL string

	mu   sync.Mutex
	reqs []StripeRequest
}

// StripeRequest is one request the mock received.
type StripeRequest struct {
	Method, Path   string
	IdempotencyKey string
	// Form is the form body of a POST, the query of a GET.
	Form url.Values
	// Status is the mock's answer.
	Status int
}

// Requests returns the requests received so far, oldest first.
func (m *StripeMock) Requests() []StripeRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]StripeRequest(nil), m.reqs...)
}

// Matching returns the requests with method whose path starts with prefix.
func (m *StripeMock) Matching(method, prefix string) []StripeRequest {
	var out []StripeRequest
	for _, r := range m.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

var stripeMockBuild struct {
	once sync.Once
	path string
	err  error
}

// stripeMockBinary returns the stripe-mock to run: $PROST_STRIPE_MOCK when
// set, else the binary built from StripeMockModule, once per machine, into
// the user cache directory (prost-tools/), so no person has to install it.
func stripeMockBinary() (string, error) {
	if p := os.Getenv("PROST_STRIPE_MOCK"); p != "" {
		return p, nil
	}
	b := &stripeMockBuild
	b.once.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		_, version, _ := strings.Cut(StripeMockModule, "@")
		dir := filepath.Join(cache, "prost-tools", "stripe-mock-"+version)
		b.path = filepath.Join(dir, "stripe-mock")
		if _, err := os.Stat(b.path); err == nil {
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.err = err
			return
		}
		// Build into a directory of this process, then rename: concurrent
		// test binaries each build and the last rename wins atomically.
		tmp, err := os.MkdirTemp(dir, "build-")
		if err != nil {
			b.err = err
			return
		}
		defer os.RemoveAll(tmp)
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "install", StripeMockModule)
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go install %s: %w\n%s", StripeMockModule, err, out)
			return
		}
		b.err = os.Rename(filepath.Join(tmp, "stripe-mock"), b.path)
	})
	return b.path, b.err
}

// StartStripeMock runs stripe-mock on free loopback ports, behind a
// recording proxy, until the test ends. It builds stripe-mock first when
// needed (about 25 s the first time on a machine).
func StartStripeMock(t testing.TB) *StripeMock {
	t.Helper()
	bin, err := stripeMockBinary()
	if err != nil {
		t.Fatalf("prosttest: stripe-mock: %v", err)
	}
	// Both addresses: -http-addr alone also opens HTTPS on a fixed port.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("prosttest: stripe-mock: %v", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("prosttest: start stripe-mock: %v", err)
	}
	drained := make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(out)
		for sc.Scan() { // it logs a line per request: keep reading
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-drained
	}
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("prosttest: stripe-mock did not start within 30s")
	}
	ready := false
	for range 100 {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/balance", nil)
		req.Header.Set("Authorization", "Bearer sk_test_prost")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = true
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ready {
		stop()
		t.Fatal("prosttest: stripe-mock did not answer")
	}
	target, _ := url.Parse(base)
	m := &StripeMock{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := StripeRequest{Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key")}
		if r.Method == http.MethodGet {
			rec.Form = r.URL.Query()
		} else {
			rec.Form, _ = url.ParseQuery(string(body))
		}
		sw := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(sw, r)
		rec.Status = sw.status
		m.mu.Lock()
		m.reqs = append(m.reqs, rec)
		m.mu.Unlock()
	}))
	m.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		stop()
	})
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
