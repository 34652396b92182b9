// Package audithttp serves the audit log:
//
//	GET /v1/audit?limit=&cursor=                              the caller's chain, oldest first
//	GET /v1/audit?event_id=[&source=]                         the entries about one event
//	GET /v1/audit/verify[?settle=&cursor=]                    verify the caller's log
//	GET /admin/v1/audit/verify[?app_id=&settle=&cursor=]      verify the logs (every tenant's, or one)
//
// A verification recomputes each chain and checks that every stored event
// has its entry (see audit.VerifyPaged). It answers after a time budget
// with the tenants it finished and a next_cursor to continue from, so a
// log of any length is verified without a long request.
package audithttp

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// Config tunes the handlers. The zero value is usable.
type Config struct {
	// Consumer is the audit consumer's name, to name an event it
	// dead-lettered.
	Consumer string
	// VerifyBudget is the time one verify request works. Defaults to
	// audit.DefaultVerifyBudget.
	VerifyBudget time.Duration
}

// Handlers serve the audit routes.
type Handlers struct {
	pool *pgxpool.Pool
	cfg  Config
}

// New returns the handlers over the database.
func New(pool *pgxpool.Pool, cfg Config) *Handlers { return &Handlers{pool: pool, cfg: cfg} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("GET /v1/audit", h.list)
	rt.Tenant("GET /v1/audit/verify", h.verifyOwn)
	rt.Admin("GET /admin/v1/audit/verify", h.verify)
}

// Page is the answer of GET /v1/audit.
type Page struct {
	Items      []audit.Entry `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	if ev := r.URL.Query().Get("event_id"); ev != "" {
		items, err := audit.ForEvent(r.Context(), h.pool, httpapi.TenantID(r.Context()), ev, r.URL.Query().Get("source"))
		if err != nil {
			return err
		}
		return httpapi.WriteJSON(w, http.StatusOK, Page{Items: items})
	}
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	page, err := audit.List(r.Context(), h.pool, httpapi.TenantID(r.Context()), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	out := Page{Items: page.Items}
	if out.Items == nil {
		out.Items = []audit.Entry{}
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// VerifyResponse is the answer of the verify routes: the tenants this
// request finished, OK when none of them is broken or incomplete, and the
// cursor of the rest (nil when done).
type VerifyResponse struct {
	OK         bool                 `json:"ok"`
	Chains     []audit.VerifyResult `json:"chains"`
	NextCursor *string              `json:"next_cursor"`
}

// verifyOwn verifies the caller's own log.
func (h *Handlers) verifyOwn(w http.ResponseWriter, r *http.Request) error {
	tenant := httpapi.TenantID(r.Context())
	return h.answer(w, r, &tenant)
}

func (h *Handlers) verify(w http.ResponseWriter, r *http.Request) error {
	one, err := httpapi.UUIDParam(r, "app_id")
	if err != nil {
		return err
	}
	return h.answer(w, r, one)
}

func (h *Handlers) answer(w http.ResponseWriter, r *http.Request, tenant *uuid.UUID) error {
	o := audit.VerifyOptions{Tenant: tenant, Cursor: r.URL.Query().Get("cursor"), Budget: h.cfg.VerifyBudget, Consumer: h.cfg.Consumer}
	if v := r.URL.Query().Get("settle"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return problem.BadParam("settle", "must be a duration such as 1m or 0s")
		}
		o.Settle = d
		if d == 0 {
			o.Settle = -1 // zero: check every event stored so far
		}
	}
	page, err := audit.VerifyPaged(r.Context(), h.pool, o)
	if err != nil {
		return err
	}
	out := VerifyResponse{OK: true, Chains: page.Chains}
	for _, c := range page.Chains {
		out.OK = out.OK && c.OK()
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}
