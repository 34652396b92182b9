package gatewaysvc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/problem"
)

// CreateAppRequest is the body of POST /admin/v1/apps.
type CreateAppRequest struct {
	Name string `json:"name"`
}

// CreateAppResponse is the App and its credentials, shown this once.
type CreateAppResponse struct {
	apps.Credentials
	App apps.App `json:"app"`
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	var req CreateAppRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	app, creds, err := s.deps.Apps.Create(r.Context(), req.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("app created", "request_id", requestID(r), "app_id", app.ID, "name", app.Name)
	writeJSON(w, http.StatusCreated, CreateAppResponse{Credentials: creds, App: app})
}

// AppsPage is the answer of GET /admin/v1/apps.
type AppsPage struct {
	Items      []apps.App `json:"items"`
	NextCursor *string    `json:"next_cursor"`
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r.URL.Query().Get("limit"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := apps.ListParams{Limit: limit}
	if c := r.URL.Query().Get("cursor"); c != "" {
		after, err := decodeAppCursor(c)
		if err != nil {
			s.fail(w, r, badParam("cursor", "use the next_cursor of a previous page"))
			return
		}
		p.After = &after
	}
	items, more, err := s.deps.Apps.List(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := AppsPage{Items: items}
	if more && len(items) > 0 {
		c := encodeAppCursor(items[len(items)-1])
		out.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	id, ok := s.appID(w, r)
	if !ok {
		return
	}
	app, err := s.deps.Apps.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, app)
}

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id, ok := s.appID(w, r)
	if !ok {
		return
	}
	creds, err := s.deps.Apps.RotateSecret(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("app secret rotated", "request_id", requestID(r), "app_id", id)
	writeJSON(w, http.StatusOK, creds)
}

func (s *Server) setStatus(status string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.appID(w, r)
		if !ok {
			return
		}
		app, err := s.deps.Apps.SetStatus(r.Context(), id, status)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.cfg.Logger.Info("app status changed", "request_id", requestID(r), "app_id", id, "status", status)
		writeJSON(w, http.StatusOK, app)
	}
}

// VerifyResponse is the answer of GET /admin/v1/audit/verify.
type VerifyResponse struct {
	OK     bool                 `json:"ok"`
	Chains []audit.VerifyResult `json:"chains"`
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	var tenants []uuid.UUID
	if v := r.URL.Query().Get("app_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			s.fail(w, r, badParam("app_id", "must be a UUID"))
			return
		}
		tenants = []uuid.UUID{id}
	} else {
		var err error
		if tenants, err = audit.Tenants(r.Context(), s.deps.Pool); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	out := VerifyResponse{OK: true, Chains: []audit.VerifyResult{}}
	for _, t := range tenants {
		res, err := audit.Verify(r.Context(), s.deps.Pool, t)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if res.Break != nil {
			out.OK = false
		}
		out.Chains = append(out.Chains, res)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) appID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, badParam("id", "must be an App id (UUID)"))
		return uuid.UUID{}, false
	}
	return id, true
}

// decodeJSON reads a small JSON body strictly: one object, known fields only.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return problem.New(http.StatusUnsupportedMediaType, "send application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem.New(http.StatusRequestEntityTooLarge, "body over 64 KiB")
		}
		return problem.New(http.StatusBadRequest, "malformed JSON body: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(http.StatusBadRequest, "malformed JSON body: more than one JSON value")
	}
	return nil
}

func encodeAppCursor(a apps.App) string {
	return base64.RawURLEncoding.EncodeToString([]byte(a.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + a.ID.String()))
}

func decodeAppCursor(c string) (apps.App, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return apps.App{}, err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return apps.App{}, errors.New("bad cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return apps.App{}, err
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return apps.App{}, err
	}
	return apps.App{ID: u, CreatedAt: t}, nil
}
