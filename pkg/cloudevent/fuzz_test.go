package cloudevent_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

// structuredSeeds are valid and invalid structured bodies.
var structuredSeeds = []string{
	fullStructured,
	minimal(""),
	minimal(`"data_base64":"AAECAw=="`),
	minimal(`"data":null,"ext":null,"n":-0,"m":1.0e1,"b":true`),
	minimal(`"subject":"\ud83d\ude00\u2028\"\\"`),
	minimal(`"time":"2024-01-02T03:04:05.999999999-23:59"`),
	minimal(`"data":{"a":[1,2,{"b":null}],"c":"\u0000"}`),
	minimal(`"source":"/other"`),
	minimal(`"ext":1.5`),
	minimal(`"data":1,"data_base64":"AA=="`),
	minimal(`"subject":"\ud800"`),
	`{"specversion":"1.0","id":1}`,
	`{"specversion":"1.0",`,
	`[]`,
	`{}`,
	"",
	"{\"id\":\"\xff\"}",
	`{"a":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`,
}

func FuzzParseStructured(f *testing.F) {
	for _, s := range structuredSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := cloudevent.ParseStructured(body)
		if err != nil {
			requireParseError(t, err)
			return
		}
		requireRoundTrip(t, ev)
	})
}

func FuzzParseBatch(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[` + strings.Join(structuredSeeds[:5], ",") + `]`))
	f.Add([]byte(`[` + minimal("") + `,` + minimal(`"ext":[]`) + `,"x",null]`))
	for _, s := range structuredSeeds {
		f.Add([]byte("[" + s + "]"))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctBatch)
		mode, events, err := cloudevent.ParseRequest(r, cloudevent.Limits{MaxBodyBytes: 1 << 16, MaxBatch: 20})
		require.Equal(t, cloudevent.ModeBatch, mode)
		if err != nil {
			require.Nil(t, events)
			if errors.Is(err, cloudevent.ErrTooLarge) {
				return
			}
			requireParseError(t, err)
			return
		}
		require.NotNil(t, events)
		require.LessOrEqual(t, len(events), 20)
		for _, ev := range events {
			requireRoundTrip(t, ev)
		}
	})
}

// requireParseError checks that a rejected body gave a well-formed
// *ValidationError.
func requireParseError(t *testing.T, err error) {
	t.Helper()
	for _, p := range validationProblems(t, err) {
		require.NotEmpty(t, p.Detail)
		require.GreaterOrEqual(t, p.Index, -1)
	}
	require.NotEmpty(t, err.Error())
}

func FuzzParseBinary(f *testing.F) {
	f.Add("application/json", "1.0", "/s", "2024-01-02T03:04:05Z", "tenant%207", []byte(`{"a": [1, 2]}`))
	f.Add("text/plain", "1.0", "urn:x", "", "%C3%A9", []byte("hello"))
	f.Add("", "1.0", "a b", "noon", "%zz", []byte("not json"))
	f.Add("", "0.3", "/s", "", "%ff", []byte(" null "))
	f.Fuzz(func(t *testing.T, ct, specversion, source, tm, ext string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		// Header values as a client could send them; Set does not validate.
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		r.Header.Set("Ce-Specversion", specversion)
		r.Header.Set("Ce-Id", "1")
		r.Header.Set("Ce-Type", "t")
		r.Header.Set("Ce-Source", source)
		if tm != "" {
			r.Header.Set("Ce-Time", tm)
		}
		r.Header.Set("Ce-Ext", ext)
		mode, events, err := cloudevent.ParseRequest(r, cloudevent.Limits{})
		if err != nil {
			require.Nil(t, events)
			if errors.Is(err, cloudevent.ErrUnsupportedMediaType) {
				require.NotEqual(t, cloudevent.ModeBinary, mode)
				return
			}
			requireParseError(t, err)
			return
		}
		for _, ev := range events {
			requireRoundTrip(t, ev)
		}
	})
}
