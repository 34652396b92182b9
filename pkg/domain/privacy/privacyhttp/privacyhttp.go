// Package privacyhttp serves the data subject routes (docs/privacy.md):
//
//	DELETE /v1/data-subjects/{id}          erase: destroy the subject's keys
//	GET    /v1/data-subjects/{id}/export   the subject's events, decrypted, as NDJSON
//	GET    /v1/privacy/shredded?reason=&since=&limit=&cursor=
//	                                       the destroyed keys (erasures and retention)
package privacyhttp

import (
	"bufio"
	"net/http"
	"strings"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/privacy"
	"github.com/prost-platform/prost/pkg/httpapi"
)

// Handlers serve the privacy routes.
type Handlers struct {
	svc *privacy.Service
}

// New returns the handlers over the service.
func New(svc *privacy.Service) *Handlers { return &Handlers{svc: svc} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("DELETE /v1/data-subjects/{id}", h.erase)
	rt.Tenant("GET /v1/data-subjects/{id}/export", h.export)
	rt.Tenant("GET /v1/privacy/shredded", h.shredded)
}

// actor is who asked for an erasure: the X-Prost-Actor header (the CLI
// sends user@host), else "app" (the App's own credentials).
func actor(r *http.Request) string {
	a := strings.TrimSpace(r.Header.Get("X-Prost-Actor"))
	if a == "" || len(a) > 200 {
		return "app"
	}
	return a
}

func (h *Handlers) erase(w http.ResponseWriter, r *http.Request) error {
	e, err := h.svc.Erase(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), actor(r))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, e)
}

func (h *Handlers) export(w http.ResponseWriter, r *http.Request) error {
	bw := &lazyWriter{w: w}
	_, err := h.svc.Export(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), bw)
	if err != nil && !bw.started {
		return err
	}
	if err != nil {
		// The answer has begun: it cannot turn into a problem. Cut it
		// short (the client sees a truncated body) and log why.
		httpapi.Logger(r.Context()).Error("privacy: export failed mid-answer", "error", err)
		return nil
	}
	bw.start()
	return bw.buf.Flush()
}

// lazyWriter sends the 200 and its headers only when the first line is
// written, so an error before it is still answered as a problem.
type lazyWriter struct {
	w       http.ResponseWriter
	buf     *bufio.Writer
	started bool
}

func (l *lazyWriter) start() {
	if l.started {
		return
	}
	l.started = true
	l.w.Header().Set("Content-Type", "application/x-ndjson")
	l.w.WriteHeader(http.StatusOK)
	l.buf = bufio.NewWriterSize(l.w, 32<<10)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.start()
	return l.buf.Write(p)
}

// ShreddedPage is the answer of GET /v1/privacy/shredded.
type ShreddedPage struct {
	Items      []dataprotect.Tombstone `json:"items"`
	NextCursor *string                 `json:"next_cursor"`
}

func (h *Handlers) shredded(w http.ResponseWriter, r *http.Request) error {
	q := dataprotect.TombstoneQuery{Reason: r.URL.Query().Get("reason"), Cursor: r.URL.Query().Get("cursor")}
	var err error
	if q.Limit, err = httpapi.Limit(r); err != nil {
		return err
	}
	if q.Since, err = httpapi.TimeParam(r, "since"); err != nil {
		return err
	}
	items, next, err := h.svc.Tombstones(r.Context(), httpapi.TenantID(r.Context()), q)
	if err != nil {
		return err
	}
	out := ShreddedPage{Items: items}
	if out.Items == nil {
		out.Items = []dataprotect.Tombstone{}
	}
	if next != "" {
		out.NextCursor = &next
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}
