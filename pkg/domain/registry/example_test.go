package registry_test

import (
	"fmt"

	"github.com/prost-platform/prost/pkg/domain/registry"
)

func ExampleParseRef() {
	for _, ds := range []string{
		"urn:prost:schema:order.placed:2",
		"https://prost.example.com/v1/registry/subjects/order.placed/versions/1",
		"https://schemas.example.com/order.json",
	} {
		ref, ok, err := registry.ParseRef(ds)
		fmt.Println(ref.Subject, ref.Version, ok, err)
	}
	// Output:
	// order.placed 2 true <nil>
	// order.placed 1 true <nil>
	//  0 false <nil>
}
