// Package contractshttp serves a tenant's event contracts:
//
//	GET /v1/contracts?limit=&cursor=   list, by type
//	GET /v1/contracts/{type}           one contract
//	PUT /v1/contracts/{type}           create (201) or replace (200); lint must pass (422 naming each finding)
package contractshttp

import (
	"net/http"
	"strconv"

	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/storable"
)

// MaxContractBytes caps a contract document.
const MaxContractBytes = 256 << 10

// Handlers serve the contracts routes.
type Handlers struct {
	store *contracts.Store
}

// New returns the handlers over store.
func New(store *contracts.Store) *Handlers { return &Handlers{store: store} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("GET /v1/contracts", h.list)
	rt.Tenant("GET /v1/contracts/{type}", h.get)
	rt.Tenant("PUT /v1/contracts/{type}", h.put)
}

func (h *Handlers) put(w http.ResponseWriter, r *http.Request) error {
	typ := r.PathValue("type")
	b, mt, err := httpapi.ReadBody(w, r, MaxContractBytes, "application/json", "application/yaml", "application/x-yaml", "text/yaml")
	if err != nil {
		return err
	}
	var c *contracts.Contract
	if mt == "" || mt == "application/json" {
		c, err = contracts.ParseJSON(b)
	} else {
		c, err = contracts.ParseYAML(b)
	}
	if err != nil {
		return problem.Errorf(problem.Malformed, "%v", err)
	}
	// JSON decoding turns an escaped unpaired surrogate into U+FFFD: refuse
	// it by its pointer, as every other route does, rather than store
	// something else than was sent.
	if mt == "" || mt == "application/json" {
		if ptr, reason, ok := storable.JSON(b); !ok {
			return httpapi.Unstorable(ptr, reason)
		}
	}
	if c.Type == "" {
		c.Type = typ
	}
	if c.Type != typ {
		return problem.Errorf(problem.Invalid, "the contract's type must be the type in the path").
			WithField("type", "is "+strconv.Quote(c.Type)+", the path says "+strconv.Quote(typ))
	}
	st, created, err := h.store.Put(r.Context(), httpapi.TenantID(r.Context()), c)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return httpapi.WriteJSON(w, status, st)
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	st, err := h.store.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("type"))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, st)
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	page, err := h.store.List(r.Context(), httpapi.TenantID(r.Context()), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, page)
}
