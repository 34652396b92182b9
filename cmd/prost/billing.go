package main

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/domain/billing/billinghttp"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/invalidate"
	"github.com/prost-platform/prost/pkg/jobs"
	billingsvc "github.com/prost-platform/prost/services/billing"
)

// billingConfig is the billing domain's configuration: the secrets key
// that seals Apps' Stripe secrets, the Stripe API, and the partitions of
// the events recorded from Stripe webhooks.
func (p *platform) billingConfig() (billing.Config, error) {
	k, err := p.secretsKey()
	if err != nil {
		return billing.Config{}, err
	}
	cfg := billing.Config{SecretsKey: k, StripeAPIURL: p.env.StripeAPIURL, Partitions: p.env.Partitions,
		Logger: p.log.With("service", "billing")}
	kr, err := p.keyring()
	if err != nil {
		return billing.Config{}, err
	}
	if kr != nil {
		cfg.Protect = kr
	}
	return cfg, nil
}

// registrySchemas answers billing's schema look-ups from the registry.
type registrySchemas struct{ reg *registry.Registry }

func (r registrySchemas) LatestSchema(ctx context.Context, tenant uuid.UUID, eventType string) ([]byte, bool, error) {
	v, err := r.reg.Get(ctx, tenant, eventType, "latest")
	switch {
	case err == nil:
		return []byte(v.Schema), true, nil
	case errorsIsNotFound(err):
		return nil, false, nil
	default:
		return nil, false, err
	}
}

func errorsIsNotFound(err error) bool {
	return errors.Is(err, registry.ErrSubjectNotFound) || errors.Is(err, registry.ErrVersionNotFound)
}

// billingRoutes are the gateway's /v1/meters and /v1/billing routes. New
// meters are checked against the Apps' own schemas (the platform's, prost.*,
// cannot be metered), read through a registry that feed keeps current.
func (p *platform) billingRoutes(feed *invalidate.Feed) (httpapi.Routes, error) {
	cfg, err := p.billingConfig()
	if err != nil {
		return nil, err
	}
	reg, err := registry.New(p.pool, registry.Config{UnregisteredTypes: p.env.UnregisteredTypes, Feed: feed})
	if err != nil {
		return nil, err
	}
	cfg.Schemas = registrySchemas{reg}
	if cfg.SecretsKey == nil {
		p.log.Warn("PROST_SECRETS_KEY is not set: Stripe connections are refused")
	}
	return billinghttp.New(billing.New(p.pool, cfg)), nil
}

// billingService is the billing service: the billing-usage consumer and the
// job workers that talk to Stripe.
func (p *platform) billingService() (*billingsvc.Service, error) {
	cfg, err := p.billingConfig()
	if err != nil {
		return nil, err
	}
	ccfg, err := p.consumerConfig(billingsvc.ConsumerName, "billing")
	if err != nil {
		return nil, err
	}
	return billingsvc.New(p.pool, p.js, billingsvc.Config{
		Consumer: ccfg, Billing: cfg, Jobs: p.billingJobs, Logger: cfg.Logger, DeadLetter: p.deadLetterBillingJob,
	})
}

// deadLetterBillingJob stores a Stripe job the job engine discarded in the
// DLQ (consumer billing-stripe), so `prost dlq replay` can retry it.
func (p *platform) deadLetterBillingJob(ctx context.Context, j *jobs.Job) error {
	first := j.CreatedAt
	if len(j.Errors) > 0 {
		first = j.Errors[0].At
	}
	last := time.Now()
	if j.FinishedAt != nil {
		last = *j.FinishedAt
	}
	_, err := dlq.DeadLetterJob(ctx, p.pool, dlq.JobFailure{
		Consumer: "billing-stripe", JobID: j.ID, Kind: j.Kind, TenantID: j.TenantID, EventType: j.Kind,
		Attempts: j.Attempt, LastError: j.LastError, FirstFailure: first, LastFailure: last, Payload: j.Args,
	})
	return err
}
