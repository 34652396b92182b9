// Package apps manages PROST's tenants (Apps) and authenticates their requests.
//
// An App has an internal id (a UUID that becomes the tenant id of every event
// it records), a public API key and a secret. The secret is 32 random bytes,
// shown once when the App is created or its secret rotated, and stored only as
// its SHA-256 hash; presented secrets are hashed and compared in constant time.
// Apps are never deleted, only disabled.
package apps

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/domain/apps/internal/appsdb"
	"github.com/prost-platform/prost/pkg/invalidate"
	"github.com/prost-platform/prost/pkg/problem"
)

// Status of an App.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Prefixes of the credentials, so a leaked value is recognisable (and
// greppable by secret scanners).
const (
	KeyPrefix    = "prost_pk_"
	SecretPrefix = "prost_sk_"
)

var (
	// ErrNotFound means no App has the given id.
	ErrNotFound = problem.Errorf(problem.NotFound, "no App with that id")
	// ErrUnauthenticated means the credentials are missing or wrong.
	ErrUnauthenticated = problem.Errorf(problem.Unauthenticated, "missing or invalid X-Prost-App-Key / X-Prost-App-Secret")
	// ErrDisabled means the credentials are right but the App is disabled.
	ErrDisabled = problem.Errorf(problem.Forbidden, "this App is disabled")
	// ErrInvalidName means the name is empty, too long or not UTF-8.
	ErrInvalidName = problem.InvalidField("name", "app name must be 1 to 200 characters of valid UTF-8")
)

// App is a tenant. It never carries the secret.
type App struct {
	ID              uuid.UUID `json:"app_id"`
	Name            string    `json:"name"`
	APIKey          string    `json:"api_key"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	SecretRotatedAt time.Time `json:"secret_rotated_at"`
}

// Credentials are what an App presents: shown once, at creation or rotation.
type Credentials struct {
	AppID     uuid.UUID `json:"app_id"`
	APIKey    string    `json:"api_key"`
	APISecret string    `json:"api_secret"`
}

// Config tunes a Store. The zero value is usable.
type Config struct {
	// Feed, when set, carries changes made by other processes (a rotation, a
	// disable) to this Store's cache at once, and changes made here to
	// theirs.
	Feed *invalidate.Feed
	// CacheTTL is how long a successful credential lookup is reused before the
	// database is asked again. Without a Feed it bounds how long a disable or
	// rotation made by another process takes to apply here: it defaults to
	// DefaultCacheTTL and is capped at 5s. With a Feed, which hears every
	// change from the apps table's trigger, it is a safety net against a write
	// the trigger does not see, defaulting to invalidate.DefaultTTL.
	// Changes made through this Store apply at once.
	CacheTTL time.Duration
	// CacheSize caps the number of cached Apps; the cache is emptied when full.
	// Defaults to 10,000.
	CacheSize int
}

// Store creates, lists, changes and authenticates Apps. It is safe for
// concurrent use.
type Store struct {
	q   *appsdb.Queries
	cfg Config
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cached // by API key
	// gen counts forgets. A lookup that missed the cache caches its row only
	// if no forget happened meanwhile: the row it read may predate the change.
	gen uint64
}

type cached struct {
	row     appsdb.App
	fetched time.Time
}

// DefaultCacheTTL is Config.CacheTTL's default without a Feed.
const DefaultCacheTTL = 2 * time.Second

// invalidateTopic names the Apps' changes on an invalidate.Feed; the key is
// the API key.
const invalidateTopic = "apps"

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool, cfg Config) *Store {
	switch {
	case cfg.Feed != nil && cfg.CacheTTL <= 0:
		cfg.CacheTTL = invalidate.DefaultTTL
	case cfg.Feed == nil && cfg.CacheTTL <= 0:
		cfg.CacheTTL = DefaultCacheTTL
	case cfg.Feed == nil && cfg.CacheTTL > 5*time.Second:
		cfg.CacheTTL = 5 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10_000
	}
	s := &Store{q: appsdb.New(pool), cfg: cfg, now: time.Now, cache: map[string]cached{}}
	cfg.Feed.Subscribe(invalidateTopic, s.forget)
	return s
}

// Create makes a new active App and returns it with its credentials. The
// secret in the credentials is never retrievable again.
func (s *Store) Create(ctx context.Context, name string) (App, Credentials, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return App{}, Credentials{}, ErrInvalidName
	}
	id, err := uuid.NewV7()
	if err != nil {
		return App{}, Credentials{}, err
	}
	key := KeyPrefix + randomHex(16)
	secret := newSecret()
	row, err := s.q.CreateApp(ctx, appsdb.CreateAppParams{AppID: id, Name: name, ApiKey: key, SecretHash: hashSecret(secret)})
	if err != nil {
		return App{}, Credentials{}, fmt.Errorf("create app: %w", err)
	}
	return fromRow(row), Credentials{AppID: id, APIKey: key, APISecret: secret}, nil
}

// Get returns one App.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (App, error) {
	row, err := s.q.GetApp(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return App{}, ErrNotFound
	}
	if err != nil {
		return App{}, fmt.Errorf("get app: %w", err)
	}
	return fromRow(row), nil
}

// ListParams selects a page of Apps in creation order.
type ListParams struct {
	// Limit is the page size. Defaults to 100; at most 1,000.
	Limit int
	// After is the last App of the previous page (nil for the first page).
	After *App
}

// List returns a page of Apps and whether more follow.
func (s *Store) List(ctx context.Context, p ListParams) ([]App, bool, error) {
	if p.Limit <= 0 {
		p.Limit = 100
	}
	p.Limit = min(p.Limit, 1000)
	arg := appsdb.ListAppsParams{MaxRows: int32(p.Limit + 1)}
	if p.After != nil {
		arg.AfterCreated, arg.AfterID = &p.After.CreatedAt, &p.After.ID
	}
	rows, err := s.q.ListApps(ctx, arg)
	if err != nil {
		return nil, false, fmt.Errorf("list apps: %w", err)
	}
	more := len(rows) > p.Limit
	if more {
		rows = rows[:p.Limit]
	}
	out := make([]App, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, more, nil
}

// RotateSecret replaces an App's secret and returns the new credentials. The
// old secret stops working at once in this process and, with a Feed, at once
// in every other (else within CacheTTL).
func (s *Store) RotateSecret(ctx context.Context, id uuid.UUID) (Credentials, error) {
	secret := newSecret()
	row, err := s.q.RotateSecret(ctx, appsdb.RotateSecretParams{AppID: id, SecretHash: hashSecret(secret)})
	if errors.Is(err, pgx.ErrNoRows) {
		return Credentials{}, ErrNotFound
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("rotate secret: %w", err)
	}
	s.forget(row.ApiKey) // the other processes hear of it from the row's trigger (migration 027)
	return Credentials{AppID: id, APIKey: row.ApiKey, APISecret: secret}, nil
}

// SetStatus enables or disables an App. Like RotateSecret, it applies at once
// here and within CacheTTL elsewhere.
func (s *Store) SetStatus(ctx context.Context, id uuid.UUID, status string) (App, error) {
	if status != StatusActive && status != StatusDisabled {
		return App{}, fmt.Errorf("status must be %q or %q", StatusActive, StatusDisabled)
	}
	row, err := s.q.SetStatus(ctx, appsdb.SetStatusParams{AppID: id, Status: status})
	if errors.Is(err, pgx.ErrNoRows) {
		return App{}, ErrNotFound
	}
	if err != nil {
		return App{}, fmt.Errorf("set app status: %w", err)
	}
	s.forget(row.ApiKey) // the other processes hear of it from the row's trigger (migration 027)
	return fromRow(row), nil
}

// Count returns the number of Apps.
func (s *Store) Count(ctx context.Context) (int64, error) { return s.q.CountApps(ctx) }

// Authenticate returns the active App whose key and secret these are. It
// returns ErrUnauthenticated for a missing, unknown or wrong credential and
// ErrDisabled for a disabled App. The secret is always compared in constant
// time against the stored hash, cached or not.
func (s *Store) Authenticate(ctx context.Context, key, secret string) (App, error) {
	if key == "" || secret == "" || len(key) > 128 || len(secret) > 256 {
		return App{}, ErrUnauthenticated
	}
	row, gen, ok := s.lookup(key)
	if !ok {
		var err error
		row, err = s.q.GetAppByKey(ctx, key)
		if errors.Is(err, pgx.ErrNoRows) {
			// Hash anyway so an unknown key costs what a known one does.
			_ = subtle.ConstantTimeCompare(hashSecret(secret), make([]byte, sha256.Size))
			return App{}, ErrUnauthenticated
		}
		if err != nil {
			return App{}, fmt.Errorf("authenticate: %w", err)
		}
		s.store(key, row, gen)
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), row.SecretHash) != 1 {
		return App{}, ErrUnauthenticated
	}
	if row.Status != StatusActive {
		return App{}, ErrDisabled
	}
	return fromRow(row), nil
}

// lookup returns the cached row of key, or the generation a caller that
// fetches the row itself passes to store.
func (s *Store) lookup(key string) (appsdb.App, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[key]
	if !ok || s.now().Sub(c.fetched) >= s.cfg.CacheTTL {
		return appsdb.App{}, s.gen, false
	}
	return c.row, s.gen, true
}

// store caches row unless a change was forgotten since lookup returned gen.
func (s *Store) store(key string, row appsdb.App, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if len(s.cache) >= s.cfg.CacheSize {
		clear(s.cache)
	}
	s.cache[key] = cached{row: row, fetched: s.now()}
}

// forget drops key's cached row ("" drops every row).
func (s *Store) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == "" {
		clear(s.cache)
	} else {
		delete(s.cache, key)
	}
	s.gen++
}

func fromRow(r appsdb.App) App {
	return App{ID: r.AppID, Name: r.Name, APIKey: r.ApiKey, Status: r.Status,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, SecretRotatedAt: r.SecretRotatedAt}
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
