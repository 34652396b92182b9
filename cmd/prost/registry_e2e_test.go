package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// registryProblem is the part of a problem document these tests read.
type registryProblem struct {
	Status int `json:"status"`
	Errors []struct {
		Index   *int   `json:"index"`
		Field   string `json:"field"`
		Pointer string `json:"pointer"`
		Keyword string `json:"keyword"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

func decodeProblem(t *testing.T, body []byte) registryProblem {
	t.Helper()
	var p registryProblem
	require.NoError(t, json.Unmarshal(body, &p), string(body))
	require.NotEmpty(t, p.Errors, string(body))
	return p
}

// TestRegistryEndToEnd drives the schema registry as a client does, with
// PROST's production default (unregistered types rejected): register v1,
// post a valid and an invalid event, fail to register an incompatible v2,
// register a compatible one, validate an event naming v1 in dataschema
// against v1, and check that another App sees nothing of it.
func TestRegistryEndToEnd(t *testing.T) {
	s := startStack(t, func(e *env) { e.UnregisteredTypes = "reject" })
	a, b := s.createApp("registry-a"), s.createApp("registry-b")
	js := func(c creds) map[string]string { return auth(c, "Content-Type", "application/json") }
	post := func(c creds, ev string) (int, []byte) { return s.post(c, "application/cloudevents+json", ev) }

	// v1, registered with the CLI as App A.
	dir := t.TempDir()
	v1 := `{"type":"object","properties":{"order_id":{"type":"string"},"total":{"type":"number","maximum":100}},"required":["order_id","total"]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "v1.json"), []byte(v1), 0o600))
	t.Setenv("PROST_APP_KEY", a.APIKey)
	t.Setenv("PROST_APP_SECRET", a.APISecret)
	out, err := s.cli("schemas", "register", "--type", "order.placed", "--file", filepath.Join(dir, "v1.json"))
	require.NoError(t, err, out)
	require.Contains(t, out, "registered order.placed version 1")
	require.Contains(t, out, "dataschema: urn:prost:schema:order.placed:1")

	// A valid event is accepted.
	code, body := post(a, `{"specversion":"1.0","id":"r-1","source":"/shop","type":"order.placed","data":{"order_id":"o-1","total":12}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))

	// An invalid one is refused with the pointer, the keyword and a message.
	code, body = post(a, `{"specversion":"1.0","id":"r-2","source":"/shop","type":"order.placed","data":{"order_id":"o-2","total":150}}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	p := decodeProblem(t, body)
	require.Equal(t, "data", p.Errors[0].Field)
	require.Equal(t, "/total", p.Errors[0].Pointer)
	require.Equal(t, "maximum", p.Errors[0].Keyword)
	require.Contains(t, p.Errors[0].Detail, "urn:prost:schema:order.placed:1")
	require.Nil(t, p.Errors[0].Index)

	// In a batch each failing entry is named, and nothing is stored.
	code, body = s.post(a, "application/cloudevents-batch+json", `[
		{"specversion":"1.0","id":"r-3","source":"/shop","type":"order.placed","data":{"order_id":"o-3","total":1}},
		{"specversion":"1.0","id":"r-4","source":"/shop","type":"order.placed","data":{"total":1}}]`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	p = decodeProblem(t, body)
	require.Len(t, p.Errors, 1)
	require.Equal(t, 1, *p.Errors[0].Index)
	require.Equal(t, "required", p.Errors[0].Keyword)

	// Binary mode is validated the same way.
	code, body = s.post(a, "application/json", `{"order_id":"o-5","total":"twelve"}`,
		"ce-specversion", "1.0", "ce-id", "r-5", "ce-source", "/shop", "ce-type", "order.placed")
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	require.Equal(t, "/total", decodeProblem(t, body).Errors[0].Pointer)

	// An unregistered type is refused, saying how to register it.
	code, body = post(a, `{"specversion":"1.0","id":"r-6","source":"/shop","type":"order.refunded","data":{}}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	p = decodeProblem(t, body)
	require.Equal(t, "type", p.Errors[0].Field)
	require.Contains(t, p.Errors[0].Detail, "POST /v1/registry/subjects/order.refunded/versions")

	// An incompatible v2 (a new required property, a lower bound) is a 409
	// naming each difference.
	v2bad := `{"type":"object","properties":{"order_id":{"type":"string"},"total":{"type":"number","maximum":50},"currency":{"type":"string"}},"required":["order_id","total","currency"]}`
	code, body = s.do(http.MethodPost, "/v1/registry/subjects/order.placed/versions", js(a), []byte(schemaJSON(v2bad)))
	require.Equal(t, http.StatusConflict, code, string(body))
	p = decodeProblem(t, body)
	var changes []string
	for _, e := range p.Errors {
		changes = append(changes, e.Keyword+" "+e.Pointer)
	}
	require.ElementsMatch(t, []string{"REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL #/properties/currency",
		"MAXIMUM_DECREASED #/properties/total/maximum"}, changes, string(body))
	// The CLI says the same and exits 1.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "v2bad.json"), []byte(v2bad), 0o600))
	out, err = s.cli("schemas", "register", "--type", "order.placed", "--file", filepath.Join(dir, "v2bad.json"))
	var ee exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.code)
	require.Contains(t, out, "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL at #/properties/currency")
	require.Contains(t, out, "MAXIMUM_DECREASED at #/properties/total/maximum")

	// A compatible v2: the bound is raised.
	v2 := strings.Replace(v1, `"maximum":100`, `"maximum":200`, 1)
	code, body = s.do(http.MethodPost, "/v1/registry/subjects/order.placed/versions", js(a), []byte(schemaJSON(v2)))
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"version":2`)

	// 150 now passes against the latest version (v2) ...
	code, body = post(a, `{"specversion":"1.0","id":"r-7","source":"/shop","type":"order.placed","data":{"order_id":"o-7","total":150}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	// ... and an event naming v1 is still validated against v1, in either
	// form of dataschema.
	for i, ds := range []string{"urn:prost:schema:order.placed:1", s.url + "/v1/registry/subjects/order.placed/versions/1"} {
		code, body = post(a, fmt.Sprintf(`{"specversion":"1.0","id":"r-8-%d","source":"/shop","type":"order.placed","dataschema":%q,"data":{"order_id":"o-8","total":150}}`, i, ds))
		require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
		p = decodeProblem(t, body)
		require.Equal(t, "/total", p.Errors[0].Pointer)
		require.Contains(t, p.Errors[0].Detail, "urn:prost:schema:order.placed:1")
	}
	code, body = post(a, `{"specversion":"1.0","id":"r-9","source":"/shop","type":"order.placed","dataschema":"urn:prost:schema:order.placed:1","data":{"order_id":"o-9","total":50}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	code, body = post(a, `{"specversion":"1.0","id":"r-10","source":"/shop","type":"order.placed","dataschema":"urn:prost:schema:order.placed:7","data":{"order_id":"o-10","total":50}}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	require.Equal(t, "dataschema", decodeProblem(t, body).Errors[0].Field)

	// App B sees none of A's subjects, and its events of that type are
	// unregistered in its own registry.
	code, body = s.do(http.MethodGet, "/v1/registry/subjects", auth(b), nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(body), "order.placed")
	require.Contains(t, string(body), "prost.rule.decision", "platform schemas are visible to every App")
	for _, path := range []string{"/v1/registry/subjects/order.placed/versions", "/v1/registry/subjects/order.placed/versions/1"} {
		code, body = s.do(http.MethodGet, path, auth(b), nil)
		require.Equal(t, http.StatusNotFound, code, "%s: %s", path, body)
	}
	code, body = post(b, `{"specversion":"1.0","id":"r-1","source":"/shop","type":"order.placed","dataschema":"urn:prost:schema:order.placed:1","data":{"order_id":"o-1","total":12}}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	// B may choose to accept unregistered types.
	code, body = s.do(http.MethodPut, "/v1/registry/config", js(b), []byte(`{"unregistered_types":"accept"}`))
	require.Equal(t, http.StatusOK, code, string(body))
	code, body = post(b, `{"specversion":"1.0","id":"r-2","source":"/shop","type":"order.placed","data":{"anything":true}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))

	// The CLI lists A's subjects and the platform's.
	out, err = s.cli("schemas", "list")
	require.NoError(t, err, out)
	require.Regexp(t, `order\.placed\s+2\s+1,2\s+app`, out)
	require.Regexp(t, `prost\.rule\.decision\s+1\s+1\s+platform`, out)

	// Only what was accepted was stored.
	var ids []string
	for _, it := range s.events(a, "?limit=100").Items {
		ids = append(ids, it["id"].(string))
	}
	require.Equal(t, []string{"r-1", "r-7", "r-9"}, ids)
}

// TestContractsEndToEnd: a tenant's contract names the partition key taken
// from data (a pseudonym when the value is classified), and a payment
// contract refuses card numbers.
func TestContractsEndToEnd(t *testing.T) {
	s := startStack(t, nil)
	a := s.createApp("contracts-a")
	js := auth(a, "Content-Type", "application/json")
	contract := `{"type":"payment.captured","owner":"billing","description":"A payment was captured.","level":"standard",
		"schema":"urn:prost:schema:payment.captured:1","compatibility":"BACKWARD","ordered":true,"partition_key":"/customer/id",
		"idempotency":{"key":["source","id"]},"retry":{"max_attempts":5,"backoff":["1s"]},"dlq":true,
		"data_subject":"/customer/id","classification":{"/amount":"payment","/customer/id":"personal"},"purpose":"settle payments","retention":"7y"}`
	code, body := s.do(http.MethodPut, "/v1/contracts/payment.captured", js, []byte(contract))
	require.Equal(t, http.StatusCreated, code, string(body))

	code, body = s.post(a, "application/cloudevents+json", `{"specversion":"1.0","id":"p-1","source":"/pay","type":"payment.captured","data":{"customer":{"id":"cust-7"},"amount":10}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	code, body = s.post(a, "application/cloudevents+json", `{"specversion":"1.0","id":"p-2","source":"/pay","type":"payment.captured","partitionkey":"own","data":{"customer":{"id":"cust-7"},"amount":10}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	keys := map[string]string{}
	rows, err := s.p.pool.Query(context.Background(), `SELECT id, partition_key FROM events WHERE tenant_id = $1`, a.AppID)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var key *string
		require.NoError(t, rows.Scan(&id, &key))
		keys[id] = *key
	}
	require.NoError(t, rows.Err())
	require.Equal(t, "own", keys["p-2"])
	require.NotContains(t, keys["p-1"], "cust-7", "a classified partition key is stored as a pseudonym")
	require.True(t, strings.HasPrefix(keys["p-1"], "p~"), keys["p-1"])

	code, body = s.post(a, "application/cloudevents+json", `{"specversion":"1.0","id":"p-3","source":"/pay","type":"payment.captured","data":{"customer":{"id":"c"},"card":"4111 1111 1111 1111"}}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	p := decodeProblem(t, body)
	require.Equal(t, "/card", p.Errors[0].Pointer)
	require.Equal(t, "contract", p.Errors[0].Keyword)

	code, body = s.do(http.MethodGet, "/v1/contracts", auth(a), nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"partition_key":"/customer/id"`)
}

// TestSchemasCompatCLI: prost schemas compat needs no server, exits 0 when
// compatible and 1 when not, naming each change and its pointer.
func TestSchemasCompatCLI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	v1 := write("v1.json", `{"type":"object","properties":{"n":{"type":"integer","maximum":20}}}`)
	v2 := write("v2.json", `{"type":"object","properties":{"n":{"type":"integer","maximum":10}}}`)
	v3 := write("v3.json", `{"type":"object","properties":{"n":{"type":"integer","maximum":15}}}`)
	cli := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := run(context.Background(), args, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	out, err := cli("schemas", "compat", v2, v3)
	require.NoError(t, err, out)
	require.Contains(t, out, "MAXIMUM_INCREASED  #/properties/n/maximum")

	out, err = cli("schemas", "compat", "--mode", "BACKWARD_TRANSITIVE", v1, v2, v3)
	var ee exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.code)
	require.Contains(t, out, "INCOMPATIBLE  MAXIMUM_DECREASED  #/properties/n/maximum")

	out, err = cli("schemas", "compat", "--json", v3, v2)
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.code)
	var res struct {
		IsCompatible bool `json:"is_compatible"`
		Differences  []struct {
			Type    string `json:"type"`
			Pointer string `json:"pointer"`
		} `json:"differences"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.False(t, res.IsCompatible)
	require.Equal(t, "MAXIMUM_DECREASED", res.Differences[0].Type)
	require.Equal(t, "#/properties/n/maximum", res.Differences[0].Pointer)

	out, err = cli("schemas", "compat", "--mode", "NONE", v3, v2)
	require.NoError(t, err, out)
	out, err = cli("schemas", "compat", "--policy", "LENIENT", v1,
		write("open.json", `{"type":"object","properties":{"n":{"type":"integer","maximum":20},"m":{"type":"string"}}}`))
	require.NoError(t, err, out)
	_, err = cli("schemas", "compat", "--policy", "STRICT", v1, filepath.Join(dir, "open.json"))
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.code)

	for _, args := range [][]string{{"schemas", "compat", v1}, {"schemas", "compat", "--mode", "UP", v1, v2},
		{"schemas", "compat", v1, filepath.Join(dir, "missing.json")}, {"schemas", "compat", v1, write("bad.json", `[1]`)}} {
		_, err = cli(args...)
		require.ErrorAs(t, err, &ee, args)
		require.Equal(t, 2, ee.code, args)
	}
}

// TestContractsLintCLI: the platform's contracts pass lint; each gate's
// fixture fails, naming the gate and the field.
func TestContractsLintCLI(t *testing.T) {
	cli := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := run(context.Background(), args, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	out, err := cli("contracts", "lint", "../../contracts/")
	require.NoError(t, err, out)
	require.Contains(t, out, "ok    ../../contracts/prost.rule.decision.yaml (prost.rule.decision)")
	require.Contains(t, out, "0 failing")

	for file, want := range map[string]string{
		"gate-a.yaml":         "gate A: level:",
		"gate-b.yaml":         "gate B: partition_key:",
		"gate-c.yaml":         "gate C: purpose:",
		"gate-c-payment.yaml": "gate C: classification: /card_number:",
	} {
		out, err := cli("contracts", "lint", "../../pkg/domain/contracts/testdata/"+file)
		var ee exitError
		require.ErrorAs(t, err, &ee, file)
		require.Equal(t, 1, ee.code, file)
		require.Contains(t, out, want, file)
	}
	out, err = cli("contracts", "lint", "--json", "../../pkg/domain/contracts/testdata/gate-b.yaml")
	require.Error(t, err)
	var reps []struct {
		Findings []struct{ Gate, Field string } `json:"findings"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &reps), out)
	require.Equal(t, "B", reps[0].Findings[0].Gate)
}

// schemaJSON is a registration body in Confluent's form.
func schemaJSON(schema string) string {
	b, _ := json.Marshal(map[string]string{"schema": schema})
	return string(b)
}
