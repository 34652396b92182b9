package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"
	stripe "github.com/stripe/stripe-go/v85"

	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/jobs"
)

// Outcomes of a meter event (billing_meter_events.status).
const (
	MeterEventSent          = "sent"
	MeterEventOutsideWindow = "outside_window"
	MeterEventNoCustomer    = "no_customer"
	MeterEventVoided        = "voided"
)

// stripeFuture is how far in the future Stripe takes a meter event.
const stripeFuture = 5 * time.Minute

// RunMeterEvent is the jobs.Handler of KindStripeMeterEvent: it sends one
// event's usage of a meter to the meter's Stripe Billing Meter, as the
// event's current revision says (a correction that came before the send is
// honoured), with identifier and idempotency key derived from the event's
// dedupe key, so no retry can bill it twice. Usage Stripe cannot take
// (older than the backdating window, without a mapped customer, voided) is
// recorded instead; prost billing invoice bills it.
func (s *Service) RunMeterEvent(ctx context.Context, j *jobs.Job) error {
	var a meterEventArgs
	if err := json.Unmarshal(j.Args, &a); err != nil || j.TenantID == nil {
		return jobs.Cancel(fmt.Errorf("billing: unreadable meter event job args: %v", err))
	}
	tenant := *j.TenantID
	if _, err := s.q.GetMeterEvent(ctx, billingdb.GetMeterEventParams{MeterID: a.MeterID, EventSource: a.EventSource, EventID: a.EventID}); err == nil {
		return nil // sent (or recorded) before
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	meter, err := s.q.GetMeterByID(ctx, a.MeterID)
	if err != nil {
		return err
	}
	sm, err := s.q.GetStripeMeter(ctx, a.MeterID)
	if err != nil || sm.StripeMeterID == nil {
		return jobs.Cancel(fmt.Errorf("billing: meter %s has no Stripe meter", meter.Slug))
	}
	cur, err := s.q.CurrentUsage(ctx, billingdb.CurrentUsageParams{MeterID: a.MeterID, EventSource: a.EventSource, EventID: a.EventID})
	if err != nil {
		return err
	}
	identifier := meterEventIdentifier(tenant, meter.Slug, a.EventSource, a.EventID)
	record := func(status, detail string, value pgtype.Numeric) error {
		_, err := s.q.RecordMeterEvent(ctx, billingdb.RecordMeterEventParams{MeterID: a.MeterID, EventSource: a.EventSource, EventID: a.EventID,
			TenantID: tenant, Identifier: identifier, Status: status, Value: value, Detail: detail})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // recorded meanwhile
		}
		return err
	}
	now := s.cfg.Now()
	switch {
	case cur.Voided:
		return record(MeterEventVoided, "voided by correction "+deref(cur.CorrectionID)+" before it was sent", pgtype.Numeric{})
	case now.Sub(cur.Time) > s.cfg.BackdatingWindow:
		return record(MeterEventOutsideWindow, fmt.Sprintf("the event's time %s is outside Stripe's backdating window", cur.Time.UTC().Format(time.RFC3339)), cur.Value)
	case cur.Time.Sub(now) > stripeFuture:
		return jobs.Snooze(cur.Time.Sub(now) - stripeFuture + time.Second)
	}
	cust, err := s.q.GetCustomer(ctx, billingdb.GetCustomerParams{TenantID: tenant, Customer: cur.Customer})
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && cust.Status == SyncFailed):
		return record(MeterEventNoCustomer, fmt.Sprintf("customer %q is not mapped to a Stripe customer", cur.Customer), cur.Value)
	case err != nil:
		return err
	case cust.Status == SyncPending:
		return jobs.Snooze(2 * time.Second) // its customer job runs first
	}
	sc, _, err := s.client(ctx, s.q, tenant)
	if errors.Is(err, ErrNotConnected) || errors.Is(err, ErrNoSecretsKey) {
		return jobs.Cancel(err)
	}
	if err != nil {
		return err
	}
	value := "1" // a count meter counts events
	if v, ok := fromNumeric(cur.Value); ok {
		value = v.String()
	}
	p := &stripe.BillingMeterEventCreateParams{EventName: stripe.String(sm.EventName), Identifier: stripe.String(identifier),
		Payload:   map[string]string{"stripe_customer_id": deref(cust.StripeCustomerID), "value": value},
		Timestamp: stripe.Int64(cur.Time.Unix())}
	p.SetIdempotencyKey(idemKey("meter-event", identifier))
	if _, err := sc.V1BillingMeterEvents.Create(ctx, p); err != nil {
		s.noteAuthFailure(ctx, tenant, err)
		if permanentStripe(err) {
			return jobs.Cancel(fmt.Errorf("billing: Stripe refused meter event %s: %s", identifier, describeStripeError(err)))
		}
		return err
	}
	return record(MeterEventSent, "", cur.Value)
}

// summaryTotal is the total Stripe's meter event summaries hold for a
// Stripe meter and customer over [from, to).
func summaryTotal(ctx context.Context, sc *stripe.Client, stripeMeter, stripeCustomer string, from, to time.Time) (Decimal, error) {
	var total Decimal
	it := sc.V1BillingMeterEventSummaries.List(ctx, &stripe.BillingMeterEventSummaryListParams{ID: stripe.String(stripeMeter),
		Customer: stripe.String(stripeCustomer), StartTime: stripe.Int64(from.Unix()), EndTime: stripe.Int64(to.Unix())})
	for sum, err := range it.All(ctx) {
		if err != nil {
			return Decimal{}, err
		}
		total.Decimal = total.Add(decimal.NewFromFloat(sum.AggregatedValue))
	}
	return total, nil
}
