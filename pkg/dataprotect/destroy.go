package dataprotect

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/dataprotect/internal/dataprotectdb"
)

// Reasons a key is destroyed.
const (
	ReasonErasure   = "erasure"
	ReasonRetention = "retention"
)

// DestroyedKey is a data key that was destroyed: the values it encrypted
// read {"erased":true} from then on.
type DestroyedKey struct {
	TenantID  uuid.UUID `json:"-"`
	KeyID     uuid.UUID `json:"key_id"`
	Purpose   string    `json:"purpose"`
	Retention string    `json:"retention"`
}

// DB is what the destroying methods need: a transaction the caller commits.
type DB = dataprotectdb.DBTX

// EraseSubjectTx destroys every data key of a data subject of the tenant, in
// tx: the key rows are deleted and a tombstone per key (reason erasure,
// erasureID) is written. Call Forget with the result after tx commits.
func (k *Keyring) EraseSubjectTx(ctx context.Context, tx DB, tenant uuid.UUID, subjectID string, erasureID uuid.UUID) ([]DestroyedKey, error) {
	sref, err := k.SubjectRef(ctx, tenant, subjectID)
	if err != nil {
		return nil, err
	}
	rows, err := dataprotectdb.New(tx).DeleteSubjectKeys(ctx, dataprotectdb.DeleteSubjectKeysParams{TenantID: tenant, SubjectRef: sref})
	if err != nil {
		return nil, fmt.Errorf("dataprotect: destroy keys: %w", err)
	}
	out := make([]DestroyedKey, len(rows))
	for i, r := range rows {
		out[i] = DestroyedKey{TenantID: r.TenantID, KeyID: r.KeyID, Purpose: r.Purpose, Retention: r.Retention}
	}
	if err := tombstone(ctx, tx, out, ReasonErasure, func(uuid.UUID) uuid.UUID { return erasureID }); err != nil {
		return nil, err
	}
	k.current.RemoveIf(func(s scopeKey) bool { return s.tenant == tenant && s.subject == string(sref) })
	return out, nil
}

// ShredExpiredTx destroys up to limit data keys whose retention ended at
// now, in tx, with a tombstone each (reason retention, the erasure id
// erasureFor gives the key's tenant). Rows another transaction holds are
// skipped, so concurrent shredders share the work. Call Forget with the
// result after tx commits.
func (k *Keyring) ShredExpiredTx(ctx context.Context, tx DB, now time.Time, limit int, erasureFor func(tenant uuid.UUID) uuid.UUID) ([]DestroyedKey, error) {
	rows, err := dataprotectdb.New(tx).DeleteExpiredKeys(ctx, dataprotectdb.DeleteExpiredKeysParams{Now: now, MaxRows: int32(min(limit, 1<<30))}) //nolint:gosec // bounded
	if err != nil {
		return nil, fmt.Errorf("dataprotect: shred expired keys: %w", err)
	}
	out := make([]DestroyedKey, len(rows))
	for i, r := range rows {
		out[i] = DestroyedKey{TenantID: r.TenantID, KeyID: r.KeyID, Purpose: r.Purpose, Retention: r.Retention}
	}
	return out, tombstone(ctx, tx, out, ReasonRetention, erasureFor)
}

func tombstone(ctx context.Context, tx DB, keys []DestroyedKey, reason string, erasureFor func(uuid.UUID) uuid.UUID) error {
	if len(keys) == 0 {
		return nil
	}
	p := dataprotectdb.InsertTombstonesParams{Reason: reason}
	for _, d := range keys {
		p.KeyIds = append(p.KeyIds, d.KeyID)
		p.TenantIds = append(p.TenantIds, d.TenantID)
		p.Purposes = append(p.Purposes, d.Purpose)
		p.Retentions = append(p.Retentions, d.Retention)
		p.ErasureIds = append(p.ErasureIds, erasureFor(d.TenantID))
	}
	if err := dataprotectdb.New(tx).InsertTombstones(ctx, p); err != nil {
		return fmt.Errorf("dataprotect: write tombstones: %w", err)
	}
	return nil
}

// Forget drops destroyed keys from this keyring's memory and, through
// Config.Feed, from every other process's (without a Feed, or should the
// notification be lost, they drop them within Config.CacheTTL). Call it
// after the destruction committed.
func (k *Keyring) Forget(ctx context.Context, keys []DestroyedKey) {
	var tenants []uuid.UUID
	for _, d := range keys {
		k.opened.Remove(openKey{d.TenantID, d.KeyID})
		if !slices.Contains(tenants, d.TenantID) {
			tenants = append(tenants, d.TenantID)
		}
	}
	for _, t := range tenants {
		k.current.RemoveIf(func(s scopeKey) bool { return s.tenant == t })
		if err := k.cfg.Feed.Notify(ctx, invalidateTopic, t.String()); err != nil {
			k.cfg.Logger.Warn("dataprotect: could not tell other processes of destroyed keys; they forget them within the cache TTL",
				"tenant", t, "error", err)
		}
	}
}

// ReconcileTx deletes key rows that have a tombstone (brought back by
// restoring a database backup taken before they were destroyed) and returns
// them. Such keys are never used even before this runs: every read checks
// the tombstones.
func (k *Keyring) ReconcileTx(ctx context.Context, tx DB) ([]DestroyedKey, error) {
	rows, err := dataprotectdb.New(tx).DeleteTombstonedKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("dataprotect: reconcile tombstones: %w", err)
	}
	out := make([]DestroyedKey, len(rows))
	for i, r := range rows {
		out[i] = DestroyedKey{TenantID: r.TenantID, KeyID: r.KeyID}
	}
	return out, nil
}

// Rewrap re-wraps up to limit data keys and tenant keys wrapped under
// another KEK version than the current one, and returns how many it
// re-wrapped. After a rotation, repeat until it returns 0; then the old
// version can be removed from the configuration. A KEK of version 0 (a KMS)
// rotates on its side: nothing is re-wrapped.
func (k *Keyring) Rewrap(ctx context.Context, limit int) (int, error) {
	ver := int64(k.cfg.KEK.Version())
	if ver == 0 {
		return 0, nil
	}
	n := 0
	err := pgx.BeginFunc(ctx, k.pool, func(tx pgx.Tx) error {
		q := dataprotectdb.New(tx)
		rows, err := q.KeysToRewrap(ctx, dataprotectdb.KeysToRewrapParams{KekVersion: ver, MaxRows: int32(min(limit, 1<<30))}) //nolint:gosec // bounded
		if err != nil {
			return err
		}
		for _, r := range rows {
			ad := dataKeyAD(r.TenantID, r.KeyID)
			h, err := k.unwrap(ctx, r.Wrapped, ad)
			if err != nil {
				return fmt.Errorf("data key %s: %w", r.KeyID, err)
			}
			w, err := k.wrap(ctx, h, ad)
			if err != nil {
				return err
			}
			if err := q.SetKeyWrapped(ctx, dataprotectdb.SetKeyWrappedParams{KeyID: r.KeyID, Wrapped: w, KekVersion: ver}); err != nil {
				return err
			}
			n++
		}
		trows, err := q.TenantKeysToRewrap(ctx, dataprotectdb.TenantKeysToRewrapParams{KekVersion: ver, MaxRows: int32(min(limit, 1<<30))}) //nolint:gosec // bounded
		if err != nil {
			return err
		}
		for _, r := range trows {
			ad := tenantKeyAD(r.TenantID)
			h, err := k.unwrap(ctx, r.Wrapped, ad)
			if err != nil {
				return fmt.Errorf("tenant key %s: %w", r.TenantID, err)
			}
			w, err := k.wrap(ctx, h, ad)
			if err != nil {
				return err
			}
			if err := q.SetTenantKeyWrapped(ctx, dataprotectdb.SetTenantKeyWrappedParams{TenantID: r.TenantID, Wrapped: w, KekVersion: ver}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("dataprotect: rewrap: %w", err)
	}
	return n, nil
}

// KeyInfo describes one live data key of a data subject.
type KeyInfo struct {
	KeyID     uuid.UUID  `json:"key_id"`
	Purpose   string     `json:"purpose"`
	Retention string     `json:"retention"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// SubjectKeys returns a data subject's live keys, oldest first (none after
// an erasure).
func (k *Keyring) SubjectKeys(ctx context.Context, tenant uuid.UUID, subjectID string) ([]KeyInfo, error) {
	sref, err := k.SubjectRef(ctx, tenant, subjectID)
	if err != nil {
		return nil, err
	}
	rows, err := k.q.SubjectKeys(ctx, dataprotectdb.SubjectKeysParams{TenantID: tenant, SubjectRef: sref})
	if err != nil {
		return nil, fmt.Errorf("dataprotect: subject keys: %w", err)
	}
	out := make([]KeyInfo, len(rows))
	for i, r := range rows {
		out[i] = KeyInfo{KeyID: r.KeyID, Purpose: r.Purpose, Retention: r.Retention, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
	}
	return out, nil
}

// Tombstone is the record of a destroyed data key.
type Tombstone struct {
	KeyID       uuid.UUID `json:"key_id"`
	Purpose     string    `json:"purpose"`
	Retention   string    `json:"retention"`
	Reason      string    `json:"reason"`
	ErasureID   uuid.UUID `json:"erasure_id"`
	DestroyedAt time.Time `json:"destroyed_at"`
}

// TombstoneQuery selects a page of a tenant's tombstones.
type TombstoneQuery struct {
	// Reason keeps one reason (erasure, retention) when set.
	Reason string
	// Since keeps keys destroyed at or after it when non-zero.
	Since time.Time
	// Cursor continues a previous page ("" for the first).
	Cursor string
	// Limit is the page size: 1 to 1,000, 0 means 100.
	Limit int
}

// Tombstones returns a page of the tenant's destroyed keys, in the order
// they were destroyed, and the cursor of the next page ("" on the last).
func (k *Keyring) Tombstones(ctx context.Context, tenant uuid.UUID, q TombstoneQuery) ([]Tombstone, string, error) {
	after, err := cursor.ParseInt("t", q.Cursor)
	if err != nil {
		return nil, "", err
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 1000)
	p := dataprotectdb.ListTombstonesParams{TenantID: tenant, AfterSeq: after, MaxRows: int32(q.Limit + 1)} //nolint:gosec // bounded
	if q.Reason != "" {
		p.Reason = &q.Reason
	}
	if !q.Since.IsZero() {
		p.Since = &q.Since
	}
	rows, err := k.q.ListTombstones(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("dataprotect: tombstones: %w", err)
	}
	var next string
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
		next = cursor.Int("t", rows[len(rows)-1].Seq)
	}
	out := make([]Tombstone, len(rows))
	for i, r := range rows {
		out[i] = Tombstone{KeyID: r.KeyID, Purpose: r.Purpose, Retention: r.Retention, Reason: r.Reason, ErasureID: r.ErasureID, DestroyedAt: r.DestroyedAt}
	}
	return out, next, nil
}

// KeysByKEK counts the stored data keys by the KEK version that wrapped
// them: after a rotation, the old version may go once it counts none.
func (k *Keyring) KeysByKEK(ctx context.Context) (map[int64]int64, error) {
	rows, err := k.q.CountKeysByKEK(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]int64, len(rows))
	for _, r := range rows {
		out[r.KekVersion] = r.Keys
	}
	return out, nil
}
