package telemetry

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

func TestExtract(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name    string
		headers map[string][]string
		want    string // trace id, "" for none
		state   string
	}{
		{"nats lower case", map[string][]string{"traceparent": {parent}, "tracestate": {"a=1"}}, "4bf92f3577b34da6a3ce929d0e0e4736", "a=1"},
		{"http canonical", http.Header{"Traceparent": {parent}, "Tracestate": {"b=2"}}, "4bf92f3577b34da6a3ce929d0e0e4736", "b=2"},
		{"mixed case", map[string][]string{"TRACEPARENT": {parent}, "Nats-Msg-Id": {"x"}}, "4bf92f3577b34da6a3ce929d0e0e4736", ""},
		{"none", map[string][]string{"Nats-Msg-Id": {"x"}, "Traceparentx": {parent}}, "", ""},
		{"empty value", map[string][]string{"traceparent": {}}, "", ""},
		{"malformed", map[string][]string{"traceparent": {"00-zz-00-01"}}, "", ""},
		{"nil", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := trace.SpanContextFromContext(Extract(context.Background(), tt.headers))
			if tt.want == "" {
				require.False(t, sc.IsValid())
				return
			}
			require.True(t, sc.IsValid())
			require.True(t, sc.IsRemote())
			require.Equal(t, tt.want, sc.TraceID().String())
			require.Equal(t, tt.state, sc.TraceState().String())
		})
	}
}

// Extract must not allocate for a message that carries no trace context:
// it runs for every consumed message.
func TestExtractWithoutTraceContextAllocatesNothing(t *testing.T) {
	h := map[string][]string{"Nats-Msg-Id": {"x"}, "Prost-Signature": {"v1,abc"}}
	ctx := context.Background()
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = Extract(ctx, h) }))
}
