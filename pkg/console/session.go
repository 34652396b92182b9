package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/console/internal/consoledb"
	"github.com/prost-platform/prost/pkg/problem"
)

// Kinds of session.
const (
	// KindTenant is a session signed in with an App's key and secret: the
	// console acts as that App on the tenant API.
	KindTenant = "tenant"
	// KindOperator is a session signed in with the admin token: the
	// console acts as an operator on the admin API.
	KindOperator = "operator"
)

// Defaults of Config.
const (
	// DefaultTTL is how long a session lasts at most, used or not.
	DefaultTTL = 12 * time.Hour
	// DefaultIdleTimeout ends a session that made no request for that long.
	DefaultIdleTimeout = time.Hour
	// TokenPrefix starts every session token.
	TokenPrefix = "prost_cs_"
)

// touchEvery is how stale last_seen_at may get before a request writes it
// again: one write a minute per session, not one per request.
const touchEvery = time.Minute

// ErrNoSession means the token names no session that is still valid: none
// at all, or one that expired, went idle or was revoked.
var ErrNoSession = problem.Errorf(problem.Unauthenticated, "no console session, or it has ended: sign in again")

// Config tunes a Store. The zero value is usable.
type Config struct {
	// TTL is a session's longest life. Defaults to DefaultTTL.
	TTL time.Duration
	// IdleTimeout ends a session unused for that long. Defaults to
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Session is a signed-in console user. It never carries the token.
type Session struct {
	ID   uuid.UUID `json:"session_id"`
	Kind string    `json:"kind"`
	// TenantID is the App of a tenant session (uuid.Nil for an operator).
	TenantID uuid.UUID `json:"app_id,omitzero"`
	// Name is what the console shows: the App's name, or "operator".
	Name string `json:"name"`
	// Stamp is what the principal's credentials looked like at sign-in;
	// a session whose principal no longer has this stamp has ended.
	Stamp string `json:"-"`
	// CSRFToken must accompany every state-changing request the session
	// makes (X-CSRF-Token).
	CSRFToken  string    `json:"-"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// NewSession says who signs in.
type NewSession struct {
	Kind      string
	TenantID  uuid.UUID
	Name      string
	Stamp     string
	UserAgent string
}

// Store keeps sessions in Postgres, so that every gateway process knows
// every session and a revocation applies everywhere at once. It is safe for
// concurrent use.
type Store struct {
	q   *consoledb.Queries
	cfg Config
	now func() time.Time
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool, cfg Config) *Store {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	return &Store{q: consoledb.New(pool), cfg: cfg, now: time.Now}
}

// Config returns the Store's configuration, defaults applied.
func (s *Store) Config() Config { return s.cfg }

// Create starts a session and returns it with its token, the only secret
// the browser holds (in a cookie); the Store keeps the token's hash only.
// Sessions that ended more than a day ago are deleted on the way.
func (s *Store) Create(ctx context.Context, n NewSession) (Session, string, error) {
	if n.Kind != KindTenant && n.Kind != KindOperator {
		return Session{}, "", fmt.Errorf("console: unknown session kind %q", n.Kind)
	}
	if (n.Kind == KindTenant) != (n.TenantID != uuid.Nil) {
		return Session{}, "", errors.New("console: a tenant session needs a tenant, an operator session none")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Session{}, "", err
	}
	token := TokenPrefix + randomString(32)
	var tenant *uuid.UUID
	if n.Kind == KindTenant {
		tenant = &n.TenantID
	}
	row, err := s.q.CreateSession(ctx, consoledb.CreateSessionParams{
		SessionID: id, TokenHash: hashToken(token), Kind: n.Kind, TenantID: tenant,
		DisplayName: clip(n.Name, 200), Stamp: n.Stamp, CsrfToken: randomString(32),
		UserAgent: clip(n.UserAgent, 300), ExpiresAt: s.now().Add(s.cfg.TTL),
	})
	if err != nil {
		return Session{}, "", fmt.Errorf("console: create session: %w", err)
	}
	if _, err := s.q.DeleteEndedSessions(ctx, s.now().Add(-24*time.Hour)); err != nil {
		return Session{}, "", fmt.Errorf("console: delete ended sessions: %w", err)
	}
	return fromRow(row), token, nil
}

// Lookup returns the live session of token, or ErrNoSession when it has
// none: unknown, expired, idle past IdleTimeout or revoked. A successful
// lookup counts as use for the idle timeout.
func (s *Store) Lookup(ctx context.Context, token string) (Session, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 128 {
		return Session{}, ErrNoSession
	}
	row, err := s.q.GetSessionByToken(ctx, hashToken(token))
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("console: look up session: %w", err)
	}
	now := s.now()
	if row.RevokedAt != nil || !now.Before(row.ExpiresAt) || now.Sub(row.LastSeenAt) >= s.cfg.IdleTimeout {
		return Session{}, ErrNoSession
	}
	if now.Sub(row.LastSeenAt) >= touchEvery {
		if err := s.q.TouchSession(ctx, row.SessionID); err != nil {
			return Session{}, fmt.Errorf("console: touch session: %w", err)
		}
		row.LastSeenAt = now
	}
	return fromRow(row), nil
}

// Revoke ends one session and returns 1, or 0 when it had already ended
// (not an error).
func (s *Store) Revoke(ctx context.Context, id uuid.UUID) (int64, error) {
	n, err := s.q.RevokeSession(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("console: revoke session: %w", err)
	}
	return n, nil
}

// RevokeTenant ends every session of an App and returns how many were live.
func (s *Store) RevokeTenant(ctx context.Context, tenant uuid.UUID) (int64, error) {
	n, err := s.q.RevokeTenantSessions(ctx, &tenant)
	if err != nil {
		return 0, fmt.Errorf("console: revoke sessions: %w", err)
	}
	return n, nil
}

// RevokeAll ends every session, tenants' and operators'.
func (s *Store) RevokeAll(ctx context.Context) (int64, error) {
	n, err := s.q.RevokeAllSessions(ctx)
	if err != nil {
		return 0, fmt.Errorf("console: revoke sessions: %w", err)
	}
	return n, nil
}

// List returns the live sessions (of one App when tenant is not nil), newest
// first, at most 1,000. Sessions that went idle but were not used since are
// listed until they expire.
func (s *Store) List(ctx context.Context, tenant *uuid.UUID) ([]Session, error) {
	rows, err := s.q.ListSessions(ctx, consoledb.ListSessionsParams{TenantID: tenant, MaxRows: 1000})
	if err != nil {
		return nil, fmt.Errorf("console: list sessions: %w", err)
	}
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, nil
}

func fromRow(r consoledb.ConsoleSession) Session {
	s := Session{ID: r.SessionID, Kind: r.Kind, Name: r.DisplayName, Stamp: r.Stamp, CSRFToken: r.CsrfToken,
		UserAgent: r.UserAgent, CreatedAt: r.CreatedAt, LastSeenAt: r.LastSeenAt, ExpiresAt: r.ExpiresAt}
	if r.TenantID != nil {
		s.TenantID = *r.TenantID
	}
	return s
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// clip shortens s to at most n bytes of valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "")
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
