package billing

import (
	"github.com/prost-platform/prost/pkg/problem"
)

// Sentinel errors; test with errors.Is. Each has the problem kind its HTTP
// status comes from.
var (
	// ErrMeterNotFound: no live meter with that slug for this App.
	ErrMeterNotFound = problem.Errorf(problem.NotFound, "no such meter")
	// ErrMeterExists: a live meter already has the slug.
	ErrMeterExists = problem.Errorf(problem.Conflict, "a meter with this slug exists")
	// ErrNotConnected: the App has no Stripe connection (or it was
	// disconnected).
	ErrNotConnected = problem.Errorf(problem.Conflict, "this App has no Stripe connection: connect one with PUT /v1/billing/stripe")
	// ErrNoConnection: GET or DELETE of a connection the App never made.
	ErrNoConnection = problem.Errorf(problem.NotFound, "this App has no Stripe connection: connect one with PUT /v1/billing/stripe")
	// ErrNoSecretsKey: the server has no PROST_SECRETS_KEY to seal Stripe
	// secrets with or open them.
	ErrNoSecretsKey = problem.Errorf(problem.Unavailable, "Stripe is unavailable: the server has no PROST_SECRETS_KEY to seal or open Stripe secrets")
	// ErrCustomerNotFound: no mapping for that PROST customer id.
	ErrCustomerNotFound = problem.Errorf(problem.NotFound, "no such customer")
	// ErrProductNotFound: no product with that id for this App.
	ErrProductNotFound = problem.Errorf(problem.NotFound, "no such product")
	// ErrPriceNotFound: no price with that id for this App.
	ErrPriceNotFound = problem.Errorf(problem.NotFound, "no such price")
	// ErrInvoiceNotFound: no invoice with that id for this App.
	ErrInvoiceNotFound = problem.Errorf(problem.NotFound, "no such invoice")
	// ErrInvoicePending: an earlier invoice of the same customer and period
	// is still being made in Stripe.
	ErrInvoicePending = problem.Errorf(problem.Conflict, "an invoice for this customer and period is still being made in Stripe; wait for it to finish")
	// ErrNothingToInvoice: every price's usage of the period is already
	// billed.
	ErrNothingToInvoice = problem.Errorf(problem.Conflict, "nothing to invoice: every price's usage for this customer and period is already billed")
	// ErrWebhookSignature: a Stripe webhook whose signature does not verify
	// with the App's webhook secret (or is too old or in the future), or an
	// App with no webhook secret. Deliberately one answer for all of these.
	ErrWebhookSignature = problem.Errorf(problem.Malformed, "the Stripe-Signature header does not verify")
)
