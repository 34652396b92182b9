package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/rules/condition"
	"github.com/prost-platform/prost/pkg/domain/rules/filter"
	"github.com/prost-platform/prost/pkg/problem"
)

// Limits of a rule document.
const (
	MaxNameLen       = 200
	MaxActions       = 16
	MaxScheduleNest  = 3
	MaxScheduleAfter = 90 * 24 * time.Hour
	MinScheduleAfter = time.Second
	MaxDocumentBytes = 64 << 10
	maxURLLen        = 2048
)

// Document is a rule as clients write it:
//
//	{"name": "...", "filters": [{"exact": {"type": "payment.failed"}}],
//	 "condition": "data.amount > 1000",
//	 "actions": [{"emit": {"type": "alert.raised", "source": "/rules/x", "data": {...}}},
//	             {"webhook": {"url": "https://..."}},
//	             {"schedule": {"after": "10m", "action": {...}}}]}
type Document struct {
	Name string `json:"name"`
	// Filters are CloudEvents Subscriptions API filters, kept as written
	// (compacted).
	Filters []json.RawMessage `json:"filters"`
	// Condition is an optional CEL expression over the attributes and data.
	Condition string `json:"condition,omitempty"`
	// Actions run, in order, when the filters and the condition match.
	Actions []Action `json:"actions"`
}

// Action is one of emit, webhook or schedule.
type Action struct {
	Emit     *EmitAction     `json:"emit,omitempty"`
	Webhook  *WebhookAction  `json:"webhook,omitempty"`
	Schedule *ScheduleAction `json:"schedule,omitempty"`
}

// Kind is "emit", "webhook" or "schedule".
func (a *Action) Kind() string {
	switch {
	case a.Emit != nil:
		return "emit"
	case a.Webhook != nil:
		return "webhook"
	default:
		return "schedule"
	}
}

// EmitAction writes a new CloudEvent into the tenant's stream. Strings in
// Data (and in Subject) may hold ${...} placeholders over the triggering
// event (see docs/rules.md).
type EmitAction struct {
	Type    string          `json:"type"`
	Source  string          `json:"source"`
	Subject string          `json:"subject,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// WebhookAction POSTs the triggering event to URL, signed per Standard
// Webhooks with the rule's secret.
type WebhookAction struct {
	URL string `json:"url"`
}

// ScheduleAction runs Action once After has passed.
type ScheduleAction struct {
	After  string  `json:"after"`
	Action *Action `json:"action"`
}

// hasWebhook reports whether any action (at any depth) is a webhook.
func (d *Document) hasWebhook() bool {
	var walk func(a *Action) bool
	walk = func(a *Action) bool {
		switch {
		case a == nil:
			return false
		case a.Webhook != nil:
			return true
		case a.Schedule != nil:
			return walk(a.Schedule.Action)
		}
		return false
	}
	for i := range d.Actions {
		if walk(&d.Actions[i]) {
			return true
		}
	}
	return false
}

// Problem is one invalid part of a document.
type Problem struct {
	// Pointer is the JSON pointer of the invalid member (e.g. /filters/0/sql).
	Pointer string `json:"field"`
	Detail  string `json:"detail"`
	// Line and Column locate the problem inside a CESQL or CEL expression.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// InvalidError lists every problem of a refused document. It wraps
// ErrInvalid.
type InvalidError struct{ Problems []Problem }

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Pointer + ": " + p.Detail
		if p.Line > 0 {
			parts[i] = fmt.Sprintf("%s: line %d, column %d: %s", p.Pointer, p.Line, p.Column, p.Detail)
		}
	}
	return "rules: invalid rule: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Unwrap gives the error's kind, problem.Invalid (422).
func (e *InvalidError) Unwrap() error { return problem.Invalid }

// DetailProblem lists each problem: the member (a JSON pointer) and, inside
// an expression, the line and column.
func (e *InvalidError) DetailProblem(p *problem.Problem) {
	p.Detail = "the rule is invalid; each error names the member (a JSON pointer) and, inside an expression, the line and column"
	for _, rp := range e.Problems {
		p.Errors = append(p.Errors, problem.FieldError{Field: rp.Pointer, Detail: rp.Detail, Line: rp.Line, Column: rp.Column})
	}
}

// Compiled is a validated document ready to evaluate. It is immutable and
// safe for concurrent use.
type Compiled struct {
	Doc       Document
	Filters   filter.List
	Condition *condition.Condition // nil when there is none
	// filterAttrs are the attributes the filters read (recorded as inputs).
	filterAttrs []string
}

// ParseDocument decodes and validates a rule document: unknown members,
// invalid filters, CESQL or CEL, and invalid actions are refused with every
// problem named by its JSON pointer.
func ParseDocument(body []byte) (*Compiled, error) {
	if len(body) > MaxDocumentBytes {
		return nil, &InvalidError{[]Problem{{Pointer: "", Detail: fmt.Sprintf("the rule document is larger than %d bytes", MaxDocumentBytes)}}}
	}
	v := &validator{}
	var doc Document
	root, ok := v.object("", body, "name", "filters", "condition", "actions")
	if !ok {
		return nil, v.err()
	}
	// name
	if raw, ok := root["name"]; !ok {
		v.add("/name", "name is required")
	} else if err := json.Unmarshal(raw, &doc.Name); err != nil {
		v.add("/name", "name must be a string")
	} else if n := utf8.RuneCountInString(strings.TrimSpace(doc.Name)); n == 0 || utf8.RuneCountInString(doc.Name) > MaxNameLen {
		v.add("/name", fmt.Sprintf("name must be 1 to %d characters", MaxNameLen))
	}
	// filters
	var c Compiled
	if raw, ok := root["filters"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		if err := json.Unmarshal(raw, &doc.Filters); err != nil || bytes.TrimSpace(raw)[0] != '[' {
			v.add("/filters", "filters must be an array of filters")
		} else {
			for i, f := range doc.Filters {
				var b bytes.Buffer
				if json.Compact(&b, f) == nil {
					doc.Filters[i] = b.Bytes()
				}
			}
			list, errs := filter.Compile("/filters", doc.Filters)
			for _, e := range errs {
				v.problems = append(v.problems, Problem{Pointer: e.Pointer, Detail: e.Msg, Line: e.Line, Column: e.Column})
			}
			c.Filters = list
		}
	}
	if doc.Filters == nil {
		doc.Filters = []json.RawMessage{}
	}
	// condition
	if raw, ok := root["condition"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		if err := json.Unmarshal(raw, &doc.Condition); err != nil {
			v.add("/condition", "condition must be a string holding a CEL expression")
		} else if strings.TrimSpace(doc.Condition) != "" {
			cond, err := condition.Compile(doc.Condition)
			var ce *condition.Error
			switch {
			case errors.As(err, &ce):
				v.problems = append(v.problems, Problem{Pointer: "/condition", Detail: ce.Msg, Line: ce.Line, Column: ce.Column})
			case err != nil:
				v.add("/condition", err.Error())
			default:
				c.Condition = cond
			}
		} else {
			doc.Condition = ""
		}
	}
	// actions
	raw, ok := root["actions"]
	var actions []json.RawMessage
	switch {
	case !ok:
		v.add("/actions", "at least one action is required")
	case json.Unmarshal(raw, &actions) != nil || bytes.TrimSpace(raw)[0] != '[':
		v.add("/actions", "actions must be an array of actions")
	case len(actions) == 0 || len(actions) > MaxActions:
		v.add("/actions", fmt.Sprintf("a rule has 1 to %d actions", MaxActions))
	default:
		for i, a := range actions {
			act := v.action("/actions/"+strconv.Itoa(i), a, 0)
			if act != nil {
				doc.Actions = append(doc.Actions, *act)
			}
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	c.Doc = doc
	c.filterAttrs = c.Filters.Attributes()
	return &c, nil
}

// Normalized is the document as stored: compact JSON with members in a fixed
// order.
func (c *Compiled) Normalized() []byte {
	b, _ := json.Marshal(c.Doc)
	return b
}

type validator struct{ problems []Problem }

func (v *validator) add(ptr, detail string) {
	v.problems = append(v.problems, Problem{Pointer: ptr, Detail: detail})
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return &InvalidError{Problems: v.problems}
}

// object decodes an object allowing only the given members; unknown and
// duplicate members are problems.
func (v *validator) object(ptr string, raw []byte, allowed ...string) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	what := "the rule"
	if ptr != "" {
		what = ptr
	}
	if len(raw) == 0 || raw[0] != '{' {
		v.add(ptr, what+" must be a JSON object")
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		v.add(ptr, "malformed JSON: "+err.Error())
		return nil, false
	}
	out := map[string]json.RawMessage{}
	okAll := true
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			v.add(ptr, "malformed JSON: "+err.Error())
			return nil, false
		}
		k, _ := t.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			v.add(ptr, "malformed JSON: "+err.Error())
			return nil, false
		}
		mp := ptr + "/" + escapePointer(k)
		if _, dup := out[k]; dup {
			v.add(mp, "duplicate member")
			okAll = false
			continue
		}
		known := false
		for _, a := range allowed {
			if a == k {
				known = true
			}
		}
		if !known {
			sorted := append([]string(nil), allowed...)
			sort.Strings(sorted)
			v.add(mp, fmt.Sprintf("unknown member %q (allowed: %s)", k, strings.Join(sorted, ", ")))
			okAll = false
			continue
		}
		out[k] = val
	}
	return out, okAll || len(out) > 0
}

func (v *validator) str(ptr string, raw json.RawMessage, required bool) (string, bool) {
	if raw == nil {
		if required {
			v.add(ptr, "required")
		}
		return "", !required
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		v.add(ptr, "must be a string")
		return "", false
	}
	if required && s == "" {
		v.add(ptr, "must not be empty")
		return "", false
	}
	return s, true
}

func (v *validator) action(ptr string, raw json.RawMessage, depth int) *Action {
	obj, ok := v.object(ptr, raw, "emit", "webhook", "schedule")
	if !ok {
		return nil
	}
	if len(obj) != 1 {
		v.add(ptr, "an action must be exactly one of emit, webhook or schedule")
		return nil
	}
	var a Action
	switch {
	case obj["emit"] != nil:
		p := ptr + "/emit"
		o, ok := v.object(p, obj["emit"], "type", "source", "subject", "data")
		if !ok {
			return nil
		}
		e := &EmitAction{}
		var good bool
		e.Type, good = v.str(p+"/type", o["type"], true)
		src, okSrc := v.str(p+"/source", o["source"], true)
		subj, okSubj := v.str(p+"/subject", o["subject"], false)
		e.Source, e.Subject = src, subj
		if good && okSrc && okSubj {
			probe := cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: "probe", Source: e.Source, Type: e.Type, Subject: e.Subject}
			var verr *cloudevent.ValidationError
			if err := probe.Validate(); errors.As(err, &verr) {
				for _, pr := range verr.Problems {
					v.add(p+"/"+pr.Field, pr.Detail)
				}
			}
			if strings.Contains(e.Type, "${") || strings.Contains(e.Source, "${") {
				v.add(p, "type and source are literal; placeholders are allowed in subject and data only")
			}
			if err := checkTemplateString(e.Subject); err != nil {
				v.add(p+"/subject", err.Error())
			}
		}
		if d, ok := o["data"]; ok && string(bytes.TrimSpace(d)) != "null" {
			var b bytes.Buffer
			if err := json.Compact(&b, d); err != nil {
				v.add(p+"/data", "data must be JSON")
			} else {
				e.Data = b.Bytes()
				if err := checkTemplate(e.Data); err != nil {
					v.add(p+"/data", err.Error())
				}
			}
		}
		a.Emit = e
	case obj["webhook"] != nil:
		p := ptr + "/webhook"
		o, ok := v.object(p, obj["webhook"], "url")
		if !ok {
			return nil
		}
		u, ok := v.str(p+"/url", o["url"], true)
		if ok {
			pu, err := url.Parse(u)
			switch {
			case err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "":
				v.add(p+"/url", "url must be an absolute http or https URL")
			case pu.User != nil:
				v.add(p+"/url", "url must not hold credentials")
			case len(u) > maxURLLen:
				v.add(p+"/url", fmt.Sprintf("url must be at most %d bytes", maxURLLen))
			}
		}
		a.Webhook = &WebhookAction{URL: u}
	case obj["schedule"] != nil:
		p := ptr + "/schedule"
		if depth >= MaxScheduleNest {
			v.add(p, fmt.Sprintf("schedule may be nested at most %d deep", MaxScheduleNest))
			return nil
		}
		o, ok := v.object(p, obj["schedule"], "after", "action")
		if !ok {
			return nil
		}
		s := &ScheduleAction{}
		after, ok := v.str(p+"/after", o["after"], true)
		if ok {
			d, err := time.ParseDuration(after)
			if err != nil || d < MinScheduleAfter || d > MaxScheduleAfter {
				v.add(p+"/after", fmt.Sprintf("after must be a duration such as \"90s\", \"10m\" or \"2h\", from %s to %s", MinScheduleAfter, MaxScheduleAfter))
			}
			s.After = after
		}
		if o["action"] == nil {
			v.add(p+"/action", "the action to run later is required")
		} else {
			s.Action = v.action(p+"/action", o["action"], depth+1)
		}
		a.Schedule = s
	default:
		v.add(ptr, "an action must be exactly one of emit, webhook or schedule")
		return nil
	}
	return &a
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// placeholder matches ${path}: an attribute or extension name, data with an
// optional dotted path, or one of rule.id, rule.version, decision.id.
var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

var placeholderPath = regexp.MustCompile(`^[a-z0-9]+(\.[A-Za-z0-9_\-]+)*$`)
