// Package governance is PROST's audit service: a consumer that appends every
// accepted event to its tenant's hash-chained audit log (see pkg/domain/audit).
package governancesvc

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/audit"
)

// ConsumerName is the durable JetStream consumer name (and DLQ consumer
// name) of the audit log.
const ConsumerName = "governance-audit"

// New returns the audit consumer; run it with Run. cfg carries the
// deployment's settings (partitions, retry policy from
// nats/consumers/governance-audit.json, logger); its Name is set here, and
// BatchSize defaults to 200.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg consumer.Config) (*consumer.Consumer, error) {
	cfg.Name = ConsumerName
	// An event's entry is its own idempotency record (audit.AppendNewTx).
	cfg.Idempotent = true
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	return consumer.New(pool, js, cfg, audit.HandleEvents)
}
