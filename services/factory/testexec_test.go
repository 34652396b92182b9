package factorysvc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// filesExecutor is a test executor that writes files into the module (and
// runs go mod tidy when it wrote go.mod), counting its calls and appending
// them to a log file when one is set.
type filesExecutor struct {
	name  string
	files func(call int) map[string]string
	calls *atomic.Int32
	log   string
}

func (e filesExecutor) Name() string { return e.name }

func (e filesExecutor) Run(ctx context.Context, job factorysvc.Job) (factorysvc.Output, error) {
	n := int(e.calls.Add(1))
	if e.log != "" {
		f, err := os.OpenFile(e.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return factorysvc.Output{}, err
		}
		fmt.Fprintf(f, "%s %s %d\n", e.name, job.Action, n)
		_ = f.Close()
	}
	files := e.files(n)
	for name, body := range files {
		p := filepath.Join(job.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return factorysvc.Output{}, err
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			return factorysvc.Output{}, err
		}
	}
	if _, ok := files["go.mod"]; ok {
		if err := tidy(ctx, job); err != nil {
			return factorysvc.Output{}, err
		}
	}
	return factorysvc.Output{Notes: fmt.Sprintf("%s call %d wrote %d file(s)", e.name, n, len(files))}, nil
}

func tidy(ctx context.Context, job factorysvc.Job) error {
	return factorysvc.Healer{}.Tidy(ctx, job)
}

func counter() *atomic.Int32 { return new(atomic.Int32) }

// tinyPack0 is the Pack0 of the tiny test modules: one entity, one budget,
// one threat.
func tinyPack0(t *testing.T, module string) json.RawMessage {
	t.Helper()
	js, err := factory.Pack0JSON([]byte(`
pack0: 1
module: ` + module + `
description: A tiny module for the factory's tests.
entities:
  - name: item
    key: id
    fields:
      - {name: id, type: uuid, required: true}
      - {name: name, type: string, required: true}
budgets:
  - {route: "GET /v1/items", p95_ms: 5000}
threats:
  - {id: T1, title: Tampering, category: tampering, mitigation: Nothing to tamper with.}
`))
	require.NoError(t, err)
	return js
}

// tinyModule is a small stdlib module serving GET /healthz and GET
// /v1/items, with a valid event contract; extra files and go.mod lines are
// planted by the tests.
func tinyModule(module, requires, extraImports, extraCode string, extra map[string]string) map[string]string {
	files := map[string]string{
		"go.mod": "module prost.factory/" + module + "\n\ngo 1.26\n" + requires,
		"main.go": `// Command ` + module + ` is a test module.
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"time"
` + extraImports + `
)

func main() {
	srv := &http.Server{Addr: addr(), Handler: routes(), ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		os.Exit(1)
	}
}

func addr() string {
	if a := os.Getenv("ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:8080"
}

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /v1/items", items)
	return mux
}

func items(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"items": []string{}, "note": note(r)})
}
` + extraCode,
		"contracts/" + module + ".item.created.yaml": `type: ` + module + `.item.created
owner: ` + module + `
description: An item was created.
level: standard
schema: urn:prost:schema:` + module + `.item.created:1
compatibility: BACKWARD_TRANSITIVE
consumers: [tenant-subscribers]
idempotency:
  key: [source, id]
retry:
  max_attempts: 3
  backoff: [1s]
dlq: true
`,
		"schemas/" + module + ".item.created/v1.json": `{"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}`,
	}
	for k, v := range extra {
		files[k] = v
	}
	return files
}

// tinyTests is the tiny module's test.
const tinyTests = `package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestItems(t *testing.T) {
	srv := httptest.NewServer(routes())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/items")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/items: %d", resp.StatusCode)
	}
}
`

// plainNote is the note of a module without planted code.
const plainNote = `
func note(*http.Request) string { return "ok" }
`

// tinyExecutors are executors writing the tiny module.
func tinyExecutors(module, requires, imports, code string, extra map[string]string, log string) (factorysvc.Executor, factorysvc.Executor) {
	gen := filesExecutor{name: "test-codegen", calls: counter(), log: log, files: func(int) map[string]string {
		return tinyModule(module, requires, imports, code, extra)
	}}
	tests := filesExecutor{name: "test-testgen", calls: counter(), log: log, files: func(int) map[string]string {
		return map[string]string{"main_test.go": tinyTests}
	}}
	return gen, tests
}

func countLines(t *testing.T, path, prefix string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
