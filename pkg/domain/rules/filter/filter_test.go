package filter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/rules/filter"
)

func testEvent() *cloudevent.Event {
	return &cloudevent.Event{
		SpecVersion: "1.0", ID: "evt-1", Source: "/billing/eu", Type: "payment.failed",
		Subject: "order-42", Time: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		Extensions: map[string]any{"tenantid": "t-1", "priority": int32(7), "urgent": true},
		Data:       []byte(`{"amount":1200}`),
	}
}

func compile(t *testing.T, filters string) filter.List {
	t.Helper()
	var raw []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(filters), &raw))
	l, errs := filter.Compile("/filters", raw)
	require.Empty(t, errs)
	return l
}

func compileErrs(t *testing.T, filters string) []*filter.Error {
	t.Helper()
	var raw []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(filters), &raw))
	l, errs := filter.Compile("/filters", raw)
	require.Nil(t, l)
	require.NotEmpty(t, errs)
	return errs
}

func TestDialects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		filters string
		want    bool
	}{
		{"empty list matches", `[]`, true},
		{"exact", `[{"exact": {"type": "payment.failed"}}]`, true},
		{"exact every attribute", `[{"exact": {"type": "payment.failed", "source": "/billing/eu"}}]`, true},
		{"exact one differs", `[{"exact": {"type": "payment.failed", "source": "/billing/us"}}]`, false},
		{"exact is case-sensitive", `[{"exact": {"type": "Payment.Failed"}}]`, false},
		{"exact absent attribute", `[{"exact": {"dataschema": "x"}}]`, false},
		{"exact integer extension", `[{"exact": {"priority": "7"}}]`, true},
		{"exact boolean extension", `[{"exact": {"urgent": "true"}}]`, true},
		{"exact time", `[{"exact": {"time": "2026-11-27T10:00:00Z"}}]`, true},
		{"prefix", `[{"prefix": {"type": "payment."}}]`, true},
		{"prefix miss", `[{"prefix": {"type": "order."}}]`, false},
		{"prefix absent", `[{"prefix": {"nosuch": "a"}}]`, false},
		{"suffix", `[{"suffix": {"type": ".failed", "source": "/eu"}}]`, true},
		{"suffix miss", `[{"suffix": {"type": ".placed"}}]`, false},
		{"all true", `[{"all": [{"exact": {"type": "payment.failed"}}, {"prefix": {"source": "/billing"}}]}]`, true},
		{"all one false", `[{"all": [{"exact": {"type": "payment.failed"}}, {"prefix": {"source": "/shop"}}]}]`, false},
		{"any one true", `[{"any": [{"exact": {"type": "order.placed"}}, {"suffix": {"type": "failed"}}]}]`, true},
		{"any none", `[{"any": [{"exact": {"type": "order.placed"}}, {"suffix": {"type": "ok"}}]}]`, false},
		{"not", `[{"not": {"exact": {"type": "order.placed"}}}]`, true},
		{"not inverted", `[{"not": {"exact": {"type": "payment.failed"}}}]`, false},
		{"nested", `[{"all": [{"not": {"any": [{"exact": {"subject": "x"}}, {"exact": {"subject": "y"}}]}}, {"sql": "priority > 5"}]}]`, true},
		{"every list entry must match", `[{"exact": {"type": "payment.failed"}}, {"exact": {"subject": "other"}}]`, false},
		{"sql true", `[{"sql": "type = 'payment.failed' AND source LIKE '/billing/%'"}]`, true},
		{"sql false", `[{"sql": "type = 'order.placed'"}]`, false},
		{"sql keywords any case", `[{"sql": "type like 'payment.%' and not (subject = 'x')"}]`, true},
		{"sql extension integer", `[{"sql": "priority + 1 = 8"}]`, true},
		{"sql extension boolean", `[{"sql": "urgent"}]`, true},
		{"sql exists", `[{"sql": "EXISTS subject AND NOT EXISTS dataschema"}]`, true},
		{"sql in", `[{"sql": "subject IN ('order-41', 'order-42')"}]`, true},
		{"sql functions", `[{"sql": "UPPER(LEFT(type, 7)) = 'PAYMENT' AND LENGTH(id) = 5"}]`, true},
		// CESQL edge cases: a missing attribute is an error, and an error is false.
		{"sql missing attribute", `[{"sql": "nosuch = 'x'"}]`, false},
		{"sql missing attribute negated", `[{"sql": "NOT (nosuch = 'x')"}]`, false},
		{"sql missing attribute in OR", `[{"sql": "nosuch = 'x' OR type = 'payment.failed'"}]`, false},
		// Non-boolean results are false, even "truthy" ones.
		{"sql integer result", `[{"sql": "1"}]`, false},
		{"sql string result", `[{"sql": "'true'"}]`, false},
		{"sql integer attribute", `[{"sql": "priority"}]`, false},
		{"sql string attribute", `[{"sql": "type"}]`, false},
		// Other evaluation errors are false.
		{"sql division by zero", `[{"sql": "priority / 0 = 0"}]`, false},
		{"sql failed cast", `[{"sql": "INT(type) = 1"}]`, false},
		{"sql unknown function", `[{"sql": "NOSUCHFN(type) = 'x'"}]`, false},
		{"sql data is not an attribute", `[{"sql": "EXISTS data"}]`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := compile(t, c.filters)
			require.Equal(t, c.want, l.Match(filter.NewEvent(testEvent())))
		})
	}
}

func TestSQLErrorsAreFalseButVisible(t *testing.T) {
	t.Parallel()
	ev := filter.NewEvent(testEvent())
	s, err := filter.CompileSQL("nosuch = 'x'")
	require.NoError(t, err)
	_, evalErr := s.Eval(ev)
	require.Error(t, evalErr, "the sdk reports the missing attribute")
	require.False(t, s.Match(ev))

	s, err = filter.CompileSQL("priority * 2")
	require.NoError(t, err)
	v, evalErr := s.Eval(ev)
	require.NoError(t, evalErr)
	require.Equal(t, int32(14), v)
	require.False(t, s.Match(ev), "a non-boolean result is false")
}

func TestInvalidFilters(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, filters, pointer string
		line, column           int
	}{
		{"unknown dialect", `[{"regex": {"type": "x"}}]`, "/filters/0/regex", 0, 0},
		{"two dialects", `[{"exact": {"type": "x"}, "prefix": {"type": "y"}}]`, "/filters/0", 0, 0},
		{"not an object", `["exact"]`, "/filters/0", 0, 0},
		{"empty exact", `[{"exact": {}}]`, "/filters/0/exact", 0, 0},
		{"empty value", `[{"exact": {"type": ""}}]`, "/filters/0/exact/type", 0, 0},
		{"non-string value", `[{"prefix": {"type": 1}}]`, "/filters/0/prefix/type", 0, 0},
		{"empty all", `[{"all": []}]`, "/filters/0/all", 0, 0},
		{"any not array", `[{"any": {"exact": {"type": "x"}}}]`, "/filters/0/any", 0, 0},
		{"nested invalid", `[{"exact": {"type": "x"}}, {"all": [{"exact": {"type": "x"}}, {"not": {"sql": "type ="}}]}]`, "/filters/1/all/1/not/sql", 1, 7},
		{"sql syntax", `[{"sql": "type = 'a' AND AND"}]`, "/filters/0/sql", 1, 16},
		{"sql second line", `[{"sql": "type = 'a'\nAND (source = "}]`, "/filters/0/sql", 2, 15},
		{"sql bad token", `[{"sql": "type = \"a\" $"}]`, "/filters/0/sql", 1, 12},
		{"sql empty", `[{"sql": ""}]`, "/filters/0/sql", 0, 0},
		{"sql not string", `[{"sql": true}]`, "/filters/0/sql", 0, 0},
		{"sql integer overflow", `[{"sql": "priority = 99999999999"}]`, "/filters/0/sql", 0, 0},
		{"pointer escaping", `[{"exact": {"a/b": ""}}]`, "/filters/0/exact/a~1b", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			errs := compileErrs(t, c.filters)
			require.Equal(t, c.pointer, errs[0].Pointer, errs[0].Error())
			require.NotEmpty(t, errs[0].Msg)
			if c.line > 0 {
				require.Equal(t, c.line, errs[0].Line, errs[0].Error())
				require.Equal(t, c.column, errs[0].Column, errs[0].Error())
			}
		})
	}
}

func TestTooDeep(t *testing.T) {
	t.Parallel()
	f := `{"exact": {"type": "x"}}`
	for range filter.MaxDepth + 1 {
		f = `{"not": ` + f + `}`
	}
	errs := compileErrs(t, "["+f+"]")
	require.Contains(t, errs[0].Msg, "nested")
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	l := compile(t, `[{"exact": {"type": "a"}}, {"any": [{"prefix": {"source": "/x"}}, {"not": {"suffix": {"subject": "y"}}}]}, {"sql": "id = 'q'"}]`)
	require.Equal(t, []string{"source", "subject", "type"}, l.Attributes())
}

func TestTypeKey(t *testing.T) {
	for _, c := range []struct {
		filters string
		want    filter.TypeKey
		ok      bool
	}{
		{`[{"exact":{"type":"payment.failed"}}]`, filter.TypeKey{Exact: "payment.failed"}, true},
		{`[{"prefix":{"type":"payment."}}, {"exact":{"source":"/b"}}]`, filter.TypeKey{Prefix: "payment."}, true},
		{`[{"all":[{"prefix":{"type":"pay"}}, {"prefix":{"type":"payment."}}]}]`, filter.TypeKey{Prefix: "payment."}, true},
		{`[{"prefix":{"type":"pay"}}, {"exact":{"type":"payment.failed"}}]`, filter.TypeKey{Exact: "payment.failed"}, true},
		{`[]`, filter.TypeKey{}, false},
		{`[{"exact":{"source":"/b"}}]`, filter.TypeKey{}, false},
		{`[{"any":[{"exact":{"type":"a"}}, {"exact":{"type":"b"}}]}]`, filter.TypeKey{}, false},
		{`[{"not":{"exact":{"type":"a"}}}]`, filter.TypeKey{}, false},
		{`[{"suffix":{"type":".failed"}}]`, filter.TypeKey{}, false},
		{`[{"sql":"type = 'a'"}]`, filter.TypeKey{}, false},
	} {
		var raw []json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(c.filters), &raw))
		l, errs := filter.Compile("/filters", raw)
		require.Empty(t, errs)
		k, ok := l.TypeKey()
		require.Equal(t, c.ok, ok, c.filters)
		require.Equal(t, c.want, k, c.filters)
	}
}
