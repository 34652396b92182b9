package dataprotect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/prost-platform/prost/pkg/dataprotect/internal/dataprotectdb"
	"github.com/prost-platform/prost/pkg/internal/lru"
	"github.com/prost-platform/prost/pkg/invalidate"
)

// Defaults of Config.
const (
	// DefaultCacheSize is how many unwrapped keys a Keyring keeps.
	DefaultCacheSize = 100_000
	// DefaultCacheTTL is how long a Keyring trusts a key it unwrapped: an
	// erasure made by another process applies here within it.
	DefaultCacheTTL = 5 * time.Second
	// DefaultMaxPeriod bounds how long one data key encrypts new values of
	// a subject and purpose before the next one takes over.
	DefaultMaxPeriod = 24 * time.Hour
)

// Config tunes a Keyring. KEK is required; the other fields' zero values
// take the defaults given.
type Config struct {
	// KEK wraps the data keys and tenants' pseudonymisation keys.
	KEK KEK
	// CacheSize bounds the unwrapped keys kept in memory. Defaults to
	// DefaultCacheSize.
	CacheSize int
	// CacheTTL is how long an unwrapped key (or the knowledge that a key is
	// gone) is trusted; erasures by this process apply at once, by others
	// at once through Feed, and within CacheTTL should a notification be
	// lost. Defaults to DefaultCacheTTL.
	CacheTTL time.Duration
	// Feed, when set, carries destructions between processes: each process
	// drops the keys of a tenant another process destroyed keys of.
	Feed *invalidate.Feed
	// MaxPeriod bounds a data key's encryption period: a key encrypts new
	// values for a tenth of its retention, at least a second and at most
	// MaxPeriod, so a value is kept at least its retention and at most its
	// retention plus that period. Defaults to DefaultMaxPeriod.
	MaxPeriod time.Duration
	// Now tells the time (tests move it). Defaults to time.Now.
	Now func() time.Time
	// Logger receives the keyring's logs. Defaults to discarding.
	Logger *slog.Logger
}

// Keyring keeps the data keys of classified values in Postgres, wrapped by
// the KEK, and encrypts (Protect), decrypts (Reveal) and destroys them. It
// is safe for concurrent use. Methods that only read (Reveal, RevealAll) may
// be called on a nil *Keyring: documents are then returned unchanged.
type Keyring struct {
	pool *pgxpool.Pool
	q    *dataprotectdb.Queries
	cfg  Config
	// tenants holds each tenant's pseudonymisation PRF.
	tenants *lru.Cache[uuid.UUID, prf.PRF]
	// current holds the key that encrypts new values of a scope now.
	current *lru.Cache[scopeKey, dataKey]
	// opened holds keys by id for decryption; a nil aead means destroyed.
	opened *lru.Cache[openKey, dataKey]
}

type scopeKey struct {
	tenant             uuid.UUID
	subject            string // the subject ref's bytes
	purpose, retention string
	period             int64
}

type openKey struct {
	tenant uuid.UUID
	key    uuid.UUID
}

type dataKey struct {
	id   uuid.UUID
	aead tink.AEAD
}

// New returns a keyring on pool.
func New(pool *pgxpool.Pool, cfg Config) (*Keyring, error) {
	if cfg.KEK == nil {
		return nil, errors.New("dataprotect: a KEK is required")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.MaxPeriod <= 0 {
		cfg.MaxPeriod = DefaultMaxPeriod
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Keyring{
		pool: pool, q: dataprotectdb.New(pool), cfg: cfg,
		tenants: lru.New[uuid.UUID, prf.PRF](10_000, 0),
		current: lru.New[scopeKey, dataKey](cfg.CacheSize, cfg.CacheTTL),
		opened:  lru.New[openKey, dataKey](cfg.CacheSize, cfg.CacheTTL),
	}
	cfg.Feed.Subscribe(invalidateTopic, func(key string) {
		if key == "" {
			k.current.RemoveIf(func(scopeKey) bool { return true })
			k.opened.RemoveIf(func(openKey) bool { return true })
			return
		}
		if t, err := uuid.Parse(key); err == nil {
			k.dropTenant(t)
		}
	})
	return k, nil
}

// invalidateTopic names key destructions on an invalidate.Feed; the key is
// the tenant.
const invalidateTopic = "dataprotect.keys"

// dropTenant forgets every cached data key of a tenant.
func (k *Keyring) dropTenant(t uuid.UUID) {
	k.current.RemoveIf(func(s scopeKey) bool { return s.tenant == t })
	k.opened.RemoveIf(func(o openKey) bool { return o.tenant == t })
}

// Associated data binding each wrapped key, and each value, to its owner.
func tenantKeyAD(tenant uuid.UUID) []byte { return []byte("prost/sref/v1\x00" + tenant.String()) }
func dataKeyAD(tenant, key uuid.UUID) []byte {
	return []byte("prost/dek/v1\x00" + tenant.String() + "\x00" + key.String())
}
func valueAD(tenant uuid.UUID) []byte { return []byte("prost/value/v1\x00" + tenant.String()) }

func (k *Keyring) wrap(ctx context.Context, h *keyset.Handle, ad []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithContext(ctx, keyset.NewBinaryWriter(&buf), k.cfg.KEK, ad); err != nil {
		return nil, fmt.Errorf("dataprotect: wrap: %w", err)
	}
	return buf.Bytes(), nil
}

func (k *Keyring) unwrap(ctx context.Context, wrapped, ad []byte) (*keyset.Handle, error) {
	h, err := keyset.ReadWithContext(ctx, keyset.NewBinaryReader(bytes.NewReader(wrapped)), k.cfg.KEK, ad)
	if err != nil {
		return nil, fmt.Errorf("dataprotect: unwrap (is the KEK version that wrapped it still configured?): %w", err)
	}
	return h, nil
}

// tenantPRF returns the tenant's pseudonymisation PRF, creating its key on
// first use.
func (k *Keyring) tenantPRF(ctx context.Context, tenant uuid.UUID) (prf.PRF, error) {
	if p, ok := k.tenants.Get(tenant); ok {
		return p, nil
	}
	row, err := k.q.GetTenantKey(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		h, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
		if err != nil {
			return nil, err
		}
		w, err := k.wrap(ctx, h, tenantKeyAD(tenant))
		if err != nil {
			return nil, err
		}
		// Another process may have created it meanwhile: theirs wins.
		if err := k.q.InsertTenantKey(ctx, dataprotectdb.InsertTenantKeyParams{TenantID: tenant, KekVersion: int64(k.cfg.KEK.Version()), Wrapped: w}); err != nil {
			return nil, fmt.Errorf("dataprotect: store tenant key: %w", err)
		}
		row, err = k.q.GetTenantKey(ctx, tenant)
		if err != nil {
			return nil, fmt.Errorf("dataprotect: read tenant key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("dataprotect: read tenant key: %w", err)
	}
	h, err := k.unwrap(ctx, row.Wrapped, tenantKeyAD(tenant))
	if err != nil {
		return nil, err
	}
	set, err := prf.NewPRFSet(h)
	if err != nil {
		return nil, err
	}
	p := set.PRFs[set.PrimaryID]
	k.tenants.Put(tenant, p)
	return p, nil
}

// SubjectRef returns the pseudonym under which a data subject's keys are
// stored: HMAC-SHA256 of the id under the tenant's pseudonymisation key.
// The id itself is never stored.
func (k *Keyring) SubjectRef(ctx context.Context, tenant uuid.UUID, subjectID string) ([]byte, error) {
	p, err := k.tenantPRF(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return p.ComputePRF([]byte("prost/subject/v1\x00"+subjectID), 32)
}

// Pseudonym returns a stable pseudonym of value for the tenant (22
// characters, base64url of 16 PRF bytes): the same value always gives the
// same pseudonym, which reveals nothing of it. Ingest uses it as the
// partition key when a contract's partition key is a classified value.
func (k *Keyring) Pseudonym(ctx context.Context, tenant uuid.UUID, value string) (string, error) {
	p, err := k.tenantPRF(ctx, tenant)
	if err != nil {
		return "", err
	}
	b, err := p.ComputePRF([]byte("prost/pseudonym/v1\x00"+value), 16)
	if err != nil {
		return "", err
	}
	return "p~" + b64(b), nil
}

// period returns the encryption period of a retention at now: its start,
// its end (use_until) and when its key is destroyed. Forever has one period
// that never ends.
func (k *Keyring) period(r Retention, now time.Time) (start time.Time, until, expires *time.Time) {
	if r.IsForever() {
		return time.Unix(0, 0).UTC(), nil, nil
	}
	w := min(max(r.approx()/10, time.Second), k.cfg.MaxPeriod)
	start = now.UTC().Truncate(w)
	u := start.Add(w)
	e := r.After(u)
	return start, &u, &e
}

// currentKey returns the key that encrypts new values of a subject's scope
// now, creating it when the period has none.
func (k *Keyring) currentKey(ctx context.Context, tenant uuid.UUID, sref []byte, purpose string, r Retention) (dataKey, error) {
	start, until, expires := k.period(r, k.cfg.Now())
	sk := scopeKey{tenant: tenant, subject: string(sref), purpose: purpose, retention: r.String(), period: start.UnixNano()}
	if dk, ok := k.current.Get(sk); ok {
		return dk, nil
	}
	p := dataprotectdb.GetScopeKeyParams{TenantID: tenant, SubjectRef: sref, Purpose: purpose, Retention: sk.retention, PeriodStart: start}
	for attempt := 0; attempt < 3; attempt++ {
		row, err := k.q.GetScopeKey(ctx, p)
		switch {
		case err == nil && row.Tombstoned:
			// Restored from a backup after it was destroyed: it must
			// never encrypt again. Drop it and make a new one.
			if err := k.q.DeleteKey(ctx, row.KeyID); err != nil {
				return dataKey{}, fmt.Errorf("dataprotect: drop a destroyed key: %w", err)
			}
			k.cfg.Logger.Warn("dataprotect: a destroyed data key was back (restored from a backup?); deleted again", "tenant", tenant, "key_id", row.KeyID)
			continue
		case err == nil:
			a, err := k.openWrapped(ctx, tenant, row.KeyID, row.Wrapped)
			if err != nil {
				return dataKey{}, err
			}
			dk := dataKey{id: row.KeyID, aead: a}
			k.current.Put(sk, dk)
			k.opened.Put(openKey{tenant, dk.id}, dk)
			return dk, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return dataKey{}, fmt.Errorf("dataprotect: read data key: %w", err)
		}
		id, err := uuid.NewRandom()
		if err != nil {
			return dataKey{}, err
		}
		h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
		if err != nil {
			return dataKey{}, err
		}
		w, err := k.wrap(ctx, h, dataKeyAD(tenant, id))
		if err != nil {
			return dataKey{}, err
		}
		n, err := k.q.InsertKey(ctx, dataprotectdb.InsertKeyParams{KeyID: id, TenantID: tenant, SubjectRef: sref, Purpose: purpose,
			Retention: sk.retention, PeriodStart: start, UseUntil: until, ExpiresAt: expires, KekVersion: int64(k.cfg.KEK.Version()), Wrapped: w})
		if err != nil {
			return dataKey{}, fmt.Errorf("dataprotect: store data key: %w", err)
		}
		if n == 0 {
			continue // another process made this period's key first: read theirs
		}
		a, err := aead.New(h)
		if err != nil {
			return dataKey{}, err
		}
		dk := dataKey{id: id, aead: a}
		k.current.Put(sk, dk)
		k.opened.Put(openKey{tenant, id}, dk)
		return dk, nil
	}
	return dataKey{}, errors.New("dataprotect: could not settle on a data key (concurrent destruction?)")
}

func (k *Keyring) openWrapped(ctx context.Context, tenant, id uuid.UUID, wrapped []byte) (tink.AEAD, error) {
	h, err := k.unwrap(ctx, wrapped, dataKeyAD(tenant, id))
	if err != nil {
		return nil, fmt.Errorf("data key %s: %w", id, err)
	}
	return aead.New(h)
}

// load makes sure the keyring knows every key in ids for tenant: opened
// when it exists, marked destroyed otherwise. One query for all the keys it
// did not know.
func (k *Keyring) load(ctx context.Context, tenant uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]tink.AEAD, error) {
	out := make(map[uuid.UUID]tink.AEAD, len(ids))
	var missing []uuid.UUID
	for _, id := range ids {
		if _, seen := out[id]; seen {
			continue
		}
		if dk, ok := k.opened.Get(openKey{tenant, id}); ok {
			out[id] = dk.aead
			continue
		}
		out[id] = nil
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := k.q.GetKeys(ctx, dataprotectdb.GetKeysParams{TenantID: tenant, KeyIds: missing})
	if err != nil {
		return nil, fmt.Errorf("dataprotect: read data keys: %w", err)
	}
	for _, r := range rows {
		a, err := k.openWrapped(ctx, tenant, r.KeyID, r.Wrapped)
		if err != nil {
			return nil, err
		}
		out[r.KeyID] = a
	}
	for _, id := range missing {
		k.opened.Put(openKey{tenant, id}, dataKey{id: id, aead: out[id]})
	}
	return out, nil
}
