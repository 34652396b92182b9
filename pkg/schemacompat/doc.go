// Package schemacompat decides whether a new version of a JSON Schema
// (draft-07 or 2020-12; draft-04 and 2019-09 keywords are read too) is
// compatible with earlier versions, the way a schema registry does before it
// accepts the version. It recognises every change type of the Confluent
// json-schema-provider diff, with both of its policies, plus a few kinds
// Confluent does not compare.
//
// # Direction
//
// [Diff](previous, next, policy) works in the backward direction: can a
// reader using next read data written with previous? Each [Difference] it
// finds carries a [ChangeType], a pointer, a message and the verdict under
// the policy; [IsCompatible] folds the verdicts. Every compatibility mode is
// built from that one function, as in Confluent and Apicurio.
//
// # Modes
//
// [Check] applies a [Mode] to a subject's versions: BACKWARD compares the
// new version with the latest (Diff(latest, next)); FORWARD swaps the
// arguments (Diff(next, latest): the latest must read new data); FULL does
// both; the _TRANSITIVE variants compare with every earlier version instead
// of only the latest; NONE accepts anything. A transitive mode can fail
// where its plain form passes, because compatibility is not transitive and
// earlier versions may have been registered under another mode: with v1
// {"maximum": 20}, v2 {"maximum": 10} and a new {"maximum": 15}, BACKWARD
// passes (v2 to new increases the bound) and BACKWARD_TRANSITIVE fails (v1
// to new decreases it).
//
// # Policies
//
// [PolicyStrict] (the default, also the zero value "") and [PolicyLenient]
// pick a column of the change-type table ([ChangeTypes] lists every type,
// [ChangeType.CompatibleUnder] gives its verdict). They differ only for
// object content models: STRICT assumes an open content model may have let
// producers send any extra property with any value, so adding a constrained
// property to it is incompatible; LENIENT assumes producers only sent what
// the schema defined, so adding optional properties to open models and
// closing or narrowing additionalProperties / unevaluatedProperties are
// accepted.
//
// # Pointers
//
// [Difference.Pointer] is a JSON pointer in URI-fragment form, such as
// "#/properties/order/properties/items/items/properties/amount/maximum",
// with "~" and "/" inside names escaped as "~0" and "~1" (RFC 6901) and
// nothing percent-encoded; "#" is the root. It names the keyword that
// changed (".../maximum", ".../type", ".../enum", ".../format") or the
// subschema added or removed (".../properties/name", ".../items/2"). It
// addresses the next schema, or the previous one for something only the
// previous schema has. Two pointers are not schema locations:
// "/required/<name>" (required is an array; the token names the property)
// and "/x-reserved" (see [ReservedKeyword]). Differences inside allOf /
// anyOf / oneOf use the index of the new subschema the old one was paired
// with. A $ref is transparent: a change inside a referenced definition is
// reported under the pointer of each schema that uses it
// ("#/properties/price/minimum", not "#/$defs/money/minimum"), and a
// definition nothing uses is not compared.
//
// # Input
//
// [Checker] holds a policy and a [Loader] for references to other
// documents; [Diff] and [Check] are its methods with no Loader.
//
// Schemas are decoded JSON: map[string]any, []any, string, bool, nil and
// numbers as json.Number (use [ParseSchema] or a json.Decoder with
// UseNumber, which keeps numbers exact) or float64 (plain json.Unmarshal);
// any Go integer or float type also works, and so does a []byte or
// json.RawMessage holding the JSON text. A root that is not an object or a
// boolean is an error ([ErrInvalidSchema]); a value that is not a schema
// where a subschema is expected (a number under properties, say) is treated
// as the empty schema {}; malformed keyword values (a string maxLength) are
// treated as absent. Diff never panics and never modifies its input.
//
// References resolve as the validator resolves them (the registry compiles
// schemas with santhosh-tekuri/jsonschema): a $ref is resolved against the
// base URI of the resource it is in, to a subschema by its $id (absolute,
// or relative to the base URI; draft-04: id), to a plain-name fragment
// ($anchor, $dynamicAnchor, or a draft-06/07 "$id": "#name"), or to a JSON
// pointer from that resource ("#", "#/$defs/...", "#/definitions/...").
// $dynamicRef and $recursiveRef follow the dynamic scope: the outermost
// resource entered on the way that declares the same $dynamicAnchor (or
// $recursiveAnchor true) is the target. $schema picks the draft of a
// resource (2020-12 when absent): before 2019-09, the siblings of a $ref
// are ignored, as the validator ignores them; from it on they override the
// referenced keywords. A reference to another document (the registry's
// urn:prost:schema:<subject>:<version>) is loaded by the [Checker]'s
// [Loader], once per call; without one, or when the Loader does not know
// it, it stays unresolved. Unresolved references are compared by their
// text: added is SCHEMA_ADDED, removed is SCHEMA_REMOVED, changed is
// TYPE_CHANGED. A cycle of references compares as equal where it closes, so
// a change inside a recursive definition is reported once, where it is
// first reached. Patterns are compiled with Go's RE2 engine; a pattern it
// cannot compile (lookaround, backreferences) matches no name.
//
// # How changes are judged
//
// Keywords are compared one by one, like Confluent does per schema type.
// Type-specific keywords are compared only when both schemas accept that
// JSON type (a string bound does not matter when the type changed from
// string to integer; TYPE_CHANGED already says so). The accepted types of a
// schema are its type keyword narrowed by const, enum and the types of
// allOf / anyOf / oneOf, so {"type": ["string", "null"]} and
// {"oneOf": [{"type": "string"}, {"type": "null"}]} accept the same types.
//
// Numbers are compared exactly (no float rounding), and as sets: each end
// of the range (minimum with exclusiveMinimum, maximum with
// exclusiveMaximum) as a whole, multipleOf, and the integer type, which
// makes the accepted numbers a lattice (for integers, exclusiveMinimum 10 is
// minimum 11; integers that are multiples of 1.5 are the multiples of 3).
// The keyword kinds are reported as Confluent reports them (multipleOf 0.1
// to 0.01 is MULTIPLE_OF_REDUCED, 0.3 to 0.1 too) unless one looks
// narrowing and yet every number the previous schema accepted is still
// accepted: then LOWER_BOUND_IS_COVERED, UPPER_BOUND_IS_COVERED or
// MULTIPLE_OF_IS_COVERED replaces the keyword kinds of that end (so
// exclusiveMinimum 10 to minimum 5 is compatible; minimum 5 to
// exclusiveMinimum 10 stays EXCLUSIVE_MINIMUM_ADDED and MINIMUM_REMOVED).
// Draft-04 boolean exclusiveMaximum / exclusiveMinimum turn maximum /
// minimum into the exclusive bound. const is a one-element enum; an enum or
// const added is ENUM_ARRAY_NARROWED and removed is ENUM_ARRAY_EXTENDED.
//
// Boolean schemas: true is {}; false to anything is TYPE_EXTENDED, anything
// to false is TYPE_NARROWED (at the schema's pointer).
//
// Content models (objects; arrays likewise with tuple items): open means
// additionalProperties absent or true, no patternProperties and
// unevaluatedProperties absent or true; closed means the property falls to
// a false additionalProperties (or unevaluatedProperties); partially open
// means it falls to a patternProperties, additionalProperties or
// unevaluatedProperties schema. When a property is added or removed, the
// "covered" verdicts come from comparing its schema with the schema(s) the
// other side applies to that name; those probe comparisons are summarised in
// the message, not reported as differences (so LENIENT can accept an
// uncovered property as its table says). An added property whose schema is
// false in an open model is PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL
// (incompatible under both policies).
//
// Combinations: allOf is a product type, anyOf and oneOf sum types. When
// both schemas use the same keyword, subschemas are paired by a maximum
// matching over compatible pairs (COMBINED_TYPE_SUBSCHEMAS_CHANGED when the
// smaller side is not covered, and then each unpaired old subschema is also
// paired with its closest new one, fewest incompatible changes first, whose
// differences are reported to explain why); switching keyword follows
// Confluent
// (anything to anyOf, a singleton to oneOf or to a singleton allOf is
// COMBINED_TYPE_EXTENDED, else COMBINED_TYPE_CHANGED); a schema that is just
// a singleton combination compares through it. Adding a keyword: anyOf /
// oneOf is SUM_TYPE_EXTENDED when an alternative accepts the previous
// schema (split by JSON type if needed), else
// COMBINED_TYPE_SUBSCHEMAS_CHANGED; allOf is COMBINED_TYPE_EXTENDED when
// every subschema accepts the previous schema, else PRODUCT_TYPE_EXTENDED.
// Removing one: allOf is PRODUCT_TYPE_NARROWED; anyOf / oneOf is
// SUM_TYPE_EXTENDED when the new schema accepts every old alternative, else
// COMBINED_TYPE_SUBSCHEMAS_CHANGED. not added is NOT_TYPE_EXTENDED, removed
// NOT_TYPE_NARROWED.
//
// items as one schema: added is SCHEMA_ADDED, removed SCHEMA_REMOVED (at
// "/items"); so is contains.
//
// # Beyond Confluent
//
// FORMAT_ADDED and FORMAT_CHANGED are incompatible, FORMAT_REMOVED
// compatible.
//
// if/then/else (an if with a then and/or an else) is compared in the
// context of the schema it refines, case by case: the then case is the
// schema around the conditional combined with then into one schema, the
// else case the same with else, and a schema without a conditional is the
// same in both cases. So a constraint moved from the schema into a branch
// (or back), or a branch restating the schema, is judged by what each case
// accepts. Differences found in a case are reported at the branch's pointer
// ("/then/required/card") when the branch has what they name, else at the
// schema's, with "(when the if condition holds)" or "(... does not hold)"
// when only one case has them. A conditional added is
// CONDITIONAL_ADDED_IS_COVERED (compatible) when no difference located in a
// branch is incompatible, else CONDITIONAL_ADDED (incompatible); removed is
// CONDITIONAL_REMOVED (compatible). When the if changed (beyond
// annotations), the cases no longer correspond: CONDITIONAL_CHANGED_IS_COVERED
// (compatible) when each new case accepts what each previous case
// accepted, else CONDITIONAL_CHANGED (incompatible), with then compared to
// then and else to else as an explanation. Combining keeps keywords only
// one side has as they are; combines types, enum and const, bounds,
// multipleOf, required, properties (name by name, each with what the other
// side applies to that name), items and allOf; and adds to allOf what
// cannot be combined (two patterns, two not / anyOf / oneOf,
// patternProperties on both sides, tuples), which is exact. The schema's
// unevaluatedProperties and unevaluatedItems do not reach what the branch
// evaluates, as in the validator.
// PROPERTY_NAMES_ADDED is incompatible, PROPERTY_NAMES_REMOVED compatible,
// and two propertyNames schemas are compared as subschemas.
//
// patternProperties keys present in both schemas are compared as
// subschemas. PATTERN_PROPERTY_ADDED is compatible when its schema is empty;
// otherwise it is incompatible when a property both schemas define matches
// it and its schema rejects values of that property, and, for the other
// matching names, judged by what the previous schema applied to them: open
// (additionalProperties absent or true) is incompatible under STRICT,
// compatible under LENIENT (like OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL),
// except a false pattern schema, incompatible under both; a false
// additionalProperties is compatible; an additionalProperties schema is
// compatible when the pattern schema accepts what it accepted, else like
// PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL.
// PATTERN_PROPERTY_REMOVED is compatible when its schema was false or the
// new additionalProperties (or unevaluatedProperties) is open, or is a
// schema accepting what the pattern accepted; otherwise (false, or not
// covering) it is incompatible under STRICT and compatible under LENIENT,
// like PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL. Overlap between patterns
// is not analysed.
//
// Reserved names: [ReservedKeyword] ("x-reserved") at any object level
// lists reserved property names, standing in for Confluent's
// confluent:reserved metadata.
//
// # Limits
//
// unevaluatedProperties and unevaluatedItems are judged against the
// properties and items of the same schema object only (and of a then / else
// branch next to it), not those evaluated through allOf, $ref or the if;
// oneOf is treated like anyOf (overlapping alternatives are not detected); a
// pattern's overlap with other patterns is not analysed; numbers whose
// decimal exponent exceeds 1000 in magnitude are compared as text only; the
// if of a conditional does not narrow its case (a then branch is compared as
// if it applied to all data, which can only report more); ranges and
// multipleOf are not compared with enum or const (a const inside a new range
// still counts as the range added); a schema object with both $ref and
// $dynamicRef is resolved through its $ref; past 8 conditionals nested on
// one path (a branch referring back to its own schema), if/then/else are
// compared keyword by keyword; a side loads at most 256 documents.
//
// Ignored: contentEncoding, contentMediaType, contentSchema, readOnly,
// writeOnly, deprecated, examples, $comment and unknown keywords
// (annotations).
package schemacompat
