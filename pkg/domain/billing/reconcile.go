package billing

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	stripe "github.com/stripe/stripe-go/v85"

	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/problem"
)

// ReconcileQuery selects what to reconcile: a month, and one customer or
// every customer with usage or an invoice in it.
type ReconcileQuery struct {
	Period   string
	TZ       string
	Customer string
}

// Difference is one price and customer whose usage in PROST is not what
// Stripe holds for the period.
type Difference struct {
	Customer string    `json:"customer"`
	Meter    string    `json:"meter"`
	Price    uuid.UUID `json:"price"`
	Billing  string    `json:"billing"`
	// Usage is PROST's usage of the period (corrections applied).
	Usage Decimal `json:"usage"`
	// StripeMeter is what the Stripe meter's event summaries hold
	// (stripe_meter prices only).
	StripeMeter *Decimal `json:"stripe_meter,omitempty"`
	// Invoiced is the quantity PROST's invoices of the period billed.
	Invoiced Decimal `json:"invoiced"`
	// Difference is Usage - StripeMeter - Invoiced: what Stripe is missing
	// (negative: what it holds too much of).
	Difference Decimal `json:"difference"`
	Detail     string  `json:"detail"`
}

// Reconciliation is the answer of a reconciliation.
type Reconciliation struct {
	Period      string       `json:"period"`
	TZ          string       `json:"tz"`
	From        time.Time    `json:"from"`
	To          time.Time    `json:"to"`
	Checked     int          `json:"checked"`
	Differences []Difference `json:"differences"`
}

// Reconcile compares, for each price and customer, PROST's usage of the
// period with what Stripe holds for it: the quantities of PROST's invoices
// of the period, and for stripe_meter prices what Stripe's meter event
// summaries hold. Every pair that does not match is a Difference; checked
// counts the pairs compared.
func (s *Service) Reconcile(ctx context.Context, tenant uuid.UUID, rq ReconcileQuery) (Reconciliation, error) {
	if rq.TZ == "" {
		rq.TZ = "UTC"
	}
	start, end, err := periodBounds(rq.Period, rq.TZ)
	if err != nil {
		return Reconciliation{}, err
	}
	out := Reconciliation{Period: rq.Period, TZ: rq.TZ, From: start, To: end, Differences: []Difference{}}
	prices, err := s.q.BillablePrices(ctx, tenant)
	if err != nil {
		return Reconciliation{}, fmt.Errorf("billing: read prices: %w", err)
	}
	if len(prices) == 0 {
		return out, nil
	}
	var sc *stripe.Client
	for _, p := range prices {
		if p.Billing == BillingStripeMeter {
			if sc, _, err = s.client(ctx, s.q, tenant); err != nil {
				return Reconciliation{}, err
			}
			break
		}
	}
	customers := []string{rq.Customer}
	if rq.Customer == "" {
		if customers, err = s.customersOf(ctx, tenant, prices, rq.Period, start, end); err != nil {
			return Reconciliation{}, err
		}
	}
	for _, c := range customers {
		plan, err := s.plan(ctx, sc, tenant, c, rq.Period, start, end)
		if err != nil {
			return Reconciliation{}, err
		}
		for _, p := range plan {
			out.Checked++
			if p.quantity.IsZero() {
				continue
			}
			d := Difference{Customer: c, Meter: p.meter.Slug, Price: p.price.PriceID, Billing: p.price.Billing, Usage: Decimal{p.usage},
				Invoiced: Decimal{p.invoiced}, Difference: Decimal{p.quantity}}
			held := p.invoiced
			if p.stripeHeld != nil {
				d.StripeMeter = &Decimal{*p.stripeHeld}
				held = held.Add(*p.stripeHeld)
			}
			d.Detail = describeDifference(p, held)
			out.Differences = append(out.Differences, d)
		}
	}
	return out, nil
}

func describeDifference(p planned, held decimal.Decimal) string {
	what := fmt.Sprintf("PROST counts %s but Stripe holds %s", p.usage, held)
	if p.stripeHeld != nil {
		what += fmt.Sprintf(" (meter events %s, invoiced %s)", *p.stripeHeld, p.invoiced)
	} else {
		what += fmt.Sprintf(" (invoiced %s)", p.invoiced)
	}
	switch {
	case p.note != "":
		what += "; " + p.note
	case held.IsZero():
		what += "; not billed yet: prost billing invoice bills it"
	default:
		what += "; a correction or late usage Stripe has not seen: prost billing invoice bills the difference"
	}
	return what
}

// customersOf lists the customers with usage of a priced meter in the
// period or an invoice of the period.
func (s *Service) customersOf(ctx context.Context, tenant uuid.UUID, prices []billingdb.BillablePricesRow, period string, start, end time.Time) ([]string, error) {
	ids := make([]uuid.UUID, 0, len(prices))
	for _, p := range prices {
		ids = append(ids, p.MeterID)
	}
	used, err := s.q.UsageCustomers(ctx, billingdb.UsageCustomersParams{TenantID: tenant, MeterIds: ids, FromTime: start, ToTime: end})
	if err != nil {
		return nil, fmt.Errorf("billing: usage customers: %w", err)
	}
	invoiced, err := s.q.InvoicedCustomers(ctx, billingdb.InvoicedCustomersParams{TenantID: tenant, Period: period})
	if err != nil {
		return nil, fmt.Errorf("billing: invoiced customers: %w", err)
	}
	all := append(used, invoiced...)
	slices.Sort(all)
	all = slices.Compact(all)
	if len(all) > 10_000 {
		return nil, problem.Errorf(problem.Invalid, "more than 10000 customers in %s: reconcile one customer at a time", period)
	}
	return all, nil
}
