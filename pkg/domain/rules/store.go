package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/rules/internal/rulesdb"
	"github.com/prost-platform/prost/pkg/netguard"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/webhook"
)

// Statuses of a rule and of its webhook.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: no such rule (or version) for this tenant.
	ErrNotFound = problem.Errorf(problem.NotFound, "no such rule")
	// ErrInvalid wraps every refused rule document (see InvalidError).
	ErrInvalid = problem.Errorf(problem.Invalid, "the rule is invalid")
	// ErrNoSecretsKey: a rule has a webhook but no PROST_SECRETS_KEY is
	// configured to seal its signing secret.
	ErrNoSecretsKey = problem.Errorf(problem.Unavailable, "webhook actions are unavailable: the server has no PROST_SECRETS_KEY to seal signing secrets")
)

// Store reads and writes rules, their versions and decisions. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
	key  *secretbox.Key
	cfg  StoreConfig
}

// DefaultMaxRules is how many rules a tenant may have when StoreConfig sets
// no other limit.
const DefaultMaxRules = 100

// StoreConfig tunes a Store. The zero value is usable.
type StoreConfig struct {
	// SecretsKey seals webhook signing secrets; with none, rules with a
	// webhook action are refused with ErrNoSecretsKey.
	SecretsKey *secretbox.Key
	// Outbound checks every webhook URL of a rule created or updated (see
	// pkg/netguard): an internal address is refused, naming the action.
	// nil checks only the URL's form.
	Outbound *netguard.Guard
	// MaxRules is the most rules (active or disabled) one tenant may have
	// (PROST_MAX_RULES); creating one more is refused (422). Defaults to
	// DefaultMaxRules; negative means no limit.
	MaxRules int
	// ReservedSources are the CloudEvents sources only PROST records events
	// with, each mapped to what records them (the gateway's
	// Config.ReservedSources): a rule emitting one is refused (422), so a
	// rule cannot forge a fact PROST vouches for. Defaults to none.
	ReservedSources map[string]string
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool, cfg StoreConfig) *Store {
	if cfg.MaxRules == 0 {
		cfg.MaxRules = DefaultMaxRules
	}
	return &Store{pool: pool, key: cfg.SecretsKey, cfg: cfg}
}

// ErrTooManyRules is the answer to a rule over the tenant's limit.
var ErrTooManyRules = problem.Errorf(problem.Invalid, "the App has as many rules as it may have; delete or reuse one (the limit is PROST_MAX_RULES)")

// checkActions refuses a document whose webhook URLs the outbound guard
// does not allow, or that emits events with a reserved source, naming each
// action.
func (s *Store) checkActions(c *Compiled) error {
	var probs []Problem
	var walk func(ptr string, a *Action)
	walk = func(ptr string, a *Action) {
		switch {
		case a == nil:
		case a.Emit != nil:
			if who, ok := s.cfg.ReservedSources[a.Emit.Source]; ok {
				probs = append(probs, Problem{Pointer: ptr + "/emit/source",
					Detail: fmt.Sprintf("source %q is reserved for the events PROST records from %s; use a source of your own", a.Emit.Source, who)})
			}
		case a.Webhook != nil && s.cfg.Outbound != nil:
			if err := s.cfg.Outbound.CheckURL(a.Webhook.URL); err != nil {
				detail := "url " + err.Error()
				if errors.Is(err, netguard.ErrForbidden) {
					detail = "url names an address PROST does not send to (loopback, private, link-local, metadata or another internal range; see docs/security.md)"
				}
				probs = append(probs, Problem{Pointer: ptr + "/webhook/url", Detail: detail})
			}
		case a.Schedule != nil:
			walk(ptr+"/schedule/action", a.Schedule.Action)
		}
	}
	for i := range c.Doc.Actions {
		walk(fmt.Sprintf("/actions/%d", i), &c.Doc.Actions[i])
	}
	if len(probs) > 0 {
		return &InvalidError{Problems: probs}
	}
	return nil
}

// Rule is a rule's head and its current document.
type Rule struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Name     string
	Version  int
	Status   string
	// DisabledReason says why PROST disabled the rule (its evaluations
	// overran the time budget); "" when it is active or the tenant
	// disabled it.
	DisabledReason string
	// Webhook is set once a version of the rule had a webhook action.
	Webhook   *WebhookState
	Document  Document
	CreatedAt time.Time
	UpdatedAt time.Time
	// VersionCreatedAt is when the current version was made.
	VersionCreatedAt time.Time
}

// WebhookState is the state of a rule's webhook.
type WebhookState struct {
	Status         string     `json:"status"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
}

// MarshalJSON writes the rule as the API serves it: the document's members
// at the top level, with id, version, status and timestamps.
func (r Rule) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID        uuid.UUID         `json:"id"`
		Name      string            `json:"name"`
		Version   int               `json:"version"`
		Status    string            `json:"status"`
		Reason    string            `json:"disabled_reason,omitempty"`
		Filters   []json.RawMessage `json:"filters"`
		Condition string            `json:"condition,omitempty"`
		Actions   []Action          `json:"actions"`
		Webhook   *WebhookState     `json:"webhook,omitempty"`
		CreatedAt time.Time         `json:"created_at"`
		UpdatedAt time.Time         `json:"updated_at"`
	}{r.ID, r.Name, r.Version, r.Status, r.DisabledReason, r.Document.Filters, r.Document.Condition, r.Document.Actions, r.Webhook,
		r.CreatedAt, r.UpdatedAt})
}

// Version is one immutable version of a rule.
type Version struct {
	RuleID    uuid.UUID       `json:"rule_id"`
	Version   int             `json:"version"`
	Document  json.RawMessage `json:"document"`
	CreatedAt time.Time       `json:"created_at"`
}

func ruleFrom(h rulesdb.Rule, doc []byte, versionAt time.Time) (Rule, error) {
	r := Rule{ID: h.RuleID, TenantID: h.TenantID, Name: h.Name, Version: int(h.CurrentVersion), Status: h.Status,
		CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt, VersionCreatedAt: versionAt}
	if h.DisabledReason != nil {
		r.DisabledReason = *h.DisabledReason
	}
	if h.WebhookSecret != nil {
		r.Webhook = &WebhookState{Status: h.WebhookStatus, DisabledAt: h.WebhookDisabledAt}
		if h.WebhookDisabledReason != nil {
			r.Webhook.DisabledReason = *h.WebhookDisabledReason
		}
	}
	if doc != nil {
		if err := json.Unmarshal(doc, &r.Document); err != nil {
			return r, fmt.Errorf("rules: stored document of %s: %w", h.RuleID, err)
		}
	}
	return r, nil
}

// Create stores a new rule at version 1. When the document has a webhook
// action, a signing secret is made and returned: this is the only time it is
// shown.
func (s *Store) Create(ctx context.Context, tenant uuid.UUID, c *Compiled) (Rule, string, error) {
	if err := s.checkActions(c); err != nil {
		return Rule{}, "", err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Rule{}, "", err
	}
	var secret string
	var sealed []byte
	if c.Doc.hasWebhook() {
		if secret, sealed, err = s.newSecret(id); err != nil {
			return Rule{}, "", err
		}
	}
	var out Rule
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := rulesdb.New(tx)
		if s.cfg.MaxRules > 0 {
			if err := q.LockTenantRules(ctx, tenant); err != nil {
				return err
			}
			n, err := q.CountRules(ctx, tenant)
			if err != nil {
				return err
			}
			if n >= int64(s.cfg.MaxRules) {
				return fmt.Errorf("%w: %d rules", ErrTooManyRules, s.cfg.MaxRules)
			}
		}
		h, err := q.CreateRule(ctx, rulesdb.CreateRuleParams{RuleID: id, TenantID: tenant, Name: c.Doc.Name, WebhookSecret: sealed})
		if err != nil {
			return err
		}
		v, err := q.InsertVersion(ctx, rulesdb.InsertVersionParams{RuleID: id, Version: 1, TenantID: tenant, Document: c.Normalized()})
		if err != nil {
			return err
		}
		out, err = ruleFrom(h, v.Document, v.CreatedAt)
		return err
	})
	if err != nil {
		return Rule{}, "", fmt.Errorf("rules: create: %w", err)
	}
	return out, secret, nil
}

func (s *Store) newSecret(ruleID uuid.UUID) (string, []byte, error) {
	if s.key == nil {
		return "", nil, ErrNoSecretsKey
	}
	secret := webhook.NewSecret()
	return secret, s.key.Seal([]byte(secret), ruleID[:]), nil
}

// Update stores c as the rule's next version. The signing secret is kept; if
// the rule had none and c has a webhook action, one is made and returned.
func (s *Store) Update(ctx context.Context, tenant, id uuid.UUID, c *Compiled) (Rule, string, error) {
	if err := s.checkActions(c); err != nil {
		return Rule{}, "", err
	}
	var out Rule
	var secret string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := rulesdb.New(tx)
		h, err := q.GetRuleForUpdate(ctx, rulesdb.GetRuleForUpdateParams{TenantID: tenant, RuleID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var sealed []byte
		if h.WebhookSecret == nil && c.Doc.hasWebhook() {
			if secret, sealed, err = s.newSecret(id); err != nil {
				return err
			}
		}
		next := h.CurrentVersion + 1
		v, err := q.InsertVersion(ctx, rulesdb.InsertVersionParams{RuleID: id, Version: next, TenantID: tenant, Document: c.Normalized()})
		if err != nil {
			return err
		}
		h, err = q.UpdateRuleHead(ctx, rulesdb.UpdateRuleHeadParams{Name: c.Doc.Name, CurrentVersion: next, WebhookSecret: sealed, TenantID: tenant, RuleID: id})
		if err != nil {
			return err
		}
		out, err = ruleFrom(h, v.Document, v.CreatedAt)
		return err
	})
	if err != nil {
		return Rule{}, "", fmt.Errorf("rules: update %s: %w", id, err)
	}
	return out, secret, nil
}

// Get returns the rule with its current document.
func (s *Store) Get(ctx context.Context, tenant, id uuid.UUID) (Rule, error) {
	row, err := rulesdb.New(s.pool).GetRuleWithDocument(ctx, rulesdb.GetRuleWithDocumentParams{TenantID: tenant, RuleID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Rule{}, fmt.Errorf("rules: get %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Rule{}, fmt.Errorf("rules: get %s: %w", id, err)
	}
	return ruleFrom(rulesdb.Rule{RuleID: row.RuleID, TenantID: row.TenantID, Name: row.Name, CurrentVersion: row.CurrentVersion,
		Status: row.Status, WebhookSecret: row.WebhookSecret, WebhookStatus: row.WebhookStatus, WebhookDisabledAt: row.WebhookDisabledAt,
		WebhookDisabledReason: row.WebhookDisabledReason, DisabledReason: row.DisabledReason, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}, row.Document, row.VersionCreatedAt)
}

// List returns a page of the tenant's rules in id (creation) order. cursor is
// "" for the first page; the returned cursor is "" on the last.
func (s *Store) List(ctx context.Context, tenant uuid.UUID, after string, limit int) ([]Rule, string, error) {
	limit = pageSize(limit)
	p := rulesdb.ListRulesParams{TenantID: tenant, MaxRows: int32(limit + 1)} //nolint:gosec // at most 1001
	if after != "" {
		s, err := cursor.ParseString("r", after)
		if err != nil {
			return nil, "", err
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, "", cursor.ErrInvalid
		}
		p.AfterID = &id
	}
	rows, err := rulesdb.New(s.pool).ListRules(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("rules: list: %w", err)
	}
	var next string
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.String("r", rows[len(rows)-1].RuleID.String())
	}
	out := make([]Rule, len(rows))
	for i, row := range rows {
		out[i], err = ruleFrom(rulesdb.Rule{RuleID: row.RuleID, TenantID: row.TenantID, Name: row.Name, CurrentVersion: row.CurrentVersion,
			Status: row.Status, WebhookSecret: row.WebhookSecret, WebhookStatus: row.WebhookStatus, WebhookDisabledAt: row.WebhookDisabledAt,
			WebhookDisabledReason: row.WebhookDisabledReason, DisabledReason: row.DisabledReason, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}, row.Document, row.VersionCreatedAt)
		if err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

func pageSize(limit int) int {
	switch {
	case limit <= 0:
		return 100
	case limit > 1000:
		return 1000
	}
	return limit
}

// SetStatus disables or enables a rule. Enabling also turns a webhook that a
// 410 disabled back on.
func (s *Store) SetStatus(ctx context.Context, tenant, id uuid.UUID, status string) (Rule, error) {
	if status != StatusActive && status != StatusDisabled {
		return Rule{}, fmt.Errorf("rules: unknown status %q", status)
	}
	_, err := rulesdb.New(s.pool).SetRuleStatus(ctx, rulesdb.SetRuleStatusParams{Status: status, TenantID: tenant, RuleID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Rule{}, fmt.Errorf("rules: set status of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Rule{}, fmt.Errorf("rules: set status of %s: %w", id, err)
	}
	return s.Get(ctx, tenant, id)
}

// Version returns one version of a rule.
func (s *Store) Version(ctx context.Context, tenant, id uuid.UUID, version int) (Version, error) {
	if version < 1 || version > 1<<31-1 {
		return Version{}, fmt.Errorf("rules: version %d of %s: %w", version, id, ErrNotFound)
	}
	v, err := rulesdb.New(s.pool).GetVersion(ctx, rulesdb.GetVersionParams{TenantID: tenant, RuleID: id, Version: int32(version)})
	if errors.Is(err, pgx.ErrNoRows) {
		return Version{}, fmt.Errorf("rules: version %d of %s: %w", version, id, ErrNotFound)
	}
	if err != nil {
		return Version{}, fmt.Errorf("rules: version %d of %s: %w", version, id, err)
	}
	return Version{RuleID: v.RuleID, Version: int(v.Version), Document: v.Document, CreatedAt: v.CreatedAt}, nil
}

// Versions returns every version of a rule, oldest first.
func (s *Store) Versions(ctx context.Context, tenant, id uuid.UUID) ([]Version, error) {
	rows, err := rulesdb.New(s.pool).ListVersions(ctx, rulesdb.ListVersionsParams{TenantID: tenant, RuleID: id})
	if err != nil {
		return nil, fmt.Errorf("rules: versions of %s: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("rules: versions of %s: %w", id, ErrNotFound)
	}
	out := make([]Version, len(rows))
	for i, v := range rows {
		out[i] = Version{RuleID: v.RuleID, Version: int(v.Version), Document: v.Document, CreatedAt: v.CreatedAt}
	}
	return out, nil
}

// Decision is one entry of the decision trail.
type Decision struct {
	DecisionID  uuid.UUID `json:"decision_id"`
	RuleID      uuid.UUID `json:"rule_id"`
	RuleVersion int       `json:"rule_version"`
	EventID     string    `json:"event_id"`
	EventSource string    `json:"event_source"`
	EventType   string    `json:"event_type"`
	// Status is fired (the actions were taken) or overrun (the rule's
	// evaluation overran the event's time budget; no action was taken,
	// and Inputs says the budget and which rules were not evaluated).
	Status    string          `json:"status"`
	Inputs    json.RawMessage `json:"inputs"`
	Actions   []Outcome       `json:"actions"`
	DecidedAt time.Time       `json:"decided_at"`
}

// Outcome is what one action of a decision did.
type Outcome struct {
	// Pointer is the action in the rule version's document (/actions/0).
	Pointer string `json:"pointer"`
	// Type is emit, webhook or schedule.
	Type string `json:"type"`
	// Status is emitted, queued (a webhook delivery job), scheduled,
	// skipped or failed.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Event is the emitted event (emit).
	Event *EventRef `json:"event,omitempty"`
	// URL and WebhookID identify the webhook message (webhook).
	URL       string `json:"url,omitempty"`
	WebhookID string `json:"webhook_id,omitempty"`
	// JobID is the delivery or scheduled job (prost jobs list).
	JobID int64 `json:"job_id,omitempty"`
	// RunAt is when a scheduled action runs.
	RunAt *time.Time `json:"run_at,omitempty"`
	// Delivery is the webhook message's final outcome, when there is one
	// (filled in when decisions are read).
	Delivery *Delivery `json:"delivery,omitempty"`
}

// EventRef names an event.
type EventRef struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Type   string `json:"type,omitempty"`
}

// Delivery is the outcome of a webhook message.
type Delivery struct {
	// Status is delivered, gone (the receiver answered 410) or dead (the
	// attempts ran out).
	Status     string    `json:"status"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Attempts   int       `json:"attempts"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// DecisionQuery selects a page of decisions.
type DecisionQuery struct {
	TenantID uuid.UUID
	// RuleID and EventID filter when set.
	RuleID  *uuid.UUID
	EventID string
	Cursor  string
	// Limit is the page size. Defaults to 100; at most 1,000.
	Limit int
}

// Decisions returns a page of the tenant's decisions, oldest first, with the
// outcome of their webhook messages.
func (s *Store) Decisions(ctx context.Context, q DecisionQuery) ([]Decision, string, error) {
	limit := pageSize(q.Limit)
	p := rulesdb.ListDecisionsParams{TenantID: q.TenantID, RuleID: q.RuleID, MaxRows: int32(limit + 1)} //nolint:gosec // at most 1001
	if q.EventID != "" {
		p.EventID = &q.EventID
	}
	n, err := cursor.ParseInt("d", q.Cursor)
	if err != nil {
		return nil, "", err
	}
	p.AfterSeq = n
	db := rulesdb.New(s.pool)
	rows, err := db.ListDecisions(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("rules: decisions: %w", err)
	}
	var next string
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.Int("d", rows[len(rows)-1].Seq)
	}
	out := make([]Decision, len(rows))
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		out[i] = decisionFrom(r)
		ids[i] = r.DecisionID
	}
	if len(ids) > 0 {
		ds, err := db.DeliveriesOf(ctx, ids)
		if err != nil {
			return nil, "", fmt.Errorf("rules: decisions: deliveries: %w", err)
		}
		byID := make(map[string]*Delivery, len(ds))
		for _, d := range ds {
			dv := &Delivery{Status: d.Status, Attempts: int(d.Attempts), At: d.UpdatedAt}
			if d.HttpStatus != nil {
				dv.HTTPStatus = int(*d.HttpStatus)
			}
			if d.LastError != nil {
				dv.Error = *d.LastError
			}
			byID[d.WebhookID] = dv
		}
		for i := range out {
			for j := range out[i].Actions {
				if a := &out[i].Actions[j]; a.WebhookID != "" {
					a.Delivery = byID[a.WebhookID]
				}
			}
		}
	}
	return out, next, nil
}

func decisionFrom(r rulesdb.Decision) Decision {
	d := Decision{DecisionID: r.DecisionID, RuleID: r.RuleID, RuleVersion: int(r.RuleVersion), EventID: r.EventID,
		EventSource: r.EventSource, EventType: r.EventType, Status: r.Status, Inputs: r.Inputs, DecidedAt: r.DecidedAt}
	_ = json.Unmarshal(r.Actions, &d.Actions)
	if d.Actions == nil {
		d.Actions = []Outcome{}
	}
	return d
}

// WebhookTarget is what a delivery needs from a rule.
type WebhookTarget struct {
	Secret        string
	RuleStatus    string
	WebhookStatus string
}

// Webhook returns the rule's signing secret (opened) and its statuses.
func (s *Store) Webhook(ctx context.Context, tenant, id uuid.UUID) (WebhookTarget, error) {
	h, err := rulesdb.New(s.pool).GetRule(ctx, rulesdb.GetRuleParams{TenantID: tenant, RuleID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return WebhookTarget{}, fmt.Errorf("rules: webhook of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return WebhookTarget{}, fmt.Errorf("rules: webhook of %s: %w", id, err)
	}
	t := WebhookTarget{RuleStatus: h.Status, WebhookStatus: h.WebhookStatus}
	if h.WebhookSecret == nil {
		return t, fmt.Errorf("rules: rule %s has no webhook secret: %w", id, ErrNotFound)
	}
	if s.key == nil {
		return t, ErrNoSecretsKey
	}
	pt, err := s.key.Open(h.WebhookSecret, id[:])
	if err != nil {
		return t, fmt.Errorf("rules: webhook secret of %s: %w", id, err)
	}
	t.Secret = string(pt)
	return t, nil
}

// DisableWebhook turns the rule's webhook off (a receiver answered 410).
func (s *Store) DisableWebhook(ctx context.Context, tenant, id uuid.UUID, reason string) error {
	return rulesdb.New(s.pool).DisableWebhook(ctx, rulesdb.DisableWebhookParams{Reason: &reason, TenantID: tenant, RuleID: id})
}

// EventEnvelope returns a stored event's structured-mode JSON.
func (s *Store) EventEnvelope(ctx context.Context, tenant uuid.UUID, source, id string) ([]byte, error) {
	env, err := rulesdb.New(s.pool).GetEventEnvelope(ctx, rulesdb.GetEventEnvelopeParams{TenantID: tenant, Source: source, ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("rules: event %s %s: %w", source, id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return []byte(env), nil
}

// DeliveryRecord is the outcome of a webhook message to record.
type DeliveryRecord struct {
	WebhookID  string
	TenantID   uuid.UUID
	RuleID     uuid.UUID
	DecisionID uuid.UUID
	URL        string
	Status     string // delivered, gone or dead
	HTTPStatus int
	Attempts   int
	JobID      int64
	Error      string
}

// RecordDelivery stores a message's outcome with db (a transaction or the
// pool); a delivered message's record never changes again.
func RecordDelivery(ctx context.Context, db rulesdb.DBTX, r DeliveryRecord) error {
	p := rulesdb.RecordDeliveryParams{WebhookID: r.WebhookID, TenantID: r.TenantID, RuleID: r.RuleID, DecisionID: r.DecisionID,
		Url: r.URL, Status: r.Status, Attempts: int32(r.Attempts)} //nolint:gosec // attempts fit
	if r.HTTPStatus != 0 {
		hs := int32(r.HTTPStatus) //nolint:gosec // an HTTP status
		p.HttpStatus = &hs
	}
	if r.JobID != 0 {
		p.JobID = &r.JobID
	}
	if r.Error != "" {
		e := r.Error
		if len(e) > 2000 {
			e = e[:2000]
		}
		e = strings.ReplaceAll(strings.ToValidUTF8(e, "\uFFFD"), "\x00", "")
		p.LastError = &e
	}
	return rulesdb.New(db).RecordDelivery(ctx, p)
}

// Delivered reports whether the webhook message was already delivered.
func (s *Store) Delivered(ctx context.Context, webhookID string) (bool, error) {
	d, err := rulesdb.New(s.pool).GetDelivery(ctx, webhookID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return d.Status == "delivered", nil
}

// Pool is the store's pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
