package contractshttp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

const orderContract = `{"type":"order.placed","owner":"shop","description":"A customer placed an order.","level":"standard",
 "schema":"urn:prost:schema:order.placed:1","compatibility":"BACKWARD","consumers":["shop","billing"],
 "ordered":true,"partition_key":"/order_id","idempotency":{"key":["source","id"]},"retry":{"max_attempts":5,"backoff":["1s","30s"]},"dlq":true}`

// TestContractsAPI drives /v1/contracts: PUT (JSON or YAML), GET, list,
// refusals naming the gate, and tenant isolation.
func TestContractsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, other := uuid.New(), uuid.New()

	code, body := b.json(a, http.MethodPut, "/v1/contracts/order.placed", orderContract)
	require.Equal(t, http.StatusCreated, code, string(body))
	require.Contains(t, string(body), `"partition_key":"/order_id"`)
	code, body = b.json(a, http.MethodPut, "/v1/contracts/order.placed", orderContract)
	require.Equal(t, http.StatusOK, code, string(body))

	yaml := "owner: shop\ndescription: An order shipped.\nlevel: light\nschema: urn:prost:schema:order.shipped:1\ncompatibility: BACKWARD\nidempotency:\n  key: [source, id]\n"
	code, body = b.call(a, http.MethodPut, "/v1/contracts/order.shipped", "application/yaml", yaml)
	require.Equal(t, http.StatusCreated, code, string(body))
	require.Contains(t, string(body), `"type":"order.shipped"`, "the type comes from the path when the document has none")

	code, body = b.json(a, http.MethodGet, "/v1/contracts/order.placed", "")
	require.Equal(t, http.StatusOK, code)
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, "standard", got["level"])
	require.NotEmpty(t, got["updated_at"])

	code, body = b.json(a, http.MethodGet, "/v1/contracts?limit=1", "")
	require.Equal(t, http.StatusOK, code, string(body))
	var page struct {
		Items []struct {
			Type string `json:"type"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Items, 1)
	require.Equal(t, "order.placed", page.Items[0].Type)
	require.NotNil(t, page.NextCursor)
	code, body = b.json(a, http.MethodGet, "/v1/contracts?limit=1&cursor="+*page.NextCursor, "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal(body, &page))
	require.Equal(t, "order.shipped", page.Items[0].Type)
	require.Nil(t, page.NextCursor)

	// A contract failing lint is refused, each finding naming its gate and
	// field.
	bad := strings.Replace(orderContract, `"partition_key":"/order_id",`, ``, 1)
	bad = strings.Replace(bad, `"level":"standard"`, `"level":"light"`, 1)
	code, body = b.json(a, http.MethodPut, "/v1/contracts/order.placed", bad)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	p := parseProblem(t, body)
	require.Len(t, p.Errors, 2)
	require.Equal(t, "A", p.Errors[0].Keyword)
	require.Equal(t, "level", p.Errors[0].Field)
	require.Contains(t, p.Errors[0].Detail, "gate A: level:")
	require.Equal(t, "B", p.Errors[1].Keyword)
	require.Equal(t, "partition_key", p.Errors[1].Field)

	// Another tenant sees none of it.
	code, body = b.json(other, http.MethodGet, "/v1/contracts", "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"items":[],"next_cursor":null}`, string(body))
	code, _ = b.json(other, http.MethodGet, "/v1/contracts/order.placed", "")
	require.Equal(t, http.StatusNotFound, code)

	for _, c := range []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"malformed JSON", http.MethodPut, "/v1/contracts/x", "application/json", `{"type":`, 400},
		{"wrong type of member", http.MethodPut, "/v1/contracts/x", "application/json", `{"type":"x","dlq":"yes"}`, 400},
		{"unknown member", http.MethodPut, "/v1/contracts/x", "application/json", `{"type":"x","colour":"red"}`, 400},
		{"malformed YAML", http.MethodPut, "/v1/contracts/x", "application/yaml", "type: [x\n", 400},
		{"type differs from the path", http.MethodPut, "/v1/contracts/x", "application/json", `{"type":"y"}`, 422},
		{"not JSON or YAML", http.MethodPut, "/v1/contracts/x", "text/plain", `{}`, 415},
		{"oversize", http.MethodPut, "/v1/contracts/x", "application/json", `{"description":"` + strings.Repeat("x", 300<<10) + `"}`, 413},
		{"unknown contract", http.MethodGet, "/v1/contracts/nope", "", "", 404},
		{"bad cursor", http.MethodGet, "/v1/contracts?cursor=!!!", "", "", 400},
		{"bad limit", http.MethodGet, "/v1/contracts?limit=0", "", "", 400},
	} {
		code, body := b.call(a, c.method, c.path, c.ctype, c.body)
		require.Equal(t, c.status, code, "%s: %s", c.name, body)
	}
}
