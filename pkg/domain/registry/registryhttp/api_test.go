package registryhttp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/registry"
)

func TestRegisterAndRead(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	tenant := uuid.New()

	v1 := `{"type":"object","properties":{"total":{"type":"number","maximum":100}},"required":["total"]}`
	code, body := b.json(tenant, http.MethodPost, "/v1/registry/subjects/order.placed/versions", schemaBody(v1))
	require.Equal(t, http.StatusOK, code, string(body))
	var reg struct {
		ID         int64  `json:"id"`
		Subject    string `json:"subject"`
		Version    int    `json:"version"`
		DataSchema string `json:"dataschema"`
		Created    bool   `json:"created"`
	}
	require.NoError(t, json.Unmarshal(body, &reg))
	require.Equal(t, 1, reg.Version)
	require.True(t, reg.Created)
	require.Equal(t, "urn:prost:schema:order.placed:1", reg.DataSchema)
	require.Positive(t, reg.ID)

	// The same schema with other spacing and member order is the same
	// version (Confluent answers with the existing version too).
	same := `{ "required": ["total"], "properties": {"total": {"maximum": 100, "type": "number"}}, "type": "object" }`
	code, body = b.json(tenant, http.MethodPost, "/v1/registry/subjects/order.placed/versions", schemaBody(same))
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"version":1`)
	require.Contains(t, string(body), `"created":false`)

	// The schema may also be sent as a JSON object.
	v2 := `{"type":"object","properties":{"total":{"type":"number","maximum":200}},"required":["total"]}`
	code, body = b.json(tenant, http.MethodPost, "/v1/registry/subjects/order.placed/versions", `{"schema":`+v2+`}`)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"version":2`)

	code, body = b.json(tenant, http.MethodGet, "/v1/registry/subjects/order.placed/versions", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `[1,2]`, string(body))

	for _, v := range []string{"latest", "2", "-1"} {
		code, body = b.json(tenant, http.MethodGet, "/v1/registry/subjects/order.placed/versions/"+v, "")
		require.Equal(t, http.StatusOK, code, string(body))
		var got registry.Version
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, 2, got.Version)
		require.Equal(t, "JSON", got.SchemaType)
		require.JSONEq(t, v2, got.Schema)
	}
	code, body = b.json(tenant, http.MethodGet, "/v1/registry/subjects/order.placed/versions/1/schema", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, v1, string(body))

	code, body = b.json(tenant, http.MethodGet, "/v1/registry/subjects", "")
	require.Equal(t, http.StatusOK, code)
	var subjects []string
	require.NoError(t, json.Unmarshal(body, &subjects))
	require.Contains(t, subjects, "order.placed")
	require.Contains(t, subjects, "prost.rule.decision", "platform subjects are listed for every tenant")

	// Subject names are event types, path-escaped: a type with a slash.
	code, body = b.json(tenant, http.MethodPost, "/v1/registry/subjects/com.shop%2Forder%20paid/versions", schemaBody(`{"type":"object"}`))
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"subject":"com.shop/order paid"`)
	require.Contains(t, string(body), `"dataschema":"urn:prost:schema:com.shop%2Forder%20paid:1"`)
	code, _ = b.json(tenant, http.MethodGet, "/v1/registry/subjects/com.shop%2Forder%20paid/versions/1", "")
	require.Equal(t, http.StatusOK, code)
}

// TestModes registers three versions of a subject under NONE, then checks a
// candidate under each mode through the API: the compatibility route, and
// registration (409 naming each difference, or a new version).
func TestModes(t *testing.T) {
	t.Parallel()
	schema := func(max int) string {
		if max == 0 {
			return `{"type":"integer"}`
		}
		return `{"type":"integer","maximum":` + itoa(max) + `}`
	}
	type tc struct {
		mode       string
		versions   []int // maximum of v1, v2, v3 (0: none)
		candidate  int
		compatible bool
		// when incompatible: the version, change type and direction of the
		// first incompatible difference.
		against   int
		change    string
		direction string
	}
	cases := []tc{
		// v1 20, v2 10, v3 12; candidate 15.
		{"BACKWARD", []int{20, 10, 12}, 15, true, 0, "", ""},
		{"BACKWARD_TRANSITIVE", []int{20, 10, 12}, 15, false, 1, "MAXIMUM_DECREASED", "BACKWARD"},
		{"FORWARD", []int{20, 10, 12}, 15, false, 3, "MAXIMUM_DECREASED", "FORWARD"},
		{"FULL", []int{20, 10, 12}, 15, false, 3, "MAXIMUM_DECREASED", "FORWARD"},
		{"NONE", []int{20, 10, 12}, 15, true, 0, "", ""},
		// v1 10, v2 30, v3 20; candidate 15.
		{"FORWARD", []int{10, 30, 20}, 15, true, 0, "", ""},
		{"FORWARD_TRANSITIVE", []int{10, 30, 20}, 15, false, 1, "MAXIMUM_DECREASED", "FORWARD"},
		{"BACKWARD", []int{10, 30, 20}, 15, false, 3, "MAXIMUM_DECREASED", "BACKWARD"},
		// v1 10, v2 none, v3 none; candidate none (only the description
		// differs from v3).
		{"FULL", []int{10, 0, 0}, 0, true, 0, "", ""},
		{"FULL_TRANSITIVE", []int{10, 0, 0}, 0, false, 1, "MAXIMUM_ADDED", "FORWARD"},
		{"BACKWARD_TRANSITIVE", []int{10, 0, 0}, 0, true, 0, "", ""},
	}
	b := setup(t, registry.Config{})
	for i, c := range cases {
		t.Run(c.mode+"/"+itoa(i), func(t *testing.T) {
			tenant := uuid.New()
			subject := "mode.test"
			b.setMode(tenant, subject, "NONE")
			for j, m := range c.versions {
				s := schema(m)
				if j == 2 {
					s = strings.Replace(s, `{`, `{"description":"v3",`, 1)
				}
				require.Equal(t, j+1, b.register(tenant, subject, s))
			}
			b.setMode(tenant, subject, c.mode)
			cand := strings.Replace(schema(c.candidate), `{`, `{"description":"candidate",`, 1)

			code, body := b.json(tenant, http.MethodPost, "/v1/registry/compatibility/subjects/"+subject+"/versions", schemaBody(cand))
			require.Equal(t, http.StatusOK, code, string(body))
			var res struct {
				IsCompatible bool     `json:"is_compatible"`
				Messages     []string `json:"messages"`
				Differences  []struct {
					Type       string `json:"type"`
					Pointer    string `json:"pointer"`
					Compatible bool   `json:"compatible"`
					Version    int    `json:"version"`
					Direction  string `json:"direction"`
				} `json:"differences"`
			}
			require.NoError(t, json.Unmarshal(body, &res))
			require.Equal(t, c.compatible, res.IsCompatible, string(body))

			code, body = b.json(tenant, http.MethodPost, "/v1/registry/subjects/"+subject+"/versions", schemaBody(cand))
			if c.compatible {
				require.Equal(t, http.StatusOK, code, string(body))
				require.Contains(t, string(body), `"version":4`)
				return
			}
			require.NotEmpty(t, res.Messages)
			require.Equal(t, http.StatusConflict, code, string(body))
			p := parseProblem(t, body)
			require.NotEmpty(t, p.Errors)
			first := p.Errors[0]
			require.Equal(t, c.change, first.Keyword)
			require.Equal(t, "#/maximum", first.Pointer)
			require.Contains(t, first.Detail, "version "+itoa(c.against)+" ("+c.direction+")")
			found := false
			for _, d := range p.Differences {
				if !d.Compatible && d.Version == c.against && d.Type == c.change && d.Direction == c.direction {
					found = true
				}
			}
			require.True(t, found, "the 409 lists the difference: %s", body)
			code, body = b.json(tenant, http.MethodGet, "/v1/registry/subjects/"+subject+"/versions", "")
			require.Equal(t, http.StatusOK, code)
			require.JSONEq(t, `[1,2,3]`, string(body), "nothing was registered")
		})
	}
}
