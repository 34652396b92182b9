package schemacompat

// ChangeType names one kind of difference between two schemas. The values
// are the Confluent json-schema-provider names (Difference.Type), plus the
// kinds PROST checks beyond Confluent (format, if/then/else, propertyNames
// and patternProperties keys) and the *_IS_COVERED kinds it reports where a
// change looks narrowing but keeps every value.
type ChangeType string

// Annotations and whole schemas.
const (
	// IDChanged: $id (or draft-04 id) changed, added or removed.
	IDChanged ChangeType = "ID_CHANGED"
	// DescriptionChanged: description changed, added or removed.
	DescriptionChanged ChangeType = "DESCRIPTION_CHANGED"
	// TitleChanged: title changed, added or removed.
	TitleChanged ChangeType = "TITLE_CHANGED"
	// DefaultChanged: default changed, added or removed.
	DefaultChanged ChangeType = "DEFAULT_CHANGED"
	// SchemaAdded: a subschema appeared where there was none (items as a
	// single schema, contains, an unresolvable $ref).
	SchemaAdded ChangeType = "SCHEMA_ADDED"
	// SchemaRemoved: a subschema disappeared (items as a single schema,
	// contains, an unresolvable $ref).
	SchemaRemoved ChangeType = "SCHEMA_REMOVED"
	// TypeExtended: the set of accepted JSON types grew (integer to number,
	// string to [string, null], a type keyword removed, false to anything).
	TypeExtended ChangeType = "TYPE_EXTENDED"
	// TypeNarrowed: the set of accepted JSON types shrank (number to integer,
	// a type keyword added, anything to false).
	TypeNarrowed ChangeType = "TYPE_NARROWED"
	// TypeChanged: the sets of accepted JSON types differ in both directions,
	// or two unresolvable $refs differ.
	TypeChanged ChangeType = "TYPE_CHANGED"
)

// Strings.
const (
	// MaxLengthAdded: maxLength added.
	MaxLengthAdded ChangeType = "MAX_LENGTH_ADDED"
	// MaxLengthRemoved: maxLength removed.
	MaxLengthRemoved ChangeType = "MAX_LENGTH_REMOVED"
	// MaxLengthIncreased: maxLength increased.
	MaxLengthIncreased ChangeType = "MAX_LENGTH_INCREASED"
	// MaxLengthDecreased: maxLength decreased.
	MaxLengthDecreased ChangeType = "MAX_LENGTH_DECREASED"
	// MinLengthAdded: minLength added.
	MinLengthAdded ChangeType = "MIN_LENGTH_ADDED"
	// MinLengthRemoved: minLength removed.
	MinLengthRemoved ChangeType = "MIN_LENGTH_REMOVED"
	// MinLengthIncreased: minLength increased.
	MinLengthIncreased ChangeType = "MIN_LENGTH_INCREASED"
	// MinLengthDecreased: minLength decreased.
	MinLengthDecreased ChangeType = "MIN_LENGTH_DECREASED"
	// PatternAdded: pattern added.
	PatternAdded ChangeType = "PATTERN_ADDED"
	// PatternRemoved: pattern removed.
	PatternRemoved ChangeType = "PATTERN_REMOVED"
	// PatternChanged: pattern changed.
	PatternChanged ChangeType = "PATTERN_CHANGED"
)

// Numbers.
const (
	// MaximumAdded: maximum added.
	MaximumAdded ChangeType = "MAXIMUM_ADDED"
	// MaximumRemoved: maximum removed.
	MaximumRemoved ChangeType = "MAXIMUM_REMOVED"
	// MaximumIncreased: maximum increased.
	MaximumIncreased ChangeType = "MAXIMUM_INCREASED"
	// MaximumDecreased: maximum decreased.
	MaximumDecreased ChangeType = "MAXIMUM_DECREASED"
	// MinimumAdded: minimum added.
	MinimumAdded ChangeType = "MINIMUM_ADDED"
	// MinimumRemoved: minimum removed.
	MinimumRemoved ChangeType = "MINIMUM_REMOVED"
	// MinimumIncreased: minimum increased.
	MinimumIncreased ChangeType = "MINIMUM_INCREASED"
	// MinimumDecreased: minimum decreased.
	MinimumDecreased ChangeType = "MINIMUM_DECREASED"
	// ExclusiveMaximumAdded: exclusiveMaximum added (numeric draft-06+ form,
	// or draft-04 "exclusiveMaximum": true turning maximum exclusive).
	ExclusiveMaximumAdded ChangeType = "EXCLUSIVE_MAXIMUM_ADDED"
	// ExclusiveMaximumRemoved: exclusiveMaximum removed.
	ExclusiveMaximumRemoved ChangeType = "EXCLUSIVE_MAXIMUM_REMOVED"
	// ExclusiveMaximumIncreased: exclusiveMaximum increased.
	ExclusiveMaximumIncreased ChangeType = "EXCLUSIVE_MAXIMUM_INCREASED"
	// ExclusiveMaximumDecreased: exclusiveMaximum decreased.
	ExclusiveMaximumDecreased ChangeType = "EXCLUSIVE_MAXIMUM_DECREASED"
	// ExclusiveMinimumAdded: exclusiveMinimum added.
	ExclusiveMinimumAdded ChangeType = "EXCLUSIVE_MINIMUM_ADDED"
	// ExclusiveMinimumRemoved: exclusiveMinimum removed.
	ExclusiveMinimumRemoved ChangeType = "EXCLUSIVE_MINIMUM_REMOVED"
	// ExclusiveMinimumIncreased: exclusiveMinimum increased.
	ExclusiveMinimumIncreased ChangeType = "EXCLUSIVE_MINIMUM_INCREASED"
	// ExclusiveMinimumDecreased: exclusiveMinimum decreased.
	ExclusiveMinimumDecreased ChangeType = "EXCLUSIVE_MINIMUM_DECREASED"
	// MultipleOfAdded: multipleOf added.
	MultipleOfAdded ChangeType = "MULTIPLE_OF_ADDED"
	// MultipleOfRemoved: multipleOf removed.
	MultipleOfRemoved ChangeType = "MULTIPLE_OF_REMOVED"
	// MultipleOfExpanded: the new multipleOf is a multiple of the old one
	// (2 to 4): fewer values are accepted.
	MultipleOfExpanded ChangeType = "MULTIPLE_OF_EXPANDED"
	// MultipleOfReduced: the old multipleOf is a multiple of the new one
	// (4 to 2): more values are accepted.
	MultipleOfReduced ChangeType = "MULTIPLE_OF_REDUCED"
	// MultipleOfChanged: neither multipleOf divides the other (2 to 3).
	MultipleOfChanged ChangeType = "MULTIPLE_OF_CHANGED"
)

// Objects.
const (
	// RequiredAttributeAdded: a property present in both schemas became
	// required, and the new property schema has no default; also a name
	// required without a property definition.
	RequiredAttributeAdded ChangeType = "REQUIRED_ATTRIBUTE_ADDED"
	// RequiredAttributeWithDefaultAdded: a property present in both schemas
	// became required and its new schema has a default.
	RequiredAttributeWithDefaultAdded ChangeType = "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED"
	// RequiredAttributeRemoved: a name is no longer required.
	RequiredAttributeRemoved ChangeType = "REQUIRED_ATTRIBUTE_REMOVED"
	// MaxPropertiesAdded: maxProperties added.
	MaxPropertiesAdded ChangeType = "MAX_PROPERTIES_ADDED"
	// MaxPropertiesRemoved: maxProperties removed.
	MaxPropertiesRemoved ChangeType = "MAX_PROPERTIES_REMOVED"
	// MaxPropertiesIncreased: maxProperties increased.
	MaxPropertiesIncreased ChangeType = "MAX_PROPERTIES_INCREASED"
	// MaxPropertiesDecreased: maxProperties decreased.
	MaxPropertiesDecreased ChangeType = "MAX_PROPERTIES_DECREASED"
	// MinPropertiesAdded: minProperties added.
	MinPropertiesAdded ChangeType = "MIN_PROPERTIES_ADDED"
	// MinPropertiesRemoved: minProperties removed.
	MinPropertiesRemoved ChangeType = "MIN_PROPERTIES_REMOVED"
	// MinPropertiesIncreased: minProperties increased.
	MinPropertiesIncreased ChangeType = "MIN_PROPERTIES_INCREASED"
	// MinPropertiesDecreased: minProperties decreased.
	MinPropertiesDecreased ChangeType = "MIN_PROPERTIES_DECREASED"
	// AdditionalPropertiesAdded: additionalProperties went from false to
	// allowing properties (true, absent or a schema).
	AdditionalPropertiesAdded ChangeType = "ADDITIONAL_PROPERTIES_ADDED"
	// AdditionalPropertiesRemoved: additionalProperties became false.
	AdditionalPropertiesRemoved ChangeType = "ADDITIONAL_PROPERTIES_REMOVED"
	// AdditionalPropertiesExtended: additionalProperties went from a schema
	// to true or absent.
	AdditionalPropertiesExtended ChangeType = "ADDITIONAL_PROPERTIES_EXTENDED"
	// AdditionalPropertiesNarrowed: additionalProperties went from true or
	// absent to a schema.
	AdditionalPropertiesNarrowed ChangeType = "ADDITIONAL_PROPERTIES_NARROWED"
	// DependencyArrayAdded: a property dependency (dependencies or
	// dependentRequired with an array value) was added.
	DependencyArrayAdded ChangeType = "DEPENDENCY_ARRAY_ADDED"
	// DependencyArrayRemoved: a property dependency was removed.
	DependencyArrayRemoved ChangeType = "DEPENDENCY_ARRAY_REMOVED"
	// DependencyArrayExtended: a property dependency names more properties.
	DependencyArrayExtended ChangeType = "DEPENDENCY_ARRAY_EXTENDED"
	// DependencyArrayNarrowed: a property dependency names fewer properties.
	DependencyArrayNarrowed ChangeType = "DEPENDENCY_ARRAY_NARROWED"
	// DependencyArrayChanged: a property dependency names different
	// properties.
	DependencyArrayChanged ChangeType = "DEPENDENCY_ARRAY_CHANGED"
	// DependencySchemaAdded: a schema dependency (dependencies with a schema
	// value, or dependentSchemas) was added.
	DependencySchemaAdded ChangeType = "DEPENDENCY_SCHEMA_ADDED"
	// DependencySchemaRemoved: a schema dependency was removed.
	DependencySchemaRemoved ChangeType = "DEPENDENCY_SCHEMA_REMOVED"
	// PropertyAddedToOpenContentModel: a property whose new schema is false
	// was added to an open content model: a name the old schema accepted with
	// any value is now forbidden. (Confluent 8 deprecated this name in favour
	// of the three kinds below; PROST keeps it for this case.)
	PropertyAddedToOpenContentModel ChangeType = "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
	// RequiredPropertyAddedToOpenContentModel: a required property without a
	// default was added to an open content model.
	RequiredPropertyAddedToOpenContentModel ChangeType = "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
	// RequiredPropertyWithDefaultAddedToOpenContentModel: a required property
	// with a default was added to an open content model.
	RequiredPropertyWithDefaultAddedToOpenContentModel ChangeType = "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL"
	// OptionalPropertyAddedToOpenContentModel: an optional property with a
	// non-empty schema was added to an open content model.
	OptionalPropertyAddedToOpenContentModel ChangeType = "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
	// PropertyWithEmptySchemaAddedToOpenContentModel: an optional property
	// with an empty schema ({} or true) was added to an open content model.
	PropertyWithEmptySchemaAddedToOpenContentModel ChangeType = "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
	// RequiredPropertyAddedToUnopenContentModel: a required property without
	// a default was added to a closed or partially open content model.
	RequiredPropertyAddedToUnopenContentModel ChangeType = "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
	// RequiredPropertyWithDefaultAddedToUnopenContentModel: a required
	// property with a default was added to a closed or partially open content
	// model.
	RequiredPropertyWithDefaultAddedToUnopenContentModel ChangeType = "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL"
	// OptionalPropertyAddedToUnopenContentModel: an optional property was
	// added to a closed or partially open content model.
	OptionalPropertyAddedToUnopenContentModel ChangeType = "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
	// PropertyRemovedFromOpenContentModel: a property was removed and the new
	// content model is open.
	PropertyRemovedFromOpenContentModel ChangeType = "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL"
	// PropertyWithFalseRemovedFromClosedContentModel: a property whose old
	// schema was false was removed from a closed content model.
	PropertyWithFalseRemovedFromClosedContentModel ChangeType = "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"
	// PropertyRemovedFromClosedContentModel: a property was removed from a
	// closed content model, so data holding it is now rejected.
	PropertyRemovedFromClosedContentModel ChangeType = "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
	// PropertyRemovedIsCoveredByPartiallyOpenContentModel: a removed property
	// is still accepted by the new patternProperties, additionalProperties or
	// unevaluatedProperties schema.
	PropertyRemovedIsCoveredByPartiallyOpenContentModel ChangeType = "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	// PropertyRemovedNotCoveredByPartiallyOpenContentModel: a removed
	// property's old values are not all accepted by the new partially open
	// content model.
	PropertyRemovedNotCoveredByPartiallyOpenContentModel ChangeType = "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	// PropertyAddedIsCoveredByPartiallyOpenContentModel: an added property
	// accepts everything the old partially open content model accepted for
	// that name.
	PropertyAddedIsCoveredByPartiallyOpenContentModel ChangeType = "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	// PropertyAddedNotCoveredByPartiallyOpenContentModel: an added property
	// rejects values the old partially open content model accepted for that
	// name.
	PropertyAddedNotCoveredByPartiallyOpenContentModel ChangeType = "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	// ReservedPropertyRemoved: a name listed in the previous schema's
	// reserved names ([ReservedKeyword]) is no longer reserved.
	ReservedPropertyRemoved ChangeType = "RESERVED_PROPERTY_REMOVED"
	// ReservedPropertyConflictsWithProperty: the new schema defines a
	// property whose name it also reserves.
	ReservedPropertyConflictsWithProperty ChangeType = "RESERVED_PROPERTY_CONFLICTS_WITH_PROPERTY"
	// UnevaluatedPropertiesAdded: unevaluatedProperties went from false to
	// allowing properties.
	UnevaluatedPropertiesAdded ChangeType = "UNEVALUATED_PROPERTIES_ADDED"
	// UnevaluatedPropertiesRemoved: unevaluatedProperties became false.
	UnevaluatedPropertiesRemoved ChangeType = "UNEVALUATED_PROPERTIES_REMOVED"
	// UnevaluatedPropertiesExtended: unevaluatedProperties went from a schema
	// to true or absent.
	UnevaluatedPropertiesExtended ChangeType = "UNEVALUATED_PROPERTIES_EXTENDED"
	// UnevaluatedPropertiesNarrowed: unevaluatedProperties went from true or
	// absent to a schema.
	UnevaluatedPropertiesNarrowed ChangeType = "UNEVALUATED_PROPERTIES_NARROWED"
)

// Arrays.
const (
	// MaxItemsAdded: maxItems added.
	MaxItemsAdded ChangeType = "MAX_ITEMS_ADDED"
	// MaxItemsRemoved: maxItems removed.
	MaxItemsRemoved ChangeType = "MAX_ITEMS_REMOVED"
	// MaxItemsIncreased: maxItems increased.
	MaxItemsIncreased ChangeType = "MAX_ITEMS_INCREASED"
	// MaxItemsDecreased: maxItems decreased.
	MaxItemsDecreased ChangeType = "MAX_ITEMS_DECREASED"
	// MinItemsAdded: minItems added.
	MinItemsAdded ChangeType = "MIN_ITEMS_ADDED"
	// MinItemsRemoved: minItems removed.
	MinItemsRemoved ChangeType = "MIN_ITEMS_REMOVED"
	// MinItemsIncreased: minItems increased.
	MinItemsIncreased ChangeType = "MIN_ITEMS_INCREASED"
	// MinItemsDecreased: minItems decreased.
	MinItemsDecreased ChangeType = "MIN_ITEMS_DECREASED"
	// MaxContainsAdded: maxContains added.
	MaxContainsAdded ChangeType = "MAX_CONTAINS_ADDED"
	// MaxContainsRemoved: maxContains removed.
	MaxContainsRemoved ChangeType = "MAX_CONTAINS_REMOVED"
	// MaxContainsIncreased: maxContains increased.
	MaxContainsIncreased ChangeType = "MAX_CONTAINS_INCREASED"
	// MaxContainsDecreased: maxContains decreased.
	MaxContainsDecreased ChangeType = "MAX_CONTAINS_DECREASED"
	// MinContainsAdded: minContains added.
	MinContainsAdded ChangeType = "MIN_CONTAINS_ADDED"
	// MinContainsRemoved: minContains removed.
	MinContainsRemoved ChangeType = "MIN_CONTAINS_REMOVED"
	// MinContainsIncreased: minContains increased.
	MinContainsIncreased ChangeType = "MIN_CONTAINS_INCREASED"
	// MinContainsDecreased: minContains decreased.
	MinContainsDecreased ChangeType = "MIN_CONTAINS_DECREASED"
	// UniqueItemsAdded: uniqueItems became true.
	UniqueItemsAdded ChangeType = "UNIQUE_ITEMS_ADDED"
	// UniqueItemsRemoved: uniqueItems is no longer true.
	UniqueItemsRemoved ChangeType = "UNIQUE_ITEMS_REMOVED"
	// AdditionalItemsAdded: items after the tuple (draft-07 additionalItems,
	// 2020-12 items next to prefixItems) went from false to allowed.
	AdditionalItemsAdded ChangeType = "ADDITIONAL_ITEMS_ADDED"
	// AdditionalItemsRemoved: items after the tuple became false.
	AdditionalItemsRemoved ChangeType = "ADDITIONAL_ITEMS_REMOVED"
	// AdditionalItemsExtended: items after the tuple went from a schema to
	// true or absent.
	AdditionalItemsExtended ChangeType = "ADDITIONAL_ITEMS_EXTENDED"
	// AdditionalItemsNarrowed: items after the tuple went from true or absent
	// to a schema.
	AdditionalItemsNarrowed ChangeType = "ADDITIONAL_ITEMS_NARROWED"
	// UnevaluatedItemsAdded: unevaluatedItems went from false to allowing
	// items.
	UnevaluatedItemsAdded ChangeType = "UNEVALUATED_ITEMS_ADDED"
	// UnevaluatedItemsRemoved: unevaluatedItems became false.
	UnevaluatedItemsRemoved ChangeType = "UNEVALUATED_ITEMS_REMOVED"
	// UnevaluatedItemsExtended: unevaluatedItems went from a schema to true
	// or absent.
	UnevaluatedItemsExtended ChangeType = "UNEVALUATED_ITEMS_EXTENDED"
	// UnevaluatedItemsNarrowed: unevaluatedItems went from true or absent to
	// a schema.
	UnevaluatedItemsNarrowed ChangeType = "UNEVALUATED_ITEMS_NARROWED"
	// ItemAddedToOpenContentModel: a tuple position with a non-empty schema
	// was added to an open array content model.
	ItemAddedToOpenContentModel ChangeType = "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
	// ItemWithEmptySchemaAddedToOpenContentModel: a tuple position with an
	// empty schema was added to an open array content model.
	ItemWithEmptySchemaAddedToOpenContentModel ChangeType = "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL"
	// ItemAddedToClosedContentModel: a tuple position was added to a closed
	// array content model.
	ItemAddedToClosedContentModel ChangeType = "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL"
	// ItemRemovedFromOpenContentModel: a tuple position was removed and the
	// new array content model is open.
	ItemRemovedFromOpenContentModel ChangeType = "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL"
	// ItemWithFalseRemovedFromClosedContentModel: a tuple position whose old
	// schema was false was removed from a closed array content model.
	ItemWithFalseRemovedFromClosedContentModel ChangeType = "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL"
	// ItemRemovedFromClosedContentModel: a tuple position was removed from a
	// closed array content model.
	ItemRemovedFromClosedContentModel ChangeType = "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL"
	// ItemRemovedIsCoveredByPartiallyOpenContentModel: a removed tuple
	// position is still accepted by the new schema for further items.
	ItemRemovedIsCoveredByPartiallyOpenContentModel ChangeType = "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	// ItemRemovedNotCoveredByPartiallyOpenContentModel: a removed tuple
	// position's old values are not all accepted by the new schema for
	// further items.
	ItemRemovedNotCoveredByPartiallyOpenContentModel ChangeType = "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	// ItemAddedIsCoveredByPartiallyOpenContentModel: an added tuple position
	// accepts everything the old schema for further items accepted.
	ItemAddedIsCoveredByPartiallyOpenContentModel ChangeType = "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	// ItemAddedNotCoveredByPartiallyOpenContentModel: an added tuple position
	// rejects values the old schema for further items accepted.
	ItemAddedNotCoveredByPartiallyOpenContentModel ChangeType = "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
)

// Enumerations, combinations and negation.
const (
	// EnumArrayExtended: enum (or const, a one-element enum) accepts more
	// values, or was removed.
	EnumArrayExtended ChangeType = "ENUM_ARRAY_EXTENDED"
	// EnumArrayNarrowed: enum or const accepts fewer values, or was added.
	EnumArrayNarrowed ChangeType = "ENUM_ARRAY_NARROWED"
	// EnumArrayChanged: enum or const values changed in both directions.
	EnumArrayChanged ChangeType = "ENUM_ARRAY_CHANGED"
	// CombinedTypeExtended: the combination keyword changed in a compatible
	// way (allOf or oneOf to anyOf, a singleton to oneOf or allOf), or an
	// allOf was added whose every subschema accepts the previous schema.
	CombinedTypeExtended ChangeType = "COMBINED_TYPE_EXTENDED"
	// CombinedTypeChanged: the combination keyword changed in an
	// incompatible way (anyOf to oneOf, anything non-singleton to allOf).
	CombinedTypeChanged ChangeType = "COMBINED_TYPE_CHANGED"
	// ProductTypeExtended: allOf has more subschemas, or an allOf was added
	// that constrains data the previous schema accepted.
	ProductTypeExtended ChangeType = "PRODUCT_TYPE_EXTENDED"
	// ProductTypeNarrowed: allOf has fewer subschemas, or was removed.
	ProductTypeNarrowed ChangeType = "PRODUCT_TYPE_NARROWED"
	// SumTypeExtended: anyOf/oneOf has more subschemas, or a union was added
	// with an alternative accepting the previous schema, or removed with the
	// new schema accepting every old alternative.
	SumTypeExtended ChangeType = "SUM_TYPE_EXTENDED"
	// SumTypeNarrowed: anyOf/oneOf has fewer subschemas.
	SumTypeNarrowed ChangeType = "SUM_TYPE_NARROWED"
	// CombinedTypeSubschemasChanged: no pairing of old and new subschemas
	// covers the smaller side with compatible pairs, or an added or removed
	// union does not cover the other schema.
	CombinedTypeSubschemasChanged ChangeType = "COMBINED_TYPE_SUBSCHEMAS_CHANGED"
	// NotTypeExtended: the schema under not accepts more (so the schema
	// accepts less), or not was added.
	NotTypeExtended ChangeType = "NOT_TYPE_EXTENDED"
	// NotTypeNarrowed: the schema under not accepts less (so the schema
	// accepts more), or not was removed.
	NotTypeNarrowed ChangeType = "NOT_TYPE_NARROWED"
)

// Beyond Confluent: kinds Confluent does not compare.
const (
	// FormatAdded: format added. Incompatible.
	FormatAdded ChangeType = "FORMAT_ADDED"
	// FormatRemoved: format removed. Compatible.
	FormatRemoved ChangeType = "FORMAT_REMOVED"
	// FormatChanged: format changed. Incompatible.
	FormatChanged ChangeType = "FORMAT_CHANGED"
	// ConditionalAdded: if with then and/or else added, and a branch,
	// with the schema around it, rejects data the previous schema accepted
	// (see [ConditionalAddedIsCovered]). Incompatible.
	ConditionalAdded ChangeType = "CONDITIONAL_ADDED"
	// ConditionalRemoved: if with then and/or else removed. Compatible.
	ConditionalRemoved ChangeType = "CONDITIONAL_REMOVED"
	// ConditionalChanged: the if condition changed, so then and else apply to
	// other data, and a new case does not accept what a previous case
	// accepted (see [ConditionalChangedIsCovered]). Incompatible.
	ConditionalChanged ChangeType = "CONDITIONAL_CHANGED"
	// PropertyNamesAdded: propertyNames added. Incompatible.
	PropertyNamesAdded ChangeType = "PROPERTY_NAMES_ADDED"
	// PropertyNamesRemoved: propertyNames removed. Compatible.
	PropertyNamesRemoved ChangeType = "PROPERTY_NAMES_REMOVED"
	// PatternPropertyAdded: a patternProperties key was added. The verdict
	// depends on context: see the package documentation.
	PatternPropertyAdded ChangeType = "PATTERN_PROPERTY_ADDED"
	// PatternPropertyRemoved: a patternProperties key was removed. The
	// verdict depends on context: see the package documentation.
	PatternPropertyRemoved ChangeType = "PATTERN_PROPERTY_REMOVED"
)

// Beyond Confluent: changes that look narrowing keyword by keyword but keep
// every value the previous schema accepted. Confluent reports these as the
// narrowing kinds; PROST reports them instead of those (see
// docs/registry.md, "Where PROST differs"). All compatible.
const (
	// LowerBoundIsCovered: the lower end of the numeric range (minimum and
	// exclusiveMinimum taken together) changed, by keyword or by value, and
	// still admits every number the previous schema accepted: exclusiveMinimum
	// 10 to minimum 5; for integers, exclusiveMinimum 10 to minimum 11.
	LowerBoundIsCovered ChangeType = "LOWER_BOUND_IS_COVERED"
	// UpperBoundIsCovered: the same for the upper end (maximum and
	// exclusiveMaximum): exclusiveMaximum 10 to maximum 10.
	UpperBoundIsCovered ChangeType = "UPPER_BOUND_IS_COVERED"
	// MultipleOfIsCovered: multipleOf added or changed so that it divides
	// every number the previous schema accepted, which were integers
	// (multiples of 1, or of the integer multiples of its multipleOf):
	// multipleOf 0.5 added to an integer.
	MultipleOfIsCovered ChangeType = "MULTIPLE_OF_IS_COVERED"
	// ConditionalAddedIsCovered: if with then and/or else added, and every
	// value the previous schema accepted passes the branch that applies to it,
	// judged with the schema around the branches (a branch restating the
	// base, or requiring what the previous schema always required).
	ConditionalAddedIsCovered ChangeType = "CONDITIONAL_ADDED_IS_COVERED"
	// ConditionalChangedIsCovered: the if condition changed, and each branch
	// of the new schema, with the schema around it, accepts every value each
	// branch of the previous one accepted: which branch applies no longer
	// matters.
	ConditionalChangedIsCovered ChangeType = "CONDITIONAL_CHANGED_IS_COVERED"
)

// verdict is the backward-compatibility verdict of a change type under each
// policy.
type verdict struct{ strict, lenient bool }

// verdicts is the change-type table of schema-compat.md, then the kinds
// beyond Confluent. The order is the order of ChangeTypes.
var verdicts = []struct {
	t ChangeType
	v verdict
}{
	{IDChanged, verdict{true, true}},
	{DescriptionChanged, verdict{true, true}},
	{TitleChanged, verdict{true, true}},
	{DefaultChanged, verdict{true, true}},
	{SchemaAdded, verdict{false, false}},
	{SchemaRemoved, verdict{true, true}},
	{TypeExtended, verdict{true, true}},
	{TypeNarrowed, verdict{false, false}},
	{TypeChanged, verdict{false, false}},
	{MaxLengthAdded, verdict{false, false}},
	{MaxLengthRemoved, verdict{true, true}},
	{MaxLengthIncreased, verdict{true, true}},
	{MaxLengthDecreased, verdict{false, false}},
	{MinLengthAdded, verdict{false, false}},
	{MinLengthRemoved, verdict{true, true}},
	{MinLengthIncreased, verdict{false, false}},
	{MinLengthDecreased, verdict{true, true}},
	{PatternAdded, verdict{false, false}},
	{PatternRemoved, verdict{true, true}},
	{PatternChanged, verdict{false, false}},
	{MaximumAdded, verdict{false, false}},
	{MaximumRemoved, verdict{true, true}},
	{MaximumIncreased, verdict{true, true}},
	{MaximumDecreased, verdict{false, false}},
	{MinimumAdded, verdict{false, false}},
	{MinimumRemoved, verdict{true, true}},
	{MinimumIncreased, verdict{false, false}},
	{MinimumDecreased, verdict{true, true}},
	{ExclusiveMaximumAdded, verdict{false, false}},
	{ExclusiveMaximumRemoved, verdict{true, true}},
	{ExclusiveMaximumIncreased, verdict{true, true}},
	{ExclusiveMaximumDecreased, verdict{false, false}},
	{ExclusiveMinimumAdded, verdict{false, false}},
	{ExclusiveMinimumRemoved, verdict{true, true}},
	{ExclusiveMinimumIncreased, verdict{false, false}},
	{ExclusiveMinimumDecreased, verdict{true, true}},
	{MultipleOfAdded, verdict{false, false}},
	{MultipleOfRemoved, verdict{true, true}},
	{MultipleOfExpanded, verdict{false, false}},
	{MultipleOfReduced, verdict{true, true}},
	{MultipleOfChanged, verdict{false, false}},
	{RequiredAttributeAdded, verdict{false, false}},
	{RequiredAttributeWithDefaultAdded, verdict{true, true}},
	{RequiredAttributeRemoved, verdict{true, true}},
	{MaxPropertiesAdded, verdict{false, false}},
	{MaxPropertiesRemoved, verdict{true, true}},
	{MaxPropertiesIncreased, verdict{true, true}},
	{MaxPropertiesDecreased, verdict{false, false}},
	{MinPropertiesAdded, verdict{false, false}},
	{MinPropertiesRemoved, verdict{true, true}},
	{MinPropertiesIncreased, verdict{false, false}},
	{MinPropertiesDecreased, verdict{true, true}},
	{AdditionalPropertiesAdded, verdict{true, true}},
	{AdditionalPropertiesRemoved, verdict{false, true}},
	{AdditionalPropertiesExtended, verdict{true, true}},
	{AdditionalPropertiesNarrowed, verdict{false, true}},
	{DependencyArrayAdded, verdict{false, false}},
	{DependencyArrayRemoved, verdict{true, true}},
	{DependencyArrayExtended, verdict{false, false}},
	{DependencyArrayNarrowed, verdict{true, true}},
	{DependencyArrayChanged, verdict{false, false}},
	{DependencySchemaAdded, verdict{false, false}},
	{DependencySchemaRemoved, verdict{true, true}},
	{PropertyAddedToOpenContentModel, verdict{false, false}},
	{RequiredPropertyAddedToOpenContentModel, verdict{false, false}},
	{RequiredPropertyWithDefaultAddedToOpenContentModel, verdict{false, true}},
	{OptionalPropertyAddedToOpenContentModel, verdict{false, true}},
	{PropertyWithEmptySchemaAddedToOpenContentModel, verdict{true, true}},
	{RequiredPropertyAddedToUnopenContentModel, verdict{false, false}},
	{RequiredPropertyWithDefaultAddedToUnopenContentModel, verdict{true, true}},
	{OptionalPropertyAddedToUnopenContentModel, verdict{true, true}},
	{PropertyRemovedFromOpenContentModel, verdict{true, true}},
	{PropertyWithFalseRemovedFromClosedContentModel, verdict{true, true}},
	{PropertyRemovedFromClosedContentModel, verdict{false, true}},
	{PropertyRemovedIsCoveredByPartiallyOpenContentModel, verdict{true, true}},
	{PropertyRemovedNotCoveredByPartiallyOpenContentModel, verdict{false, true}},
	{PropertyAddedIsCoveredByPartiallyOpenContentModel, verdict{true, true}},
	{PropertyAddedNotCoveredByPartiallyOpenContentModel, verdict{false, true}},
	{ReservedPropertyRemoved, verdict{false, false}},
	{ReservedPropertyConflictsWithProperty, verdict{false, false}},
	{UnevaluatedPropertiesAdded, verdict{true, true}},
	{UnevaluatedPropertiesRemoved, verdict{false, true}},
	{UnevaluatedPropertiesExtended, verdict{true, true}},
	{UnevaluatedPropertiesNarrowed, verdict{false, true}},
	{MaxItemsAdded, verdict{false, false}},
	{MaxItemsRemoved, verdict{true, true}},
	{MaxItemsIncreased, verdict{true, true}},
	{MaxItemsDecreased, verdict{false, false}},
	{MinItemsAdded, verdict{false, false}},
	{MinItemsRemoved, verdict{true, true}},
	{MinItemsIncreased, verdict{false, false}},
	{MinItemsDecreased, verdict{true, true}},
	{MaxContainsAdded, verdict{false, false}},
	{MaxContainsRemoved, verdict{true, true}},
	{MaxContainsIncreased, verdict{true, true}},
	{MaxContainsDecreased, verdict{false, false}},
	{MinContainsAdded, verdict{false, false}},
	{MinContainsRemoved, verdict{true, true}},
	{MinContainsIncreased, verdict{false, false}},
	{MinContainsDecreased, verdict{true, true}},
	{UniqueItemsAdded, verdict{false, false}},
	{UniqueItemsRemoved, verdict{true, true}},
	{AdditionalItemsAdded, verdict{true, true}},
	{AdditionalItemsRemoved, verdict{false, false}},
	{AdditionalItemsExtended, verdict{true, true}},
	{AdditionalItemsNarrowed, verdict{false, false}},
	{UnevaluatedItemsAdded, verdict{true, true}},
	{UnevaluatedItemsRemoved, verdict{false, false}},
	{UnevaluatedItemsExtended, verdict{true, true}},
	{UnevaluatedItemsNarrowed, verdict{false, false}},
	{ItemAddedToOpenContentModel, verdict{false, false}},
	{ItemWithEmptySchemaAddedToOpenContentModel, verdict{true, true}},
	{ItemAddedToClosedContentModel, verdict{true, true}},
	{ItemRemovedFromOpenContentModel, verdict{true, true}},
	{ItemWithFalseRemovedFromClosedContentModel, verdict{true, true}},
	{ItemRemovedFromClosedContentModel, verdict{false, false}},
	{ItemRemovedIsCoveredByPartiallyOpenContentModel, verdict{true, true}},
	{ItemRemovedNotCoveredByPartiallyOpenContentModel, verdict{false, false}},
	{ItemAddedIsCoveredByPartiallyOpenContentModel, verdict{true, true}},
	{ItemAddedNotCoveredByPartiallyOpenContentModel, verdict{false, false}},
	{EnumArrayExtended, verdict{true, true}},
	{EnumArrayNarrowed, verdict{false, false}},
	{EnumArrayChanged, verdict{false, false}},
	{CombinedTypeExtended, verdict{true, true}},
	{CombinedTypeChanged, verdict{false, false}},
	{ProductTypeExtended, verdict{false, false}},
	{ProductTypeNarrowed, verdict{true, true}},
	{SumTypeExtended, verdict{true, true}},
	{SumTypeNarrowed, verdict{false, false}},
	{CombinedTypeSubschemasChanged, verdict{false, false}},
	{NotTypeExtended, verdict{false, false}},
	{NotTypeNarrowed, verdict{true, true}},

	{FormatAdded, verdict{false, false}},
	{FormatRemoved, verdict{true, true}},
	{FormatChanged, verdict{false, false}},
	{ConditionalAdded, verdict{false, false}},
	{ConditionalRemoved, verdict{true, true}},
	{ConditionalChanged, verdict{false, false}},
	{PropertyNamesAdded, verdict{false, false}},
	{PropertyNamesRemoved, verdict{true, true}},
	// Context decides these two; the entries are the verdicts of the
	// simplest case (a pattern added to an open model with a constraining
	// schema; a pattern removed with open additionalProperties).
	{PatternPropertyAdded, verdict{false, true}},
	{PatternPropertyRemoved, verdict{true, true}},

	{LowerBoundIsCovered, verdict{true, true}},
	{UpperBoundIsCovered, verdict{true, true}},
	{MultipleOfIsCovered, verdict{true, true}},
	{ConditionalAddedIsCovered, verdict{true, true}},
	{ConditionalChangedIsCovered, verdict{true, true}},
}

var verdictByType = func() map[ChangeType]verdict {
	m := make(map[ChangeType]verdict, len(verdicts))
	for _, e := range verdicts {
		m[e.t] = e.v
	}
	return m
}()

// ChangeTypes returns every change type this package reports, in table
// order (the Confluent table first, then the kinds beyond Confluent). The
// slice is a fresh copy.
func ChangeTypes() []ChangeType {
	out := make([]ChangeType, len(verdicts))
	for i, e := range verdicts {
		out[i] = e.t
	}
	return out
}

// CompatibleUnder reports the table verdict of the change type under the
// policy: true when the change is backward compatible. An empty policy means
// [PolicyStrict]; an unknown policy or change type reports false.
//
// For [PatternPropertyAdded] and [PatternPropertyRemoved] the verdict of a
// reported [Difference] depends on the schemas around it (see the package
// documentation); CompatibleUnder returns the verdict of their simplest case.
func (t ChangeType) CompatibleUnder(p Policy) bool {
	v, ok := verdictByType[t]
	if !ok {
		return false
	}
	switch p {
	case PolicyStrict, "":
		return v.strict
	case PolicyLenient:
		return v.lenient
	default:
		return false
	}
}
