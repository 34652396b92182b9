// Package subscriptionshttp serves a tenant's subscriptions and its event
// stream:
//
//	POST   /v1/subscriptions                          create (201; an HTTP secret made by the server is shown once)
//	GET    /v1/subscriptions?limit=&cursor=           list
//	GET    /v1/subscriptions/{id}                     one
//	PATCH  /v1/subscriptions/{id}                     change members; {"status":"active"|"disabled"}
//	DELETE /v1/subscriptions/{id}                     delete (204; NATS credentials revoked)
//	GET    /v1/subscriptions/{id}/credentials         NATS: mint the credentials (once)
//	POST   /v1/subscriptions/{id}/credentials/rotate  NATS: revoke them and mint new ones
//	GET    /v1/subscriptions/{id}/attempts            HTTP: every attempt, oldest first
//	POST   /v1/subscriptions/{id}/recover             HTTP: {"since": time} re-send what failed since then
//	POST   /v1/subscriptions/{id}/test                HTTP: send a signed ping now
//	GET    /v1/events/stream?types=&filter=           Server-Sent Events of the tenant's events
//
// Another tenant's subscriptions answer 404 on every route.
package subscriptionshttp

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// maxBody caps a subscription body: filters included, 256 KiB.
const maxBody = 256 << 10

// Handlers serve the routes.
type Handlers struct {
	svc    *subscriptions.Service
	stream *stream
}

// New returns the handlers of svc; the event stream reads js (nil: the
// stream answers 503) as tuned by cfg.
func New(svc *subscriptions.Service, js jetstream.JetStream, cfg StreamConfig) *Handlers {
	return &Handlers{svc: svc, stream: newStream(js, cfg)}
}

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("POST /v1/subscriptions", h.create)
	rt.Tenant("GET /v1/subscriptions", h.list)
	rt.Tenant("GET /v1/subscriptions/{id}", h.get)
	rt.Tenant("PATCH /v1/subscriptions/{id}", h.update)
	rt.Tenant("DELETE /v1/subscriptions/{id}", h.delete)
	rt.Tenant("GET /v1/subscriptions/{id}/credentials", h.credentials(false))
	rt.Tenant("POST /v1/subscriptions/{id}/credentials/rotate", h.credentials(true))
	rt.Tenant("GET /v1/subscriptions/{id}/attempts", h.attempts)
	rt.Tenant("POST /v1/subscriptions/{id}/recover", h.recover)
	rt.Tenant("POST /v1/subscriptions/{id}/test", h.test)
	rt.Tenant("GET /v1/events/stream", h.stream.serve)
}

func subID(r *http.Request) (uuid.UUID, error) {
	return httpapi.PathUUID(r, "id", "a subscription id")
}

func readInput(w http.ResponseWriter, r *http.Request) (subscriptions.Input, error) {
	var in subscriptions.Input
	b, _, err := httpapi.ReadBody(w, r, maxBody, "application/json", "application/merge-patch+json")
	if err != nil {
		return in, err
	}
	return in, httpapi.Decode(b, &in)
}

func (h *Handlers) create(w http.ResponseWriter, r *http.Request) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	sub, err := h.svc.Create(r.Context(), httpapi.TenantID(r.Context()), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/subscriptions/"+sub.ID.String())
	w.Header().Set("Cache-Control", "no-store")
	return httpapi.WriteJSON(w, http.StatusCreated, sub)
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	items, next, err := h.svc.List(r.Context(), httpapi.TenantID(r.Context()), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, page[subscriptions.Subscription]{Items: items, NextCursor: nullable(next)})
}

// page is a list answer.
type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	id, err := subID(r)
	if err != nil {
		return err
	}
	sub, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, sub)
}

func (h *Handlers) update(w http.ResponseWriter, r *http.Request) error {
	id, err := subID(r)
	if err != nil {
		return err
	}
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	sub, err := h.svc.Update(r.Context(), httpapi.TenantID(r.Context()), id, in)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, sub)
}

func (h *Handlers) delete(w http.ResponseWriter, r *http.Request) error {
	id, err := subID(r)
	if err != nil {
		return err
	}
	if err := h.svc.Delete(r.Context(), httpapi.TenantID(r.Context()), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handlers) credentials(rotate bool) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := subID(r)
		if err != nil {
			return err
		}
		tenant := httpapi.TenantID(r.Context())
		var c subscriptions.Credentials
		if rotate {
			c, err = h.svc.RotateCredentials(r.Context(), tenant, id)
		} else {
			c, err = h.svc.Credentials(r.Context(), tenant, id)
		}
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return httpapi.WriteJSON(w, http.StatusOK, c)
	}
}

func (h *Handlers) attempts(w http.ResponseWriter, r *http.Request) error {
	id, err := subID(r)
	if err != nil {
		return err
	}
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	items, next, err := h.svc.Attempts(r.Context(), httpapi.TenantID(r.Context()), id, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, page[subscriptions.Attempt]{Items: items, NextCursor: nullable(next)})
}

func (h *Handlers) recover(w http.ResponseWriter, r *http.Request) error {
	id, err := subID(r)
	if err != nil {
		return err
	}
	var in struct {
		Since *string `json:"since"`
	}
	if err := httpapi.ReadJSON(w, r, 0, &in); err != nil {
		return err
	}
	if in.Since == nil {
		return problem.InvalidField("since", "required: re-send what failed since this time (RFC 3339)")
	}
	since, err := time.Parse(time.RFC3339Nano, *in.Since)
	if err != nil {
		return problem.InvalidField("since", "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	n, err := h.svc.Recover(r.Context(), httpapi.TenantID(r.Context()), id, since)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"recovered": n, "since": since.UTC()})
}

func (h *Handlers) test(w http.ResponseWriter, r *http.Request) error {
	id, err := subID(r)
	if err != nil {
		return err
	}
	a, err := h.svc.Test(r.Context(), httpapi.TenantID(r.Context()), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, a)
}

// splitList reads a repeated or comma-separated query parameter.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
