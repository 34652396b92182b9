// Package dlqhttp serves the dead-letter queue:
//
//	GET  /v1/dlq?consumer=&type=&state=&since=&limit=&cursor=   the caller's own dead letters
//	GET  /v1/dlq/{id}                                           one of them, with its event
//	POST /v1/dlq/replay                                         replay a selection of them
//	GET  /admin/v1/dlq?...&app_id=                              every tenant's
//	GET  /admin/v1/dlq/{id}                                     one entry, with its event
//	POST /admin/v1/dlq/replay                                   replay a selection (DLQSelector)
//	POST /admin/v1/dlq/purge                                    purge a selection
package dlqhttp

import (
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// Handlers serve the DLQ routes.
type Handlers struct {
	pool    *pgxpool.Pool
	manager *dlq.Manager
}

// New returns the handlers: reads go to pool, replays and purges to manager.
func New(pool *pgxpool.Pool, manager *dlq.Manager) *Handlers {
	return &Handlers{pool: pool, manager: manager}
}

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("GET /v1/dlq", h.tenantList)
	rt.Tenant("GET /v1/dlq/{id}", h.tenantGet)
	rt.Tenant("POST /v1/dlq/replay", h.tenantReplay)
	rt.Admin("GET /admin/v1/dlq", h.list)
	rt.Admin("GET /admin/v1/dlq/{id}", h.get)
	rt.Admin("POST /admin/v1/dlq/replay", h.action(false))
	rt.Admin("POST /admin/v1/dlq/purge", h.action(true))
}

// Page is the answer of GET /admin/v1/dlq and GET /v1/dlq.
type Page struct {
	Items      []dlq.Entry `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

// Selector chooses the dead letters a replay or purge acts on: IDs, or a
// Consumer (narrowed by Type, AppID and Since), or All. One of the three is
// required, so an empty request never acts on everything by accident.
type Selector struct {
	IDs      []int64 `json:"ids,omitempty"`
	Consumer string  `json:"consumer,omitempty"`
	Type     string  `json:"type,omitempty"`
	AppID    string  `json:"app_id,omitempty"`
	Since    string  `json:"since,omitempty"`
	All      bool    `json:"all,omitempty"`
	DryRun   bool    `json:"dry_run,omitempty"`
}

// filter reads list filters from the query string.
func filter(r *http.Request) (dlq.Filter, error) {
	q := r.URL.Query()
	f := dlq.Filter{Consumer: q.Get("consumer"), Type: q.Get("type"), State: q.Get("state")}
	var err error
	if f.Limit, err = httpapi.Limit(r); err != nil {
		return f, err
	}
	switch f.State {
	case "", dlq.StateDead, dlq.StateReplayed, dlq.StatePurged:
	default:
		return f, problem.BadParam("state", "must be dead, replayed or purged")
	}
	if f.Since, err = httpapi.TimeParam(r, "since"); err != nil {
		return f, err
	}
	if f.TenantID, err = httpapi.UUIDParam(r, "app_id"); err != nil {
		return f, err
	}
	if f.AfterID, err = dlq.DecodeCursor(q.Get("cursor")); err != nil {
		return f, err
	}
	return f, nil
}

func (h *Handlers) page(w http.ResponseWriter, r *http.Request, f dlq.Filter) error {
	items, next, err := dlq.List(r.Context(), h.pool, f)
	if err != nil {
		return err
	}
	out := Page{Items: items}
	if out.Items == nil {
		out.Items = []dlq.Entry{}
	}
	if next != "" {
		out.NextCursor = &next
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	f, err := filter(r)
	if err != nil {
		return err
	}
	// An operator's misspelt consumer is refused rather than answered as an
	// empty queue. (A tenant's list is not checked: whether a consumer has
	// entries is other tenants' business.)
	if err := h.manager.CheckConsumer(r.Context(), f.Consumer); err != nil {
		return err
	}
	return h.page(w, r, f)
}

// tenantList answers the caller's own dead letters: app_id is ignored, the
// tenant comes from the credentials.
func (h *Handlers) tenantList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	q.Del("app_id")
	r.URL.RawQuery = q.Encode()
	f, err := filter(r)
	if err != nil {
		return err
	}
	tenant := httpapi.TenantID(r.Context())
	f.TenantID = &tenant
	return h.page(w, r, f)
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	id, err := httpapi.PathInt(r, "id", "a dead-letter entry id")
	if err != nil {
		return err
	}
	e, err := dlq.Get(r.Context(), h.pool, id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, e)
}

// tenantGet answers one of the caller's dead letters; another tenant's id
// is 404 like a missing one.
func (h *Handlers) tenantGet(w http.ResponseWriter, r *http.Request) error {
	id, err := httpapi.PathInt(r, "id", "a dead-letter entry id")
	if err != nil {
		return err
	}
	e, err := dlq.Get(r.Context(), h.pool, id)
	if err != nil {
		return err
	}
	if e.TenantID == nil || *e.TenantID != httpapi.TenantID(r.Context()) {
		return dlq.ErrNotFound
	}
	return httpapi.WriteJSON(w, http.StatusOK, e)
}

// tenantReplay replays a selection of the caller's own dead letters: the
// selection is narrowed to the tenant whatever it names (app_id is refused),
// so ids of another tenant's entries select nothing.
func (h *Handlers) tenantReplay(w http.ResponseWriter, r *http.Request) error {
	var sel Selector
	if err := httpapi.ReadJSON(w, r, 0, &sel); err != nil {
		return err
	}
	if sel.AppID != "" {
		return problem.InvalidField("app_id", "a tenant replays its own dead letters only: leave app_id out")
	}
	f, err := sel.filter()
	if err != nil {
		return err
	}
	tenant := httpapi.TenantID(r.Context())
	f.TenantID = &tenant
	actor := "app:" + tenant.String()
	res, err := h.manager.Replay(r.Context(), f, actor, sel.DryRun)
	if err != nil {
		return err
	}
	httpapi.Logger(r.Context()).Info("dlq replay", "request_id", httpapi.RequestID(r.Context()), "actor", actor,
		"dry_run", sel.DryRun, "entries", res.Count)
	return httpapi.WriteJSON(w, http.StatusOK, res)
}

func (h *Handlers) action(purge bool) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var sel Selector
		if err := httpapi.ReadJSON(w, r, 0, &sel); err != nil {
			return err
		}
		f, err := sel.filter()
		if err != nil {
			return err
		}
		actor, err := httpapi.Actor(r)
		if err != nil {
			return err
		}
		var res dlq.Result
		if purge {
			res, err = h.manager.Purge(r.Context(), f, actor, sel.DryRun)
		} else {
			res, err = h.manager.Replay(r.Context(), f, actor, sel.DryRun)
		}
		if err != nil {
			return err
		}
		verb := "replay"
		if purge {
			verb = "purge"
		}
		httpapi.Logger(r.Context()).Info("dlq "+verb, "request_id", httpapi.RequestID(r.Context()), "actor", actor,
			"dry_run", sel.DryRun, "entries", res.Count)
		return httpapi.WriteJSON(w, http.StatusOK, res)
	}
}

func (sel Selector) filter() (dlq.Filter, error) {
	f := dlq.Filter{IDs: sel.IDs, Consumer: sel.Consumer, Type: sel.Type}
	n := 0
	if len(sel.IDs) > 0 {
		n++
	}
	if sel.Consumer != "" {
		n++
	}
	if sel.All {
		n++
	}
	if n != 1 || (len(sel.IDs) > 0 && (sel.Type != "" || sel.Since != "" || sel.AppID != "")) {
		return f, problem.Errorf(problem.Invalid, "choose exactly one of ids, consumer (with optional type, app_id, since) or all").
			WithField("ids", "give ids, or consumer, or all: true")
	}
	if sel.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, sel.Since)
		if err != nil {
			return f, problem.Errorf(problem.Invalid, "since must be an RFC 3339 time").WithField("since", "e.g. 2026-11-27T10:00:00Z")
		}
		f.Since = t
	}
	if sel.AppID != "" {
		id, err := uuid.Parse(sel.AppID)
		if err != nil {
			return f, problem.Errorf(problem.Invalid, "app_id must be a UUID").WithField("app_id", err.Error())
		}
		f.TenantID = &id
	}
	return f, nil
}
