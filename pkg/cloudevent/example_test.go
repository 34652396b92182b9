package cloudevent_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

func ExampleParseRequest() {
	r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(`{"order": 42}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Ce-Specversion", "1.0")
	r.Header.Set("Ce-Id", "e-1")
	r.Header.Set("Ce-Source", "/shop")
	r.Header.Set("Ce-Type", "order.created")
	r.Header.Set("Ce-Partitionkey", "tenant%207")

	mode, events, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(mode)
	fmt.Println(string(events[0].AppendJSON(nil)))
	// Output:
	// binary
	// {"specversion":"1.0","id":"e-1","source":"/shop","type":"order.created","datacontenttype":"application/json","partitionkey":"tenant 7","data":{"order":42}}
}

func ExampleValidationError() {
	body := `[{"specversion":"1.0","id":"1","source":"/s","type":"t"}, {"specversion":"1.0","id":2,"source":"/s"}]`
	r := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/cloudevents-batch+json")

	_, _, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
	if verr, ok := errors.AsType[*cloudevent.ValidationError](err); ok {
		for _, p := range verr.Problems {
			fmt.Printf("entry %d, field %q: %s\n", p.Index, p.Field, p.Detail)
		}
	}
	// Output:
	// entry 1, field "id": must be a string, got number
	// entry 1, field "type": required attribute is missing or empty
}
