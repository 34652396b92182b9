// Package busstatehttp serves the bus's state and its rebuilds:
//
//	GET  /admin/v1/streams                 the declared streams, what was recorded, losses and rebuilds, problems
//	POST /admin/v1/streams/rebuild         ask the relay's leader to republish the events published since a time
//	GET  /admin/v1/streams/rebuilds/{id}   one loss or rebuild, with its progress
package busstatehttp

import (
	"net/http"
	"strings"
	"time"

	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// Handlers serve the routes.
type Handlers struct {
	bus *busstate.Bus
}

// New returns the handlers over bus.
func New(bus *busstate.Bus) *Handlers { return &Handlers{bus: bus} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Admin("GET /admin/v1/streams", h.status)
	rt.Admin("POST /admin/v1/streams/rebuild", h.rebuild)
	rt.Admin("GET /admin/v1/streams/rebuilds/{id}", h.get)
}

// RebuildRequest is the body of POST /admin/v1/streams/rebuild.
type RebuildRequest struct {
	// Since is an RFC 3339 time: every event published since then is
	// republished. Empty: as far back as the events stream keeps messages
	// (its max_age).
	Since string `json:"since,omitempty"`
}

func (h *Handlers) status(w http.ResponseWriter, r *http.Request) error {
	st, err := h.bus.Status(r.Context())
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, st)
}

func (h *Handlers) rebuild(w http.ResponseWriter, r *http.Request) error {
	var req RebuildRequest
	if r.ContentLength != 0 {
		if err := httpapi.ReadJSON(w, r, 0, &req); err != nil {
			return err
		}
	}
	var since time.Time
	if s := strings.TrimSpace(req.Since); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return problem.InvalidField("since", "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
		}
		since = t
	}
	actor, err := httpapi.Actor(r)
	if err != nil {
		return err
	}
	rb, err := h.bus.Request(r.Context(), since, actor)
	if err != nil {
		return err
	}
	httpapi.Logger(r.Context()).Info("bus rebuild requested", "request_id", httpapi.RequestID(r.Context()), "actor", actor,
		"rebuild", rb.ID, "since", rb.Since)
	return httpapi.WriteJSON(w, http.StatusAccepted, rb)
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	id, err := httpapi.PathInt(r, "id", "a rebuild id")
	if err != nil {
		return err
	}
	rb, err := h.bus.GetRebuild(r.Context(), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, rb)
}
