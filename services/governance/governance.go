// Package governance is PROST's audit service: a consumer that appends every
// accepted event to its tenant's hash-chained audit log (see pkg/audit).
package governance

import (
	"log/slog"

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
	}, audit.HandleEvents)
}
