package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadInput: every kind of bad request gets its status and an RFC 9457
// problem naming what failed, and nothing of it is stored.
func TestBadInput(t *testing.T) {
	s := startStack(t, func(e *env) {
		e.MaxBodyBytes = 8 << 10
		e.MaxBatch = 5
	})
	victim := s.createApp("victim")
	app := s.createApp("bad-input")
	disabled := s.createApp("disabled")
	out, err := s.cli("apps", "disable", disabled.AppID.String())
	require.NoError(t, err, out)

	const structured = "application/cloudevents+json"
	const batch = "application/cloudevents-batch+json"
	ev := func(extra string) string {
		return `{"specversion":"1.0","id":"e-1","source":"/s","type":"t"` + extra + `}`
	}
	ce := func(kv ...string) []string {
		return append([]string{"ce-specversion", "1.0", "ce-id", "b-1", "ce-source", "/s", "ce-type", "t"}, kv...)
	}
	wrongSecret := app
	wrongSecret.APISecret = "prost_sk_wrong"
	unknownKey := app
	unknownKey.APIKey = "prost_pk_unknown"

	cases := []struct {
		name    string
		creds   *creds // nil: app
		noCreds bool
		ct      string
		body    string
		headers []string
		status  int
		field   string // a field the problem must name, when set
	}{
		{name: "missing credentials", noCreds: true, ct: structured, body: ev(""), status: 401},
		{name: "wrong secret", creds: &wrongSecret, ct: structured, body: ev(""), status: 401},
		{name: "unknown key", creds: &unknownKey, ct: structured, body: ev(""), status: 401},
		{name: "disabled app", creds: &disabled, ct: structured, body: ev(""), status: 403},
		{name: "tenantid of another tenant", ct: structured, body: ev(fmt.Sprintf(`,"tenantid":%q`, victim.AppID)), status: 403, field: "tenantid"},
		{name: "tenantid not a uuid", ct: structured, body: ev(`,"tenantid":"me"`), status: 403, field: "tenantid"},
		{name: "data.tenant_id of another tenant", ct: structured, body: ev(fmt.Sprintf(`,"data":{"tenant_id":%q}`, victim.AppID)), status: 403, field: "data.tenant_id"},
		{name: "binary ce-tenantid of another tenant", ct: "application/json", body: `{}`, headers: ce("ce-tenantid", victim.AppID.String()), status: 403, field: "tenantid"},
		{name: "batch with one entry naming another tenant", ct: batch, body: "[" + ev("") + "," + strings.Replace(ev(fmt.Sprintf(`,"tenantid":%q`, victim.AppID)), "e-1", "e-2", 1) + "]", status: 403, field: "tenantid"},
		{name: "malformed JSON", ct: structured, body: `{"specversion":"1.0",`, status: 400},
		{name: "invalid UTF-8 in body", ct: structured, body: ev(`,"subject":"` + "\xff\xfe" + `"`), status: 400},
		{name: "structured body is an array", ct: structured, body: "[" + ev("") + "]", status: 400},
		{name: "batch body is an object", ct: batch, body: ev(""), status: 400},
		{name: "batch entry is not an object", ct: batch, body: `[1]`, status: 400},
		{name: "invalid UTF-8 in a binary header", ct: "application/json", body: `{}`, headers: ce("ce-subject", "%FF%FE"), status: 400, field: "ce-subject"},
		{name: "malformed percent-encoding", ct: "application/json", body: `{}`, headers: ce("ce-subject", "%G1"), status: 400, field: "ce-subject"},
		{name: "binary JSON data that is not JSON", ct: "application/json", body: `{nope`, headers: ce(), status: 400, field: "data"},
		{name: "body over the limit", ct: structured, body: ev(`,"data":"` + strings.Repeat("x", 9<<10) + `"`), status: 413},
		{name: "batch over the limit", ct: batch, body: "[" + strings.Repeat(ev("")+",", 5) + ev("") + "]", status: 413},
		{name: "structured non-JSON format", ct: "application/cloudevents+xml", body: `<event/>`, status: 415},
		{name: "batch non-JSON format", ct: "application/cloudevents-batch+avro", body: `x`, status: 415},
		{name: "missing id", ct: structured, body: `{"specversion":"1.0","source":"/s","type":"t"}`, status: 422, field: "id"},
		{name: "missing type in binary mode", ct: "application/json", body: `{}`, headers: []string{"ce-specversion", "1.0", "ce-id", "x", "ce-source", "/s"}, status: 422, field: "ce-type"},
		{name: "wrong specversion", ct: structured, body: `{"specversion":"0.3","id":"x","source":"/s","type":"t"}`, status: 422, field: "specversion"},
		{name: "id of the wrong type", ct: structured, body: `{"specversion":"1.0","id":7,"source":"/s","type":"t"}`, status: 422, field: "id"},
		{name: "time not RFC 3339", ct: structured, body: ev(`,"time":"yesterday"`), status: 422, field: "time"},
		{name: "source not a URI-reference", ct: structured, body: `{"specversion":"1.0","id":"x","source":"not a uri","type":"t"}`, status: 422, field: "source"},
		{name: "dataschema not absolute", ct: structured, body: ev(`,"dataschema":"/relative"`), status: 422, field: "dataschema"},
		{name: "extension name with upper case", ct: structured, body: ev(`,"Bad":"x"`), status: 422, field: "Bad"},
		{name: "extension value an object", ct: structured, body: ev(`,"ext":{"a":1}`), status: 422, field: "ext"},
		{name: "data and data_base64", ct: structured, body: ev(`,"data":1,"data_base64":"AA=="`), status: 422},
		{name: "batch with one invalid entry", ct: batch, body: "[" + ev("") + `,{"specversion":"1.0","id":"e-2","type":"t"}]`, status: 422, field: "source"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := app
			if tc.creds != nil {
				c = *tc.creds
			}
			h := map[string]string{"Content-Type": tc.ct}
			if !tc.noCreds {
				h["X-Prost-App-Key"], h["X-Prost-App-Secret"] = c.APIKey, c.APISecret
			}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				h[tc.headers[i]] = tc.headers[i+1]
			}
			req, err := http.NewRequest(http.MethodPost, s.url+"/v1/events", strings.NewReader(tc.body))
			require.NoError(t, err)
			for k, v := range h {
				req.Header.Set(k, v)
			}
			resp, err := s.client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var p struct {
				Type   string `json:"type"`
				Title  string `json:"title"`
				Status int    `json:"status"`
				Detail string `json:"detail"`
				Errors []struct {
					Index  *int   `json:"index"`
					Field  string `json:"field"`
					Detail string `json:"detail"`
				} `json:"errors"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
			require.Equal(t, tc.status, resp.StatusCode, "%+v", p)
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			require.Equal(t, tc.status, p.Status)
			require.NotEmpty(t, p.Title)
			if tc.field != "" {
				var fields []string
				for _, e := range p.Errors {
					fields = append(fields, e.Field)
				}
				require.Contains(t, fields, tc.field, "%+v", p)
			}
		})
	}

	// Nothing of any of it was stored, for any tenant involved.
	var n int
	require.NoError(t, testDB.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM events WHERE tenant_id = ANY($1)`, []string{app.AppID.String(), victim.AppID.String(), disabled.AppID.String()}).Scan(&n))
	require.Zero(t, n)
	require.NoError(t, testDB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE e.tenant_id = $1`, app.AppID).Scan(&n))
	require.Zero(t, n)

	// And the same App's good request still works afterwards.
	code, body := s.post(app, structured, ev(""))
	require.Equal(t, http.StatusAccepted, code, string(body))
}

// TestAdminAuth: the admin API refuses requests without the token, and
// tenants cannot use it.
func TestAdminAuth(t *testing.T) {
	s := startStack(t, nil)
	app := s.createApp("tenant")
	for _, h := range []map[string]string{
		{},
		{"Authorization": "Bearer wrong"},
		{"Authorization": s.token},
		{"X-Prost-App-Key": app.APIKey, "X-Prost-App-Secret": app.APISecret},
	} {
		code, body := s.do(http.MethodGet, "/admin/v1/apps", h, nil)
		require.Equal(t, http.StatusUnauthorized, code, string(body))
	}
	code, body := s.do(http.MethodPost, "/admin/v1/apps", map[string]string{"Authorization": "Bearer " + s.token, "Content-Type": "application/json"}, []byte(`{"name":""}`))
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	code, body = s.do(http.MethodPost, "/admin/v1/apps", map[string]string{"Authorization": "Bearer " + s.token, "Content-Type": "application/json"}, []byte(`{"name":`))
	require.Equal(t, http.StatusBadRequest, code, string(body))
	code, body = s.do(http.MethodPost, "/admin/v1/apps", map[string]string{"Authorization": "Bearer " + s.token, "Content-Type": "application/json"}, []byte(`{"name":"x","app_id":"y"}`))
	require.Equal(t, http.StatusBadRequest, code, string(body))
	code, _ = s.do(http.MethodGet, "/admin/v1/apps/not-a-uuid", map[string]string{"Authorization": "Bearer " + s.token}, nil)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = s.do(http.MethodGet, "/admin/v1/apps/"+"00000000-0000-0000-0000-000000000000", map[string]string{"Authorization": "Bearer " + s.token}, nil)
	require.Equal(t, http.StatusNotFound, code)
}
