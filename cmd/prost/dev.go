package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/subjects"
	"github.com/spf13/cobra"

	"github.com/prost-platform/prost/pkg/natsauth"
)

// devApp is the demo App's credentials, kept in PROST_DATA_DIR/demo-app.json
// (mode 0600) so `prost dev` can print them on every start. Only dev mode
// keeps a secret on disk; production never stores one in clear.
type devApp = apps.Credentials

func (c *cli) devCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run every service in one process, on an embedded NATS JetStream unless NATS_URL is set",
		Long: `prost dev runs the gateway, relay, governance, rules and factory services in one process.

It creates the database named by DATABASE_URL if it is missing, applies the migrations, starts an
embedded nats-server (PROST_EMBEDDED_NATS_ADDR, data in PROST_DATA_DIR) unless NATS_URL is set,
creates a demo App on first start, and prints the admin token, the demo App's credentials and a curl
that records an event. Ctrl-C stops it gracefully.`,
		Args: cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error { return runDev(c.ctx, c.env, c.stdout, c.stderr) }),
	}
}

func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve SERVICE...",
		Short: "Run chosen services (" + strings.Join(services, ", ") + ", or all) against NATS_URL and DATABASE_URL",
		Long: `prost serve runs the named services in this process, against the NATS server at NATS_URL and the
database at DATABASE_URL. Run as many processes as you like; see docs/architecture.md.`,
		Example:   "  prost serve gateway\n  prost serve relay governance rules\n  prost serve all",
		ValidArgs: append([]string{"all"}, services...),
		Args:      cobra.MinimumNArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return runServe(c.ctx, c.env, args, c.stderr)
		}),
	}
}

func runDev(ctx context.Context, e env, stdout, stderr io.Writer) error {
	if err := e.validate(); err != nil {
		return err
	}
	log, err := e.logger(os.Stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.DataDir, 0o700); err != nil {
		return err
	}
	// Before anything else is written to the data directory: what is
	// there tells a new one from one an earlier version ran on.
	if os.Getenv("PROST_PARTITIONS") == "" {
		if e.Partitions, err = devPartitions(e.DataDir); err != nil {
			return err
		}
	}
	token := e.AdminToken
	tokenSource := "PROST_ADMIN_TOKEN"
	if token == "" {
		if token, err = devAdminToken(e.DataDir); err != nil {
			return err
		}
		tokenSource = filepath.Join(e.DataDir, "admin-token")
	}
	if e.SecretsKey == "" {
		if e.SecretsKey, err = devSecretsKey(e.DataDir); err != nil {
			return err
		}
	}
	if e.BusKey == "" {
		if e.BusKey, err = devBusKey(e.DataDir); err != nil {
			return err
		}
	}
	if e.PrivacyKEK == "" {
		if e.PrivacyKEK, err = devPrivacyKEK(e.DataDir); err != nil {
			return err
		}
	}
	if os.Getenv("PROST_RETRY_BUDGET") == "" {
		// A developer sees a failing event in the dead-letter queue within
		// a minute rather than after production's 15.
		e.RetryBudget = consumer.DevRetryBudget
	}
	p, err := openPlatform(ctx, e, log, true)
	if err != nil {
		return err
	}
	defer p.close()
	demo, err := devDemoApp(ctx, p, e.DataDir)
	if err != nil {
		return err
	}
	ensureDemoSchema(ctx, p, demo)
	return p.run(ctx, services, token, func(addr string) {
		printWelcome(stdout, addr, token, tokenSource, demo)
		if p.embedded != nil {
			printBus(stdout, p.natsURL, filepath.Join(e.devAuthDir(), natsauth.FileServiceCreds))
		}
	})
}

// devPartitions returns the partition count kept in PROST_DATA_DIR/partitions,
// recording it on first start: subjects.DevPartitions for a new data directory, and
// subjects.DefaultPartitions, the count it ran with, for one an earlier
// prost dev ran on without recording it (it holds the embedded server's
// store, the bus key, the admin token or the demo App), so that its durables
// keep their messages (docs/delivery.md: changing the count needs draining
// first).
func devPartitions(dir string) (int, error) {
	path := filepath.Join(dir, "partitions")
	b, err := os.ReadFile(path)
	if err == nil {
		n, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr != nil || n < 1 {
			return 0, fmt.Errorf("%s: want a positive number of partitions, got %q (set PROST_PARTITIONS or fix the file)", path, strings.TrimSpace(string(b)))
		}
		return n, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	n := subjects.DevPartitions
	for _, earlier := range []string{"nats", "bus-key", "admin-token", "demo-app.json"} {
		if _, err := os.Stat(filepath.Join(dir, earlier)); err == nil {
			n = subjects.DefaultPartitions
			break
		}
	}
	return n, os.WriteFile(path, []byte(strconv.Itoa(n)+"\n"), 0o600)
}

// devBusKey returns the bus signing key kept in PROST_DATA_DIR/bus-key (mode
// 0600), making one on first start.
func devBusKey(dir string) (string, error) {
	path := filepath.Join(dir, "bus-key")
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if _, perr := busauth.Parse(k); perr != nil {
			return "", fmt.Errorf("%s: %w", path, perr)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	k := busauth.NewKey()
	return k, os.WriteFile(path, []byte(k+"\n"), 0o600)
}

func devAdminToken(dir string) (string, error) {
	path := filepath.Join(dir, "admin-token")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var r [24]byte
	_, _ = rand.Read(r[:])
	tok := "prost_admin_" + hex.EncodeToString(r[:])
	return tok, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

// devDemoApp creates the demo App when the database has no App yet, and
// otherwise reads the credentials saved when it was created.
func devDemoApp(ctx context.Context, p *platform, dir string) (*devApp, error) {
	path := filepath.Join(dir, "demo-app.json")
	store := apps.NewStore(p.pool, apps.Config{})
	if b, err := os.ReadFile(path); err == nil {
		var d devApp
		if json.Unmarshal(b, &d) == nil {
			if _, err := store.Get(ctx, d.AppID); err == nil {
				return &d, nil
			}
		}
	}
	n, err := store.Count(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, nil // Apps exist, made by someone else: do not add a demo.
	}
	_, creds, err := store.Create(ctx, "demo")
	if err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(creds, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return &creds, nil
}

func printWelcome(w io.Writer, addr, token, tokenSource string, demo *devApp) {
	base := "http://" + addr
	fmt.Fprintf(w, `
PROST is running at %s  (Ctrl-C stops it)

Console: %s/console/  (sign in with an App's key and secret, or the admin token)

Admin token (%s):
  export PROST_URL=%s
  export PROST_ADMIN_TOKEN=%s
`, base, base, tokenSource, base, token)
	if demo == nil {
		fmt.Fprintf(w, `
No demo App (this database already had Apps). Create one with:
  bin/prost apps create --name my-app
`)
		return
	}
	fmt.Fprintf(w, `
Demo App (the docs' examples use these exports too):
  export PROST_APP_KEY=%s
  export PROST_APP_SECRET=%s
  app_id:     %s
  api_key:    %s
  api_secret: %s

Record an event:
  curl -i %s/v1/events \
    -H 'X-Prost-App-Key: %s' \
    -H 'X-Prost-App-Secret: %s' \
    -H 'Content-Type: application/cloudevents+json' \
    -d '{"specversion":"1.0","id":"evt-1","source":"/demo","type":"user.signup","actorid":"user-42","action":"signup","data":{"email":"ada@example.com"}}'

Read it back, and its audit entry:
  curl -s %s/v1/events -H 'X-Prost-App-Key: %s' -H 'X-Prost-App-Secret: %s'
  curl -s %s/v1/audit  -H 'X-Prost-App-Key: %s' -H 'X-Prost-App-Secret: %s'

Manage Apps and check the audit chains (with the exports above):
  bin/prost apps list
  bin/prost audit verify
`, demo.APIKey, demo.APISecret, demo.AppID, demo.APIKey, demo.APISecret,
		base, demo.APIKey, demo.APISecret,
		base, demo.APIKey, demo.APISecret,
		base, demo.APIKey, demo.APISecret)
}

// printBus says where the private bus is and how PROST connects to it.
func printBus(w io.Writer, url, creds string) {
	fmt.Fprintf(w, `
The bus is private: NATS at %s refuses clients without credentials.
PROST's services connect with %s;
tenants read their own streams with credentials of a NATS subscription (docs/subscriptions.md).
`, url, creds)
}

func runServe(ctx context.Context, e env, args []string, _ io.Writer) error {
	names, err := parseServices(args)
	if err != nil {
		return err
	}
	if err := e.validate(); err != nil {
		return err
	}
	log, err := e.logger(os.Stderr)
	if err != nil {
		return err
	}
	if e.AdminToken == "" && contains(names, "gateway") {
		log.Warn("PROST_ADMIN_TOKEN is not set: the admin API refuses every request")
	}
	p, err := openPlatform(ctx, e, log, false)
	if err != nil {
		return err
	}
	defer p.close()
	return p.run(ctx, names, e.AdminToken, nil)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
