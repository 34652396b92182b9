// Package subscriptionssvc is PROST's subscriptions service: the fan-out
// consumer that turns every event into deliveries for the tenant's matching
// HTTP subscriptions (durable consumer "subscriptions-fanout", one ordered
// lane per partition), and the job workers that send them
// (pkg/domain/subscriptions: Deliver, jobs of kind subscriptions.deliver).
//
// A delivery POSTs the event's stored structured-mode envelope to the
// subscription's sink, signed per Standard Webhooks; its webhook-id is the
// same on every attempt, retry, recovery and replay, and is what a receiver
// deduplicates on: a delivery whose answer was lost (a crash between the
// receiver's 2xx and its record) is sent again. Deliveries of one
// subscription and partition key are sent one at a time, in stream order.
// A delivery whose attempts ran out is dead-lettered (consumer
// "subscriptions-http"); replaying the entry sends it once more.
package subscriptionssvc

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/lifecycle"
)

// ConsumerName is the fan-out's durable consumer name (idempotency
// namespace and DLQ consumer name).
const ConsumerName = "subscriptions-fanout"

// Defaults of Config.
const (
	// DefaultWorkers is how many deliveries are sent at once: HTTP
	// deliveries wait on receivers, not on PROST.
	DefaultWorkers = 16
	// DefaultPollInterval is how often the workers look for deliveries when
	// nothing woke them.
	DefaultPollInterval = 250 * time.Millisecond
)

// Config describes the service. The zero value of each field is usable.
type Config struct {
	// Consumer is the fan-out's consumer runtime configuration (partitions,
	// retry policy); its Name is set to ConsumerName.
	Consumer consumer.Config
	// Subscriptions is the domain's configuration: signing key, retry
	// schedule, disable window, delivery timeout, HTTP client, partitions.
	// Its Wake is set by the service.
	Subscriptions subscriptions.Config
	// Jobs tunes the delivery workers. Workers defaults to DefaultWorkers,
	// PollInterval to DefaultPollInterval, JobTimeout to the delivery
	// timeout plus 10 s and StaleAfter to JobTimeout plus 10 s (a delivery
	// whose worker died is sent again that soon); OnDiscard is set by the
	// service (dead letters).
	Jobs jobs.Config
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Service runs the fan-out and the delivery workers.
type Service struct {
	Consumer *consumer.Consumer
	Jobs     *jobs.Client
	Domain   *subscriptions.Service
	log      *slog.Logger
}

// New returns the service; run it with Run.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{log: cfg.Logger}
	dc := cfg.Subscriptions
	if dc.Logger == nil {
		dc.Logger = cfg.Logger
	}
	if dc.DeliveryTimeout <= 0 {
		dc.DeliveryTimeout = subscriptions.DefaultDeliveryTimeout
	}
	if len(dc.RetrySchedule) == 0 {
		dc.RetrySchedule = subscriptions.DefaultRetrySchedule
	}
	dc.Wake = func() {
		if s.Jobs != nil {
			s.Jobs.Wake()
		}
	}
	s.Domain = subscriptions.New(pool, dc)

	jc := cfg.Jobs
	if jc.Workers == 0 {
		jc.Workers = DefaultWorkers
	}
	if jc.PollInterval == 0 {
		jc.PollInterval = DefaultPollInterval
	}
	if jc.JobTimeout == 0 {
		jc.JobTimeout = dc.DeliveryTimeout + 10*time.Second
	}
	if jc.StaleAfter == 0 {
		jc.StaleAfter = jc.JobTimeout + 10*time.Second
	}
	if jc.StopTimeout == 0 {
		jc.StopTimeout = dc.DeliveryTimeout + 5*time.Second
	}
	if jc.Logger == nil {
		jc.Logger = cfg.Logger
	}
	if jc.Backoff == nil {
		// Used when a delivery's lock is rescued (its worker died mid-attempt):
		// the subscriptions' default schedule.
		sched := dc.RetrySchedule
		jc.Backoff = func(attempt int) time.Duration { return sched[min(max(attempt, 1), len(sched))-1] }
	}
	jc.OnDiscard = s.onDiscard
	var err error
	if s.Jobs, err = jobs.NewClient(pool, jc); err != nil {
		return nil, err
	}
	if err := s.Jobs.Register(subscriptions.KindDeliver, s.Domain.Deliver); err != nil {
		return nil, err
	}
	cc := cfg.Consumer
	cc.Name = ConsumerName
	// Events of a tenant with nothing to act on are acknowledged without
	// an idempotency record.
	cc.Relevant = s.Domain.Relevant
	if cc.Logger == nil {
		cc.Logger = cfg.Logger
	}
	if s.Consumer, err = consumer.New(pool, js, cc, s.Domain.HandleEvents); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs the delivery workers and the fan-out until ctx ends, then drains
// the fan-out and stops the workers gracefully, in that order. It returns
// nil on a clean stop.
func (s *Service) Run(ctx context.Context) error {
	g := lifecycle.Group{Logger: s.log}
	g.Add("subscriptions-jobs", s.Jobs)
	g.Add("subscriptions-fanout", s.Consumer)
	return g.Run(ctx)
}

// onDiscard dead-letters a delivery whose attempts ran out.
func (s *Service) onDiscard(ctx context.Context, j *jobs.Job) {
	log := s.log.With("job_id", j.ID, "kind", j.Kind, "attempts", j.Attempt)
	if j.Kind != subscriptions.KindDeliver {
		log.Error("subscriptions: unknown job discarded", "error", j.LastError)
		return
	}
	if err := s.Domain.DeadLetter(ctx, j); err != nil {
		log.Error("subscriptions: cannot dead-letter the discarded delivery", "error", err)
		return
	}
	log.Warn("subscriptions: delivery dead-lettered", "error", j.LastError)
}
