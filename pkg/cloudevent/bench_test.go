package cloudevent_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

// benchEvent is a typical ingest event of about 500 bytes.
const benchEvent = `{"specversion":"1.0","id":"01J2Z8Q6W3X9V4K7M5N1P0R2S3","source":"https://shop.example.com/orders",` +
	`"type":"com.example.order.created","datacontenttype":"application/json","subject":"order/982341",` +
	`"time":"2024-05-01T12:30:00.123456Z","partitionkey":"tenant-7","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",` +
	`"sequence":42,"data":{"orderId":"982341","customer":{"id":"c-77","tier":"gold"},"items":[{"sku":"A-1","qty":2,"price":12.5},` +
	`{"sku":"B-7","qty":1,"price":99.99}],"currency":"EUR","total":124.99}}`

// benchRequest returns a request whose body can be rewound cheaply.
func benchRequest(ct, body string) (*http.Request, func()) {
	rd := bytes.NewReader([]byte(body))
	r := httptest.NewRequest(http.MethodPost, "/v1/events", nil)
	r.Header.Set("Content-Type", ct)
	r.Body = io.NopCloser(rd)
	r.ContentLength = int64(len(body))
	return r, func() { rd.Seek(0, io.SeekStart) }
}

func benchParse(b *testing.B, ct, body string, want int) {
	r, rewind := benchRequest(ct, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rewind()
		_, events, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		if err != nil || len(events) != want {
			b.Fatalf("got %d events, err %v", len(events), err)
		}
	}
}

func BenchmarkParseStructured(b *testing.B) {
	benchParse(b, ctStructured, benchEvent, 1)
}

func BenchmarkParseBatch100(b *testing.B) {
	benchParse(b, ctBatch, "["+strings.TrimSuffix(strings.Repeat(benchEvent+",", 100), ",")+"]", 100)
}

func BenchmarkParseBinary(b *testing.B) {
	ev, err := cloudevent.ParseStructured([]byte(benchEvent))
	if err != nil {
		b.Fatal(err)
	}
	r, rewind := benchRequest("application/json", string(ev.Data))
	for _, name := range []string{"specversion", "id", "source", "type", "subject", "time", "partitionkey", "traceparent", "sequence"} {
		v, _ := ev.Attribute(name)
		r.Header.Set("Ce-"+name, v)
	}
	b.SetBytes(int64(len(ev.Data)))
	b.ReportAllocs()
	for b.Loop() {
		rewind()
		_, events, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		if err != nil || len(events) != 1 {
			b.Fatalf("got %d events, err %v", len(events), err)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev, err := cloudevent.ParseStructured([]byte(benchEvent))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0])
	}
}
