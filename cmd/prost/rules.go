package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/domain/rules"
	"github.com/prost-platform/prost/pkg/domain/rules/ruleshttp"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/secretbox"
	rulessvc "github.com/prost-platform/prost/services/rules"
)

// secretsKey parses PROST_SECRETS_KEY; nil when it is not set (webhook
// actions are then refused and cannot be delivered).
func (p *platform) secretsKey() (*secretbox.Key, error) {
	if p.env.SecretsKey == "" {
		return nil, nil
	}
	k, err := secretbox.ParseKey(p.env.SecretsKey)
	if err != nil {
		return nil, fmt.Errorf("PROST_SECRETS_KEY: %w", err)
	}
	return &k, nil
}

// rulesRoutes are the gateway's /v1/rules and /v1/decisions routes.
func (p *platform) rulesRoutes() httpapi.Routes {
	k, err := p.secretsKey()
	if err != nil {
		// Reported by startRules or at start-up; without a usable key the
		// routes still serve rules without webhooks.
		k = nil
	}
	if k == nil {
		p.log.Warn("PROST_SECRETS_KEY is not set or invalid: rules with webhook actions are refused")
	}
	return ruleshttp.New(rules.NewStore(p.pool, rules.StoreConfig{SecretsKey: k, Outbound: p.outbound, MaxRules: p.env.MaxRules,
		ReservedSources: reservedSources()}))
}

// rulesService is the rules service: the rules-engine consumer and the job
// workers that deliver webhooks and run scheduled actions.
func (p *platform) rulesService() (*rulessvc.Service, error) {
	k, err := p.secretsKey()
	if err != nil {
		return nil, err
	}
	if k == nil {
		p.log.Warn("PROST_SECRETS_KEY is not set: webhook deliveries will fail until it is")
	}
	ccfg, err := p.consumerConfig(rulessvc.ConsumerName, "rules")
	if err != nil {
		return nil, err
	}
	log := p.log.With("service", "rules")
	kr, err := p.keyring()
	if err != nil {
		return nil, err
	}
	return rulessvc.New(p.pool, p.js, rulessvc.Config{
		Consumer: ccfg,
		Engine: rules.EngineConfig{Partitions: p.env.Partitions, EvalBudget: p.env.RulesEvalBudget,
			MaxOverruns: p.env.RulesMaxOverruns, Logger: log, Keyring: kr},
		SecretsKey: k,
		Outbound:   p.outbound,
		Logger:     log,
		Jobs:       p.rulesJobs,
		DeadLetter: p.deadLetterJob,
	})
}

// deadLetterJob stores a webhook job the job engine discarded in the DLQ, so
// `prost dlq replay` can retry it (see retryJob).
func (p *platform) deadLetterJob(ctx context.Context, j *jobs.Job) error {
	var a rules.WebhookJob
	_ = json.Unmarshal(j.Args, &a)
	first := j.CreatedAt
	if len(j.Errors) > 0 {
		first = j.Errors[0].At
	}
	last := time.Now()
	if j.FinishedAt != nil {
		last = *j.FinishedAt
	}
	_, err := dlq.DeadLetterJob(ctx, p.pool, dlq.JobFailure{
		Consumer: "rules-webhook", JobID: j.ID, Kind: j.Kind, TenantID: j.TenantID, MsgID: a.WebhookID,
		EventID: a.Event.ID, EventSource: a.Event.Source, EventType: a.Event.Type,
		Attempts: j.Attempt, LastError: j.LastError, FirstFailure: first, LastFailure: last, Payload: j.Args,
	})
	return err
}

// retryJob makes a discarded job available again: the replay of a dead
// letter that is a job. The service that runs the job's kind picks it up.
func (p *platform) retryJob(ctx context.Context, id int64) error {
	c, err := jobs.NewClient(p.pool, jobs.Config{})
	if err != nil {
		return err
	}
	_, err = c.Retry(ctx, id)
	return err
}

// devSecretsKey returns the key kept in PROST_DATA_DIR/secrets-key (mode
// 0600), making one on first start, so `prost dev` keeps its webhook secrets
// readable across restarts.
func devSecretsKey(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "secrets-key")
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if _, perr := secretbox.ParseKey(k); perr != nil {
			return "", fmt.Errorf("%s: %w", path, perr)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	_, k := secretbox.NewKey()
	return k, os.WriteFile(path, []byte(k+"\n"), 0o600)
}
