package billing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
	stripe "github.com/stripe/stripe-go/v85"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/problem"
)

// Sync statuses of customers, products and prices.
const (
	SyncPending = "pending"
	SyncSynced  = "synced"
	SyncFailed  = "failed"
)

// Billing modes of a price.
const (
	// BillingInvoice: prost billing invoice prices the usage as invoice
	// items on an invoice PROST makes.
	BillingInvoice = "invoice"
	// BillingStripeMeter: the usage goes to a Stripe Billing Meter as meter
	// events and Stripe's subscriptions price it; PROST invoices only what
	// Stripe could not take.
	BillingStripeMeter = "stripe_meter"
)

// stripeJobAttempts is how many attempts a Stripe job gets (about four
// hours with the job engine's backoff).
const stripeJobAttempts = 10

// Customer maps a PROST customer id to a Stripe customer.
type Customer struct {
	Customer         string    `json:"customer"`
	Email            string    `json:"email,omitempty"`
	Name             string    `json:"name,omitempty"`
	StripeCustomerID *string   `json:"stripe_customer_id"`
	Status           string    `json:"status"`
	Error            string    `json:"error,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// CustomerInput is the body of PUT /v1/billing/customers/{customer}: an
// existing Stripe customer to map to, or the email and name of one to make.
type CustomerInput struct {
	StripeCustomerID string `json:"stripe_customer_id"`
	Email            string `json:"email"`
	Name             string `json:"name"`
}

var emailish = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)

// PutCustomer maps a PROST customer id. With stripe_customer_id it maps to
// that customer (checked with one call to Stripe); without it, a job makes
// the customer in Stripe. A customer already mapped keeps its Stripe
// customer. created is true when the mapping is new.
func (s *Service) PutCustomer(ctx context.Context, tenant uuid.UUID, customer string, in CustomerInput) (Customer, bool, error) {
	var fields []problem.FieldError
	if customer == "" || len(customer) > MaxCustomerLen {
		return Customer{}, false, problem.BadPathParam("customer", fmt.Sprintf("a customer id of 1 to %d bytes", MaxCustomerLen))
	}
	if in.StripeCustomerID != "" && (!strings.HasPrefix(in.StripeCustomerID, "cus_") || len(in.StripeCustomerID) > 255) {
		fields = append(fields, problem.FieldError{Field: "/stripe_customer_id", Detail: "a Stripe customer id: cus_..."})
	}
	if in.Email != "" && (!emailish.MatchString(in.Email) || len(in.Email) > 512) {
		fields = append(fields, problem.FieldError{Field: "/email", Detail: "an email address"})
	}
	if len(in.Name) > 256 {
		fields = append(fields, problem.FieldError{Field: "/name", Detail: "at most 256 bytes"})
	}
	if len(fields) > 0 {
		return Customer{}, false, &problem.Error{Kind: problem.Invalid, Msg: "the customer is invalid", Fields: fields}
	}
	sc, _, err := s.client(ctx, s.q, tenant)
	if err != nil {
		return Customer{}, false, err
	}
	if in.StripeCustomerID != "" {
		if _, err := sc.V1Customers.Retrieve(ctx, in.StripeCustomerID, nil); err != nil {
			if permanentStripe(err) {
				return Customer{}, false, problem.InvalidField("/stripe_customer_id", describeStripeError(err))
			}
			return Customer{}, false, problem.Errorf(problem.Unavailable, "cannot check the Stripe customer: %s", describeStripeError(err))
		}
	}
	var row billingdb.BillingCustomer
	created := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := billingdb.New(tx)
		old, err := q.GetCustomer(ctx, billingdb.GetCustomerParams{TenantID: tenant, Customer: customer})
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			created = true
		case err != nil:
			return err
		}
		p := billingdb.UpsertCustomerParams{TenantID: tenant, Customer: customer, Email: in.Email, Name: in.Name, Status: SyncPending}
		switch {
		case in.StripeCustomerID != "":
			p.StripeCustomerID, p.Status = &in.StripeCustomerID, SyncSynced
		case !created && old.StripeCustomerID != nil:
			p.StripeCustomerID, p.Status = old.StripeCustomerID, SyncSynced
		}
		if row, err = q.UpsertCustomer(ctx, p); err != nil {
			return err
		}
		if p.Status != SyncPending {
			return nil
		}
		args, _ := json.Marshal(customerArgs{Customer: customer})
		_, _, err = jobs.Insert(ctx, tx, jobs.InsertParams{TenantID: &tenant, Kind: KindStripeCustomer, Args: args,
			UniqueKey: customer, MaxAttempts: stripeJobAttempts})
		return err
	})
	if err != nil {
		if isUniqueViolation(err) {
			return Customer{}, false, problem.InvalidField("/stripe_customer_id", "another PROST customer of this App is mapped to "+in.StripeCustomerID)
		}
		return Customer{}, false, fmt.Errorf("billing: put customer: %w", err)
	}
	return customerFrom(row), created, nil
}

// Customer returns one mapping.
func (s *Service) Customer(ctx context.Context, tenant uuid.UUID, customer string) (Customer, error) {
	row, err := s.q.GetCustomer(ctx, billingdb.GetCustomerParams{TenantID: tenant, Customer: customer})
	if errors.Is(err, pgx.ErrNoRows) {
		return Customer{}, ErrCustomerNotFound
	}
	if err != nil {
		return Customer{}, fmt.Errorf("billing: get customer: %w", err)
	}
	return customerFrom(row), nil
}

// Customers lists the App's mappings by customer id, a page at a time.
func (s *Service) Customers(ctx context.Context, tenant uuid.UUID, after string, limit int) ([]Customer, string, error) {
	limit = pageSize(limit)
	a, err := cursor.ParseString("c", after)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.q.ListCustomers(ctx, billingdb.ListCustomersParams{TenantID: tenant, AfterCustomer: a, MaxRows: int32(limit + 1)}) //nolint:gosec // at most 1001
	if err != nil {
		return nil, "", fmt.Errorf("billing: list customers: %w", err)
	}
	var next string
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.String("c", rows[len(rows)-1].Customer)
	}
	out := make([]Customer, len(rows))
	for i, r := range rows {
		out[i] = customerFrom(r)
	}
	return out, next, nil
}

func customerFrom(r billingdb.BillingCustomer) Customer {
	return Customer{Customer: r.Customer, Email: r.Email, Name: r.Name, StripeCustomerID: r.StripeCustomerID, Status: r.Status,
		Error: r.Error, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

type customerArgs struct {
	Customer string `json:"customer"`
}

// idemKey derives a Stripe idempotency key from PROST ids (at most 255
// bytes: long parts are hashed).
func idemKey(parts ...string) string {
	k := "prost-" + strings.Join(parts, "-")
	if len(k) <= 200 {
		return k
	}
	h := sha256.Sum256([]byte(k))
	return "prost-" + parts[0] + "-" + hex.EncodeToString(h[:])
}

// RunCustomer is the jobs.Handler of KindStripeCustomer: it makes the
// customer in Stripe.
func (s *Service) RunCustomer(ctx context.Context, j *jobs.Job) error {
	var a customerArgs
	if err := json.Unmarshal(j.Args, &a); err != nil || j.TenantID == nil {
		return jobs.Cancel(fmt.Errorf("billing: unreadable customer job args: %v", err))
	}
	tenant := *j.TenantID
	row, err := s.q.GetCustomer(ctx, billingdb.GetCustomerParams{TenantID: tenant, Customer: a.Customer})
	// Made already; a failed one is tried again when its dead letter is replayed.
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.Status == SyncSynced) {
		return nil
	}
	if err != nil {
		return err
	}
	sc, _, err := s.client(ctx, s.q, tenant)
	if err != nil {
		return s.failSync(ctx, j, err)
	}
	p := &stripe.CustomerCreateParams{Metadata: map[string]string{"prost_app": tenant.String(), "prost_customer": a.Customer}}
	if row.Email != "" {
		p.Email = stripe.String(row.Email)
	}
	if row.Name != "" {
		p.Name = stripe.String(row.Name)
	}
	p.SetIdempotencyKey(idemKey("customer", tenant.String(), a.Customer))
	c, err := sc.V1Customers.Create(ctx, p)
	if err != nil {
		return s.failSync(ctx, j, err)
	}
	return s.q.SetCustomerStripe(ctx, billingdb.SetCustomerStripeParams{TenantID: tenant, Customer: a.Customer, StripeCustomerID: &c.ID})
}

// Product is something the App sells, mirrored in Stripe.
type Product struct {
	ID              uuid.UUID `json:"id"`
	Name            string    `json:"name"`
	Description     string    `json:"description,omitempty"`
	StripeProductID *string   `json:"stripe_product_id"`
	Status          string    `json:"status"`
	Error           string    `json:"error,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// ProductInput is the body of POST /v1/billing/products.
type ProductInput struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// CreateProduct stores a product and queues the job that makes it in
// Stripe (status pending until then).
func (s *Service) CreateProduct(ctx context.Context, tenant uuid.UUID, in ProductInput) (Product, error) {
	if in.Name == "" || len(in.Name) > 250 {
		return Product{}, problem.InvalidField("/name", "the product's name, 1 to 250 bytes")
	}
	if len(in.Description) > maxDescription {
		return Product{}, problem.InvalidField("/description", fmt.Sprintf("at most %d bytes", maxDescription))
	}
	if err := s.requireConnection(ctx, tenant); err != nil {
		return Product{}, err
	}
	var row billingdb.BillingProduct
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		row, err = billingdb.New(tx).InsertProduct(ctx, billingdb.InsertProductParams{ProductID: uuid.Must(uuid.NewV7()), TenantID: tenant,
			Name: in.Name, Description: in.Description})
		if err != nil {
			return err
		}
		args, _ := json.Marshal(idArgs{ID: row.ProductID})
		_, _, err = jobs.Insert(ctx, tx, jobs.InsertParams{TenantID: &tenant, Kind: KindStripeProduct, Args: args,
			UniqueKey: row.ProductID.String(), MaxAttempts: stripeJobAttempts})
		return err
	})
	if err != nil {
		return Product{}, fmt.Errorf("billing: create product: %w", err)
	}
	return productFrom(row), nil
}

// Product returns one product.
func (s *Service) Product(ctx context.Context, tenant, id uuid.UUID) (Product, error) {
	row, err := s.q.GetProduct(ctx, billingdb.GetProductParams{TenantID: tenant, ProductID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Product{}, ErrProductNotFound
	}
	if err != nil {
		return Product{}, fmt.Errorf("billing: get product: %w", err)
	}
	return productFrom(row), nil
}

// Products lists the App's products, a page at a time.
func (s *Service) Products(ctx context.Context, tenant uuid.UUID, after string, limit int) ([]Product, string, error) {
	limit = pageSize(limit)
	a, err := parseIDCursor("p", after)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.q.ListProducts(ctx, billingdb.ListProductsParams{TenantID: tenant, AfterID: a, MaxRows: int32(limit + 1)}) //nolint:gosec // at most 1001
	if err != nil {
		return nil, "", fmt.Errorf("billing: list products: %w", err)
	}
	var next string
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.String("p", rows[len(rows)-1].ProductID.String())
	}
	out := make([]Product, len(rows))
	for i, r := range rows {
		out[i] = productFrom(r)
	}
	return out, next, nil
}

func productFrom(r billingdb.BillingProduct) Product {
	return Product{ID: r.ProductID, Name: r.Name, Description: r.Description, StripeProductID: r.StripeProductID, Status: r.Status,
		Error: r.Error, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

type idArgs struct {
	ID uuid.UUID `json:"id"`
}

// RunProduct is the jobs.Handler of KindStripeProduct.
func (s *Service) RunProduct(ctx context.Context, j *jobs.Job) error {
	var a idArgs
	if err := json.Unmarshal(j.Args, &a); err != nil || j.TenantID == nil {
		return jobs.Cancel(fmt.Errorf("billing: unreadable product job args: %v", err))
	}
	tenant := *j.TenantID
	row, err := s.q.GetProduct(ctx, billingdb.GetProductParams{TenantID: tenant, ProductID: a.ID})
	// Made already; a failed one is tried again when its dead letter is replayed.
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.Status == SyncSynced) {
		return nil
	}
	if err != nil {
		return err
	}
	sc, _, err := s.client(ctx, s.q, tenant)
	if err != nil {
		return s.failSync(ctx, j, err)
	}
	p := &stripe.ProductCreateParams{Name: stripe.String(row.Name), Metadata: map[string]string{"prost_app": tenant.String(), "prost_product": row.ProductID.String()}}
	if row.Description != "" {
		p.Description = stripe.String(row.Description)
	}
	p.SetIdempotencyKey(idemKey("product", row.ProductID.String()))
	pr, err := sc.V1Products.Create(ctx, p)
	if err != nil {
		return s.failSync(ctx, j, err)
	}
	return s.q.SetProductStripe(ctx, billingdb.SetProductStripeParams{ProductID: row.ProductID, StripeProductID: &pr.ID})
}

// Price bills one meter's usage.
type Price struct {
	ID      uuid.UUID `json:"id"`
	Product uuid.UUID `json:"product"`
	Meter   string    `json:"meter"`
	MeterID uuid.UUID `json:"meter_id"`
	// Currency is an ISO 4217 code in lower case (eur, usd).
	Currency string `json:"currency"`
	// UnitAmount is the price of one unit of usage in the currency's minor
	// unit (cents), exactly, like Stripe's unit_amount_decimal.
	UnitAmount    Decimal   `json:"unit_amount"`
	Billing       string    `json:"billing"`
	Interval      string    `json:"interval,omitempty"`
	StripePriceID *string   `json:"stripe_price_id"`
	Status        string    `json:"status"`
	Error         string    `json:"error,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// PriceInput is the body of POST /v1/billing/prices.
type PriceInput struct {
	Product    string  `json:"product"`
	Meter      string  `json:"meter"`
	Currency   string  `json:"currency"`
	UnitAmount Decimal `json:"unit_amount"`
	// Billing is invoice (the default) or stripe_meter.
	Billing string `json:"billing"`
	// Interval is the Stripe subscription interval of a stripe_meter price
	// (day, week, month, year; default month).
	Interval string `json:"interval"`
}

// stripeFormula is the Stripe Billing Meter formula of an aggregation; ""
// when Stripe has none.
func stripeFormula(a Aggregation) string {
	switch a {
	case Sum:
		return "sum"
	case Count:
		return "count"
	case Latest:
		return "last"
	}
	return ""
}

// CreatePrice checks and stores a price and queues the job that makes it
// (and, for a stripe_meter price, the meter's Stripe Billing Meter) in
// Stripe.
func (s *Service) CreatePrice(ctx context.Context, tenant uuid.UUID, in PriceInput) (Price, error) {
	var fields []problem.FieldError
	bad := func(f, d string) { fields = append(fields, problem.FieldError{Field: f, Detail: d}) }
	productID, err := uuid.Parse(in.Product)
	if err != nil {
		bad("/product", "the id of a product of this App (POST /v1/billing/products)")
	}
	in.Currency = strings.ToLower(in.Currency)
	if !regexp.MustCompile(`^[a-z]{3}$`).MatchString(in.Currency) {
		bad("/currency", "an ISO 4217 currency code, such as eur or usd")
	}
	if err := checkUnitAmount(in.UnitAmount.Decimal); err != nil {
		bad("/unit_amount", err.Error())
	}
	if in.Billing == "" {
		in.Billing = BillingInvoice
	}
	switch in.Billing {
	case BillingInvoice:
		if in.Interval != "" {
			bad("/interval", "only a stripe_meter price has an interval")
		}
	case BillingStripeMeter:
		if in.Interval == "" {
			in.Interval = "month"
		}
		if in.Interval != "day" && in.Interval != "week" && in.Interval != "month" && in.Interval != "year" {
			bad("/interval", "day, week, month or year")
		}
	default:
		bad("/billing", "invoice or stripe_meter")
	}
	m, err := s.Meter(ctx, tenant, in.Meter)
	if err != nil {
		bad("/meter", "the slug of a meter of this App")
	} else if in.Billing == BillingStripeMeter && stripeFormula(m.Aggregation) == "" {
		bad("/billing", fmt.Sprintf("a Stripe Billing Meter aggregates by sum, count or last; meter %s is %s: use billing invoice", m.Slug, m.Aggregation))
	} else if m.CustomerProperty == "" {
		bad("/meter", fmt.Sprintf("meter %s has no customer_property: usage must name its customer to be billed", m.Slug))
	}
	if len(fields) > 0 {
		return Price{}, &problem.Error{Kind: problem.Invalid, Msg: "the price is invalid", Fields: fields}
	}
	if _, err := s.Product(ctx, tenant, productID); err != nil {
		return Price{}, problem.InvalidField("/product", "the id of a product of this App (POST /v1/billing/products)")
	}
	if err := s.requireConnection(ctx, tenant); err != nil {
		return Price{}, err
	}
	var row billingdb.BillingPrice
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		row, err = billingdb.New(tx).InsertPrice(ctx, billingdb.InsertPriceParams{PriceID: uuid.Must(uuid.NewV7()), TenantID: tenant,
			ProductID: productID, MeterID: m.ID, Currency: in.Currency, UnitAmount: numeric(in.UnitAmount.Decimal), Billing: in.Billing,
			BillingInterval: nonEmpty(in.Interval)})
		if err != nil {
			return err
		}
		args, _ := json.Marshal(idArgs{ID: row.PriceID})
		_, _, err = jobs.Insert(ctx, tx, jobs.InsertParams{TenantID: &tenant, Kind: KindStripePrice, Args: args,
			UniqueKey: row.PriceID.String(), MaxAttempts: stripeJobAttempts})
		return err
	})
	if err != nil {
		return Price{}, fmt.Errorf("billing: create price: %w", err)
	}
	return priceFrom(row, m.Slug), nil
}

// checkUnitAmount accepts what Stripe's unit_amount_decimal takes exactly:
// at most 12 decimal places, and few enough digits that the float stripe-go
// sends round-trips to the same decimal.
func checkUnitAmount(d decimal.Decimal) error {
	if d.IsNegative() {
		return errors.New("must not be negative")
	}
	if -d.Exponent() > 12 && !d.Equal(d.Truncate(12)) {
		return errors.New("at most 12 decimal places (in the currency's minor unit, cents)")
	}
	f, _ := d.Float64()
	back, err := decimal.NewFromString(strconv.FormatFloat(f, 'f', -1, 64))
	if err != nil || !back.Equal(d) || len(d.Coefficient().String()) > 15 {
		return errors.New("at most 15 significant digits")
	}
	return nil
}

// Price returns one price.
func (s *Service) Price(ctx context.Context, tenant, id uuid.UUID) (Price, error) {
	row, err := s.q.GetPrice(ctx, billingdb.GetPriceParams{TenantID: tenant, PriceID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Price{}, ErrPriceNotFound
	}
	if err != nil {
		return Price{}, fmt.Errorf("billing: get price: %w", err)
	}
	m, err := s.q.GetMeterByID(ctx, row.MeterID)
	if err != nil {
		return Price{}, fmt.Errorf("billing: get price's meter: %w", err)
	}
	return priceFrom(row, m.Slug), nil
}

// Prices lists the App's prices, a page at a time.
func (s *Service) Prices(ctx context.Context, tenant uuid.UUID, after string, limit int) ([]Price, string, error) {
	limit = pageSize(limit)
	a, err := parseIDCursor("pr", after)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.q.ListPrices(ctx, billingdb.ListPricesParams{TenantID: tenant, AfterID: a, MaxRows: int32(limit + 1)}) //nolint:gosec // at most 1001
	if err != nil {
		return nil, "", fmt.Errorf("billing: list prices: %w", err)
	}
	var next string
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.String("pr", rows[len(rows)-1].PriceID.String())
	}
	out := make([]Price, len(rows))
	for i, r := range rows {
		m, err := s.q.GetMeterByID(ctx, r.MeterID)
		if err != nil {
			return nil, "", fmt.Errorf("billing: get price's meter: %w", err)
		}
		out[i] = priceFrom(r, m.Slug)
	}
	return out, next, nil
}

func priceFrom(r billingdb.BillingPrice, slug string) Price {
	ua, _ := fromNumeric(r.UnitAmount)
	return Price{ID: r.PriceID, Product: r.ProductID, Meter: slug, MeterID: r.MeterID, Currency: r.Currency, UnitAmount: Decimal{ua},
		Billing: r.Billing, Interval: deref(r.BillingInterval), StripePriceID: r.StripePriceID, Status: r.Status, Error: r.Error,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// RunPrice is the jobs.Handler of KindStripePrice: once the product is in
// Stripe, it makes the meter's Stripe Billing Meter (stripe_meter prices,
// once per meter) and the price.
func (s *Service) RunPrice(ctx context.Context, j *jobs.Job) error {
	var a idArgs
	if err := json.Unmarshal(j.Args, &a); err != nil || j.TenantID == nil {
		return jobs.Cancel(fmt.Errorf("billing: unreadable price job args: %v", err))
	}
	tenant := *j.TenantID
	row, err := s.q.GetPrice(ctx, billingdb.GetPriceParams{TenantID: tenant, PriceID: a.ID})
	// Made already; a failed one is tried again when its dead letter is replayed.
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.Status == SyncSynced) {
		return nil
	}
	if err != nil {
		return err
	}
	prod, err := s.q.GetProduct(ctx, billingdb.GetProductParams{TenantID: tenant, ProductID: row.ProductID})
	if err != nil {
		return err
	}
	switch prod.Status {
	case SyncPending:
		return jobs.Snooze(time.Second) // the product's job runs first
	case SyncFailed:
		err := fmt.Errorf("its product could not be made in Stripe: %s", prod.Error)
		s.markFailed(ctx, j, err.Error())
		return jobs.Cancel(err)
	}
	sc, _, err := s.client(ctx, s.q, tenant)
	if err != nil {
		return s.failSync(ctx, j, err)
	}
	meter, err := s.q.GetMeterByID(ctx, row.MeterID)
	if err != nil {
		return err
	}
	p := &stripe.PriceCreateParams{Currency: stripe.String(row.Currency), Product: prod.StripeProductID,
		Metadata: map[string]string{"prost_app": tenant.String(), "prost_price": row.PriceID.String(), "prost_meter": meter.Slug}}
	ua, _ := fromNumeric(row.UnitAmount)
	if ua.IsZero() {
		p.UnitAmount = stripe.Int64(0)
	} else {
		f, _ := ua.Float64() // round-trips exactly: checked by checkUnitAmount
		p.UnitAmountDecimal = stripe.Float64(f)
	}
	if row.Billing == BillingStripeMeter {
		sm, err := s.ensureStripeMeter(ctx, sc, tenant, meter)
		if err != nil {
			return s.failSync(ctx, j, err)
		}
		p.Recurring = &stripe.PriceCreateRecurringParams{Interval: row.BillingInterval, UsageType: stripe.String("metered"), Meter: &sm}
	}
	p.SetIdempotencyKey(idemKey("price", row.PriceID.String()))
	pr, err := sc.V1Prices.Create(ctx, p)
	if err != nil {
		return s.failSync(ctx, j, err)
	}
	return s.q.SetPriceStripe(ctx, billingdb.SetPriceStripeParams{PriceID: row.PriceID, StripePriceID: &pr.ID})
}

// ensureStripeMeter returns the id of the meter's Stripe Billing Meter,
// making it first when needed. Its event name is prost_<slug>; its customer
// mapping reads stripe_customer_id and its value value from the payload.
func (s *Service) ensureStripeMeter(ctx context.Context, sc *stripe.Client, tenant uuid.UUID, m billingdb.BillingMeter) (string, error) {
	sm, err := s.q.EnsureStripeMeter(ctx, billingdb.EnsureStripeMeterParams{MeterID: m.MeterID, TenantID: tenant,
		EventName: "prost_" + strings.ReplaceAll(m.Slug, "-", "_")})
	if err != nil {
		return "", err
	}
	if sm.StripeMeterID != nil {
		return *sm.StripeMeterID, nil
	}
	p := &stripe.BillingMeterCreateParams{DisplayName: stripe.String(m.Slug), EventName: stripe.String(sm.EventName),
		DefaultAggregation: &stripe.BillingMeterCreateDefaultAggregationParams{Formula: stripe.String(stripeFormula(Aggregation(m.Aggregation)))},
		CustomerMapping: &stripe.BillingMeterCreateCustomerMappingParams{Type: stripe.String("by_id"),
			EventPayloadKey: stripe.String("stripe_customer_id")},
		ValueSettings: &stripe.BillingMeterCreateValueSettingsParams{EventPayloadKey: stripe.String("value")}}
	p.SetIdempotencyKey(idemKey("meter", m.MeterID.String()))
	bm, err := sc.V1BillingMeters.Create(ctx, p)
	if err != nil {
		return "", err
	}
	if err := s.q.SetStripeMeterID(ctx, billingdb.SetStripeMeterIDParams{MeterID: m.MeterID, StripeMeterID: &bm.ID}); err != nil {
		return "", err
	}
	return bm.ID, nil
}

// failSync decides what a failed Stripe call of a sync job means: a
// refusal no retry can fix (a 4xx, no connection) marks the object failed
// and cancels the job; anything else is retried by the job engine.
func (s *Service) failSync(ctx context.Context, j *jobs.Job, err error) error {
	tenant := *j.TenantID
	s.noteAuthFailure(ctx, tenant, err)
	if !errors.Is(err, ErrNotConnected) && !errors.Is(err, ErrNoSecretsKey) && !permanentStripe(err) {
		return err
	}
	s.markFailed(ctx, j, describe(err))
	return jobs.Cancel(err)
}

// describe is an error's text for a failed object, Stripe's message when
// Stripe refused.
func describe(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) {
		return describeStripeError(err)
	}
	return err.Error()
}

// markFailed records that a sync job gave up on its object.
func (s *Service) markFailed(ctx context.Context, j *jobs.Job, why string) {
	var err error
	switch j.Kind {
	case KindStripeCustomer:
		var a customerArgs
		if json.Unmarshal(j.Args, &a) == nil {
			err = s.q.SetCustomerFailed(ctx, billingdb.SetCustomerFailedParams{TenantID: *j.TenantID, Customer: a.Customer, Error: why})
		}
	case KindStripeProduct:
		var a idArgs
		if json.Unmarshal(j.Args, &a) == nil {
			err = s.q.SetProductFailed(ctx, billingdb.SetProductFailedParams{ProductID: a.ID, Error: why})
		}
	case KindStripePrice:
		var a idArgs
		if json.Unmarshal(j.Args, &a) == nil {
			err = s.q.SetPriceFailed(ctx, billingdb.SetPriceFailedParams{PriceID: a.ID, Error: why})
		}
	case KindStripeInvoice:
		var a idArgs
		if json.Unmarshal(j.Args, &a) == nil {
			err = s.q.FailInvoice(ctx, billingdb.FailInvoiceParams{InvoiceID: a.ID, Error: why})
		}
	}
	if err != nil {
		s.log.Error("billing: cannot record a failed Stripe job", "job_id", j.ID, "kind", j.Kind, "error", err)
	}
}

// OnDiscard records the object of a Stripe job whose attempts ran out as
// failed (the service calls it from the job engine's OnDiscard).
func (s *Service) OnDiscard(ctx context.Context, j *jobs.Job) {
	if j.TenantID != nil {
		s.markFailed(ctx, j, "gave up after "+strconv.Itoa(j.Attempt)+" attempts: "+j.LastError)
	}
}

// requireConnection refuses work for Stripe when the App has no usable
// connection.
func (s *Service) requireConnection(ctx context.Context, tenant uuid.UUID) error {
	row, err := s.q.GetConnection(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.SecretKey == nil) {
		return ErrNotConnected
	}
	if err != nil {
		return fmt.Errorf("billing: read stripe connection: %w", err)
	}
	if s.cfg.SecretsKey == nil {
		return ErrNoSecretsKey
	}
	return nil
}

func parseIDCursor(tag, c string) (*uuid.UUID, error) {
	s, err := cursor.ParseString(tag, c)
	if err != nil || s == "" {
		return nil, err
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return nil, cursor.ErrInvalid
	}
	return &id, nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
