package eventshttp

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// Event is the answer of GET /v1/events/lookup?source=&id=: the event and
// where it stands in the store.
type Event struct {
	// Event is the stored structured-mode CloudEvent.
	Event json.RawMessage `json:"event"`
	// RecordedAt is when PROST accepted it.
	RecordedAt time.Time `json:"recorded_at"`
	// Published is false while the event waits in the outbox for the relay.
	Published bool `json:"published"`
}

// lookup answers one of the caller's events. An event is identified by its
// source and id together (both query parameters, since either may hold any
// character); another tenant's event is 404 like a missing one.
func (h *Handlers) lookup(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	source, id := q.Get("source"), q.Get("id")
	if source == "" {
		return problem.BadParam("source", "required: an event is identified by its source and id")
	}
	if id == "" {
		return problem.BadParam("id", "required: an event is identified by its source and id")
	}
	tenant := httpapi.TenantID(r.Context())
	ev, err := eventstore.Get(r.Context(), h.pool, tenant, source, id)
	if err != nil {
		return err
	}
	// Classified values are revealed for the tenant, as GET /v1/events does.
	docs := [][]byte{ev.Envelope}
	if h.reveal != nil {
		if err := h.reveal.RevealAll(r.Context(), tenant, docs); err != nil {
			return err
		}
	}
	return httpapi.WriteJSON(w, http.StatusOK, Event{Event: docs[0], RecordedAt: ev.RecordedAt, Published: !ev.Pending})
}
