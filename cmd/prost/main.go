// Command prost is PROST's single binary: `prost dev` runs the whole platform
// in one process, `prost serve` runs chosen services, and the admin commands
// drive the HTTP admin API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `prost: the PROST event governance platform

Usage:
  prost dev                               run every service in one process (embedded NATS unless NATS_URL is set)
  prost serve SERVICE...                  run services: gateway, relay, governance, rules, billing (or "all")
  prost migrate up|down [N]|status        apply, revert or list database migrations
  prost apps create --name N [--json]     create an App; prints its credentials once
  prost apps list [--json]                list Apps
  prost apps rotate-secret ID [--json]    replace an App's secret; prints the new one once
  prost apps disable ID | enable ID       disable or re-enable an App
  prost audit verify [--app ID] [--json]  recompute audit hash chains; exit 1 naming the first broken entry
  prost jobs list [--state S] [--kind K] [--json]  list background jobs
  prost dlq list [--consumer C] [--app ID] [--type T] [--since TIME] [--json]
  prost dlq show ENTRY
  prost dlq replay (ENTRY... | --consumer C [--type T] [--since TIME] | --all) [--dry-run]
  prost dlq purge  (ENTRY... | --consumer C [--type T] [--since TIME] | --all) [--dry-run]
  prost schemas register --type T --file F [--json]   register a JSON Schema version for event type T (App credentials)
  prost schemas list [--json]             list the App's subjects and the platform's (App credentials)
  prost schemas compat [--mode M] [--policy STRICT|LENIENT] [--json] OLD.json NEW.json
                                          check compatibility offline; exit 1 listing each incompatible change
  prost contracts lint [--schemas DIR] [--json] [PATH...]  apply gates A/B/C to contract files (default contracts/)
  prost version                           print the version

Configuration is by environment variable; see docs/configuration.md.
Admin commands talk to PROST_URL (default http://127.0.0.1:8080) with PROST_ADMIN_TOKEN;
prost schemas register|list use the App credentials in PROST_APP_KEY and PROST_APP_SECRET.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "prost:", ee.msg)
		}
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "prost:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a given code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return exitError{code: 2, msg: fmt.Sprintf(format, args...) + " (see prost help)"}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{code: 2}
	}
	env := envFromOS()
	switch args[0] {
	case "dev":
		return runDev(ctx, env, stdout, stderr)
	case "serve":
		return runServe(ctx, env, args[1:], stderr)
	case "migrate":
		return runMigrate(ctx, env, args[1:], stdout)
	case "apps":
		return runApps(ctx, env, args[1:], stdout)
	case "audit":
		return runAudit(ctx, env, args[1:], stdout)
	case "dlq":
		return runDLQ(ctx, env, args[1:], stdout)
	case "jobs":
		return runJobs(ctx, env, args[1:], stdout)
	case "schemas":
		return runSchemas(ctx, env, args[1:], stdout)
	case "contracts":
		return runContracts(args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "prost", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError("unknown command %q", args[0])
	}
}
