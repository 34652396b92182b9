// Package streams declares PROST's JetStream streams from the JSON files in
// the repository's nats/streams directory (the same JSON the nats CLI takes
// with `nats stream add --config`).
package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Load reads every *.json stream definition in dir, in name order.
func Load(dir string) ([]jetstream.StreamConfig, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("streams: no stream definitions (*.json) in %s (set PROST_NATS_DIR to the repository's nats/ directory)", dir)
	}
	slices.Sort(paths)
	out := make([]jetstream.StreamConfig, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var cfg jetstream.StreamConfig
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("streams: %s: %w", p, err)
		}
		if cfg.Name == "" || len(cfg.Subjects) == 0 {
			return nil, fmt.Errorf("streams: %s: name and subjects are required", p)
		}
		out = append(out, cfg)
	}
	return out, nil
}

// Options adjust loaded definitions to the deployment.
type Options struct {
	// Replicas, when positive, overrides num_replicas (3 on a cluster).
	Replicas int
}

// Ensure creates each stream or updates it to match its definition.
func Ensure(ctx context.Context, js jetstream.JetStream, cfgs []jetstream.StreamConfig, o Options) error {
	for _, cfg := range cfgs {
		if o.Replicas > 0 {
			cfg.Replicas = o.Replicas
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("streams: declare %s: %w", cfg.Name, err)
		}
	}
	return nil
}
