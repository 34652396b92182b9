package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	stripe "github.com/stripe/stripe-go/v85"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/problem"
)

// Statuses of an invoice.
const (
	InvoicePending   = "pending"
	InvoiceFinalized = "finalized"
	InvoiceFailed    = "failed"
)

// Kinds of an invoice line.
const (
	// LineUsage bills a price's usage of the period for the first time.
	LineUsage = "usage"
	// LineAdjustment bills what changed since (a correction, a late
	// event), or, for a stripe_meter price, what Stripe's meter does not
	// hold. It may be negative: a credit.
	LineAdjustment = "adjustment"
)

// InvoiceInput is the body of POST /v1/billing/invoices.
type InvoiceInput struct {
	Customer string `json:"customer"`
	// Period is a calendar month, 2026-11.
	Period string `json:"period"`
	// TZ is the IANA time zone the month is cut in. Defaults to UTC.
	TZ string `json:"tz"`
	// Currency selects the prices billed when they are in several
	// currencies.
	Currency string `json:"currency"`
}

// Invoice is an invoice PROST made in Stripe.
type Invoice struct {
	ID               uuid.UUID     `json:"id"`
	Customer         string        `json:"customer"`
	Period           string        `json:"period"`
	TZ               string        `json:"tz"`
	PeriodStart      time.Time     `json:"period_start"`
	PeriodEnd        time.Time     `json:"period_end"`
	Revision         int           `json:"revision"`
	Currency         string        `json:"currency"`
	Total            int64         `json:"total"`
	Status           string        `json:"status"`
	StripeCustomerID string        `json:"stripe_customer_id"`
	StripeInvoiceID  *string       `json:"stripe_invoice_id"`
	Error            string        `json:"error,omitempty"`
	Lines            []InvoiceLine `json:"lines"`
	CreatedAt        time.Time     `json:"created_at"`
	FinalizedAt      *time.Time    `json:"finalized_at"`
	PaidAt           *time.Time    `json:"paid_at"`
}

// InvoiceLine is one invoice item: a price's usage (quantity) times its
// unit amount, rounded to the currency's minor unit.
type InvoiceLine struct {
	Line                int       `json:"line"`
	Price               uuid.UUID `json:"price"`
	Meter               string    `json:"meter"`
	Kind                string    `json:"kind"`
	Quantity            Decimal   `json:"quantity"`
	UnitAmount          Decimal   `json:"unit_amount"`
	Amount              int64     `json:"amount"`
	Description         string    `json:"description"`
	StripeInvoiceItemID *string   `json:"stripe_invoice_item_id"`
}

// periodBounds reads a calendar month (2026-11) in zone tz.
func periodBounds(period, tz string) (start, end time.Time, err error) {
	if tz == "" {
		tz = "UTC"
	}
	loc, lerr := time.LoadLocation(tz)
	if lerr != nil || tz == "Local" {
		return start, end, problem.InvalidField("/tz", "an IANA time zone, such as Europe/Berlin or UTC")
	}
	t, perr := time.ParseInLocation("2006-01", period, loc)
	if perr != nil {
		return start, end, problem.InvalidField("/period", "a calendar month, such as 2026-11")
	}
	return t, t.AddDate(0, 1, 0), nil
}

// planned is what one price bills for a customer and period.
type planned struct {
	price      billingdb.BillablePricesRow
	meter      Meter
	unit       decimal.Decimal
	usage      decimal.Decimal  // PROST's usage of the period
	stripeHeld *decimal.Decimal // what the Stripe meter holds (stripe_meter prices)
	invoiced   decimal.Decimal  // billed by earlier invoices of the period
	quantity   decimal.Decimal  // usage - stripeHeld - invoiced: still to bill
	note       string
}

// plan works out, for every price of the App, what is still to bill for a
// customer's usage of [start, end).
func (s *Service) plan(ctx context.Context, sc *stripe.Client, tenant uuid.UUID, customer, period string, start, end time.Time) ([]planned, error) {
	prices, err := s.q.BillablePrices(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("billing: read prices: %w", err)
	}
	billed, err := s.q.BilledQuantities(ctx, billingdb.BilledQuantitiesParams{TenantID: tenant, Customer: customer, Period: period})
	if err != nil {
		return nil, fmt.Errorf("billing: read invoiced quantities: %w", err)
	}
	invoiced := map[uuid.UUID]decimal.Decimal{}
	for _, b := range billed {
		invoiced[b.PriceID], _ = fromNumeric(b.Quantity)
	}
	cust, cerr := s.q.GetCustomer(ctx, billingdb.GetCustomerParams{TenantID: tenant, Customer: customer})
	var out []planned
	for _, p := range prices {
		mrow, err := s.q.GetMeterByID(ctx, p.MeterID)
		if err != nil {
			return nil, err
		}
		m, err := meterFrom(mrow)
		if err != nil {
			return nil, err
		}
		pl := planned{price: p, meter: m, invoiced: invoiced[p.PriceID]}
		pl.unit, _ = fromNumeric(p.UnitAmount)
		if pl.usage, err = s.total(ctx, &m, customer, start, end); err != nil {
			return nil, err
		}
		if p.Billing == BillingStripeMeter {
			held := decimal.Zero
			sm, err := s.q.GetStripeMeter(ctx, p.MeterID)
			switch {
			case errors.Is(err, pgx.ErrNoRows) || (err == nil && sm.StripeMeterID == nil):
				pl.note = "the price's Stripe meter is not made yet"
			case err != nil:
				return nil, err
			case cerr != nil || cust.StripeCustomerID == nil:
				pl.note = "the customer is not mapped to a Stripe customer"
			case sc == nil:
				return nil, ErrNotConnected
			default:
				d, err := summaryTotal(ctx, sc, *sm.StripeMeterID, *cust.StripeCustomerID, start, end)
				if err != nil {
					return nil, problem.Errorf(problem.Unavailable, "cannot read Stripe's meter event summaries: %s", describeStripeError(err))
				}
				held = d.Decimal
			}
			pl.stripeHeld = &held
			pl.quantity = pl.usage.Sub(held).Sub(pl.invoiced)
		} else {
			pl.quantity = pl.usage.Sub(pl.invoiced)
		}
		out = append(out, pl)
	}
	return out, nil
}

// CreateInvoice bills a customer's usage of a month: for each price, what
// the usage query gives for the customer and month minus what earlier
// invoices of the month billed (and, for a stripe_meter price, minus what
// Stripe's meter holds), as one invoice item each, on one invoice that a
// job makes and finalizes in Stripe (status pending until then). A first
// invoice's lines equal the usage query; a later one bills only what
// changed. Errors: ErrNothingToInvoice, ErrInvoicePending.
func (s *Service) CreateInvoice(ctx context.Context, tenant uuid.UUID, in InvoiceInput) (Invoice, error) {
	if in.Customer == "" || len(in.Customer) > MaxCustomerLen {
		return Invoice{}, problem.InvalidField("/customer", "the PROST customer id to invoice")
	}
	if in.TZ == "" {
		in.TZ = "UTC"
	}
	start, end, err := periodBounds(in.Period, in.TZ)
	if err != nil {
		return Invoice{}, err
	}
	cust, err := s.q.GetCustomer(ctx, billingdb.GetCustomerParams{TenantID: tenant, Customer: in.Customer})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && cust.StripeCustomerID == nil) {
		return Invoice{}, problem.InvalidField("/customer", fmt.Sprintf("customer %q is not mapped to a Stripe customer: PUT /v1/billing/customers/{customer} first", in.Customer))
	}
	if err != nil {
		return Invoice{}, err
	}
	sc, _, err := s.client(ctx, s.q, tenant)
	if err != nil {
		return Invoice{}, err
	}
	earlier, err := s.q.InvoicesOfPeriod(ctx, billingdb.InvoicesOfPeriodParams{TenantID: tenant, Customer: in.Customer, Period: in.Period})
	if err != nil {
		return Invoice{}, err
	}
	for _, e := range earlier {
		if e.Status == InvoicePending {
			return Invoice{}, fmt.Errorf("%w (invoice %s)", ErrInvoicePending, e.InvoiceID)
		}
		if e.Tz != in.TZ {
			return Invoice{}, problem.InvalidField("/tz", fmt.Sprintf("period %s of this customer was invoiced in %s; use the same time zone", in.Period, e.Tz))
		}
	}
	plan, err := s.plan(ctx, sc, tenant, in.Customer, in.Period, start, end)
	if err != nil {
		return Invoice{}, err
	}
	var lines []planned
	currencies := map[string]bool{}
	for _, p := range plan {
		if p.quantity.IsZero() || (in.Currency != "" && p.price.Currency != in.Currency) {
			continue
		}
		currencies[p.price.Currency] = true
		lines = append(lines, p)
	}
	if len(lines) == 0 {
		return Invoice{}, ErrNothingToInvoice
	}
	if len(currencies) > 1 {
		return Invoice{}, problem.InvalidField("/currency", "the prices to bill are in several currencies; invoice one currency at a time")
	}
	currency := lines[0].price.Currency
	var total int64
	rows := make([]billingdb.InsertInvoiceLineParams, len(lines))
	for i, p := range lines {
		amount := p.quantity.Mul(p.unit).Round(0)
		if !amount.IsInteger() || amount.Abs().GreaterThan(decimal.NewFromInt(math.MaxInt64/4)) {
			return Invoice{}, problem.Errorf(problem.Invalid, "the amount of price %s is out of range", p.price.PriceID)
		}
		kind := LineUsage
		if !p.invoiced.IsZero() || p.stripeHeld != nil {
			kind = LineAdjustment
		}
		rows[i] = billingdb.InsertInvoiceLineParams{Line: int32(i + 1), TenantID: tenant, PriceID: p.price.PriceID, MeterID: p.price.MeterID, //nolint:gosec // few lines
			Kind: kind, Quantity: numeric(p.quantity), UnitAmount: numeric(p.unit), Amount: amount.IntPart(),
			Description: fmt.Sprintf("%s %s: %s × %s (%s)", in.Period, p.meter.Slug, p.quantity, p.unit, kind)}
		total += amount.IntPart()
	}
	var row billingdb.BillingInvoice
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := billingdb.New(tx)
		var err error
		row, err = q.InsertInvoice(ctx, billingdb.InsertInvoiceParams{InvoiceID: uuid.Must(uuid.NewV7()), TenantID: tenant, Customer: in.Customer,
			Period: in.Period, Tz: in.TZ, PeriodStart: start, PeriodEnd: end, Revision: int32(len(earlier) + 1), Currency: currency, //nolint:gosec // few invoices
			Total: total, StripeCustomerID: *cust.StripeCustomerID})
		if err != nil {
			return err
		}
		for i := range rows {
			rows[i].InvoiceID = row.InvoiceID
			if err := q.InsertInvoiceLine(ctx, rows[i]); err != nil {
				return err
			}
		}
		args, _ := json.Marshal(idArgs{ID: row.InvoiceID})
		_, _, err = jobs.Insert(ctx, tx, jobs.InsertParams{TenantID: &tenant, Kind: KindStripeInvoice, Args: args,
			UniqueKey: row.InvoiceID.String(), MaxAttempts: stripeJobAttempts})
		return err
	})
	if isUniqueViolation(err) {
		return Invoice{}, ErrInvoicePending // another run for the same period won the race
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("billing: create invoice: %w", err)
	}
	return s.invoiceFrom(ctx, row)
}

// Invoice returns one invoice with its lines.
func (s *Service) Invoice(ctx context.Context, tenant, id uuid.UUID) (Invoice, error) {
	row, err := s.q.GetInvoice(ctx, billingdb.GetInvoiceParams{TenantID: tenant, InvoiceID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Invoice{}, ErrInvoiceNotFound
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("billing: get invoice: %w", err)
	}
	return s.invoiceFrom(ctx, row)
}

// InvoiceFilter selects invoices.
type InvoiceFilter struct {
	Customer, Period string
}

// Invoices lists the App's invoices, a page at a time.
func (s *Service) Invoices(ctx context.Context, tenant uuid.UUID, f InvoiceFilter, after string, limit int) ([]Invoice, string, error) {
	limit = pageSize(limit)
	a, err := parseIDCursor("i", after)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.q.ListInvoices(ctx, billingdb.ListInvoicesParams{TenantID: tenant, Customer: f.Customer, Period: f.Period, AfterID: a,
		MaxRows: int32(limit + 1)}) //nolint:gosec // at most 1001
	if err != nil {
		return nil, "", fmt.Errorf("billing: list invoices: %w", err)
	}
	var next string
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.String("i", rows[len(rows)-1].InvoiceID.String())
	}
	out := make([]Invoice, len(rows))
	for i, r := range rows {
		if out[i], err = s.invoiceFrom(ctx, r); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

func (s *Service) invoiceFrom(ctx context.Context, r billingdb.BillingInvoice) (Invoice, error) {
	inv := Invoice{ID: r.InvoiceID, Customer: r.Customer, Period: r.Period, TZ: r.Tz, PeriodStart: r.PeriodStart, PeriodEnd: r.PeriodEnd,
		Revision: int(r.Revision), Currency: r.Currency, Total: r.Total, Status: r.Status, StripeCustomerID: r.StripeCustomerID,
		StripeInvoiceID: r.StripeInvoiceID, Error: r.Error, CreatedAt: r.CreatedAt, FinalizedAt: r.FinalizedAt, PaidAt: r.PaidAt,
		Lines: []InvoiceLine{}}
	if loc, err := time.LoadLocation(r.Tz); err == nil {
		inv.PeriodStart, inv.PeriodEnd = r.PeriodStart.In(loc), r.PeriodEnd.In(loc)
	}
	lines, err := s.q.InvoiceLines(ctx, r.InvoiceID)
	if err != nil {
		return Invoice{}, fmt.Errorf("billing: invoice lines: %w", err)
	}
	slugs := map[uuid.UUID]string{}
	for _, l := range lines {
		slug, ok := slugs[l.MeterID]
		if !ok {
			m, err := s.q.GetMeterByID(ctx, l.MeterID)
			if err != nil {
				return Invoice{}, err
			}
			slug, slugs[l.MeterID] = m.Slug, m.Slug
		}
		q, _ := fromNumeric(l.Quantity)
		u, _ := fromNumeric(l.UnitAmount)
		inv.Lines = append(inv.Lines, InvoiceLine{Line: int(l.Line), Price: l.PriceID, Meter: slug, Kind: l.Kind, Quantity: Decimal{q},
			UnitAmount: Decimal{u}, Amount: l.Amount, Description: l.Description, StripeInvoiceItemID: l.StripeInvoiceItemID})
	}
	return inv, nil
}

// RunInvoice is the jobs.Handler of KindStripeInvoice: it makes the invoice
// in Stripe (a draft that takes no pending items but its own), adds one
// invoice item per line, and finalizes it so Stripe collects it. Each step
// records what Stripe made and carries an idempotency key derived from the
// invoice id (and line), so a retry resumes where the last attempt stopped
// and never makes a second invoice or item.
func (s *Service) RunInvoice(ctx context.Context, j *jobs.Job) error {
	var a idArgs
	if err := json.Unmarshal(j.Args, &a); err != nil || j.TenantID == nil {
		return jobs.Cancel(fmt.Errorf("billing: unreadable invoice job args: %v", err))
	}
	tenant := *j.TenantID
	inv, err := s.q.GetInvoice(ctx, billingdb.GetInvoiceParams{TenantID: tenant, InvoiceID: a.ID})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && inv.Status != InvoicePending) {
		return nil
	}
	if err != nil {
		return err
	}
	sc, _, err := s.client(ctx, s.q, tenant)
	if err != nil {
		return s.failSync(ctx, j, err)
	}
	id := inv.InvoiceID.String()
	meta := map[string]string{"prost_app": tenant.String(), "prost_invoice": id, "prost_customer": inv.Customer, "prost_period": inv.Period}
	if inv.StripeInvoiceID == nil {
		p := &stripe.InvoiceCreateParams{Customer: stripe.String(inv.StripeCustomerID), Currency: stripe.String(inv.Currency),
			AutoAdvance: stripe.Bool(false), CollectionMethod: stripe.String("charge_automatically"),
			PendingInvoiceItemsBehavior: stripe.String("exclude"), Metadata: meta,
			Description: stripe.String(fmt.Sprintf("Usage %s (PROST invoice %s, revision %d)", inv.Period, id, inv.Revision))}
		p.SetIdempotencyKey(idemKey("invoice", id))
		si, err := sc.V1Invoices.Create(ctx, p)
		if err != nil {
			return s.failSync(ctx, j, err)
		}
		if err := s.q.SetInvoiceStripeID(ctx, billingdb.SetInvoiceStripeIDParams{InvoiceID: inv.InvoiceID, StripeInvoiceID: &si.ID}); err != nil {
			return err
		}
		inv.StripeInvoiceID = &si.ID
	}
	lines, err := s.q.InvoiceLines(ctx, inv.InvoiceID)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if l.StripeInvoiceItemID != nil {
			continue
		}
		q, _ := fromNumeric(l.Quantity)
		u, _ := fromNumeric(l.UnitAmount)
		m := map[string]string{"prost_invoice": id, "prost_line": strconv.Itoa(int(l.Line)), "prost_price": l.PriceID.String(),
			"prost_meter": l.MeterID.String(), "prost_quantity": q.String(), "prost_unit_amount": u.String(), "prost_period": inv.Period}
		p := &stripe.InvoiceItemCreateParams{Customer: stripe.String(inv.StripeCustomerID), Invoice: inv.StripeInvoiceID,
			Currency: stripe.String(inv.Currency), Amount: stripe.Int64(l.Amount), Description: stripe.String(l.Description), Metadata: m}
		p.SetIdempotencyKey(idemKey("invoice", id, "line", strconv.Itoa(int(l.Line))))
		item, err := sc.V1InvoiceItems.Create(ctx, p)
		if err != nil {
			return s.failSync(ctx, j, err)
		}
		if err := s.q.SetInvoiceLineItem(ctx, billingdb.SetInvoiceLineItemParams{InvoiceID: inv.InvoiceID, Line: l.Line, StripeInvoiceItemID: &item.ID}); err != nil {
			return err
		}
	}
	fp := &stripe.InvoiceFinalizeInvoiceParams{AutoAdvance: stripe.Bool(true)}
	fp.SetIdempotencyKey(idemKey("invoice", id, "finalize"))
	if _, err := sc.V1Invoices.FinalizeInvoice(ctx, *inv.StripeInvoiceID, fp); err != nil {
		return s.failSync(ctx, j, err)
	}
	return s.q.FinalizeInvoice(ctx, inv.InvoiceID)
}
