package rules

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/problem"
)

// Handlers serve the tenant routes of rules and decisions:
//
//	POST /v1/rules                          create (201; webhook_secret shown once)
//	GET  /v1/rules?limit=&cursor=           list
//	GET  /v1/rules/{id}                     the rule and its current version
//	PUT  /v1/rules/{id}                     a new version
//	POST /v1/rules/{id}/disable, /enable    switch the rule off or on
//	GET  /v1/rules/{id}/versions            every version
//	GET  /v1/rules/{id}/versions/{version}  one version
//	GET  /v1/decisions?rule=&event_id=&limit=&cursor=
type Handlers struct {
	store *Store
	log   *slog.Logger
}

// NewHandlers returns the handlers over store. log receives server-side
// failures (nil discards).
func NewHandlers(store *Store, log *slog.Logger) *Handlers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handlers{store: store, log: log}
}

// Register mounts the routes on mux. tenant wraps each handler with the
// caller's authentication; tenantID returns the authenticated tenant of a
// request that passed it.
func (h *Handlers) Register(mux *http.ServeMux, tenant func(http.HandlerFunc) http.Handler, tenantID func(*http.Request) uuid.UUID) {
	t := func(fn func(http.ResponseWriter, *http.Request, uuid.UUID)) http.Handler {
		return tenant(func(w http.ResponseWriter, r *http.Request) { fn(w, r, tenantID(r)) })
	}
	mux.Handle("POST /v1/rules", t(h.create))
	mux.Handle("GET /v1/rules", t(h.list))
	mux.Handle("GET /v1/rules/{id}", t(h.get))
	mux.Handle("PUT /v1/rules/{id}", t(h.update))
	mux.Handle("POST /v1/rules/{id}/disable", t(h.setStatus(StatusDisabled)))
	mux.Handle("POST /v1/rules/{id}/enable", t(h.setStatus(StatusActive)))
	mux.Handle("GET /v1/rules/{id}/versions", t(h.versions))
	mux.Handle("GET /v1/rules/{id}/versions/{version}", t(h.version))
	mux.Handle("GET /v1/decisions", t(h.decisions))
}

// created is the answer of create and update: the rule, and the signing
// secret when one was just made.
type created struct {
	Rule
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

func (h *Handlers) readDocument(w http.ResponseWriter, r *http.Request) (*Compiled, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		h.fail(w, r, problem.New(http.StatusUnsupportedMediaType, "send the rule as application/json"))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxDocumentBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.fail(w, r, problem.New(http.StatusRequestEntityTooLarge, "a rule document is at most 64 KiB"))
			return nil, false
		}
		h.fail(w, r, problem.New(http.StatusBadRequest, "cannot read the request body"))
		return nil, false
	}
	if !json.Valid(body) {
		h.fail(w, r, problem.New(http.StatusBadRequest, "the body is not valid JSON"))
		return nil, false
	}
	c, err := ParseDocument(body)
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return c, true
}

func isJSON(ct string) bool {
	for i := 0; i < len(ct); i++ {
		if ct[i] == ';' {
			ct = ct[:i]
			break
		}
	}
	for len(ct) > 0 && ct[len(ct)-1] == ' ' {
		ct = ct[:len(ct)-1]
	}
	return equalFold(ct, "application/json")
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func (h *Handlers) create(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	c, ok := h.readDocument(w, r)
	if !ok {
		return
	}
	rule, secret, err := h.store.Create(r.Context(), tenant, c)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/rules/"+rule.ID.String())
	writeJSON(w, http.StatusCreated, created{rule, secret})
}

func (h *Handlers) update(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	id, ok := h.ruleID(w, r)
	if !ok {
		return
	}
	c, ok := h.readDocument(w, r)
	if !ok {
		return
	}
	rule, secret, err := h.store.Update(r.Context(), tenant, id, c)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, created{rule, secret})
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	id, ok := h.ruleID(w, r)
	if !ok {
		return
	}
	rule, err := h.store.Get(r.Context(), tenant, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rule)
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

func (h *Handlers) list(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	limit, ok := h.limit(w, r)
	if !ok {
		return
	}
	rules, next, err := h.store.List(r.Context(), tenant, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(rules, next))
}

func (h *Handlers) setStatus(status string) func(http.ResponseWriter, *http.Request, uuid.UUID) {
	return func(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
		id, ok := h.ruleID(w, r)
		if !ok {
			return
		}
		rule, err := h.store.SetStatus(r.Context(), tenant, id, status)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, rule)
	}
}

func (h *Handlers) versions(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	id, ok := h.ruleID(w, r)
	if !ok {
		return
	}
	vs, err := h.store.Versions(r.Context(), tenant, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(vs, ""))
}

func (h *Handlers) version(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	id, ok := h.ruleID(w, r)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || n < 1 {
		h.fail(w, r, badParam("version", "must be a version number (1, 2, ...)"))
		return
	}
	v, err := h.store.Version(r.Context(), tenant, id, n)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *Handlers) decisions(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	limit, ok := h.limit(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	dq := DecisionQuery{TenantID: tenant, EventID: q.Get("event_id"), Cursor: q.Get("cursor"), Limit: limit}
	if v := q.Get("rule"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			h.fail(w, r, badParam("rule", "must be a rule id (UUID)"))
			return
		}
		dq.RuleID = &id
	}
	ds, next, err := h.store.Decisions(r.Context(), dq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(ds, next))
}

func (h *Handlers) ruleID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		// Not a rule id: no such rule, as for any unknown id.
		h.fail(w, r, ErrNotFound)
		return uuid.Nil, false
	}
	return id, true
}

func (h *Handlers) limit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		h.fail(w, r, badParam("limit", "must be an integer from 1 to 1000"))
		return 0, false
	}
	return n, true
}

func badParam(name, detail string) *problem.Problem {
	p := problem.New(http.StatusBadRequest, "invalid parameter "+name)
	p.Errors = []problem.FieldError{{Field: name, Detail: detail}}
	return p
}

// invalidProblem is the 422 answer to an invalid rule: a problem document
// whose errors also locate expression problems by line and column.
type invalidProblem struct {
	*problem.Problem
	Errors []Problem `json:"errors"`
}

// fail answers with the problem for err.
func (h *Handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem.Problem
	var inv *InvalidError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &inv):
		p = problem.New(http.StatusUnprocessableEntity, "the rule is invalid; each error names the member (a JSON pointer) and, inside an expression, the line and column")
		p.Instance = r.URL.Path
		w.Header().Set("Content-Type", problem.ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(p.Status)
		_ = json.NewEncoder(w).Encode(invalidProblem{Problem: p, Errors: inv.Problems})
		return
	case errors.Is(err, ErrNotFound):
		p = problem.New(http.StatusNotFound, "no such rule")
	case errors.Is(err, ErrBadCursor):
		p = badParam("cursor", "use the next_cursor of a previous page")
	case errors.Is(err, ErrNoSecretsKey):
		p = problem.New(http.StatusServiceUnavailable, "webhook actions are unavailable: the server has no PROST_SECRETS_KEY to seal signing secrets")
	case errors.Is(err, context.DeadlineExceeded):
		p = problem.New(http.StatusServiceUnavailable, "the request timed out; retry later")
		p.RetryAfter = 1
	default:
		h.log.Error("rules: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		p = problem.New(http.StatusInternalServerError, "internal error; the request id identifies it in the logs")
	}
	p.Instance = r.URL.Path
	problem.Write(w, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
