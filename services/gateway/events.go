package gatewaysvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/subjects"
	"github.com/prost-platform/prost/pkg/telemetry"
)

// TenantExtension is the CloudEvents extension the gateway stamps with the
// authenticated App's id.
const TenantExtension = "tenantid"

// IngestResult is the 202 answer of POST /v1/events.
type IngestResult struct {
	Accepted   int           `json:"accepted"`
	Duplicates int           `json:"duplicates"`
	Results    []EventResult `json:"results"`
}

// EventResult is what became of one event: status "accepted" or "duplicate".
type EventResult struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Status string `json:"status"`
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) error {
	app, _ := AppFrom(r.Context())
	// Shed load at once when too many requests are in progress: queueing
	// without bound would grow memory and latency together.
	select {
	case s.inFlight <- struct{}{}:
		defer func() { <-s.inFlight }()
	default:
		return errTooManyInFlight
	}
	if err := needMode(r); err != nil {
		return err
	}
	_, evs, err := cloudevent.ParseRequest(r, cloudevent.Limits{MaxBodyBytes: s.cfg.MaxBodyBytes, MaxBatch: s.cfg.MaxBatch})
	ri, _ := r.Context().Value(reqInfoKey).(*reqInfo)
	if ri != nil {
		ri.events = len(evs)
		if len(evs) == 1 {
			ri.eventID = evs[0].ID
		}
	}
	if err != nil {
		return err
	}
	if ok, wait := s.allow(app.ID, len(evs)); !ok {
		e := problem.Errorf(problem.RateLimited, "rate limit of %.0f events/s for this App exceeded", s.cfg.RateLimit)
		e.RetryAfter = int(math.Ceil(wait.Seconds()))
		return e
	}
	// The tenant comes from the authenticated App only: an event naming any
	// other tenant is refused, and the whole request with it.
	var mismatches []problem.FieldError
	batch := len(evs) > 1 || strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/cloudevents-batch")
	idx := func(i int) int {
		if batch {
			return i
		}
		return -1
	}
	for i := range evs {
		if field, ok := namesOtherTenant(&evs[i], app.ID); !ok {
			mismatches = append(mismatches, fieldError(idx(i), field, errTenantMismatch.Error()))
		}
	}
	if len(mismatches) > 0 {
		e := problem.Errorf(problem.Forbidden, "an App may only record events of its own tenant; the tenant is taken from the credentials")
		e.Fields = mismatches
		return e
	}
	// Sources PROST records events with itself are not the App's to use.
	var reserved []problem.FieldError
	for i := range evs {
		if who, ok := s.cfg.ReservedSources[evs[i].Source]; ok {
			reserved = append(reserved, fieldError(idx(i), "source",
				fmt.Sprintf("source %q is reserved for the events PROST records from %s; use a source of your own", evs[i].Source, who)))
		}
	}
	if len(reserved) > 0 {
		e := problem.Errorf(problem.Invalid, "a source is reserved for events PROST records itself")
		e.Fields = reserved
		return e
	}
	// Each event's data must match its schema and contract (pkg/domain/registry);
	// a contract may name the partition key.
	var contractKeys []string
	if s.deps.Events != nil {
		if contractKeys, err = s.deps.Events.CheckEvents(r.Context(), app.ID, evs, batch); err != nil {
			return err
		}
	}
	tenant := app.ID.String()
	// The trace context travels with each event: the client's own
	// traceparent extension when it sent one, else this request's span.
	reqParent, reqState := telemetry.TraceParent(r.Context())
	news := make([]eventstore.NewEvent, len(evs))
	var tooLarge []problem.FieldError
	for i := range evs {
		e := &evs[i]
		e.SetExtension(TenantExtension, tenant)
		tp, ts := extString(e, "traceparent"), extString(e, "tracestate")
		if tp == "" && reqParent != "" {
			tp, ts = reqParent, reqState
			e.SetExtension("traceparent", tp)
			if ts != "" {
				e.SetExtension("tracestate", ts)
			}
		}
		var pkey string
		if v, ok := e.Extension("partitionkey"); ok {
			pkey = fmt.Sprint(v)
		}
		if pkey == "" && contractKeys != nil {
			pkey = contractKeys[i]
		}
		partKey := pkey
		if partKey == "" {
			partKey = e.Source + "\x00" + e.ID
		}
		news[i] = eventstore.NewEvent{
			TenantID: app.ID, Source: e.Source, ID: e.ID, Type: e.Type, Subject: e.Subject, Time: e.Time,
			PartitionKey:  pkey,
			Envelope:      e.AppendJSON(nil),
			OutboxSubject: subjects.Event(app.ID, subjects.Partition(partKey, s.cfg.Partitions), e.Type),
			TraceParent:   tp,
			TraceState:    ts,
		}
		// The event as it will be published (re-encoded, with its headers)
		// must fit the bus, with room for a replay's headers: an event the
		// bus refuses is refused here rather than dead-lettered later.
		n := outbox.PublishedSize(app.ID, e.Source, e.ID, news[i].OutboxSubject, news[i].Envelope, tp, ts) + outbox.ReplayHeadroom
		if int64(n) > s.cfg.MaxMessageBytes {
			tooLarge = append(tooLarge, fieldError(idx(i), "event", fmt.Sprintf(
				"the event is %d bytes as it would be published (re-encoded, with its headers and %d bytes kept for a replay's); the limit is %d bytes, the bus's maximum message size",
				n, outbox.ReplayHeadroom, s.cfg.MaxMessageBytes)))
		}
	}
	if len(tooLarge) > 0 {
		e := problem.Errorf(problem.TooLarge, "an event is larger than the bus takes; see docs/api.md, Limits")
		e.Fields = tooLarge
		return e
	}
	actx, cancel := context.WithTimeout(r.Context(), s.cfg.IngestTimeout)
	defer cancel()
	out, err := s.deps.Committer.Append(actx, news)
	if err != nil {
		return err
	}
	res := IngestResult{Results: make([]EventResult, len(evs))}
	for i, o := range out {
		st := "accepted"
		if o.Duplicate {
			st = "duplicate"
			res.Duplicates++
		} else {
			res.Accepted++
		}
		res.Results[i] = EventResult{ID: evs[i].ID, Source: evs[i].Source, Status: st}
	}
	s.deps.Metrics.IngestEvents.WithLabelValues(telemetry.ResultAccepted).Add(float64(res.Accepted))
	s.deps.Metrics.IngestEvents.WithLabelValues(telemetry.ResultDuplicate).Add(float64(res.Duplicates))
	return httpapi.WriteJSON(w, http.StatusAccepted, res)
}

// errNoMode answers a request that is in none of the three CloudEvents HTTP
// modes: no cloudevents media type and no ce-* header.
var errNoMode = problem.Errorf(problem.UnsupportedMediaType,
	"send a CloudEvent in one of three modes: structured (Content-Type: application/cloudevents+json, the event as a JSON object), "+
		"batch (Content-Type: application/cloudevents-batch+json, a JSON array of events), or binary (the ce-specversion, ce-id, "+
		"ce-source and ce-type headers, with the data as the body and its own Content-Type)").
	WithField("content-type", "missing or not a CloudEvents media type, and no ce-* headers")

// needMode refuses, naming the three modes, a request that is in none.
func needMode(r *http.Request) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); strings.HasPrefix(strings.ToLower(mt), "application/cloudevents") {
		return nil
	}
	for k := range r.Header {
		if len(k) > 3 && strings.EqualFold(k[:3], "ce-") {
			return nil
		}
	}
	return errNoMode
}

// errTooManyInFlight sheds an ingest request past Config.MaxInFlight.
var errTooManyInFlight = problem.Errorf(problem.Unavailable, "too many ingest requests in progress; retry shortly")

// errTenantMismatch is a request naming a tenant other than the caller's.
var errTenantMismatch = errors.New("the event names a tenant other than the authenticated App")

func fieldError(index int, field, detail string) problem.FieldError {
	fe := problem.FieldError{Field: field, Detail: detail}
	if index >= 0 {
		i := index
		fe.Index = &i
	}
	return fe
}

// extString returns a string extension's value, or "".
func extString(e *cloudevent.Event, name string) string {
	v, _ := e.Extension(name)
	s, _ := v.(string)
	return s
}

// namesOtherTenant checks the tenantid extension and data.tenant_id against
// the App; it returns the offending field and false on a mismatch.
func namesOtherTenant(e *cloudevent.Event, app uuid.UUID) (string, bool) {
	if v, ok := e.Extension(TenantExtension); ok {
		s, isStr := v.(string)
		id, err := uuid.Parse(s)
		if !isStr || err != nil || id != app {
			return TenantExtension, false
		}
	}
	// The member is found by its decoded name, so "tenant\u005fid" is
	// tenant_id too; data without the name and without a \u escape cannot
	// hold it and is not decoded. Every top-level member of that name is
	// checked, repeats included.
	if len(e.Data) == 0 || e.Data[0] != '{' ||
		(!bytes.Contains(e.Data, []byte(`tenant_id`)) && !bytes.Contains(e.Data, []byte(`\u`))) {
		return "", true
	}
	dec := json.NewDecoder(bytes.NewReader(e.Data))
	if _, err := dec.Token(); err != nil {
		return "", true
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", true
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", true
		}
		if name, _ := t.(string); name != "tenant_id" || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "data.tenant_id", false
		}
		if id, err := uuid.Parse(s); err != nil || id != app {
			return "data.tenant_id", false
		}
	}
	return "", true
}
