package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/busstate/busstatehttp"
)

func (c *cli) streamsCmd() *cobra.Command {
	var asJSON, noWait bool
	var since string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the JetStream streams, what PROST recorded of them, losses and rebuilds; exit 1 when one is missing or has lost messages",
		Args:  cobra.NoArgs,
		RunE:  do(func(*cobra.Command, []string) error { return runStreamsStatus(c.ctx, c.env, asJSON, c.stdout) }),
	}
	jsonFlag(status, &asJSON)
	rebuild := &cobra.Command{
		Use:   "rebuild [--since TIME]",
		Short: "Republish the stored events published since TIME to JetStream (a lost or new NATS server), and wait until done",
		Long: `Republish, from Postgres, every event published since TIME (default: as far back as the events
stream keeps messages) to PROST_EVENTS, with its original message id: consumers skip what they had
applied, so nothing is applied twice. The relay's leader runs it before it publishes anything newer.
TIME is an RFC 3339 time (2026-11-27T10:00:00Z) or a duration back from now (24h).
See docs/runbooks/disaster-recovery.md.`,
		Args: cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return runStreamsRebuild(c.ctx, c.env, since, noWait, asJSON, c.stdout)
		}),
	}
	rebuild.Flags().StringVar(&since, "since", "", "republish the events published since this RFC 3339 time, or this long ago (24h)")
	rebuild.Flags().BoolVar(&noWait, "no-wait", false, "ask for the rebuild and return at once")
	jsonFlag(rebuild, &asJSON)
	return group("streams", "Inspect the JetStream streams and rebuild them from Postgres (docs/runbooks/disaster-recovery.md)", status, rebuild)
}

func runStreamsStatus(ctx context.Context, e env, asJSON bool, stdout io.Writer) error {
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	var st busstate.Status
	if err := c.do(ctx, http.MethodGet, "/admin/v1/streams", nil, &st); err != nil {
		return err
	}
	if asJSON {
		if err := json.NewEncoder(stdout).Encode(st); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STREAM\tEXISTS\tMESSAGES\tFIRST_SEQ\tLAST_SEQ\tCREATED")
		for _, s := range st.Streams {
			created := "-"
			if s.Created != nil {
				created = s.Created.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%t\t%d\t%d\t%d\t%s\n", s.Name, s.Exists, s.Messages, s.FirstSeq, s.LastSeq, created)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nrebuild mode: %s\n", st.Mode)
		if len(st.Rebuilds) > 0 {
			fmt.Fprintln(stdout, "\nlosses and rebuilds, newest first:")
			tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCAUSE\tSTATE\tSINCE\tREPUBLISHED\tREASON")
			for _, r := range st.Rebuilds {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Cause, r.State, r.Since.UTC().Format(time.RFC3339), r.Republished, oneLine(r.Reason, 100))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		for _, p := range st.Problems {
			fmt.Fprintln(stdout, "\nPROBLEM: "+p)
		}
	}
	if len(st.Problems) > 0 {
		return exitError{code: 1, msg: st.Problems[0]}
	}
	return nil
}

// parseSince reads --since: an RFC 3339 time, or a duration back from now.
func parseSince(s string, now time.Time) (string, error) {
	if s == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	return "", usageError("--since must be an RFC 3339 time such as 2026-11-27T10:00:00Z, or a duration such as 24h")
}

func runStreamsRebuild(ctx context.Context, e env, since string, noWait, asJSON bool, stdout io.Writer) error {
	from, err := parseSince(since, time.Now())
	if err != nil {
		return err
	}
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	var r busstate.Rebuild
	if err := c.do(ctx, http.MethodPost, "/admin/v1/streams/rebuild", busstatehttp.RebuildRequest{Since: from}, &r); err != nil {
		return err
	}
	if !asJSON {
		fmt.Fprintf(stdout, "rebuild %d of %s asked for: republishing the events published since %s\n", r.ID, r.Stream, r.Since.UTC().Format(time.RFC3339))
	}
	last, lastErr := int64(-1), ""
	for !noWait && r.State != "done" {
		if !asJSON && r.Republished != last && r.State == "running" {
			fmt.Fprintf(stdout, "  %d republished\n", r.Republished)
			last = r.Republished
		}
		if !asJSON && r.LastError != lastErr {
			fmt.Fprintf(stdout, "  the last attempt failed (the relay's leader tries again): %s\n", r.LastError)
			lastErr = r.LastError
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if err := c.do(ctx, http.MethodGet, "/admin/v1/streams/rebuilds/"+strconv.FormatInt(r.ID, 10), nil, &r); err != nil {
			return err
		}
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	if r.State == "done" {
		fmt.Fprintf(stdout, "rebuild %d done: %d events republished, %d refused by the bus (already dead-lettered)\n", r.ID, r.Republished, r.Refused)
	}
	return nil
}
