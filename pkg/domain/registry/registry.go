package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/prost-platform/prost/pkg/domain/registry/internal/registrydb"
	"github.com/prost-platform/prost/pkg/internal/lru"
	"github.com/prost-platform/prost/pkg/invalidate"
	"github.com/prost-platform/prost/pkg/schemacompat"
)

// Policies for events whose type has no schema.
const (
	// UnregisteredReject refuses them with 422 (the default).
	UnregisteredReject = "reject"
	// UnregisteredAccept stores them without validating their data.
	UnregisteredAccept = "accept"
)

// Defaults of the compatibility settings.
const (
	DefaultMode   = schemacompat.ModeBackward
	DefaultPolicy = schemacompat.PolicyStrict
)

// Config tunes a Registry. Zero values take the defaults given.
type Config struct {
	// PlatformDir holds the platform's own schemas, visible read-only to
	// every tenant: one directory per subject holding v1.json, v2.json ...
	// (numbered from 1 without gaps). Other files are ignored. Empty: no
	// platform schemas.
	PlatformDir string
	// UnregisteredTypes is what ingest does with an event whose type has no
	// schema, for tenants that have not chosen: "reject" (the default) or
	// "accept".
	UnregisteredTypes string
	// CacheSize bounds the compiled schemas kept in memory. Defaults to
	// 10,000.
	CacheSize int
	// Feed, when set, carries registry changes between processes at once.
	Feed *invalidate.Feed
	// StateTTL is how long a process trusts what it read of a subject's
	// versions and a tenant's settings. Changes made through this process
	// (and, with a Feed, through any) apply at once; without a Feed, through
	// another within StateTTL. Defaults to DefaultStateTTL, or
	// invalidate.DefaultTTL with a Feed.
	StateTTL time.Duration
	// MaxSubjects is the most subjects with a live version one tenant may
	// have (PROST_MAX_SUBJECTS); registering a new one beyond is refused
	// (ErrTooManySubjects, 422). Defaults to DefaultMaxSubjects; negative
	// means no limit.
	MaxSubjects int
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// DefaultMaxSubjects is Config.MaxSubjects' default.
const DefaultMaxSubjects = 1000

// Registry is PROST's schema registry: per-tenant subjects (event types)
// with numbered JSON Schema versions, compatibility settings, and the
// platform's read-only schemas. It is safe for concurrent use.
type Registry struct {
	cfg      Config
	pool     *pgxpool.Pool
	q        *registrydb.Queries
	platform map[string][]platformVersion

	compiled *lru.Cache[compiledKey, *jsonschema.Schema]
	states   *lru.Cache[subjectKey, subjectState]
	tenants  *lru.Cache[uuid.UUID, string] // the tenant's unregistered-types policy
}

type platformVersion struct {
	text   []byte
	doc    any
	schema *jsonschema.Schema
}

type compiledKey struct {
	tenant  uuid.UUID
	subject string
	version int
	id      int64
}

type subjectKey struct {
	tenant  uuid.UUID
	subject string
}

// subjectState is what ingest needs to know of a subject: its live
// versions, oldest first.
type subjectState struct {
	platform bool
	versions []versionRef
}

type versionRef struct {
	version int
	id      int64
}

func (s subjectState) latest() (versionRef, bool) {
	if len(s.versions) == 0 {
		return versionRef{}, false
	}
	return s.versions[len(s.versions)-1], true
}

func (s subjectState) find(v int) (versionRef, bool) {
	for _, vr := range s.versions {
		if vr.version == v {
			return vr, true
		}
	}
	return versionRef{}, false
}

// DefaultStateTTL is Config.StateTTL's default without a Feed.
const DefaultStateTTL = 2 * time.Second

// invalidateTopic names registry changes on an invalidate.Feed; the key is
// "<tenant>" for a tenant's settings and "<tenant>/<subject>" for a subject.
const invalidateTopic = "registry"

// forget drops what the registry holds of key (see invalidateTopic; ""
// drops everything).
func (r *Registry) forget(key string) {
	tenant, subject, hasSubject := strings.Cut(key, "/")
	id, err := uuid.Parse(tenant)
	switch {
	case key == "" || err != nil:
		r.states.RemoveIf(func(subjectKey) bool { return true })
		r.tenants.RemoveIf(func(uuid.UUID) bool { return true })
	case hasSubject:
		r.states.Remove(subjectKey{id, subject})
	default:
		r.tenants.Remove(id)
	}
}

// changed forgets key here at once. The other processes hear of the change
// from the rows' triggers (migration 027), which notify from the committing
// transaction itself.
func (r *Registry) changed(tenant uuid.UUID, subject string) {
	key := tenant.String()
	if subject != "" {
		key += "/" + subject
	}
	r.forget(key)
}

// New returns a registry on pool, loading and compiling the platform
// schemas from cfg.PlatformDir. It fails on an unreadable directory, a
// schema that does not compile or a gap in a subject's version numbers.
func New(pool *pgxpool.Pool, cfg Config) (*Registry, error) {
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10_000
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = DefaultStateTTL
		if cfg.Feed != nil {
			cfg.StateTTL = invalidate.DefaultTTL
		}
	}
	if cfg.MaxSubjects == 0 {
		cfg.MaxSubjects = DefaultMaxSubjects
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch cfg.UnregisteredTypes {
	case "":
		cfg.UnregisteredTypes = UnregisteredReject
	case UnregisteredReject, UnregisteredAccept:
	default:
		return nil, fmt.Errorf("%w: unregistered types policy %q: want reject or accept", ErrInvalidConfig, cfg.UnregisteredTypes)
	}
	r := &Registry{
		cfg: cfg, pool: pool, platform: map[string][]platformVersion{},
		compiled: lru.New[compiledKey, *jsonschema.Schema](cfg.CacheSize, 0),
		states:   lru.New[subjectKey, subjectState](100_000, cfg.StateTTL),
		tenants:  lru.New[uuid.UUID, string](100_000, cfg.StateTTL),
	}
	if pool != nil {
		r.q = registrydb.New(pool)
	}
	cfg.Feed.Subscribe(invalidateTopic, r.forget)
	if cfg.PlatformDir != "" {
		if err := r.loadPlatform(cfg.PlatformDir); err != nil {
			return nil, err
		}
	}
	return r, nil
}

var versionFile = regexp.MustCompile(`^v([1-9][0-9]*)\.json$`)

func (r *Registry) loadPlatform(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("registry: platform schemas: %w", err)
	}
	ctx := context.Background() // platform schemas refer only to each other: no database, nothing to cancel
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		subject := e.Name()
		if err := CheckSubject(subject); err != nil {
			return fmt.Errorf("registry: platform schemas: %s: %w", subject, err)
		}
		files, err := os.ReadDir(filepath.Join(dir, subject))
		if err != nil {
			return fmt.Errorf("registry: platform schemas: %w", err)
		}
		byVersion := map[int][]byte{}
		for _, f := range files {
			m := versionFile.FindStringSubmatch(f.Name())
			if m == nil || f.IsDir() {
				continue
			}
			n, _ := strconv.Atoi(m[1])
			b, err := os.ReadFile(filepath.Join(dir, subject, f.Name()))
			if err != nil {
				return fmt.Errorf("registry: platform schemas: %w", err)
			}
			byVersion[n] = b
		}
		vs := make([]platformVersion, len(byVersion))
		for n, b := range byVersion {
			if n > len(byVersion) {
				return fmt.Errorf("registry: platform schemas: %s: versions must be numbered v1.json, v2.json ... without gaps", subject)
			}
			doc, err := parseSchema(b)
			if err != nil {
				return fmt.Errorf("registry: platform schema %s v%d: %w", subject, n, err)
			}
			vs[n-1] = platformVersion{text: b, doc: doc}
		}
		if len(vs) > 0 {
			r.platform[subject] = vs
		}
	}
	// Compile once every document is known: platform schemas may refer to
	// each other.
	for subject, vs := range r.platform {
		for i := range vs {
			sch, err := r.compile(ctx, uuid.Nil, Ref{Subject: subject, Version: i + 1}, vs[i].doc)
			if err != nil {
				return fmt.Errorf("registry: platform schema %s v%d: %w", subject, i+1, err)
			}
			vs[i].schema = sch
		}
	}
	r.cfg.Logger.Info("platform schemas loaded", "dir", dir, "subjects", len(r.platform))
	return nil
}

// IsPlatform reports whether subject is one of the platform's read-only
// subjects.
func (r *Registry) IsPlatform(subject string) bool {
	_, ok := r.platform[subject]
	return ok
}

// Version is one registered version of a subject.
type Version struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	// ID identifies the registered schema across subjects (0 for platform
	// schemas).
	ID int64 `json:"id"`
	// SchemaType is always "JSON".
	SchemaType string `json:"schemaType"`
	// Schema is the schema text as registered.
	Schema string `json:"schema"`
	// DataSchema is the URI naming this version in an event's dataschema.
	DataSchema string `json:"dataschema"`
	// Platform marks the platform's read-only schemas.
	Platform  bool       `json:"platform,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

// Register adds schema text as the next version of a tenant's subject, after
// checking that it is a valid schema and compatible with the earlier
// versions under the subject's compatibility mode and policy. A schema
// identical (as canonical JSON) to a live version is not registered again:
// that version is returned with created false.
//
// Errors: ErrInvalidSubject, ErrReadOnly, ErrInvalidSchema (wrapped with
// the reason), *IncompatibleError.
func (r *Registry) Register(ctx context.Context, tenant uuid.UUID, subject string, text []byte) (v Version, created bool, err error) {
	if err := CheckSubject(subject); err != nil {
		return Version{}, false, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
	}
	if r.IsPlatform(subject) {
		return Version{}, false, fmt.Errorf("%w: %q is a platform subject", ErrReadOnly, subject)
	}
	doc, err := parseSchema(text)
	if err != nil {
		return Version{}, false, err
	}
	if _, err := r.compile(ctx, tenant, Ref{Subject: subject, Version: 0}, doc); err != nil {
		return Version{}, false, err
	}
	fp := fingerprint(doc)
	cfg, err := r.Config(ctx, tenant, subject)
	if err != nil {
		return Version{}, false, err
	}
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		q := r.q.WithTx(tx)
		if r.cfg.MaxSubjects > 0 {
			if err := q.LockTenantSubjects(ctx, tenant); err != nil {
				return err
			}
			live, err := q.SubjectIsLive(ctx, registrydb.SubjectIsLiveParams{TenantID: tenant, Subject: subject})
			if err != nil {
				return err
			}
			if !live {
				n, err := q.CountLiveSubjects(ctx, tenant)
				if err != nil {
					return err
				}
				if n >= int64(r.cfg.MaxSubjects) {
					return fmt.Errorf("%w: the limit is %d subjects", ErrTooManySubjects, r.cfg.MaxSubjects)
				}
			}
		}
		last, err := q.LockSubject(ctx, registrydb.LockSubjectParams{TenantID: tenant, Subject: subject})
		if err != nil {
			return err
		}
		same, err := q.FindByFingerprint(ctx, registrydb.FindByFingerprintParams{TenantID: tenant, Subject: subject, Fingerprint: fp})
		if err == nil {
			v = r.version(subject, int(same.Version), same.ID, same.Schema, same.CreatedAt)
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		live, err := q.LiveSchemas(ctx, registrydb.LiveSchemasParams{TenantID: tenant, Subject: subject})
		if err != nil {
			return err
		}
		olds := make([]oldVersion, len(live))
		for i, l := range live {
			d, err := schemacompat.ParseSchema([]byte(l.Schema))
			if err != nil {
				return fmt.Errorf("registry: stored version %d of %q: %w", l.Version, subject, err)
			}
			olds[i] = oldVersion{version: int(l.Version), doc: d}
		}
		res, err := check(cfg.Compatibility, cfg.Policy, olds, doc, refLoader{ctx: ctx, reg: r, tenant: tenant})
		if err != nil {
			return err
		}
		if !res.Compatible {
			return &IncompatibleError{Subject: subject, Mode: cfg.Compatibility, Policy: cfg.Policy, Result: res}
		}
		next := last + 1
		ins, err := q.InsertVersion(ctx, registrydb.InsertVersionParams{TenantID: tenant, Subject: subject, Version: next,
			Schema: string(text), Fingerprint: fp})
		if err != nil {
			return err
		}
		if err := q.SetLastVersion(ctx, registrydb.SetLastVersionParams{TenantID: tenant, Subject: subject, LastVersion: next}); err != nil {
			return err
		}
		v, created = r.version(subject, int(next), ins.ID, string(text), ins.CreatedAt), true
		return nil
	})
	if err != nil {
		return Version{}, false, err
	}
	r.changed(tenant, subject)
	return v, created, nil
}

func (r *Registry) version(subject string, n int, id int64, text string, created time.Time) Version {
	return Version{Subject: subject, Version: n, ID: id, SchemaType: "JSON", Schema: text,
		DataSchema: Ref{subject, n}.URN(), CreatedAt: &created}
}

type oldVersion struct {
	version int
	doc     any
}

// check runs schemacompat.Check against olds (oldest first) and reports
// each difference under the version number it was found against. The
// versions that $refs name are loaded by ld, so a referenced schema is
// compared by its content, as the validator sees it.
func check(mode schemacompat.Mode, policy schemacompat.Policy, olds []oldVersion, next any, ld schemacompat.Loader) (schemacompat.Result, error) {
	docs := make([]any, len(olds))
	for i, o := range olds {
		docs[i] = o.doc
	}
	res, err := schemacompat.Checker{Policy: policy, Loader: ld}.Check(mode, docs, next)
	if errors.Is(err, schemacompat.ErrInvalidSchema) {
		return schemacompat.Result{}, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	if err != nil {
		return schemacompat.Result{}, err
	}
	res.Messages = res.Messages[:0]
	for i := range res.Differences {
		d := &res.Differences[i]
		d.Version = olds[d.Version-1].version
		if !d.Compatible {
			res.Messages = append(res.Messages, fmt.Sprintf("version %d (%s): %s at %s: %s", d.Version, d.Direction, d.Type, d.Pointer, d.Message))
		}
	}
	return res, nil
}

// CheckCompatibility checks schema text against a tenant's subject without
// registering it: against the versions its mode names when version is "",
// or else against that one version ("latest" or a number) in the mode's
// direction. A subject without versions is compatible with anything.
func (r *Registry) CheckCompatibility(ctx context.Context, tenant uuid.UUID, subject, version string, text []byte) (schemacompat.Result, error) {
	if err := CheckSubject(subject); err != nil {
		return schemacompat.Result{}, fmt.Errorf("%w: %w", ErrInvalidSubject, err)
	}
	doc, err := parseSchema(text)
	if err != nil {
		return schemacompat.Result{}, err
	}
	if _, err := r.compile(ctx, tenant, Ref{Subject: subject, Version: 0}, doc); err != nil {
		return schemacompat.Result{}, err
	}
	cfg, err := r.Config(ctx, tenant, subject)
	if err != nil {
		return schemacompat.Result{}, err
	}
	mode := cfg.Compatibility
	var olds []oldVersion
	if version == "" {
		vs, err := r.liveDocs(ctx, tenant, subject)
		if err != nil {
			return schemacompat.Result{}, err
		}
		olds = vs
	} else {
		v, err := r.Get(ctx, tenant, subject, version)
		if err != nil {
			return schemacompat.Result{}, err
		}
		d, err := schemacompat.ParseSchema([]byte(v.Schema))
		if err != nil {
			return schemacompat.Result{}, err
		}
		olds = []oldVersion{{version: v.Version, doc: d}}
		mode = nonTransitive(mode)
	}
	return check(mode, cfg.Policy, olds, doc, refLoader{ctx: ctx, reg: r, tenant: tenant})
}

func nonTransitive(m schemacompat.Mode) schemacompat.Mode {
	switch m {
	case schemacompat.ModeBackwardTransitive:
		return schemacompat.ModeBackward
	case schemacompat.ModeForwardTransitive:
		return schemacompat.ModeForward
	case schemacompat.ModeFullTransitive:
		return schemacompat.ModeFull
	}
	return m
}

func (r *Registry) liveDocs(ctx context.Context, tenant uuid.UUID, subject string) ([]oldVersion, error) {
	if vs, ok := r.platform[subject]; ok {
		out := make([]oldVersion, len(vs))
		for i, v := range vs {
			out[i] = oldVersion{version: i + 1, doc: v.doc}
		}
		return out, nil
	}
	live, err := r.q.LiveSchemas(ctx, registrydb.LiveSchemasParams{TenantID: tenant, Subject: subject})
	if err != nil {
		return nil, err
	}
	out := make([]oldVersion, len(live))
	for i, l := range live {
		d, err := schemacompat.ParseSchema([]byte(l.Schema))
		if err != nil {
			return nil, err
		}
		out[i] = oldVersion{version: int(l.Version), doc: d}
	}
	return out, nil
}

// Subjects lists the tenant's subjects with at least one live version and
// the platform's subjects, sorted.
func (r *Registry) Subjects(ctx context.Context, tenant uuid.UUID) ([]string, error) {
	own, err := r.q.ListSubjects(ctx, registrydb.ListSubjectsParams{TenantID: tenant})
	if err != nil {
		return nil, err
	}
	for s := range r.platform {
		own = append(own, s)
	}
	sort.Strings(own)
	return slices.Compact(own), nil
}

// Versions lists a subject's live version numbers, oldest first.
// ErrSubjectNotFound when there are none.
func (r *Registry) Versions(ctx context.Context, tenant uuid.UUID, subject string) ([]int, error) {
	st, err := r.loadState(ctx, tenant, subject)
	if err != nil {
		return nil, err
	}
	if len(st.versions) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	out := make([]int, len(st.versions))
	for i, v := range st.versions {
		out[i] = v.version
	}
	return out, nil
}

// parseVersion reads "latest" (0) or a positive version number.
func parseVersion(s string) (int, error) {
	if s == "latest" || s == "-1" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%w: %q: want a positive integer or latest", ErrInvalidVersion, s)
	}
	return n, nil
}

// Get returns one live version of a subject: version is a number or
// "latest". Errors: ErrInvalidVersion, ErrSubjectNotFound,
// ErrVersionNotFound.
func (r *Registry) Get(ctx context.Context, tenant uuid.UUID, subject, version string) (Version, error) {
	n, err := parseVersion(version)
	if err != nil {
		return Version{}, err
	}
	if vs, ok := r.platform[subject]; ok {
		if n == 0 {
			n = len(vs)
		}
		if n > len(vs) {
			return Version{}, fmt.Errorf("%w: %q has no version %d", ErrVersionNotFound, subject, n)
		}
		return Version{Subject: subject, Version: n, SchemaType: "JSON", Schema: string(vs[n-1].text),
			DataSchema: Ref{subject, n}.URN(), Platform: true}, nil
	}
	st, err := r.loadState(ctx, tenant, subject)
	if err != nil {
		return Version{}, err
	}
	var ref versionRef
	var ok bool
	if n == 0 {
		ref, ok = st.latest()
		if !ok {
			return Version{}, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
		}
	} else if ref, ok = st.find(n); !ok {
		if len(st.versions) == 0 {
			return Version{}, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
		}
		return Version{}, fmt.Errorf("%w: %q has no version %d", ErrVersionNotFound, subject, n)
	}
	row, err := r.q.GetVersion(ctx, registrydb.GetVersionParams{TenantID: tenant, Subject: subject, Version: int32(ref.version)})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.DeletedAt != nil) {
		r.states.Remove(subjectKey{tenant, subject})
		return Version{}, fmt.Errorf("%w: %q has no version %d", ErrVersionNotFound, subject, ref.version)
	}
	if err != nil {
		return Version{}, err
	}
	return r.version(subject, int(row.Version), row.ID, row.Schema, row.CreatedAt), nil
}

// schemaText returns the text of a live version, the tenant's own or the
// platform's, for the loader.
func (r *Registry) schemaText(ctx context.Context, tenant uuid.UUID, ref Ref) ([]byte, error) {
	if vs, ok := r.platform[ref.Subject]; ok {
		if ref.Version > len(vs) {
			return nil, fmt.Errorf("%w: %s", ErrVersionNotFound, ref.URN())
		}
		return vs[ref.Version-1].text, nil
	}
	if tenant == uuid.Nil || r.q == nil {
		return nil, fmt.Errorf("%w: %s", ErrVersionNotFound, ref.URN())
	}
	row, err := r.q.GetVersion(ctx, registrydb.GetVersionParams{TenantID: tenant, Subject: ref.Subject, Version: int32(ref.Version)})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.DeletedAt != nil) {
		return nil, fmt.Errorf("%w: %s is not registered", ErrVersionNotFound, ref.URN())
	}
	if err != nil {
		return nil, err
	}
	return []byte(row.Schema), nil
}

// DeleteSubject deletes every version of a tenant's subject and returns
// their numbers. Without permanent the versions are soft-deleted: no longer
// listed, checked against or used at ingest, but their numbers are never
// given again. With permanent, versions already soft-deleted are removed for
// good (ErrNotSoftDeleted while live versions remain).
func (r *Registry) DeleteSubject(ctx context.Context, tenant uuid.UUID, subject string, permanent bool) ([]int, error) {
	if r.IsPlatform(subject) {
		return nil, fmt.Errorf("%w: %q is a platform subject", ErrReadOnly, subject)
	}
	defer r.changed(tenant, subject)
	var out []int32
	var err error
	if permanent {
		err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			q := r.q.WithTx(tx)
			live, err := q.LiveSchemas(ctx, registrydb.LiveSchemasParams{TenantID: tenant, Subject: subject})
			if err != nil {
				return err
			}
			if len(live) > 0 {
				return fmt.Errorf("%w: %q still has live versions", ErrNotSoftDeleted, subject)
			}
			out, err = q.HardDeleteSubject(ctx, registrydb.HardDeleteSubjectParams{TenantID: tenant, Subject: subject})
			return err
		})
	} else {
		out, err = r.q.SoftDeleteSubject(ctx, registrydb.SoftDeleteSubjectParams{TenantID: tenant, Subject: subject})
	}
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	res := make([]int, len(out))
	for i, v := range out {
		res[i] = int(v)
	}
	sort.Ints(res)
	r.dropCompiled(tenant, subject)
	return res, nil
}

// DeleteVersion deletes one version ("latest" or a number) of a tenant's
// subject, softly or, when it is already soft-deleted and permanent is set,
// for good.
func (r *Registry) DeleteVersion(ctx context.Context, tenant uuid.UUID, subject, version string, permanent bool) (int, error) {
	if r.IsPlatform(subject) {
		return 0, fmt.Errorf("%w: %q is a platform subject", ErrReadOnly, subject)
	}
	n, err := parseVersion(version)
	if err != nil {
		return 0, err
	}
	defer r.changed(tenant, subject)
	if n == 0 {
		if permanent {
			return 0, fmt.Errorf("%w: name the version to delete permanently", ErrInvalidVersion)
		}
		v, err := r.Get(ctx, tenant, subject, "latest")
		if err != nil {
			return 0, err
		}
		n = v.Version
	}
	var got int32
	if permanent {
		got, err = r.q.HardDeleteVersion(ctx, registrydb.HardDeleteVersionParams{TenantID: tenant, Subject: subject, Version: int32(n)})
	} else {
		got, err = r.q.SoftDeleteVersion(ctx, registrydb.SoftDeleteVersionParams{TenantID: tenant, Subject: subject, Version: int32(n)})
	}
	if errors.Is(err, pgx.ErrNoRows) {
		row, gerr := r.q.GetVersion(ctx, registrydb.GetVersionParams{TenantID: tenant, Subject: subject, Version: int32(n)})
		switch {
		case gerr == nil && permanent && row.DeletedAt == nil:
			return 0, fmt.Errorf("%w: version %d of %q", ErrNotSoftDeleted, n, subject)
		case gerr != nil && !errors.Is(gerr, pgx.ErrNoRows):
			return 0, gerr
		}
		vs, _ := r.q.ListVersions(ctx, registrydb.ListVersionsParams{TenantID: tenant, Subject: subject, IncludeDeleted: permanent})
		if len(vs) == 0 {
			return 0, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
		}
		return 0, fmt.Errorf("%w: %q has no version %d", ErrVersionNotFound, subject, n)
	}
	if err != nil {
		return 0, err
	}
	r.dropCompiled(tenant, subject)
	return int(got), nil
}

func (r *Registry) dropCompiled(tenant uuid.UUID, subject string) {
	r.compiled.RemoveIf(func(k compiledKey) bool { return k.tenant == tenant && k.subject == subject })
}

// loadState returns a subject's live versions, from the cache when fresh.
func (r *Registry) loadState(ctx context.Context, tenant uuid.UUID, subject string) (subjectState, error) {
	if vs, ok := r.platform[subject]; ok {
		st := subjectState{platform: true, versions: make([]versionRef, len(vs))}
		for i := range vs {
			st.versions[i] = versionRef{version: i + 1}
		}
		return st, nil
	}
	key := subjectKey{tenant, subject}
	if st, ok := r.states.Get(key); ok {
		return st, nil
	}
	gen := r.states.Gen()
	rows, err := r.q.ListVersions(ctx, registrydb.ListVersionsParams{TenantID: tenant, Subject: subject})
	if err != nil {
		return subjectState{}, err
	}
	st := subjectState{versions: make([]versionRef, len(rows))}
	for i, row := range rows {
		st.versions[i] = versionRef{version: int(row.Version), id: row.ID}
	}
	r.states.PutIfGen(key, st, gen)
	return st, nil
}

// compiledFor returns the compiled schema of a live version, compiling and
// caching it on first use.
func (r *Registry) compiledFor(ctx context.Context, tenant uuid.UUID, subject string, st subjectState, vr versionRef) (*jsonschema.Schema, error) {
	if st.platform {
		return r.platform[subject][vr.version-1].schema, nil
	}
	key := compiledKey{tenant: tenant, subject: subject, version: vr.version, id: vr.id}
	if sch, ok := r.compiled.Get(key); ok {
		return sch, nil
	}
	ref := Ref{Subject: subject, Version: vr.version}
	text, err := r.schemaText(ctx, tenant, ref)
	if err != nil {
		return nil, err
	}
	doc, err := parseSchema(text)
	if err != nil {
		return nil, err
	}
	sch, err := r.compile(ctx, tenant, ref, doc)
	if err != nil {
		return nil, err
	}
	r.compiled.Put(key, sch)
	return sch, nil
}
