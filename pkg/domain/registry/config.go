package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/domain/registry/internal/registrydb"
	"github.com/prost-platform/prost/pkg/schemacompat"
)

// Settings are the effective compatibility settings of a tenant (subject
// "") or of one subject.
type Settings struct {
	// Compatibility is the mode new versions are checked with.
	Compatibility schemacompat.Mode `json:"compatibility"`
	// Policy is the change-type verdict column: STRICT or LENIENT.
	Policy schemacompat.Policy `json:"policy"`
	// UnregisteredTypes is what ingest does with events whose type has no
	// schema: "reject" or "accept". Tenant-wide only: empty for a subject.
	UnregisteredTypes string `json:"unregistered_types,omitempty"`
}

// SettingsPatch changes settings: nil fields are left as they are.
type SettingsPatch struct {
	Compatibility     *string `json:"compatibility"`
	Policy            *string `json:"policy"`
	UnregisteredTypes *string `json:"unregistered_types"`
}

// Config returns the effective settings of a tenant's subject (subject ""
// for the tenant's global settings): the subject's own, else the tenant's,
// else the defaults (BACKWARD, STRICT, the registry's unregistered-types
// policy).
func (r *Registry) Config(ctx context.Context, tenant uuid.UUID, subject string) (Settings, error) {
	out := Settings{Compatibility: DefaultMode, Policy: DefaultPolicy}
	global, err := r.configRow(ctx, tenant, "")
	if err != nil {
		return Settings{}, err
	}
	apply := func(row registrydb.GetConfigRow) {
		if row.Compatibility != nil {
			out.Compatibility = schemacompat.Mode(*row.Compatibility)
		}
		if row.Policy != nil {
			out.Policy = schemacompat.Policy(*row.Policy)
		}
	}
	apply(global)
	if subject == "" {
		out.UnregisteredTypes = r.cfg.UnregisteredTypes
		if global.UnregisteredTypes != nil {
			out.UnregisteredTypes = *global.UnregisteredTypes
		}
		return out, nil
	}
	own, err := r.configRow(ctx, tenant, subject)
	if err != nil {
		return Settings{}, err
	}
	apply(own)
	return out, nil
}

func (r *Registry) configRow(ctx context.Context, tenant uuid.UUID, subject string) (registrydb.GetConfigRow, error) {
	row, err := r.q.GetConfig(ctx, registrydb.GetConfigParams{TenantID: tenant, Subject: subject})
	if errors.Is(err, pgx.ErrNoRows) {
		return registrydb.GetConfigRow{}, nil
	}
	return row, err
}

// SetConfig changes a tenant's global settings (subject "") or one
// subject's, and returns the effective settings. Errors wrap
// ErrInvalidConfig (an unknown mode or policy, unregistered_types on a
// subject), ErrInvalidSubject or ErrReadOnly (a platform subject).
func (r *Registry) SetConfig(ctx context.Context, tenant uuid.UUID, subject string, p SettingsPatch) (Settings, error) {
	if subject != "" {
		if err := CheckSubject(subject); err != nil {
			return Settings{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
		}
		if r.IsPlatform(subject) {
			return Settings{}, fmt.Errorf("%w: %q is a platform subject", ErrReadOnly, subject)
		}
	}
	params := registrydb.PutConfigParams{TenantID: tenant, Subject: subject}
	if p.Compatibility != nil {
		m, err := schemacompat.ParseMode(*p.Compatibility)
		if err != nil {
			return Settings{}, fmt.Errorf("%w: compatibility %q: want one of %s", ErrInvalidConfig, *p.Compatibility, modeList())
		}
		s := string(m)
		params.Compatibility = &s
	}
	if p.Policy != nil {
		pol, err := schemacompat.ParsePolicy(*p.Policy)
		if err != nil || strings.TrimSpace(*p.Policy) == "" {
			return Settings{}, fmt.Errorf("%w: policy %q: want STRICT or LENIENT", ErrInvalidConfig, *p.Policy)
		}
		s := string(pol)
		params.Policy = &s
	}
	if p.UnregisteredTypes != nil {
		if subject != "" {
			return Settings{}, fmt.Errorf("%w: unregistered_types is a tenant-wide setting: PUT it on /config", ErrInvalidConfig)
		}
		s := strings.ToLower(strings.TrimSpace(*p.UnregisteredTypes))
		if s != UnregisteredReject && s != UnregisteredAccept {
			return Settings{}, fmt.Errorf("%w: unregistered_types %q: want reject or accept", ErrInvalidConfig, *p.UnregisteredTypes)
		}
		params.UnregisteredTypes = &s
	}
	if err := r.q.PutConfig(ctx, params); err != nil {
		return Settings{}, err
	}
	r.changed(tenant, subject)
	return r.Config(ctx, tenant, subject)
}

// DeleteConfig drops a subject's own settings (or the tenant's, for
// subject ""), so the next level's apply again. It returns the effective
// settings afterwards.
func (r *Registry) DeleteConfig(ctx context.Context, tenant uuid.UUID, subject string) (Settings, error) {
	if subject != "" && r.IsPlatform(subject) {
		return Settings{}, fmt.Errorf("%w: %q is a platform subject", ErrReadOnly, subject)
	}
	if _, err := r.q.DeleteConfig(ctx, registrydb.DeleteConfigParams{TenantID: tenant, Subject: subject}); err != nil {
		return Settings{}, err
	}
	r.changed(tenant, subject)
	return r.Config(ctx, tenant, subject)
}

// unregisteredPolicy returns the tenant's unregistered-types policy, from
// the cache when fresh.
func (r *Registry) unregisteredPolicy(ctx context.Context, tenant uuid.UUID) (string, error) {
	if p, ok := r.tenants.Get(tenant); ok {
		return p, nil
	}
	gen := r.tenants.Gen()
	row, err := r.configRow(ctx, tenant, "")
	if err != nil {
		return "", err
	}
	p := r.cfg.UnregisteredTypes
	if row.UnregisteredTypes != nil {
		p = *row.UnregisteredTypes
	}
	r.tenants.PutIfGen(tenant, p, gen)
	return p, nil
}

func modeList() string {
	var names []string
	for _, m := range schemacompat.Modes() {
		names = append(names, string(m))
	}
	return strings.Join(names, ", ")
}
