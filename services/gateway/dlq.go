package gatewaysvc

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/problem"
)

// DLQPage is the answer of GET /admin/v1/dlq and GET /v1/dlq.
type DLQPage struct {
	Items      []dlq.Entry `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

// DLQSelector chooses the dead letters a replay or purge acts on: IDs, or a
// Consumer (narrowed by Type, AppID and Since), or All. One of the three is
// required, so an empty request never acts on everything by accident.
type DLQSelector struct {
	IDs      []int64 `json:"ids,omitempty"`
	Consumer string  `json:"consumer,omitempty"`
	Type     string  `json:"type,omitempty"`
	AppID    string  `json:"app_id,omitempty"`
	Since    string  `json:"since,omitempty"`
	All      bool    `json:"all,omitempty"`
	DryRun   bool    `json:"dry_run,omitempty"`
}

// dlqFilter reads list filters from the query string.
func dlqFilter(q url.Values) (dlq.Filter, error) {
	f := dlq.Filter{Consumer: q.Get("consumer"), Type: q.Get("type"), State: q.Get("state")}
	var err error
	if f.Limit, err = limitParam(q.Get("limit")); err != nil {
		return f, err
	}
	switch f.State {
	case "", dlq.StateDead, dlq.StateReplayed, dlq.StatePurged:
	default:
		return f, badParam("state", "must be dead, replayed or purged")
	}
	if v := q.Get("since"); v != "" {
		if f.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return f, badParam("since", "must be an RFC 3339 time")
		}
	}
	if v := q.Get("app_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, badParam("app_id", "must be a UUID")
		}
		f.TenantID = &id
	}
	if f.AfterID, err = dlq.DecodeCursor(q.Get("cursor")); err != nil {
		return f, badParam("cursor", "use the next_cursor of a previous page")
	}
	return f, nil
}

func (s *Server) writeDLQPage(w http.ResponseWriter, r *http.Request, f dlq.Filter) {
	items, next, err := dlq.List(r.Context(), s.deps.Pool, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := DLQPage{Items: items}
	if next != "" {
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
}

// listDLQ serves GET /admin/v1/dlq.
func (s *Server) listDLQ(w http.ResponseWriter, r *http.Request) {
	f, err := dlqFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeDLQPage(w, r, f)
}

// tenantDLQ serves GET /v1/dlq: the caller's own dead letters.
func (s *Server) tenantDLQ(w http.ResponseWriter, r *http.Request) {
	app, _ := AppFrom(r.Context())
	q := r.URL.Query()
	q.Del("app_id")
	f, err := dlqFilter(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f.TenantID = &app.ID
	s.writeDLQPage(w, r, f)
}

// getDLQ serves GET /admin/v1/dlq/{id}.
func (s *Server) getDLQ(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, badParam("id", "must be a dead-letter entry id"))
		return
	}
	e, err := dlq.Get(r.Context(), s.deps.Pool, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

// actor names who asked for a replay or purge: the X-Prost-Actor header
// (the CLI sends user@host), else "admin".
func actor(r *http.Request) string {
	a := strings.TrimSpace(r.Header.Get("X-Prost-Actor"))
	if a == "" || len(a) > 200 {
		return "admin"
	}
	return a
}

func (s *Server) dlqAction(purge bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var sel DLQSelector
		if err := decodeJSON(w, r, &sel); err != nil {
			s.fail(w, r, err)
			return
		}
		f, err := sel.filter()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var res dlq.Result
		if purge {
			res, err = s.deps.DLQ.Purge(r.Context(), f, actor(r), sel.DryRun)
		} else {
			res, err = s.deps.DLQ.Replay(r.Context(), f, actor(r), sel.DryRun)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		verb := "replay"
		if purge {
			verb = "purge"
		}
		s.cfg.Logger.Info("dlq "+verb, "request_id", requestID(r), "actor", actor(r), "dry_run", sel.DryRun, "entries", res.Count)
		writeJSON(w, http.StatusOK, res)
	}
}

func (sel DLQSelector) filter() (dlq.Filter, error) {
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
		p := problem.New(http.StatusUnprocessableEntity, "choose exactly one of ids, consumer (with optional type, app_id, since) or all")
		p.Errors = []problem.FieldError{{Field: "ids", Detail: "give ids, or consumer, or all: true"}}
		return f, p
	}
	if sel.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, sel.Since)
		if err != nil {
			p := problem.New(http.StatusUnprocessableEntity, "since must be an RFC 3339 time")
			p.Errors = []problem.FieldError{{Field: "since", Detail: "e.g. 2026-11-27T10:00:00Z"}}
			return f, p
		}
		f.Since = t
	}
	if sel.AppID != "" {
		id, err := uuid.Parse(sel.AppID)
		if err != nil {
			p := problem.New(http.StatusUnprocessableEntity, "app_id must be a UUID")
			p.Errors = []problem.FieldError{{Field: "app_id", Detail: err.Error()}}
			return f, p
		}
		f.TenantID = &id
	}
	return f, nil
}
