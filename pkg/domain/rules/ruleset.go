package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/rules/internal/rulesdb"
)

// ruleSet is a tenant's active rules, indexed by the event types they can
// match: an event is tried only against the rules whose filters allow its
// type, so the cost of an event does not grow with the tenant's rules of
// other types. A ruleSet is never changed once built; gen is the tenant's
// rule generation it was built at (see RuleGenerations).
type ruleSet struct {
	gen    int64
	heads  []ruleHead
	exact  map[string][]int // type -> heads that need exactly it
	prefix map[string][]int // prefix -> heads that need a type starting with it
	always []int            // heads that may match any type
}

// candidates lists, in the order of heads, the heads an event of typ may
// match.
func (s *ruleSet) candidates(typ string) []int {
	out := append([]int(nil), s.always...)
	out = append(out, s.exact[typ]...)
	for p, hs := range s.prefix {
		if strings.HasPrefix(typ, p) {
			out = append(out, hs...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mayMatch reports whether any head may match an event of typ: whether
// candidates(typ) would be non-empty.
func (s *ruleSet) mayMatch(typ string) bool {
	if len(s.always) > 0 || len(s.exact[typ]) > 0 {
		return true
	}
	for p := range s.prefix {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// maxRuleSets bounds the tenants whose rule sets are kept in memory.
const maxRuleSets = 10_000

// ruleSets returns the active rules of each tenant: from memory when the
// tenant's rule generation has not moved since they were read, else read
// again and indexed. One query per call when nothing changed.
// Relevant is the rules consumer's consumer.Config.Relevant: it keeps the
// messages some active rule of their tenant may match by type (a rule's
// type filters, as candidates reads them), from the rule sets read through
// tx as HandleEvents reads them, so the events no rule can match are
// acknowledged with nothing written. A message whose subject names no
// tenant or no plain type is kept.
func (e *Engine) Relevant(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) ([]*consumer.Message, error) {
	tenants := consumer.Tenants(msgs)
	if len(tenants) == 0 {
		return msgs, nil
	}
	sets, err := e.ruleSets(ctx, rulesdb.New(tx), tenants)
	if err != nil {
		return nil, err
	}
	return consumer.Keep(msgs, func(t uuid.UUID, typ string, typed bool) bool {
		s := sets[t]
		return s != nil && len(s.heads) > 0 && (!typed || s.mayMatch(typ))
	}), nil
}

func (e *Engine) ruleSets(ctx context.Context, q *rulesdb.Queries, tenants []uuid.UUID) (map[uuid.UUID]*ruleSet, error) {
	gens, err := q.RuleGenerations(ctx, tenants)
	if err != nil {
		return nil, fmt.Errorf("rules: read rule generations: %w", err)
	}
	genOf := make(map[uuid.UUID]int64, len(gens))
	for _, g := range gens {
		genOf[g.TenantID] = g.Gen
	}
	out := make(map[uuid.UUID]*ruleSet, len(tenants))
	var stale []uuid.UUID
	e.mu.Lock()
	for _, t := range tenants {
		if s, ok := e.sets[t]; ok && s.gen == genOf[t] {
			out[t] = s
		} else {
			stale = append(stale, t)
		}
	}
	e.mu.Unlock()
	if len(stale) == 0 {
		return out, nil
	}
	rows, err := q.ActiveRuleVersions(ctx, stale)
	if err != nil {
		return nil, fmt.Errorf("rules: load active rules: %w", err)
	}
	byTenant := map[uuid.UUID][]ruleHead{}
	for _, r := range rows {
		hs := byTenant[r.TenantID]
		if len(hs) == 0 || hs[len(hs)-1].id != r.RuleID {
			hs = append(hs, ruleHead{id: r.RuleID, webhookActive: r.WebhookStatus == StatusActive, overruns: r.Overruns})
		}
		hs[len(hs)-1].versions = append(hs[len(hs)-1].versions, r)
		byTenant[r.TenantID] = hs
	}
	for _, t := range stale {
		s, err := e.index(ctx, q, genOf[t], byTenant[t])
		if err != nil {
			return nil, err
		}
		out[t] = s
	}
	e.mu.Lock()
	if len(e.sets)+len(stale) > maxRuleSets {
		clear(e.sets)
	}
	for _, t := range stale {
		e.sets[t] = out[t]
	}
	e.mu.Unlock()
	return out, nil
}

// index builds a tenant's rule set: each head goes under the type key of
// its versions' filters, or is tried on every event when a version's filters
// may match any type (or do not compile).
func (e *Engine) index(ctx context.Context, q *rulesdb.Queries, gen int64, heads []ruleHead) (*ruleSet, error) {
	s := &ruleSet{gen: gen, heads: heads, exact: map[string][]int{}, prefix: map[string][]int{}}
	for i := range heads {
		var exact, prefix []string
		always := false
		for _, v := range heads[i].versions {
			c, err := e.compiled(ctx, q, heads[i].id, v.Version)
			if err != nil {
				return nil, err
			}
			if c == nil {
				always = true
				break
			}
			k, ok := c.Filters.TypeKey()
			switch {
			case !ok:
				always = true
			case k.Exact != "":
				exact = append(exact, k.Exact)
			default:
				prefix = append(prefix, k.Prefix)
			}
		}
		if always {
			s.always = append(s.always, i)
			continue
		}
		slices.Sort(exact)
		for _, t := range slices.Compact(exact) {
			s.exact[t] = append(s.exact[t], i)
		}
		slices.Sort(prefix)
		for _, p := range slices.Compact(prefix) {
			s.prefix[p] = append(s.prefix[p], i)
		}
	}
	return s, nil
}
