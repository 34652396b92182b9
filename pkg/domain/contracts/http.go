package contracts

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/internal/jsonbody"
	"github.com/prost-platform/prost/pkg/problem"
)

// Handlers serve a tenant's contracts under /v1/contracts: PUT, GET and
// list.
type Handlers struct {
	store    *Store
	log      *slog.Logger
	tenantID func(*http.Request) uuid.UUID
}

// NewHandlers returns the contracts API on store; log defaults to
// discarding.
func NewHandlers(store *Store, log *slog.Logger) *Handlers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handlers{store: store, log: log}
}

// Register mounts the routes on mux. tenant wraps each handler so it runs
// only for an authenticated App; tenantID returns that App's id inside it.
func (h *Handlers) Register(mux *http.ServeMux, tenant func(http.HandlerFunc) http.Handler, tenantID func(*http.Request) uuid.UUID) {
	h.tenantID = tenantID
	mux.Handle("GET /v1/contracts", tenant(h.list))
	mux.Handle("GET /v1/contracts/{type}", tenant(h.get))
	mux.Handle("PUT /v1/contracts/{type}", tenant(h.put))
}

func (h *Handlers) put(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("type")
	b, mt, err := jsonbody.Read(w, r, 256<<10, "application/json", "application/yaml", "application/x-yaml", "text/yaml")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var c *Contract
	if mt == "" || mt == "application/json" {
		c, err = ParseJSON(b)
	} else {
		c, err = ParseYAML(b)
	}
	if err != nil {
		h.fail(w, r, problem.New(http.StatusBadRequest, err.Error()))
		return
	}
	if c.Type == "" {
		c.Type = typ
	}
	if c.Type != typ {
		p := problem.New(http.StatusUnprocessableEntity, "the contract's type must be the type in the path")
		p.Errors = []problem.FieldError{{Field: "type", Detail: "is " + strconv.Quote(c.Type) + ", the path says " + strconv.Quote(typ)}}
		h.fail(w, r, p)
		return
	}
	st, created, err := h.store.Put(r.Context(), h.tenantID(r), c)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	jsonbody.Write(w, status, st)
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) {
	st, err := h.store.Get(r.Context(), h.tenantID(r), r.PathValue("type"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonbody.Write(w, http.StatusOK, st)
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			p := problem.New(http.StatusBadRequest, "invalid query parameter limit")
			p.Errors = []problem.FieldError{{Field: "limit", Detail: "must be an integer from 1 to 1000"}}
			h.fail(w, r, p)
			return
		}
		limit = n
	}
	page, err := h.store.List(r.Context(), h.tenantID(r), q.Get("cursor"), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonbody.Write(w, http.StatusOK, page)
}

func (h *Handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem.Problem
	var le *LintError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &le):
		p = problem.New(http.StatusUnprocessableEntity, "the contract fails lint: fix each finding (gate A, B, C or level) and PUT it again")
		for _, f := range le.Findings {
			p.Errors = append(p.Errors, problem.FieldError{Field: f.Field, Keyword: f.Gate, Detail: f.String()})
		}
	case errors.Is(err, ErrNotFound):
		p = problem.New(http.StatusNotFound, "no contract for type "+strconv.Quote(r.PathValue("type")))
	case errors.Is(err, ErrBadCursor):
		p = problem.New(http.StatusBadRequest, "invalid cursor")
		p.Errors = []problem.FieldError{{Field: "cursor", Detail: "use the next_cursor of a previous page"}}
	default:
		h.log.Error("contracts request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		p = problem.New(http.StatusInternalServerError, "internal error; the request id identifies it in the logs")
	}
	p.Instance = r.URL.Path
	problem.Write(w, p)
}
