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
//	 "ack_wait": "30s", "batch_size": 200, "retry_budget": "15m", "tenant_lanes": 16}
//
// Durations use Go syntax. Absent fields keep the runtime's defaults (for
// retry_budget, the one PROST_RETRY_BUDGET sets for every consumer).
type PolicyFile struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	MaxDeliver  int      `json:"max_deliver,omitempty"`
	Backoff     []string `json:"backoff,omitempty"`
	AckWait     string   `json:"ack_wait,omitempty"`
	BatchSize   int      `json:"batch_size,omitempty"`
	// Linger is Config.Linger: how long a worker waits for a batch to
	// fill ("0s" or a negative duration: not at all). At most 1s.
	Linger string `json:"linger,omitempty"`
	// LingerQuiet is Config.LingerQuiet: a worker stops lingering once no
	// message has arrived for this long ("0s" or a negative duration: it
	// lingers the whole Linger). At most 1s.
	LingerQuiet string `json:"linger_quiet,omitempty"`
	// RetryBudget is RetryPolicy.Budget: how long a failing message is
	// retried, from its first failure, before it is dead-lettered whatever
	// its schedule has left ("0" or a negative duration: no budget).
	RetryBudget string `json:"retry_budget,omitempty"`
	// SingleLane reads every partition with one durable, in stream order,
	// instead of one durable per partition. Per-key order still holds (the
	// stream is in per-key order), and so does the order of each tenant's
	// events across partitions, which the audit log's per-tenant chains
	// need; with one worker a failing message holds back all others, so
	// such a consumer runs TenantLanes to retry failing tenants aside.
	SingleLane bool `json:"single_lane,omitempty"`
	// TenantLanes is Config.TenantLanes: the ordered workers of each
	// durable, a main one and TenantLanes-1 that retry failing tenants.
	TenantLanes int `json:"tenant_lanes,omitempty"`
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
	if f.RetryBudget != "" {
		d, err := time.ParseDuration(f.RetryBudget)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("retry_budget %q is not a duration", f.RetryBudget))
		case d <= 0:
			cfg.Retry.Budget = -1
		default:
			cfg.Retry.Budget = d
		}
	}
	if err := lingerField("linger", f.Linger, &cfg.Linger); err != nil {
		errs = append(errs, err)
	}
	if err := lingerField("linger_quiet", f.LingerQuiet, &cfg.LingerQuiet); err != nil {
		errs = append(errs, err)
	}
	if f.SingleLane {
		cfg.Partitions = 1
	}
	if f.TenantLanes < 0 {
		errs = append(errs, errors.New("tenant_lanes must be positive"))
	} else if f.TenantLanes > 0 {
		cfg.TenantLanes = f.TenantLanes
	}
	if f.BatchSize < 0 {
		errs = append(errs, errors.New("batch_size must be positive"))
	} else if f.BatchSize > 0 {
		cfg.BatchSize = f.BatchSize
	}
	return cfg, errors.Join(errs...)
}

// lingerField sets *dst from a policy file's linger-like field: unset leaves
// it, "0s" or a negative duration switches it off (-1), and anything else
// must be a duration of at most 1s.
func lingerField(name, v string, dst *time.Duration) error {
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil || d > time.Second:
		return fmt.Errorf("%s %q must be a duration of at most 1s", name, v)
	case d <= 0:
		*dst = -1
	default:
		*dst = d
	}
	return nil
}
