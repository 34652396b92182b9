package billing_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/problem"
)

func TestMeterValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for name, tc := range map[string]struct {
		doc    string
		fields []string
	}{
		"bad slug":         {`{"slug":"Tokens!","event_type":"llm.call","aggregation":"COUNT"}`, []string{"/slug"}},
		"no type":          {`{"slug":"t","aggregation":"COUNT"}`, []string{"/event_type"}},
		"platform type":    {`{"slug":"t","event_type":"prost.billing.correction","aggregation":"COUNT"}`, []string{"/event_type"}},
		"aggregation":      {`{"slug":"t","event_type":"x","aggregation":"MEDIAN"}`, []string{"/aggregation"}},
		"count with value": {`{"slug":"t","event_type":"x","aggregation":"COUNT","value_property":"$.n"}`, []string{"/value_property"}},
		"sum no value":     {`{"slug":"t","event_type":"x","aggregation":"SUM"}`, []string{"/value_property"}},
		"bad paths": {`{"slug":"t","event_type":"x","aggregation":"SUM","value_property":"n","group_by":{"9x":"$.a","ok":"$..b"},"customer_property":"$[*]"}`,
			[]string{"/value_property", "/group_by/9x", "/group_by/ok", "/customer_property"}},
	} {
		var in billing.MeterInput
		require.NoError(t, json.Unmarshal([]byte(tc.doc), &in), name)
		_, err := b.svc.CreateMeter(t.Context(), b.tenant, in)
		require.ErrorIs(t, err, problem.Invalid, name)
		require.Equal(t, tc.fields, problemFields(err), name)
	}
}

// TestMeterSchemaCheck: with a registered schema, a meter's paths must be
// ones the schema can produce, and a summed value must be a number; the 422
// names the path.
func TestMeterSchemaCheck(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, _, err := b.reg.Register(t.Context(), b.tenant, "llm.call", []byte(`{"type":"object",
	  "properties":{"tokens":{"type":"integer"},"model":{"type":"string"},"customer":{"type":"string"},
	  "usage":{"type":"object","properties":{"input":{"type":"number"}}}}}`))
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		doc, field, detail string
	}{
		"typo":         {`{"slug":"t1","event_type":"llm.call","aggregation":"SUM","value_property":"$.tokns"}`, "/value_property", "cannot produce $.tokns"},
		"deep typo":    {`{"slug":"t2","event_type":"llm.call","aggregation":"SUM","value_property":"$.usage.output"}`, "/value_property", "declares no $.usage.output"},
		"not a number": {`{"slug":"t3","event_type":"llm.call","aggregation":"MAX","value_property":"$.model"}`, "/value_property", "makes $.model a string"},
		"group":        {`{"slug":"t4","event_type":"llm.call","aggregation":"COUNT","group_by":{"region":"$.region"}}`, "/group_by/region", "cannot produce $.region"},
		"customer":     {`{"slug":"t5","event_type":"llm.call","aggregation":"COUNT","customer_property":"$.user"}`, "/customer_property", "cannot produce $.user"},
	} {
		var in billing.MeterInput
		require.NoError(t, json.Unmarshal([]byte(tc.doc), &in))
		_, err := b.svc.CreateMeter(t.Context(), b.tenant, in)
		require.ErrorIs(t, err, problem.Invalid, name)
		var pe *problem.Error
		require.ErrorAs(t, err, &pe)
		require.Len(t, pe.Fields, 1, name)
		require.Equal(t, tc.field, pe.Fields[0].Field, name)
		require.Contains(t, pe.Fields[0].Detail, tc.detail, name)
	}
	// What the schema produces passes; UNIQUE_COUNT takes any scalar.
	b.meter(t, `{"slug":"ok","event_type":"llm.call","aggregation":"SUM","value_property":"$.usage.input","group_by":{"model":"$.model"},"customer_property":"$.customer"}`)
	b.meter(t, `{"slug":"models","event_type":"llm.call","aggregation":"UNIQUE_COUNT","value_property":"$.model"}`)
	// A type without a schema is not checked.
	b.meter(t, `{"slug":"free","event_type":"free.form","aggregation":"SUM","value_property":"$.anything"}`)
}

func TestMeterLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	m := b.meter(t, `{"slug":"calls","event_type":"llm.call","aggregation":"COUNT"}`)
	var in billing.MeterInput
	require.NoError(t, json.Unmarshal([]byte(`{"slug":"calls","event_type":"other","aggregation":"COUNT"}`), &in))
	_, err := b.svc.CreateMeter(ctx, b.tenant, in)
	require.ErrorIs(t, err, billing.ErrMeterExists)
	// Another App may use the same slug and never sees this one.
	other := setup(t, nil)
	other.meter(t, `{"slug":"calls","event_type":"llm.call","aggregation":"COUNT"}`)
	list, next, err := b.svc.Meters(ctx, b.tenant, "", 0)
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, list, 1)
	require.Equal(t, m.ID, list[0].ID)

	d := "LLM calls"
	got, err := b.svc.UpdateMeter(ctx, b.tenant, "calls", billing.MeterPatch{Description: &d})
	require.NoError(t, err)
	require.Equal(t, d, got.Description)

	gone, err := b.svc.DeleteMeter(ctx, b.tenant, "calls")
	require.NoError(t, err)
	require.NotNil(t, gone.DeletedAt)
	_, err = b.svc.Meter(ctx, b.tenant, "calls")
	require.ErrorIs(t, err, billing.ErrMeterNotFound)
	_, err = b.svc.DeleteMeter(ctx, b.tenant, "calls")
	require.ErrorIs(t, err, billing.ErrMeterNotFound)
	// The slug is free again.
	b.meter(t, `{"slug":"calls","event_type":"llm.call","aggregation":"COUNT"}`)
}
