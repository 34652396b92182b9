package schemacompat_test

import (
	"fmt"

	"github.com/prost-platform/prost/pkg/schemacompat"
)

func ExampleDiff() {
	previous, _ := schemacompat.ParseSchema([]byte(`{
		"type": "object",
		"properties": {"amount": {"type": "number", "maximum": 100}},
		"additionalProperties": false
	}`))
	next, _ := schemacompat.ParseSchema([]byte(`{
		"type": "object",
		"properties": {
			"amount": {"type": "number", "maximum": 50},
			"currency": {"type": "string", "default": "EUR"}
		},
		"required": ["currency"],
		"additionalProperties": false
	}`))
	diffs, err := schemacompat.Diff(previous, next, schemacompat.PolicyStrict)
	if err != nil {
		panic(err)
	}
	for _, d := range diffs {
		fmt.Println(d.Type, d.Pointer, d.Compatible)
	}
	fmt.Println("compatible:", schemacompat.IsCompatible(diffs))
	// Output:
	// MAXIMUM_DECREASED #/properties/amount/maximum false
	// REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL #/properties/currency true
	// compatible: false
}

func ExampleCheck() {
	v1, _ := schemacompat.ParseSchema([]byte(`{"type": "string", "maxLength": 20}`))
	v2, _ := schemacompat.ParseSchema([]byte(`{"type": "string", "maxLength": 10}`))
	next, _ := schemacompat.ParseSchema([]byte(`{"type": "string", "maxLength": 15}`))

	for _, mode := range []schemacompat.Mode{schemacompat.ModeBackward, schemacompat.ModeBackwardTransitive} {
		res, err := schemacompat.Check(mode, schemacompat.PolicyStrict, []any{v1, v2}, next)
		if err != nil {
			panic(err)
		}
		fmt.Println(mode, res.Compatible, res.Messages)
	}
	// Output:
	// BACKWARD true []
	// BACKWARD_TRANSITIVE false [version 1 (BACKWARD): MAX_LENGTH_DECREASED at #/maxLength: maxLength decreased from 20 to 15]
}
