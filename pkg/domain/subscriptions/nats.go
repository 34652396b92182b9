package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/domain/subscriptions/internal/subscriptionsdb"
	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/subjects"
)

// Settings of the consumers made for NATS subscriptions.
const (
	// ConsumerAckWait is how long a fetched message waits for its ack
	// before it is delivered again.
	ConsumerAckWait = 30 * time.Second
	// ConsumerMaxAckPending caps the messages a subscriber holds unacked.
	ConsumerMaxAckPending = 1000
	// ConsumerMaxRequestBatch caps the messages one fetch asks for (the
	// nats.go Consume default of 500 is above it: use PullMaxMessages).
	ConsumerMaxRequestBatch = 256
)

// filterSubjects are a NATS subscription's subjects: the tenant's events,
// of the subscription's types when it names some.
func filterSubjects(tenant uuid.UUID, types []string) []string {
	if len(types) == 0 {
		return []string{subjects.Tenant(tenant)}
	}
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = subjects.Root + "." + tenant.String() + ".*." + subjects.TypeTokens(t)
	}
	return out
}

// putConsumer creates (create) or updates the consumer of a NATS
// subscription. A new consumer starts with the events published after it.
func (s *Service) putConsumer(ctx context.Context, tenant, id uuid.UUID, types []string, create bool) error {
	cfg := jetstream.ConsumerConfig{
		Durable:            consumerName(id),
		Description:        "NATS subscription " + id.String() + " of App " + tenant.String(),
		FilterSubjects:     filterSubjects(tenant, types),
		AckPolicy:          jetstream.AckExplicitPolicy,
		AckWait:            ConsumerAckWait,
		MaxAckPending:      ConsumerMaxAckPending,
		MaxWaiting:         16,
		MaxRequestBatch:    ConsumerMaxRequestBatch,
		MaxRequestExpires:  natsauth.MaxRequestExpires,
		MaxRequestMaxBytes: 4 << 20,
		DeliverPolicy:      jetstream.DeliverNewPolicy,
	}
	stream := natsauth.ExportedStreams[0]
	var err error
	if create {
		_, err = s.cfg.JS.CreateConsumer(ctx, stream, cfg)
	} else {
		_, err = s.cfg.JS.UpdateConsumer(ctx, stream, cfg)
	}
	if err != nil {
		return fmt.Errorf("subscriptions: consumer %s: %w", cfg.Durable, err)
	}
	return nil
}

// dropConsumer deletes a NATS subscription's consumer; a failure is logged
// (nobody can read an orphaned consumer: its credentials are revoked).
func (s *Service) dropConsumer(ctx context.Context, id uuid.UUID) {
	if s.cfg.JS == nil {
		return
	}
	err := s.cfg.JS.DeleteConsumer(ctx, natsauth.ExportedStreams[0], consumerName(id))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.cfg.Logger.Warn("subscriptions: cannot delete the consumer of a deleted subscription", "subscription_id", id, "error", err)
	}
}

// Credentials are a NATS subscription's credentials and how to use them.
type Credentials struct {
	// Creds is the .creds file (user JWT and nkey seed): shown once.
	Creds string `json:"creds"`
	// User is the user's public key.
	User string `json:"user"`
	// URL is where to connect.
	URL         string `json:"url"`
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	APIPrefix   string `json:"api_prefix"`
	InboxPrefix string `json:"inbox_prefix"`
}

// Credentials mints the NATS subscription's credentials the first time it
// is asked; afterwards it answers ErrCredentialsIssued (they are shown once:
// RotateCredentials makes new ones).
func (s *Service) Credentials(ctx context.Context, tenant, id uuid.UUID) (Credentials, error) {
	return s.issue(ctx, tenant, id, false)
}

// RotateCredentials revokes the subscription's credentials (their
// connections are dropped before it returns) and mints new ones.
func (s *Service) RotateCredentials(ctx context.Context, tenant, id uuid.UUID) (Credentials, error) {
	return s.issue(ctx, tenant, id, true)
}

func (s *Service) issue(ctx context.Context, tenant, id uuid.UUID, rotate bool) (Credentials, error) {
	var out Credentials
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := subscriptionsdb.New(tx)
		row, err := q.GetSubscriptionForUpdate(ctx, subscriptionsdb.GetSubscriptionForUpdateParams{TenantID: tenant, ID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		switch {
		case row.Protocol != ProtocolNATS:
			return ErrNotNATS
		case row.Status != StatusActive:
			return ErrDisabled
		case !s.natsReady():
			return ErrNoBus
		}
		if rotate {
			keys, err := q.RevokeCredentials(ctx, id)
			if err != nil {
				return err
			}
			if err := s.cfg.Accounts.RevokeTx(ctx, tx, keys); err != nil {
				return err
			}
		} else if n, err := q.CountCredentials(ctx, id); err != nil {
			return err
		} else if n > 0 {
			return ErrCredentialsIssued
		}
		m, err := s.cfg.Keys.MintConsumerUser(natsauth.ConsumerUser{Name: "subscription-" + id.String(),
			Stream: natsauth.ExportedStreams[0], Consumer: consumerName(id), InboxPrefix: inboxPrefix(id)})
		if err != nil {
			return err
		}
		if err := q.InsertCredential(ctx, subscriptionsdb.InsertCredentialParams{UserKey: m.UserKey, TenantID: tenant,
			SubscriptionID: id, IssuedAt: m.IssuedAt}); err != nil {
			return err
		}
		out = Credentials{Creds: string(m.Creds), User: m.UserKey, URL: s.cfg.NATSURL, Stream: natsauth.ExportedStreams[0],
			Consumer: consumerName(id), APIPrefix: natsauth.APIPrefix, InboxPrefix: inboxPrefix(id)}
		return nil
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("subscriptions: credentials: %w", err)
	}
	s.cfg.Logger.Info("subscriptions: credentials issued", "tenant", tenant, "subscription_id", id, "user", out.User, "rotated", rotate)
	return out, nil
}
