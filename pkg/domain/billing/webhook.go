package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	stripe "github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/subjects"
)

// StripeSource is the CloudEvents source of the events recorded from an
// App's Stripe webhooks; their type is "stripe." + the Stripe event type
// (stripe.invoice.paid ...) and their id the Stripe event id.
const StripeSource = "/billing/stripe"

// MaxWebhookBytes is the largest Stripe webhook body accepted.
const MaxWebhookBytes = 1 << 20

// WebhookResult is what became of a Stripe webhook: the event it was
// recorded as, and whether Stripe had sent it before.
type WebhookResult struct {
	ID        string `json:"id"`
	Source    string `json:"source"`
	Type      string `json:"type"`
	Duplicate bool   `json:"duplicate"`
}

// Problems of a webhook that does not verify: all are 400 and nothing is
// stored. An unknown App, an App without a webhook secret and a wrong
// signature get the same answer, so the route tells nothing about Apps.
var errWebhookHeader = problem.Errorf(problem.Malformed, "the Stripe-Signature header is missing or unreadable")

// ReceiveWebhook verifies a Stripe webhook for the App tenant with the
// App's webhook secret (and, during a roll, the previous one) and records
// the Stripe event as a CloudEvent of the App: through the event store and
// the outbox in one transaction, like ingest, so it reaches the audit log,
// the rules and every other consumer. A webhook whose signature does not
// verify, is older than the tolerance or dated in the future is refused
// and nothing is stored. A Stripe event sent again is a duplicate.
func (s *Service) ReceiveWebhook(ctx context.Context, tenant uuid.UUID, payload []byte, header string) (WebhookResult, error) {
	secrets, err := s.webhookSecrets(ctx, tenant)
	if err != nil {
		return WebhookResult{}, err
	}
	now := s.cfg.Now()
	t, ok := signatureTime(header)
	if !ok {
		return WebhookResult{}, errWebhookHeader
	}
	tol := s.cfg.WebhookTolerance
	if t.After(now.Add(tol)) || now.Sub(t) > tol {
		return WebhookResult{}, problem.Errorf(problem.Malformed, "the Stripe-Signature timestamp is more than %s from now: too old, or in the future", tol)
	}
	var ev stripe.Event
	verified := false
	for _, secret := range secrets {
		// The tolerance is checked above against Config.Now; stripe-go's
		// own check uses the wall clock.
		ev, err = webhook.ConstructEventWithOptions(payload, header, secret, webhook.ConstructEventOptions{
			IgnoreTolerance: true, IgnoreAPIVersionMismatch: true})
		if errors.Is(err, webhook.ErrNoValidSignature) {
			continue
		}
		if err != nil {
			if errors.Is(err, webhook.ErrNotSigned) || errors.Is(err, webhook.ErrInvalidHeader) {
				return WebhookResult{}, errWebhookHeader
			}
			return WebhookResult{}, problem.Errorf(problem.Malformed, "the webhook is not a Stripe event: %v", err)
		}
		verified = true
		break
	}
	if !verified {
		return WebhookResult{}, ErrWebhookSignature
	}
	ce, key, err := cloudEventOf(tenant, &ev, payload)
	if err != nil {
		return WebhookResult{}, err
	}
	ne := eventstore.NewEvent{TenantID: tenant, Source: ce.Source, ID: ce.ID, Type: ce.Type, Subject: ce.Subject, Time: ce.Time,
		PartitionKey: key, Envelope: ce.AppendJSON(nil),
		OutboxSubject: subjects.Event(tenant, subjects.Partition(key, s.cfg.Partitions), ce.Type)}
	var out []eventstore.Outcome
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if out, err = eventstore.AppendTx(ctx, tx, []eventstore.NewEvent{ne}); err != nil {
			return err
		}
		return eventstore.NotifyTx(ctx, tx)
	})
	if err != nil {
		return WebhookResult{}, fmt.Errorf("billing: record stripe event %s: %w", ev.ID, err)
	}
	return WebhookResult{ID: ce.ID, Source: ce.Source, Type: ce.Type, Duplicate: out[0].Duplicate}, nil
}

// webhookSecrets opens the App's webhook secrets: the current one, then the
// previous one while it still verifies.
func (s *Service) webhookSecrets(ctx context.Context, tenant uuid.UUID) ([]string, error) {
	row, err := s.q.GetConnection(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.WebhookSecret == nil) {
		return nil, ErrWebhookSignature
	}
	if err != nil {
		return nil, fmt.Errorf("billing: read stripe connection: %w", err)
	}
	if s.cfg.SecretsKey == nil {
		return nil, ErrNoSecretsKey
	}
	var out []string
	cur, err := s.cfg.SecretsKey.Open(row.WebhookSecret, sealAD(tenant, roleWebhookSecret))
	if err != nil {
		return nil, problem.Errorf(problem.Unavailable, "the App's webhook secret cannot be opened with this server's PROST_SECRETS_KEY")
	}
	out = append(out, string(cur))
	if row.PreviousWebhookSecret != nil && row.PreviousUntil != nil && row.PreviousUntil.After(s.cfg.Now()) {
		if prev, err := s.cfg.SecretsKey.Open(row.PreviousWebhookSecret, sealAD(tenant, roleWebhookSecret)); err == nil {
			out = append(out, string(prev))
		}
	}
	return out, nil
}

// signatureTime reads t= of a Stripe-Signature header.
func signatureTime(header string) (time.Time, bool) {
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == "t" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(n, 0), true
		}
	}
	return time.Time{}, false
}

// cloudEventOf is the CloudEvent a verified Stripe event is recorded as,
// and its partition key: the Stripe customer the object belongs to, so one
// customer's billing facts stay in order, else the object's id.
func cloudEventOf(tenant uuid.UUID, ev *stripe.Event, payload []byte) (*cloudevent.Event, string, error) {
	if ev.ID == "" || ev.Type == "" {
		return nil, "", problem.Errorf(problem.Malformed, "the webhook is not a Stripe event: it has no id or type")
	}
	var data bytes.Buffer
	if err := json.Compact(&data, payload); err != nil {
		return nil, "", problem.Errorf(problem.Malformed, "the webhook body is not JSON: %v", err)
	}
	ce := &cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: ev.ID, Source: StripeSource, Type: "stripe." + string(ev.Type),
		DataContentType: "application/json", Data: data.Bytes()}
	if ev.Created > 0 {
		ce.Time = time.Unix(ev.Created, 0).UTC()
	}
	var key string
	if ev.Data != nil {
		if id, ok := ev.Data.Object["id"].(string); ok {
			ce.Subject, key = id, id
		}
		if c, ok := ev.Data.Object["customer"].(string); ok && c != "" {
			key = c
		}
	}
	ce.SetExtension("tenantid", tenant.String())
	ce.SetExtension("actorid", "stripe")
	ce.SetExtension("action", string(ev.Type))
	if key != "" {
		ce.SetExtension("partitionkey", key)
	}
	if err := ce.Validate(); err != nil {
		return nil, "", problem.Errorf(problem.Malformed, "the Stripe event cannot be recorded as a CloudEvent: %v", err)
	}
	return ce, key, nil
}
