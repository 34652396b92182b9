package condition_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/rules/condition"
)

func event(data string) *cloudevent.Event {
	e := &cloudevent.Event{
		SpecVersion: "1.0", ID: "evt-1", Source: "/billing", Type: "payment.failed",
		Time:       time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		Extensions: map[string]any{"region": "eu", "priority": int32(3), "urgent": true},
	}
	if data != "" {
		e.Data = []byte(data)
	}
	return e
}

func eval(t *testing.T, src, data string) (bool, condition.Inputs, error) {
	t.Helper()
	c, err := condition.Compile(src)
	require.NoError(t, err)
	return c.Eval(context.Background(), event(data))
}

func TestConditionOverData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, src, data string
		want            bool
	}{
		{"integer over", "data.amount > 1000", `{"amount": 1200}`, true},
		{"integer under", "data.amount > 1000", `{"amount": 999}`, false},
		{"double against int", "data.amount > 1000", `{"amount": 1000.5}`, true},
		{"arithmetic", "data.amount * 2 == 2400", `{"amount": 1200}`, true},
		{"nested", `data.customer.tier == "gold" && data.items.size() == 2`, `{"customer": {"tier": "gold"}, "items": [1, 2]}`, true},
		{"index", `data["amount"] >= 1200 && data.items[1] == "b"`, `{"amount": 1200, "items": ["a", "b"]}`, true},
		{"comprehension", `data.items.exists(i, i.sku == "x" && i.qty > 1)`, `{"items": [{"sku": "y", "qty": 5}, {"sku": "x", "qty": 2}]}`, true},
		{"has present", `has(data.coupon)`, `{"coupon": "X"}`, true},
		{"has absent", `has(data.coupon)`, `{"amount": 1}`, false},
		{"null member", `data.coupon == null`, `{"coupon": null}`, true},
		{"attributes", `type == "payment.failed" && source.startsWith("/bill") && time < timestamp("2027-01-01T00:00:00Z")`, `{}`, true},
		{"extensions", `extensions.region == "eu" && extensions.priority > 2 && extensions.urgent`, `{}`, true},
		{"string functions", `data.email.endsWith("@example.com") && data.email.matches("^[a-z]+@")`, `{"email": "ada@example.com"}`, true},
		{"no data is null", `data == null`, ``, true},
		// Errors are no match.
		{"missing key", "data.amount > 1000", `{"total": 5}`, false},
		{"unset attribute", `subject == "x"`, `{}`, false},
		{"wrong type at run time", `data.amount > 1000`, `{"amount": "lots"}`, false},
		{"dyn non-bool result", `data.amount`, `{"amount": true}`, true},
		{"dyn non-bool result false", `data.amount`, `{"amount": 5}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, _, _ := eval(t, c.src, c.data)
			require.Equal(t, c.want, got)
		})
	}
}

func TestErrorsAreReported(t *testing.T) {
	t.Parallel()
	ok, _, err := eval(t, "data.amount > 1000", `{"total": 5}`)
	require.False(t, ok)
	require.Error(t, err)
	ok, _, err = eval(t, "data.amount", `{"amount": 5}`)
	require.False(t, ok)
	require.ErrorContains(t, err, "not bool")
}

func TestInputsRecordWhatWasRead(t *testing.T) {
	t.Parallel()
	ok, in, err := eval(t, `data.amount > 1000 && extensions.region == "eu" && type == "payment.failed"`, `{"amount": 1200, "other": "x"}`)
	require.NoError(t, err)
	require.True(t, ok)
	b, _ := json.Marshal(in)
	require.JSONEq(t, `{"data.amount": 1200, "extensions.region": "eu", "type": "payment.failed"}`, string(b))

	// A short-circuited branch was not read.
	ok, in, err = eval(t, `data.amount > 5000 && data.customer.tier == "gold"`, `{"amount": 1200}`)
	require.NoError(t, err)
	require.False(t, ok)
	b, _ = json.Marshal(in)
	require.JSONEq(t, `{"data.amount": 1200}`, string(b))

	_, in, err = eval(t, `has(data.coupon) || data["amount"] > 1`, `{"amount": 2}`)
	require.NoError(t, err)
	b, _ = json.Marshal(in)
	require.JSONEq(t, `{"has(data.coupon)": false, "data[\"amount\"]": 2}`, string(b))

	_, in, err = eval(t, `time > timestamp("2020-01-01T00:00:00Z")`, `{}`)
	require.NoError(t, err)
	b, _ = json.Marshal(in)
	require.JSONEq(t, `{"time": "2026-11-27T10:00:00Z"}`, string(b))
}

func TestInvalidConditions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, src    string
		line, column int
	}{
		{"syntax", "data.amount > ", 1, 15},
		{"second line", "data.amount > 1 &&\n  nosuchvar == 2", 2, 3},
		{"unknown function", "data.amount.frobnicate()", 1, 23},
		{"not boolean", "1 + 2", 1, 1},
		{"string result", `type + "x"`, 1, 1},
		{"type error", `type > 3`, 1, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := condition.Compile(c.src)
			var ce *condition.Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, c.line, ce.Line, ce.Error())
			require.Equal(t, c.column, ce.Column, ce.Error())
		})
	}
	_, err := condition.Compile("   ")
	require.Error(t, err)
	long := make([]byte, condition.MaxLen+1)
	for i := range long {
		long[i] = 'a'
	}
	_, err = condition.Compile(string(long))
	require.Error(t, err)
}

func TestCostBudget(t *testing.T) {
	t.Parallel()
	// Nested comprehensions over a large list blow the budget: no match,
	// and the evaluation stops instead of running away.
	items := make([]int, 2000)
	data, _ := json.Marshal(map[string]any{"items": items})
	c, err := condition.Compile(`data.items.all(x, data.items.all(y, x == y))`)
	require.NoError(t, err)
	start := time.Now()
	ok, _, err := c.Eval(context.Background(), event(string(data)))
	require.False(t, ok)
	require.Error(t, err)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	c, err := condition.Compile(`data.items.all(x, x == 0)`)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	items := make([]int, 5000)
	data, _ := json.Marshal(map[string]any{"items": items})
	ok, _, err := c.Eval(ctx, event(string(data)))
	require.False(t, ok)
	require.Error(t, err)
}
