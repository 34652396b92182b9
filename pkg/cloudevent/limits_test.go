package cloudevent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/problem"
)

// TestLimitsAtTheirEdges: every bounded attribute is accepted at its limit
// and refused one byte over it, in structured and in binary mode, with the
// problem naming the attribute and the limit.
func TestLimitsAtTheirEdges(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("a", n) }
	uri := func(n int) string { return "/" + long(n-1) }
	abs := func(n int) string { return "https://x/" + long(n-10) }
	cases := []struct {
		attr  string
		max   int
		value func(n int) string
	}{
		{"id", cloudevent.MaxIDLen, long},
		{"source", cloudevent.MaxSourceLen, uri},
		{"type", cloudevent.MaxTypeLen, long},
		{"subject", cloudevent.MaxSubjectLen, long},
		{"dataschema", cloudevent.MaxDataSchemaLen, abs},
		{"actorid", cloudevent.MaxExtensionLen, long},
		{"partitionkey", cloudevent.MaxPartitionKeyLen, long},
		{"traceparent", cloudevent.MaxTraceParentLen, func(n int) string { return strings.Repeat("0", n) }},
		{"tracestate", cloudevent.MaxTraceStateLen, func(n int) string { return "k=" + long(n-2) }},
	}
	base := map[string]string{"specversion": "1.0", "id": "x", "source": "/s", "type": "t"}
	for _, tc := range cases {
		for _, n := range []int{tc.max, tc.max + 1} {
			t.Run(fmt.Sprintf("%s %d bytes", tc.attr, n), func(t *testing.T) {
				t.Parallel()
				attrs := map[string]string{}
				for k, v := range base {
					attrs[k] = v
				}
				attrs[tc.attr] = tc.value(n)
				require.Len(t, attrs[tc.attr], n)
				var members []string
				hdr := map[string]string{}
				for k, v := range attrs {
					members = append(members, fmt.Sprintf("%q:%q", k, v))
					hdr["ce-"+k] = v
				}
				structured := "{" + strings.Join(members, ",") + "}"
				_, _, serr := cloudevent.ParseRequest(newRequest(t, ctStructured, structured, nil), cloudevent.Limits{})
				_, _, berr := cloudevent.ParseRequest(newRequest(t, "application/json", `{}`, hdr), cloudevent.Limits{})
				if n == tc.max {
					require.NoError(t, serr)
					require.NoError(t, berr)
					return
				}
				detail := fmt.Sprintf("is %d bytes long; the limit is %d bytes", n, tc.max)
				requireProblem(t, serr, -1, tc.attr, detail)
				requireProblem(t, berr, -1, "ce-"+tc.attr, detail)
				require.Contains(t, problemOf(serr).Errors[0].Field, tc.attr)
			})
		}
	}
	t.Run("datacontenttype", func(t *testing.T) {
		t.Parallel()
		ev := minimalEvent()
		ev.DataContentType = "application/" + long(cloudevent.MaxDataContentTypeLen-len("application/"))
		require.NoError(t, ev.Validate())
		ev.DataContentType += "x"
		requireProblem(t, ev.Validate(), -1, "datacontenttype", "the limit is 256 bytes")
	})
	t.Run("extensions", func(t *testing.T) {
		t.Parallel()
		ext := func(n int) string {
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, `,"x%d":"v"`, i)
			}
			return b.String()[1:]
		}
		_, err := cloudevent.ParseStructured([]byte(minimal(ext(cloudevent.MaxExtensions))))
		require.NoError(t, err)
		_, err = cloudevent.ParseStructured([]byte(minimal(ext(cloudevent.MaxExtensions + 1))))
		requireProblem(t, err, -1, "extensions", "33 extensions; the limit is 32")
	})
	t.Run("header extensions hold header-safe characters only", func(t *testing.T) {
		t.Parallel()
		_, err := cloudevent.ParseStructured([]byte(minimal(`"traceparent":"00-AB\r\nX: y"`)))
		requireProblem(t, err, -1, "traceparent", "only 0-9, a-f and '-'")
		_, err = cloudevent.ParseStructured([]byte(minimal(`"tracestate":"k=v\r\nNats-Msg-Id: forged"`)))
		requireProblem(t, err, -1, "tracestate", "printable ASCII")
		_, err = cloudevent.ParseStructured([]byte(minimal(`"tracestate":"k=\u2028"`)))
		requireProblem(t, err, -1, "tracestate", "printable ASCII")
	})
}

// TestNULRefused reproduces issue 12 case 1 at the parser: U+0000, which a
// Postgres text column cannot hold, is refused in every attribute and
// extension, in structured and binary mode, and anywhere in JSON data (with
// the pointer of the member), together with escaped unpaired surrogates,
// which a jsonb column cannot hold.
func TestNULRefused(t *testing.T) {
	t.Parallel()
	for _, attr := range []string{"id", "type", "subject", "partitionkey", "actorid"} {
		t.Run("structured "+attr, func(t *testing.T) {
			t.Parallel()
			body := map[string]string{"specversion": "1.0", "id": "x", "source": "/s", "type": "t"}
			body[attr] = `a\u0000b`
			var members []string
			for k, v := range body {
				members = append(members, fmt.Sprintf(`"%s":"%s"`, k, v))
			}
			_, _, err := cloudevent.ParseRequest(newRequest(t, ctStructured, "{"+strings.Join(members, ",")+"}", nil), cloudevent.Limits{})
			requireProblem(t, err, -1, attr, "U+0000")
			require.Equal(t, 422, problemOf(err).Status)
		})
		t.Run("binary "+attr, func(t *testing.T) {
			t.Parallel()
			hdr := map[string]string{"ce-specversion": "1.0", "ce-id": "x", "ce-source": "/s", "ce-type": "t"}
			hdr["ce-"+attr] = "a%00b"
			_, _, err := cloudevent.ParseRequest(newRequest(t, "application/json", `{}`, hdr), cloudevent.Limits{})
			requireProblem(t, err, -1, "ce-"+attr, "U+0000")
			require.Equal(t, 422, problemOf(err).Status)
		})
	}
	t.Run("batch", func(t *testing.T) {
		t.Parallel()
		_, _, err := cloudevent.ParseRequest(newRequest(t, ctBatch, "["+minimal("")+`,{"specversion":"1.0","id":"a\u0000","source":"/s","type":"t"}]`, nil), cloudevent.Limits{})
		requireProblem(t, err, 1, "id", "U+0000")
	})

	data := []struct {
		name, data, pointer, detail string
	}{
		{"member value", `{"actorid":"a\u0000b"}`, "/actorid", "U+0000"},
		{"nested array", `{"a":[1,{"b":["ok","\u0000"]}]}`, "/a/1/b/1", "U+0000"},
		{"member name", `{"ok":1,"k\u0000":2}`, `/k\u0000`, "U+0000"},
		{"escaped pointer tokens", `{"a/b":{"c~d":"\u0000"}}`, "/a~1b/c~0d", "U+0000"},
		{"top-level string", `"\u0000"`, "", "U+0000"},
		{"lone high surrogate", `{"s":"\ud800"}`, "/s", "surrogate"},
		{"lone low surrogate", `{"s":["x","\udc00y"]}`, "/s/1", "surrogate"},
	}
	for _, tc := range data {
		t.Run("data "+tc.name, func(t *testing.T) {
			t.Parallel()
			for _, req := range []struct{ ct, body string }{
				{ctStructured, minimal(`"data":` + tc.data)},
				{"application/json", tc.data},
			} {
				hdr := map[string]string(nil)
				if req.ct != ctStructured {
					hdr = map[string]string{"ce-specversion": "1.0", "ce-id": "x", "ce-source": "/s", "ce-type": "t"}
				}
				_, _, err := cloudevent.ParseRequest(newRequest(t, req.ct, req.body, hdr), cloudevent.Limits{})
				requireProblem(t, err, -1, "data", tc.detail)
				p := problemOf(err)
				require.Equal(t, 422, p.Status)
				require.Equal(t, tc.pointer, p.Errors[0].Pointer)
			}
		})
	}
	t.Run("what Postgres can hold is accepted", func(t *testing.T) {
		t.Parallel()
		for _, d := range []string{`{"a":"\\u0000"}`, `{"s":"\ud83d\ude00","t":"\u0001\u2028"}`, `{"u":"\u00e9"}`} {
			_, err := cloudevent.ParseStructured([]byte(minimal(`"data":` + d)))
			require.NoError(t, err, d)
		}
	})
}

// problemOf is the problem a gateway answers err with.
func problemOf(err error) *problem.Problem { return problem.From(err) }
