// Package governance is PROST's audit service: a consumer that appends every
// accepted event to its tenant's hash-chained audit log (see pkg/audit).
package governance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/audit"
	"github.com/prost-platform/prost/pkg/consumer"
)

// ConsumerName is the durable JetStream consumer (and idempotency namespace)
// of the audit log.
const ConsumerName = "governance-audit"

// Config tunes the service. The zero value is usable.
type Config struct {
	// BatchSize caps the events appended in one transaction. Defaults to 200.
	BatchSize int
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// New returns the audit consumer. Run it with Run.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) (*consumer.Consumer, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	return consumer.New(pool, js, consumer.Config{
		Name:      ConsumerName,
		BatchSize: cfg.BatchSize,
		Logger:    cfg.Logger,
	}, Handle)
}

// envelope is the part of a structured CloudEvent the audit log records.
type envelope struct {
	ID       string          `json:"id"`
	Source   string          `json:"source"`
	Type     string          `json:"type"`
	TenantID string          `json:"tenantid"`
	ActorID  json.RawMessage `json:"actorid"`
	Action   json.RawMessage `json:"action"`
}

// Handle appends msgs to their tenants' audit chains inside tx.
func Handle(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
	recs := make([]audit.Record, 0, len(msgs))
	for _, m := range msgs {
		var e envelope
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return consumer.Permanent(fmt.Errorf("message %s is not a structured CloudEvent: %w", m.ID, err))
		}
		tenant, err := uuid.Parse(e.TenantID)
		if err != nil {
			return consumer.Permanent(fmt.Errorf("message %s has no valid tenantid: %w", m.ID, err))
		}
		recs = append(recs, audit.Record{TenantID: tenant, EventID: e.ID, EventSource: e.Source, EventType: e.Type,
			ActorID: extString(e.ActorID), Action: extString(e.Action)})
	}
	_, err := audit.AppendTx(ctx, tx, recs)
	return err
}

// extString renders an extension value (string, boolean or integer) as text.
func extString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}
