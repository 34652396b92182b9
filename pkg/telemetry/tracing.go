// Package telemetry gives PROST its traces (OpenTelemetry) and metrics
// (Prometheus text on GET /metrics).
//
// Traces: the gateway opens a span per ingest request and stores its context
// with each event as the CloudEvents traceparent/tracestate extensions (unless
// the client sent its own); the relay copies them into the JetStream message
// headers; each consumer continues the trace with a span per message. Spans
// are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and nowhere otherwise — trace
// ids still exist, so logs can carry them.
package telemetry

import (
	"context"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of PROST's spans.
const TracerName = "github.com/prost-platform/prost"

// Propagator is the W3C trace-context propagator PROST uses everywhere.
var Propagator = propagation.TraceContext{}

// Tracer returns PROST's tracer from the global provider.
func Tracer() trace.Tracer { return otel.Tracer(TracerName) }

// SetupTracing installs the global tracer provider: exporting over OTLP/HTTP
// when an OTLP endpoint is configured in the environment. Otherwise nothing
// would read a span, so none is recorded: spans still carry trace ids (for
// logs and the traceparent stored with each event) but setting their
// attributes costs nothing, which saved a few microseconds and a few
// allocations per request and per consumed message. shutdown flushes and
// stops it. Extra span processors (tests use an in-memory exporter) are
// added as given, and spans are then recorded for them.
func SetupTracing(ctx context.Context, service string, extra ...sdktrace.SpanProcessor) (shutdown func(context.Context) error, err error) {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	}
	for _, sp := range extra {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	} else if len(extra) == 0 {
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator)
	return tp.Shutdown, nil
}

// Extract returns ctx carrying the remote span context found in headers
// (traceparent/tracestate), if any. headers are read where they are: NATS
// header names keep their case and trace-context names have none, so a name
// not found as given is looked for case-insensitively. It allocates nothing
// for headers without a trace context (it ran for every consumed message and
// every request, and copying the headers into an http.Header was ~4% of what
// the all-in-one process allocated while it caught up a backlog).
func Extract(ctx context.Context, h map[string][]string) context.Context {
	return Propagator.Extract(ctx, headerCarrier(h))
}

// headerCarrier is a read-only propagation.TextMapCarrier over NATS or HTTP
// headers, whatever the case of their names.
type headerCarrier map[string][]string

func (h headerCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && len(k) == len(key) && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set does nothing: Extract only reads.
func (h headerCarrier) Set(string, string) {}

func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// TraceParent returns the traceparent and tracestate of ctx's span, or ""
// when ctx carries no valid span context.
func TraceParent(ctx context.Context) (parent, state string) {
	h := http.Header{}
	Propagator.Inject(ctx, propagation.HeaderCarrier(h))
	return h.Get("traceparent"), h.Get("tracestate")
}

// ContextFromTraceParent returns ctx carrying the remote span context of a
// traceparent (and tracestate) value.
func ContextFromTraceParent(ctx context.Context, parent, state string) context.Context {
	if parent == "" {
		return ctx
	}
	h := http.Header{"Traceparent": {parent}}
	if state != "" {
		h.Set("tracestate", state)
	}
	return Propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// TraceID returns the trace id of ctx's span, or "".
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
