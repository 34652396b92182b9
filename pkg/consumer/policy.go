package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// PolicyFile is a consumer's retry policy as kept in nats/consumers/<name>.json:
//
//	{"name": "governance-audit", "max_deliver": 10, "backoff": ["1s", "5s", "30s"],
//	 "ack_wait": "30s", "batch_size": 200}
//
// Durations use Go syntax. Absent fields keep the runtime's defaults.
type PolicyFile struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	MaxDeliver  int      `json:"max_deliver,omitempty"`
	Backoff     []string `json:"backoff,omitempty"`
	AckWait     string   `json:"ack_wait,omitempty"`
	BatchSize   int      `json:"batch_size,omitempty"`
	// SingleLane reads every partition with one worker, in stream order,
	// instead of one worker per partition. Per-key order still holds (the
	// stream is in per-key order); a failing message then holds back all
	// others. Worth it for a consumer whose writes serialise anyway, such
	// as the audit log's per-tenant chains: fewer, larger transactions.
	SingleLane bool `json:"single_lane,omitempty"`
}

// LoadPolicies reads every *.json policy in dir, by consumer name. A missing
// directory yields no policies.
func LoadPolicies(dir string) (map[string]PolicyFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]PolicyFile{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var f PolicyFile
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("consumer policy %s: %w", p, err)
		}
		if f.Name == "" {
			return nil, fmt.Errorf("consumer policy %s: name is required", p)
		}
		if _, err := f.Apply(Config{}); err != nil {
			return nil, fmt.Errorf("consumer policy %s: %w", p, err)
		}
		out[f.Name] = f
	}
	return out, nil
}

// Apply returns cfg with the policy's settings.
func (f PolicyFile) Apply(cfg Config) (Config, error) {
	var errs []error
	if f.MaxDeliver < 0 {
		errs = append(errs, errors.New("max_deliver must be positive"))
	} else if f.MaxDeliver > 0 {
		cfg.Retry.MaxDeliver = f.MaxDeliver
	}
	if len(f.Backoff) > 0 {
		cfg.Retry.Backoff = nil
		for _, s := range f.Backoff {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("backoff %q is not a positive duration", s))
				continue
			}
			cfg.Retry.Backoff = append(cfg.Retry.Backoff, d)
		}
	}
	if f.AckWait != "" {
		d, err := time.ParseDuration(f.AckWait)
		if err != nil || d < time.Second {
			errs = append(errs, fmt.Errorf("ack_wait %q must be a duration of at least 1s", f.AckWait))
		} else {
			cfg.Retry.AckWait = d
		}
	}
	if f.SingleLane {
		cfg.Partitions = 1
	}
	if f.BatchSize < 0 {
		errs = append(errs, errors.New("batch_size must be positive"))
	} else if f.BatchSize > 0 {
		cfg.BatchSize = f.BatchSize
	}
	return cfg, errors.Join(errs...)
}
