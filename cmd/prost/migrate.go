package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/prost-platform/prost/pkg/migrate"
	"github.com/prost-platform/prost/pkg/postgres"
	"github.com/spf13/cobra"
)

func (c *cli) migrateCmd() *cobra.Command {
	run := func(args ...string) func(*cobra.Command, []string) error {
		return do(func(_ *cobra.Command, more []string) error {
			return runMigrate(c.ctx, c.env, append(args, more...), c.stdout)
		})
	}
	return group("migrate", "Apply, revert or list database migrations (also applied when services start)",
		&cobra.Command{Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs, RunE: run("up")},
		&cobra.Command{Use: "down [N|all]", Short: "Revert the last N migrations (default 1), or all", Args: cobra.MaximumNArgs(1), RunE: run("down")},
		&cobra.Command{Use: "status", Short: "List migrations and when each was applied", Args: cobra.NoArgs, RunE: run("status")},
	)
}

func runMigrate(ctx context.Context, e env, args []string, stdout io.Writer) error {
	pool, err := postgres.Open(ctx, postgres.Config{URL: e.DatabaseURL, MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	m := migrate.New(pool)
	switch args[0] {
	case "up":
		applied, err := m.Up(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "database is up to date")
		}
		for _, v := range applied {
			fmt.Fprintf(stdout, "applied %03d\n", v)
		}
	case "down":
		steps := 1
		if len(args) > 1 {
			if args[1] == "all" {
				steps = 0
			} else if steps, err = strconv.Atoi(args[1]); err != nil || steps < 1 {
				return usageError("prost migrate down takes a number of steps >= 1, or all")
			}
		}
		reverted, err := m.Down(ctx, steps)
		if err != nil {
			return err
		}
		for _, v := range reverted {
			fmt.Fprintf(stdout, "reverted %03d\n", v)
		}
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
		for _, s := range st {
			at := "pending"
			if s.AppliedAt != nil {
				at = s.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%03d\t%s\t%s\n", s.Version, s.Name, at)
		}
		return tw.Flush()
	default:
		return usageError("unknown migrate command %q", args[0])
	}
	return nil
}
