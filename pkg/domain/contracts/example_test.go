package contracts_test

import (
	"fmt"

	"github.com/prost-platform/prost/pkg/domain/contracts"
)

func ExampleLint() {
	c, err := contracts.ParseYAML([]byte(`
type: order.shipped
owner: shipping
description: An order left the warehouse.
level: light
schema: urn:prost:schema:order.shipped:1
compatibility: BACKWARD
consumers: [billing]
ordered: true
idempotency:
  key: [source, id]
`))
	if err != nil {
		panic(err)
	}
	for _, f := range contracts.Lint(c, contracts.LintOptions{}) {
		fmt.Println(f)
	}
	// Output:
	// gate A: level: the event crosses services (consumed by billing): it needs at least a standard contract
	// gate B: partition_key: an ordered event needs a partition key (a JSON pointer into data)
}

func ExampleFindCardNumber() {
	data := map[string]any{"customer": "c-1", "note": "card 4111-1111-1111-1111"}
	fmt.Println(contracts.FindCardNumber(data))
	// Output: /note true
}
