// Package subscriptions is how a tenant consumes its own stream, shaped like
// the CloudEvents Subscriptions API resource:
//
//	{"id", "types", "filters", "sink", "protocol", "protocolsettings", "config"}
//
// The server assigns id. types (exact event types) and filters (the
// CloudEvents filter dialects of pkg/domain/rules/filter: exact, prefix,
// suffix, all, any, not, sql) select events; an unsupported dialect is
// refused naming it. Two protocols:
//
//   - HTTP: every matching event is POSTed to sink as a structured
//     CloudEvent signed per Standard Webhooks (webhook-id, -timestamp,
//     -signature; the secret is write-only), in order per partition key,
//     retried on a schedule (Svix's by default), Retry-After honoured. 410
//     Gone disables the subscription, and so does failing for longer than
//     the disable window; an event of type DisabledType says so. Every
//     attempt is recorded. Exhausted deliveries go to the dead-letter queue;
//     Recover re-sends what failed since a time.
//   - NATS: PROST creates a JetStream pull consumer on the tenant's subjects
//     and the subscription's types, and mints credentials that may only
//     fetch from and acknowledge that consumer (pkg/natsauth); rotating them
//     or deleting the subscription revokes them at once.
//
// The fan-out (HandleEvents, a consumer.Handler) turns events into
// deliveries; Deliver (a jobs.Handler) sends them. Both run in the
// subscriptions service (services/subscriptions).
package subscriptions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/domain/rules/filter"
	"github.com/prost-platform/prost/pkg/problem"
)

// Protocols.
const (
	ProtocolHTTP = "HTTP"
	ProtocolNATS = "NATS"
)

// Statuses of a subscription.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Limits.
const (
	// MaxPerTenant caps an App's subscriptions.
	MaxPerTenant = 100
	// MaxTypes caps the types of one subscription.
	MaxTypes = 64
	// MaxTypeLen caps an event type, in bytes.
	MaxTypeLen = 256
	// MaxSinkLen caps a sink URL, in bytes.
	MaxSinkLen = 2048
	// MaxRetries caps the entries of a retry schedule.
	MaxRetries = 20
	// MaxRetryDelay caps one delay of a retry schedule.
	MaxRetryDelay = 24 * time.Hour
)

// DefaultRetrySchedule is the wait before each retry of an HTTP delivery
// (Svix's): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, so eight attempts over
// about 27.5 hours.
var DefaultRetrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DefaultDisableAfter is how long an HTTP subscription may keep failing
// (no attempt succeeding) before it is disabled: 5 days.
const DefaultDisableAfter = 5 * 24 * time.Hour

// Duration is a time.Duration written in JSON as Go duration text ("5s").
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads duration text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"5s\" or \"2h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("cannot read duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// SubscriptionConfig is the resource's config member.
type SubscriptionConfig struct {
	// RetrySchedule is the wait before each retry of an HTTP delivery; its
	// length is the number of retries. Empty: the service's default
	// (DefaultRetrySchedule unless configured).
	RetrySchedule []Duration `json:"retry_schedule,omitempty"`
}

// Schedule returns the retry schedule, def when none is set.
func (c SubscriptionConfig) Schedule(def []time.Duration) []time.Duration {
	if len(c.RetrySchedule) == 0 {
		return def
	}
	out := make([]time.Duration, len(c.RetrySchedule))
	for i, d := range c.RetrySchedule {
		out[i] = time.Duration(d)
	}
	return out
}

// ProtocolSettings are a subscription's protocol settings. For HTTP the
// signing secret is write-only: it is answered once, when the server made
// it. For NATS they say how to read the subscription's consumer and are
// read-only.
type ProtocolSettings struct {
	// Secret is the HTTP signing secret ("whsec_" + base64 of 24 to 64
	// bytes).
	Secret string `json:"secret,omitempty"`
	// Stream, Consumer, APIPrefix and InboxPrefix locate a NATS
	// subscription's consumer: jetstream.NewWithAPIPrefix(nc, APIPrefix),
	// nats.CustomInboxPrefix(InboxPrefix).
	Stream      string `json:"stream,omitempty"`
	Consumer    string `json:"consumer,omitempty"`
	APIPrefix   string `json:"api_prefix,omitempty"`
	InboxPrefix string `json:"inbox_prefix,omitempty"`
}

// Subscription is the resource.
type Subscription struct {
	ID               uuid.UUID          `json:"id"`
	Protocol         string             `json:"protocol"`
	Sink             string             `json:"sink"`
	Types            []string           `json:"types"`
	Filters          []json.RawMessage  `json:"filters"`
	ProtocolSettings *ProtocolSettings  `json:"protocolsettings,omitempty"`
	Config           SubscriptionConfig `json:"config"`
	Status           string             `json:"status"`
	DisabledReason   string             `json:"disabled_reason,omitempty"`
	DisabledAt       *time.Time         `json:"disabled_at,omitempty"`
	FailingSince     *time.Time         `json:"failing_since,omitempty"`
	CreatedAt        time.Time          `json:"created_at"`
	UpdatedAt        time.Time          `json:"updated_at"`

	tenant uuid.UUID
}

// Input is a create (POST) or update (PATCH) body. On update, a member left
// out keeps its value. Read-only members of the resource are accepted and
// ignored, so a resource read can be sent back changed.
type Input struct {
	ID               *string             `json:"id,omitempty"`
	Source           *string             `json:"source,omitempty"`
	Types            *[]string           `json:"types,omitempty"`
	Filters          *[]json.RawMessage  `json:"filters,omitempty"`
	Sink             *string             `json:"sink,omitempty"`
	Protocol         *string             `json:"protocol,omitempty"`
	ProtocolSettings *ProtocolSettings   `json:"protocolsettings,omitempty"`
	Config           *SubscriptionConfig `json:"config,omitempty"`
	// Status enables ("active") or disables ("disabled") the subscription.
	Status *string `json:"status,omitempty"`

	// Read-only members, ignored.
	DisabledReason json.RawMessage `json:"disabled_reason,omitempty"`
	DisabledAt     json.RawMessage `json:"disabled_at,omitempty"`
	FailingSince   json.RawMessage `json:"failing_since,omitempty"`
	CreatedAt      json.RawMessage `json:"created_at,omitempty"`
	UpdatedAt      json.RawMessage `json:"updated_at,omitempty"`
}

// invalid collects the field errors of a request.
type invalid struct{ fields []problem.FieldError }

func (v *invalid) add(field, format string, args ...any) {
	v.fields = append(v.fields, problem.FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (v *invalid) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	msg := "invalid subscription: " + v.fields[0].Field + ": " + v.fields[0].Detail
	if len(v.fields) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(v.fields)-1)
	}
	return &problem.Error{Kind: problem.Invalid, Msg: msg, Fields: v.fields}
}

// spec is a validated subscription, what the store writes.
type spec struct {
	protocol string
	sink     string
	types    []string
	filters  []json.RawMessage
	list     filter.List
	config   SubscriptionConfig
	secret   string // a new secret to seal; "" keeps the stored one
	status   string
}

// validate checks in against the current state cur (nil on create) and
// returns the spec to store.
func validate(in Input, cur *Subscription) (spec, error) {
	var v invalid
	var s spec
	if cur != nil {
		s = spec{protocol: cur.Protocol, sink: cur.Sink, types: cur.Types, filters: cur.Filters, config: cur.Config, status: cur.Status}
	} else {
		s.status = StatusActive
	}
	if in.ID != nil && (cur == nil || *in.ID != cur.ID.String()) {
		v.add("id", "the id is assigned by the server; leave it out")
	}
	if in.Source != nil {
		v.add("source", "not supported: select sources with a filter, e.g. {\"exact\":{\"source\":\"/shop\"}}")
	}
	switch {
	case in.Protocol == nil && cur == nil:
		v.add("protocol", "required: HTTP or NATS")
	case in.Protocol != nil && cur != nil && *in.Protocol != cur.Protocol:
		v.add("protocol", "cannot change; create another subscription")
	case in.Protocol != nil && *in.Protocol != ProtocolHTTP && *in.Protocol != ProtocolNATS:
		v.add("protocol", "unsupported protocol %q (supported: HTTP, NATS)", *in.Protocol)
	case in.Protocol != nil:
		s.protocol = *in.Protocol
	}
	if in.Types != nil {
		s.types = normalizeTypes(*in.Types, &v)
	}
	if in.Filters != nil {
		s.filters = *in.Filters
	}
	if s.filters == nil {
		s.filters = []json.RawMessage{}
	}
	if s.types == nil {
		s.types = []string{}
	}
	if in.Config != nil {
		s.config = *in.Config
	}
	if in.Status != nil {
		if *in.Status != StatusActive && *in.Status != StatusDisabled {
			v.add("status", "must be active or disabled")
		} else {
			s.status = *in.Status
		}
	}
	switch s.protocol {
	case ProtocolHTTP:
		if in.Sink != nil {
			s.sink = *in.Sink
		}
		if in.Sink == nil && cur == nil {
			v.add("sink", "required: the URL deliveries are POSTed to")
		} else if msg := checkSink(s.sink); msg != "" {
			v.add("sink", "%s", msg)
		}
		if ps := in.ProtocolSettings; ps != nil {
			if ps.Secret != "" {
				if msg := checkSecret(ps.Secret); msg != "" {
					v.add("protocolsettings.secret", "%s", msg)
				}
				s.secret = ps.Secret
			}
			if ps.Stream != "" || ps.Consumer != "" || ps.APIPrefix != "" || ps.InboxPrefix != "" {
				v.add("protocolsettings", "HTTP subscriptions take only a secret")
			}
		}
		if len(s.config.RetrySchedule) > MaxRetries {
			v.add("config.retry_schedule", "at most %d retries", MaxRetries)
		}
		for i, d := range s.config.RetrySchedule {
			if d <= 0 || time.Duration(d) > MaxRetryDelay {
				v.add(fmt.Sprintf("config.retry_schedule[%d]", i), "each delay must be above 0 and at most %s", MaxRetryDelay)
			}
		}
	case ProtocolNATS:
		if in.Sink != nil && cur != nil && *in.Sink != cur.Sink {
			v.add("sink", "a NATS subscription's sink is the bus PROST runs; leave it out")
		}
		if ps := in.ProtocolSettings; ps != nil && ps.Secret != "" {
			v.add("protocolsettings.secret", "NATS subscriptions authenticate with credentials (GET .../credentials), not a secret")
		}
		if len(s.filters) > 0 {
			v.add("filters", "NATS subscriptions select events by types only, on the server's consumer; use HTTP or the SSE stream (GET /v1/events/stream) for filters")
		}
		if len(s.config.RetrySchedule) > 0 {
			v.add("config.retry_schedule", "NATS subscriptions are read by the client, which acknowledges each message; there is no retry schedule")
		}
	}
	if len(s.filters) > 0 {
		list, errs := filter.Compile("/filters", s.filters)
		for _, e := range errs {
			v.fields = append(v.fields, problem.FieldError{Field: "filters", Pointer: e.Pointer, Detail: e.Msg, Line: e.Line, Column: e.Column})
		}
		s.list = list
	}
	return s, v.err()
}

func normalizeTypes(in []string, v *invalid) []string {
	if len(in) > MaxTypes {
		v.add("types", "at most %d types", MaxTypes)
		return nil
	}
	out := make([]string, 0, len(in))
	for i, t := range in {
		switch {
		case t == "" || len(t) > MaxTypeLen || !utf8.ValidString(t):
			v.add(fmt.Sprintf("types[%d]", i), "a type is 1 to %d bytes of UTF-8", MaxTypeLen)
		case strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			v.add(fmt.Sprintf("types[%d]", i), "a type has no control characters")
		case !slices.Contains(out, t):
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// checkSink returns what is wrong with an HTTP sink, or "".
func checkSink(s string) string {
	if s == "" || len(s) > MaxSinkLen {
		return fmt.Sprintf("must be an http or https URL of at most %d bytes", MaxSinkLen)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "cannot be read as a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http or https URL"
	case u.Host == "" || u.Hostname() == "":
		return "must name a host"
	case u.User != nil:
		return "must not carry credentials; deliveries are signed with the subscription's secret"
	}
	return ""
}

// checkSecret returns what is wrong with a signing secret, or "".
func checkSecret(s string) string {
	const want = "must be \"whsec_\" followed by the base64 of 24 to 64 random bytes"
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return want
	}
	n := 0
	if b, err := base64Decode(b64); err == nil {
		n = len(b)
	}
	if n < 24 || n > 64 {
		return want
	}
	return ""
}

// matches reports whether an event of type typ passes the types list (an
// empty list passes everything).
func typeMatches(types []string, typ string) bool {
	return len(types) == 0 || slices.Contains(types, typ)
}

// rawFilters decodes the stored filters column.
func rawFilters(b []byte) []json.RawMessage {
	var out []json.RawMessage
	if len(bytes.TrimSpace(b)) > 0 {
		_ = json.Unmarshal(b, &out)
	}
	if out == nil {
		out = []json.RawMessage{}
	}
	return out
}
