// Package eventshttp serves the tenant's read of its own events:
//
//	GET /v1/events?type=&source=&since=&limit=&cursor=
//
// Items are the stored structured-mode CloudEvents, oldest first, with the
// values their contracts classified revealed for the tenant (or
// {"erased":true} once erased; see docs/privacy.md). Every
// page, the last included, carries next_cursor (opaque): a poller that
// reached the end (has_more false) comes back later with it and reads
// exactly the events stored since.
package eventshttp

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi"
)

// Revealer turns the encrypted values of a page of a tenant's events back
// into plain ones in place (*dataprotect.Keyring).
type Revealer interface {
	RevealAll(ctx context.Context, tenant uuid.UUID, docs [][]byte) error
}

// Handlers serve the events read route.
type Handlers struct {
	pool   *pgxpool.Pool
	reveal Revealer
}

// New returns the handlers over the database; reveal may be nil (events are
// served as stored).
func New(pool *pgxpool.Pool, reveal Revealer) *Handlers { return &Handlers{pool: pool, reveal: reveal} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("GET /v1/events", h.list)
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
	if h.reveal != nil {
		if err := h.reveal.RevealAll(r.Context(), p.TenantID, page.Items); err != nil {
			return err
		}
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
	c, _ := json.Marshal(page.NextCursor)
	b.Write(c)
	b.WriteString(`,"has_more":`)
	b.WriteString(strconv.FormatBool(page.HasMore))
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
	return nil
}
