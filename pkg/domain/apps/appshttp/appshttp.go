// Package appshttp serves the operators' App routes under /admin/v1/apps:
//
//	POST /admin/v1/apps                     create (201; the credentials, shown once)
//	GET  /admin/v1/apps?limit=&cursor=      list
//	GET  /admin/v1/apps/{id}                one App
//	POST /admin/v1/apps/{id}/rotate-secret  a new secret, shown once
//	POST /admin/v1/apps/{id}/disable        refuse the App's requests
//	POST /admin/v1/apps/{id}/enable         accept them again
package appshttp

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/httpapi"
)

// Handlers serve the App routes.
type Handlers struct {
	store *apps.Store
}

// New returns the handlers over store.
func New(store *apps.Store) *Handlers { return &Handlers{store: store} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Admin("POST /admin/v1/apps", h.create)
	rt.Admin("GET /admin/v1/apps", h.list)
	rt.Admin("GET /admin/v1/apps/{id}", h.get)
	rt.Admin("POST /admin/v1/apps/{id}/rotate-secret", h.rotateSecret)
	rt.Admin("POST /admin/v1/apps/{id}/disable", h.setStatus(apps.StatusDisabled))
	rt.Admin("POST /admin/v1/apps/{id}/enable", h.setStatus(apps.StatusActive))
}

// CreateRequest is the body of POST /admin/v1/apps.
type CreateRequest struct {
	Name string `json:"name"`
}

// CreateResponse is the App and its credentials, shown this once.
type CreateResponse struct {
	apps.Credentials
	App apps.App `json:"app"`
}

// Page is the answer of GET /admin/v1/apps.
type Page struct {
	Items      []apps.App `json:"items"`
	NextCursor *string    `json:"next_cursor"`
}

func (h *Handlers) create(w http.ResponseWriter, r *http.Request) error {
	var req CreateRequest
	if err := httpapi.ReadJSON(w, r, 0, &req); err != nil {
		return err
	}
	app, creds, err := h.store.Create(r.Context(), req.Name)
	if err != nil {
		return err
	}
	noStore(w)
	return httpapi.WriteJSON(w, http.StatusCreated, CreateResponse{Credentials: creds, App: app})
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	p := apps.ListParams{Limit: limit}
	if c := r.URL.Query().Get("cursor"); c != "" {
		after, err := parseCursor(c)
		if err != nil {
			return err
		}
		p.After = &after
	}
	items, more, err := h.store.List(r.Context(), p)
	if err != nil {
		return err
	}
	out := Page{Items: items}
	if out.Items == nil {
		out.Items = []apps.App{}
	}
	if more && len(items) > 0 {
		last := items[len(items)-1]
		c := cursor.String("app", last.CreatedAt.UTC().Format(time.RFC3339Nano)+"|"+last.ID.String())
		out.NextCursor = &c
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

func parseCursor(c string) (apps.App, error) {
	s, err := cursor.ParseString("app", c)
	if err != nil {
		return apps.App{}, err
	}
	ts, id, ok := strings.Cut(s, "|")
	t, terr := time.Parse(time.RFC3339Nano, ts)
	u, uerr := uuid.Parse(id)
	if !ok || terr != nil || uerr != nil {
		return apps.App{}, cursor.ErrInvalid
	}
	return apps.App{ID: u, CreatedAt: t}, nil
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	id, err := httpapi.PathUUID(r, "id", "an App id")
	if err != nil {
		return err
	}
	app, err := h.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, app)
}

func (h *Handlers) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	id, err := httpapi.PathUUID(r, "id", "an App id")
	if err != nil {
		return err
	}
	actor, err := httpapi.Actor(r)
	if err != nil {
		return err
	}
	creds, err := h.store.RotateSecret(r.Context(), id)
	if err != nil {
		return err
	}
	httpapi.Logger(r.Context()).Info("app secret rotated", "request_id", httpapi.RequestID(r.Context()), "app_id", id,
		"actor", actor)
	noStore(w)
	return httpapi.WriteJSON(w, http.StatusOK, creds)
}

func (h *Handlers) setStatus(status string) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := httpapi.PathUUID(r, "id", "an App id")
		if err != nil {
			return err
		}
		actor, err := httpapi.Actor(r)
		if err != nil {
			return err
		}
		app, err := h.store.SetStatus(r.Context(), id, status)
		if err != nil {
			return err
		}
		httpapi.Logger(r.Context()).Info("app status changed", "request_id", httpapi.RequestID(r.Context()), "app_id", id,
			"status", status, "actor", actor)
		return httpapi.WriteJSON(w, http.StatusOK, app)
	}
}

// noStore keeps an answer that carries a secret out of every cache.
func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }
