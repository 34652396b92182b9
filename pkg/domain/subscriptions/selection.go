package subscriptions

import (
	"bytes"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/rules/filter"
	"github.com/prost-platform/prost/pkg/problem"
)

// Selection is what a stream reader (the SSE tail) asked for: event types
// (none: every type) and filters in the subscriptions' dialects.
type Selection struct {
	types []string
	list  filter.List
}

// ParseSelection reads a stream's types and its filter parameter: one
// filter as a JSON object, or a JSON array of filters that must all match
// ("" for none). A filter that is not JSON is a 400 naming the parameter;
// an invalid filter, an unsupported dialect included, a 422 naming the
// dialect and where it is.
func ParseSelection(types []string, filterParam string) (Selection, error) {
	var v invalid
	sel := Selection{types: normalizeTypes(types, &v)}
	if err := v.err(); err != nil {
		return Selection{}, err
	}
	fp := bytes.TrimSpace([]byte(filterParam))
	if len(fp) == 0 {
		return sel, nil
	}
	var raws []json.RawMessage
	switch {
	case !json.Valid(fp):
		return Selection{}, problem.BadParam("filter", "must be a JSON filter object, e.g. {\"prefix\":{\"type\":\"order.\"}}, or an array of them")
	case fp[0] == '[':
		if err := json.Unmarshal(fp, &raws); err != nil {
			return Selection{}, problem.BadParam("filter", "must be a JSON filter object or an array of them")
		}
	default:
		raws = []json.RawMessage{fp}
	}
	list, errs := filter.Compile("", raws)
	if len(errs) > 0 {
		for _, e := range errs {
			v.fields = append(v.fields, problem.FieldError{Field: "filter", Pointer: e.Pointer, Detail: e.Msg, Line: e.Line, Column: e.Column})
		}
		return Selection{}, v.err()
	}
	sel.list = list
	return sel, nil
}

// Subjects are the stream subjects of the tenant's events of the selected
// types.
func (s Selection) Subjects(tenant uuid.UUID) []string { return filterSubjects(tenant, s.types) }

// Filtered reports whether the selection has filters (Match must then read
// each event).
func (s Selection) Filtered() bool { return len(s.list) > 0 }

// Match reports whether a stored event (its structured JSON) passes the
// filters. An unreadable event never matches.
func (s Selection) Match(envelope []byte) bool {
	if len(s.list) == 0 {
		return true
	}
	ev, err := cloudevent.ParseStructured(envelope)
	if err != nil {
		return false
	}
	return s.list.Match(filter.NewEvent(&ev))
}
