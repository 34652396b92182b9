package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/rules/condition"
	"github.com/prost-platform/prost/pkg/domain/rules/filter"
	"github.com/prost-platform/prost/pkg/domain/rules/internal/rulesdb"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/subjects"
)

const (
	// DecisionType is the CloudEvents type of the event every decision is
	// also recorded as. Rules never evaluate events of this type, so a rule
	// can never fire on decisions (its own or another's).
	DecisionType = "prost.rule.decision"
	// KindWebhook is the job kind of a webhook delivery.
	KindWebhook = "rules.webhook"
	// KindScheduled is the job kind of a scheduled action.
	KindScheduled = "rules.scheduled"

	// Extensions set on emitted events: the trail back to the decision and
	// the event that caused it.
	ExtTenant      = "tenantid"
	ExtRuleID      = "ruleid"
	ExtRuleVersion = "ruleversion"
	ExtDecisionID  = "decisionid"
	ExtCauseID     = "causeid"
	ExtCauseSource = "causesource"
	// ExtDepth counts how many rule firings led to an event (1 for an event a
	// rule emitted because of a client's event). Rules do not evaluate events
	// whose depth reached EngineConfig.MaxChainDepth, which ends rule loops.
	ExtDepth = "ruledepth"
)

// EngineConfig tunes an Engine. The zero value is usable.
type EngineConfig struct {
	// Partitions is the gateway's PROST_PARTITIONS, for the subjects of
	// emitted events. Defaults to 16.
	Partitions int
	// MaxChainDepth stops chains of rules: an event emitted by a rule
	// carries ruledepth = its cause's + 1, and events at this depth are not
	// evaluated. Defaults to 8.
	MaxChainDepth int
	// EvalBudget is the time all of one event's rule evaluation may take
	// together (filters, CESQL, conditions, templates; not the database
	// writes), so that one tenant's rules cannot hold the partition its
	// events share with other tenants for long. The rule whose evaluation
	// is running when the budget is spent is recorded in a decision of
	// status "overrun", without its actions, and the event's remaining
	// rules are not evaluated (the decision lists them). Defaults to
	// DefaultEvalBudget (PROST_RULES_EVAL_BUDGET).
	EvalBudget time.Duration
	// MaxOverruns disables a rule whose evaluations overran the budget this
	// many times in a row, with the reason (enable it again once it is
	// cheaper). Defaults to DefaultMaxOverruns (PROST_RULES_MAX_OVERRUNS).
	MaxOverruns int
	// WebhookMaxAttempts is how many attempts a webhook delivery gets before
	// it is dead-lettered. Defaults to 12 (about 11 hours with the job
	// engine's default backoff).
	WebhookMaxAttempts int
	// Keyring reveals classified values (pkg/dataprotect) to conditions and
	// templates; what the engine stores from them stays encrypted. nil:
	// rules see the stored ciphertext.
	Keyring *dataprotect.Keyring
	// Logger receives the engine's logs. Defaults to discarding.
	Logger *slog.Logger
}

// Defaults of EngineConfig.
const (
	DefaultEvalBudget  = 50 * time.Millisecond
	DefaultMaxOverruns = 3
)

// Statuses of a decision.
const (
	// DecisionFired: the rule matched and its actions were taken.
	DecisionFired = "fired"
	// DecisionOverrun: the rule's evaluation overran the event's time
	// budget; no action was taken.
	DecisionOverrun = "overrun"
)

// Engine evaluates rules against events (HandleEvents, a consumer.Handler)
// and runs scheduled actions (RunScheduled, a jobs.Handler). It is safe for
// concurrent use.
type Engine struct {
	pool *pgxpool.Pool
	cfg  EngineConfig

	mu    sync.Mutex
	cache map[versionKey]*Compiled
	// sets holds each tenant's active rules, indexed (see ruleSets).
	sets map[uuid.UUID]*ruleSet
	// decoding holds, per tenant, a slot for decoding large data; a
	// decoding abandoned at the budget keeps it until it ends.
	decoding sync.Map
}

type versionKey struct {
	rule    uuid.UUID
	version int32
}

const maxCache = 10_000

// NewEngine returns an Engine on pool.
func NewEngine(pool *pgxpool.Pool, cfg EngineConfig) *Engine {
	if cfg.Partitions <= 0 {
		cfg.Partitions = subjects.DefaultPartitions
	}
	if cfg.MaxChainDepth <= 0 {
		cfg.MaxChainDepth = 8
	}
	if cfg.EvalBudget <= 0 {
		cfg.EvalBudget = DefaultEvalBudget
	}
	if cfg.MaxOverruns <= 0 {
		cfg.MaxOverruns = DefaultMaxOverruns
	}
	if cfg.WebhookMaxAttempts <= 0 {
		cfg.WebhookMaxAttempts = 12
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{pool: pool, cfg: cfg, cache: map[versionKey]*Compiled{}, sets: map[uuid.UUID]*ruleSet{}}
}

// WebhookJob is the args of a KindWebhook job.
type WebhookJob struct {
	// WebhookID is the message id (webhook-id header): the same on every
	// attempt, retry and replay, so receivers can deduplicate.
	WebhookID   string    `json:"webhook_id"`
	RuleID      uuid.UUID `json:"rule_id"`
	RuleVersion int       `json:"rule_version"`
	DecisionID  uuid.UUID `json:"decision_id"`
	URL         string    `json:"url"`
	// Event is the triggering event; its stored envelope is the body.
	Event EventRef `json:"event"`
}

// scheduledJob is the args of a KindScheduled job.
type scheduledJob struct {
	RuleID      uuid.UUID `json:"rule_id"`
	RuleVersion int       `json:"rule_version"`
	DecisionID  uuid.UUID `json:"decision_id"`
	Pointer     string    `json:"pointer"`
	Action      Action    `json:"action"`
	Event       EventRef  `json:"event"`
}

// item is one event of a batch being evaluated.
type item struct {
	ev         cloudevent.Event
	tenant     uuid.UUID
	depth      int
	recordedAt time.Time
	// priv guards the classified values of ev.Data, revealed in place.
	priv *protected
	// left is what remains of the event's evaluation budget.
	left time.Duration
	// data and vars are the decoded data and the condition variables, made
	// at most once per event.
	data            any
	dataDecoded     bool
	decodeAbandoned bool
	vars            map[string]any
}

// smallData is decoded at once; larger data is decoded within the event's
// budget (see decoded).
const smallData = 64 << 10

// decoded returns the event's JSON data decoded (nil without JSON data or
// when it does not decode), decoding it on first use. Decoding large data
// (up to a MiB) takes tens of milliseconds, so it runs within the event's
// budget: when deadline passes first, decoded returns false and the
// decoding finishes in the background, at most one per tenant at a time,
// while the partition goes on.
func (it *item) decoded(e *Engine, deadline time.Time) (any, bool) {
	if it.dataDecoded {
		return it.data, true
	}
	if it.decodeAbandoned {
		return nil, false
	}
	if len(it.ev.Data) <= smallData {
		it.dataDecoded = true
		if len(it.ev.Data) > 0 {
			it.data, _ = condition.DecodeJSON(it.ev.Data)
		}
		return it.data, true
	}
	s, _ := e.decoding.LoadOrStore(it.tenant, make(chan struct{}, 1))
	slot := s.(chan struct{})
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case slot <- struct{}{}:
	case <-timer.C:
		it.decodeAbandoned = true
		return nil, false
	}
	done := make(chan any, 1)
	data := it.ev.Data
	go func() {
		defer func() { <-slot }()
		d, _ := condition.DecodeJSON(data)
		done <- d
	}()
	select {
	case d := <-done:
		it.data, it.dataDecoded = d, true
		return d, true
	case <-timer.C:
		it.decodeAbandoned = true
		return nil, false
	}
}

// activation returns the condition variables of the event, made once, or
// false when its data could not be decoded before deadline.
func (it *item) activation(e *Engine, deadline time.Time) (map[string]any, bool) {
	if it.vars == nil {
		d, ok := it.decoded(e, deadline)
		if !ok {
			return nil, false
		}
		it.vars = condition.ActivationWith(&it.ev, d)
	}
	return it.vars, true
}

type ruleHead struct {
	id            uuid.UUID
	webhookActive bool
	overruns      int32
	versions      []rulesdb.ActiveRuleVersionsRow // ascending
}

// HandleEvents evaluates every active rule of each event's tenant, in the
// consumer's transaction tx: decisions, emitted events and jobs commit
// together with the consumer's idempotency record, so a redelivered event
// never fires a rule twice. A rule also fires at most once per event by the
// schema (decisions_once).
func (e *Engine) HandleEvents(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
	items := make([]*item, 0, len(msgs))
	for _, m := range msgs {
		it, ok := e.parse(m)
		if ok {
			items = append(items, it)
		}
	}
	if len(items) == 0 {
		return nil
	}
	q := rulesdb.New(tx)
	tenantSet := map[uuid.UUID]bool{}
	var tenants []uuid.UUID
	for _, it := range items {
		if !tenantSet[it.tenant] {
			tenantSet[it.tenant] = true
			tenants = append(tenants, it.tenant)
		}
	}
	sets, err := e.ruleSets(ctx, q, tenants)
	if err != nil {
		return err
	}
	// The batch's own copy of each tenant's heads: it counts overruns on
	// them, and the sets are shared by every lane.
	byTenant := map[uuid.UUID][]ruleHead{}
	for t, s := range sets {
		if len(s.heads) > 0 {
			byTenant[t] = slices.Clone(s.heads)
		}
	}
	if len(byTenant) == 0 {
		return nil
	}
	// When was each event recorded? A rule applies in the version in force
	// at that moment, so an update applies to later events only.
	var keys []eventstore.Key
	for _, it := range items {
		if byTenant[it.tenant] != nil {
			keys = append(keys, eventstore.Key{Tenant: it.tenant, Source: it.ev.Source, ID: it.ev.ID})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	at, err := eventstore.RecordedAt(ctx, tx, keys)
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	var out []eventstore.NewEvent
	// Rules that overran and then evaluated within the budget again: their
	// count of overruns in a row starts over.
	var recovered []uuid.UUID
	for _, it := range items {
		heads := byTenant[it.tenant]
		if heads == nil {
			continue
		}
		it.recordedAt = at[eventstore.Key{Tenant: it.tenant, Source: it.ev.Source, ID: it.ev.ID}]
		if it.priv, err = reveal(ctx, e.cfg.Keyring, it.tenant, &it.ev); err != nil {
			return err
		}
		it.left = e.cfg.EvalBudget
		fev := filter.NewEvent(&it.ev)
		var over *overrun
		for _, i := range sets[it.tenant].candidates(it.ev.Type) {
			h := &heads[i]
			v := pickVersion(h, it.recordedAt)
			if v == nil {
				continue // the rule did not exist yet when the event was recorded
			}
			if over != nil {
				over.skipped = append(over.skipped, h.id)
				continue
			}
			// A version not yet compiled in this process is compiled on
			// the event's budget too.
			compileStart := time.Now()
			c, err := e.compiled(ctx, q, h.id, v.Version)
			if err != nil {
				return err
			}
			if it.left -= time.Since(compileStart); it.left < 0 {
				over = &overrun{head: h, version: int(v.Version)}
				continue
			}
			if c == nil {
				continue
			}
			evs, overran, err := e.evaluate(ctx, tx, q, it, fev, h, int(v.Version), c)
			if err != nil {
				return err
			}
			if overran {
				over = &overrun{head: h, version: int(v.Version)}
				continue
			}
			if h.overruns > 0 {
				h.overruns = 0
				recovered = append(recovered, h.id)
			}
			out = append(out, evs...)
		}
		if over != nil {
			if err := e.recordOverrun(ctx, q, it, over); err != nil {
				return err
			}
		}

	}
	if len(recovered) > 0 {
		if err := q.ResetOverruns(ctx, recovered); err != nil {
			return fmt.Errorf("rules: reset overruns: %w", err)
		}
	}
	if len(out) == 0 {
		return nil
	}
	if _, err := eventstore.AppendTx(ctx, tx, out); err != nil {
		return fmt.Errorf("rules: append emitted events: %w", err)
	}
	return eventstore.NotifyTx(ctx, tx)
}

func (e *Engine) parse(m *consumer.Message) (*item, bool) {
	ev, err := cloudevent.ParseStructured(m.Data)
	if err != nil {
		e.cfg.Logger.Warn("rules: unreadable event skipped", "msg_id", m.ID, "subject", m.Subject, "error", err)
		return nil, false
	}
	if ev.Type == DecisionType {
		return nil, false
	}
	tv, _ := ev.Extension(ExtTenant)
	ts, _ := tv.(string)
	tenant, err := uuid.Parse(ts)
	if err != nil {
		e.cfg.Logger.Warn("rules: event without a tenant skipped", "msg_id", m.ID, "subject", m.Subject)
		return nil, false
	}
	depth := 0
	if d, ok := ev.Extension(ExtDepth); ok {
		switch x := d.(type) {
		case int32:
			depth = int(x)
		case string:
			_, _ = fmt.Sscanf(x, "%d", &depth)
		}
	}
	if depth >= e.cfg.MaxChainDepth {
		e.cfg.Logger.Warn("rules: event at the maximum rule chain depth is not evaluated", "tenant", tenant,
			"event_id", ev.ID, "event_source", ev.Source, "depth", depth)
		return nil, false
	}
	return &item{ev: ev, tenant: tenant, depth: depth}, true
}

// pickVersion is the latest version created at or before recordedAt (the
// current version when the event is not in the store).
func pickVersion(h *ruleHead, recordedAt time.Time) *rulesdb.ActiveRuleVersionsRow {
	if recordedAt.IsZero() {
		for i := range h.versions {
			if h.versions[i].Version == h.versions[i].CurrentVersion {
				return &h.versions[i]
			}
		}
		return nil
	}
	for i := len(h.versions) - 1; i >= 0; i-- {
		v := &h.versions[i]
		if v.Version <= v.CurrentVersion && !v.CreatedAt.After(recordedAt) {
			return v
		}
	}
	return nil
}

// compiled returns a version's compiled document from the cache (versions
// never change) or the database; nil when the stored document no longer
// compiles (logged).
func (e *Engine) compiled(ctx context.Context, q *rulesdb.Queries, id uuid.UUID, version int32) (*Compiled, error) {
	k := versionKey{id, version}
	e.mu.Lock()
	c, ok := e.cache[k]
	e.mu.Unlock()
	if ok {
		return c, nil
	}
	doc, err := q.GetVersionDocument(ctx, rulesdb.GetVersionDocumentParams{RuleID: id, Version: version})
	if err != nil {
		return nil, fmt.Errorf("rules: load rule %s version %d: %w", id, version, err)
	}
	c, err = ParseDocument(doc)
	if err != nil {
		e.cfg.Logger.Error("rules: stored rule version does not compile; skipped", "rule_id", id, "version", version, "error", err)
		c = nil
	}
	e.mu.Lock()
	if len(e.cache) >= maxCache {
		clear(e.cache)
	}
	e.cache[k] = c
	e.mu.Unlock()
	return c, nil
}

// overrun is the rule whose evaluation spent what was left of an event's
// budget, and the rules not evaluated after it.
type overrun struct {
	head    *ruleHead
	version int
	spent   time.Duration
	skipped []uuid.UUID
}

// recordOverrun records the overrunning rule's decision (status overrun, no
// actions; its inputs say the budget and list the rules not evaluated) and
// counts the overrun against the rule, which is disabled at MaxOverruns in
// a row.
func (e *Engine) recordOverrun(ctx context.Context, q *rulesdb.Queries, it *item, o *overrun) error {
	h := o.head
	exists, err := q.DecisionExists(ctx, rulesdb.DecisionExistsParams{TenantID: it.tenant, RuleID: h.id, EventSource: it.ev.Source, EventID: it.ev.ID})
	if err != nil {
		return fmt.Errorf("rules: check decision: %w", err)
	}
	if exists {
		return nil
	}
	decisionID, err := uuid.NewV7()
	if err != nil {
		return err
	}
	skipped := o.skipped
	if skipped == nil {
		skipped = []uuid.UUID{}
	}
	inJSON, _ := json.Marshal(map[string]any{
		"budget":            e.cfg.EvalBudget.String(),
		"not_evaluated":     skipped,
		"overruns_in_a_row": h.overruns + 1,
	})
	if _, err := q.InsertDecision(ctx, rulesdb.InsertDecisionParams{DecisionID: decisionID, TenantID: it.tenant, RuleID: h.id,
		RuleVersion: int32(o.version), EventID: it.ev.ID, EventSource: it.ev.Source, EventType: it.ev.Type, //nolint:gosec // a version number
		Inputs: inJSON, Actions: []byte("[]"), Status: DecisionOverrun}); err != nil {
		return fmt.Errorf("rules: record overrun decision: %w", err)
	}
	reason := fmt.Sprintf("disabled by PROST: %d evaluations in a row overran the %s an event's rules may take together; make the rule cheaper and enable it",
		e.cfg.MaxOverruns, e.cfg.EvalBudget)
	r, err := q.RecordOverrun(ctx, rulesdb.RecordOverrunParams{MaxOverruns: int32(e.cfg.MaxOverruns), Reason: reason, TenantID: it.tenant, RuleID: h.id}) //nolint:gosec // small
	if err != nil {
		return fmt.Errorf("rules: record overrun: %w", err)
	}
	h.overruns = r.Overruns
	log := e.cfg.Logger.With("tenant", it.tenant, "rule_id", h.id, "version", o.version, "event_id", it.ev.ID,
		"budget", e.cfg.EvalBudget, "overruns_in_a_row", r.Overruns, "not_evaluated", len(o.skipped))
	if r.Status == StatusDisabled {
		log.Warn("rules: rule disabled: its evaluations kept overrunning the time budget")
	} else {
		log.Info("rules: rule evaluation overran the event's time budget")
	}
	return nil
}

// evaluate runs one rule version on one event and, on a match, records the
// decision and takes the actions. The evaluation (filters, condition,
// templates) runs within what is left of the event's budget; when it
// overruns, nothing is recorded or taken and overran is true.
func (e *Engine) evaluate(ctx context.Context, tx pgx.Tx, q *rulesdb.Queries, it *item, fev *filter.Event, h *ruleHead, version int, c *Compiled) (_ []eventstore.NewEvent, overran bool, _ error) {
	start := time.Now()
	deadline := start.Add(it.left)
	spend := func() bool {
		it.left -= time.Since(start)
		start = time.Now()
		return it.left < 0
	}
	fev.Deadline = deadline
	matched := c.Filters.Match(fev)
	if spend() {
		return nil, true, nil
	}
	if !matched {
		return nil, false, nil
	}
	inputs := map[string]any{}
	for _, a := range c.filterAttrs {
		if v, ok := it.ev.Attribute(a); ok {
			inputs[a] = v
		}
	}
	if c.Condition != nil {
		vars, ok := it.activation(e, start.Add(it.left))
		if !ok {
			spend()
			return nil, true, nil
		}
		cctx, cancel := context.WithDeadline(ctx, start.Add(it.left))
		ok, in, err := c.Condition.EvalVars(cctx, vars)
		cancel()
		if spend() {
			return nil, true, nil
		}
		if err != nil {
			var msg any = err
			if it.priv != nil {
				// An evaluation error may quote a value it read: never
				// log classified values in clear.
				msg = "(withheld: the event holds classified values)"
			}
			e.cfg.Logger.Debug("rules: condition did not evaluate to true", "rule_id", h.id, "version", version,
				"event_id", it.ev.ID, "error", msg)
		}
		if !ok {
			return nil, false, nil
		}
		if err := it.priv.guardInputs(ctx, in); err != nil {
			return nil, false, err
		}
		for k, v := range in {
			inputs[k] = v
		}
	}
	exists, err := q.DecisionExists(ctx, rulesdb.DecisionExistsParams{TenantID: it.tenant, RuleID: h.id, EventSource: it.ev.Source, EventID: it.ev.ID})
	if err != nil {
		return nil, false, fmt.Errorf("rules: check decision: %w", err)
	}
	if exists {
		return nil, false, nil // this rule already fired on this event
	}
	decisionID, err := uuid.NewV7()
	if err != nil {
		return nil, false, err
	}
	// Templates render first, within the budget; the actions that write
	// (jobs, emitted events) follow only if they did not overrun.
	start = time.Now()
	renderDeadline := start.Add(it.left)
	decodeFailed := false
	ac := &actionContext{ev: &it.ev, tenant: it.tenant, depth: it.depth, ruleID: h.id, version: version, decisionID: decisionID,
		webhookActive: h.webhookActive, now: time.Now(), priv: it.priv, data: func() any {
			d, ok := it.decoded(e, renderDeadline)
			decodeFailed = decodeFailed || !ok
			return d
		}}
	rendered := make([]*eventstore.NewEvent, len(c.Doc.Actions))
	renderOut := make([]*Outcome, len(c.Doc.Actions))
	for i := range c.Doc.Actions {
		if a := &c.Doc.Actions[i]; a.Emit != nil {
			o, ev := e.emit(ctx, ac, a, fmt.Sprintf("/actions/%d", i))
			renderOut[i], rendered[i] = &o, ev
		}
	}
	if spend() || decodeFailed {
		return nil, true, nil
	}
	var evs []eventstore.NewEvent
	outcomes := make([]Outcome, 0, len(c.Doc.Actions))
	for i := range c.Doc.Actions {
		if renderOut[i] != nil {
			outcomes = append(outcomes, *renderOut[i])
			if rendered[i] != nil {
				evs = append(evs, *rendered[i])
			}
			continue
		}
		o, ev, err := e.runAction(ctx, tx, ac, &c.Doc.Actions[i], fmt.Sprintf("/actions/%d", i))
		if err != nil {
			return nil, false, err
		}
		outcomes = append(outcomes, o)
		if ev != nil {
			evs = append(evs, *ev)
		}
	}
	inJSON, _ := json.Marshal(inputs)
	actJSON, _ := json.Marshal(outcomes)
	row, err := q.InsertDecision(ctx, rulesdb.InsertDecisionParams{DecisionID: decisionID, TenantID: it.tenant, RuleID: h.id,
		RuleVersion: int32(version), EventID: it.ev.ID, EventSource: it.ev.Source, EventType: it.ev.Type, //nolint:gosec // a version number
		Inputs: inJSON, Actions: actJSON, Status: DecisionFired})
	if err != nil {
		return nil, false, fmt.Errorf("rules: record decision: %w", err)
	}
	d := decisionFrom(row)
	data, _ := json.Marshal(d)
	dev := cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: decisionID.String(),
		Source: "/prost/rules/" + h.id.String(), Type: DecisionType, Subject: it.ev.ID, Time: row.DecidedAt.UTC(),
		DataContentType: "application/json", Data: data}
	dev.SetExtension(ExtTenant, it.tenant.String())
	dev.SetExtension(ExtRuleID, h.id.String())
	dev.SetExtension(ExtRuleVersion, int32(version)) //nolint:gosec // a version number
	dev.SetExtension(ExtCauseID, it.ev.ID)
	dev.SetExtension(ExtCauseSource, it.ev.Source)
	evs = append(evs, e.newEvent(it.tenant, &dev, partitionKeyOf(&it.ev)))
	e.cfg.Logger.Debug("rules: rule fired", "tenant", it.tenant, "rule_id", h.id, "version", version, "decision_id", decisionID,
		"event_id", it.ev.ID, "event_source", it.ev.Source)
	return evs, false, nil
}

// actionContext is what actions of one decision share.
type actionContext struct {
	ev            *cloudevent.Event
	tenant        uuid.UUID
	depth         int
	ruleID        uuid.UUID
	version       int
	decisionID    uuid.UUID
	webhookActive bool
	now           time.Time
	priv          *protected
	// data returns the triggering event's decoded data (decoded once per
	// event); nil decodes it for this action.
	data func() any
}

// runAction takes one action in tx. Failures of the action itself (an
// emitted event that is not a valid CloudEvent) are outcomes; only database
// errors are returned.
func (e *Engine) runAction(ctx context.Context, tx pgx.Tx, ac *actionContext, a *Action, ptr string) (Outcome, *eventstore.NewEvent, error) {
	o := Outcome{Pointer: ptr, Type: a.Kind()}
	suffix := strings.TrimPrefix(ptr, "/actions/")
	switch {
	case a.Emit != nil:
		eo, ev := e.emit(ctx, ac, a, ptr)
		return eo, ev, nil
	case a.Webhook != nil:
		o.URL = a.Webhook.URL
		o.WebhookID = "msg_" + strings.ReplaceAll(ac.decisionID.String(), "-", "") + "_" + strings.ReplaceAll(suffix, "/", "_")
		if !ac.webhookActive {
			o.Status, o.Error = "skipped", "the rule's webhook is disabled (a receiver answered 410 Gone); enable the rule to turn it back on"
			return o, nil, nil
		}
		args, _ := json.Marshal(WebhookJob{WebhookID: o.WebhookID, RuleID: ac.ruleID, RuleVersion: ac.version, DecisionID: ac.decisionID,
			URL: a.Webhook.URL, Event: EventRef{ID: ac.ev.ID, Source: ac.ev.Source, Type: ac.ev.Type}})
		t := ac.tenant
		j, _, err := jobs.Insert(ctx, tx, jobs.InsertParams{TenantID: &t, Kind: KindWebhook, Args: args,
			MaxAttempts: e.cfg.WebhookMaxAttempts, UniqueKey: o.WebhookID})
		if err != nil {
			return o, nil, fmt.Errorf("rules: queue webhook: %w", err)
		}
		o.Status, o.JobID = "queued", j.ID
		return o, nil, nil
	default:
		d, err := time.ParseDuration(a.Schedule.After)
		if err != nil || a.Schedule.Action == nil {
			o.Status, o.Error = "failed", "invalid schedule"
			return o, nil, nil
		}
		runAt := ac.now.Add(d).UTC()
		args, _ := json.Marshal(scheduledJob{RuleID: ac.ruleID, RuleVersion: ac.version, DecisionID: ac.decisionID,
			Pointer: ptr + "/schedule/action", Action: *a.Schedule.Action,
			Event: EventRef{ID: ac.ev.ID, Source: ac.ev.Source, Type: ac.ev.Type}})
		t := ac.tenant
		j, _, err := jobs.Insert(ctx, tx, jobs.InsertParams{TenantID: &t, Kind: KindScheduled, Args: args, ScheduledAt: runAt,
			UniqueKey: ac.decisionID.String() + ptr})
		if err != nil {
			return o, nil, fmt.Errorf("rules: schedule action: %w", err)
		}
		o.Status, o.JobID, o.RunAt = "scheduled", j.ID, &runAt
		return o, nil, nil
	}
}

// emit renders an emit action: its outcome and, when it rendered into a
// valid CloudEvent, the event to store. It writes nothing.
func (e *Engine) emit(ctx context.Context, ac *actionContext, a *Action, ptr string) (Outcome, *eventstore.NewEvent) {
	o := Outcome{Pointer: ptr, Type: a.Kind()}
	suffix := strings.TrimPrefix(ptr, "/actions/")
	tc := &templateContext{ev: ac.ev, ruleID: ac.ruleID, ruleVersion: ac.version, decisionID: ac.decisionID, ctx: ctx, priv: ac.priv}
	if ac.data != nil {
		tc.data, tc.dataDecoded = ac.data(), true
	}
	ev := cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: ac.decisionID.String() + "#" + suffix,
		Source: a.Emit.Source, Type: a.Emit.Type, Time: ac.now.UTC()}
	var err error
	if ev.Subject, err = tc.renderString(a.Emit.Subject); err == nil {
		ev.Data, err = tc.render(a.Emit.Data)
	}
	if len(ev.Data) > 0 && string(ev.Data) != "null" {
		ev.DataContentType = "application/json"
	} else {
		ev.Data = nil
	}
	ev.SetExtension(ExtTenant, ac.tenant.String())
	ev.SetExtension(ExtRuleID, ac.ruleID.String())
	ev.SetExtension(ExtRuleVersion, int32(ac.version)) //nolint:gosec // a version number
	ev.SetExtension(ExtDecisionID, ac.decisionID.String())
	ev.SetExtension(ExtCauseID, ac.ev.ID)
	ev.SetExtension(ExtCauseSource, ac.ev.Source)
	ev.SetExtension(ExtDepth, int32(ac.depth+1)) //nolint:gosec // bounded by MaxChainDepth
	if pk := partitionKeyOf(ac.ev); pk != "" {
		ev.SetExtension("partitionkey", pk)
	}
	if err == nil {
		err = ev.Validate()
	}
	if err != nil {
		o.Status, o.Error = "failed", err.Error()
		return o, nil
	}
	o.Status = "emitted"
	o.Event = &EventRef{ID: ev.ID, Source: ev.Source, Type: ev.Type}
	ne := e.newEvent(ac.tenant, &ev, partitionKeyOf(ac.ev))
	return o, &ne
}

func partitionKeyOf(ev *cloudevent.Event) string {
	if v, ok := ev.Extension("partitionkey"); ok {
		return fmt.Sprint(v)
	}
	return ""
}

// newEvent makes the stored form of ev, published on the same partition as
// its cause when the cause has a partition key.
func (e *Engine) newEvent(tenant uuid.UUID, ev *cloudevent.Event, causeKey string) eventstore.NewEvent {
	key := causeKey
	if key == "" {
		key = ev.Source + "\x00" + ev.ID
	}
	return eventstore.NewEvent{
		TenantID: tenant, Source: ev.Source, ID: ev.ID, Type: ev.Type, Subject: ev.Subject, Time: ev.Time,
		PartitionKey: partitionKeyOf(ev), Envelope: ev.AppendJSON(nil),
		OutboxSubject: subjects.Event(tenant, subjects.Partition(key, e.cfg.Partitions), ev.Type),
	}
}

// RunScheduled is the jobs.Handler of KindScheduled: it takes the scheduled
// action, in one transaction with the job's completion, unless the rule was
// disabled meanwhile (then the job is cancelled).
func (e *Engine) RunScheduled(ctx context.Context, j *jobs.Job) error {
	var args scheduledJob
	if err := json.Unmarshal(j.Args, &args); err != nil || j.TenantID == nil {
		return jobs.Cancel(fmt.Errorf("rules: unreadable scheduled action: %v", err))
	}
	tenant := *j.TenantID
	q := rulesdb.New(e.pool)
	h, err := q.GetRule(ctx, rulesdb.GetRuleParams{TenantID: tenant, RuleID: args.RuleID})
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.Cancel(errors.New("rules: the rule no longer exists"))
	}
	if err != nil {
		return err
	}
	if h.Status != StatusActive {
		return jobs.Cancel(errors.New("rules: the rule was disabled before its scheduled action ran"))
	}
	env, err := q.GetEventEnvelope(ctx, rulesdb.GetEventEnvelopeParams{TenantID: tenant, Source: args.Event.Source, ID: args.Event.ID})
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.Cancel(errors.New("rules: the triggering event is not in the store"))
	}
	if err != nil {
		return err
	}
	ev, err := cloudevent.ParseStructured([]byte(env))
	if err != nil {
		return jobs.Cancel(fmt.Errorf("rules: stored event unreadable: %w", err))
	}
	depth := 0
	if d, ok := ev.Extension(ExtDepth); ok {
		if n, isInt := d.(int32); isInt {
			depth = int(n)
		}
	}
	priv, err := reveal(ctx, e.cfg.Keyring, tenant, &ev)
	if err != nil {
		return err
	}
	ac := &actionContext{ev: &ev, tenant: tenant, depth: depth, ruleID: args.RuleID, version: args.RuleVersion,
		decisionID: args.DecisionID, webhookActive: h.WebhookStatus == StatusActive, now: time.Now(), priv: priv}
	return pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		o, ne, err := e.runAction(ctx, tx, ac, &args.Action, args.Pointer)
		if err != nil {
			return err
		}
		if ne != nil {
			if _, err := eventstore.AppendTx(ctx, tx, []eventstore.NewEvent{*ne}); err != nil {
				return err
			}
			if err := eventstore.NotifyTx(ctx, tx); err != nil {
				return err
			}
		}
		e.cfg.Logger.Info("rules: scheduled action ran", "tenant", tenant, "rule_id", args.RuleID, "decision_id", args.DecisionID,
			"pointer", args.Pointer, "status", o.Status, "error", o.Error)
		return jobs.CompleteTx(ctx, tx, j)
	})
}
