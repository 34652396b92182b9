package billing

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	stripe "github.com/stripe/stripe-go/v85"

	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/problem"
)

// Statuses of a Stripe connection.
const (
	// StatusConnected: a live-mode key that Stripe accepted.
	StatusConnected = "connected"
	// StatusTest: a test-mode key that Stripe accepted.
	StatusTest = "test"
	// StatusDisconnected: the App removed its connection; no secret is kept.
	StatusDisconnected = "disconnected"
	// StatusError: Stripe refused the key or could not be reached when it
	// was last used; StatusDetail says why.
	StatusError = "error"
)

// ConnectionInput is the body of PUT /v1/billing/stripe.
type ConnectionInput struct {
	// SecretKey is a Stripe secret or restricted key (sk_test_, rk_test_,
	// sk_live_, rk_live_).
	SecretKey string `json:"secret_key"`
	// WebhookSecret is the signing secret (whsec_...) of the Stripe webhook
	// endpoint pointed at /v1/billing/stripe/webhooks/{app}. Empty keeps
	// the current one. A new one replaces it; the old one keeps verifying
	// for Config.WebhookSecretOverlap.
	WebhookSecret string `json:"webhook_secret"`
	// Mode is test or live; empty takes the key's mode. It must match the
	// key.
	Mode string `json:"mode"`
}

// Connection is an App's Stripe connection as the API shows it: never a
// secret, only the key's first and last characters.
type Connection struct {
	Mode         string `json:"mode"`
	Status       string `json:"status"`
	StatusDetail string `json:"status_detail,omitempty"`
	KeyHint      string `json:"key_hint,omitempty"`
	AccountID    string `json:"account_id,omitempty"`
	// WebhookSecret tells whether a webhook signing secret is set.
	WebhookSecret bool `json:"webhook_secret_set"`
	// PreviousSecretUntil is when the replaced webhook secret stops
	// verifying, while it still does.
	PreviousSecretUntil *time.Time `json:"previous_webhook_secret_until,omitempty"`
	// WebhookPath is where to point the App's Stripe webhook endpoint.
	WebhookPath string     `json:"webhook_path"`
	CheckedAt   *time.Time `json:"checked_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// sealing roles (the associated data binds each sealed secret to its App and role).
const (
	roleSecretKey     = "secret_key"
	roleWebhookSecret = "webhook_secret"
)

func sealAD(tenant uuid.UUID, role string) []byte {
	return []byte("prost/billing/stripe/" + role + "\x00" + tenant.String())
}

// keyMode is the mode of a Stripe key, "" when it is not one.
func keyMode(key string) string {
	switch {
	case strings.HasPrefix(key, "sk_test_"), strings.HasPrefix(key, "rk_test_"):
		return "test"
	case strings.HasPrefix(key, "sk_live_"), strings.HasPrefix(key, "rk_live_"):
		return "live"
	}
	return ""
}

func keyHint(key string) string {
	if len(key) < 16 {
		return key[:min(len(key), 8)] + "…"
	}
	return key[:8] + "…" + key[len(key)-4:]
}

// Connect stores the App's Stripe connection (sealed) after one real call
// to Stripe (GET /v1/account) that decides its status: test or connected
// when Stripe accepted the key, error (with the reason) when it did not.
func (s *Service) Connect(ctx context.Context, tenant uuid.UUID, in ConnectionInput) (Connection, error) {
	if s.cfg.SecretsKey == nil {
		return Connection{}, ErrNoSecretsKey
	}
	var fields []problem.FieldError
	mode := keyMode(in.SecretKey)
	switch {
	case mode == "" || len(in.SecretKey) > 255 || strings.ContainsAny(in.SecretKey, " \t\r\n"):
		fields = append(fields, problem.FieldError{Field: "/secret_key", Detail: "a Stripe secret or restricted key: sk_test_..., rk_test_..., sk_live_... or rk_live_..."})
	case in.Mode != "" && in.Mode != "test" && in.Mode != "live":
		fields = append(fields, problem.FieldError{Field: "/mode", Detail: "test or live"})
	case in.Mode != "" && in.Mode != mode:
		fields = append(fields, problem.FieldError{Field: "/mode", Detail: fmt.Sprintf("mode is %s but the key is a %s-mode key", in.Mode, mode)})
	}
	if in.WebhookSecret != "" && (!strings.HasPrefix(in.WebhookSecret, "whsec_") || len(in.WebhookSecret) > 255) {
		fields = append(fields, problem.FieldError{Field: "/webhook_secret", Detail: "the signing secret of the Stripe webhook endpoint: whsec_..."})
	}
	if len(fields) > 0 {
		return Connection{}, &problem.Error{Kind: problem.Invalid, Msg: "the Stripe connection is invalid", Fields: fields}
	}
	status, detail, account := s.check(ctx, in.SecretKey, mode)
	key := s.cfg.SecretsKey
	var row billingdb.BillingStripeConnection
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := billingdb.New(tx)
		p := billingdb.UpsertConnectionParams{TenantID: tenant, Mode: mode, SecretKey: key.Seal([]byte(in.SecretKey), sealAD(tenant, roleSecretKey)),
			KeyHint: keyHint(in.SecretKey), Status: status, StatusDetail: detail, AccountID: account}
		old, err := q.GetConnectionForUpdate(ctx, tenant)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			p.WebhookSecret, p.PreviousWebhookSecret, p.PreviousUntil = old.WebhookSecret, old.PreviousWebhookSecret, old.PreviousUntil
		}
		if in.WebhookSecret != "" {
			current, _ := key.Open(p.WebhookSecret, sealAD(tenant, roleWebhookSecret))
			if current == nil || subtle.ConstantTimeCompare(current, []byte(in.WebhookSecret)) != 1 {
				if current != nil {
					p.PreviousWebhookSecret, p.PreviousUntil = p.WebhookSecret, ptr(s.cfg.Now().Add(s.cfg.WebhookSecretOverlap))
				}
				p.WebhookSecret = key.Seal([]byte(in.WebhookSecret), sealAD(tenant, roleWebhookSecret))
			}
		}
		row, err = q.UpsertConnection(ctx, p)
		return err
	})
	if err != nil {
		return Connection{}, fmt.Errorf("billing: store stripe connection: %w", err)
	}
	return s.connectionFrom(row), nil
}

// checkTimeout bounds the call that checks a new connection.
const checkTimeout = 10 * time.Second

// check makes one real call with key and returns the connection's status.
func (s *Service) check(ctx context.Context, key, mode string) (status, detail, account string) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	acct, err := s.stripe(key).V1Accounts.Retrieve(ctx, nil)
	if err != nil {
		return StatusError, describeStripeError(err), ""
	}
	if mode == "live" {
		return StatusConnected, "", acct.ID
	}
	return StatusTest, "", acct.ID
}

// Connection returns the App's Stripe connection.
func (s *Service) Connection(ctx context.Context, tenant uuid.UUID) (Connection, error) {
	row, err := s.q.GetConnection(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return Connection{}, ErrNoConnection
	}
	if err != nil {
		return Connection{}, fmt.Errorf("billing: read stripe connection: %w", err)
	}
	return s.connectionFrom(row), nil
}

// Disconnect forgets the App's Stripe secrets; status becomes disconnected.
func (s *Service) Disconnect(ctx context.Context, tenant uuid.UUID) (Connection, error) {
	row, err := s.q.DisconnectConnection(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return Connection{}, ErrNoConnection
	}
	if err != nil {
		return Connection{}, fmt.Errorf("billing: disconnect stripe: %w", err)
	}
	return s.connectionFrom(row), nil
}

func (s *Service) connectionFrom(r billingdb.BillingStripeConnection) Connection {
	c := Connection{Mode: r.Mode, Status: r.Status, StatusDetail: r.StatusDetail, KeyHint: r.KeyHint, AccountID: r.AccountID,
		WebhookSecret: r.WebhookSecret != nil, WebhookPath: "/v1/billing/stripe/webhooks/" + r.TenantID.String(),
		CheckedAt: r.CheckedAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.PreviousWebhookSecret != nil && r.PreviousUntil != nil && r.PreviousUntil.After(s.cfg.Now()) {
		c.PreviousSecretUntil = r.PreviousUntil
	}
	if r.Status == StatusDisconnected {
		c.KeyHint = ""
	}
	return c
}

// stripe returns a Stripe client with key on the configured API.
func (s *Service) stripe(key string) *stripe.Client {
	b := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:        stripe.String(s.cfg.StripeAPIURL),
		HTTPClient: s.cfg.HTTPClient,
		// The job engine owns retries (with the same idempotency key);
		// stripe-go's own retry of network errors reuses the key too.
		MaxNetworkRetries: stripe.Int64(1),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return stripe.NewClient(key, stripe.WithBackends(b))
}

// client opens the App's secret key and returns a client for it.
func (s *Service) client(ctx context.Context, q *billingdb.Queries, tenant uuid.UUID) (*stripe.Client, billingdb.BillingStripeConnection, error) {
	row, err := q.GetConnection(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.SecretKey == nil) {
		return nil, row, ErrNotConnected
	}
	if err != nil {
		return nil, row, fmt.Errorf("billing: read stripe connection: %w", err)
	}
	if s.cfg.SecretsKey == nil {
		return nil, row, ErrNoSecretsKey
	}
	key, err := s.cfg.SecretsKey.Open(row.SecretKey, sealAD(tenant, roleSecretKey))
	if err != nil {
		return nil, row, problem.Errorf(problem.Unavailable, "the App's Stripe key cannot be opened with this server's PROST_SECRETS_KEY: %w", err)
	}
	return s.stripe(string(key)), row, nil
}

// describeStripeError says what went wrong with a Stripe call, without
// secrets.
func describeStripeError(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) {
		msg := se.Msg
		if msg == "" {
			msg = string(se.Type)
		}
		return fmt.Sprintf("Stripe answered %d: %s", se.HTTPStatusCode, msg)
	}
	return "cannot reach Stripe: " + err.Error()
}

// permanentStripe reports whether a Stripe error cannot be fixed by
// retrying: a 4xx other than 409 (idempotency conflict in flight) and 429.
func permanentStripe(err error) bool {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.HTTPStatusCode
	return c >= 400 && c < 500 && c != http.StatusConflict && c != http.StatusTooManyRequests
}

// noteAuthFailure marks the connection error when Stripe refused its key.
func (s *Service) noteAuthFailure(ctx context.Context, tenant uuid.UUID, err error) {
	var se *stripe.Error
	if errors.As(err, &se) && (se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden) {
		if e := s.q.SetConnectionStatus(ctx, billingdb.SetConnectionStatusParams{TenantID: tenant, Status: StatusError,
			StatusDetail: describeStripeError(err)}); e != nil {
			s.log.Warn("billing: cannot record the Stripe connection's error", "error", e)
		}
	}
}
