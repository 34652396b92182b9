package cloudevent

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMalformedClassification: unreadable requests are Malformed (400 at the
// gateway); well-formed events that break a rule are not (422).
func TestMalformedClassification(t *testing.T) {
	ce := func(kv ...string) http.Header {
		h := http.Header{}
		for _, p := range [][2]string{{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "/s"}, {"ce-type", "t"}} {
			h.Set(p[0], p[1])
		}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name      string
		ct        string
		header    http.Header
		body      string
		malformed bool
	}{
		{"malformed JSON", "application/cloudevents+json", nil, `{"id":`, true},
		{"invalid UTF-8", "application/cloudevents+json", nil, "{\"id\":\"\xff\"}", true},
		{"array as structured", "application/cloudevents+json", nil, `[]`, true},
		{"batch entry not an object", "application/cloudevents-batch+json", nil, `[1]`, true},
		{"duplicate member", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"1","id":"2","source":"/s","type":"t"}`, true},
		{"bad percent-encoding", "text/plain", ce("ce-subject", "%zz"), "x", true},
		{"duplicate header", "text/plain", ce("ce-id", "2"), "x", true},
		{"binary JSON data not JSON", "application/json", ce(), "{", true},
		{"missing id", "application/cloudevents+json", nil, `{"specversion":"1.0","source":"/s","type":"t"}`, false},
		{"id of the wrong type", "application/cloudevents+json", nil, `{"specversion":"1.0","id":1,"source":"/s","type":"t"}`, false},
		{"bad time", "application/cloudevents+json", nil, `{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"x"}`, false},
		{"bad time header", "text/plain", ce("ce-time", "x"), "x", false},
		{"invalid batch entry", "application/cloudevents-batch+json", nil, `[{"specversion":"1.0","id":"1","type":"t"}]`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(tc.body))
			require.NoError(t, err)
			for k, v := range tc.header {
				r.Header[k] = v
			}
			r.Header.Set("Content-Type", tc.ct)
			_, _, err = ParseRequest(r, Limits{})
			var verr *ValidationError
			require.True(t, errors.As(err, &verr), "%v", err)
			require.Equal(t, tc.malformed, verr.Malformed(), "%v", verr)
		})
	}
}
