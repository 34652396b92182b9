package main

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/contracts/contractshttp"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/domain/registry/registryhttp"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/invalidate"
	gatewaysvc "github.com/prost-platform/prost/services/gateway"
)

// registryDeps builds the schema registry (with the platform schemas of
// PROST_SCHEMAS_DIR) and the contracts store: the ingest check and the
// tenant routes /v1/registry and /v1/contracts the gateway mounts.
func (p *platform) registryDeps(feed *invalidate.Feed) (gatewaysvc.EventChecker, []httpapi.Routes, error) {
	log := p.log.With("service", "gateway")
	dir := p.env.SchemasDir
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && os.Getenv("PROST_SCHEMAS_DIR") == "" {
		// The default ./schemas is missing (prost started outside the
		// repository): run without platform schemas rather than not at all.
		// A PROST_SCHEMAS_DIR that was set must exist.
		log.Warn("no platform schemas: the default PROST_SCHEMAS_DIR ./schemas does not exist", "dir", dir)
		dir = ""
	}
	reg, err := registry.New(p.pool, registry.Config{
		PlatformDir: dir, UnregisteredTypes: p.env.UnregisteredTypes, Logger: log, Feed: feed,
	})
	if err != nil {
		return nil, nil, err
	}
	cs := contracts.NewStore(p.pool, contracts.StoreConfig{Feed: feed})
	kr, err := p.keyring()
	if err != nil {
		return nil, nil, err
	}
	return registry.NewIngest(reg, cs, kr), []httpapi.Routes{
		registryhttp.New(reg, registryhttp.Config{MaxBodyBytes: p.env.MaxBodyBytes}),
		contractshttp.New(cs),
	}, nil
}

// demoSchema is the schema `prost dev` registers for the demo App's
// user.signup, so the welcome's curl passes validation at ingest.
const demoSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "user.signup",
  "type": "object",
  "properties": {"email": {"type": "string", "format": "email"}},
  "required": ["email"]
}`

// ensureDemoSchema registers demoSchema for the demo App's user.signup
// (registering the same schema again changes nothing). A failure is logged,
// never fatal: the App may have registered its own versions since.
func ensureDemoSchema(ctx context.Context, p *platform, demo *devApp) {
	if demo == nil {
		return
	}
	reg, err := registry.New(p.pool, registry.Config{UnregisteredTypes: p.env.UnregisteredTypes})
	if err == nil {
		_, _, err = reg.Register(ctx, demo.AppID, "user.signup", []byte(demoSchema))
	}
	if err != nil {
		p.log.Warn("could not register the demo App's user.signup schema", "error", err)
	}
}
