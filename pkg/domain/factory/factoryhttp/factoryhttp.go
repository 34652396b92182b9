// Package factoryhttp serves the tenant routes of the factory
// (docs/factory.md):
//
//	POST /v1/factory/runs                          start a run (201)
//	GET  /v1/factory/runs?module=&status=&limit=&cursor=
//	GET  /v1/factory/runs/{id}                     the run, its stages, gates and deployment
//	POST /v1/factory/runs/{id}/approve             {"reason"}: an approval record
//	POST /v1/factory/runs/{id}/reject              {"reason"}
//	POST /v1/factory/runs/{id}/cancel
//	POST /v1/factory/runs/{id}/rerun               {"from": "gates"}: a new run from that stage (201)
//	GET  /v1/factory/runs/{id}/logs?after=&limit=
//	GET  /v1/factory/runs/{id}/findings?gate=
//	GET  /v1/factory/runs/{id}/attempts            the self-healing loop's tries
//	GET  /v1/factory/runs/{id}/artifacts
//	GET  /v1/factory/runs/{id}/artifact?name=NAME an artifact's content
//	GET  /v1/factory/runs/{id}/verify              the PEC chain checked against what is stored
//	GET  /v1/factory/key                           the tenant's public signing key
//	POST /v1/factory/pack0/check                   {"pack0", "state"}: what the pack0 gate would say, without a run
//
// The actor of a decision, cancel or rerun is the X-Prost-Actor header (the
// CLI sends user@host), else "app:<tenant>".
package factoryhttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// Handlers serve the factory routes.
type Handlers struct {
	runs   *factory.Runs
	schema *factory.Pack0Schema
}

// Option configures the handlers.
type Option func(*Handlers)

// WithPack0Schema gives POST /v1/factory/pack0/check the Pack0 schema to
// check against. Without it the route answers 503.
func WithPack0Schema(s *factory.Pack0Schema) Option { return func(h *Handlers) { h.schema = s } }

// New returns the handlers over runs.
func New(runs *factory.Runs, opts ...Option) *Handlers {
	h := &Handlers{runs: runs}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	rt.Tenant("POST /v1/factory/runs", h.start)
	rt.Tenant("GET /v1/factory/runs", h.list)
	rt.Tenant("GET /v1/factory/runs/{id}", h.get)
	rt.Tenant("POST /v1/factory/runs/{id}/approve", h.decide(factory.DecisionApprove))
	rt.Tenant("POST /v1/factory/runs/{id}/reject", h.decide(factory.DecisionReject))
	rt.Tenant("POST /v1/factory/runs/{id}/cancel", h.cancel)
	rt.Tenant("POST /v1/factory/runs/{id}/rerun", h.rerun)
	rt.Tenant("GET /v1/factory/runs/{id}/logs", h.logs)
	rt.Tenant("GET /v1/factory/runs/{id}/findings", h.findings)
	rt.Tenant("GET /v1/factory/runs/{id}/attempts", h.attempts)
	rt.Tenant("GET /v1/factory/runs/{id}/artifacts", h.artifacts)
	rt.Tenant("GET /v1/factory/runs/{id}/artifact", h.artifact)
	rt.Tenant("GET /v1/factory/runs/{id}/verify", h.verify)
	rt.Tenant("GET /v1/factory/key", h.key)
	rt.Tenant("POST /v1/factory/pack0/check", h.checkPack0)
}

func runID(r *http.Request) (uuid.UUID, error) { return httpapi.PathUUID(r, "id", "a run id") }

func actor(r *http.Request) string {
	if a := strings.TrimSpace(r.Header.Get("X-Prost-Actor")); a != "" && len(a) <= 200 {
		return a
	}
	return "app:" + httpapi.TenantID(r.Context()).String()
}

func (h *Handlers) start(w http.ResponseWriter, r *http.Request) error {
	var req factory.Request
	if err := httpapi.ReadJSON(w, r, factory.MaxPack0Bytes+16<<10, &req); err != nil {
		return err
	}
	if req.RequestedBy == "" {
		req.RequestedBy = actor(r)
	}
	run, err := h.runs.Start(r.Context(), httpapi.TenantID(r.Context()), req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/factory/runs/"+run.ID.String())
	return httpapi.WriteJSON(w, http.StatusCreated, run)
}

type runsPage struct {
	Items      []*factory.Run `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

func (h *Handlers) list(w http.ResponseWriter, r *http.Request) error {
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	p := factory.ListParams{Module: q.Get("module"), Status: factory.Status(q.Get("status")), Cursor: q.Get("cursor"), Limit: limit}
	if p.Status != "" {
		switch p.Status {
		case factory.StatusQueued, factory.StatusRunning, factory.StatusAwaitingApproval, factory.StatusSucceeded,
			factory.StatusFailed, factory.StatusRejected, factory.StatusCancelled:
		default:
			return problem.BadParam("status", "one of queued, running, awaiting_approval, succeeded, failed, rejected, cancelled")
		}
	}
	page, err := h.runs.List(r.Context(), httpapi.TenantID(r.Context()), p)
	if err != nil {
		return err
	}
	out := runsPage{Items: page.Items}
	if out.Items == nil {
		out.Items = []*factory.Run{}
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	run, err := h.runs.Get(r.Context(), httpapi.TenantID(r.Context()), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, run)
}

// decisionBody is the body of approve and reject; it may be empty.
type decisionBody struct {
	Reason string `json:"reason"`
}

func readOptional(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return nil
	}
	b, _, err := httpapi.ReadBody(w, r, httpapi.DefaultMaxJSONBytes, "application/json")
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	return httpapi.Decode(b, v)
}

func (h *Handlers) decide(decision string) httpapi.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := runID(r)
		if err != nil {
			return err
		}
		var body decisionBody
		if err := readOptional(w, r, &body); err != nil {
			return err
		}
		run, err := h.runs.Decide(r.Context(), httpapi.TenantID(r.Context()), id,
			factory.Approval{Decision: decision, Actor: actor(r), Reason: body.Reason})
		if err != nil {
			return err
		}
		return httpapi.WriteJSON(w, http.StatusOK, run)
	}
}

func (h *Handlers) cancel(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	run, err := h.runs.Cancel(r.Context(), httpapi.TenantID(r.Context()), id, actor(r))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, run)
}

type rerunBody struct {
	From string `json:"from"`
}

func (h *Handlers) rerun(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	var body rerunBody
	if err := httpapi.ReadJSON(w, r, 0, &body); err != nil {
		return err
	}
	from, err := factory.ParseStage(body.From)
	if err != nil {
		return problem.InvalidField("from", err.Error())
	}
	run, err := h.runs.Rerun(r.Context(), httpapi.TenantID(r.Context()), id, from, actor(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/factory/runs/"+run.ID.String())
	return httpapi.WriteJSON(w, http.StatusCreated, run)
}

type logsPage struct {
	Items []factory.LogLine `json:"items"`
	// Next is the after= of the next read.
	Next int64 `json:"next"`
	// Done is true once the run has ended and every line was read.
	Done bool `json:"done"`
}

func (h *Handlers) logs(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	tenant := httpapi.TenantID(r.Context())
	limit, err := httpapi.Limit(r)
	if err != nil {
		return err
	}
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return problem.BadParam("after", "the next of a previous read (a non-negative integer)")
		}
	}
	run, err := h.runs.Get(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	lines, err := h.runs.Store().Logs(r.Context(), tenant, id, after, limit)
	if err != nil {
		return err
	}
	out := logsPage{Items: lines, Next: after}
	if out.Items == nil {
		out.Items = []factory.LogLine{}
	}
	if len(lines) > 0 {
		out.Next = lines[len(lines)-1].ID
	}
	max := limit
	if max == 0 {
		max = 1000
	}
	out.Done = run.Status.Final() && len(lines) < max
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

func (h *Handlers) findings(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	tenant := httpapi.TenantID(r.Context())
	if _, err := h.runs.Get(r.Context(), tenant, id); err != nil {
		return err
	}
	fs, err := h.runs.Store().Findings(r.Context(), tenant, id, r.URL.Query().Get("gate"))
	if err != nil {
		return err
	}
	if fs == nil {
		fs = []factory.Finding{}
	}
	return httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": fs})
}

func (h *Handlers) attempts(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	tenant := httpapi.TenantID(r.Context())
	if _, err := h.runs.Get(r.Context(), tenant, id); err != nil {
		return err
	}
	as, err := h.runs.Store().Attempts(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	if as == nil {
		as = []factory.Attempt{}
	}
	return httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": as})
}

func (h *Handlers) artifacts(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	tenant := httpapi.TenantID(r.Context())
	if _, err := h.runs.Get(r.Context(), tenant, id); err != nil {
		return err
	}
	as, err := h.runs.Store().Artifacts(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	if as == nil {
		as = []factory.Artifact{}
	}
	return httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": as})
}

func (h *Handlers) artifact(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		return problem.BadParam("name", "the artifact's name, as GET .../artifacts lists it")
	}
	a, body, err := h.runs.Store().Artifact(r.Context(), httpapi.TenantID(r.Context()), id, name)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", a.MediaType)
	w.Header().Set("X-Content-Sha256", a.Digest)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", "attachment")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

func (h *Handlers) verify(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	rep, err := h.runs.Store().Verify(r.Context(), httpapi.TenantID(r.Context()), id)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, rep)
}

func (h *Handlers) key(w http.ResponseWriter, r *http.Request) error {
	k, err := h.runs.Store().PublicKey(r.Context(), httpapi.TenantID(r.Context()))
	if err != nil {
		return err
	}
	if k == nil {
		return problem.Errorf(problem.NotFound, "the tenant has no signing key yet: its first factory run makes one")
	}
	return httpapi.WriteJSON(w, http.StatusOK, k)
}

// checkBody is the body of POST /v1/factory/pack0/check.
type checkBody struct {
	Pack0 json.RawMessage `json:"pack0"`
	State factory.State   `json:"state"`
}

// checkResult is the pack0 gate's verdict on a Pack0 that no run was
// started for: ok when it has no problem; the routes and event types of the
// module it describes when it parses.
type checkResult struct {
	OK       bool                   `json:"ok"`
	State    factory.State          `json:"state"`
	Problems []factory.Pack0Problem `json:"problems"`
	Routes   []string               `json:"routes"`
	Events   []string               `json:"events"`
}

// checkPack0 runs the pack0 gate on a document, so that a person (the
// console's wizard) can fix a Pack0 before starting a run with it. It records
// nothing.
func (h *Handlers) checkPack0(w http.ResponseWriter, r *http.Request) error {
	var body checkBody
	if err := httpapi.ReadJSON(w, r, factory.MaxPack0Bytes+4<<10, &body); err != nil {
		return err
	}
	switch body.State = factory.State(strings.ToUpper(string(body.State))); body.State {
	case "":
		body.State = factory.Normal
	case factory.Normal, factory.Pressao:
	default:
		return problem.InvalidField("state", fmt.Sprintf("%q: want NORMAL or PRESSAO", body.State))
	}
	if len(body.Pack0) == 0 || string(body.Pack0) == "null" {
		return problem.InvalidField("pack0", "required: the Pack0 document (a JSON object)")
	}
	if len(body.Pack0) > factory.MaxPack0Bytes {
		return problem.InvalidField("pack0", "at most 256 KiB")
	}
	if h.schema == nil {
		return problem.Errorf(problem.Unavailable, "this gateway has no Pack0 schema to check against (PROST_SCHEMAS_DIR)")
	}
	p, problems := factory.CheckPack0(h.schema, body.Pack0, body.State)
	out := checkResult{OK: len(problems) == 0, State: body.State, Problems: problems, Routes: []string{}, Events: []string{}}
	if out.Problems == nil {
		out.Problems = []factory.Pack0Problem{}
	}
	if p != nil {
		out.Routes = p.Routes()
		out.Events = p.EventTypes()
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}
