// Package billingsvc is PROST's billing service: the billing-usage consumer
// that turns each App's events into usage of its meters and applies usage
// corrections (pkg/domain/billing.Service.HandleEvents), and the job
// workers that make the App's customers, products, prices, meter events and
// invoices in Stripe and backfill new meters (pkg/jobs). `prost serve
// billing` runs it; `prost dev` includes it.
package billingsvc

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/lifecycle"
)

// ConsumerName is the durable consumer name (and DLQ consumer name) of the
// billing consumer.
const ConsumerName = "billing-usage"

// DefaultBatchSize is the consumer's batch size when Config sets none.
const DefaultBatchSize = 200

// Config describes the service. The zero value of each field is usable.
type Config struct {
	// Consumer is the consumer runtime's configuration (partitions, retry
	// policy, logger); its Name is set to ConsumerName and its BatchSize
	// defaults to DefaultBatchSize.
	Consumer consumer.Config
	// Billing configures the billing domain (Stripe API, secrets key,
	// clock).
	Billing billing.Config
	// Jobs tunes the job workers; OnDiscard is set by the service.
	Jobs jobs.Config
	// DeadLetter is called with every job of this service the job engine
	// discards, after its object was marked failed. nil only logs.
	DeadLetter func(ctx context.Context, j *jobs.Job) error
	// Logger receives the service's logs. Defaults to discarding.
	Logger *slog.Logger
}

// Service runs the billing consumer and its job workers.
type Service struct {
	Consumer *consumer.Consumer
	Jobs     *jobs.Client
	Billing  *billing.Service
	cfg      Config
	log      *slog.Logger
}

// New returns the service; run it with Run.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Billing.Logger == nil {
		cfg.Billing.Logger = cfg.Logger
	}
	if cfg.Jobs.Logger == nil {
		cfg.Jobs.Logger = cfg.Logger
	}
	s := &Service{cfg: cfg, log: cfg.Logger, Billing: billing.New(pool, cfg.Billing)}
	cc := cfg.Consumer
	cc.Name = ConsumerName
	if cc.BatchSize <= 0 {
		cc.BatchSize = DefaultBatchSize
	}
	if cc.Logger == nil {
		cc.Logger = cfg.Logger
	}
	// Only events some meter counts (and corrections and Stripe invoice
	// events) are recorded and handed to the handler.
	cc.Relevant = s.Billing.Relevant
	// A usage row's primary key (meter, event, revision) is the message's
	// record: a redelivery inserts nothing and queues no Stripe job again.
	cc.Idempotent = true
	var err error
	if s.Consumer, err = consumer.New(pool, js, cc, s.Billing.HandleEvents); err != nil {
		return nil, err
	}
	jc := cfg.Jobs
	jc.OnDiscard = s.onDiscard
	if s.Jobs, err = jobs.NewClient(pool, jc); err != nil {
		return nil, err
	}
	for kind, h := range map[string]jobs.Handler{
		billing.KindBackfill:        s.Billing.RunBackfill,
		billing.KindStripeCustomer:  s.Billing.RunCustomer,
		billing.KindStripeProduct:   s.Billing.RunProduct,
		billing.KindStripePrice:     s.Billing.RunPrice,
		billing.KindStripeMeterEvnt: s.Billing.RunMeterEvent,
		billing.KindStripeInvoice:   s.Billing.RunInvoice,
	} {
		if err := s.Jobs.Register(kind, h); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Run runs the job workers and the consumer until ctx ends, then drains the
// consumer and stops the workers gracefully, in that order. It returns nil
// on a clean stop.
func (s *Service) Run(ctx context.Context) error {
	g := lifecycle.Group{Logger: s.log}
	g.Add("billing-jobs", s.Jobs)
	g.Add("billing-usage", s.Consumer)
	return g.Run(ctx)
}

// onDiscard marks the object of a discarded Stripe job failed and hands
// the job to DeadLetter.
func (s *Service) onDiscard(ctx context.Context, j *jobs.Job) {
	s.Billing.OnDiscard(ctx, j)
	log := s.log.With("job_id", j.ID, "kind", j.Kind, "attempts", j.Attempt)
	if s.cfg.DeadLetter == nil {
		log.Error("billing: job discarded after its last attempt (no dead-letter queue configured)", "error", j.LastError)
		return
	}
	if err := s.cfg.DeadLetter(ctx, j); err != nil {
		log.Error("billing: cannot dead-letter the discarded job", "error", err)
		return
	}
	log.Warn("billing: job discarded and dead-lettered", "error", j.LastError)
}
