package billinghttp_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/domain/billing/billinghttp"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

type api struct {
	t   *testing.T
	srv *httpapitest.Server
}

func (a *api) do(tenant uuid.UUID, method, path, body string, opts ...httpapitest.Option) *httpapitest.Response {
	a.t.Helper()
	var bd any
	if body != "" {
		bd = body
	}
	return a.srv.Do(a.t, method, path, bd, append([]httpapitest.Option{httpapitest.AsTenant(tenant)}, opts...)...)
}

func (a *api) json(tenant uuid.UUID, method, path, body string, want int) map[string]any {
	a.t.Helper()
	res := a.do(tenant, method, path, body)
	require.Equal(a.t, want, res.Status, "%s %s: %s", method, path, res.Body)
	var out map[string]any
	res.JSON(a.t, &out)
	return out
}

func (a *api) problem(tenant uuid.UUID, method, path, body string, want int) httpapitest.Problem {
	a.t.Helper()
	res := a.do(tenant, method, path, body)
	require.Equal(a.t, want, res.Status, "%s %s: %s", method, path, res.Body)
	return res.Problem(a.t)
}

func fields(p httpapitest.Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// TestBillingRoutes checks every billing route's statuses and bodies, and
// that another App sees none of it.
func TestBillingRoutes(t *testing.T) {
	t.Parallel()
	mock := prosttest.StartStripeMock(t)
	db := prosttest.NewDatabase(t)
	k, _ := secretbox.NewKey()
	svc := billing.New(db.Pool, billing.Config{SecretsKey: &k, StripeAPIURL: mock.URL, Partitions: 4})
	a := &api{t: t, srv: httpapitest.New(t, billinghttp.New(svc))}
	app, other := uuid.New(), uuid.New()

	// Meters.
	m := a.json(app, "POST", "/v1/meters", `{"slug":"tokens","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokens",
		"group_by":{"model":"$.model"},"customer_property":"$.customer"}`, http.StatusCreated)
	require.Equal(t, "tokens", m["slug"])
	require.Equal(t, map[string]any{"model": "$.model"}, m["group_by"])
	p := a.problem(app, "POST", "/v1/meters", `{"slug":"tokens","event_type":"llm.call","aggregation":"COUNT"}`, http.StatusConflict)
	require.Contains(t, p.Detail, "a meter with this slug exists")
	p = a.problem(app, "POST", "/v1/meters", `{"slug":"x","event_type":"llm.call","aggregation":"SUM"}`, http.StatusUnprocessableEntity)
	require.Equal(t, []string{"/value_property"}, fields(p))
	a.problem(app, "POST", "/v1/meters", `{"slug":`, http.StatusBadRequest)
	a.problem(app, "POST", "/v1/meters", `{"slug":"x","unknown":1}`, http.StatusBadRequest)
	res := a.do(app, "POST", "/v1/meters", `{}`, httpapitest.Header("Content-Type", "text/plain"))
	require.Equal(t, http.StatusUnsupportedMediaType, res.Status)
	list := a.json(app, "GET", "/v1/meters", "", http.StatusOK)
	require.Len(t, list["items"], 1)
	require.Empty(t, a.json(other, "GET", "/v1/meters", "", http.StatusOK)["items"])
	a.problem(other, "GET", "/v1/meters/tokens", "", http.StatusNotFound)
	a.json(app, "GET", "/v1/meters/tokens", "", http.StatusOK)
	got := a.json(app, "PATCH", "/v1/meters/tokens", `{"description":"LLM tokens"}`, http.StatusOK)
	require.Equal(t, "LLM tokens", got["description"])
	p = a.problem(app, "PATCH", "/v1/meters/tokens", `{"description":"x","value_property":"$.other"}`, http.StatusUnprocessableEntity)
	require.Equal(t, []string{"/value_property"}, fields(p))
	a.problem(other, "PATCH", "/v1/meters/tokens", `{"description":"mine"}`, http.StatusNotFound)
	a.problem(other, "DELETE", "/v1/meters/tokens", "", http.StatusNotFound)
	a.json(app, "POST", "/v1/meters", `{"slug":"doomed","event_type":"x","aggregation":"COUNT"}`, http.StatusCreated)
	gone := a.json(app, "DELETE", "/v1/meters/doomed", "", http.StatusOK)
	require.NotEmpty(t, gone["deleted_at"])
	a.problem(app, "GET", "/v1/meters/doomed", "", http.StatusNotFound)

	// Usage: JSON and CSV.
	for _, ev := range []string{
		`{"specversion":"1.0","id":"u1","source":"/llm","type":"llm.call","time":"2026-11-10T10:05:00Z","data":{"customer":"cust-a","model":"m1","tokens":1.25}}`,
		`{"specversion":"1.0","id":"u2","source":"/llm","type":"llm.call","time":"2026-11-10T11:05:00Z","data":{"customer":"cust-a","model":"m2","tokens":"2.5"}}`,
	} {
		handle(t, db, svc, app, ev)
	}
	u := a.json(app, "GET", "/v1/meters/tokens/usage?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&window=hour&group_by=model", "", http.StatusOK)
	require.Equal(t, "HOUR", u["window"])
	data := u["data"].([]any)
	require.Len(t, data, 2)
	require.Equal(t, map[string]any{"model": "m1"}, data[0].(map[string]any)["group_by"])
	require.Nil(t, data[0].(map[string]any)["customer"])
	res = a.do(app, "GET", "/v1/meters/tokens/usage?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&window=MONTH&customer=cust-a&group_by=model",
		"", httpapitest.Header("Accept", "text/csv"))
	require.Equal(t, http.StatusOK, res.Status)
	require.Equal(t, "window_start,window_end,customer,model,value\n"+
		"2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,cust-a,m1,1.25\n"+
		"2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,cust-a,m2,2.5\n", string(res.Body))
	res = a.do(app, "GET", "/v1/meters/tokens/usage?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z", "")
	require.Contains(t, string(res.Body), `"value":3.75`, "an exact JSON number")
	p = a.problem(app, "GET", "/v1/meters/tokens/usage?window=fortnight", "", http.StatusBadRequest)
	require.Equal(t, []string{"window"}, fields(p))
	p = a.problem(app, "GET", "/v1/meters/tokens/usage?from=yesterday", "", http.StatusBadRequest)
	require.Equal(t, []string{"from"}, fields(p))
	a.problem(other, "GET", "/v1/meters/tokens/usage", "", http.StatusNotFound)

	// Stripe connection.
	a.problem(app, "GET", "/v1/billing/stripe", "", http.StatusNotFound)
	p = a.problem(app, "PUT", "/v1/billing/stripe", `{"secret_key":"pk_test_1"}`, http.StatusUnprocessableEntity)
	require.Equal(t, []string{"/secret_key"}, fields(p))
	c := a.json(app, "PUT", "/v1/billing/stripe", `{"secret_key":"sk_test_51RoutesTestKeyAbcdefgh","webhook_secret":"whsec_routes","mode":"test"}`, http.StatusOK)
	require.Equal(t, "test", c["status"])
	require.NotContains(t, fmt.Sprint(c), "sk_test_51RoutesTestKeyAbcdefgh")
	require.Equal(t, "test", a.json(app, "GET", "/v1/billing/stripe", "", http.StatusOK)["status"])
	a.problem(other, "GET", "/v1/billing/stripe", "", http.StatusNotFound)

	// Webhooks: public, authenticated by the signature.
	body := []byte(fmt.Sprintf(`{"id":"evt_r1","object":"event","api_version":"2026-03-25.dahlia","created":%d,"type":"invoice.paid","data":{"object":{"id":"in_1","object":"invoice"}}}`,
		time.Now().Unix()))
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: "whsec_routes"}).Header
	res = a.srv.Do(t, "POST", "/v1/billing/stripe/webhooks/"+app.String(), body, httpapitest.Header("Stripe-Signature", sig))
	require.Equal(t, http.StatusAccepted, res.Status, string(res.Body))
	var wr billing.WebhookResult
	res.JSON(t, &wr)
	require.Equal(t, "stripe.invoice.paid", wr.Type)
	for name, path := range map[string]string{"other app": other.String(), "not an app": "nope"} {
		res = a.srv.Do(t, "POST", "/v1/billing/stripe/webhooks/"+path, body, httpapitest.Header("Stripe-Signature", sig))
		require.Equal(t, http.StatusBadRequest, res.Status, name)
	}
	bad := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: "whsec_wrong"}).Header
	res = a.srv.Do(t, "POST", "/v1/billing/stripe/webhooks/"+app.String(), body, httpapitest.Header("Stripe-Signature", bad))
	require.Equal(t, http.StatusBadRequest, res.Status)
	require.Contains(t, res.Problem(t).Detail, "does not verify")

	// Customers, products, prices.
	cu := a.json(app, "PUT", "/v1/billing/customers/cust-a", `{"stripe_customer_id":"cus_A"}`, http.StatusCreated)
	require.Equal(t, "synced", cu["status"])
	a.json(app, "PUT", "/v1/billing/customers/cust-a", `{"stripe_customer_id":"cus_A","name":"Ada"}`, http.StatusOK)
	p = a.problem(app, "PUT", "/v1/billing/customers/cust-b", `{"email":"not an email"}`, http.StatusUnprocessableEntity)
	require.Equal(t, []string{"/email"}, fields(p))
	require.Len(t, a.json(app, "GET", "/v1/billing/customers", "", http.StatusOK)["items"], 1)
	a.json(app, "GET", "/v1/billing/customers/cust-a", "", http.StatusOK)
	a.problem(other, "GET", "/v1/billing/customers/cust-a", "", http.StatusNotFound)

	pr := a.json(app, "POST", "/v1/billing/products", `{"name":"LLM API"}`, http.StatusCreated)
	require.Equal(t, "pending", pr["status"])
	prodID := pr["id"].(string)
	a.problem(app, "POST", "/v1/billing/products", `{"name":""}`, http.StatusUnprocessableEntity)
	require.Len(t, a.json(app, "GET", "/v1/billing/products", "", http.StatusOK)["items"], 1)
	a.json(app, "GET", "/v1/billing/products/"+prodID, "", http.StatusOK)
	a.problem(other, "GET", "/v1/billing/products/"+prodID, "", http.StatusNotFound)
	a.problem(app, "GET", "/v1/billing/products/nope", "", http.StatusNotFound)

	price := a.json(app, "POST", "/v1/billing/prices", fmt.Sprintf(`{"product":%q,"meter":"tokens","currency":"eur","unit_amount":"0.5"}`, prodID), http.StatusCreated)
	require.Equal(t, 0.5, price["unit_amount"])
	require.Equal(t, "invoice", price["billing"])
	priceID := price["id"].(string)
	p = a.problem(app, "POST", "/v1/billing/prices", fmt.Sprintf(`{"product":%q,"meter":"nope","currency":"euro","unit_amount":"-1"}`, prodID), http.StatusUnprocessableEntity)
	require.ElementsMatch(t, []string{"/meter", "/currency", "/unit_amount"}, fields(p))
	require.Len(t, a.json(app, "GET", "/v1/billing/prices", "", http.StatusOK)["items"], 1)
	a.json(app, "GET", "/v1/billing/prices/"+priceID, "", http.StatusOK)
	a.problem(other, "GET", "/v1/billing/prices/"+priceID, "", http.StatusNotFound)

	// Invoices and reconciliation.
	p = a.problem(app, "POST", "/v1/billing/invoices", `{"customer":"cust-a","period":"November"}`, http.StatusUnprocessableEntity)
	require.Equal(t, []string{"/period"}, fields(p))
	inv := a.json(app, "POST", "/v1/billing/invoices", `{"customer":"cust-a","period":"2026-11"}`, http.StatusCreated)
	require.Equal(t, "pending", inv["status"])
	lines := inv["lines"].([]any)
	require.Len(t, lines, 1)
	require.Equal(t, 3.75, lines[0].(map[string]any)["quantity"])
	invID := inv["id"].(string)
	a.json(app, "GET", "/v1/billing/invoices/"+invID, "", http.StatusOK)
	require.Len(t, a.json(app, "GET", "/v1/billing/invoices?customer=cust-a&period=2026-11", "", http.StatusOK)["items"], 1)
	require.Empty(t, a.json(app, "GET", "/v1/billing/invoices?period=2026-10", "", http.StatusOK)["items"])
	a.problem(other, "GET", "/v1/billing/invoices/"+invID, "", http.StatusNotFound)
	a.problem(app, "POST", "/v1/billing/invoices", `{"customer":"cust-a","period":"2026-11"}`, http.StatusConflict)

	rec := a.json(app, "GET", "/v1/billing/reconciliation?period=2026-11", "", http.StatusOK)
	require.Empty(t, rec["differences"], "the pending invoice bills the usage")
	require.EqualValues(t, 1, rec["checked"])
	p = a.problem(app, "GET", "/v1/billing/reconciliation", "", http.StatusBadRequest)
	require.Equal(t, []string{"period"}, fields(p))
	p = a.problem(app, "GET", "/v1/billing/reconciliation?period=2026-13", "", http.StatusBadRequest)
	require.Equal(t, []string{"period"}, fields(p))
	require.Empty(t, a.json(other, "GET", "/v1/billing/reconciliation?period=2026-11", "", http.StatusOK)["differences"])

	d := a.json(app, "DELETE", "/v1/billing/stripe", "", http.StatusOK)
	require.Equal(t, "disconnected", d["status"])
	a.problem(app, "POST", "/v1/billing/products", `{"name":"more"}`, http.StatusConflict)
	require.True(t, strings.HasPrefix(mock.Requests()[0].Path, "/v1/"))
}

// handle records an event of tenant and runs the billing consumer on it.
func handle(t *testing.T, db *prosttest.Database, svc *billing.Service, tenant uuid.UUID, structured string) {
	t.Helper()
	ev, err := cloudevent.ParseStructured([]byte(structured))
	require.NoError(t, err)
	ev.SetExtension("tenantid", tenant.String())
	env := ev.AppendJSON(nil)
	require.NoError(t, pgx.BeginFunc(t.Context(), db.Pool, func(tx pgx.Tx) error {
		if _, err := eventstore.AppendTx(t.Context(), tx, []eventstore.NewEvent{{TenantID: tenant, Source: ev.Source, ID: ev.ID,
			Type: ev.Type, Time: ev.Time, Envelope: env, OutboxSubject: subjects.Event(tenant, 0, ev.Type)}}); err != nil {
			return err
		}
		return svc.HandleEvents(t.Context(), tx, []*consumer.Message{{ID: ev.ID, Data: env, NumDelivered: 1}})
	}))
}
