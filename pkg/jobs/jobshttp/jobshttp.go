// Package jobshttp serves the operators' view of the job engine:
//
//	GET /admin/v1/jobs?state=&kind=&limit=&cursor=
package jobshttp

import (
	"net/http"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/problem"
)

// DefaultPageSize is the page size when the request gives no limit.
const DefaultPageSize = 100

// Handlers serve the jobs routes.
type Handlers struct {
	client *jobs.Client
}

// New returns the handlers over a job client (used for listing only; it need
// not run).
func New(client *jobs.Client) *Handlers { return &Handlers{client: client} }

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Admin("GET /admin/v1/jobs", h.list)
}

// Page is the answer of GET /admin/v1/jobs.
type Page struct {
	Items      []jobs.Job `json:"items"`
	NextCursor *string    `json:"next_cursor"`
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	p := jobs.ListParams{Kind: q.Get("kind"), Limit: limit}
	if v := q.Get("state"); v != "" {
		st, err := jobs.ParseState(v)
		if err != nil {
			return problem.BadParam("state", err.Error())
		}
		p.State = st
	}
	if p.AfterID, err = cursor.ParseInt("j", q.Get("cursor")); err != nil {
		return err
	}
	items, err := h.client.List(r.Context(), p)
	if err != nil {
		return err
	}
	out := Page{Items: items}
	if out.Items == nil {
		out.Items = []jobs.Job{}
	}
	if len(items) == limit {
		c := cursor.Int("j", items[len(items)-1].ID)
		out.NextCursor = &c
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}
