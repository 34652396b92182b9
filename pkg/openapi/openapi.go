// Package openapi holds PROST's OpenAPI 3.1 document (openapi.yaml, kept in
// the repository beside this file) and serves it as JSON at
// GET /openapi.json. Tests check that it is a valid OpenAPI 3.1 document,
// that it lists exactly the routes the gateway serves, and that every
// response the end-to-end tests receive matches it.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/prost-platform/prost/pkg/httpapi"
)

//go:embed openapi.yaml
var source []byte

var (
	once    sync.Once
	docJSON []byte
	docErr  error
)

// JSON is the document as JSON.
func JSON() ([]byte, error) {
	once.Do(func() {
		var v any
		if docErr = yaml.Unmarshal(source, &v); docErr != nil {
			return
		}
		docJSON, docErr = json.Marshal(v)
	})
	return docJSON, docErr
}

// YAML is the document as written.
func YAML() []byte { return source }

// Operations lists the document's operations as "METHOD /path" with path
// parameters as {name}, sorted.
func Operations() ([]string, error) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(source, &doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	var out []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Routes serves the document.
type Routes struct{}

// Mount mounts GET /openapi.json.
func (Routes) Mount(rt *httpapi.Router) {
	rt.Public("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) error {
		b, err := JSON()
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
		return nil
	})
}
