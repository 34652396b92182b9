package cloudevent_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

const fullStructured = `{
  "specversion": "1.0",
  "id": "A234-1234-1234",
  "source": "https://example.com/orders",
  "type": "com.example.order.created",
  "datacontenttype": "application/json",
  "dataschema": "https://example.com/schemas/order.json",
  "subject": "order/42",
  "time": "2024-05-01T12:30:00.123+02:00",
  "partitionkey": "tenant-7",
  "sequence": 42,
  "sampled": true,
  "nothing": null,
  "data": {"amount": 12.5, "items": [1, 2], "note": "a b"}
}`

func fullEvent() cloudevent.Event {
	return cloudevent.Event{
		SpecVersion:     "1.0",
		ID:              "A234-1234-1234",
		Source:          "https://example.com/orders",
		Type:            "com.example.order.created",
		DataContentType: "application/json",
		DataSchema:      "https://example.com/schemas/order.json",
		Subject:         "order/42",
		Time:            time.Date(2024, 5, 1, 12, 30, 0, 123_000_000, time.FixedZone("", 2*3600)),
		Extensions:      map[string]any{"partitionkey": "tenant-7", "sequence": int32(42), "sampled": true},
		Data:            []byte(`{"amount":12.5,"items":[1,2],"note":"a b"}`),
	}
}

// minimal is a minimal valid structured event; tests splice members in.
func minimal(extra string) string {
	body := `{"specversion":"1.0","id":"1","source":"/s","type":"t"`
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

func minimalEvent() cloudevent.Event {
	return cloudevent.Event{SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t"}
}

func TestModeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ct      string
		want    cloudevent.Mode
		wantErr error
	}{
		{"", cloudevent.ModeBinary, nil},
		{"application/json", cloudevent.ModeBinary, nil},
		{"text/plain; charset=latin1", cloudevent.ModeBinary, nil},
		{"application/cloudevents+json", cloudevent.ModeStructured, nil},
		{"Application/CloudEvents+JSON; charset=UTF-8", cloudevent.ModeStructured, nil},
		{" APPLICATION/CLOUDEVENTS+JSON ;charset=\"utf8\"", cloudevent.ModeStructured, nil},
		{"application/cloudevents-batch+json", cloudevent.ModeBatch, nil},
		{"Application/CloudEvents-Batch+Json; charset=utf-8", cloudevent.ModeBatch, nil},
		{"application/cloudevents+avro", cloudevent.ModeStructured, cloudevent.ErrUnsupportedMediaType},
		{"application/cloudevents", cloudevent.ModeStructured, cloudevent.ErrUnsupportedMediaType},
		{"application/cloudevents+json; charset=latin1", cloudevent.ModeStructured, cloudevent.ErrUnsupportedMediaType},
		{"application/cloudevents-batch+xml", cloudevent.ModeBatch, cloudevent.ErrUnsupportedMediaType},
		{"application/cloudevents-batch", cloudevent.ModeBatch, cloudevent.ErrUnsupportedMediaType},
		{"application/cloudevents+json; charset", cloudevent.ModeStructured, cloudevent.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			t.Parallel()
			mode, err := cloudevent.ModeOf(tt.ct)
			require.Equal(t, tt.want, mode)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			if tt.wantErr == cloudevent.ErrInvalid {
				requireProblem(t, err, -1, "content-type", "malformed")
			}
		})
	}
}

func TestModeString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "binary", cloudevent.ModeBinary.String())
	require.Equal(t, "structured", cloudevent.ModeStructured.String())
	require.Equal(t, "batch", cloudevent.ModeBatch.String())
	require.Equal(t, "Mode(0)", cloudevent.Mode(0).String())
}

func TestIsJSONContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ct   string
		want bool
	}{
		{"", true},
		{"application/json", true},
		{"Application/JSON; charset=utf-8", true},
		{"text/json", true},
		{"application/vnd.api+json", true},
		{"application/LD+JSON;profile=x", true},
		{"text/plain", false},
		{"application/octet-stream", false},
		{"application/jsonx", false},
		{"application/json-seq", false},
		{"json", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, cloudevent.IsJSONContentType(tt.ct), "%q", tt.ct)
	}
}

func TestParseRequestStructured(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{
		"application/cloudevents+json",
		"Application/CloudEvents+JSON; charset=UTF-8",
		"APPLICATION/CLOUDEVENTS+JSON;charset=utf-8",
	} {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			mode, events, err := cloudevent.ParseRequest(newRequest(t, ct, fullStructured, nil), cloudevent.Limits{})
			require.NoError(t, err)
			require.Equal(t, cloudevent.ModeStructured, mode)
			require.Len(t, events, 1)
			requireEventEqual(t, fullEvent(), events[0])
		})
	}

	tests := []struct {
		name string
		body string
		want func(*cloudevent.Event)
	}{
		{"minimal", minimal(""), func(*cloudevent.Event) {}},
		{"data_base64", minimal(`"data_base64":"AAECAw=="`), func(e *cloudevent.Event) { e.DataBase64 = []byte{0, 1, 2, 3} }},
		{"empty data_base64", minimal(`"data_base64":""`), func(e *cloudevent.Event) { e.DataBase64 = []byte{} }},
		{"escaped slash in base64", minimal(`"data_base64":"\/w=="`), func(e *cloudevent.Event) { e.DataBase64 = []byte{0xff} }},
		{"data string", minimal(`"data":"hello"`), func(e *cloudevent.Event) { e.Data = []byte(`"hello"`) }},
		{"data null is absent", minimal(`"data":null`), func(*cloudevent.Event) {}},
		{"data null with data_base64", minimal(`"data":null,"data_base64":"AA=="`), func(e *cloudevent.Event) { e.DataBase64 = []byte{0} }},
		{"optional nulls are absent", minimal(`"subject":null,"time":null,"dataschema":null,"datacontenttype":null,"ext":null`), func(*cloudevent.Event) {}},
		{"escapes decoded", minimal(`"subject":"a\"b\\c\u00e9\ud83d\ude00\n"`), func(e *cloudevent.Event) { e.Subject = "a\"b\\cé😀\n" }},
		{"highest code point via surrogates", minimal(`"subject":"\udbff\udfff"`), func(e *cloudevent.Event) { e.Subject = "\U0010FFFF" }},
		{"member order free", `{"type":"t","source":"/s","id":"1","specversion":"1.0"}`, func(*cloudevent.Event) {}},
		{"whitespace everywhere", " \n\t{ \"specversion\" : \"1.0\" , \"id\":\"1\",\"source\":\"/s\",\"type\":\"t\" , \"data\" : [ 1 , { \"a\" : \" x \" } ] } \r\n",
			func(e *cloudevent.Event) { e.Data = []byte(`[1,{"a":" x "}]`) }},
		{"integer forms", minimal(`"a":-2147483648,"b":2147483647,"c":1.0,"d":1e2,"e":-0`), func(e *cloudevent.Event) {
			e.Extensions = map[string]any{"a": int32(-2147483648), "b": int32(2147483647), "c": int32(1), "d": int32(100), "e": int32(0)}
		}},
		{"urn source", minimal(`"dataschema":"urn:example:schema"`), func(e *cloudevent.Event) { e.DataSchema = "urn:example:schema" }},
		{"time UTC nanos", minimal(`"time":"2024-01-02T03:04:05.123456789Z"`), func(e *cloudevent.Event) {
			e.Time = time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
		}},
		{"extension name of 20 chars", minimal(`"abcdefghij0123456789":"x"`), func(e *cloudevent.Event) {
			e.Extensions = map[string]any{"abcdefghij0123456789": "x"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mode, events, err := cloudevent.ParseRequest(newRequest(t, ctStructured, tt.body, nil), cloudevent.Limits{})
			require.NoError(t, err)
			require.Equal(t, cloudevent.ModeStructured, mode)
			require.Len(t, events, 1)
			want := minimalEvent()
			tt.want(&want)
			requireEventEqual(t, want, events[0])
		})
	}
}

func TestParseStructuredProblems(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	tests := []struct {
		name   string
		body   string
		field  string
		detail string
	}{
		// specversion
		{"specversion missing", `{"id":"1","source":"/s","type":"t"}`, "specversion", "required"},
		{"specversion null", `{"specversion":null,"id":"1","source":"/s","type":"t"}`, "specversion", "required"},
		{"specversion 0.3", `{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, "specversion", `unsupported specversion "0.3"`},
		{"specversion number", `{"specversion":1.0,"id":"1","source":"/s","type":"t"}`, "specversion", "must be a string, got number"},
		// id
		{"id missing", `{"specversion":"1.0","source":"/s","type":"t"}`, "id", "required"},
		{"id empty", `{"specversion":"1.0","id":"","source":"/s","type":"t"}`, "id", "required"},
		{"id number", `{"specversion":"1.0","id":1,"source":"/s","type":"t"}`, "id", "must be a string, got number"},
		{"id bool", `{"specversion":"1.0","id":true,"source":"/s","type":"t"}`, "id", "must be a string, got boolean"},
		// source
		{"source missing", `{"specversion":"1.0","id":"1","type":"t"}`, "source", "required"},
		{"source empty", `{"specversion":"1.0","id":"1","source":"","type":"t"}`, "source", "required"},
		{"source number", `{"specversion":"1.0","id":"1","source":42,"type":"t"}`, "source", "must be a string, got number"},
		{"source object", `{"specversion":"1.0","id":"1","source":{},"type":"t"}`, "source", "must be a string, got object"},
		{"source with space", `{"specversion":"1.0","id":"1","source":"a b","type":"t"}`, "source", "without spaces"},
		{"source with control char", `{"specversion":"1.0","id":"1","source":"a\u0001b","type":"t"}`, "source", "control characters"},
		{"source unparsable", `{"specversion":"1.0","id":"1","source":"http://[::1","type":"t"}`, "source", "valid URI-reference"},
		{"source bad escape", `{"specversion":"1.0","id":"1","source":"/a%zz","type":"t"}`, "source", "valid URI-reference"},
		// type
		{"type missing", `{"specversion":"1.0","id":"1","source":"/s"}`, "type", "required"},
		{"type empty", `{"specversion":"1.0","id":"1","source":"/s","type":""}`, "type", "required"},
		{"type array", `{"specversion":"1.0","id":"1","source":"/s","type":["t"]}`, "type", "must be a string, got array"},
		// optional attributes
		{"time not RFC 3339", minimal(`"time":"yesterday"`), "time", "RFC 3339"},
		{"time date only", minimal(`"time":"2024-01-02"`), "time", "RFC 3339"},
		{"time without zone", minimal(`"time":"2024-01-02T03:04:05"`), "time", "RFC 3339"},
		{"time comma fraction", minimal(`"time":"2024-01-02T03:04:05,5Z"`), "time", "RFC 3339"},
		{"time lower-case t", minimal(`"time":"2024-01-02t03:04:05Z"`), "time", "RFC 3339"},
		{"time day out of range", minimal(`"time":"2024-02-30T03:04:05Z"`), "time", "RFC 3339"},
		{"time offset 24h", minimal(`"time":"2024-01-02T03:04:05+24:00"`), "time", "offset"},
		{"time zero instant", minimal(`"time":"0001-01-01T00:00:00Z"`), "time", "absent"},
		{"time number", minimal(`"time":1700000000`), "time", "must be a string, got number"},
		{"time empty", minimal(`"time":""`), "time", "RFC 3339"},
		{"dataschema relative", minimal(`"dataschema":"/schemas/x"`), "dataschema", "absolute URI"},
		{"dataschema empty", minimal(`"dataschema":""`), "dataschema", "not be empty"},
		{"dataschema with space", minimal(`"dataschema":"https://x/a b"`), "dataschema", "without spaces"},
		{"subject empty", minimal(`"subject":""`), "subject", "not be empty"},
		{"subject number", minimal(`"subject":7`), "subject", "must be a string"},
		{"datacontenttype empty", minimal(`"datacontenttype":""`), "datacontenttype", "not be empty"},
		{"datacontenttype no subtype", minimal(`"datacontenttype":"json"`), "datacontenttype", "type/subtype"},
		{"datacontenttype bad params", minimal(`"datacontenttype":"text/plain; charset"`), "datacontenttype", "valid media type"},
		{"datacontenttype bad chars", minimal(`"datacontenttype":"text/pla in"`), "datacontenttype", "valid media type"},
		// extensions
		{"extension upper case", minimal(`"Partitionkey":"x"`), "Partitionkey", "lower-case"},
		{"extension underscore", minimal(`"my_ext":"x"`), "my_ext", "lower-case"},
		{"extension too long", minimal(`"abcdefghij01234567890":"x"`), "abcdefghij01234567890", "1 to 20"},
		{"extension empty name", minimal(`"":"x"`), "", "1 to 20"},
		{"extension object", minimal(`"ext":{"a":1}`), "ext", "got object"},
		{"extension array", minimal(`"ext":[1]`), "ext", "got array"},
		{"extension fraction", minimal(`"ext":1.5`), "ext", "int32 range"},
		{"extension over int32", minimal(`"ext":2147483648`), "ext", "int32 range"},
		{"extension under int32", minimal(`"ext":-2147483649`), "ext", "int32 range"},
		{"extension exponent over int32", minimal(`"ext":1e10`), "ext", "int32 range"},
		// data
		{"data and data_base64", minimal(`"data":{},"data_base64":"AA=="`), "data", "mutually exclusive"},
		{"data_base64 invalid", minimal(`"data_base64":"!!!"`), "data_base64", "base64"},
		{"data_base64 unpadded", minimal(`"data_base64":"AAE"`), "data_base64", "base64"},
		{"data_base64 number", minimal(`"data_base64":12`), "data_base64", "must be a base64 string, got number"},
		// duplicates
		{"duplicate source", minimal(`"source":"/other"`), "source", "duplicate"},
		{"duplicate source via escape", minimal(`"sourc\u0065":"/other"`), "source", "duplicate"},
		{"duplicate specversion null first", `{"specversion":null,"specversion":"1.0","id":"1","source":"/s","type":"t"}`, "specversion", "duplicate"},
		{"duplicate extension", minimal(`"ext":"a","ext":"b"`), "ext", "duplicate"},
		{"duplicate extension null first", minimal(`"ext":null,"ext":"b"`), "ext", "duplicate"},
		{"duplicate extension invalid first", minimal(`"ext":[],"ext":"b"`), "ext", "duplicate"},
		{"duplicate data", minimal(`"data":1,"data":2`), "data", "duplicate"},
		// whole body
		{"empty body", "", "", "empty body"},
		{"whitespace body", " \n", "", "empty body"},
		{"array body", `[]`, "", "must be a JSON object, got array"},
		{"string body", `"x"`, "", "must be a JSON object, got string"},
		{"null body", `null`, "", "must be a JSON object, got null"},
		{"garbage body", `<xml/>`, "", "offset 0"},
		{"truncated", `{"specversion":"1.0",`, "", "unexpected end of input"},
		{"missing colon", `{"specversion" "1.0"}`, "", "offset 15"},
		{"missing comma", `{"specversion":"1.0" "id":"1"}`, "", "offset 21"},
		{"trailing comma", `{"specversion":"1.0",}`, "", "expecting a member name"},
		{"trailing data", minimal("") + " {}", "", "after top-level value"},
		{"single quotes", `{'id':'1'}`, "", "expecting a member name"},
		{"unquoted data", minimal(`"data":{a:1}`), "", "expecting a member name"},
		{"bad literal", minimal(`"data":tru`), "", "in literal true"},
		{"bad number", minimal(`"data":01`), "", "expecting ',' or '}'"},
		{"bad exponent", minimal(`"ext":1e`), "", "exponent"},
		{"raw control char in string", "{\"id\":\"a\tb\"}", "", "control characters"},
		{"bad escape", minimal(`"subject":"\x"`), "", "string escape"},
		{"bad unicode escape", minimal(`"subject":"\u12g4"`), "", "hex digits"},
		{"unpaired high surrogate", minimal(`"subject":"\ud800x"`), "subject", "unpaired UTF-16 surrogate"},
		{"unpaired low surrogate", minimal(`"ext":"\udc00"`), "ext", "unpaired UTF-16 surrogate"},
		{"unpaired surrogate in a member name", minimal(`"e\udc00":"x"`), "e\ufffd", "lower-case letters"},
		{"invalid UTF-8", minimal(`"subject":"caf` + "\xe9" + `"`), "", "not valid UTF-8"},
		{"invalid UTF-8 in data", minimal(`"data":"` + "\xff\xfe" + `"`), "", "not valid UTF-8"},
		{"deep nesting", minimal(`"data":` + long), "", "nested deeper"},
		{"unterminated string", `{"id":"abc`, "", "unexpected end of input in string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mode, events, err := cloudevent.ParseRequest(newRequest(t, ctStructured, tt.body, nil), cloudevent.Limits{})
			require.Equal(t, cloudevent.ModeStructured, mode)
			require.Nil(t, events)
			requireProblem(t, err, -1, tt.field, tt.detail)
		})
	}
}

func TestParseStructuredCollectsAllProblems(t *testing.T) {
	t.Parallel()
	body := `{"specversion":"1.0","id":5,"source":"a b","time":"noon","Bad":"x","ext":{},"data_base64":"*"}`
	_, err := cloudevent.ParseStructured([]byte(body))
	probs := validationProblems(t, err)
	fields := make([]string, 0, len(probs))
	for _, p := range probs {
		require.Equal(t, -1, p.Index)
		fields = append(fields, p.Field)
	}
	require.ElementsMatch(t, []string{"id", "source", "type", "time", "Bad", "ext", "data_base64"}, fields)
	// The id is reported once, as a type error, not again as missing.
	requireProblem(t, err, -1, "id", "must be a string, got number")
}

func TestParseRequestBinary(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"Ce-Specversion": "1.0",
		"Ce-Id":          "A234",
		"Ce-Source":      "https://example.com/orders",
		"Ce-Type":        "com.example.order.created",
	}
	with := func(extra map[string]string) map[string]string {
		h := make(map[string]string, len(base)+len(extra))
		for k, v := range base {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	baseEvent := func() cloudevent.Event {
		return cloudevent.Event{SpecVersion: "1.0", ID: "A234", Source: "https://example.com/orders", Type: "com.example.order.created"}
	}
	tests := []struct {
		name string
		ct   string
		hdr  map[string]string
		body string
		want func(*cloudevent.Event)
	}{
		{"json body", "application/json; charset=utf-8", with(map[string]string{
			"Ce-Time":         "2024-05-01T12:30:00Z",
			"Ce-Subject":      "caf%C3%A9%20au%20lait",
			"Ce-Dataschema":   "https://example.com/s.json",
			"Ce-Partitionkey": "tenant%207",
			"CE-TRACEPARENT":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		}), `{ "amount": 12.5 }`, func(e *cloudevent.Event) {
			e.DataContentType = "application/json; charset=utf-8"
			e.Time = time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)
			e.Subject = "café au lait"
			e.DataSchema = "https://example.com/s.json"
			e.Extensions = map[string]any{"partitionkey": "tenant 7", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
			e.Data = []byte(`{"amount":12.5}`)
		}},
		{"lower-case header names", "", map[string]string{
			"ce-specversion": "1.0", "ce-id": "A234", "ce-source": "https://example.com/orders", "ce-type": "com.example.order.created",
		}, "", func(*cloudevent.Event) {}},
		{"binary body", "application/octet-stream", base, "\x00\x01\xff", func(e *cloudevent.Event) {
			e.DataContentType = "application/octet-stream"
			e.DataBase64 = []byte{0, 1, 0xff}
		}},
		{"text body", "text/plain", base, "hello", func(e *cloudevent.Event) {
			e.DataContentType = "text/plain"
			e.DataBase64 = []byte("hello")
		}},
		{"absent content type means JSON", "", base, `[1, 2]`, func(e *cloudevent.Event) { e.Data = []byte(`[1,2]`) }},
		{"plus-json content type", "application/vnd.order+json", base, `"s"`, func(e *cloudevent.Event) {
			e.DataContentType = "application/vnd.order+json"
			e.Data = []byte(`"s"`)
		}},
		{"empty body", "application/json", base, "", func(e *cloudevent.Event) { e.DataContentType = "application/json" }},
		{"null body is absent data", "application/json", base, " null ", func(e *cloudevent.Event) { e.DataContentType = "application/json" }},
		{"percent-encoded core attribute", "", with(map[string]string{"Ce-Id": "%41%62"}), "", func(e *cloudevent.Event) { e.ID = "Ab" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mode, events, err := cloudevent.ParseRequest(newRequest(t, tt.ct, tt.body, tt.hdr), cloudevent.Limits{})
			require.NoError(t, err)
			require.Equal(t, cloudevent.ModeBinary, mode)
			require.Len(t, events, 1)
			want := baseEvent()
			tt.want(&want)
			requireEventEqual(t, want, events[0])
			requireRoundTrip(t, events[0])
		})
	}
}

func TestParseBinaryProblems(t *testing.T) {
	t.Parallel()
	valid := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "/s", "Ce-Type": "t"}
	with := func(extra map[string]string, drop ...string) map[string]string {
		h := map[string]string{}
		for k, v := range valid {
			h[k] = v
		}
		for _, k := range drop {
			delete(h, k)
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	tests := []struct {
		name   string
		ct     string
		hdr    map[string]string
		body   string
		field  string
		detail string
	}{
		{"specversion missing", "", with(nil, "Ce-Specversion"), "", "ce-specversion", "required"},
		{"specversion 0.3", "", with(map[string]string{"Ce-Specversion": "0.3"}), "", "ce-specversion", "unsupported"},
		{"id missing", "", with(nil, "Ce-Id"), "", "ce-id", "required"},
		{"id empty", "", with(map[string]string{"Ce-Id": ""}), "", "ce-id", "required"},
		{"source missing", "", with(nil, "Ce-Source"), "", "ce-source", "required"},
		{"source with encoded space", "", with(map[string]string{"Ce-Source": "a%20b"}), "", "ce-source", "without spaces"},
		{"type missing", "", with(nil, "Ce-Type"), "", "ce-type", "required"},
		{"time invalid", "", with(map[string]string{"Ce-Time": "noon"}), "", "ce-time", "RFC 3339"},
		{"time zero instant", "", with(map[string]string{"Ce-Time": "0001-01-01T00:00:00Z"}), "", "ce-time", "absent"},
		{"dataschema relative", "", with(map[string]string{"Ce-Dataschema": "schemas/x"}), "", "ce-dataschema", "absolute URI"},
		{"subject empty", "", with(map[string]string{"Ce-Subject": ""}), "", "ce-subject", "not be empty"},
		{"ce-datacontenttype", "", with(map[string]string{"Ce-Datacontenttype": "application/json"}), "", "ce-datacontenttype", "Content-Type header"},
		{"ce-data", "", with(map[string]string{"Ce-Data": "x"}), "", "ce-data", "body"},
		{"ce-data_base64", "", with(map[string]string{"Ce-Data_base64": "AA=="}), "", "ce-data_base64", "body"},
		{"extension with dash", "", with(map[string]string{"Ce-My-Ext": "x"}), "", "ce-my-ext", "lower-case"},
		{"extension too long", "", with(map[string]string{"Ce-Abcdefghij01234567890": "x"}), "", "ce-abcdefghij01234567890", "1 to 20"},
		{"malformed escape", "", with(map[string]string{"Ce-Subject": "a%zzb"}), "", "ce-subject", "malformed percent-encoding at byte 1"},
		{"truncated escape", "", with(map[string]string{"Ce-Partitionkey": "ab%4"}), "", "ce-partitionkey", "malformed percent-encoding"},
		{"invalid UTF-8 after decoding", "", with(map[string]string{"Ce-Subject": "caf%E9"}), "", "ce-subject", "not valid UTF-8"},
		{"invalid UTF-8 in extension", "", with(map[string]string{"Ce-Ext": "%C3%28"}), "", "ce-ext", "not valid UTF-8"},
		{"invalid content type", "json", valid, "x", "content-type", "type/subtype"},
		{"invalid UTF-8 content type", "text/plain; x=\"\xff\"", valid, "x", "content-type", "not valid UTF-8"},
		{"malformed content type params", "text/plain; charset", valid, "x", "content-type", "valid media type"},
		{"invalid JSON body", "application/json", valid, `{"a":}`, "data", "not valid JSON"},
		{"JSON body with trailing data", "application/json", valid, `{} {}`, "data", "after top-level value"},
		{"non-JSON body without content type", "", valid, "hello", "data", "absent, so JSON is assumed"},
		{"invalid UTF-8 JSON body", "application/json", valid, "\"\xff\"", "data", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mode, events, err := cloudevent.ParseRequest(newRequest(t, tt.ct, tt.body, tt.hdr), cloudevent.Limits{})
			require.Equal(t, cloudevent.ModeBinary, mode)
			require.Nil(t, events)
			requireProblem(t, err, -1, tt.field, tt.detail)
		})
	}

	t.Run("repeated header", func(t *testing.T) {
		t.Parallel()
		r := newRequest(t, "", "", valid)
		r.Header.Add("Ce-Id", "2")
		_, _, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		requireProblem(t, err, -1, "ce-id", "exactly once")
	})
	t.Run("same header in two cases", func(t *testing.T) {
		t.Parallel()
		r := newRequest(t, "", "", valid)
		r.Header["ce-id"] = []string{"2"} // bypasses canonicalisation
		r.Header["ce-ext"] = []string{"a"}
		r.Header["CE-EXT"] = []string{"b"}
		_, _, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		requireProblem(t, err, -1, "ce-id", "exactly once")
		requireProblem(t, err, -1, "ce-ext", "exactly once")
	})
	t.Run("header without attribute name", func(t *testing.T) {
		t.Parallel()
		r := newRequest(t, "", "", valid)
		r.Header["Ce-"] = []string{"x"}
		_, _, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		requireProblem(t, err, -1, "ce-", "names no attribute")
	})
	t.Run("repeated content type", func(t *testing.T) {
		t.Parallel()
		r := newRequest(t, "text/plain", "x", valid)
		r.Header.Add("Content-Type", "text/html")
		_, _, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		requireProblem(t, err, -1, "content-type", "at most once")
	})
	t.Run("all problems collected", func(t *testing.T) {
		t.Parallel()
		_, _, err := cloudevent.ParseRequest(newRequest(t, "", "", map[string]string{
			"Ce-Specversion": "2.0", "Ce-Time": "x", "Ce-Bad_name": "x",
		}), cloudevent.Limits{})
		probs := validationProblems(t, err)
		fields := []string{}
		for _, p := range probs {
			fields = append(fields, p.Field)
		}
		require.ElementsMatch(t, []string{"ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-bad_name"}, fields)
	})
}

func TestParseRequestBatch(t *testing.T) {
	t.Parallel()
	two := "[" + fullStructured + ",\n" + minimal(`"data_base64":"aGk="`) + "]"
	second := minimalEvent()
	second.DataBase64 = []byte("hi")
	tests := []struct {
		name string
		ct   string
		body string
		want []cloudevent.Event
	}{
		{"two events", ctBatch, two, []cloudevent.Event{fullEvent(), second}},
		{"content type variation", "Application/CloudEvents-Batch+JSON; charset=UTF-8", two, []cloudevent.Event{fullEvent(), second}},
		{"empty batch", ctBatch, `[]`, []cloudevent.Event{}},
		{"empty batch with whitespace", ctBatch, " [ \n ] ", []cloudevent.Event{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mode, events, err := cloudevent.ParseRequest(newRequest(t, tt.ct, tt.body, nil), cloudevent.Limits{})
			require.NoError(t, err)
			require.Equal(t, cloudevent.ModeBatch, mode)
			require.NotNil(t, events)
			require.Len(t, events, len(tt.want))
			for i := range tt.want {
				requireEventEqual(t, tt.want[i], events[i])
			}
		})
	}
}

func TestParseBatchProblems(t *testing.T) {
	t.Parallel()
	t.Run("problems of every entry", func(t *testing.T) {
		t.Parallel()
		body := "[" + strings.Join([]string{
			minimal(""),
			`{"specversion":"1.0","id":"2","type":7}`,
			`"not an event"`,
			minimal(`"time":"noon"`),
			`[1,2]`,
			minimal(`"Ext":"x","data":1,"data_base64":"AA=="`),
		}, ",") + "]"
		mode, events, err := cloudevent.ParseRequest(newRequest(t, ctBatch, body, nil), cloudevent.Limits{})
		require.Equal(t, cloudevent.ModeBatch, mode)
		require.Nil(t, events)
		probs := validationProblems(t, err)
		type key struct {
			Index int
			Field string
		}
		got := []key{}
		for _, p := range probs {
			got = append(got, key{p.Index, p.Field})
		}
		require.Equal(t, []key{
			{1, "type"}, {1, "source"},
			{2, ""},
			{3, "time"},
			{4, ""},
			{5, "Ext"}, {5, "data"},
		}, got)
		requireProblem(t, err, 1, "type", "must be a string, got number")
		requireProblem(t, err, 1, "source", "required")
		requireProblem(t, err, 2, "", "batch entry must be a JSON object, got string")
		requireProblem(t, err, 4, "", "batch entry must be a JSON object, got array")
		require.Contains(t, err.Error(), "events[1].type: must be a string")
		require.Contains(t, err.Error(), "and 2 more")
	})

	tests := []struct {
		name   string
		body   string
		index  int
		field  string
		detail string
	}{
		{"object body", minimal(""), -1, "", "must be a JSON array, got object"},
		{"empty body", "", -1, "", "empty body"},
		{"malformed entry", "[" + minimal("") + `,{"id":}]`, -1, "", "offset"},
		{"missing comma", "[{} {}]", -1, "", "expecting ',' or ']'"},
		{"trailing comma", "[{},]", -1, "", "where a value was expected"},
		{"unterminated", "[{}", -1, "", "unexpected end of input"},
		{"trailing data", "[] []", -1, "", "after top-level value"},
		{"invalid UTF-8", "[\"\xc3\x28\"]", -1, "", "not valid UTF-8"},
		{"duplicate member in entry", "[" + minimal("") + "," + minimal(`"id":"2"`) + "]", 1, "id", "duplicate"},
		{"null entry", "[null]", 0, "", "got null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, events, err := cloudevent.ParseRequest(newRequest(t, ctBatch, tt.body, nil), cloudevent.Limits{})
			require.Nil(t, events)
			requireProblem(t, err, tt.index, tt.field, tt.detail)
		})
	}
}

func TestBatchLimit(t *testing.T) {
	t.Parallel()
	batch := func(n int, entry string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(entry+",", n), ",") + "]"
	}
	tests := []struct {
		name    string
		lim     cloudevent.Limits
		n       int
		entry   string
		wantErr bool
	}{
		{"at limit", cloudevent.Limits{MaxBatch: 3}, 3, minimal(""), false},
		{"over limit", cloudevent.Limits{MaxBatch: 3}, 4, minimal(""), true},
		{"default limit", cloudevent.Limits{}, 1000, minimal(""), false},
		// Invalid entries past the limit: the size error wins.
		{"over default limit", cloudevent.Limits{MaxBatch: -1}, 1001, `{}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, events, err := cloudevent.ParseRequest(newRequest(t, ctBatch, batch(tt.n, tt.entry), nil), tt.lim)
			if !tt.wantErr {
				require.NoError(t, err)
				require.Len(t, events, tt.n)
				return
			}
			require.ErrorIs(t, err, cloudevent.ErrTooLarge)
			require.NotErrorIs(t, err, cloudevent.ErrInvalid)
			require.Contains(t, err.Error(), fmt.Sprintf("more than %d events", tt.n-1))
			require.Nil(t, events)
		})
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const max = 1024
	lim := cloudevent.Limits{MaxBodyBytes: max}

	t.Run("unknown length is read through the limit", func(t *testing.T) {
		t.Parallel()
		for _, ct := range []string{ctStructured, ctBatch, "application/json", ""} {
			src := &limitedReader{t: t, max: max + 1}
			r := httptest.NewRequest(http.MethodPost, "/v1/events", io.NopCloser(src))
			r.ContentLength = -1
			r.Header.Set("Content-Type", ct)
			_, events, err := cloudevent.ParseRequest(r, lim)
			require.ErrorIs(t, err, cloudevent.ErrTooLarge, ct)
			require.Contains(t, err.Error(), "limit of 1024 bytes")
			require.Nil(t, events)
			require.Equal(t, int64(max+1), src.read)
		}
	})
	t.Run("declared length over the limit is not read", func(t *testing.T) {
		t.Parallel()
		src := &limitedReader{t: t, max: 0}
		r := httptest.NewRequest(http.MethodPost, "/v1/events", io.NopCloser(src))
		r.ContentLength = max + 1
		r.Header.Set("Content-Type", ctStructured)
		_, _, err := cloudevent.ParseRequest(r, lim)
		require.ErrorIs(t, err, cloudevent.ErrTooLarge)
		require.Contains(t, err.Error(), "1025 bytes exceeds the limit of 1024 bytes")
		require.Zero(t, src.read)
	})
	t.Run("exactly at the limit", func(t *testing.T) {
		t.Parallel()
		body := minimal("")
		body += strings.Repeat(" ", max-len(body))
		for _, cl := range []int64{max, -1} {
			r := newRequest(t, ctStructured, body, nil)
			r.ContentLength = cl
			_, events, err := cloudevent.ParseRequest(r, lim)
			require.NoError(t, err)
			require.Len(t, events, 1)
		}
	})
	t.Run("one byte over the limit", func(t *testing.T) {
		t.Parallel()
		body := minimal("")
		body += strings.Repeat(" ", max+1-len(body))
		r := newRequest(t, ctStructured, body, nil)
		r.ContentLength = -1
		_, _, err := cloudevent.ParseRequest(r, lim)
		require.ErrorIs(t, err, cloudevent.ErrTooLarge)
	})
	t.Run("default limit is 1 MiB", func(t *testing.T) {
		t.Parallel()
		src := &limitedReader{t: t, max: 1<<20 + 1}
		r := httptest.NewRequest(http.MethodPost, "/v1/events", io.NopCloser(src))
		r.ContentLength = -1
		_, _, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		require.ErrorIs(t, err, cloudevent.ErrTooLarge)
		require.Equal(t, int64(1<<20+1), src.read)
	})
	t.Run("http.MaxBytesReader counts as too large", func(t *testing.T) {
		t.Parallel()
		r := newRequest(t, ctStructured, minimal(""), nil)
		r.ContentLength = -1
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
		_, _, err := cloudevent.ParseRequest(r, lim)
		require.ErrorIs(t, err, cloudevent.ErrTooLarge)
		_, ok := errors.AsType[*http.MaxBytesError](err)
		require.True(t, ok)
	})
	t.Run("read errors are passed on", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("connection reset")
		r := newRequest(t, ctStructured, "", nil)
		r.Body = io.NopCloser(io.MultiReader(strings.NewReader("{"), errReader{boom}))
		r.ContentLength = -1
		_, _, err := cloudevent.ParseRequest(r, lim)
		require.ErrorIs(t, err, boom)
		require.NotErrorIs(t, err, cloudevent.ErrInvalid)
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestUnsupportedMediaType(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{
		"application/cloudevents+avro",
		"application/cloudevents+protobuf; charset=utf-8",
		"application/cloudevents-batch+xml",
		"application/cloudevents+json; charset=iso-8859-1",
	} {
		src := &limitedReader{t: t, max: 0}
		r := httptest.NewRequest(http.MethodPost, "/v1/events", io.NopCloser(src))
		r.Header.Set("Content-Type", ct)
		_, events, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		require.ErrorIs(t, err, cloudevent.ErrUnsupportedMediaType, ct)
		require.NotErrorIs(t, err, cloudevent.ErrInvalid)
		require.Nil(t, events)
		require.Zero(t, src.read, "the body must not be read")
	}
}

func TestValidationErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		probs []cloudevent.Problem
		want  string
	}{
		{nil, "cloudevent: invalid event"},
		{[]cloudevent.Problem{{Index: -1, Field: "source", Detail: "required"}}, "cloudevent: invalid event: source: required"},
		{[]cloudevent.Problem{{Index: -1, Detail: "bad JSON"}}, "cloudevent: invalid event: body: bad JSON"},
		{[]cloudevent.Problem{{Index: 3, Detail: "not an object"}, {Index: 4, Field: "id", Detail: "required"}},
			"cloudevent: invalid event: events[3]: not an object; events[4].id: required"},
		{[]cloudevent.Problem{
			{Index: -1, Field: "a", Detail: "1"}, {Index: -1, Field: "b", Detail: "2"}, {Index: -1, Field: "c", Detail: "3"},
			{Index: -1, Field: "d", Detail: "4"}, {Index: -1, Field: "e", Detail: "5"}, {Index: -1, Field: "f", Detail: "6"},
			{Index: -1, Field: "g", Detail: "7"},
		}, "cloudevent: invalid event: a: 1; b: 2; c: 3; d: 4; e: 5; and 2 more"},
	}
	for _, tt := range tests {
		err := &cloudevent.ValidationError{Problems: tt.probs}
		require.Equal(t, tt.want, err.Error())
		require.ErrorIs(t, err, cloudevent.ErrInvalid)
	}
	require.Equal(t, "events[0].ce-id: x", cloudevent.Problem{Index: 0, Field: "ce-id", Detail: "x"}.String())
}
