package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts"
)

// ContractRules gives what ingest takes from a tenant's contract for an
// event type; *contracts.Store implements it.
type ContractRules interface {
	Rules(ctx context.Context, tenant uuid.UUID, eventType string) (contracts.Rules, error)
}

// Ingest checks events at ingest against their tenant's registry and
// contracts, and encrypts the values their contracts classify. It is safe
// for concurrent use.
type Ingest struct {
	reg       *Registry
	contracts ContractRules
	keyring   *dataprotect.Keyring
}

// NewIngest returns the ingest check; cs may be nil (no contract rules), kr
// may be nil (no key encryption key: events whose contract classifies data
// are then refused with 503).
func NewIngest(reg *Registry, cs ContractRules, kr *dataprotect.Keyring) *Ingest {
	return &Ingest{reg: reg, contracts: cs, keyring: kr}
}

// CheckEvents checks a request's events for tenant:
//
//   - each event's data is validated against the version its dataschema
//     names (urn:prost:schema:<type>:<n> or .../v1/registry/subjects/<type>/versions/<n>,
//     which must be registered), or else against the latest version of its
//     type;
//   - an event whose type has no version follows the tenant's
//     unregistered-types policy: reject (an error saying how to register)
//     or accept (stored without validation);
//   - an event of a contract with payment data is refused when its data
//     holds a card-number-like value;
//   - an event of a contract that classifies data must carry its data
//     subject's id (a problem naming the contract's data_subject pointer),
//     and must have JSON data; a type whose contract's data_subject is
//     cause is emitted by PROST only and refused.
//
// When every event passes, the classified values of each event's data are
// encrypted in place (evs[i].Data changes; pkg/dataprotect) under the data
// subject's keys, so nothing after this step sees them in clear.
//
// It returns, per event, the partition key its contract's partition_key
// pointer yields from data ("" when none, or when the event has a
// partitionkey extension; a pseudonym of the value when the pointer names a
// classified value); the slice is nil when no event has one. When any
// event fails, the error is an *IngestError listing every problem (Index is
// the event's position when batch is set, else -1). Other errors are
// failures to read the registry or the keys.
func (in *Ingest) CheckEvents(ctx context.Context, tenant uuid.UUID, evs []cloudevent.Event, batch bool) ([]string, error) {
	var keys []string
	var probs []Problem
	var protect []checked
	for i := range evs {
		idx := -1
		if batch {
			idx = i
		}
		c, ps, err := in.check(ctx, tenant, &evs[i], idx)
		if err != nil {
			return nil, err
		}
		probs = append(probs, ps...)
		if c.key != "" {
			if keys == nil {
				keys = make([]string, len(evs))
			}
			keys[i] = c.key
		}
		if c.policy != nil {
			if protect == nil {
				protect = make([]checked, len(evs))
			}
			protect[i] = c
		}
	}
	if len(probs) > 0 {
		return nil, &IngestError{Problems: probs}
	}
	for i, c := range protect {
		if c.policy == nil {
			continue
		}
		if in.keyring == nil {
			return nil, dataprotect.ErrNoKEK
		}
		if c.keyClassified && c.key != "" {
			// The partition key would show a classified value in clear:
			// a pseudonym keeps the per-key order without it.
			pk, err := in.keyring.Pseudonym(ctx, tenant, c.key)
			if err != nil {
				return nil, err
			}
			keys[i] = pk
		}
		data, err := in.keyring.Protect(ctx, tenant, evs[i].Data, c.policy)
		if err != nil {
			return nil, err
		}
		evs[i].Data = data
	}
	return keys, nil
}

// checked is what check learns of one event.
type checked struct {
	// key is the partition key the contract names ("" for none).
	key string
	// policy is what to encrypt; nil for nothing.
	policy *dataprotect.Policy
	// keyClassified: the partition key is (part of) a classified value.
	keyClassified bool
}

func (in *Ingest) check(ctx context.Context, tenant uuid.UUID, e *cloudevent.Event, idx int) (checked, []Problem, error) {
	var probs []Problem
	add := func(field, pointer, keyword, detail string) {
		probs = append(probs, Problem{Index: idx, Field: field, Pointer: pointer, Keyword: keyword, Detail: detail})
	}
	// data is decoded at most once, for the schema, the card check and the
	// partition key.
	var decoded any
	var decodeErr error
	var decodedOnce bool
	data := func() (any, error) {
		if !decodedOnce {
			decodedOnce = true
			if e.Data != nil {
				decoded, decodeErr = jsonschema.UnmarshalJSON(bytes.NewReader(e.Data))
			}
		}
		return decoded, decodeErr
	}

	sch, ref, ok, err := in.schemaFor(ctx, tenant, e, add)
	if err != nil {
		return checked{}, nil, err
	}
	if ok {
		switch {
		case e.DataBase64 != nil:
			add("data", "", "type", fmt.Sprintf("data must be JSON: %s has a registered schema (%s)", e.Type, ref.URN()))
		default:
			v, err := data()
			if err != nil {
				add("data", "", "", "data is not JSON: "+err.Error())
				break
			}
			for _, de := range validateData(sch, v) {
				add("data", de.pointer, de.keyword, fmt.Sprintf("%s (schema %s)", de.message, ref.URN()))
			}
		}
	}

	var c checked
	if in.contracts != nil {
		rules, err := in.contracts.Rules(ctx, tenant, e.Type)
		if err != nil {
			return checked{}, nil, err
		}
		if rules.EmittedOnly {
			add("type", "", "contract", "events of "+e.Type+" are emitted by PROST from other events (its contract's data_subject is cause): an App cannot record them")
		}
		if pol := rules.Privacy; pol != nil {
			switch {
			case e.DataBase64 != nil:
				add("data", "", "contract", "the contract of "+e.Type+" classifies data: data must be JSON")
			default:
				_, err := pol.SubjectID(e.Data)
				var me *dataprotect.MissingSubjectError
				switch {
				case errors.As(err, &me):
					add("data", me.Pointer, "contract", "the contract of "+e.Type+" classifies data and names "+me.Pointer+" as the data subject's id: "+
						"every event must carry it (a non-empty string or a number), so its values are encrypted under that person's key")
				case err != nil:
					add("data", "", "", "data is not JSON: "+err.Error())
				}
			}
			c.policy = pol
			c.keyClassified = rules.PartitionKey != "" && pol.Covers(rules.PartitionKey)
		}
		if rules.Payment && e.Data != nil {
			if v, err := data(); err == nil {
				if p, found := contracts.FindCardNumber(v); found {
					add("data", p, "contract", "the contract of "+e.Type+" classifies payment data: a card number (13-19 digits passing the Luhn check) must never be sent (PCI DSS)")
				}
			}
		}
		if rules.PartitionKey != "" {
			if _, has := e.Extension("partitionkey"); !has && e.Data != nil {
				if v, err := data(); err == nil {
					c.key = pointerValue(v, rules.PartitionKey)
				}
			}
		}
	}
	return c, probs, nil
}

// schemaFor finds the compiled schema an event's data must match. ok is
// false when there is none to apply (an accepted unregistered type) or a
// problem was reported.
func (in *Ingest) schemaFor(ctx context.Context, tenant uuid.UUID, e *cloudevent.Event, add func(field, pointer, keyword, detail string)) (*jsonschema.Schema, Ref, bool, error) {
	reg := in.reg
	if e.DataSchema != "" {
		ref, named, err := ParseRef(e.DataSchema)
		if err != nil {
			add("dataschema", "", "", err.Error())
			return nil, Ref{}, false, nil
		}
		if named {
			st, err := reg.loadState(ctx, tenant, ref.Subject)
			if err != nil {
				return nil, Ref{}, false, err
			}
			vr, found := st.find(ref.Version)
			if !found {
				add("dataschema", "", "", fmt.Sprintf("%s names version %d of %q, which is not registered (GET /v1/registry/subjects/%s/versions lists the versions)",
					e.DataSchema, ref.Version, ref.Subject, pathEscape(ref.Subject)))
				return nil, Ref{}, false, nil
			}
			sch, err := reg.compiledFor(ctx, tenant, ref.Subject, st, vr)
			if err != nil {
				return nil, Ref{}, false, err
			}
			return sch, ref, true, nil
		}
	}
	st, err := reg.loadState(ctx, tenant, e.Type)
	if err != nil {
		return nil, Ref{}, false, err
	}
	vr, found := st.latest()
	if !found {
		pol, err := reg.unregisteredPolicy(ctx, tenant)
		if err != nil {
			return nil, Ref{}, false, err
		}
		if pol == UnregisteredReject {
			add("type", "", "", fmt.Sprintf("no schema is registered for type %q and this App rejects unregistered types: register one with "+
				"POST /v1/registry/subjects/%s/versions {\"schema\": ...} (or prost schemas register --type %s --file schema.json), "+
				"or accept unregistered types with PUT /v1/registry/config {\"unregistered_types\": \"accept\"}",
				e.Type, pathEscape(e.Type), shellQuote(e.Type)))
		}
		return nil, Ref{}, false, nil
	}
	if e.DataSchema != "" {
		add("dataschema", "", "", fmt.Sprintf("%s does not name a version of this registry: use %s, or leave dataschema out to validate against the latest version",
			e.DataSchema, Ref{Subject: e.Type, Version: vr.version}.URN()))
		return nil, Ref{}, false, nil
	}
	sch, err := reg.compiledFor(ctx, tenant, e.Type, st, vr)
	if err != nil {
		return nil, Ref{}, false, err
	}
	return sch, Ref{Subject: e.Type, Version: vr.version}, true, nil
}

// pointerValue returns the value at a JSON pointer in decoded data as a
// partition key: a string as it is, any other scalar as its JSON text, ""
// when the pointer names nothing or an object or array.
func pointerValue(v any, pointer string) string {
	if pointer == "" || pointer[0] != '/' {
		return ""
	}
	for _, tok := range strings.Split(pointer[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return ""
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return ""
			}
			v = x[i]
		default:
			return ""
		}
	}
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return ""
	}
}

func pathEscape(s string) string { return url.PathEscape(s) }

func shellQuote(s string) string {
	if strings.ContainsAny(s, " '\"$`\\*?[]{}()<>|&;#~!") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
