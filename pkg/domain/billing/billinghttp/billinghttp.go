// Package billinghttp serves the billing routes:
//
//	POST   /v1/meters                               create a meter (201)
//	GET    /v1/meters?limit=&cursor=                list
//	GET    /v1/meters/{slug}                        one meter
//	PATCH  /v1/meters/{slug}                        change its description
//	DELETE /v1/meters/{slug}                        stop it (its usage stays)
//	GET    /v1/meters/{slug}/usage?from=&to=&window=&tz=&group_by=&customer=
//	                                                usage (JSON, or CSV with Accept: text/csv)
//	PUT    /v1/billing/stripe                       connect the App's Stripe account
//	GET    /v1/billing/stripe                       the connection (no secrets)
//	DELETE /v1/billing/stripe                       forget its secrets
//	PUT    /v1/billing/customers/{customer}         map a PROST customer to a Stripe customer
//	GET    /v1/billing/customers[/{customer}]
//	POST   /v1/billing/products, GET /v1/billing/products[/{id}]
//	POST   /v1/billing/prices,   GET /v1/billing/prices[/{id}]
//	POST   /v1/billing/invoices, GET /v1/billing/invoices[/{id}]?customer=&period=
//	GET    /v1/billing/reconciliation?period=&tz=&customer=
//	POST   /v1/billing/stripe/webhooks/{app}        Stripe's webhooks (no App credentials: the
//	                                                Stripe-Signature header authenticates them)
package billinghttp

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// Handlers serve the billing routes.
type Handlers struct {
	svc *billing.Service
}

// New returns the handlers over svc.
func New(svc *billing.Service) *Handlers { return &Handlers{svc: svc} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("POST /v1/meters", h.createMeter)
	rt.Tenant("GET /v1/meters", h.listMeters)
	rt.Tenant("GET /v1/meters/{slug}", h.getMeter)
	rt.Tenant("PATCH /v1/meters/{slug}", h.patchMeter)
	rt.Tenant("DELETE /v1/meters/{slug}", h.deleteMeter)
	rt.Tenant("GET /v1/meters/{slug}/usage", h.usage)

	rt.Tenant("PUT /v1/billing/stripe", h.connect)
	rt.Tenant("GET /v1/billing/stripe", h.connection)
	rt.Tenant("DELETE /v1/billing/stripe", h.disconnect)
	rt.Public("POST /v1/billing/stripe/webhooks/{app}", h.webhook)

	rt.Tenant("PUT /v1/billing/customers/{customer}", h.putCustomer)
	rt.Tenant("GET /v1/billing/customers", h.listCustomers)
	rt.Tenant("GET /v1/billing/customers/{customer}", h.getCustomer)
	rt.Tenant("POST /v1/billing/products", h.createProduct)
	rt.Tenant("GET /v1/billing/products", h.listProducts)
	rt.Tenant("GET /v1/billing/products/{id}", h.getProduct)
	rt.Tenant("POST /v1/billing/prices", h.createPrice)
	rt.Tenant("GET /v1/billing/prices", h.listPrices)
	rt.Tenant("GET /v1/billing/prices/{id}", h.getPrice)
	rt.Tenant("POST /v1/billing/invoices", h.createInvoice)
	rt.Tenant("GET /v1/billing/invoices", h.listInvoices)
	rt.Tenant("GET /v1/billing/invoices/{id}", h.getInvoice)
	rt.Tenant("GET /v1/billing/reconciliation", h.reconcile)
}

// page is the shape of every list answer.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newPage[T any](items []T, next string) page[T] {
	if items == nil {
		items = []T{}
	}
	p := page[T]{Items: items}
	if next != "" {
		p.NextCursor = &next
	}
	return p
}

func tenant(r *http.Request) uuid.UUID { return httpapi.TenantID(r.Context()) }

// Meters ---------------------------------------------------------------------

func (h *Handlers) createMeter(w http.ResponseWriter, r *http.Request) error {
	var in billing.MeterInput
	if err := httpapi.ReadJSON(w, r, 0, &in); err != nil {
		return err
	}
	m, err := h.svc.CreateMeter(r.Context(), tenant(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/meters/"+m.Slug)
	return httpapi.WriteJSON(w, http.StatusCreated, m)
}

func (h *Handlers) listMeters(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	ms, next, err := h.svc.Meters(r.Context(), tenant(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, newPage(ms, next))
}

func (h *Handlers) getMeter(w http.ResponseWriter, r *http.Request) error {
	m, err := h.svc.Meter(r.Context(), tenant(r), r.PathValue("slug"))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, m)
}

func (h *Handlers) patchMeter(w http.ResponseWriter, r *http.Request) error {
	var raw map[string]json.RawMessage
	if err := httpapi.ReadJSON(w, r, 0, &raw); err != nil {
		return err
	}
	var fields []problem.FieldError
	var p billing.MeterPatch
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "description" {
			var d string
			if err := json.Unmarshal(raw[k], &d); err != nil {
				fields = append(fields, problem.FieldError{Field: "/description", Detail: "a string"})
				continue
			}
			p.Description = &d
			continue
		}
		fields = append(fields, problem.FieldError{Field: "/" + k,
			Detail: "cannot change: what a meter counts is fixed when it is made; create a new meter (and delete this one)"})
	}
	if len(fields) > 0 {
		return &problem.Error{Kind: problem.Invalid, Msg: "only a meter's description can change", Fields: fields}
	}
	m, err := h.svc.UpdateMeter(r.Context(), tenant(r), r.PathValue("slug"), p)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, m)
}

func (h *Handlers) deleteMeter(w http.ResponseWriter, r *http.Request) error {
	m, err := h.svc.DeleteMeter(r.Context(), tenant(r), r.PathValue("slug"))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, m)
}

func (h *Handlers) usage(w http.ResponseWriter, r *http.Request) error {
	var q billing.UsageQuery
	var err error
	if q.From, err = httpapi.TimeParam(r, "from"); err != nil {
		return err
	}
	if q.To, err = httpapi.TimeParam(r, "to"); err != nil {
		return err
	}
	v := r.URL.Query()
	q.Window = strings.ToUpper(v.Get("window"))
	q.TZ = v.Get("tz")
	q.GroupBy = splitList(v["group_by"])
	q.Customers = splitList(v["customer"])
	u, err := h.svc.QueryUsage(r.Context(), tenant(r), r.PathValue("slug"), q)
	if err != nil {
		return err
	}
	if wantsCSV(r) {
		return writeCSV(w, u, q.GroupBy)
	}
	return httpapi.WriteJSON(w, http.StatusOK, u)
}

// splitList reads a repeatable parameter that may also hold commas.
func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func wantsCSV(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(mt, "text/csv") {
			return true
		}
	}
	return false
}

// writeCSV writes usage as CSV: window_start, window_end, customer, one
// column per group, value.
func writeCSV(w http.ResponseWriter, u billing.Usage, groups []string) error {
	groups = slices.Clone(groups)
	slices.Sort(groups)
	groups = slices.Compact(groups)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(append(append([]string{"window_start", "window_end", "customer"}, groups...), "value"))
	for _, d := range u.Data {
		rec := []string{d.WindowStart.Format(time.RFC3339), d.WindowEnd.Format(time.RFC3339), deref(d.Customer)}
		for _, g := range groups {
			rec = append(rec, deref(d.GroupBy[g]))
		}
		_ = cw.Write(append(rec, d.Value.String()))
	}
	cw.Flush()
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Stripe connection and webhooks ----------------------------------------------

func (h *Handlers) connect(w http.ResponseWriter, r *http.Request) error {
	var in billing.ConnectionInput
	if err := httpapi.ReadJSON(w, r, 0, &in); err != nil {
		return err
	}
	c, err := h.svc.Connect(r.Context(), tenant(r), in)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, c)
}

func (h *Handlers) connection(w http.ResponseWriter, r *http.Request) error {
	c, err := h.svc.Connection(r.Context(), tenant(r))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, c)
}

func (h *Handlers) disconnect(w http.ResponseWriter, r *http.Request) error {
	c, err := h.svc.Disconnect(r.Context(), tenant(r))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, c)
}

func (h *Handlers) webhook(w http.ResponseWriter, r *http.Request) error {
	app, err := uuid.Parse(r.PathValue("app"))
	if err != nil {
		return billing.ErrWebhookSignature // no App: the same answer as a bad signature
	}
	body, _, err := httpapi.ReadBody(w, r, billing.MaxWebhookBytes, "application/json")
	if err != nil {
		return err
	}
	res, err := h.svc.ReceiveWebhook(r.Context(), app, body, r.Header.Get("Stripe-Signature"))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusAccepted, res)
}

// Customers, products, prices ----------------------------------------------------

func (h *Handlers) putCustomer(w http.ResponseWriter, r *http.Request) error {
	var in billing.CustomerInput
	if err := httpapi.ReadJSON(w, r, 0, &in); err != nil {
		return err
	}
	c, created, err := h.svc.PutCustomer(r.Context(), tenant(r), r.PathValue("customer"), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return httpapi.WriteJSON(w, status, c)
}

func (h *Handlers) listCustomers(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	cs, next, err := h.svc.Customers(r.Context(), tenant(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, newPage(cs, next))
}

func (h *Handlers) getCustomer(w http.ResponseWriter, r *http.Request) error {
	c, err := h.svc.Customer(r.Context(), tenant(r), r.PathValue("customer"))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, c)
}

func (h *Handlers) createProduct(w http.ResponseWriter, r *http.Request) error {
	var in billing.ProductInput
	if err := httpapi.ReadJSON(w, r, 0, &in); err != nil {
		return err
	}
	p, err := h.svc.CreateProduct(r.Context(), tenant(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/billing/products/"+p.ID.String())
	return httpapi.WriteJSON(w, http.StatusCreated, p)
}

func (h *Handlers) listProducts(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	ps, next, err := h.svc.Products(r.Context(), tenant(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, newPage(ps, next))
}

func (h *Handlers) getProduct(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return billing.ErrProductNotFound
	}
	p, err := h.svc.Product(r.Context(), tenant(r), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, p)
}

func (h *Handlers) createPrice(w http.ResponseWriter, r *http.Request) error {
	var in billing.PriceInput
	if err := httpapi.ReadJSON(w, r, 0, &in); err != nil {
		return err
	}
	p, err := h.svc.CreatePrice(r.Context(), tenant(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/billing/prices/"+p.ID.String())
	return httpapi.WriteJSON(w, http.StatusCreated, p)
}

func (h *Handlers) listPrices(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	ps, next, err := h.svc.Prices(r.Context(), tenant(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, newPage(ps, next))
}

func (h *Handlers) getPrice(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return billing.ErrPriceNotFound
	}
	p, err := h.svc.Price(r.Context(), tenant(r), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, p)
}

// Invoices and reconciliation ---------------------------------------------------

func (h *Handlers) createInvoice(w http.ResponseWriter, r *http.Request) error {
	var in billing.InvoiceInput
	if err := httpapi.ReadJSON(w, r, 0, &in); err != nil {
		return err
	}
	inv, err := h.svc.CreateInvoice(r.Context(), tenant(r), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/billing/invoices/"+inv.ID.String())
	return httpapi.WriteJSON(w, http.StatusCreated, inv)
}

func (h *Handlers) listInvoices(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	is, next, err := h.svc.Invoices(r.Context(), tenant(r), billing.InvoiceFilter{Customer: q.Get("customer"), Period: q.Get("period")},
		q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, newPage(is, next))
}

func (h *Handlers) getInvoice(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return billing.ErrInvoiceNotFound
	}
	inv, err := h.svc.Invoice(r.Context(), tenant(r), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, inv)
}

func (h *Handlers) reconcile(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("period") == "" {
		return problem.BadParam("period", "the month to reconcile, such as 2026-11")
	}
	rec, err := h.svc.Reconcile(r.Context(), tenant(r), billing.ReconcileQuery{Period: q.Get("period"), TZ: q.Get("tz"), Customer: q.Get("customer")})
	if err != nil {
		var pe *problem.Error
		if errors.As(err, &pe) && pe.Kind == problem.Invalid && len(pe.Fields) == 1 {
			// Query parameters, not body members.
			return problem.BadParam(strings.TrimPrefix(pe.Fields[0].Field, "/"), pe.Fields[0].Detail)
		}
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, rec)
}
