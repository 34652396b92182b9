package gatewaysvc

import (
	"net/http"
	"strconv"

	"github.com/prost-platform/prost/pkg/jobs"
)

// JobsPage is the answer of GET /admin/v1/jobs.
type JobsPage struct {
	Items      []jobs.Job `json:"items"`
	NextCursor *string    `json:"next_cursor"`
}

// listJobs serves GET /admin/v1/jobs?state=&kind=&limit=&cursor= for
// `prost jobs list`.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if limit == 0 {
		limit = 100
	}
	p := jobs.ListParams{Kind: q.Get("kind"), Limit: limit}
	if v := q.Get("state"); v != "" {
		st, err := jobs.ParseState(v)
		if err != nil {
			s.fail(w, r, badParam("state", err.Error()))
			return
		}
		p.State = st
	}
	if c := q.Get("cursor"); c != "" {
		if p.AfterID, err = strconv.ParseInt(c, 10, 64); err != nil || p.AfterID < 0 {
			s.fail(w, r, badParam("cursor", "use the next_cursor of a previous page"))
			return
		}
	}
	items, err := s.jobs.List(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := JobsPage{Items: items}
	if out.Items == nil {
		out.Items = []jobs.Job{}
	}
	if len(items) == limit {
		c := strconv.FormatInt(items[len(items)-1].ID, 10)
		out.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, out)
}
