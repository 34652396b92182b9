package subscriptions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/subscriptions/internal/subscriptionsdb"
	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
	"github.com/prost-platform/prost/pkg/webhook"
)

var base64Decode = base64.StdEncoding.DecodeString

// Defaults of Config.
const (
	// DefaultDeliveryTimeout bounds one HTTP attempt.
	DefaultDeliveryTimeout = 10 * time.Second
)

// UserAgent is sent with every HTTP delivery.
const UserAgent = "PROST-Subscriptions/1"

// Revealer reveals a tenant's encrypted values in an event document.
type Revealer interface {
	Reveal(ctx context.Context, tenant uuid.UUID, doc []byte) ([]byte, error)
}

// Config describes a Service. The zero value of each field is usable; a
// Service without SecretsKey refuses HTTP subscriptions, one without Keys,
// JS and Accounts refuses NATS subscriptions.
type Config struct {
	// SecretsKey seals and opens HTTP signing secrets (PROST_SECRETS_KEY).
	SecretsKey *secretbox.Key
	// JS manages the consumers of NATS subscriptions.
	JS jetstream.JetStream
	// Keys is the private bus's key set: it mints tenants' credentials.
	Keys *natsauth.KeySet
	// Accounts revokes tenants' credentials.
	Accounts *natsauth.Accounts
	// NATSURL is where tenants reach the bus, shown as a NATS
	// subscription's sink (PROST_NATS_PUBLIC_URL).
	NATSURL string
	// RetrySchedule is the retry schedule of subscriptions that set none.
	// Defaults to DefaultRetrySchedule.
	RetrySchedule []time.Duration
	// DisableAfter disables an HTTP subscription whose attempts keep failing
	// for longer. Defaults to DefaultDisableAfter.
	DisableAfter time.Duration
	// DeliveryTimeout bounds one HTTP attempt. Defaults to
	// DefaultDeliveryTimeout.
	DeliveryTimeout time.Duration
	// HTTPClient sends deliveries and test pings. Defaults to a client that
	// follows no redirects. Give it the outbound guard's client so no
	// delivery reaches an internal address.
	HTTPClient *http.Client
	// CheckSink, when set, vets an HTTP sink when it is created or changed
	// (the outbound guard's URL check); its error is the sink's 422.
	CheckSink func(sink string) error
	// Partitions is the gateway's PROST_PARTITIONS: the disabled event is
	// published on the partition of its subscription. Defaults to
	// DefaultPartitions.
	Partitions int
	// Wake, when set, is called after a transaction that made deliveries
	// runnable committed (the job client's Wake).
	Wake func()
	// Reveal, when set, turns the encrypted values of an event (personal
	// data its contract classifies) back into plain ones for the tenant it
	// is delivered to, or {"erased":true} once erased (*dataprotect.Keyring;
	// see docs/privacy.md). Without it, deliveries carry events as stored.
	Reveal Revealer
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Service manages subscriptions and delivers them. It is safe for
// concurrent use.
type Service struct {
	pool *pgxpool.Pool
	cfg  Config

	mu    sync.Mutex
	cache map[uuid.UUID]*compiled // fan-out: compiled filters by subscription
}

// New returns a Service over pool.
func New(pool *pgxpool.Pool, cfg Config) *Service {
	if len(cfg.RetrySchedule) == 0 {
		cfg.RetrySchedule = DefaultRetrySchedule
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = DefaultDisableAfter
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = subjects.DefaultPartitions
	}
	if cfg.Wake == nil {
		cfg.Wake = func() {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, cfg: cfg, cache: map[uuid.UUID]*compiled{}}
}

// Pool is the database the service works on.
func (s *Service) Pool() *pgxpool.Pool { return s.pool }

func (s *Service) natsReady() bool {
	return s.cfg.JS != nil && s.cfg.Keys != nil && s.cfg.Keys.TenantsSigning != nil && s.cfg.Accounts != nil
}

// consumerName is the JetStream consumer of a NATS subscription.
func consumerName(id uuid.UUID) string { return "sub_" + id.String() }

// inboxPrefix is the only inbox a NATS subscription's users may use.
func inboxPrefix(id uuid.UUID) string { return "_INBOX_" + id.String() }

// fromRow makes the resource from a row.
func (s *Service) fromRow(r subscriptionsdb.Subscription) Subscription {
	out := Subscription{ID: r.ID, Protocol: r.Protocol, Sink: r.Sink, Types: r.Types, Filters: rawFilters(r.Filters),
		Status: r.Status, DisabledAt: r.DisabledAt, FailingSince: r.FailingSince, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		tenant: r.TenantID}
	if out.Types == nil {
		out.Types = []string{}
	}
	_ = json.Unmarshal(r.Config, &out.Config)
	if r.DisabledReason != nil {
		out.DisabledReason = *r.DisabledReason
	}
	if r.Protocol == ProtocolNATS {
		out.ProtocolSettings = &ProtocolSettings{Stream: natsauth.ExportedStreams[0], Consumer: consumerName(r.ID),
			APIPrefix: natsauth.APIPrefix, InboxPrefix: inboxPrefix(r.ID)}
	}
	return out
}

// Create stores a new subscription. For HTTP it returns the signing secret
// when the server made it (the only time it is shown); for NATS it creates
// the JetStream consumer.
func (s *Service) Create(ctx context.Context, tenant uuid.UUID, in Input) (Subscription, error) {
	sp, err := validate(in, nil)
	if err != nil {
		return Subscription{}, err
	}
	if err := s.checkSink(sp, ""); err != nil {
		return Subscription{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Subscription{}, err
	}
	p := subscriptionsdb.CreateSubscriptionParams{ID: id, TenantID: tenant, Protocol: sp.protocol, Sink: sp.sink, Types: sp.types}
	p.Filters, _ = json.Marshal(sp.filters)
	p.Config, _ = json.Marshal(sp.config)
	var shown string
	switch sp.protocol {
	case ProtocolHTTP:
		if s.cfg.SecretsKey == nil {
			return Subscription{}, ErrNoSecretsKey
		}
		secret := sp.secret
		if secret == "" {
			secret = webhook.NewSecret()
			shown = secret
		}
		p.Secret = s.cfg.SecretsKey.Seal([]byte(secret), id[:])
	case ProtocolNATS:
		if !s.natsReady() {
			return Subscription{}, ErrNoBus
		}
		p.Sink = s.cfg.NATSURL
		c := consumerName(id)
		p.Consumer = &c
	}
	var out Subscription
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := subscriptionsdb.New(tx)
		n, err := q.CountSubscriptions(ctx, tenant)
		if err != nil {
			return err
		}
		if n >= MaxPerTenant {
			return ErrTooMany
		}
		row, err := q.CreateSubscription(ctx, p)
		if err != nil {
			return err
		}
		out = s.fromRow(row)
		if sp.protocol == ProtocolNATS {
			// Made before the commit: a subscription never exists without its
			// consumer. If the commit fails, the consumer is removed below.
			return s.putConsumer(ctx, tenant, id, sp.types, true)
		}
		return nil
	})
	if err != nil {
		if sp.protocol == ProtocolNATS {
			s.dropConsumer(context.WithoutCancel(ctx), id)
		}
		return Subscription{}, fmt.Errorf("subscriptions: create: %w", err)
	}
	if shown != "" {
		out.ProtocolSettings = &ProtocolSettings{Secret: shown}
	}
	s.cfg.Logger.Info("subscriptions: created", "tenant", tenant, "subscription_id", id, "protocol", sp.protocol)
	return out, nil
}

// Get returns one of the tenant's subscriptions.
func (s *Service) Get(ctx context.Context, tenant, id uuid.UUID) (Subscription, error) {
	row, err := subscriptionsdb.New(s.pool).GetSubscription(ctx, subscriptionsdb.GetSubscriptionParams{TenantID: tenant, ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, ErrNotFound
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("subscriptions: get: %w", err)
	}
	return s.fromRow(row), nil
}

// List returns a page of the tenant's subscriptions, oldest first, and the
// cursor of the next page ("" on the last).
func (s *Service) List(ctx context.Context, tenant uuid.UUID, cur string, limit int) ([]Subscription, string, error) {
	after := uuid.Nil
	if cur != "" {
		c, err := cursor.ParseString("sub", cur)
		if err != nil {
			return nil, "", err
		}
		if after, err = uuid.Parse(c); err != nil {
			return nil, "", cursor.ErrInvalid
		}
	}
	if limit <= 0 {
		limit = 100
	}
	rows, err := subscriptionsdb.New(s.pool).ListSubscriptions(ctx, subscriptionsdb.ListSubscriptionsParams{
		TenantID: tenant, After: after, MaxRows: int32(limit + 1)}) //nolint:gosec // limit <= 1000
	if err != nil {
		return nil, "", fmt.Errorf("subscriptions: list: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.String("sub", rows[len(rows)-1].ID.String())
	}
	out := make([]Subscription, len(rows))
	for i, r := range rows {
		out[i] = s.fromRow(r)
	}
	return out, next, nil
}

// Update changes a subscription (members left out keep their values).
// Disabling a NATS subscription revokes its credentials; disabling an HTTP
// subscription cancels its waiting deliveries (Recover re-sends them).
// Enabling clears the failure record.
func (s *Service) Update(ctx context.Context, tenant, id uuid.UUID, in Input) (Subscription, error) {
	var out Subscription
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := subscriptionsdb.New(tx)
		row, err := q.GetSubscriptionForUpdate(ctx, subscriptionsdb.GetSubscriptionForUpdateParams{TenantID: tenant, ID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		cur := s.fromRow(row)
		sp, err := validate(in, &cur)
		if err != nil {
			return err
		}
		if err := s.checkSink(sp, cur.Sink); err != nil {
			return err
		}
		p := subscriptionsdb.UpdateSubscriptionParams{TenantID: tenant, ID: id, Sink: sp.sink, Types: sp.types, Secret: row.Secret,
			Status: sp.status, DisabledReason: row.DisabledReason, DisabledAt: row.DisabledAt, FailingSince: row.FailingSince}
		p.Filters, _ = json.Marshal(sp.filters)
		p.Config, _ = json.Marshal(sp.config)
		if sp.secret != "" {
			if s.cfg.SecretsKey == nil {
				return ErrNoSecretsKey
			}
			p.Secret = s.cfg.SecretsKey.Seal([]byte(sp.secret), id[:])
		}
		switch {
		case sp.status == StatusActive && cur.Status == StatusDisabled:
			p.DisabledReason, p.DisabledAt, p.FailingSince = nil, nil, nil
		case sp.status == StatusDisabled && cur.Status == StatusActive:
			reason, now := "disabled by the App", time.Now()
			p.DisabledReason, p.DisabledAt = &reason, &now
			if err := s.stopTx(ctx, tx, cur); err != nil {
				return err
			}
		}
		row, err = q.UpdateSubscription(ctx, p)
		if err != nil {
			return err
		}
		out = s.fromRow(row)
		if cur.Protocol == ProtocolNATS && !slicesEqual(cur.Types, sp.types) {
			if !s.natsReady() {
				return ErrNoBus
			}
			return s.putConsumer(ctx, tenant, id, sp.types, false)
		}
		return nil
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("subscriptions: update: %w", err)
	}
	return out, nil
}

// checkSink runs CheckSink on a new or changed HTTP sink.
func (s *Service) checkSink(sp spec, was string) error {
	if s.cfg.CheckSink == nil || sp.protocol != ProtocolHTTP || sp.sink == was {
		return nil
	}
	if err := s.cfg.CheckSink(sp.sink); err != nil {
		return problem.InvalidField("sink", err.Error())
	}
	return nil
}

// stopTx makes a subscription being disabled deliver nothing more: an HTTP
// subscription's waiting deliveries are cancelled, a NATS subscription's
// credentials revoked.
func (s *Service) stopTx(ctx context.Context, tx pgx.Tx, sub Subscription) error {
	q := subscriptionsdb.New(tx)
	if sub.Protocol == ProtocolHTTP {
		_, err := q.CancelOpenDeliveries(ctx, sub.ID)
		return err
	}
	keys, err := q.RevokeCredentials(ctx, sub.ID)
	if err != nil || len(keys) == 0 {
		return err
	}
	if s.cfg.Accounts == nil {
		return ErrNoBus
	}
	return s.cfg.Accounts.RevokeTx(ctx, tx, keys)
}

// Delete removes a subscription, its deliveries and attempts; a NATS
// subscription's credentials are revoked before Delete returns, and its
// consumer deleted.
func (s *Service) Delete(ctx context.Context, tenant, id uuid.UUID) error {
	var protocol string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := subscriptionsdb.New(tx)
		row, err := q.GetSubscriptionForUpdate(ctx, subscriptionsdb.GetSubscriptionForUpdateParams{TenantID: tenant, ID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		protocol = row.Protocol
		if row.Protocol == ProtocolNATS {
			if err := s.stopTx(ctx, tx, s.fromRow(row)); err != nil {
				return err
			}
		}
		_, err = q.DeleteSubscription(ctx, subscriptionsdb.DeleteSubscriptionParams{TenantID: tenant, ID: id})
		return err
	})
	if err != nil {
		return fmt.Errorf("subscriptions: delete: %w", err)
	}
	if protocol == ProtocolNATS {
		s.dropConsumer(ctx, id)
	}
	s.cfg.Logger.Info("subscriptions: deleted", "tenant", tenant, "subscription_id", id)
	return nil
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
