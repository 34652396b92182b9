// Package audithttp serves the audit log:
//
//	GET /v1/audit?limit=&cursor=           the caller's chain, oldest first
//	GET /v1/audit?event_id=[&source=]      the entries about one event
//	GET /v1/audit/verify                   recompute the caller's chain
//	GET /admin/v1/audit/verify[?app_id=]   recompute the chains (every tenant's, or one)
package audithttp

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/httpapi"
)

// Handlers serve the audit routes.
type Handlers struct {
	pool *pgxpool.Pool
}

// New returns the handlers over the database.
func New(pool *pgxpool.Pool) *Handlers { return &Handlers{pool: pool} }

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

// VerifyResponse is the answer of GET /admin/v1/audit/verify.
type VerifyResponse struct {
	OK     bool                 `json:"ok"`
	Chains []audit.VerifyResult `json:"chains"`
}

// verifyOwn recomputes the caller's own chain.
func (h *Handlers) verifyOwn(w http.ResponseWriter, r *http.Request) error {
	res, err := audit.Verify(r.Context(), h.pool, httpapi.TenantID(r.Context()))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, VerifyResponse{OK: res.Break == nil, Chains: []audit.VerifyResult{res}})
}

func (h *Handlers) verify(w http.ResponseWriter, r *http.Request) error {
	one, err := httpapi.UUIDParam(r, "app_id")
	if err != nil {
		return err
	}
	var tenants []uuid.UUID
	if one != nil {
		tenants = []uuid.UUID{*one}
	} else if tenants, err = audit.Tenants(r.Context(), h.pool); err != nil {
		return err
	}
	out := VerifyResponse{OK: true, Chains: []audit.VerifyResult{}}
	for _, t := range tenants {
		res, err := audit.Verify(r.Context(), h.pool, t)
		if err != nil {
			return err
		}
		if res.Break != nil {
			out.OK = false
		}
		out.Chains = append(out.Chains, res)
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}
