// Package billing is PROST's billing domain: meters that turn an App's events
// into usage, usage queries, corrections as facts, and the App's Stripe
// account (customers, products, prices, meter events, invoices, webhooks
// and reconciliation).
//
// # Usage
//
// A [Meter] names an event type and JSONPaths into the events' data: the
// value, the groups and the customer. The billing consumer
// ([Service.HandleEvents], durable consumer billing-usage) writes one usage
// row per (meter, event) in the consumer's transaction, so an event counts
// exactly once whatever the redeliveries; the row carries the event's own
// time, so a late event lands in the window its time names. Values are exact
// decimals (Postgres numeric, shopspring/decimal in Go). A meter created
// after events of its type were stored counts them too: a backfill job walks
// the stored events.
//
// A correction is an event of type prost.billing.correction naming the event
// it corrects and either the data to count instead or void. It adds a new
// revision of that event's usage; nothing is edited, and the newest
// correction wins. The audit log holds the event and every correction.
//
// # Stripe
//
// Every Stripe call that changes something runs on the job engine
// (pkg/jobs) with an idempotency key derived from PROST ids, so a retried
// job never makes a second object or bills twice. See docs/billing.md.
package billing

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

// CorrectionType is the CloudEvents type of a usage correction.
const CorrectionType = "prost.billing.correction"

// Job kinds of the billing service.
const (
	KindBackfill        = "billing.backfill"
	KindStripeCustomer  = "billing.stripe.customer"
	KindStripeProduct   = "billing.stripe.product"
	KindStripePrice     = "billing.stripe.price"
	KindStripeMeterEvnt = "billing.stripe.meter_event"
	KindStripeInvoice   = "billing.stripe.invoice"
)

// Kinds lists every job kind the billing service runs.
var Kinds = []string{KindBackfill, KindStripeCustomer, KindStripeProduct, KindStripePrice, KindStripeMeterEvnt, KindStripeInvoice}

// Defaults of Config.
const (
	// DefaultStripeAPIURL is Stripe's API.
	DefaultStripeAPIURL = "https://api.stripe.com"
	// DefaultBackdatingWindow is how old usage may be and still be sent to
	// Stripe as a meter event. Stripe takes events up to 35 days old; a day
	// is kept as margin for retries.
	DefaultBackdatingWindow = 34 * 24 * time.Hour
	// DefaultWebhookTolerance is how far a Stripe webhook's signature time
	// may be from now, in the past or the future.
	DefaultWebhookTolerance = 5 * time.Minute
	// DefaultWebhookSecretOverlap is how long a replaced webhook secret
	// keeps verifying (Stripe signs with both during a roll).
	DefaultWebhookSecretOverlap = 24 * time.Hour
	// DefaultStripeTimeout bounds one Stripe request.
	DefaultStripeTimeout = 30 * time.Second
	// DefaultBackfillPage is how many stored events of each type a backfill
	// reads per transaction.
	DefaultBackfillPage = 500
)

// SchemaSource finds the latest registered JSON Schema of an App's event
// type, so a meter's paths can be checked against it (the schema registry,
// pkg/domain/registry, answers it).
type SchemaSource interface {
	// LatestSchema returns the schema text, or found false when the type
	// has no schema.
	LatestSchema(ctx context.Context, tenant uuid.UUID, eventType string) (schema []byte, found bool, err error)
}

// Config tunes a Service. The zero value is usable.
type Config struct {
	// Schemas checks meters against registered schemas. nil: no check.
	Schemas SchemaSource
	// Protect reveals values an App's contract encrypted at ingest, so meters
	// count them; a classified customer or group value is kept as its
	// pseudonym (docs/billing.md). nil: a meter fails on an encrypted value.
	Protect DataProtector
	// SecretsKey seals the Apps' Stripe secret keys and webhook secrets
	// (PROST_SECRETS_KEY). nil: Stripe connections are refused with
	// ErrNoSecretsKey, and nothing can be sent to Stripe.
	SecretsKey *secretbox.Key
	// Partitions is the gateway's PROST_PARTITIONS, for the subjects of the
	// events recorded from Stripe webhooks. Defaults to DefaultPartitions.
	Partitions int
	// StripeAPIURL is the Stripe API's base URL (PROST_STRIPE_API_URL;
	// stripe-mock in tests). Defaults to DefaultStripeAPIURL.
	StripeAPIURL string
	// HTTPClient sends Stripe requests. Defaults to a client with
	// DefaultStripeTimeout.
	HTTPClient *http.Client
	// BackdatingWindow: usage older than this when its meter event is due
	// is not sent to Stripe; prost billing invoice bills it as an invoice
	// item. Defaults to DefaultBackdatingWindow.
	BackdatingWindow time.Duration
	// WebhookTolerance bounds a webhook signature's age (and how far in the
	// future it may be). Defaults to DefaultWebhookTolerance.
	WebhookTolerance time.Duration
	// WebhookSecretOverlap is how long a replaced webhook secret keeps
	// verifying. Defaults to DefaultWebhookSecretOverlap.
	WebhookSecretOverlap time.Duration
	// BackfillPage is how many stored events of each type a new meter's
	// backfill reads per transaction. Defaults to DefaultBackfillPage.
	BackfillPage int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Service is the billing domain over one database. It is safe for
// concurrent use.
type Service struct {
	pool *pgxpool.Pool
	q    *billingdb.Queries
	cfg  Config
	log  *slog.Logger
}

// New returns the Service on pool.
func New(pool *pgxpool.Pool, cfg Config) *Service {
	if cfg.Partitions <= 0 {
		cfg.Partitions = subjects.DefaultPartitions
	}
	if cfg.StripeAPIURL == "" {
		cfg.StripeAPIURL = DefaultStripeAPIURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultStripeTimeout}
	}
	if cfg.BackdatingWindow <= 0 {
		cfg.BackdatingWindow = DefaultBackdatingWindow
	}
	if cfg.WebhookTolerance <= 0 {
		cfg.WebhookTolerance = DefaultWebhookTolerance
	}
	if cfg.WebhookSecretOverlap <= 0 {
		cfg.WebhookSecretOverlap = DefaultWebhookSecretOverlap
	}
	if cfg.BackfillPage <= 0 {
		cfg.BackfillPage = DefaultBackfillPage
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, q: billingdb.New(pool), cfg: cfg, log: cfg.Logger}
}

// Pool is the Service's database.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

// numeric is the exact Postgres form of d.
func numeric(d decimal.Decimal) pgtype.Numeric {
	return pgtype.Numeric{Int: d.Coefficient(), Exp: d.Exponent(), Valid: true}
}

// fromNumeric is the exact decimal of n; ok is false for NULL, NaN and
// infinities.
func fromNumeric(n pgtype.Numeric) (d decimal.Decimal, ok bool) {
	if !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite || n.Int == nil {
		return decimal.Zero, false
	}
	return decimal.NewFromBigInt(n.Int, n.Exp), true
}

// Decimal is an exact decimal as the API shows it: a JSON number written
// with every digit (never through a float).
type Decimal struct{ decimal.Decimal }

// MarshalJSON writes the number's exact digits.
func (d Decimal) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON reads a JSON number or a string holding one.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	if len(b) > 1 && b[0] == '"' {
		b = b[1 : len(b)-1]
	}
	v, err := decimal.NewFromString(string(b))
	if err != nil {
		return err
	}
	d.Decimal = v
	return nil
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
