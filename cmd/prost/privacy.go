package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/privacy"
	"github.com/prost-platform/prost/pkg/domain/privacy/privacyhttp"
	"github.com/prost-platform/prost/pkg/jobs"
)

// keyring is the keyring of classified values, made on first use from
// PROST_PRIVACY_KEK; nil (with a warning) when it is not set: events whose
// contract classifies data are then refused, and erasures and exports
// answer 503.
func (p *platform) keyring() (*dataprotect.Keyring, error) {
	if p.kr != nil || p.krChecked {
		return p.kr, nil
	}
	p.krChecked = true
	if p.env.PrivacyKEK == "" {
		p.log.Warn("PROST_PRIVACY_KEK is not set: events whose contract classifies data are refused, and erasure and export are unavailable")
		return nil, nil
	}
	kek, err := dataprotect.ParseKEK(p.env.PrivacyKEK)
	if err != nil {
		return nil, fmt.Errorf("PROST_PRIVACY_KEK: %w", err)
	}
	p.kr, err = dataprotect.New(p.pool, dataprotect.Config{KEK: kek, CacheTTL: p.env.PrivacyCacheTTL, Feed: p.feed,
		Logger: p.log.With("component", "dataprotect")})
	return p.kr, err
}

// privacyService is the erasure, export and retention service.
func (p *platform) privacyService(kr *dataprotect.Keyring, service string) *privacy.Service {
	return privacy.New(p.pool, kr, contracts.NewStore(p.pool, contracts.StoreConfig{}), privacy.Config{
		Partitions: p.env.Partitions, RetentionInterval: p.env.RetentionInterval, Logger: p.log.With("service", service),
	})
}

// privacyRoutes are the gateway's /v1/data-subjects and /v1/privacy routes.
func (p *platform) privacyRoutes(kr *dataprotect.Keyring) *privacyhttp.Handlers {
	return privacyhttp.New(p.privacyService(kr, "gateway"))
}

// retentionJobs is the job worker that runs the retention job every
// PROST_PRIVACY_RETENTION_INTERVAL (with the governance service); nil
// without a keyring.
func (p *platform) retentionJobs(ctx context.Context) (*jobs.Client, error) {
	kr, err := p.keyring()
	if err != nil || kr == nil {
		return nil, err
	}
	svc := p.privacyService(kr, "governance")
	c, err := jobs.NewClient(p.pool, jobs.Config{
		Workers: 1, PollInterval: min(p.env.RetentionInterval, jobs.DefaultPollInterval), JobTimeout: 10 * time.Minute,
		Logger: p.log.With("service", "governance"),
	})
	if err != nil {
		return nil, err
	}
	if err := c.Register(privacy.KindRetention, svc.RunRetention); err != nil {
		return nil, err
	}
	if err := privacy.EnsureRetentionJob(ctx, p.pool); err != nil {
		return nil, err
	}
	return c, nil
}

// devPrivacyKEK returns the KEK kept in PROST_DATA_DIR/privacy-kek (mode
// 0600), making one on first start, so `prost dev` reads its classified
// values across restarts. Production sets PROST_PRIVACY_KEK (or a KMS).
func devPrivacyKEK(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "privacy-kek")
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if _, perr := dataprotect.ParseKEK(k); perr != nil {
			return "", fmt.Errorf("%s: %w", path, perr)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	k := dataprotect.NewKEKSpec()
	return k, os.WriteFile(path, []byte(k+"\n"), 0o600)
}
