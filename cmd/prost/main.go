// Command prost is PROST's single binary: `prost dev` runs the whole platform
// in one process, `prost serve` runs chosen services, and the admin commands
// drive the HTTP API.
//
// The command tree is built with spf13/cobra (decision 0010): every command
// and flag has help, `-h` never runs anything, `--json` prints data as JSON,
// and the exit code says what happened: 0 done, 1 a check failed or the
// server refused, 2 the command was used wrongly.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	factorysvc "github.com/prost-platform/prost/services/factory"
)

// version and commit are stamped at build time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234" ./cmd/prost
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	// The factory runs its gate tools in a child process: this binary.
	factorysvc.MaybeGateProcess()
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

// cli is what every command runs with.
type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
	env            env
}

// run runs the command line args. Errors from parsing (unknown command or
// flag, wrong arguments, a missing required flag) are usage errors, exit 2;
// errors from a command's work are exit 1 unless they say otherwise.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr, env: envFromOS()}
	root := c.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return ee
	default:
		return exitError{code: 2, msg: err.Error() + " (see prost help)"}
	}
}

// do wraps a command's work: an error it returns is exit 1 unless it is an
// exitError already (a usage error found while working is 2).
func do(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		var ee exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return exitError{code: 1, msg: err.Error()}
	}
}

func (c *cli) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "prost",
		Short: "PROST, the event governance platform",
		Long: `prost runs the PROST platform and drives its HTTP API.

Configuration is by environment variable; see docs/configuration.md.
Admin commands talk to PROST_URL (default http://127.0.0.1:8080) with PROST_ADMIN_TOKEN;
tenant commands (schemas, privacy, subscriptions, billing) use the App credentials in PROST_APP_KEY and PROST_APP_SECRET.`,
		Version:       version + " (commit " + commit + ")",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = cmd.Help()
			return exitError{code: 2}
		},
	}
	root.SetVersionTemplate("prost {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError("%v", err) })
	root.AddCommand(
		c.devCmd(), c.serveCmd(), c.migrateCmd(), c.appsCmd(), c.auditCmd(), c.jobsCmd(), c.dlqCmd(),
		c.schemasCmd(), c.contractsCmd(), c.privacyCmd(), c.subscriptionsCmd(), c.natsAuthCmd(), c.billingCmd(), c.factoryCmd(), c.streamsCmd(), c.versionCmd(),
	)
	return root
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit prost was built from",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(c.stdout, "prost %s (commit %s)\n", version, commit)
		},
	}
}

// group is a command that only holds subcommands: run alone, it prints its
// help and is a usage error.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = cmd.Help()
			return exitError{code: 2}
		},
	}
	g.AddCommand(subs...)
	return g
}

// jsonFlag adds the --json flag every command that prints data has.
func jsonFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print the result as JSON")
}
