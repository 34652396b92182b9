package registryhttp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/registry"
)

func TestConfigGlobalAndSubject(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	tenant := uuid.New()

	code, body := b.json(tenant, http.MethodGet, "/v1/registry/config", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"compatibility":"BACKWARD","compatibilityLevel":"BACKWARD","policy":"STRICT","unregistered_types":"reject"}`, string(body))

	code, body = b.json(tenant, http.MethodPut, "/v1/registry/config", `{"compatibility":"full_transitive","unregistered_types":"accept"}`)
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, `{"compatibility":"FULL_TRANSITIVE","compatibilityLevel":"FULL_TRANSITIVE","policy":"STRICT","unregistered_types":"accept"}`, string(body))

	// A subject inherits the tenant's settings until it has its own.
	code, body = b.json(tenant, http.MethodGet, "/v1/registry/config/order.placed", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"compatibility":"FULL_TRANSITIVE","compatibilityLevel":"FULL_TRANSITIVE","policy":"STRICT"}`, string(body))
	code, body = b.json(tenant, http.MethodPut, "/v1/registry/config/order.placed", `{"compatibility":"NONE","policy":"LENIENT"}`)
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, `{"compatibility":"NONE","compatibilityLevel":"NONE","policy":"LENIENT"}`, string(body))
	code, body = b.json(tenant, http.MethodDelete, "/v1/registry/config/order.placed", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"compatibility":"FULL_TRANSITIVE"`)

	// Another tenant keeps the defaults.
	code, body = b.json(uuid.New(), http.MethodGet, "/v1/registry/config", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"compatibility":"BACKWARD"`)

	for _, bad := range []struct{ path, body string }{
		{"/v1/registry/config", `{"compatibility":"SIDEWAYS"}`},
		{"/v1/registry/config", `{"policy":"LOOSE"}`},
		{"/v1/registry/config", `{"unregistered_types":"maybe"}`},
		{"/v1/registry/config", `{}`},
		{"/v1/registry/config/order.placed", `{"unregistered_types":"accept"}`},
	} {
		code, body = b.json(tenant, http.MethodPut, bad.path, bad.body)
		require.Equal(t, http.StatusUnprocessableEntity, code, "%s %s: %s", bad.path, bad.body, body)
	}
	code, body = b.json(tenant, http.MethodPut, "/v1/registry/config", `{"compatibility":5}`)
	require.Equal(t, http.StatusBadRequest, code, string(body))
	code, body = b.json(tenant, http.MethodPut, "/v1/registry/config", `{"compatibility":"NONE","colour":"red"}`)
	require.Equal(t, http.StatusBadRequest, code, string(body))
}

// TestPolicy: the policy picks the verdict column, so an optional property
// added to an open content model is refused under STRICT and accepted under
// LENIENT.
func TestPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	tenant := uuid.New()
	b.register(tenant, "user.signup", `{"type":"object","properties":{"email":{"type":"string"}}}`)
	next := `{"type":"object","properties":{"email":{"type":"string"},"plan":{"type":"string"}}}`

	code, body := b.json(tenant, http.MethodPost, "/v1/registry/subjects/user.signup/versions", schemaBody(next))
	require.Equal(t, http.StatusConflict, code, string(body))
	p := parseProblem(t, body)
	require.Equal(t, "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", p.Errors[0].Keyword)
	require.Equal(t, "#/properties/plan", p.Errors[0].Pointer)

	code, body = b.json(tenant, http.MethodPut, "/v1/registry/config/user.signup", `{"policy":"LENIENT"}`)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, 2, b.register(tenant, "user.signup", next))
}

func TestCompatibilityAgainstOneVersion(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	tenant := uuid.New()
	b.setMode(tenant, "s", "NONE")
	b.register(tenant, "s", `{"type":"string","maxLength":10}`)
	b.register(tenant, "s", `{"type":"string","maxLength":30}`)
	b.setMode(tenant, "s", "BACKWARD_TRANSITIVE")
	cand := schemaBody(`{"type":"string","maxLength":20}`)

	// Against version 1 only: 10 -> 20 increases the bound.
	code, body := b.json(tenant, http.MethodPost, "/v1/registry/compatibility/subjects/s/versions/1", cand)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"is_compatible":true`)
	// Against the latest: 30 -> 20 decreases it, named as version 2.
	code, body = b.json(tenant, http.MethodPost, "/v1/registry/compatibility/subjects/s/versions/latest", cand)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"is_compatible":false`)
	require.Contains(t, string(body), `version 2 (BACKWARD): MAX_LENGTH_DECREASED at #/maxLength`)
	// A subject without versions is compatible with anything; a missing
	// version is 404.
	code, body = b.json(tenant, http.MethodPost, "/v1/registry/compatibility/subjects/none.yet/versions", cand)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"is_compatible":true`)
	code, _ = b.json(tenant, http.MethodPost, "/v1/registry/compatibility/subjects/s/versions/9", cand)
	require.Equal(t, http.StatusNotFound, code)
}

// TestInvalidSchemas: what is not a schema PROST accepts is a 422, and the
// loader never fetches anything that is not a registered schema.
func TestInvalidSchemas(t *testing.T) {
	t.Parallel()
	var fetched atomic.Int32
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetched.Add(1)
		_, _ = w.Write([]byte(`{"type":"string"}`))
	}))
	t.Cleanup(remote.Close)
	b := setup(t, registry.Config{})
	tenant := uuid.New()
	b.register(tenant, "money", `{"type":"object","properties":{"amount":{"type":"integer","minimum":0}}}`)

	for name, s := range map[string]string{
		"not JSON":          `{"type":`,
		"an array":          `[1,2]`,
		"a bad keyword":     `{"type":5}`,
		"a bad minimum":     `{"minimum":"zero"}`,
		"draft-04":          `{"$schema":"http://json-schema.org/draft-04/schema#","type":"object"}`,
		"unknown $schema":   `{"$schema":"https://example.com/my-meta","type":"object"}`,
		"an http $ref":      `{"$ref":"` + remote.URL + `/s.json"}`,
		"a file $ref":       `{"$ref":"file:///etc/passwd"}`,
		"a relative $ref":   `{"$id":"https://shop.example/a.json","$ref":"b.json"}`,
		"an unknown URN":    `{"$ref":"urn:prost:schema:nothing.here:1"}`,
		"a bad pattern":     `{"type":"string","pattern":"("}`,
		"another tenant ok": `{"$ref":"urn:prost:schema:other.tenant:1"}`,
	} {
		code, body := b.json(tenant, http.MethodPost, "/v1/registry/subjects/bad/versions", schemaBody(s))
		require.Equal(t, http.StatusUnprocessableEntity, code, "%s: %s", name, body)
		p := parseProblem(t, body)
		require.Equal(t, "schema", p.Errors[0].Field, name)
	}
	require.Zero(t, fetched.Load(), "nothing is fetched over the network")

	// A $ref to a registered schema (the tenant's own, or the platform's)
	// resolves, and validation follows it.
	v := b.register(tenant, "payment", `{"type":"object","properties":{"price":{"$ref":"urn:prost:schema:money:1"},
		"decision":{"$ref":"urn:prost:schema:prost.rule.decision:1#/$defs/outcome"}}}`)
	require.Equal(t, 1, v)
	// Draft-07 is accepted too.
	b.register(tenant, "legacy", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","definitions":{"a":{"type":"string"}},"properties":{"a":{"$ref":"#/definitions/a"}}}`)

	code, body := b.json(tenant, http.MethodPost, "/v1/registry/subjects/bad/versions", `{"schema":"{}","schemaType":"AVRO"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	require.Contains(t, string(body), "schemaType")
	code, body = b.json(tenant, http.MethodPost, "/v1/registry/subjects/bad/versions", `{"schema":"{}","references":[{"name":"x"}]}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	a, other := uuid.New(), uuid.New()
	b.register(a, "secret.type", `{"type":"object"}`)

	code, body := b.json(other, http.MethodGet, "/v1/registry/subjects", "")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(body), "secret.type")
	for _, path := range []string{
		"/v1/registry/subjects/secret.type/versions",
		"/v1/registry/subjects/secret.type/versions/1",
		"/v1/registry/subjects/secret.type/versions/latest",
	} {
		code, body = b.json(other, http.MethodGet, path, "")
		require.Equal(t, http.StatusNotFound, code, "%s: %s", path, body)
	}
	code, _ = b.json(other, http.MethodDelete, "/v1/registry/subjects/secret.type", "")
	require.Equal(t, http.StatusNotFound, code)
	// A $ref into another tenant's registry does not resolve.
	code, body = b.json(other, http.MethodPost, "/v1/registry/subjects/x/versions", schemaBody(`{"$ref":"urn:prost:schema:secret.type:1"}`))
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	// The owner still has it.
	code, _ = b.json(a, http.MethodGet, "/v1/registry/subjects/secret.type/versions/1", "")
	require.Equal(t, http.StatusOK, code)
}

func TestPlatformSubjectsAreReadOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	tenant := uuid.New()
	code, body := b.json(tenant, http.MethodGet, "/v1/registry/subjects/prost.rule.decision/versions/latest", "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"platform":true`)
	require.Contains(t, string(body), `"dataschema":"urn:prost:schema:prost.rule.decision:1"`)

	for _, req := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/registry/subjects/prost.rule.decision/versions", schemaBody(`{}`)},
		{http.MethodDelete, "/v1/registry/subjects/prost.rule.decision", ""},
		{http.MethodDelete, "/v1/registry/subjects/prost.rule.decision/versions/1", ""},
		{http.MethodPut, "/v1/registry/config/prost.rule.decision", `{"compatibility":"NONE"}`},
	} {
		code, body = b.json(tenant, req.method, req.path, req.body)
		require.Equal(t, http.StatusForbidden, code, "%s %s: %s", req.method, req.path, body)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	tenant := uuid.New()
	b.setMode(tenant, "", "NONE")
	s1, s2 := `{"type":"object","title":"one"}`, `{"type":"object","title":"two"}`
	b.register(tenant, "d", s1)
	b.register(tenant, "d", s2)

	// A permanent delete needs a soft delete first.
	code, body := b.json(tenant, http.MethodDelete, "/v1/registry/subjects/d/versions/2?permanent=true", "")
	require.Equal(t, http.StatusConflict, code, string(body))
	code, body = b.json(tenant, http.MethodDelete, "/v1/registry/subjects/d/versions/latest", "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, "2\n", string(body))
	code, body = b.json(tenant, http.MethodGet, "/v1/registry/subjects/d/versions", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `[1]`, string(body))
	code, _ = b.json(tenant, http.MethodGet, "/v1/registry/subjects/d/versions/2", "")
	require.Equal(t, http.StatusNotFound, code)

	// Registering the deleted schema again gives it a new number: numbers
	// are never reused.
	require.Equal(t, 3, b.register(tenant, "d", s2))
	code, _ = b.json(tenant, http.MethodDelete, "/v1/registry/subjects/d/versions/2?permanent=true", "")
	require.Equal(t, http.StatusOK, code)
	code, _ = b.json(tenant, http.MethodDelete, "/v1/registry/subjects/d/versions/2?permanent=true", "")
	require.Equal(t, http.StatusNotFound, code)

	code, body = b.json(tenant, http.MethodDelete, "/v1/registry/subjects/d?permanent=true", "")
	require.Equal(t, http.StatusConflict, code, string(body))
	code, body = b.json(tenant, http.MethodDelete, "/v1/registry/subjects/d", "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, `[1,3]`, string(body))
	code, body = b.json(tenant, http.MethodGet, "/v1/registry/subjects", "")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(body), `"d"`)
	code, body = b.json(tenant, http.MethodDelete, "/v1/registry/subjects/d?permanent=true", "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.JSONEq(t, `[1,3]`, string(body))
	require.Equal(t, 4, b.register(tenant, "d", s1), "a subject deleted for good still never reuses a number")
}

// TestBadInput covers malformed, mistyped, oversized and misdirected
// requests to every registry route.
func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	tenant := uuid.New()
	b.register(tenant, "ok", `{"type":"object"}`)
	big := `{"schema":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"malformed JSON", http.MethodPost, "/v1/registry/subjects/ok/versions", "application/json", `{"schema":`, 400},
		{"two JSON values", http.MethodPost, "/v1/registry/subjects/ok/versions", "application/json", `{"schema":"{}"} {}`, 400},
		{"unknown member", http.MethodPost, "/v1/registry/subjects/ok/versions", "application/json", `{"schema":"{}","extra":1}`, 400},
		{"schema of the wrong type", http.MethodPost, "/v1/registry/subjects/ok/versions", "application/json", `{"schema":42}`, 422},
		{"schemaType of the wrong type", http.MethodPost, "/v1/registry/subjects/ok/versions", "application/json", `{"schema":"{}","schemaType":1}`, 400},
		{"no schema", http.MethodPost, "/v1/registry/subjects/ok/versions", "application/json", `{}`, 422},
		{"oversize", http.MethodPost, "/v1/registry/subjects/ok/versions", "application/json", big, 413},
		{"not JSON", http.MethodPost, "/v1/registry/subjects/ok/versions", "text/plain", `{"schema":"{}"}`, 415},
		{"Confluent's media type", http.MethodPost, "/v1/registry/subjects/ok/versions", "application/vnd.schemaregistry.v1+json", `{"schema":"{\"type\":\"object\"}"}`, 200},
		{"unknown subject", http.MethodGet, "/v1/registry/subjects/nope/versions", "", "", 404},
		{"unknown subject latest", http.MethodGet, "/v1/registry/subjects/nope/versions/latest", "", "", 404},
		{"unknown version", http.MethodGet, "/v1/registry/subjects/ok/versions/7", "", "", 404},
		{"bad version", http.MethodGet, "/v1/registry/subjects/ok/versions/abc", "", "", 422},
		{"zero version", http.MethodGet, "/v1/registry/subjects/ok/versions/0", "", "", 422},
		{"bad permanent", http.MethodDelete, "/v1/registry/subjects/ok?permanent=yes", "", "", 400},
		{"control character subject", http.MethodPost, "/v1/registry/subjects/a%01b/versions", "application/json", `{"schema":"{}"}`, 422},
		{"long subject", http.MethodPost, "/v1/registry/subjects/" + strings.Repeat("a", 256) + "/versions", "application/json", `{"schema":"{}"}`, 422},
		{"compat malformed", http.MethodPost, "/v1/registry/compatibility/subjects/ok/versions", "application/json", `[`, 400},
		{"compat unknown version", http.MethodPost, "/v1/registry/compatibility/subjects/ok/versions/3", "application/json", `{"schema":"{}"}`, 404},
		{"config malformed", http.MethodPut, "/v1/registry/config", "application/json", `{`, 400},
	}
	for _, c := range cases {
		code, body := b.call(tenant, c.method, c.path, c.ctype, c.body)
		require.Equal(t, c.status, code, "%s: %s", c.name, body)
		if code >= 400 {
			var p map[string]any
			require.NoError(t, json.Unmarshal(body, &p), c.name)
			require.EqualValues(t, code, p["status"], c.name)
		}
	}
}
