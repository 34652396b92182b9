// Package contracts reads, lints and stores event contracts: one document
// per event type saying who owns it, what its data means and how it must be
// handled (contract level, schema, compatibility, partition key,
// idempotency, retries and dead letters, data classification, purpose,
// retention, audit).
//
// [Lint] applies PROST's decision gates to a contract:
//
//   - Gate A (boundaries): an event consumed by another service than its
//     owner needs at least a standard contract.
//   - Gate B (semantics): ordered => partition_key; dlq => retry;
//     at-least-once delivery (the default) => idempotency.
//   - Gate C (security): personal (and sensitive) data => purpose and
//     retention, per classified field; classified data => the data
//     subject's pointer (values are encrypted per data subject); payment
//     data => no field that can hold a card number or CVV; a strong
//     contract => data classification, retention and audit.
//
// and the minimum of every level (light: schema and compatibility;
// standard and strong: a retry policy as well, for events delivered
// at-least-once). Every finding names its
// gate (or level) and the field.
//
// At ingest (pkg/domain/registry), a contract's partition_key names the event's
// partition key when the event has no partitionkey extension, and an event
// of a contract holding payment data is refused when its data holds a
// card-number-like value ([FindCardNumber]). Every classified value is
// encrypted under its data subject's key ([Contract.Policy],
// pkg/dataprotect).
package contracts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/schemacompat"
)

// Levels of a contract.
const (
	LevelLight    = "light"
	LevelStandard = "standard"
	LevelStrong   = "strong"
)

// Delivery guarantees a contract may declare.
const (
	DeliveryAtLeastOnce = "at-least-once"
	DeliveryAtMostOnce  = "at-most-once"
	DeliveryExactlyOnce = "exactly-once"
)

// SubjectCause is the data_subject of events PROST emits from other events,
// whose classified values stay under the causing event's keys.
const SubjectCause = "cause"

// Data classes of the classification map.
const (
	ClassPersonal  = "personal"
	ClassSensitive = "sensitive"
	ClassPayment   = "payment"
)

// Contract is one event type's contract. The same document is read from
// YAML files (contracts/*.yaml) and JSON bodies (/v1/contracts).
type Contract struct {
	// Type is the CloudEvents type the contract governs. Required.
	Type string `json:"type" yaml:"type"`
	// Owner is the team or service that produces the event and answers for
	// it. Required.
	Owner string `json:"owner" yaml:"owner"`
	// Description says what happened when this event is recorded. Required.
	Description string `json:"description" yaml:"description"`
	// Level is light, standard or strong. Required.
	Level string `json:"level" yaml:"level"`
	// Schema names the data's JSON Schema in the registry:
	// urn:prost:schema:<type>:<version>.
	Schema string `json:"schema,omitempty" yaml:"schema,omitempty"`
	// Compatibility is the registry mode new schema versions must meet
	// (BACKWARD, FULL_TRANSITIVE ...).
	Compatibility string `json:"compatibility,omitempty" yaml:"compatibility,omitempty"`
	// Consumers are the services that consume the event. One other than
	// the owner makes the event cross a service boundary (gate A).
	Consumers []string `json:"consumers,omitempty" yaml:"consumers,omitempty"`
	// Delivery is at-least-once (the default: what PROST's consumers
	// give), at-most-once or exactly-once (written in the same transaction
	// as its cause and never redelivered).
	Delivery string `json:"delivery,omitempty" yaml:"delivery,omitempty"`
	// Ordered says consumers rely on per-key order (gate B: needs
	// partition_key).
	Ordered bool `json:"ordered,omitempty" yaml:"ordered,omitempty"`
	// PartitionKey is a JSON pointer into data (/order_id). At ingest its
	// value is the partition key of an event without a partitionkey
	// extension.
	PartitionKey string `json:"partition_key,omitempty" yaml:"partition_key,omitempty"`
	// Idempotency says what identifies a duplicate.
	Idempotency *Idempotency `json:"idempotency,omitempty" yaml:"idempotency,omitempty"`
	// Retry is the consumers' retry policy.
	Retry *Retry `json:"retry,omitempty" yaml:"retry,omitempty"`
	// DLQ says events that exhaust their retries go to the dead-letter
	// queue (gate B: needs retry).
	DLQ bool `json:"dlq,omitempty" yaml:"dlq,omitempty"`
	// DataSubject is the JSON pointer into data of the id of the person the
	// classified values are about (/user_id). Required with a
	// classification: each value is encrypted under that person's key, which
	// an erasure destroys. SubjectCause ("cause") says the event is emitted
	// by PROST from another event (a rule's decision or emit action) and its
	// classified values are copies that stay encrypted under the keys of the
	// causing event's data subject; Apps cannot record such events.
	DataSubject string `json:"data_subject,omitempty" yaml:"data_subject,omitempty"`
	// Classification maps JSON pointers into data to personal, sensitive or
	// payment, each optionally with its own purpose and retention.
	Classification Classification `json:"classification,omitempty" yaml:"classification,omitempty"`
	// Purpose says why personal data is collected (gate C), for every
	// classified field without a purpose of its own.
	Purpose string `json:"purpose,omitempty" yaml:"purpose,omitempty"`
	// Retention is how long classified values are kept (the events
	// themselves are kept forever; a value past its retention reads
	// {"erased":true}), for every classified field without a retention of
	// its own: <n>s, <n>h, <n>d, <n>w, <n>m (months), <n>y or forever.
	Retention string `json:"retention,omitempty" yaml:"retention,omitempty"`
	// Audit says every event is appended to the tenant's hash-chained audit
	// log.
	Audit bool `json:"audit,omitempty" yaml:"audit,omitempty"`
}

// Idempotency names what identifies a duplicate: CloudEvents attributes
// (source, id, ...) and/or JSON pointers into data.
type Idempotency struct {
	Key []string `json:"key" yaml:"key"`
}

// Retry is a retry policy: attempts in all and the waits between them.
type Retry struct {
	MaxAttempts int      `json:"max_attempts" yaml:"max_attempts"`
	Backoff     []string `json:"backoff,omitempty" yaml:"backoff,omitempty"`
}

// ErrSyntax wraps a document that cannot be read as a contract.
var ErrSyntax = errors.New("contracts: cannot read the contract")

// ParseYAML reads one contract from YAML, refusing unknown fields.
func ParseYAML(b []byte) (*Contract, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Contract
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the document is empty", ErrSyntax)
		}
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: one contract per file", ErrSyntax)
	}
	return &c, nil
}

// ParseJSON reads one contract from JSON, refusing unknown fields.
func ParseJSON(b []byte) (*Contract, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Contract
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the contract", ErrSyntax)
	}
	return &c, nil
}

// Finding is one lint failure.
type Finding struct {
	// Gate is "A", "B" or "C" for a decision gate, "level" for a level's
	// minimum, or "contract" for a malformed field.
	Gate string `json:"gate"`
	// Field is the contract field at fault.
	Field string `json:"field"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
}

func (f Finding) String() string {
	g := f.Gate
	switch g {
	case "A", "B", "C":
		g = "gate " + g
	}
	return g + ": " + f.Field + ": " + f.Message
}

// LintOptions supplies what lint cannot know from the contract alone.
type LintOptions struct {
	// Schema returns the decoded JSON Schema the contract's schema field
	// names, so gate C can look for card-number fields in it; nil, or an
	// answer of (nil, nil), skips that part of the check.
	Schema func(ref string) (any, error)
}

var (
	attrRe = regexp.MustCompile(`^[a-z0-9]{1,20}$`)
	// cardFieldRe matches names of fields that hold a card number (PAN) or
	// sensitive authentication data (CVV, track data, PIN), which PCI DSS
	// forbids keeping after authorisation.
	cardFieldRe = regexp.MustCompile(`(?i)(card[_-]?(number|num|no)$|^pan$|primary[_-]?account|^cvv2?$|^cvc2?$|^cid$|security[_-]?code|card[_-]?verification|^track[_-]?[12]?(data)?$|^pin$|pin[_-]?block)`)
)

// Lint checks a contract: its fields are well formed, its level's minimum
// is met and gates A, B and C pass. It returns every finding, or none.
func Lint(c *Contract, opts LintOptions) []Finding {
	var out []Finding
	add := func(gate, field, format string, args ...any) {
		out = append(out, Finding{Gate: gate, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	// Well-formed fields.
	if strings.TrimSpace(c.Type) == "" {
		add("contract", "type", "required: the CloudEvents type the contract governs")
	} else if len(c.Type) > 255 {
		add("contract", "type", "at most 255 bytes")
	}
	if strings.TrimSpace(c.Owner) == "" {
		add("contract", "owner", "required: the team or service that answers for the event")
	}
	if strings.TrimSpace(c.Description) == "" {
		add("contract", "description", "required: what happened when this event is recorded")
	}
	switch c.Level {
	case LevelLight, LevelStandard, LevelStrong:
	case "":
		add("contract", "level", "required: light, standard or strong")
	default:
		add("contract", "level", "%q: want light, standard or strong", c.Level)
	}
	if c.Schema != "" && !strings.HasPrefix(c.Schema, "urn:prost:schema:") && !strings.Contains(c.Schema, "/v1/registry/subjects/") {
		add("contract", "schema", "%q: name a registered version, as urn:prost:schema:<type>:<version>", c.Schema)
	}
	if c.Compatibility != "" {
		if _, err := schemacompat.ParseMode(c.Compatibility); err != nil {
			add("contract", "compatibility", "%q: want BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE", c.Compatibility)
		}
	}
	switch c.Delivery {
	case "", DeliveryAtLeastOnce, DeliveryAtMostOnce, DeliveryExactlyOnce:
	default:
		add("contract", "delivery", "%q: want at-least-once, at-most-once or exactly-once", c.Delivery)
	}
	if c.PartitionKey != "" && !strings.HasPrefix(c.PartitionKey, "/") {
		add("contract", "partition_key", "%q: a JSON pointer into data, such as /order_id", c.PartitionKey)
	}
	if c.Idempotency != nil {
		if len(c.Idempotency.Key) == 0 {
			add("contract", "idempotency.key", "list what identifies a duplicate: CloudEvents attributes (source, id) and/or JSON pointers into data")
		}
		for _, k := range c.Idempotency.Key {
			if !attrRe.MatchString(k) && !strings.HasPrefix(k, "/") {
				add("contract", "idempotency.key", "%q: a CloudEvents attribute name or a JSON pointer into data", k)
			}
		}
	}
	if c.Retry != nil {
		if c.Retry.MaxAttempts < 1 {
			add("contract", "retry.max_attempts", "at least 1")
		}
		for _, b := range c.Retry.Backoff {
			if d, err := time.ParseDuration(b); err != nil || d <= 0 {
				add("contract", "retry.backoff", "%q: a positive Go duration such as 5s or 2m", b)
			}
		}
	}
	for _, p := range c.Classification.Pointers() {
		if _, err := dataprotect.ParsePointer(p); err != nil {
			add("contract", "classification", "%q: a JSON pointer into data, such as /email", p)
		}
		switch cl := c.Classification[p].Class; cl {
		case ClassPersonal, ClassSensitive, ClassPayment:
		default:
			add("contract", "classification", "%s: %q: want personal, sensitive or payment", p, cl)
		}
		if r := c.Classification[p].Retention; r != "" {
			if _, err := dataprotect.ParseRetention(r); err != nil {
				add("contract", "classification", "%s: retention %q: %v", p, r, dataprotect.ErrRetention)
			}
		}
	}
	if c.Retention != "" {
		if _, err := dataprotect.ParseRetention(c.Retention); err != nil {
			add("contract", "retention", "%q: %v", c.Retention, dataprotect.ErrRetention)
		}
	}
	if c.DataSubject != "" && c.DataSubject != SubjectCause {
		if _, err := dataprotect.ParsePointer(c.DataSubject); err != nil {
			add("contract", "data_subject", "%q: a JSON pointer into data, such as /user_id (or cause)", c.DataSubject)
		}
	}

	// The minimum of each level.
	if c.Level != "" {
		lvl := "level " + c.Level
		if c.Schema == "" {
			add(lvl, "schema", "every contract names its schema (urn:prost:schema:<type>:<version>)")
		}
		if c.Compatibility == "" {
			add(lvl, "compatibility", "every contract names the compatibility mode of its schema")
		}
		atLeastOnce := c.Delivery == "" || c.Delivery == DeliveryAtLeastOnce
		if (c.Level == LevelStandard || c.Level == LevelStrong) && atLeastOnce && c.Retry == nil {
			add(lvl, "retry", "a %s contract of an event delivered to consumers states its retry policy (max_attempts, backoff)", c.Level)
		}
	}

	// Gate A: boundaries.
	var others []string
	for _, s := range c.Consumers {
		if s != c.Owner {
			others = append(others, s)
		}
	}
	if len(others) > 0 && c.Level == LevelLight {
		add("A", "level", "the event crosses services (consumed by %s): it needs at least a standard contract", strings.Join(others, ", "))
	}

	// Gate B: semantics.
	if c.Ordered && c.PartitionKey == "" {
		add("B", "partition_key", "an ordered event needs a partition key (a JSON pointer into data)")
	}
	if c.DLQ && c.Retry == nil {
		add("B", "retry", "an event with a dead-letter queue needs a retry policy")
	}
	if (c.Delivery == "" || c.Delivery == DeliveryAtLeastOnce) && (c.Idempotency == nil || len(c.Idempotency.Key) == 0) {
		add("B", "idempotency", "at-least-once delivery (the default) needs an idempotency key, e.g. key: [source, id]")
	}

	// Gate C: security.
	classes := map[string]bool{}
	for _, p := range c.Classification.Pointers() {
		cl := c.Classification[p].Class
		classes[cl] = true
		if cl != ClassPersonal && cl != ClassSensitive {
			continue
		}
		if strings.TrimSpace(c.PurposeOf(p)) == "" {
			add("C", "purpose", "%s: %s data needs a stated purpose (the contract's purpose, or the field's own)", p, cl)
		}
		if c.RetentionOf(p) == "" {
			add("C", "retention", "%s: %s data needs a retention period (the contract's retention, or the field's own)", p, cl)
		}
	}
	if len(c.Classification) > 0 && c.DataSubject == "" {
		add("C", "data_subject", "classified data is encrypted per data subject: name the JSON pointer of the data subject's id, such as /user_id")
	}
	if classes[ClassPayment] {
		for _, p := range c.Classification.Pointers() {
			if name := lastToken(p); cardFieldRe.MatchString(name) {
				add("C", "classification", "%s: a payment event must not carry a card number or card security code (PCI DSS)", p)
			}
		}
		if opts.Schema != nil && c.Schema != "" {
			doc, err := opts.Schema(c.Schema)
			if err != nil {
				add("contract", "schema", "%s: %v", c.Schema, err)
			}
			for _, p := range cardFields(doc, "") {
				add("C", "schema", "%s: the schema has a field %s that can hold a card number or card security code; a payment event must not (PCI DSS)", c.Schema, p)
			}
		}
	}
	if c.Level == LevelStrong {
		if len(c.Classification) == 0 {
			add("C", "classification", "a strong contract classifies its data (personal, sensitive, payment per field)")
		}
		if c.Retention == "" {
			add("C", "retention", "a strong contract states its retention")
		}
		if !c.Audit {
			add("C", "audit", "a strong contract is audited (audit: true)")
		}
	}
	return out
}

// HasPayment reports whether the contract classifies any field as payment.
func (c *Contract) HasPayment() bool {
	for _, cl := range c.Classification {
		if cl.Class == ClassPayment {
			return true
		}
	}
	return false
}

func lastToken(p string) string {
	i := strings.LastIndexByte(p, '/')
	t := p[i+1:]
	return strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
}

// cardFields returns the pointers (in schema terms) of properties whose
// names suggest a card number or security code, anywhere in a schema.
func cardFields(doc any, at string) []string {
	var out []string
	switch v := doc.(type) {
	case map[string]any:
		for _, k := range sortedAny(v) {
			sub := v[k]
			p := at + "/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
			if k == "properties" {
				if props, ok := sub.(map[string]any); ok {
					for _, name := range sortedAny(props) {
						pp := p + "/" + strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
						if cardFieldRe.MatchString(name) {
							out = append(out, "#"+pp)
						}
						out = append(out, cardFields(props[name], pp)...)
					}
					continue
				}
			}
			out = append(out, cardFields(sub, p)...)
		}
	case []any:
		for i, sub := range v {
			out = append(out, cardFields(sub, fmt.Sprintf("%s/%d", at, i))...)
		}
	}
	return out
}

func sortedAny(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
