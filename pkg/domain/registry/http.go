package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/internal/jsonbody"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/schemacompat"
)

// Media types the registry routes accept: JSON, and Confluent's own.
var mediaTypes = []string{"application/json", "application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json"}

// HandlerConfig tunes Handlers. Zero values take the defaults given.
type HandlerConfig struct {
	// MaxBodyBytes caps a request body (a schema). Defaults to 1 MiB.
	MaxBodyBytes int64
	// Logger receives server-side failures. Defaults to discarding.
	Logger *slog.Logger
}

// Handlers serve the registry's tenant API under /v1/registry, shaped like
// Confluent Schema Registry's REST API.
type Handlers struct {
	reg      *Registry
	cfg      HandlerConfig
	tenantID func(*http.Request) uuid.UUID
}

// NewHandlers returns the registry's HTTP handlers.
func NewHandlers(reg *Registry, cfg HandlerConfig) *Handlers {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handlers{reg: reg, cfg: cfg}
}

// Register mounts the routes on mux. tenant wraps each handler so it runs
// only for an authenticated App; tenantID returns that App's id inside it.
func (h *Handlers) Register(mux *http.ServeMux, tenant func(http.HandlerFunc) http.Handler, tenantID func(*http.Request) uuid.UUID) {
	h.tenantID = tenantID
	const p = "/v1/registry"
	mux.Handle("GET "+p+"/subjects", tenant(h.subjects))
	mux.Handle("GET "+p+"/subjects/{subject}/versions", tenant(h.versions))
	mux.Handle("POST "+p+"/subjects/{subject}/versions", tenant(h.register))
	mux.Handle("GET "+p+"/subjects/{subject}/versions/{version}", tenant(h.get))
	mux.Handle("GET "+p+"/subjects/{subject}/versions/{version}/schema", tenant(h.getSchema))
	mux.Handle("DELETE "+p+"/subjects/{subject}", tenant(h.deleteSubject))
	mux.Handle("DELETE "+p+"/subjects/{subject}/versions/{version}", tenant(h.deleteVersion))
	mux.Handle("POST "+p+"/compatibility/subjects/{subject}/versions", tenant(h.compat))
	mux.Handle("POST "+p+"/compatibility/subjects/{subject}/versions/{version}", tenant(h.compat))
	mux.Handle("GET "+p+"/config", tenant(h.getConfig))
	mux.Handle("PUT "+p+"/config", tenant(h.putConfig))
	mux.Handle("DELETE "+p+"/config", tenant(h.deleteConfig))
	mux.Handle("GET "+p+"/config/{subject}", tenant(h.getConfig))
	mux.Handle("PUT "+p+"/config/{subject}", tenant(h.putConfig))
	mux.Handle("DELETE "+p+"/config/{subject}", tenant(h.deleteConfig))
}

func (h *Handlers) subjects(w http.ResponseWriter, r *http.Request) {
	out, err := h.reg.Subjects(r.Context(), h.tenantID(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if out == nil {
		out = []string{}
	}
	jsonbody.Write(w, http.StatusOK, out)
}

func (h *Handlers) versions(w http.ResponseWriter, r *http.Request) {
	out, err := h.reg.Versions(r.Context(), h.tenantID(r), r.PathValue("subject"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonbody.Write(w, http.StatusOK, out)
}

// schemaRequest is the body of a registration or compatibility check:
// Confluent's {"schema": "<schema as a string>", "schemaType": "JSON"};
// PROST also takes the schema as a JSON value.
type schemaRequest struct {
	Schema     json.RawMessage `json:"schema"`
	SchemaType string          `json:"schemaType"`
	References []any           `json:"references"`
}

// readSchema reads a schemaRequest and returns the schema text.
func (h *Handlers) readSchema(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, _, err := jsonbody.Read(w, r, h.cfg.MaxBodyBytes, mediaTypes...)
	if err != nil {
		return nil, err
	}
	var req schemaRequest
	if err := jsonbody.Decode(b, &req); err != nil {
		return nil, err
	}
	if req.SchemaType != "" && req.SchemaType != "JSON" {
		return nil, invalidField("schemaType", fmt.Sprintf("%q: PROST's registry holds JSON Schemas only (schemaType JSON)", req.SchemaType))
	}
	if len(req.References) > 0 {
		return nil, invalidField("references", "not supported: refer to registered schemas with $ref: \"urn:prost:schema:<subject>:<version>\"")
	}
	if len(req.Schema) == 0 || string(req.Schema) == "null" {
		return nil, invalidField("schema", "required: the JSON Schema, as a string (Confluent's form) or as a JSON object")
	}
	switch req.Schema[0] {
	case '"':
		var s string
		if err := json.Unmarshal(req.Schema, &s); err != nil {
			return nil, problem.New(http.StatusBadRequest, "malformed JSON body: "+err.Error())
		}
		return []byte(s), nil
	case '{', 't', 'f':
		return req.Schema, nil
	default:
		return nil, invalidField("schema", "must be a JSON Schema (an object or a boolean) or a string holding one")
	}
}

func invalidField(field, detail string) *problem.Problem {
	p := problem.New(http.StatusUnprocessableEntity, field+": "+detail)
	p.Errors = []problem.FieldError{{Field: field, Detail: detail}}
	return p
}

// registered is the answer of POST /subjects/{s}/versions: Confluent's
// {"id"} plus the subject, version and the dataschema URI of the version.
type registered struct {
	ID         int64  `json:"id"`
	Subject    string `json:"subject"`
	Version    int    `json:"version"`
	DataSchema string `json:"dataschema"`
	Created    bool   `json:"created"`
}

func (h *Handlers) register(w http.ResponseWriter, r *http.Request) {
	text, err := h.readSchema(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, created, err := h.reg.Register(r.Context(), h.tenantID(r), r.PathValue("subject"), text)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// 200 in both cases, as Confluent answers; created says which.
	jsonbody.Write(w, http.StatusOK, registered{ID: v.ID, Subject: v.Subject, Version: v.Version, DataSchema: v.DataSchema, Created: created})
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) {
	v, err := h.reg.Get(r.Context(), h.tenantID(r), r.PathValue("subject"), r.PathValue("version"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonbody.Write(w, http.StatusOK, v)
}

func (h *Handlers) getSchema(w http.ResponseWriter, r *http.Request) {
	v, err := h.reg.Get(r.Context(), h.tenantID(r), r.PathValue("subject"), r.PathValue("version"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/schema+json")
	_, _ = w.Write([]byte(v.Schema))
}

func permanent(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("permanent")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p := problem.New(http.StatusBadRequest, "invalid query parameter permanent")
		p.Errors = []problem.FieldError{{Field: "permanent", Detail: "must be true or false"}}
		return false, p
	}
	return b, nil
}

func (h *Handlers) deleteSubject(w http.ResponseWriter, r *http.Request) {
	perm, err := permanent(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := h.reg.DeleteSubject(r.Context(), h.tenantID(r), r.PathValue("subject"), perm)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonbody.Write(w, http.StatusOK, out)
}

func (h *Handlers) deleteVersion(w http.ResponseWriter, r *http.Request) {
	perm, err := permanent(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := h.reg.DeleteVersion(r.Context(), h.tenantID(r), r.PathValue("subject"), r.PathValue("version"), perm)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonbody.Write(w, http.StatusOK, out)
}

func (h *Handlers) compat(w http.ResponseWriter, r *http.Request) {
	text, err := h.readSchema(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.reg.CheckCompatibility(r.Context(), h.tenantID(r), r.PathValue("subject"), r.PathValue("version"), text)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	jsonbody.Write(w, http.StatusOK, res)
}

// configAnswer is the effective settings, with Confluent's compatibilityLevel
// (what GET /config answers there) beside compatibility.
type configAnswer struct {
	Settings
	CompatibilityLevel schemacompat.Mode `json:"compatibilityLevel"`
}

func (h *Handlers) writeConfig(w http.ResponseWriter, s Settings) {
	jsonbody.Write(w, http.StatusOK, configAnswer{Settings: s, CompatibilityLevel: s.Compatibility})
}

func (h *Handlers) getConfig(w http.ResponseWriter, r *http.Request) {
	subject := r.PathValue("subject")
	if subject != "" {
		if err := CheckSubject(subject); err != nil {
			h.fail(w, r, fmt.Errorf("%w: %w", ErrInvalidSubject, err))
			return
		}
	}
	s, err := h.reg.Config(r.Context(), h.tenantID(r), subject)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeConfig(w, s)
}

func (h *Handlers) putConfig(w http.ResponseWriter, r *http.Request) {
	b, _, err := jsonbody.Read(w, r, 64<<10, mediaTypes...)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var p SettingsPatch
	if err := jsonbody.Decode(b, &p); err != nil {
		h.fail(w, r, err)
		return
	}
	if p.Compatibility == nil && p.Policy == nil && p.UnregisteredTypes == nil {
		h.fail(w, r, invalidField("compatibility", "send at least one of compatibility, policy, unregistered_types"))
		return
	}
	s, err := h.reg.SetConfig(r.Context(), h.tenantID(r), r.PathValue("subject"), p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeConfig(w, s)
}

func (h *Handlers) deleteConfig(w http.ResponseWriter, r *http.Request) {
	s, err := h.reg.DeleteConfig(r.Context(), h.tenantID(r), r.PathValue("subject"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeConfig(w, s)
}

// incompatibleProblem is the 409 answer: a problem listing each incompatible
// difference in errors (pointer, change type as keyword) and every
// difference, compatible or not, in differences.
type incompatibleProblem struct {
	*problem.Problem
	Compatibility schemacompat.Mode         `json:"compatibility"`
	Policy        schemacompat.Policy       `json:"policy"`
	Differences   []schemacompat.Difference `json:"differences"`
}

func (h *Handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ie *IncompatibleError
	if errors.As(err, &ie) {
		p := problem.New(http.StatusConflict, fmt.Sprintf("the schema is incompatible with the earlier versions of %q under %s (%s)", ie.Subject, ie.Mode, ie.Policy))
		p.Instance = r.URL.Path
		for _, d := range ie.Result.Differences {
			if !d.Compatible {
				p.Errors = append(p.Errors, problem.FieldError{Field: "schema", Pointer: d.Pointer, Keyword: string(d.Type),
					Detail: fmt.Sprintf("version %d (%s): %s at %s: %s", d.Version, d.Direction, d.Type, d.Pointer, d.Message)})
			}
		}
		w.Header().Set("Content-Type", problem.ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(incompatibleProblem{Problem: p, Compatibility: ie.Mode, Policy: ie.Policy, Differences: ie.Result.Differences})
		return
	}
	p := problemFor(err)
	if p.Status >= 500 {
		h.cfg.Logger.Error("registry request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	p.Instance = r.URL.Path
	problem.Write(w, p)
}

// problemFor maps the registry's errors to HTTP problems: the one place
// where they become statuses.
func problemFor(err error) *problem.Problem {
	var p *problem.Problem
	if errors.As(err, &p) {
		return p
	}
	switch {
	case errors.Is(err, ErrSubjectNotFound):
		return problem.New(http.StatusNotFound, err.Error())
	case errors.Is(err, ErrVersionNotFound):
		return problem.New(http.StatusNotFound, err.Error())
	case errors.Is(err, ErrInvalidSchema):
		return invalidField("schema", err.Error())
	case errors.Is(err, ErrInvalidSubject):
		return invalidField("subject", err.Error())
	case errors.Is(err, ErrInvalidVersion):
		return invalidField("version", err.Error())
	case errors.Is(err, ErrInvalidConfig):
		return problem.New(http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, ErrReadOnly):
		return problem.New(http.StatusForbidden, err.Error())
	case errors.Is(err, ErrNotSoftDeleted):
		return problem.New(http.StatusConflict, err.Error())
	default:
		return problem.New(http.StatusInternalServerError, "internal error; the request id identifies it in the logs")
	}
}
