// Package eventshttp serves the tenant's read of its own events:
//
//	GET /v1/events?type=&source=&since=&limit=&cursor=
//	GET /v1/events/lookup?source=&id=  one event, and whether it was published
//
// Items are the stored structured-mode CloudEvents, oldest first.
package eventshttp

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi"
)

// Handlers serve the events read route.
type Handlers struct {
	pool *pgxpool.Pool
}

// New returns the handlers over the database.
func New(pool *pgxpool.Pool) *Handlers { return &Handlers{pool: pool} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("GET /v1/events", h.list)
	rt.Tenant("GET /v1/events/lookup", h.lookup)
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := eventstore.ListParams{TenantID: httpapi.TenantID(r.Context()), Type: q.Get("type"), Source: q.Get("source"), Cursor: q.Get("cursor")}
	var err error
	if p.Limit, err = httpapi.Limit(r); err != nil {
		return err
	}
	if p.Since, err = httpapi.TimeParam(r, "since"); err != nil {
		return err
	}
	page, err := eventstore.List(r.Context(), h.pool, p)
	if err != nil {
		return err
	}
	// Items are stored JSON documents: write them as they are.
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i, it := range page.Items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString(`],"next_cursor":`)
	if page.NextCursor == "" {
		b.WriteString("null")
	} else {
		c, _ := json.Marshal(page.NextCursor)
		b.Write(c)
	}
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
	return nil
}
