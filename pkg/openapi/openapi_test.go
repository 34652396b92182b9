package openapi_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/openapi"
	"github.com/prost-platform/prost/pkg/prosttest"
)

func TestMain(m *testing.M) { prosttest.MainNoDatabase(m) }

// TestDocumentIsOpenAPI31: the document parses as OpenAPI 3.1 and validates
// against the OpenAPI 3.1 schema.
func TestDocumentIsOpenAPI31(t *testing.T) {
	b, err := openapi.JSON()
	require.NoError(t, err)
	doc, err := libopenapi.NewDocument(b)
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.GetVersion())
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("%s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			t.Errorf("  %s at %s (%s)", se.Reason, se.FieldPath, se.KeywordLocation)
		}
	}
	require.True(t, ok)
	ops, err := openapi.Operations()
	require.NoError(t, err)
	require.Greater(t, len(ops), 40)
}

// TestSnakeCase: every member of every schema in the document is snake_case,
// but for the Confluent-compatible members of the schema registry.
func TestSnakeCase(t *testing.T) {
	b, err := openapi.JSON()
	require.NoError(t, err)
	var doc any
	require.NoError(t, json.Unmarshal(b, &doc))
	confluent := map[string]bool{"schemaType": true, "compatibilityLevel": true}
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	var walk func(v any, path string)
	n := 0
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			if props, ok := x["properties"].(map[string]any); ok {
				for name := range props {
					n++
					if !snake.MatchString(name) && !confluent[name] {
						t.Errorf("%s: member %q is not snake_case", path, name)
					}
				}
			}
			for k, c := range x {
				walk(c, path+"/"+k)
			}
		case []any:
			for i, c := range x {
				walk(c, path+"/"+strings.Repeat("#", 0)+string(rune('0'+i%10)))
			}
		}
	}
	walk(doc, "")
	require.Greater(t, n, 100, "the walk saw the schemas")
}
