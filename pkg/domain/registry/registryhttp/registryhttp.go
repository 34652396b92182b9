// Package registryhttp serves the schema registry's tenant API under
// /v1/registry, shaped like Confluent Schema Registry's REST API:
//
//	GET    /v1/registry/subjects
//	GET    /v1/registry/subjects/{subject}/versions
//	POST   /v1/registry/subjects/{subject}/versions                  register (409 naming each incompatible change)
//	GET    /v1/registry/subjects/{subject}/versions/{version}        a version, or latest
//	GET    /v1/registry/subjects/{subject}/versions/{version}/schema the schema alone
//	DELETE /v1/registry/subjects/{subject}[/versions/{version}]      soft, then ?permanent=true
//	POST   /v1/registry/compatibility/subjects/{subject}/versions[/{version}]
//	GET|PUT|DELETE /v1/registry/config[/{subject}]
package registryhttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/schemacompat"
	"github.com/prost-platform/prost/pkg/storable"
)

// Media types the registry routes accept: JSON, and Confluent's own.
var mediaTypes = []string{"application/json", "application/vnd.schemaregistry.v1+json", "application/vnd.schemaregistry+json"}

// DefaultMaxBodyBytes caps a request body (a schema) when Config sets none:
// 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Config tunes Handlers. Zero values take the defaults given.
type Config struct {
	// MaxBodyBytes caps a request body. Defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Handlers serve the registry routes.
type Handlers struct {
	reg *registry.Registry
	cfg Config
}

// New returns the registry's HTTP handlers.
func New(reg *registry.Registry, cfg Config) *Handlers {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return &Handlers{reg: reg, cfg: cfg}
}

// Mount mounts the routes.
func (h *Handlers) Mount(rt *httpapi.Router) {
	const p = "/v1/registry"
	rt.Tenant("GET "+p+"/subjects", h.subjects)
	rt.Tenant("GET "+p+"/subjects/{subject}/versions", h.versions)
	rt.Tenant("POST "+p+"/subjects/{subject}/versions", h.register)
	rt.Tenant("GET "+p+"/subjects/{subject}/versions/{version}", h.get)
	rt.Tenant("GET "+p+"/subjects/{subject}/versions/{version}/schema", h.getSchema)
	rt.Tenant("DELETE "+p+"/subjects/{subject}", h.deleteSubject)
	rt.Tenant("DELETE "+p+"/subjects/{subject}/versions/{version}", h.deleteVersion)
	rt.Tenant("POST "+p+"/compatibility/subjects/{subject}/versions", h.compat)
	rt.Tenant("POST "+p+"/compatibility/subjects/{subject}/versions/{version}", h.compat)
	rt.Tenant("GET "+p+"/config", h.getConfig)
	rt.Tenant("PUT "+p+"/config", h.putConfig)
	rt.Tenant("DELETE "+p+"/config", h.deleteConfig)
	rt.Tenant("GET "+p+"/config/{subject}", h.getConfig)
	rt.Tenant("PUT "+p+"/config/{subject}", h.putConfig)
	rt.Tenant("DELETE "+p+"/config/{subject}", h.deleteConfig)
}

func (h *Handlers) subjects(w http.ResponseWriter, r *http.Request) error {
	out, err := h.reg.Subjects(r.Context(), httpapi.TenantID(r.Context()))
	if err != nil {
		return err
	}
	if out == nil {
		out = []string{}
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

func (h *Handlers) versions(w http.ResponseWriter, r *http.Request) error {
	out, err := h.reg.Versions(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
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
	b, _, err := httpapi.ReadBody(w, r, h.cfg.MaxBodyBytes, mediaTypes...)
	if err != nil {
		return nil, err
	}
	var req schemaRequest
	if err := httpapi.Decode(b, &req); err != nil {
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
			return nil, problem.Errorf(problem.Malformed, "malformed JSON body: %v", err)
		}
		// The schema inside the string is stored too.
		if json.Valid([]byte(s)) {
			if ptr, reason, ok := storable.JSON([]byte(s)); !ok {
				return nil, invalidField("schema"+ptr, reason)
			}
		}
		return []byte(s), nil
	case '{', 't', 'f':
		return req.Schema, nil
	default:
		return nil, invalidField("schema", "must be a JSON Schema (an object or a boolean) or a string holding one")
	}
}

// invalidField is a 422 whose detail starts with the field's name, as the
// registry has always answered.
func invalidField(field, detail string) error {
	e := problem.InvalidField(field, detail)
	e.Msg = field + ": " + detail
	return e
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

func (h *Handlers) register(w http.ResponseWriter, r *http.Request) error {
	text, err := h.readSchema(w, r)
	if err != nil {
		return err
	}
	v, created, err := h.reg.Register(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"), text)
	if err != nil {
		return err
	}
	// 200 in both cases, as Confluent answers; created says which.
	return httpapi.WriteJSON(w, http.StatusOK, registered{ID: v.ID, Subject: v.Subject, Version: v.Version, DataSchema: v.DataSchema, Created: created})
}

func (h *Handlers) get(w http.ResponseWriter, r *http.Request) error {
	v, err := h.reg.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"), r.PathValue("version"))
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, v)
}

func (h *Handlers) getSchema(w http.ResponseWriter, r *http.Request) error {
	v, err := h.reg.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"), r.PathValue("version"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/schema+json")
	_, _ = w.Write([]byte(v.Schema))
	return nil
}

func permanent(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("permanent")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, problem.BadParam("permanent", "must be true or false")
	}
	return b, nil
}

func (h *Handlers) deleteSubject(w http.ResponseWriter, r *http.Request) error {
	perm, err := permanent(r)
	if err != nil {
		return err
	}
	out, err := h.reg.DeleteSubject(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"), perm)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

func (h *Handlers) deleteVersion(w http.ResponseWriter, r *http.Request) error {
	perm, err := permanent(r)
	if err != nil {
		return err
	}
	out, err := h.reg.DeleteVersion(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"), r.PathValue("version"), perm)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

func (h *Handlers) compat(w http.ResponseWriter, r *http.Request) error {
	text, err := h.readSchema(w, r)
	if err != nil {
		return err
	}
	res, err := h.reg.CheckCompatibility(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"), r.PathValue("version"), text)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, res)
}

// configAnswer is the effective settings, with Confluent's compatibilityLevel
// (what GET /config answers there) beside compatibility.
type configAnswer struct {
	registry.Settings
	CompatibilityLevel schemacompat.Mode `json:"compatibilityLevel"`
}

func writeConfig(w http.ResponseWriter, s registry.Settings) error {
	return httpapi.WriteJSON(w, http.StatusOK, configAnswer{Settings: s, CompatibilityLevel: s.Compatibility})
}

func (h *Handlers) getConfig(w http.ResponseWriter, r *http.Request) error {
	subject := r.PathValue("subject")
	if subject != "" {
		if err := registry.CheckSubject(subject); err != nil {
			return fmt.Errorf("%w: %w", registry.ErrInvalidSubject, err)
		}
	}
	s, err := h.reg.Config(r.Context(), httpapi.TenantID(r.Context()), subject)
	if err != nil {
		return err
	}
	return writeConfig(w, s)
}

func (h *Handlers) putConfig(w http.ResponseWriter, r *http.Request) error {
	b, _, err := httpapi.ReadBody(w, r, httpapi.DefaultMaxJSONBytes, mediaTypes...)
	if err != nil {
		return err
	}
	var p registry.SettingsPatch
	if err := httpapi.Decode(b, &p); err != nil {
		return err
	}
	if p.Compatibility == nil && p.Policy == nil && p.UnregisteredTypes == nil {
		return invalidField("compatibility", "send at least one of compatibility, policy, unregistered_types")
	}
	s, err := h.reg.SetConfig(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"), p)
	if err != nil {
		return err
	}
	return writeConfig(w, s)
}

func (h *Handlers) deleteConfig(w http.ResponseWriter, r *http.Request) error {
	s, err := h.reg.DeleteConfig(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("subject"))
	if err != nil {
		return err
	}
	return writeConfig(w, s)
}
