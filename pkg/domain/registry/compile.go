package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/prost-platform/prost/pkg/schemacompat"
)

// The two drafts PROST accepts in $schema; a schema without $schema is
// draft 2020-12.
const (
	Draft2020 = "https://json-schema.org/draft/2020-12/schema"
	Draft07   = "http://json-schema.org/draft-07/schema#"
)

// maxErrorsPerEvent bounds the validation errors reported for one event.
const maxErrorsPerEvent = 20

var printer = message.NewPrinter(language.English)

// parseSchema reads schema text: one JSON object or boolean, in draft
// 2020-12 or draft-07. The result keeps numbers as json.Number, as both the
// compatibility checker and the validator want.
func parseSchema(text []byte) (any, error) {
	doc, err := schemacompat.ParseSchema(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	if obj, ok := doc.(map[string]any); ok {
		if v, ok := obj["$schema"]; ok {
			s, _ := v.(string)
			if !acceptedDraft(s) {
				return nil, fmt.Errorf("%w: $schema %q: PROST accepts draft 2020-12 (%s, the default) and draft-07 (%s)",
					ErrInvalidSchema, s, Draft2020, Draft07)
			}
		}
	}
	return doc, nil
}

func acceptedDraft(s string) bool {
	s = strings.TrimSuffix(s, "#")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	return s == "json-schema.org/draft/2020-12/schema" || s == "json-schema.org/draft-07/schema"
}

// fingerprint is the SHA-256 of the schema's canonical JSON (object members
// sorted, no insignificant space, numbers as written), so that the same
// schema sent with other spacing or member order is recognised.
func fingerprint(doc any) []byte {
	b, _ := json.Marshal(doc) // doc came from JSON: it always marshals
	sum := sha256.Sum256(b)
	return sum[:]
}

// loader resolves the $ref and $schema URLs met while compiling a tenant's
// schema. It only ever answers with schemas registered in this registry
// (the tenant's own, then the platform's), named by their URN or registry
// URL; anything else - files, http(s) URLs, other URNs - is an error, so
// compiling a tenant's schema never touches the file system or the network.
type loader struct {
	ctx    context.Context
	reg    *Registry
	tenant uuid.UUID
}

func (l loader) Load(u string) (any, error) {
	ref, ok, err := ParseRef(u)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("PROST does not load %s: a $ref may only name a schema registered in this registry, as %s<subject>:<version>", u, URNPrefix)
	}
	text, err := l.reg.schemaText(l.ctx, l.tenant, ref)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(text))
}

// refLoader gives the compatibility checker the versions a $ref names,
// as loader gives them to the validator: the tenant's own, then the
// platform's, by URN or registry URL. Any other URI, or a version no longer
// registered (an earlier version may name one deleted since), stays
// unresolved and is compared by its text.
type refLoader struct {
	ctx    context.Context
	reg    *Registry
	tenant uuid.UUID
}

func (l refLoader) Load(u string) (any, error) {
	ref, ok, err := ParseRef(u)
	if err != nil || !ok {
		return nil, fmt.Errorf("%w: %s is not a version of this registry", schemacompat.ErrUnresolvable, u)
	}
	text, err := l.reg.schemaText(l.ctx, l.tenant, ref)
	if errors.Is(err, ErrVersionNotFound) {
		return nil, fmt.Errorf("%w: %w", schemacompat.ErrUnresolvable, err)
	}
	if err != nil {
		return nil, err
	}
	return schemacompat.ParseSchema(text)
}

// compile compiles doc, registered (or to be registered) as ref, for
// tenant (uuid.Nil for platform schemas). Every error wraps
// ErrInvalidSchema.
func (r *Registry) compile(ctx context.Context, tenant uuid.UUID, ref Ref, doc any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(loader{ctx: ctx, reg: r, tenant: tenant})
	loc := ref.URN()
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidSchema, oneLine(err.Error()))
	}
	return sch, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// dataError is one failure of data against its schema.
type dataError struct {
	pointer string // JSON pointer in the instance
	keyword string // the failing keyword
	message string
}

// validateData validates a decoded instance and returns its failures, at
// most maxErrorsPerEvent of them.
func validateData(sch *jsonschema.Schema, v any) []dataError {
	err := sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []dataError{{keyword: "", message: err.Error()}}
	}
	var out []dataError
	collect(ve, &out)
	if len(out) == 0 {
		out = append(out, dataError{pointer: jsonPointer(ve.InstanceLocation), message: oneLine(ve.Error())})
	}
	return out
}

// collect gathers the leaf failures of a validation error tree. A failed
// anyOf or oneOf is reported as itself (the value matched no alternative, or
// more than one) rather than as every alternative's failures.
func collect(e *jsonschema.ValidationError, out *[]dataError) {
	if len(*out) >= maxErrorsPerEvent {
		return
	}
	switch e.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		*out = append(*out, leaf(e))
		return
	}
	if len(e.Causes) == 0 {
		*out = append(*out, leaf(e))
		return
	}
	for _, c := range e.Causes {
		collect(c, out)
	}
}

func leaf(e *jsonschema.ValidationError) dataError {
	kw := ""
	if p := e.ErrorKind.KeywordPath(); len(p) > 0 {
		kw = p[0]
	}
	switch e.ErrorKind.(type) {
	case *kind.FalseSchema:
		kw = "false"
	case *kind.AnyOf:
		kw = "anyOf"
	case *kind.OneOf:
		kw = "oneOf"
	case *kind.AllOf:
		kw = "allOf"
	case *kind.Not:
		kw = "not"
	}
	return dataError{pointer: jsonPointer(e.InstanceLocation), keyword: kw, message: kindMessage(e.ErrorKind)}
}

// kindMessage is the library's English message, except for numeric bounds,
// which it writes with digit grouping ("got 20,000"): those are written
// plainly, exact numbers as they are.
func kindMessage(k jsonschema.ErrorKind) string {
	bound := func(kw string, got, want any) string { return fmt.Sprintf("%s: got %v, want %v", kw, got, want) }
	switch k := k.(type) {
	case *kind.Minimum:
		return bound("minimum", ratText(k.Got), ratText(k.Want))
	case *kind.Maximum:
		return bound("maximum", ratText(k.Got), ratText(k.Want))
	case *kind.ExclusiveMinimum:
		return bound("exclusiveMinimum", ratText(k.Got), ratText(k.Want))
	case *kind.ExclusiveMaximum:
		return bound("exclusiveMaximum", ratText(k.Got), ratText(k.Want))
	case *kind.MultipleOf:
		return bound("multipleOf", ratText(k.Got), ratText(k.Want))
	case *kind.MinLength:
		return bound("minLength", k.Got, k.Want)
	case *kind.MaxLength:
		return bound("maxLength", k.Got, k.Want)
	case *kind.MinItems:
		return bound("minItems", k.Got, k.Want)
	case *kind.MaxItems:
		return bound("maxItems", k.Got, k.Want)
	case *kind.MinProperties:
		return bound("minProperties", k.Got, k.Want)
	case *kind.MaxProperties:
		return bound("maxProperties", k.Got, k.Want)
	}
	return k.LocalizedString(printer)
}

func ratText(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// jsonPointer renders instance location tokens as an RFC 6901 pointer.
func jsonPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}
