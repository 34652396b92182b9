package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/domain/subscriptions/subscriptionshttp"
	"github.com/prost-platform/prost/pkg/httpapi"
	subscriptionssvc "github.com/prost-platform/prost/services/subscriptions"
)

// subscriptionsConfig is the subscriptions domain's configuration shared by
// the gateway (management, test pings) and the subscriptions service
// (deliveries).
func (p *platform) subscriptionsConfig() (subscriptions.Config, error) {
	k, err := p.secretsKey()
	if err != nil {
		return subscriptions.Config{}, err
	}
	cfg := subscriptions.Config{
		SecretsKey:      k,
		RetrySchedule:   p.env.SubscriptionsRetrySchedule,
		DisableAfter:    p.env.SubscriptionsDisableAfter,
		DeliveryTimeout: p.env.SubscriptionsDeliveryTimeout,
		Partitions:      p.env.Partitions,
		Logger:          p.log.With("service", "subscriptions"),
		// The outbound guard (pkg/netguard) goes here when it lands:
		// HTTPClient: guard.Client(...), CheckSink: guard.CheckURL.
	}
	kr, err := p.keyring()
	if err != nil {
		return subscriptions.Config{}, err
	}
	if kr != nil {
		cfg.Reveal = kr
	}
	if p.keys != nil && p.natsAccounts != nil && p.keys.TenantsSigning != nil {
		cfg.JS, cfg.Keys, cfg.Accounts = p.js, p.keys, p.natsAccounts
		cfg.NATSURL = p.env.NATSPublicURL
		if cfg.NATSURL == "" {
			cfg.NATSURL = p.natsURL
		}
	}
	return cfg, nil
}

// subscriptionsRoutes are the gateway's /v1/subscriptions routes and the
// event stream.
func (p *platform) subscriptionsRoutes() (httpapi.Routes, error) {
	cfg, err := p.subscriptionsConfig()
	if err != nil {
		cfg.SecretsKey = nil // reported by the rules routes; HTTP subscriptions answer 503
	}
	if cfg.Keys == nil {
		p.log.Warn("NATS subscriptions are unavailable: the gateway has no key set of the private bus (PROST_NATS_AUTH_DIR)")
	}
	return subscriptionshttp.New(subscriptions.New(p.pool, cfg), p.js, subscriptionshttp.StreamConfig{
		Heartbeat: p.env.StreamHeartbeat, Reveal: cfg.Reveal, Logger: p.log.With("service", "gateway")}), nil
}

// subscriptionsService is the subscriptions service: the fan-out consumer
// and the workers that deliver HTTP subscriptions.
func (p *platform) subscriptionsService() (*subscriptionssvc.Service, error) {
	cfg, err := p.subscriptionsConfig()
	if err != nil {
		return nil, err
	}
	if cfg.SecretsKey == nil {
		p.log.Warn("PROST_SECRETS_KEY is not set: HTTP subscriptions cannot be delivered until it is")
	}
	ccfg, err := p.consumerConfig(subscriptionssvc.ConsumerName, "subscriptions")
	if err != nil {
		return nil, err
	}
	return subscriptionssvc.New(p.pool, p.js, subscriptionssvc.Config{
		Consumer:      ccfg,
		Subscriptions: cfg,
		Jobs:          p.subscriptionsJobs,
		Logger:        p.log.With("service", "subscriptions"),
	})
}

// syncRevocations pushes the tenants account JWT with every revocation
// recorded, so a server that lost them (a new one) refuses revoked
// credentials again.
func (p *platform) syncRevocations(ctx context.Context) {
	if p.natsAccounts == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.natsAccounts.Sync(sctx, p.pool); err != nil {
		p.log.Error("cannot push the revocations of tenants' NATS credentials", "error", err)
	}
}

// parseDurations reads a comma-separated list of Go durations.
func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration", part)
		}
		out = append(out, d)
	}
	return out, nil
}
