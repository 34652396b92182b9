package schemacompat

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// changeCase is one row of the change-type table test: Diff(old, new) must
// report typ at ptr, compatible as strict under STRICT and as lenient under
// LENIENT.
type changeCase struct {
	name    string
	old     string
	new     string
	typ     ChangeType
	ptr     string
	strict  bool
	lenient bool
}

const (
	yes = true
	no  = false
)

var changeCases = []changeCase{
	// Annotations and whole schemas.
	{"id", `{"$id":"urn:a"}`, `{"$id":"urn:b"}`, IDChanged, "#/$id", yes, yes},
	{"description", `{"description":"a"}`, `{"description":"b"}`, DescriptionChanged, "#/description", yes, yes},
	{"title", `{"title":"a"}`, `{"title":"b"}`, TitleChanged, "#/title", yes, yes},
	{"default", `{"type":"string","default":"a"}`, `{"type":"string","default":"b"}`, DefaultChanged, "#/default", yes, yes},
	{"items schema added", `{"type":"array"}`, `{"type":"array","items":{"type":"string"}}`, SchemaAdded, "#/items", no, no},
	{"items schema removed", `{"type":"array","items":{"type":"string"}}`, `{"type":"array"}`, SchemaRemoved, "#/items", yes, yes},
	{"integer to number", `{"type":"integer"}`, `{"type":"number"}`, TypeExtended, "#/type", yes, yes},
	{"nullable dropped", `{"type":["string","null"]}`, `{"type":"string"}`, TypeNarrowed, "#/type", no, no},
	{"string to integer", `{"type":"string"}`, `{"type":"integer"}`, TypeChanged, "#/type", no, no},

	// Strings.
	{"maxLength added", `{"type":"string"}`, `{"type":"string","maxLength":10}`, MaxLengthAdded, "#/maxLength", no, no},
	{"maxLength removed", `{"type":"string","maxLength":10}`, `{"type":"string"}`, MaxLengthRemoved, "#/maxLength", yes, yes},
	{"maxLength increased", `{"type":"string","maxLength":5}`, `{"type":"string","maxLength":10}`, MaxLengthIncreased, "#/maxLength", yes, yes},
	{"maxLength decreased", `{"type":"string","maxLength":10}`, `{"type":"string","maxLength":5}`, MaxLengthDecreased, "#/maxLength", no, no},
	{"minLength added", `{"type":"string"}`, `{"type":"string","minLength":1}`, MinLengthAdded, "#/minLength", no, no},
	{"minLength removed", `{"type":"string","minLength":1}`, `{"type":"string"}`, MinLengthRemoved, "#/minLength", yes, yes},
	{"minLength increased", `{"type":"string","minLength":1}`, `{"type":"string","minLength":2}`, MinLengthIncreased, "#/minLength", no, no},
	{"minLength decreased", `{"type":"string","minLength":2}`, `{"type":"string","minLength":1}`, MinLengthDecreased, "#/minLength", yes, yes},
	{"pattern added", `{"type":"string"}`, `{"type":"string","pattern":"^a"}`, PatternAdded, "#/pattern", no, no},
	{"pattern removed", `{"type":"string","pattern":"^a"}`, `{"type":"string"}`, PatternRemoved, "#/pattern", yes, yes},
	{"pattern changed", `{"type":"string","pattern":"^a"}`, `{"type":"string","pattern":"^b"}`, PatternChanged, "#/pattern", no, no},

	// Numbers, inside a property for the pointer.
	{"maximum added", `{"properties":{"amount":{"type":"number"}}}`, `{"properties":{"amount":{"type":"number","maximum":10}}}`, MaximumAdded, "#/properties/amount/maximum", no, no},
	{"maximum removed", `{"properties":{"amount":{"type":"number","maximum":10}}}`, `{"properties":{"amount":{"type":"number"}}}`, MaximumRemoved, "#/properties/amount/maximum", yes, yes},
	{"maximum increased", `{"properties":{"amount":{"type":"number","maximum":10}}}`, `{"properties":{"amount":{"type":"number","maximum":20}}}`, MaximumIncreased, "#/properties/amount/maximum", yes, yes},
	{"maximum decreased", `{"properties":{"amount":{"type":"number","maximum":20}}}`, `{"properties":{"amount":{"type":"number","maximum":10.5}}}`, MaximumDecreased, "#/properties/amount/maximum", no, no},
	{"minimum added", `{"type":"integer"}`, `{"type":"integer","minimum":0}`, MinimumAdded, "#/minimum", no, no},
	{"minimum removed", `{"type":"integer","minimum":0}`, `{"type":"integer"}`, MinimumRemoved, "#/minimum", yes, yes},
	{"minimum increased", `{"type":"integer","minimum":0}`, `{"type":"integer","minimum":1}`, MinimumIncreased, "#/minimum", no, no},
	{"minimum decreased", `{"type":"integer","minimum":1}`, `{"type":"integer","minimum":-1}`, MinimumDecreased, "#/minimum", yes, yes},
	{"exclusiveMaximum added", `{"type":"number"}`, `{"type":"number","exclusiveMaximum":10}`, ExclusiveMaximumAdded, "#/exclusiveMaximum", no, no},
	{"exclusiveMaximum removed", `{"type":"number","exclusiveMaximum":10}`, `{"type":"number"}`, ExclusiveMaximumRemoved, "#/exclusiveMaximum", yes, yes},
	{"exclusiveMaximum increased", `{"type":"number","exclusiveMaximum":10}`, `{"type":"number","exclusiveMaximum":11}`, ExclusiveMaximumIncreased, "#/exclusiveMaximum", yes, yes},
	{"exclusiveMaximum decreased", `{"type":"number","exclusiveMaximum":10}`, `{"type":"number","exclusiveMaximum":9}`, ExclusiveMaximumDecreased, "#/exclusiveMaximum", no, no},
	{"exclusiveMinimum added", `{"type":"number"}`, `{"type":"number","exclusiveMinimum":0}`, ExclusiveMinimumAdded, "#/exclusiveMinimum", no, no},
	{"exclusiveMinimum removed", `{"type":"number","exclusiveMinimum":0}`, `{"type":"number"}`, ExclusiveMinimumRemoved, "#/exclusiveMinimum", yes, yes},
	{"exclusiveMinimum increased", `{"type":"number","exclusiveMinimum":0}`, `{"type":"number","exclusiveMinimum":1}`, ExclusiveMinimumIncreased, "#/exclusiveMinimum", no, no},
	{"exclusiveMinimum decreased", `{"type":"number","exclusiveMinimum":1}`, `{"type":"number","exclusiveMinimum":0}`, ExclusiveMinimumDecreased, "#/exclusiveMinimum", yes, yes},
	{"multipleOf added", `{"type":"number"}`, `{"type":"number","multipleOf":2}`, MultipleOfAdded, "#/multipleOf", no, no},
	{"multipleOf removed", `{"type":"number","multipleOf":2}`, `{"type":"number"}`, MultipleOfRemoved, "#/multipleOf", yes, yes},
	{"multipleOf expanded", `{"type":"number","multipleOf":2}`, `{"type":"number","multipleOf":4}`, MultipleOfExpanded, "#/multipleOf", no, no},
	{"multipleOf reduced", `{"type":"number","multipleOf":0.1}`, `{"type":"number","multipleOf":0.01}`, MultipleOfReduced, "#/multipleOf", yes, yes},
	{"multipleOf changed", `{"type":"number","multipleOf":2}`, `{"type":"number","multipleOf":3}`, MultipleOfChanged, "#/multipleOf", no, no},

	// Objects: required.
	{"required added", `{"properties":{"a":{"type":"string"}}}`, `{"properties":{"a":{"type":"string"}},"required":["a"]}`, RequiredAttributeAdded, "#/required/a", no, no},
	{"required with default added", `{"properties":{"a":{"type":"string"}}}`, `{"properties":{"a":{"type":"string","default":"x"}},"required":["a"]}`, RequiredAttributeWithDefaultAdded, "#/required/a", yes, yes},
	{"required removed", `{"properties":{"a":{"type":"string"}},"required":["a"]}`, `{"properties":{"a":{"type":"string"}}}`, RequiredAttributeRemoved, "#/required/a", yes, yes},

	// Objects: property counts.
	{"maxProperties added", `{"type":"object"}`, `{"type":"object","maxProperties":3}`, MaxPropertiesAdded, "#/maxProperties", no, no},
	{"maxProperties removed", `{"type":"object","maxProperties":3}`, `{"type":"object"}`, MaxPropertiesRemoved, "#/maxProperties", yes, yes},
	{"maxProperties increased", `{"type":"object","maxProperties":3}`, `{"type":"object","maxProperties":4}`, MaxPropertiesIncreased, "#/maxProperties", yes, yes},
	{"maxProperties decreased", `{"type":"object","maxProperties":3}`, `{"type":"object","maxProperties":2}`, MaxPropertiesDecreased, "#/maxProperties", no, no},
	{"minProperties added", `{"type":"object"}`, `{"type":"object","minProperties":1}`, MinPropertiesAdded, "#/minProperties", no, no},
	{"minProperties removed", `{"type":"object","minProperties":1}`, `{"type":"object"}`, MinPropertiesRemoved, "#/minProperties", yes, yes},
	{"minProperties increased", `{"type":"object","minProperties":1}`, `{"type":"object","minProperties":2}`, MinPropertiesIncreased, "#/minProperties", no, no},
	{"minProperties decreased", `{"type":"object","minProperties":2}`, `{"type":"object","minProperties":1}`, MinPropertiesDecreased, "#/minProperties", yes, yes},

	// Objects: additionalProperties.
	{"additionalProperties opened", `{"type":"object","additionalProperties":false}`, `{"type":"object"}`, AdditionalPropertiesAdded, "#/additionalProperties", yes, yes},
	{"additionalProperties closed", `{"type":"object"}`, `{"type":"object","additionalProperties":false}`, AdditionalPropertiesRemoved, "#/additionalProperties", no, yes},
	{"additionalProperties schema dropped", `{"type":"object","additionalProperties":{"type":"string"}}`, `{"type":"object","additionalProperties":true}`, AdditionalPropertiesExtended, "#/additionalProperties", yes, yes},
	{"additionalProperties schema set", `{"type":"object"}`, `{"type":"object","additionalProperties":{"type":"string"}}`, AdditionalPropertiesNarrowed, "#/additionalProperties", no, yes},

	// Objects: dependencies (draft-07) and dependentRequired / dependentSchemas (2020-12).
	{"dependency array added", `{"type":"object"}`, `{"type":"object","dependencies":{"a":["b"]}}`, DependencyArrayAdded, "#/dependencies/a", no, no},
	{"dependency array removed", `{"type":"object","dependencies":{"a":["b"]}}`, `{"type":"object"}`, DependencyArrayRemoved, "#/dependencies/a", yes, yes},
	{"dependency array extended", `{"dependentRequired":{"a":["b"]}}`, `{"dependentRequired":{"a":["b","c"]}}`, DependencyArrayExtended, "#/dependentRequired/a", no, no},
	{"dependency array narrowed", `{"dependentRequired":{"a":["b","c"]}}`, `{"dependentRequired":{"a":["b"]}}`, DependencyArrayNarrowed, "#/dependentRequired/a", yes, yes},
	{"dependency array changed", `{"dependentRequired":{"a":["b"]}}`, `{"dependentRequired":{"a":["c"]}}`, DependencyArrayChanged, "#/dependentRequired/a", no, no},
	{"dependency schema added", `{}`, `{"dependentSchemas":{"a":{"required":["b"]}}}`, DependencySchemaAdded, "#/dependentSchemas/a", no, no},
	{"dependency schema removed", `{"dependencies":{"a":{"required":["b"]}}}`, `{}`, DependencySchemaRemoved, "#/dependencies/a", yes, yes},

	// Objects: properties added to an open content model.
	{"false property added to open model", `{"properties":{}}`, `{"properties":{"a":false}}`, PropertyAddedToOpenContentModel, "#/properties/a", no, no},
	{"required property added to open model", `{"type":"object"}`, `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, RequiredPropertyAddedToOpenContentModel, "#/properties/a", no, no},
	{"required property with default added to open model", `{"type":"object"}`, `{"type":"object","properties":{"a":{"type":"string","default":""}},"required":["a"]}`, RequiredPropertyWithDefaultAddedToOpenContentModel, "#/properties/a", no, yes},
	{"optional property added to open model", `{"type":"object"}`, `{"type":"object","properties":{"a":{"type":"string"}}}`, OptionalPropertyAddedToOpenContentModel, "#/properties/a", no, yes},
	{"empty property added to open model", `{"type":"object"}`, `{"type":"object","properties":{"a":{"description":"anything"}}}`, PropertyWithEmptySchemaAddedToOpenContentModel, "#/properties/a", yes, yes},

	// Objects: properties added to a closed or partially open content model.
	{"required property added to closed model", `{"additionalProperties":false}`, `{"properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`, RequiredPropertyAddedToUnopenContentModel, "#/properties/a", no, no},
	{"required property with default added to closed model", `{"additionalProperties":false}`, `{"properties":{"a":{"type":"string","default":"x"}},"required":["a"],"additionalProperties":false}`, RequiredPropertyWithDefaultAddedToUnopenContentModel, "#/properties/a", yes, yes},
	{"optional property added to closed model", `{"additionalProperties":false}`, `{"properties":{"a":{"type":"string"}},"additionalProperties":false}`, OptionalPropertyAddedToUnopenContentModel, "#/properties/a", yes, yes},

	// Objects: properties removed.
	{"property removed from open model", `{"properties":{"a":{"type":"string"}}}`, `{"properties":{}}`, PropertyRemovedFromOpenContentModel, "#/properties/a", yes, yes},
	{"false property removed from closed model", `{"properties":{"a":false},"additionalProperties":false}`, `{"additionalProperties":false}`, PropertyWithFalseRemovedFromClosedContentModel, "#/properties/a", yes, yes},
	{"property removed from closed model", `{"properties":{"a":{"type":"string"}},"additionalProperties":false}`, `{"additionalProperties":false}`, PropertyRemovedFromClosedContentModel, "#/properties/a", no, yes},
	{"removed property covered", `{"properties":{"a":{"type":"string","maxLength":5}},"additionalProperties":{"type":"string"}}`, `{"additionalProperties":{"type":"string"}}`, PropertyRemovedIsCoveredByPartiallyOpenContentModel, "#/properties/a", yes, yes},
	{"removed property not covered", `{"properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}}`, `{"additionalProperties":{"type":"string"}}`, PropertyRemovedNotCoveredByPartiallyOpenContentModel, "#/properties/a", no, yes},
	{"added property covered", `{"additionalProperties":{"type":"string","maxLength":5}}`, `{"properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string","maxLength":5}}`, PropertyAddedIsCoveredByPartiallyOpenContentModel, "#/properties/a", yes, yes},
	{"added property not covered", `{"patternProperties":{"^a":{"type":"string"}}}`, `{"patternProperties":{"^a":{"type":"string"}},"properties":{"ab":{"type":"integer"}}}`, PropertyAddedNotCoveredByPartiallyOpenContentModel, "#/properties/ab", no, yes},

	// Objects: reserved names.
	{"reserved removed", `{"x-reserved":["a"]}`, `{}`, ReservedPropertyRemoved, "#/x-reserved", no, no},
	{"reserved conflicts", `{"x-reserved":"a, b"}`, `{"x-reserved":"a, b","properties":{"a":{}}}`, ReservedPropertyConflictsWithProperty, "#/properties/a", no, no},

	// Objects: unevaluatedProperties.
	{"unevaluatedProperties opened", `{"unevaluatedProperties":false}`, `{}`, UnevaluatedPropertiesAdded, "#/unevaluatedProperties", yes, yes},
	{"unevaluatedProperties closed", `{}`, `{"unevaluatedProperties":false}`, UnevaluatedPropertiesRemoved, "#/unevaluatedProperties", no, yes},
	{"unevaluatedProperties schema dropped", `{"unevaluatedProperties":{"type":"string"}}`, `{}`, UnevaluatedPropertiesExtended, "#/unevaluatedProperties", yes, yes},
	{"unevaluatedProperties schema set", `{}`, `{"unevaluatedProperties":{"type":"string"}}`, UnevaluatedPropertiesNarrowed, "#/unevaluatedProperties", no, yes},

	// Arrays: counts.
	{"maxItems added", `{"type":"array"}`, `{"type":"array","maxItems":3}`, MaxItemsAdded, "#/maxItems", no, no},
	{"maxItems removed", `{"type":"array","maxItems":3}`, `{"type":"array"}`, MaxItemsRemoved, "#/maxItems", yes, yes},
	{"maxItems increased", `{"type":"array","maxItems":3}`, `{"type":"array","maxItems":4}`, MaxItemsIncreased, "#/maxItems", yes, yes},
	{"maxItems decreased", `{"type":"array","maxItems":3}`, `{"type":"array","maxItems":2}`, MaxItemsDecreased, "#/maxItems", no, no},
	{"minItems added", `{"type":"array"}`, `{"type":"array","minItems":1}`, MinItemsAdded, "#/minItems", no, no},
	{"minItems removed", `{"type":"array","minItems":1}`, `{"type":"array"}`, MinItemsRemoved, "#/minItems", yes, yes},
	{"minItems increased", `{"type":"array","minItems":1}`, `{"type":"array","minItems":2}`, MinItemsIncreased, "#/minItems", no, no},
	{"minItems decreased", `{"type":"array","minItems":2}`, `{"type":"array","minItems":1}`, MinItemsDecreased, "#/minItems", yes, yes},
	{"maxContains added", `{"contains":{"type":"string"}}`, `{"contains":{"type":"string"},"maxContains":2}`, MaxContainsAdded, "#/maxContains", no, no},
	{"maxContains removed", `{"contains":{"type":"string"},"maxContains":2}`, `{"contains":{"type":"string"}}`, MaxContainsRemoved, "#/maxContains", yes, yes},
	{"maxContains increased", `{"contains":{"type":"string"},"maxContains":2}`, `{"contains":{"type":"string"},"maxContains":3}`, MaxContainsIncreased, "#/maxContains", yes, yes},
	{"maxContains decreased", `{"contains":{"type":"string"},"maxContains":3}`, `{"contains":{"type":"string"},"maxContains":2}`, MaxContainsDecreased, "#/maxContains", no, no},
	{"minContains added", `{"contains":{"type":"string"}}`, `{"contains":{"type":"string"},"minContains":2}`, MinContainsAdded, "#/minContains", no, no},
	{"minContains removed", `{"contains":{"type":"string"},"minContains":2}`, `{"contains":{"type":"string"}}`, MinContainsRemoved, "#/minContains", yes, yes},
	{"minContains increased", `{"contains":{"type":"string"},"minContains":2}`, `{"contains":{"type":"string"},"minContains":3}`, MinContainsIncreased, "#/minContains", no, no},
	{"minContains decreased", `{"contains":{"type":"string"},"minContains":3}`, `{"contains":{"type":"string"},"minContains":2}`, MinContainsDecreased, "#/minContains", yes, yes},
	{"uniqueItems added", `{"type":"array"}`, `{"type":"array","uniqueItems":true}`, UniqueItemsAdded, "#/uniqueItems", no, no},
	{"uniqueItems removed", `{"type":"array","uniqueItems":true}`, `{"type":"array","uniqueItems":false}`, UniqueItemsRemoved, "#/uniqueItems", yes, yes},

	// Arrays: items after the tuple (draft-07 additionalItems, 2020-12 items).
	{"additionalItems opened", `{"items":[{"type":"string"}],"additionalItems":false}`, `{"items":[{"type":"string"}]}`, AdditionalItemsAdded, "#/additionalItems", yes, yes},
	{"additionalItems closed", `{"items":[{"type":"string"}]}`, `{"items":[{"type":"string"}],"additionalItems":false}`, AdditionalItemsRemoved, "#/additionalItems", no, no},
	{"additionalItems schema dropped", `{"items":[{"type":"string"}],"additionalItems":{"type":"integer"}}`, `{"items":[{"type":"string"}]}`, AdditionalItemsExtended, "#/additionalItems", yes, yes},
	{"2020 items after prefixItems set", `{"prefixItems":[{"type":"string"}]}`, `{"prefixItems":[{"type":"string"}],"items":{"type":"integer"}}`, AdditionalItemsNarrowed, "#/items", no, no},

	// Arrays: unevaluatedItems.
	{"unevaluatedItems opened", `{"prefixItems":[{}],"unevaluatedItems":false}`, `{"prefixItems":[{}]}`, UnevaluatedItemsAdded, "#/unevaluatedItems", yes, yes},
	{"unevaluatedItems closed", `{"type":"array"}`, `{"type":"array","unevaluatedItems":false}`, UnevaluatedItemsRemoved, "#/unevaluatedItems", no, no},
	{"unevaluatedItems schema dropped", `{"unevaluatedItems":{"type":"string"}}`, `{}`, UnevaluatedItemsExtended, "#/unevaluatedItems", yes, yes},
	{"unevaluatedItems schema set", `{}`, `{"unevaluatedItems":{"type":"string"}}`, UnevaluatedItemsNarrowed, "#/unevaluatedItems", no, no},

	// Arrays: tuple items.
	{"item added to open model", `{"prefixItems":[{"type":"string"}]}`, `{"prefixItems":[{"type":"string"},{"type":"integer"}]}`, ItemAddedToOpenContentModel, "#/prefixItems/1", no, no},
	{"empty item added to open model", `{"prefixItems":[{"type":"string"}]}`, `{"prefixItems":[{"type":"string"},{}]}`, ItemWithEmptySchemaAddedToOpenContentModel, "#/prefixItems/1", yes, yes},
	{"item added to closed model", `{"prefixItems":[{"type":"string"}],"items":false}`, `{"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, ItemAddedToClosedContentModel, "#/prefixItems/1", yes, yes},
	{"item removed from open model", `{"items":[{"type":"string"},{"type":"integer"}]}`, `{"items":[{"type":"string"}]}`, ItemRemovedFromOpenContentModel, "#/items/1", yes, yes},
	{"false item removed from closed model", `{"items":[{"type":"string"},false],"additionalItems":false}`, `{"items":[{"type":"string"}],"additionalItems":false}`, ItemWithFalseRemovedFromClosedContentModel, "#/items/1", yes, yes},
	{"item removed from closed model", `{"items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}`, `{"items":[{"type":"string"}],"additionalItems":false}`, ItemRemovedFromClosedContentModel, "#/items/1", no, no},
	{"removed item covered", `{"prefixItems":[{"type":"string"},{"type":"string","maxLength":3}],"items":{"type":"string"}}`, `{"prefixItems":[{"type":"string"}],"items":{"type":"string"}}`, ItemRemovedIsCoveredByPartiallyOpenContentModel, "#/prefixItems/1", yes, yes},
	{"removed item not covered", `{"prefixItems":[{"type":"string"},{"type":"integer"}],"items":{"type":"string"}}`, `{"prefixItems":[{"type":"string"}],"items":{"type":"string"}}`, ItemRemovedNotCoveredByPartiallyOpenContentModel, "#/prefixItems/1", no, no},
	{"added item covered", `{"prefixItems":[{"type":"string"}],"items":{"type":"string","maxLength":3}}`, `{"prefixItems":[{"type":"string"},{"type":"string"}],"items":{"type":"string","maxLength":3}}`, ItemAddedIsCoveredByPartiallyOpenContentModel, "#/prefixItems/1", yes, yes},
	{"added item not covered", `{"prefixItems":[{"type":"string"}],"unevaluatedItems":{"type":"string"}}`, `{"prefixItems":[{"type":"string"},{"type":"integer"}],"unevaluatedItems":{"type":"string"}}`, ItemAddedNotCoveredByPartiallyOpenContentModel, "#/prefixItems/1", no, no},

	// Enumerations.
	{"enum extended", `{"enum":["a"]}`, `{"enum":["a","b"]}`, EnumArrayExtended, "#/enum", yes, yes},
	{"enum narrowed", `{"enum":["a","b"]}`, `{"enum":["a"]}`, EnumArrayNarrowed, "#/enum", no, no},
	{"const changed", `{"const":"a"}`, `{"const":"b"}`, EnumArrayChanged, "#/const", no, no},

	// Combinations.
	{"oneOf to anyOf", `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, CombinedTypeExtended, "#/anyOf", yes, yes},
	{"anyOf to oneOf", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, CombinedTypeChanged, "#/oneOf", no, no},
	{"allOf grows", `{"allOf":[{"required":["a"]},{"required":["b"]}]}`, `{"allOf":[{"required":["a"]},{"required":["b"]},{"required":["c"]}]}`, ProductTypeExtended, "#/allOf", no, no},
	{"allOf shrinks", `{"allOf":[{"required":["a"]},{"required":["b"]},{"required":["c"]}]}`, `{"allOf":[{"required":["a"]},{"required":["b"]}]}`, ProductTypeNarrowed, "#/allOf", yes, yes},
	{"anyOf grows", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `{"anyOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]}`, SumTypeExtended, "#/anyOf", yes, yes},
	{"oneOf shrinks", `{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]}`, `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, SumTypeNarrowed, "#/oneOf", no, no},
	{"anyOf alternative replaced", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `{"anyOf":[{"type":"string"},{"type":"boolean"}]}`, CombinedTypeSubschemasChanged, "#/anyOf", no, no},
	{"not widened", `{"not":{"type":"string"}}`, `{"not":{"type":["string","integer"]}}`, NotTypeExtended, "#/not", no, no},
	{"not narrowed", `{"not":{"type":["string","integer"]}}`, `{"not":{"type":"string"}}`, NotTypeNarrowed, "#/not", yes, yes},

	// Beyond Confluent.
	{"format added", `{"type":"string"}`, `{"type":"string","format":"email"}`, FormatAdded, "#/format", no, no},
	{"format removed", `{"type":"string","format":"email"}`, `{"type":"string"}`, FormatRemoved, "#/format", yes, yes},
	{"format changed", `{"type":"string","format":"email"}`, `{"type":"string","format":"uri"}`, FormatChanged, "#/format", no, no},
	{"conditional added", `{"type":"object"}`, `{"type":"object","if":{"required":["a"]},"then":{"required":["b"]}}`, ConditionalAdded, "#/if", no, no},
	{"conditional removed", `{"type":"object","if":{"required":["a"]},"then":{"required":["b"]}}`, `{"type":"object"}`, ConditionalRemoved, "#/if", yes, yes},
	{"conditional changed", `{"if":{"required":["a"]},"then":{"required":["b"]}}`, `{"if":{"required":["c"]},"then":{"required":["b"]}}`, ConditionalChanged, "#/if", no, no},
	{"propertyNames added", `{"type":"object"}`, `{"type":"object","propertyNames":{"pattern":"^[a-z]+$"}}`, PropertyNamesAdded, "#/propertyNames", no, no},
	{"propertyNames removed", `{"type":"object","propertyNames":{"maxLength":8}}`, `{"type":"object"}`, PropertyNamesRemoved, "#/propertyNames", yes, yes},
	{"pattern property added to open model", `{"type":"object"}`, `{"type":"object","patternProperties":{"^x-":{"type":"string"}}}`, PatternPropertyAdded, "#/patternProperties/^x-", no, yes},
	{"pattern property removed, open", `{"type":"object","patternProperties":{"^x-":{"type":"string"}}}`, `{"type":"object"}`, PatternPropertyRemoved, "#/patternProperties/^x-", yes, yes},

	// Beyond Confluent: narrowing-looking changes that keep every value.
	{"exclusiveMinimum to a lower minimum", `{"type":"number","exclusiveMinimum":10}`, `{"type":"number","minimum":5}`, LowerBoundIsCovered, "#/minimum", yes, yes},
	{"exclusiveMaximum to the same maximum", `{"type":"number","exclusiveMaximum":10}`, `{"type":"number","maximum":10}`, UpperBoundIsCovered, "#/maximum", yes, yes},
	{"multipleOf added to integers", `{"type":"integer"}`, `{"type":"integer","multipleOf":0.5}`, MultipleOfIsCovered, "#/multipleOf", yes, yes},
	{"conditional added, restating the schema", `{"type":"object","properties":{"a":{"type":"string"}}}`, `{"type":"object","properties":{"a":{"type":"string"}},"if":{"required":["a"]},"then":{"properties":{"a":{"type":"string"}}}}`, ConditionalAddedIsCovered, "#/if", yes, yes},
	{"conditional changed, branches covering", `{"if":{"required":["a"]},"then":{"required":["b"]}}`, `{"if":{"required":["c"]},"then":{"properties":{"b":{"title":"b"}}}}`, ConditionalChangedIsCovered, "#/if", yes, yes},
}

// contextualTypes have verdicts that depend on the schemas around them.
var contextualTypes = map[ChangeType]bool{PatternPropertyAdded: true, PatternPropertyRemoved: true}

func mustParse(t testing.TB, s string) any {
	t.Helper()
	v, err := ParseSchema([]byte(s))
	require.NoError(t, err, s)
	return v
}

// findDiff returns the difference of type typ at ptr.
func findDiff(t testing.TB, ds []Difference, typ ChangeType, ptr string) Difference {
	t.Helper()
	for _, d := range ds {
		if d.Type == typ && d.Pointer == ptr {
			return d
		}
	}
	require.Failf(t, "difference not found", "want %s at %s, got %v", typ, ptr, ds)
	return Difference{}
}

func runChangeCases(t *testing.T, cases []changeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			old, next := mustParse(t, tc.old), mustParse(t, tc.new)
			for _, p := range []struct {
				policy Policy
				want   bool
			}{{PolicyStrict, tc.strict}, {PolicyLenient, tc.lenient}} {
				ds, err := Diff(old, next, p.policy)
				require.NoError(t, err)
				d := findDiff(t, ds, tc.typ, tc.ptr)
				require.Equal(t, p.want, d.Compatible, "%s under %s: %s", tc.typ, p.policy, d.Message)
				require.NotEmpty(t, d.Message)
			}
		})
	}
}

func TestChangeTypes(t *testing.T) {
	t.Parallel()
	runChangeCases(t, changeCases)
}

// TestChangeTypeVerdictsMatchTable checks every case's expected verdicts
// against the package table, so the table and the spec rows agree.
func TestChangeTypeVerdictsMatchTable(t *testing.T) {
	t.Parallel()
	for _, tc := range changeCases {
		if contextualTypes[tc.typ] {
			continue
		}
		require.Equal(t, tc.strict, tc.typ.CompatibleUnder(PolicyStrict), "%s STRICT", tc.typ)
		require.Equal(t, tc.lenient, tc.typ.CompatibleUnder(PolicyLenient), "%s LENIENT", tc.typ)
		require.Equal(t, tc.strict, tc.typ.CompatibleUnder(""), "%s default policy", tc.typ)
	}
	require.False(t, TypeChanged.CompatibleUnder("bogus"))
	require.False(t, ChangeType("NOPE").CompatibleUnder(PolicyStrict))
}

// allChangeTypes collects every ChangeType constant declared in
// changetype.go by parsing the source, so a constant added without a test
// case (or without a table entry) fails TestEveryChangeTypeCovered.
func allChangeTypes(t *testing.T) []ChangeType {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "changetype.go", nil, 0)
	require.NoError(t, err)
	var out []ChangeType
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "ChangeType" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				require.True(t, ok, "ChangeType constant with a non-literal value")
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out = append(out, ChangeType(s))
			}
		}
	}
	require.NotEmpty(t, out)
	return out
}

func TestEveryChangeTypeCovered(t *testing.T) {
	t.Parallel()
	declared := allChangeTypes(t)
	covered := map[ChangeType]bool{}
	for _, tc := range changeCases {
		covered[tc.typ] = true
	}
	for _, typ := range declared {
		require.True(t, covered[typ], "no test case for %s", typ)
	}
	require.ElementsMatch(t, declared, ChangeTypes(), "ChangeTypes() and the declared constants differ")
	require.Len(t, declared, 132+15) // 132 table rows plus 15 beyond Confluent
}
