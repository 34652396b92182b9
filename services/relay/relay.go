// Package relay is PROST's outbox relay service: it publishes every committed
// outbox row to NATS JetStream (see pkg/outbox for the guarantees). Run as
// many as you like: one is the leader, the others stand by.
package relaysvc

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/outbox"
)

// Config tunes the relay service. The zero value is usable.
type Config struct {
	// PollInterval is the fallback wake-up when no notification arrives.
	// Defaults to 500ms.
	PollInterval time.Duration
	// BatchSize is the rows published per round. Defaults to 1,000.
	BatchSize int
	// AtomicMinRows is the fewest rows a round publishes as an atomic batch
	// (see pkg/outbox). Defaults to 32; negative never uses atomic batches.
	AtomicMinRows int
	// Retention is how long published outbox rows are kept. Defaults to 72h.
	Retention time.Duration
	// Signer signs every message (PROST_BUS_KEY); nil publishes unsigned
	// messages, which consumers that verify dead-letter.
	Signer *busauth.Signer
	// Bus, when set, guards the events stream from the relay's leader: it
	// checks the stream before the leader publishes and rebuilds what the
	// stream lost (pkg/busstate).
	Bus *busstate.Bus
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// New returns the relay; run it with Run(ctx), wake it with Wake.
func New(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) *outbox.Relay {
	oc := outbox.Config{
		BatchSize:     cfg.BatchSize,
		AtomicMinRows: cfg.AtomicMinRows,
		PollInterval:  cfg.PollInterval,
		Retention:     cfg.Retention,
		Logger:        cfg.Logger,
		Signer:        cfg.Signer,
	}
	if cfg.Bus != nil {
		oc.Guard, oc.Acked = cfg.Bus.Guard, cfg.Bus.Acked
	}
	return outbox.New(pool, js, oc)
}

// Run runs a relay until ctx ends.
func Run(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, cfg Config) error {
	return New(pool, js, cfg).Run(ctx)
}
