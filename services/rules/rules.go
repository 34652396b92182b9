// Package rules is PROST's rules service: the consumer that evaluates every
// tenant's active rules against each event (pkg/domain/rules.Engine, durable
// consumer "rules-engine"), and the job workers that deliver webhooks and run
// scheduled actions on the job engine (pkg/jobs).
//
// Webhook deliveries are jobs of kind rules.webhook. Each attempt POSTs the
// triggering event (its stored structured-mode envelope, classified values
// revealed, Content-Type application/cloudevents+json) signed per Standard Webhooks with the rule's
// secret; the webhook-id is the same on every attempt, retry and replay. A
// 2xx answer delivers the message; 410 Gone disables the rule's webhook and
// ends the job; anything else (another status, a network error, a timeout,
// a redirect) fails the attempt, which the job engine retries with backoff.
// When the attempts run out the job is discarded and Config.DeadLetter is
// called with it. Retrying the discarded job (jobs.Client.Retry) or inserting
// it again delivers the message once: a delivered webhook-id is recorded in
// the same transaction as the job's completion and never sent again.
package rulessvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/rules"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/lifecycle"
	"github.com/prost-platform/prost/pkg/netguard"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/webhook"
)

// ConsumerName is the durable consumer name (idempotency namespace and DLQ
// consumer name) of the rules engine.
const ConsumerName = "rules-engine"

// DefaultDeliveryTimeout bounds a webhook request when Config sets none.
const DefaultDeliveryTimeout = 10 * time.Second

// UserAgent is sent with every webhook delivery.
const UserAgent = "PROST-Webhooks/1"

// Config describes the service. The zero value of each field is usable.
type Config struct {
	// Consumer is the consumer runtime's configuration (partitions, retry
	// policy, logger); its Name is set to ConsumerName.
	Consumer consumer.Config
	// Engine tunes rule evaluation; its Partitions should be the gateway's.
	Engine rules.EngineConfig
	// Jobs tunes the job workers; OnDiscard is set by the service (see
	// DeadLetter).
	Jobs jobs.Config
	// SecretsKey opens the rules' webhook signing secrets
	// (PROST_SECRETS_KEY). Without it every webhook delivery fails.
	SecretsKey *secretbox.Key
	// DeliveryTimeout bounds one webhook request. Defaults to
	// DefaultDeliveryTimeout.
	DeliveryTimeout time.Duration
	// Outbound checks every delivery's target: the URL before each attempt,
	// and the address each connection is about to use, after DNS
	// resolution (see pkg/netguard). Defaults to a Guard that lets only
	// public addresses through (PROST_OUTBOUND_ALLOW adds more).
	Outbound *netguard.Guard
	// HTTPClient sends webhooks. Defaults to Outbound's client, which
	// follows no redirects and checks every connection; a client given here
	// replaces that check (tests only).
	HTTPClient *http.Client
	// DeadLetter is called with every job of this service the job engine
	// discards (a webhook delivery whose attempts ran out, after its "dead"
	// outcome was recorded). nil only logs.
	DeadLetter func(ctx context.Context, j *jobs.Job) error
	// Logger receives the service's logs. Defaults to discarding.
	Logger *slog.Logger
}

// Service runs the rules consumer and the job workers.
type Service struct {
	Consumer *consumer.Consumer
	Jobs     *jobs.Client
	Engine   *rules.Engine
	store    *rules.Store
	cfg      Config
	log      *slog.Logger
}

// New returns the service; run it with Run.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if cfg.Outbound == nil {
		cfg.Outbound = netguard.New()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = cfg.Outbound.Client(0) // each request's context bounds it (DeliveryTimeout)
	}
	if cfg.Engine.Logger == nil {
		cfg.Engine.Logger = cfg.Logger
	}
	if cfg.Jobs.Logger == nil {
		cfg.Jobs.Logger = cfg.Logger
	}
	s := &Service{cfg: cfg, log: cfg.Logger, store: rules.NewStore(pool, rules.StoreConfig{SecretsKey: cfg.SecretsKey, Outbound: cfg.Outbound})}
	s.Engine = rules.NewEngine(pool, cfg.Engine)
	cc := cfg.Consumer
	cc.Name = ConsumerName
	// Events of a tenant with nothing to act on are acknowledged without
	// an idempotency record.
	cc.Relevant = s.Engine.Relevant
	if cc.Logger == nil {
		cc.Logger = cfg.Logger
	}
	var err error
	if s.Consumer, err = consumer.New(pool, js, cc, s.Engine.HandleEvents); err != nil {
		return nil, err
	}
	jc := cfg.Jobs
	jc.OnDiscard = s.onDiscard
	if jc.StopTimeout == 0 {
		jc.StopTimeout = cfg.DeliveryTimeout + 5*time.Second
	}
	if s.Jobs, err = jobs.NewClient(pool, jc); err != nil {
		return nil, err
	}
	if err := s.Jobs.Register(rules.KindWebhook, s.deliver); err != nil {
		return nil, err
	}
	if err := s.Jobs.Register(rules.KindScheduled, s.Engine.RunScheduled); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs the job workers and the consumer until ctx ends, then drains the
// consumer and stops the workers gracefully, in that order. It returns nil
// on a clean stop.
func (s *Service) Run(ctx context.Context) error {
	g := lifecycle.Group{Logger: s.log}
	g.Add("rules-jobs", s.Jobs)
	g.Add("rules-engine", s.Consumer)
	return g.Run(ctx)
}

// deliver is the rules.webhook job handler.
func (s *Service) deliver(ctx context.Context, j *jobs.Job) error {
	var a rules.WebhookJob
	if err := json.Unmarshal(j.Args, &a); err != nil || j.TenantID == nil || a.WebhookID == "" {
		return jobs.Cancel(fmt.Errorf("webhook: unreadable job args: %v", err))
	}
	tenant := *j.TenantID
	log := s.log.With("job_id", j.ID, "webhook_id", a.WebhookID, "rule_id", a.RuleID, "attempt", j.Attempt)
	done, err := s.store.Delivered(ctx, a.WebhookID)
	if err != nil {
		return err
	}
	if done {
		log.Info("webhook: message already delivered; not sent again")
		return nil
	}
	target, err := s.store.Webhook(ctx, tenant, a.RuleID)
	switch {
	case errors.Is(err, rules.ErrNotFound):
		return jobs.Cancel(err)
	case err != nil:
		return err
	case target.RuleStatus != rules.StatusActive:
		return jobs.Cancel(errors.New("webhook: the rule is disabled"))
	case target.WebhookStatus != rules.StatusActive:
		return jobs.Cancel(errors.New("webhook: the rule's webhook is disabled (the receiver answered 410 Gone)"))
	}
	body, err := s.store.EventEnvelope(ctx, tenant, a.Event.Source, a.Event.ID)
	if errors.Is(err, rules.ErrNotFound) {
		return jobs.Cancel(err)
	}
	if err != nil {
		return err
	}
	// The receiver is the tenant's: classified values in clear while their
	// keys exist, {"erased":true} after (docs/privacy.md).
	if body, err = s.cfg.Engine.Keyring.Reveal(ctx, tenant, body); err != nil {
		return err
	}
	// A target PROST does not send to (the rule predates the check, or the
	// allow-list changed) is never tried: the message is dead.
	if err := s.cfg.Outbound.CheckURL(a.URL); err != nil {
		reason := netguard.ReasonForbidden
		if !errors.Is(err, netguard.ErrForbidden) {
			reason = "invalid target URL"
		}
		log.Warn("webhook: target refused; not sent", "error", err)
		if err := rules.RecordDelivery(ctx, s.store.Pool(), rules.DeliveryRecord{WebhookID: a.WebhookID, TenantID: tenant, RuleID: a.RuleID,
			DecisionID: a.DecisionID, URL: a.URL, Status: "dead", Attempts: j.Attempt, JobID: j.ID, Error: reason}); err != nil {
			return err
		}
		return jobs.Cancel(errors.New("webhook: " + reason))
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		return jobs.Cancel(errors.New("webhook: invalid target URL"))
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", UserAgent)
	if err := webhook.SetHeaders(req.Header, target.Secret, a.WebhookID, time.Now(), body); err != nil {
		return jobs.Cancel(err)
	}
	// What the tenant sees of a failure (the job's error, shown in its
	// decisions and dead letters) is a fixed reason or the status code,
	// never the target's answer or a network error's text; the logs keep
	// the error.
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		log.Warn("webhook: delivery attempt failed", "error", err)
		return errors.New("webhook: " + netguard.Reason(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	rec := rules.DeliveryRecord{WebhookID: a.WebhookID, TenantID: tenant, RuleID: a.RuleID, DecisionID: a.DecisionID, URL: a.URL,
		HTTPStatus: resp.StatusCode, Attempts: j.Attempt, JobID: j.ID}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		rec.Status = "delivered"
		log.Debug("webhook: delivered", "status", resp.StatusCode)
		return pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
			if err := rules.RecordDelivery(ctx, tx, rec); err != nil {
				return err
			}
			return jobs.CompleteTx(ctx, tx, j)
		})
	case resp.StatusCode == http.StatusGone:
		rec.Status, rec.Error = "gone", "the receiver answered 410 Gone; the rule's webhook is disabled"
		log.Warn("webhook: receiver answered 410 Gone; disabling the rule's webhook")
		if err := s.store.DisableWebhook(ctx, tenant, a.RuleID, "the receiver at "+a.URL+" answered 410 Gone"); err != nil {
			return err
		}
		if err := rules.RecordDelivery(ctx, s.store.Pool(), rec); err != nil {
			return err
		}
		return jobs.Cancel(errors.New("webhook: the receiver answered 410 Gone"))
	default:
		return errors.New("webhook: " + netguard.StatusReason(resp.StatusCode))
	}
}

// onDiscard records a dead webhook message and hands the job to DeadLetter.
func (s *Service) onDiscard(ctx context.Context, j *jobs.Job) {
	log := s.log.With("job_id", j.ID, "kind", j.Kind, "attempts", j.Attempt)
	if j.Kind == rules.KindWebhook && j.TenantID != nil {
		var a rules.WebhookJob
		if json.Unmarshal(j.Args, &a) == nil {
			err := rules.RecordDelivery(ctx, s.store.Pool(), rules.DeliveryRecord{WebhookID: a.WebhookID, TenantID: *j.TenantID,
				RuleID: a.RuleID, DecisionID: a.DecisionID, URL: a.URL, Status: "dead", Attempts: j.Attempt, JobID: j.ID, Error: j.LastError})
			if err != nil {
				log.Error("webhook: cannot record the dead message", "error", err)
			}
		}
	}
	if s.cfg.DeadLetter == nil {
		log.Error("rules: job discarded after its last attempt (no dead-letter queue configured)", "error", j.LastError)
		return
	}
	if err := s.cfg.DeadLetter(ctx, j); err != nil {
		log.Error("rules: cannot dead-letter the discarded job", "error", err)
		return
	}
	log.Warn("rules: job discarded and dead-lettered", "error", j.LastError)
}
