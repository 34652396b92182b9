package schemacompat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// ReservedKeyword is the schema keyword listing property names reserved at
// that object level: an array of strings or one comma-separated string, as
// in Confluent's "confluent:reserved" metadata property. A name reserved by
// the previous schema must stay reserved (RESERVED_PROPERTY_REMOVED), and a
// schema must not define a property it reserves
// (RESERVED_PROPERTY_CONFLICTS_WITH_PROPERTY).
const ReservedKeyword = "x-reserved"

// maxRefHops bounds a chain of $ref to $ref to ... within one document.
const maxRefHops = 64

// ParseSchema decodes JSON schema text into the form [Diff] and [Check]
// expect, keeping numbers exact as json.Number. It returns an error wrapping
// [ErrInvalidSchema] if the text is not one JSON value or the value is
// neither an object nor a boolean.
func ParseSchema(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: trailing data after the schema", ErrInvalidSchema)
	}
	if err := checkRoot(v); err != nil {
		return nil, err
	}
	return v, nil
}

// rootValue turns what a caller passed as a schema into a decoded value:
// []byte and json.RawMessage are parsed with [ParseSchema]; other values are
// used as they are.
func rootValue(s any) (any, error) {
	switch v := s.(type) {
	case json.RawMessage:
		return ParseSchema(v)
	case []byte:
		return ParseSchema(v)
	default:
		return v, checkRoot(v)
	}
}

func checkRoot(v any) error {
	switch v.(type) {
	case map[string]any, bool:
		return nil
	default:
		return fmt.Errorf("%w: root is %s, want a JSON object or boolean", ErrInvalidSchema, jsonKind(v))
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		if _, ok := toRat(v); ok {
			return "a number"
		}
		return fmt.Sprintf("a %T", v)
	}
}

// node is one schema seen through $ref resolution. A nil m with isFalse
// false never happens: true and non-schema values become an empty map.
type node struct {
	doc *document
	// loc identifies the schema in its document: a JSON pointer (with
	// suffixes for schemas assembled by this package). Two nodes with the
	// same doc, loc and dynamic scope are the same schema.
	loc string
	// path is where the schema's subschemas live: loc, except for a schema
	// this package derived from another by changing a keyword, whose
	// subschemas are still the original's (so their comparisons are shared).
	path string
	// origin, set on a $ref with sibling keywords and on schemas this
	// package assembles, maps each keyword (escaped) to the location its
	// value comes from. Subschemas then keep their real locations.
	origin  map[string]source
	m       map[string]any
	isFalse bool
	// opaqueRef is a reference that does not resolve.
	opaqueRef string
	// scope is the dynamic scope: the resources entered to reach the
	// schema, outermost first.
	scope []*resource
}

// source is where a keyword's value lives.
type source struct {
	doc *document
	loc string
}

// nodeValue stands, in the keyword map of a schema this package assembled,
// for a subschema already resolved elsewhere.
type nodeValue struct{ n node }

var emptyMap = map[string]any{}

// base returns the location under which the value of keyword k lives.
func (n node) base(k string) source {
	if o, ok := n.origin[escapeToken(k)]; ok {
		return o
	}
	return source{doc: n.doc, loc: n.path}
}

// child resolves the subschema raw found under n at the relative pointer p
// ("/keyword/..."), keeping the real location of the keyword's value.
func (n node) child(raw any, p string) node {
	if v, ok := raw.(nodeValue); ok {
		return v.n
	}
	src := source{doc: n.doc, loc: n.path}
	if n.origin != nil && len(p) > 1 {
		tok := p[1:]
		if i := strings.IndexByte(tok, '/'); i >= 0 {
			tok = tok[:i]
		}
		if o, ok := n.origin[tok]; ok {
			src = o
		}
	}
	return src.doc.nodeAt(raw, src.loc+p, n.scope)
}

// get returns a keyword value, or nil for false schemas.
func (n node) get(k string) (any, bool) {
	if n.m == nil {
		return nil, false
	}
	v, ok := n.m[k]
	return v, ok
}

// sub resolves the subschema under keyword k; ok is false when absent.
func (n node) sub(k string) (node, bool) {
	v, ok := n.get(k)
	if !ok {
		return node{}, false
	}
	return n.child(v, "/"+escapeToken(k)), true
}

// list returns the array value of keyword k, or nil.
func (n node) list(k string) []any {
	v, _ := n.get(k)
	l, _ := v.([]any)
	return l
}

// object returns the object value of keyword k, or nil.
func (n node) object(k string) map[string]any {
	v, _ := n.get(k)
	m, _ := v.(map[string]any)
	return m
}

// validationKeywords are the keywords that constrain instances. A schema
// with none of them (and no unresolved $ref) accepts everything.
var validationKeywords = map[string]bool{
	"type": true, "enum": true, "const": true,
	"multipleOf": true, "maximum": true, "exclusiveMaximum": true, "minimum": true, "exclusiveMinimum": true,
	"maxLength": true, "minLength": true, "pattern": true, "format": true,
	"items": true, "prefixItems": true, "additionalItems": true, "unevaluatedItems": true, "contains": true,
	"maxItems": true, "minItems": true, "uniqueItems": true, "maxContains": true, "minContains": true,
	"maxProperties": true, "minProperties": true, "required": true, "properties": true,
	"patternProperties": true, "additionalProperties": true, "unevaluatedProperties": true,
	"dependencies": true, "dependentRequired": true, "dependentSchemas": true, "propertyNames": true,
	"allOf": true, "anyOf": true, "oneOf": true, "not": true, "if": true, "then": true, "else": true,
}

// isEmpty reports whether the schema accepts every instance as far as its
// keywords show: true, {} or a schema of annotations only.
func (n node) isEmpty() bool {
	if n.isFalse || n.opaqueRef != "" {
		return false
	}
	for k, v := range n.m {
		if !validationKeywords[k] {
			continue
		}
		// Keywords whose value cannot constrain anything.
		switch k {
		case "additionalProperties", "unevaluatedProperties", "additionalItems", "unevaluatedItems", "items", "propertyNames":
			if b, ok := v.(bool); ok && b {
				continue
			}
			if m, ok := v.(map[string]any); ok && len(m) == 0 {
				continue
			}
			if nv, ok := v.(nodeValue); ok && nv.n.isEmpty() {
				continue
			}
		case "allOf", "properties", "patternProperties", "required":
			if isEmptyContainer(v) {
				continue
			}
		}
		return false
	}
	return true
}

func isEmptyContainer(v any) bool {
	switch c := v.(type) {
	case []any:
		return len(c) == 0
	case map[string]any:
		return len(c) == 0
	}
	return false
}

// escapeToken escapes one RFC 6901 reference token.
func escapeToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// ---- numbers ----

// toRat converts a decoded JSON number (json.Number, float64, any Go integer
// or float) to an exact rational. NaN, infinities and non-numbers report
// false.
func toRat(v any) (*big.Rat, bool) {
	switch n := v.(type) {
	case *big.Rat:
		return n, n != nil
	case json.Number:
		if !saneExponent(string(n)) {
			return nil, false
		}
		r, ok := new(big.Rat).SetString(string(n))
		return r, ok
	case float64:
		return floatRat(n, 64)
	case float32:
		return floatRat(float64(n), 32)
	case int:
		return new(big.Rat).SetInt64(int64(n)), true
	case int8:
		return new(big.Rat).SetInt64(int64(n)), true
	case int16:
		return new(big.Rat).SetInt64(int64(n)), true
	case int32:
		return new(big.Rat).SetInt64(int64(n)), true
	case int64:
		return new(big.Rat).SetInt64(n), true
	case uint:
		return new(big.Rat).SetUint64(uint64(n)), true
	case uint8:
		return new(big.Rat).SetUint64(uint64(n)), true
	case uint16:
		return new(big.Rat).SetUint64(uint64(n)), true
	case uint32:
		return new(big.Rat).SetUint64(uint64(n)), true
	case uint64:
		return new(big.Rat).SetUint64(n), true
	}
	return nil, false
}

// maxExponent bounds the decimal exponent of a number text this package
// evaluates exactly; beyond it (far past float64) a number is treated as
// malformed, so that "1e999999999" cannot make it build a huge integer.
const maxExponent = 1000

func saneExponent(s string) bool {
	i := strings.IndexAny(s, "eEpP")
	if i < 0 {
		return true
	}
	e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
	return err == nil && e >= -maxExponent && e <= maxExponent
}

// floatRat converts a float through its shortest decimal form, so that a
// float64 decoded from "0.1" is the rational 1/10, as the JSON text says.
func floatRat(f float64, bits int) (*big.Rat, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, false
	}
	return new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, bits))
}

// number is a numeric keyword value: exact, plus its text for messages.
type number struct {
	r    *big.Rat
	text string
}

func numberOf(v any, ok bool) *number {
	if !ok {
		return nil
	}
	r, isNum := toRat(v)
	if !isNum {
		return nil
	}
	return &number{r: r, text: formatNumber(v, r)}
}

func formatNumber(v any, r *big.Rat) string {
	switch n := v.(type) {
	case json.Number:
		return string(n)
	case float64:
		return strconv.FormatFloat(n, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(n), 'g', -1, 32)
	}
	return ratText(r)
}

// ---- canonical JSON ----

// canonical renders a decoded JSON value so that equal JSON values (numbers
// compared exactly, object members in any order) render equally.
func canonical(v any) string {
	var b strings.Builder
	writeCanonical(&b, v, 0)
	return b.String()
}

func writeCanonical(b *strings.Builder, v any, depth int) {
	if depth > 200 {
		b.WriteString("…")
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		b.WriteString(strconv.Quote(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e, depth+1)
		}
		b.WriteByte(']')
	case nodeValue:
		// An assembled schema's subschema: named by where it comes from.
		b.WriteString("<")
		b.WriteString(nodeKey(x.n))
		b.WriteString(">")
	case map[string]any:
		keys := sortedKeys(x)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			writeCanonical(b, x[k], depth+1)
		}
		b.WriteByte('}')
	default:
		if r, ok := toRat(v); ok {
			b.WriteString(r.RatString())
			return
		}
		fmt.Fprintf(b, "%T(%v)", v, v)
	}
}

// display renders a JSON value compactly for messages, cut to a sane size.
func display(v any) string {
	s := canonical(v)
	if r, ok := toRat(v); ok {
		s = formatNumber(v, r)
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---- JSON types ----

// typeSet is a set of JSON Schema instance types. number includes integer.
type typeSet uint8

const (
	tNull typeSet = 1 << iota
	tBoolean
	tObject
	tArray
	tString
	tInteger
	tNonInteger // numbers that are not integers; "number" is tInteger|tNonInteger

	tNumber = tInteger | tNonInteger
	tAll    = tNull | tBoolean | tObject | tArray | tString | tNumber
)

func typeFromName(s string) typeSet {
	switch s {
	case "null":
		return tNull
	case "boolean":
		return tBoolean
	case "object":
		return tObject
	case "array":
		return tArray
	case "string":
		return tString
	case "integer":
		return tInteger
	case "number":
		return tNumber
	}
	return 0
}

// declaredTypes returns the types the type keyword allows: all of them when
// it is absent or malformed.
func declaredTypes(n node) typeSet {
	if n.isFalse {
		return 0
	}
	v, ok := n.get("type")
	if !ok {
		return tAll
	}
	switch t := v.(type) {
	case string:
		if s := typeFromName(t); s != 0 {
			return s
		}
	case []any:
		var s typeSet
		for _, e := range t {
			name, _ := e.(string)
			s |= typeFromName(name)
		}
		if s != 0 {
			return s
		}
	}
	return tAll
}

// names lists the set's types in a fixed order, number folding integer in.
func (s typeSet) names() []string {
	if s == tAll {
		return []string{"any"}
	}
	var out []string
	for _, e := range []struct {
		t    typeSet
		name string
	}{{tNull, "null"}, {tBoolean, "boolean"}, {tObject, "object"}, {tArray, "array"}, {tString, "string"}} {
		if s&e.t != 0 {
			out = append(out, e.name)
		}
	}
	switch {
	case s&tNumber == tNumber:
		out = append(out, "number")
	case s&tInteger != 0:
		out = append(out, "integer")
	case s&tNonInteger != 0:
		out = append(out, "number (non-integer)")
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func (s typeSet) String() string { return strings.Join(s.names(), ", ") }

// splitTypes splits a set into the single-type schemas a "type" keyword can
// express ("number" staying whole).
func (s typeSet) split() []string {
	var out []string
	for _, e := range []struct {
		t    typeSet
		name string
	}{{tNull, "null"}, {tBoolean, "boolean"}, {tObject, "object"}, {tArray, "array"}, {tString, "string"}} {
		if s&e.t != 0 {
			out = append(out, e.name)
		}
	}
	switch {
	case s&tNumber == tNumber:
		out = append(out, "number")
	case s&tInteger != 0:
		out = append(out, "integer")
	case s&tNonInteger != 0:
		out = append(out, "number")
	}
	return out
}
