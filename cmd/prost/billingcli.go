package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prost-platform/prost/pkg/domain/billing"
)

// billingWait is how long the billing commands wait for Stripe by default.
const billingWait = 2 * time.Minute

func (c *cli) billingCmd() *cobra.Command {
	var asJSON, asCSV, noWait bool
	var uq struct {
		from, to, window, tz string
		groups, customers    []string
	}
	usage := &cobra.Command{
		Use:   "usage METER",
		Short: "A meter's usage per window, customer and group (App credentials)",
		Long: `prost billing usage answers GET /v1/meters/{slug}/usage: the meter's usage of the events whose time
is in [--from, --to), exact, per window (--window), per customer (--customer, repeatable) and per group
(--group-by, repeatable). Corrections are applied; late events count in the window their time names.`,
		Example: "  prost billing usage tokens --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z --window DAY\n" +
			"  prost billing usage tokens --window MONTH --customer cust-42 --group-by model --csv",
		Args: cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"from": uq.from, "to": uq.to, "window": uq.window, "tz": uq.tz} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for _, g := range uq.groups {
				q.Add("group_by", g)
			}
			for _, cu := range uq.customers {
				q.Add("customer", cu)
			}
			return billingUsage(c.ctx, c.env, args[0], q, asJSON, asCSV, c.stdout)
		}),
	}
	usage.Flags().StringVar(&uq.from, "from", "", "start of the range, RFC 3339 (default: the Unix epoch)")
	usage.Flags().StringVar(&uq.to, "to", "", "end of the range, RFC 3339, exclusive (default: now)")
	usage.Flags().StringVar(&uq.window, "window", "", "MINUTE, HOUR, DAY or MONTH (default: one row over the range)")
	usage.Flags().StringVar(&uq.tz, "tz", "", "IANA time zone windows are cut in (default UTC)")
	usage.Flags().StringArrayVar(&uq.groups, "group-by", nil, "a group of the meter to split by (repeatable)")
	usage.Flags().StringArrayVar(&uq.customers, "customer", nil, "a customer to show, split by customer (repeatable)")
	usage.Flags().BoolVar(&asCSV, "csv", false, "print CSV, as the API answers Accept: text/csv")
	jsonFlag(usage, &asJSON)

	var name, description string
	productCreate := &cobra.Command{
		Use:     "create --name NAME",
		Short:   "Create a product and wait until it is made in Stripe (App credentials)",
		Example: `  prost billing products create --name "LLM API"`,
		Args:    cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return billingCreate(c.ctx, c.env, "/v1/billing/products", map[string]string{"name": name, "description": description},
				noWait, asJSON, c.stdout)
		}),
	}
	productCreate.Flags().StringVar(&name, "name", "", "the product's name (required)")
	productCreate.Flags().StringVar(&description, "description", "", "the product's description")
	_ = productCreate.MarkFlagRequired("name")
	productCreate.Flags().BoolVar(&noWait, "no-wait", false, "print the product at once, pending, instead of waiting for Stripe")
	jsonFlag(productCreate, &asJSON)

	var pin struct {
		meter, product, currency, unitAmount, billingMode, interval string
	}
	priceCreate := &cobra.Command{
		Use:   "create --meter SLUG --unit-amount AMOUNT",
		Short: "Create a price for a meter's usage and wait until it is made in Stripe (App credentials)",
		Long: `prost billing prices create prices one meter's usage. --unit-amount is the price of one unit of usage in
the currency's minor unit (cents), exactly, like Stripe's unit_amount_decimal: 0.25 is a quarter cent.
--billing invoice (the default) has prost billing invoice bill the usage; --billing stripe_meter sends
the usage to a Stripe Billing Meter (SUM, COUNT and LATEST meters) for Stripe's subscriptions to bill.
Without --product, the App's only product is used.`,
		Example: "  prost billing prices create --meter tokens --unit-amount 0.25 --currency eur\n" +
			"  prost billing prices create --meter calls --unit-amount 2 --billing stripe_meter --interval month",
		Args: cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return billingCreatePrice(c.ctx, c.env, pin.product, map[string]string{"meter": pin.meter, "currency": pin.currency,
				"unit_amount": pin.unitAmount, "billing": pin.billingMode, "interval": pin.interval}, noWait, asJSON, c.stdout)
		}),
	}
	priceCreate.Flags().StringVar(&pin.meter, "meter", "", "the slug of the meter whose usage the price bills (required)")
	priceCreate.Flags().StringVar(&pin.unitAmount, "unit-amount", "", "price of one unit in the currency's minor unit (cents), exact (required)")
	priceCreate.Flags().StringVar(&pin.product, "product", "", "the product id (default: the App's only product)")
	priceCreate.Flags().StringVar(&pin.currency, "currency", "eur", "ISO 4217 currency code")
	priceCreate.Flags().StringVar(&pin.billingMode, "billing", "invoice", "invoice or stripe_meter")
	priceCreate.Flags().StringVar(&pin.interval, "interval", "", "subscription interval of a stripe_meter price: day, week, month or year (default month)")
	_ = priceCreate.MarkFlagRequired("meter")
	_ = priceCreate.MarkFlagRequired("unit-amount")
	priceCreate.Flags().BoolVar(&noWait, "no-wait", false, "print the price at once, pending, instead of waiting for Stripe")
	jsonFlag(priceCreate, &asJSON)

	var inv billing.InvoiceInput
	invoice := &cobra.Command{
		Use:   "invoice --customer CUSTOMER --period YYYY-MM",
		Short: "Invoice a customer's usage of a month in Stripe and wait until it is finalized (App credentials)",
		Long: `prost billing invoice bills a customer's usage of a calendar month: one invoice item per price, its
quantity the usage query of the price's meter for the customer and month (minus what earlier invoices of
the month billed), on an invoice made and finalized in Stripe. Running it again bills only what changed
since (a correction, a late event); with nothing to bill it says so and exits 0. Exit 1 when Stripe
refused the invoice.`,
		Example: "  prost billing invoice --customer cust-42 --period 2026-11",
		Args:    cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return billingInvoice(c.ctx, c.env, inv, noWait, asJSON, c.stdout)
		}),
	}
	invoice.Flags().StringVar(&inv.Customer, "customer", "", "the PROST customer id (required)")
	invoice.Flags().StringVar(&inv.Period, "period", "", "the calendar month, such as 2026-11 (required)")
	invoice.Flags().StringVar(&inv.TZ, "tz", "", "IANA time zone the month is cut in (default UTC)")
	invoice.Flags().StringVar(&inv.Currency, "currency", "", "bill only the prices in this currency")
	_ = invoice.MarkFlagRequired("customer")
	_ = invoice.MarkFlagRequired("period")
	invoice.Flags().BoolVar(&noWait, "no-wait", false, "print the invoice at once, pending, instead of waiting for Stripe")
	jsonFlag(invoice, &asJSON)

	var rq billing.ReconcileQuery
	reconcile := &cobra.Command{
		Use:   "reconcile --period YYYY-MM",
		Short: "Compare a month's usage with what Stripe holds; exit 1 naming every difference (App credentials)",
		Long: `prost billing reconcile compares, for every price and customer (or --customer), PROST's usage of the
month with what Stripe holds for it: what PROST's invoices of the month billed and, for stripe_meter
prices, what Stripe's meter event summaries hold. It prints every difference and exits 1 when there is
one, 0 when everything matches.`,
		Example: "  prost billing reconcile --period 2026-11",
		Args:    cobra.NoArgs,
		RunE:    do(func(*cobra.Command, []string) error { return billingReconcile(c.ctx, c.env, rq, asJSON, c.stdout) }),
	}
	reconcile.Flags().StringVar(&rq.Period, "period", "", "the calendar month, such as 2026-11 (required)")
	reconcile.Flags().StringVar(&rq.TZ, "tz", "", "IANA time zone the month is cut in (default UTC)")
	reconcile.Flags().StringVar(&rq.Customer, "customer", "", "reconcile one customer (default: every customer with usage or an invoice)")
	_ = reconcile.MarkFlagRequired("period")
	jsonFlag(reconcile, &asJSON)

	return group("billing", "Usage, Stripe products, prices, invoices and reconciliation (App credentials)", usage,
		group("products", "Products in the App's Stripe account", productCreate),
		group("prices", "Prices of meters' usage in the App's Stripe account", priceCreate),
		invoice, reconcile)
}

// raw sends a GET with an Accept header and returns the 2xx body.
func (c *apiClient) raw(ctx context.Context, path, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", accept)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach PROST at %s (is it running? set PROST_URL): %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{method: http.MethodGet, path: path, status: resp.StatusCode, raw: b}
		_ = json.Unmarshal(b, &ae.problem)
		return nil, ae
	}
	return b, nil
}

func billingUsage(ctx context.Context, e env, meter string, q url.Values, asJSON, asCSV bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	path := "/v1/meters/" + url.PathEscape(meter) + "/usage"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if asCSV || asJSON {
		accept := "application/json"
		if asCSV {
			accept = "text/csv"
		}
		b, err := c.raw(ctx, path, accept)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	var u struct {
		Meter  string  `json:"meter"`
		From   string  `json:"from"`
		To     string  `json:"to"`
		Window *string `json:"window"`
		Data   []struct {
			Value       json.Number        `json:"value"`
			WindowStart string             `json:"window_start"`
			WindowEnd   string             `json:"window_end"`
			Customer    *string            `json:"customer"`
			GroupBy     map[string]*string `json:"group_by"`
		} `json:"data"`
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &u); err != nil {
		return withFields(err)
	}
	groups := q["group_by"]
	slices.Sort(groups)
	groups = slices.Compact(groups)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	head := []string{"WINDOW_START", "WINDOW_END"}
	if len(q["customer"]) > 0 {
		head = append(head, "CUSTOMER")
	}
	for _, g := range groups {
		head = append(head, strings.ToUpper(g))
	}
	fmt.Fprintln(tw, strings.Join(append(head, "VALUE"), "\t"))
	for _, d := range u.Data {
		row := []string{d.WindowStart, d.WindowEnd}
		if len(q["customer"]) > 0 {
			row = append(row, orDash(d.Customer))
		}
		for _, g := range groups {
			row = append(row, orDash(d.GroupBy[g]))
		}
		fmt.Fprintln(tw, strings.Join(append(row, d.Value.String()), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(u.Data) == 0 {
		fmt.Fprintf(stdout, "no usage of %s from %s to %s\n", u.Meter, u.From, u.To)
	}
	return nil
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

// synced is what the create commands read back while they wait.
type synced struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// waitSynced polls path until the object is synced (or failed, exit 1).
func waitSynced(ctx context.Context, c *apiClient, path string, first json.RawMessage) (json.RawMessage, error) {
	raw := first
	deadline := time.Now().Add(billingWait)
	for {
		var s synced
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		switch s.Status {
		case billing.SyncSynced, billing.InvoiceFinalized:
			return raw, nil
		case billing.SyncFailed:
			return raw, exitError{code: 1, msg: "Stripe refused it: " + s.Error}
		}
		if time.Now().After(deadline) {
			return raw, exitError{code: 1, msg: fmt.Sprintf("still %s in Stripe after %s; see %s", s.Status, billingWait, path)}
		}
		select {
		case <-ctx.Done():
			return raw, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if err := c.do(ctx, http.MethodGet, path, nil, &raw); err != nil {
			return nil, err
		}
	}
}

// withFields adds the fields a refusal names to its message.
func withFields(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || len(ae.problem.Errors) == 0 {
		return err
	}
	var b strings.Builder
	b.WriteString(err.Error())
	for _, f := range ae.problem.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Detail)
	}
	return exitError{code: 1, msg: b.String()}
}

func billingCreate(ctx context.Context, e env, path string, body map[string]string, noWait, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, path, dropEmpty(body), &raw); err != nil {
		return withFields(err)
	}
	var s synced
	_ = json.Unmarshal(raw, &s)
	var werr error
	if !noWait {
		raw, werr = waitSynced(ctx, c, path+"/"+s.ID, raw)
	}
	if raw != nil {
		printSynced(stdout, raw, asJSON)
	}
	return werr
}

func printSynced(stdout io.Writer, raw json.RawMessage, asJSON bool) {
	if asJSON {
		fmt.Fprintln(stdout, string(raw))
		return
	}
	var v struct {
		ID              string  `json:"id"`
		Name            string  `json:"name"`
		Meter           string  `json:"meter"`
		UnitAmount      any     `json:"unit_amount"`
		Currency        string  `json:"currency"`
		Status          string  `json:"status"`
		StripeProductID *string `json:"stripe_product_id"`
		StripePriceID   *string `json:"stripe_price_id"`
	}
	_ = json.Unmarshal(raw, &v)
	switch {
	case v.Meter != "":
		fmt.Fprintf(stdout, "price %s: %v %s (minor units) per unit of %s, %s, Stripe price %s\n", v.ID, v.UnitAmount, v.Currency, v.Meter, v.Status, orDash(v.StripePriceID))
	default:
		fmt.Fprintf(stdout, "product %s %q: %s, Stripe product %s\n", v.ID, v.Name, v.Status, orDash(v.StripeProductID))
	}
}

func dropEmpty(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

func billingCreatePrice(ctx context.Context, e env, product string, body map[string]string, noWait, asJSON bool, stdout io.Writer) error {
	if product == "" {
		c, err := newTenantClient(e)
		if err != nil {
			return err
		}
		var page struct {
			Items []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"items"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/billing/products?limit=2", nil, &page); err != nil {
			return err
		}
		switch len(page.Items) {
		case 0:
			return exitError{code: 2, msg: "the App has no product: prost billing products create --name NAME first"}
		case 1:
			product = page.Items[0].ID
		default:
			return exitError{code: 2, msg: "the App has several products: name one with --product"}
		}
	}
	body["product"] = product
	return billingCreate(ctx, e, "/v1/billing/prices", body, noWait, asJSON, stdout)
}

func billingInvoice(ctx context.Context, e env, in billing.InvoiceInput, noWait, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	err = c.do(ctx, http.MethodPost, "/v1/billing/invoices", in, &raw)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusConflict && strings.HasPrefix(ae.problem.Detail, "nothing to invoice") {
		if asJSON {
			fmt.Fprintln(stdout, `{"nothing_to_invoice":true}`)
		} else {
			fmt.Fprintf(stdout, "nothing to invoice for %s in %s: every price's usage is billed\n", in.Customer, in.Period)
		}
		return nil
	}
	if err != nil {
		return withFields(err)
	}
	var s synced
	_ = json.Unmarshal(raw, &s)
	var werr error
	if !noWait {
		raw, werr = waitSynced(ctx, c, "/v1/billing/invoices/"+s.ID, raw)
	}
	if raw == nil {
		return werr
	}
	if asJSON {
		fmt.Fprintln(stdout, string(raw))
		return werr
	}
	var inv struct {
		ID              string  `json:"id"`
		Customer        string  `json:"customer"`
		Period          string  `json:"period"`
		Revision        int     `json:"revision"`
		Currency        string  `json:"currency"`
		Total           int64   `json:"total"`
		Status          string  `json:"status"`
		StripeInvoiceID *string `json:"stripe_invoice_id"`
		Lines           []struct {
			Line       int         `json:"line"`
			Meter      string      `json:"meter"`
			Kind       string      `json:"kind"`
			Quantity   json.Number `json:"quantity"`
			UnitAmount json.Number `json:"unit_amount"`
			Amount     int64       `json:"amount"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(raw, &inv); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "invoice %s (revision %d) for %s, %s: %s, Stripe invoice %s\n", inv.ID, inv.Revision, inv.Customer, inv.Period,
		inv.Status, orDash(inv.StripeInvoiceID))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tMETER\tKIND\tQUANTITY\tUNIT_AMOUNT\tAMOUNT")
	for _, l := range inv.Lines {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\n", l.Line, l.Meter, l.Kind, l.Quantity, l.UnitAmount, l.Amount)
	}
	fmt.Fprintf(tw, "\t\t\t\ttotal\t%d %s\n", inv.Total, inv.Currency)
	if err := tw.Flush(); err != nil {
		return err
	}
	return werr
}

func billingReconcile(ctx context.Context, e env, rq billing.ReconcileQuery, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	q := url.Values{"period": {rq.Period}}
	if rq.TZ != "" {
		q.Set("tz", rq.TZ)
	}
	if rq.Customer != "" {
		q.Set("customer", rq.Customer)
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/v1/billing/reconciliation?"+q.Encode(), nil, &raw); err != nil {
		return withFields(err)
	}
	var rec struct {
		Period      string `json:"period"`
		Checked     int    `json:"checked"`
		Differences []struct {
			Customer   string      `json:"customer"`
			Meter      string      `json:"meter"`
			Difference json.Number `json:"difference"`
			Detail     string      `json:"detail"`
		} `json:"differences"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return err
	}
	if asJSON {
		fmt.Fprintln(stdout, string(raw))
	} else {
		for _, d := range rec.Differences {
			fmt.Fprintf(stdout, "DIFF  %s %s: %s (difference %s)\n", d.Customer, d.Meter, d.Detail, d.Difference)
		}
		fmt.Fprintf(stdout, "%s: %d price(s) and customer(s) checked, %d difference(s)\n", rec.Period, rec.Checked, len(rec.Differences))
	}
	if len(rec.Differences) > 0 {
		return exitError{code: 1}
	}
	return nil
}
