package rules

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
)

const alertRule = `{"name": "big failed payments",
 "filters": [{"exact": {"type": "payment.failed"}}],
 "condition": "data.amount > 1000",
 "actions": [{"emit": {"type": "alert.raised", "source": "/rules/big-payments", "data": {"amount": "${data.amount}", "note": "payment ${id} failed"}}},
             {"webhook": {"url": "https://hooks.example.com/prost"}},
             {"schedule": {"after": "10m", "action": {"emit": {"type": "alert.reminder", "source": "/rules/big-payments"}}}}]}`

func TestParseDocument(t *testing.T) {
	t.Parallel()
	c, err := ParseDocument([]byte(alertRule))
	require.NoError(t, err)
	require.Equal(t, "big failed payments", c.Doc.Name)
	require.NotNil(t, c.Condition)
	require.Len(t, c.Doc.Actions, 3)
	require.Equal(t, "schedule", c.Doc.Actions[2].Kind())
	require.True(t, c.Doc.hasWebhook())
	require.Equal(t, []string{"type"}, c.filterAttrs)

	// The normalized document reads back to the same document.
	again, err := ParseDocument(c.Normalized())
	require.NoError(t, err)
	require.Equal(t, c.Doc, again.Doc)

	// Filters and condition are optional.
	c, err = ParseDocument([]byte(`{"name": "all", "actions": [{"emit": {"type": "t", "source": "/s"}}]}`))
	require.NoError(t, err)
	require.Nil(t, c.Condition)
	require.Empty(t, c.Filters)
	require.False(t, c.Doc.hasWebhook())
}

func TestInvalidDocuments(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, doc, pointer string
		line, column       int
	}{
		{"not an object", `[]`, "", 0, 0},
		{"no name", `{"actions": [{"emit": {"type": "t", "source": "/s"}}]}`, "/name", 0, 0},
		{"unknown member", `{"name": "x", "filter": [], "actions": [{"emit": {"type": "t", "source": "/s"}}]}`, "/filter", 0, 0},
		{"bad dialect", `{"name": "x", "filters": [{"regex": {"type": "a"}}], "actions": [{"emit": {"type": "t", "source": "/s"}}]}`, "/filters/0/regex", 0, 0},
		{"bad cesql", `{"name": "x", "filters": [{"exact": {"type": "a"}}, {"sql": "type = 'a' AND"}], "actions": [{"emit": {"type": "t", "source": "/s"}}]}`, "/filters/1/sql", 1, 15},
		{"bad cel", `{"name": "x", "condition": "data.amount >", "actions": [{"emit": {"type": "t", "source": "/s"}}]}`, "/condition", 1, 14},
		{"non-boolean cel", `{"name": "x", "condition": "1 + 1", "actions": [{"emit": {"type": "t", "source": "/s"}}]}`, "/condition", 1, 1},
		{"no actions", `{"name": "x", "actions": []}`, "/actions", 0, 0},
		{"two kinds", `{"name": "x", "actions": [{"emit": {"type": "t", "source": "/s"}, "webhook": {"url": "https://a"}}]}`, "/actions/0", 0, 0},
		{"unknown action", `{"name": "x", "actions": [{"email": {"to": "a"}}]}`, "/actions/0/email", 0, 0},
		{"emit without type", `{"name": "x", "actions": [{"emit": {"source": "/s"}}]}`, "/actions/0/emit/type", 0, 0},
		{"emit bad source", `{"name": "x", "actions": [{"emit": {"type": "t", "source": "a b"}}]}`, "/actions/0/emit/source", 0, 0},
		{"emit bad template", `{"name": "x", "actions": [{"emit": {"type": "t", "source": "/s", "data": {"a": "${data.}"}}}]}`, "/actions/0/emit/data", 0, 0},
		{"webhook not http", `{"name": "x", "actions": [{"webhook": {"url": "ftp://a/b"}}]}`, "/actions/0/webhook/url", 0, 0},
		{"webhook relative", `{"name": "x", "actions": [{"webhook": {"url": "/hook"}}]}`, "/actions/0/webhook/url", 0, 0},
		{"schedule bad after", `{"name": "x", "actions": [{"schedule": {"after": "soon", "action": {"emit": {"type": "t", "source": "/s"}}}}]}`, "/actions/0/schedule/after", 0, 0},
		{"schedule too long", `{"name": "x", "actions": [{"schedule": {"after": "9000h", "action": {"emit": {"type": "t", "source": "/s"}}}}]}`, "/actions/0/schedule/after", 0, 0},
		{"schedule nested invalid", `{"name": "x", "actions": [{"schedule": {"after": "1m", "action": {"webhook": {}}}}]}`, "/actions/0/schedule/action/webhook/url", 0, 0},
		{"schedule no action", `{"name": "x", "actions": [{"schedule": {"after": "1m"}}]}`, "/actions/0/schedule/action", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseDocument([]byte(c.doc))
			require.ErrorIs(t, err, ErrInvalid)
			var inv *InvalidError
			require.True(t, errors.As(err, &inv))
			require.Equal(t, c.pointer, inv.Problems[0].Pointer, err.Error())
			require.Equal(t, c.line, inv.Problems[0].Line, err.Error())
			require.Equal(t, c.column, inv.Problems[0].Column, err.Error())
		})
	}
}

func TestEveryProblemIsListed(t *testing.T) {
	t.Parallel()
	_, err := ParseDocument([]byte(`{"name": "", "filters": [{"sql": "("}], "condition": "x +", "actions": [{"webhook": {"url": "x"}}]}`))
	var inv *InvalidError
	require.True(t, errors.As(err, &inv))
	var ptrs []string
	for _, p := range inv.Problems {
		ptrs = append(ptrs, p.Pointer)
	}
	require.Equal(t, []string{"/name", "/filters/0/sql", "/condition", "/actions/0/webhook/url"}, ptrs)
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	ev := &cloudevent.Event{SpecVersion: "1.0", ID: "p-1", Source: "/billing", Type: "payment.failed",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Extensions: map[string]any{"region": "eu"},
		Data: []byte(`{"amount": 1200, "customer": {"id": "c-9"}, "items": [{"sku": "x"}], "ratio": 0.5}`)}
	tc := &templateContext{ev: ev, ruleID: uuid.MustParse("0193a1a0-0000-7000-8000-000000000001"), ruleVersion: 3,
		decisionID: uuid.MustParse("0193a1a0-0000-7000-8000-000000000002")}
	out, err := tc.render(json.RawMessage(`{"amount": "${data.amount}", "ratio": "${data.ratio}", "customer": "${data.customer}",
		"sku": "${data.items.0.sku}", "text": "payment ${id} from ${source} of ${data.amount} in ${region}",
		"missing": "${data.nosuch}", "missing_in_text": "[${data.nosuch}]", "literal": "$${id}", "plain": 7,
		"rule": ["${rule.id}", "${rule.version}", "${decision.id}"], "time": "${time}"}`))
	require.NoError(t, err)
	require.JSONEq(t, `{"amount": 1200, "ratio": 0.5, "customer": {"id": "c-9"}, "sku": "x",
		"text": "payment p-1 from /billing of 1200 in eu", "missing": null, "missing_in_text": "[]",
		"literal": "${id}", "plain": 7,
		"rule": ["0193a1a0-0000-7000-8000-000000000001", 3, "0193a1a0-0000-7000-8000-000000000002"],
		"time": "2026-01-02T03:04:05Z"}`, string(out))

	s, err := tc.renderString("order/${data.customer.id}")
	require.NoError(t, err)
	require.Equal(t, "order/c-9", s)

	require.Error(t, checkTemplateString("${unclosed"))
	require.Error(t, checkTemplateString("${Data.X}"))
	require.NoError(t, checkTemplateString("$${not a placeholder}"))
}
