package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/registry"
)

// benchSchema is the JSON Schema of the benchmark's order.placed data
// (appendEvent), as a producer would register it.
const benchSchema = `{
  "type": "object",
  "properties": {
    "order_id": {"type": "string", "minLength": 1},
    "customer_id": {"type": "string", "minLength": 1},
    "currency": {"enum": ["EUR", "USD", "BRL"]},
    "total_cents": {"type": "integer", "minimum": 0},
    "items": {"type": "array", "minItems": 1, "items": {"type": "object",
      "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}, "price_cents": {"type": "integer", "minimum": 0}},
      "required": ["sku", "qty", "price_cents"]}}
  },
  "required": ["order_id", "customer_id", "currency", "total_cents", "items"]
}`

// measureSchemaValidation measures what validating an event's data against
// its registered schema costs at ingest: the gateway's own check
// (pkg/domain/registry.Ingest.CheckEvents), run in this process on PROST's
// database with benchSchema registered for a tenant of its own, on the
// benchmark's payload, its compiled schema cached as in a running gateway,
// for a tenth of a step (at least one second). Measured in process because
// the difference is far below the noise of an HTTP step.
func measureSchemaValidation(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc) (*SchemaValidation, string) {
	fail := func(err error) (*SchemaValidation, string) {
		log.Warn("schema validation cost not measured", "error", err)
		return nil, "not measured: " + err.Error()
	}
	reg, err := registry.New(p.pool, registry.Config{})
	if err != nil {
		return fail(err)
	}
	tenant := uuid.New()
	if _, _, err := reg.Register(ctx, tenant, eventType, []byte(benchSchema)); err != nil {
		return fail(err)
	}
	ev, err := cloudevent.ParseStructured(appendEvent(nil, "schema-validation", 1, ""))
	if err != nil {
		return fail(err)
	}
	in := registry.NewIngest(reg, nil, nil)
	evs := []cloudevent.Event{ev}
	if _, err := in.CheckEvents(ctx, tenant, evs, false); err != nil { // compiles and caches the schema
		return fail(fmt.Errorf("the benchmark's event fails its schema: %w", err))
	}
	window := max(cfg.Duration/10, time.Second)
	n := 0
	start := time.Now()
	for time.Since(start) < window && ctx.Err() == nil {
		for range 100 {
			if _, err := in.CheckEvents(ctx, tenant, evs, false); err != nil {
				return fail(err)
			}
		}
		n += 100
	}
	us := float64(time.Since(start).Nanoseconds()) / 1e3 / float64(n)
	log.Info("prost: schema validation cost", "us_per_event", us, "events", n)
	return &SchemaValidation{MicrosPerEvent: us}, ""
}
