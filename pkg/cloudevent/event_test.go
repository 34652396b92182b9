package cloudevent_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, fullEventPtr().Validate())
	ev := fullEvent()
	require.Nil(t, ev.Validate(), "a valid event must give a nil error interface")

	tests := []struct {
		name   string
		mutate func(*cloudevent.Event)
		field  string
		detail string
	}{
		{"specversion empty", func(e *cloudevent.Event) { e.SpecVersion = "" }, "specversion", "required"},
		{"specversion 1.1", func(e *cloudevent.Event) { e.SpecVersion = "1.1" }, "specversion", "unsupported"},
		{"id empty", func(e *cloudevent.Event) { e.ID = "" }, "id", "required"},
		{"id invalid UTF-8", func(e *cloudevent.Event) { e.ID = "\xff" }, "id", "UTF-8"},
		{"source empty", func(e *cloudevent.Event) { e.Source = "" }, "source", "required"},
		{"source space", func(e *cloudevent.Event) { e.Source = "/a b" }, "source", "without spaces"},
		{"source DEL", func(e *cloudevent.Event) { e.Source = "/a\x7f" }, "source", "control characters"},
		{"source invalid UTF-8", func(e *cloudevent.Event) { e.Source = "/\xff" }, "source", "UTF-8"},
		{"type empty", func(e *cloudevent.Event) { e.Type = "" }, "type", "required"},
		{"dataschema relative", func(e *cloudevent.Event) { e.DataSchema = "x.json" }, "dataschema", "absolute URI"},
		{"dataschema unparsable", func(e *cloudevent.Event) { e.DataSchema = "http://[x" }, "dataschema", "valid URI-reference"},
		{"datacontenttype invalid", func(e *cloudevent.Event) { e.DataContentType = "text/plain;;" }, "datacontenttype", "valid media type"},
		{"datacontenttype no subtype", func(e *cloudevent.Event) { e.DataContentType = "text/" }, "datacontenttype", "media type"},
		{"subject invalid UTF-8", func(e *cloudevent.Event) { e.Subject = "\xc3" }, "subject", "UTF-8"},
		{"time year 10000", func(e *cloudevent.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time", "year"},
		{"time negative year", func(e *cloudevent.Event) { e.Time = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, "time", "year"},
		{"time offset seconds", func(e *cloudevent.Event) { e.Time = time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", 30)) }, "time", "offset"},
		{"time offset 24h", func(e *cloudevent.Event) { e.Time = time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)) }, "time", "offset"},
		// RFC 3339 allows both; PostgreSQL's timestamptz takes neither.
		{"time year 0000", func(e *cloudevent.Event) { e.Time = time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC) }, "time", "year"},
		{"time offset 16h", func(e *cloudevent.Event) { e.Time = time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", -16*3600)) }, "time", "offset"},
		{"extension reserved id", func(e *cloudevent.Event) { e.Extensions["id"] = "x" }, "id", "reserved"},
		{"extension reserved data", func(e *cloudevent.Event) { e.Extensions["data"] = "x" }, "data", "reserved"},
		{"extension reserved time", func(e *cloudevent.Event) { e.Extensions["time"] = "x" }, "time", "reserved"},
		{"extension name upper", func(e *cloudevent.Event) { e.Extensions["aB"] = "x" }, "aB", "lower-case"},
		{"extension name empty", func(e *cloudevent.Event) { e.Extensions[""] = "x" }, "", "1 to 20"},
		{"extension name 21 chars", func(e *cloudevent.Event) { e.Extensions[strings.Repeat("a", 21)] = "x" }, strings.Repeat("a", 21), "1 to 20"},
		{"extension float", func(e *cloudevent.Event) { e.Extensions["f"] = 1.5 }, "f", "float64"},
		{"extension int", func(e *cloudevent.Event) { e.Extensions["i"] = 1 }, "i", "type int"},
		{"extension nil", func(e *cloudevent.Event) { e.Extensions["n"] = nil }, "n", "nil"},
		{"extension invalid UTF-8", func(e *cloudevent.Event) { e.Extensions["s"] = "\xff" }, "s", "UTF-8"},
		{"data invalid JSON", func(e *cloudevent.Event) { e.Data = []byte("{") }, "data", "not a valid JSON"},
		{"data and data_base64", func(e *cloudevent.Event) { e.DataBase64 = []byte{1} }, "data", "mutually exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := fullEvent()
			tt.mutate(&ev)
			err := ev.Validate()
			requireProblem(t, err, -1, tt.field, tt.detail)
			require.Len(t, validationProblems(t, err), 1, "only the broken attribute is reported")
			_, err = ev.MarshalJSON()
			requireProblem(t, err, -1, tt.field, tt.detail)
		})
	}
}

func fullEventPtr() *cloudevent.Event {
	ev := fullEvent()
	return &ev
}

func TestAppendJSONCanonical(t *testing.T) {
	t.Parallel()
	ev := cloudevent.Event{
		SpecVersion:     "1.0",
		ID:              "id-1",
		Source:          "https://example.com/src",
		Type:            "com.example.t",
		DataContentType: "application/octet-stream",
		DataSchema:      "https://example.com/schema",
		Subject:         "q\"b\\s/\n\r\t\x01\x1f<>&é\u2028\u2029😀\x7f",
		Time:            time.Date(2024, 5, 1, 12, 30, 0, 1, time.FixedZone("", -(5*3600+30*60))),
		Extensions:      map[string]any{"zeta": "z", "alpha": int32(-7), "mid": false, "big": int32(2147483647)},
		DataBase64:      []byte{0xde, 0xad, 0xbe, 0xef},
	}
	want := `{"specversion":"1.0","id":"id-1","source":"https://example.com/src","type":"com.example.t",` +
		`"datacontenttype":"application/octet-stream","dataschema":"https://example.com/schema",` +
		`"subject":"q\"b\\s/\n\r\t\u0001\u001f<>&é\u2028\u2029😀` + "\x7f" + `",` +
		`"time":"2024-05-01T12:30:00.000000001-05:30",` +
		`"alpha":-7,"big":2147483647,"mid":false,"zeta":"z",` +
		`"data_base64":"3q2+7w=="}`
	require.Equal(t, want, string(ev.AppendJSON(nil)))
	requireRoundTrip(t, ev)

	// AppendJSON appends.
	require.Equal(t, "prefix"+want, string(ev.AppendJSON([]byte("prefix"))))

	// Absent optional attributes are omitted; Data is written as is.
	minimal := cloudevent.Event{SpecVersion: "1.0", ID: "1", Source: "/s", Type: "t", Data: []byte(`{"a":[1,"x"]}`)}
	require.Equal(t, `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":[1,"x"]}}`, string(minimal.AppendJSON(nil)))

	// Empty (non-nil) binary data is kept.
	minimal.Data, minimal.DataBase64 = nil, []byte{}
	require.Equal(t, `{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":""}`, string(minimal.AppendJSON(nil)))
	requireRoundTrip(t, minimal)
}

func TestAppendJSONInvalidEventStaysWellFormed(t *testing.T) {
	t.Parallel()
	ev := cloudevent.Event{
		SpecVersion: "1.0", ID: "\xff", Source: "/s", Type: "t",
		Extensions: map[string]any{"id": "dup", "f": 1.5, "ok": "y"},
	}
	out := ev.AppendJSON(nil)
	require.True(t, json.Valid(out), "%s", out)
	require.Equal(t, `{"specversion":"1.0","id":"\ufffd","source":"/s","type":"t","f":null,"ok":"y"}`, string(out))
}

func TestMarshalUnmarshalJSON(t *testing.T) {
	t.Parallel()
	ev := fullEvent()
	out, err := json.Marshal(&ev)
	require.NoError(t, err)
	require.Equal(t, string(ev.AppendJSON(nil)), string(out))

	var back cloudevent.Event
	require.NoError(t, json.Unmarshal(out, &back))
	requireEventEqual(t, ev, back)

	// Unmarshal inside a larger document, and the event does not alias the input.
	var doc struct {
		Events []cloudevent.Event `json:"events"`
	}
	in := []byte(`{"events":[` + string(out) + `]}`)
	require.NoError(t, json.Unmarshal(in, &doc))
	require.Len(t, doc.Events, 1)
	for i := range in {
		in[i] = 'x'
	}
	requireEventEqual(t, ev, doc.Events[0])

	// An invalid event is an error and leaves the target unchanged.
	keep := minimalEvent()
	err = json.Unmarshal([]byte(`{"specversion":"1.0"}`), &keep)
	requireProblem(t, err, -1, "id", "required")
	requireEventEqual(t, minimalEvent(), keep)
}

func TestExtensionAccessors(t *testing.T) {
	t.Parallel()
	var ev cloudevent.Event
	_, ok := ev.Extension("x")
	require.False(t, ok)
	ev.SetExtension("x", nil) // deleting from a nil map is fine
	require.Nil(t, ev.Extensions)

	tests := []struct {
		in   any
		want any
	}{
		{"s", "s"},
		{true, true},
		{int32(-3), int32(-3)},
		{7, int32(7)},
		{int64(-2147483648), int32(-2147483648)},
		{uint8(255), int32(255)},
		{uint64(2147483647), int32(2147483647)},
		{int64(1 << 40), int64(1 << 40)}, // out of range: kept, reported by Validate
		{uint64(1 << 63), uint64(1 << 63)},
		{1.5, 1.5},
	}
	for _, tt := range tests {
		ev.SetExtension("x", tt.in)
		got, ok := ev.Extension("x")
		require.True(t, ok)
		require.Equal(t, tt.want, got, "%T %v", tt.in, tt.in)
	}
	ev.SetExtension("x", nil)
	_, ok = ev.Extension("x")
	require.False(t, ok)
	require.Empty(t, ev.Extensions)
}

func TestAttribute(t *testing.T) {
	t.Parallel()
	ev := fullEvent()
	ev.SetExtension("weird", 1.5)
	tests := []struct {
		name string
		want string
		ok   bool
	}{
		{"specversion", "1.0", true},
		{"id", "A234-1234-1234", true},
		{"source", "https://example.com/orders", true},
		{"type", "com.example.order.created", true},
		{"datacontenttype", "application/json", true},
		{"dataschema", "https://example.com/schemas/order.json", true},
		{"subject", "order/42", true},
		{"time", "2024-05-01T12:30:00.123+02:00", true},
		{"partitionkey", "tenant-7", true},
		{"sequence", "42", true},
		{"sampled", "true", true},
		{"weird", "1.5", true},
		{"data", "", false},
		{"data_base64", "", false},
		{"missing", "", false},
	}
	for _, tt := range tests {
		got, ok := ev.Attribute(tt.name)
		require.Equal(t, tt.ok, ok, tt.name)
		require.Equal(t, tt.want, got, tt.name)
	}
	empty := cloudevent.Event{}
	for _, name := range []string{"id", "subject", "time"} {
		_, ok := empty.Attribute(name)
		require.False(t, ok, name)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	binaryHdr := map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": "b-1", "Ce-Source": "urn:x", "Ce-Type": "t",
		"Ce-Time": "2024-05-01T12:30:00.5-03:00", "Ce-Subject": "%22quoted%22%0A", "Ce-Flag": "true",
	}
	tests := []struct {
		name string
		req  func(t *testing.T) (string, string, map[string]string)
	}{
		{"structured full", func(*testing.T) (string, string, map[string]string) { return ctStructured, fullStructured, nil }},
		{"structured binary data and all extension types", func(*testing.T) (string, string, map[string]string) {
			return ctStructured, minimal(`"s":"x\u0001y","b":false,"i":-12,"n":2147483647,"data_base64":"AP8QIA=="`), nil
		}},
		{"binary non-JSON body", func(*testing.T) (string, string, map[string]string) {
			return "image/png", "\x89PNG\r\n\x1a\n\x00", binaryHdr
		}},
		{"binary JSON body", func(*testing.T) (string, string, map[string]string) {
			return "application/cloudevent-data+json", "{\n  \"k\": [true, null, 1e3, \"\\u00e9\"]\n}\n", binaryHdr
		}},
		{"batch", func(*testing.T) (string, string, map[string]string) {
			return ctBatch, "[" + fullStructured + "," + minimal(`"data":"x","time":"2000-01-01T00:00:00Z"`) + "," + minimal("") + "]", nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ct, body, hdr := tt.req(t)
			_, events, err := cloudevent.ParseRequest(newRequest(t, ct, body, hdr), cloudevent.Limits{})
			require.NoError(t, err)
			require.NotEmpty(t, events)
			for _, ev := range events {
				requireRoundTrip(t, ev)
			}
		})
	}
}

func TestDataDoesNotAliasAcrossEvents(t *testing.T) {
	t.Parallel()
	evs, err := cloudevent.ParseBatch([]byte("["+minimal(`"data":[1]`)+","+minimal(`"data":[2]`)+"]"), 0)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	evs[0].Data = append(evs[0].Data, "garbage"...)
	require.Equal(t, "[2]", string(evs[1].Data))
}
