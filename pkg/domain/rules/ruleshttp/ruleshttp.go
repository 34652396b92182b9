// Package ruleshttp serves the tenant routes of rules and decisions:
//
//	POST /v1/rules                          create (201; webhook_secret shown once)
//	GET  /v1/rules?limit=&cursor=           list
//	GET  /v1/rules/{id}                     the rule and its current version
//	PUT  /v1/rules/{id}                     a new version
//	POST /v1/rules/{id}/disable, /enable    switch the rule off or on
//	GET  /v1/rules/{id}/versions            every version
//	GET  /v1/rules/{id}/versions/{version}  one version
//	GET  /v1/decisions?rule=&event_id=&limit=&cursor=
package ruleshttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/domain/rules"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/storable"
)

// Handlers serve the rules routes.
type Handlers struct {
	store *rules.Store
}

// New returns the handlers over store.
func New(store *rules.Store) *Handlers { return &Handlers{store: store} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("POST /v1/rules", h.create)
	rt.Tenant("GET /v1/rules", h.list)
	rt.Tenant("GET /v1/rules/{id}", h.get)
	rt.Tenant("PUT /v1/rules/{id}", h.update)
	rt.Tenant("POST /v1/rules/{id}/disable", h.setStatus(rules.StatusDisabled))
	rt.Tenant("POST /v1/rules/{id}/enable", h.setStatus(rules.StatusActive))
	rt.Tenant("GET /v1/rules/{id}/versions", h.versions)
	rt.Tenant("GET /v1/rules/{id}/versions/{version}", h.version)
	rt.Tenant("GET /v1/decisions", h.decisions)
}

// created is the answer of create and update: the rule, and the signing
// secret when one was just made.
type created struct {
	rules.Rule
	WebhookSecret string
}

func (c created) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.Rule)
	if err != nil || c.WebhookSecret == "" {
		return b, err
	}
	s, _ := json.Marshal(c.WebhookSecret)
	return append(append(append(b[:len(b)-1:len(b)-1], `,"webhook_secret":`...), s...), '}'), nil
}

func readDocument(w http.ResponseWriter, r *http.Request) (*rules.Compiled, error) {
	body, _, err := httpapi.ReadBody(w, r, rules.MaxDocumentBytes, "application/json")
	if err != nil {
		switch {
		case errors.Is(err, problem.TooLarge):
			return nil, problem.Errorf(problem.TooLarge, "a rule document is at most 64 KiB")
		case errors.Is(err, problem.UnsupportedMediaType):
			return nil, problem.Errorf(problem.UnsupportedMediaType, "send the rule as application/json")
		}
		return nil, err
	}
	if !json.Valid(body) {
		return nil, problem.Errorf(problem.Malformed, "the body is not valid JSON")
	}
	if ptr, reason, ok := storable.JSON(body); !ok {
		return nil, httpapi.Unstorable(ptr, reason)
	}
	return rules.ParseDocument(body)
}

func (h *Handlers) create(w http.ResponseWriter, r *http.Request) error {
	c, err := readDocument(w, r)
	if err != nil {
		return err
	}
	rule, secret, err := h.store.Create(r.Context(), httpapi.TenantID(r.Context()), c)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/rules/"+rule.ID.String())
	if secret != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	return httpapi.WriteJSON(w, http.StatusCreated, created{rule, secret})
}

func (h *Handlers) update(w http.ResponseWriter, r *http.Request) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	c, err := readDocument(w, r)
	if err != nil {
		return err
	}
	rule, secret, err := h.store.Update(r.Context(), httpapi.TenantID(r.Context()), id, c)
	if err != nil {
		return err
	}
	if secret != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	return httpapi.WriteJSON(w, http.StatusOK, created{rule, secret})
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	rule, err := h.store.Get(r.Context(), httpapi.TenantID(r.Context()), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, rule)
}

// page is the shape of every list answer.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newPage[T any](items []T, next string) page[T] {
	if items == nil {
		items = []T{}
	}
	p := page[T]{Items: items}
	if next != "" {
		p.NextCursor = &next
	}
	return p
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	rs, next, err := h.store.List(r.Context(), httpapi.TenantID(r.Context()), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, newPage(rs, next))
}

func (h *Handlers) setStatus(status string) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := ruleID(r)
		if err != nil {
			return err
		}
		rule, err := h.store.SetStatus(r.Context(), httpapi.TenantID(r.Context()), id, status)
		if err != nil {
			return err
		}
		return httpapi.WriteJSON(w, http.StatusOK, rule)
	}
}

func (h *Handlers) versions(w http.ResponseWriter, r *http.Request) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	vs, err := h.store.Versions(r.Context(), httpapi.TenantID(r.Context()), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, newPage(vs, ""))
}

func (h *Handlers) version(w http.ResponseWriter, r *http.Request) error {
	id, err := ruleID(r)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || n < 1 {
		return problem.BadPathParam("version", "must be a version number (1, 2, ...)")
	}
	v, err := h.store.Version(r.Context(), httpapi.TenantID(r.Context()), id, n)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, v)
}

func (h *Handlers) decisions(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	dq := rules.DecisionQuery{TenantID: httpapi.TenantID(r.Context()), EventID: q.Get("event_id"), Cursor: q.Get("cursor"), Limit: limit}
	if dq.RuleID, err = httpapi.UUIDParam(r, "rule"); err != nil {
		return err
	}
	ds, next, err := h.store.Decisions(r.Context(), dq)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, newPage(ds, next))
}

// ruleID reads the rule id in the path; text that is not a rule id names no
// rule, as for any unknown id.
func ruleID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, rules.ErrNotFound
	}
	return id, nil
}
