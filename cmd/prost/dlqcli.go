package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/spf13/cobra"
)

// dlqFlags are the flags of the dlq commands.
type dlqFlags struct {
	consumer, app, typ, since, state string
	all, dryRun, asJSON              bool
}

func (c *cli) dlqCmd() *cobra.Command {
	var f dlqFlags
	mk := func(use, short string, args cobra.PositionalArgs, sub string) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Args: args,
			RunE: do(func(_ *cobra.Command, a []string) error { return runDLQ(c.ctx, c.env, sub, f, a, c.stdout) })}
		jsonFlag(cmd, &f.asJSON)
		return cmd
	}
	filters := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&f.consumer, "consumer", "", "only this consumer's dead letters")
		cmd.Flags().StringVar(&f.app, "app", "", "only this App's dead letters (its app_id)")
		cmd.Flags().StringVar(&f.typ, "type", "", "only events of this type")
		cmd.Flags().StringVar(&f.since, "since", "", "only dead letters recorded at or after this RFC 3339 time")
	}
	list := mk("list", "List dead letters", cobra.NoArgs, "list")
	filters(list)
	list.Flags().StringVar(&f.state, "state", "", "entries in this state: dead (default), replayed or purged")
	show := mk("show ENTRY", "Show one dead letter with its event", cobra.ExactArgs(1), "show")
	replay := mk("replay (ENTRY... | --consumer C [--type T] [--since TIME] [--app ID] | --all)",
		"Send dead letters back to their consumer, once each; recorded in the audit log", cobra.ArbitraryArgs, "replay")
	purge := mk("purge (ENTRY... | --consumer C [--type T] [--since TIME] [--app ID] | --all)",
		"Mark dead letters purged: kept for the record, never replayed", cobra.ArbitraryArgs, "purge")
	replay.Long = `Send dead letters back to the consumer that failed them, once each; each replay is recorded with
PROST_ACTOR and in the tenant's audit log. A replay that fails again becomes a new dead entry whose
replay_of names the entry replayed.

Named entries are checked first: an entry that does not exist, is no longer dead, or is an event the bus
refused for good makes the command exit 1 naming each one, and nothing is replayed. A --consumer that no
consumer is named exits 1 too. A selection (--consumer, --all) that finds nothing replays nothing (exit 0).`
	purge.Long = `Mark dead letters purged: they are kept for the record, with who purged them and when, and no
longer counted as dead.

Named entries are checked first: an entry that does not exist or is no longer dead makes the command
exit 1 naming each one, and nothing is purged. A --consumer that no consumer is named exits 1 too.`
	for _, cmd := range []*cobra.Command{replay, purge} {
		filters(cmd)
		cmd.Flags().BoolVar(&f.all, "all", false, "act on every dead letter")
		cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "say what would be done, do nothing")
	}
	return group("dlq", "Inspect, replay and purge dead letters (see docs/runbooks/replaying-dead-letters.md)", list, show, replay, purge)
}

// runDLQ implements prost dlq list|show|replay|purge against the admin API.
func runDLQ(ctx context.Context, e env, cmd string, f dlqFlags, args []string, stdout io.Writer) error {
	consumerName, app, typ, since, state, all, dryRun, asJSON := &f.consumer, &f.app, &f.typ, &f.since, &f.state, &f.all, &f.dryRun, &f.asJSON
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	if *since != "" {
		if _, err := time.Parse(time.RFC3339Nano, *since); err != nil {
			return usageError("--since must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
		}
	}
	switch cmd {
	case "list":
		q := url.Values{"limit": {"1000"}}
		for k, v := range map[string]string{"consumer": *consumerName, "app_id": *app, "type": *typ, "since": *since, "state": *state} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var all []dlq.Entry
		for {
			var page struct {
				Items      []dlq.Entry `json:"items"`
				NextCursor *string     `json:"next_cursor"`
			}
			if err := c.do(ctx, http.MethodGet, "/admin/v1/dlq?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			all = append(all, page.Items...)
			if page.NextCursor == nil {
				break
			}
			q.Set("cursor", *page.NextCursor)
		}
		if *asJSON {
			if all == nil {
				all = []dlq.Entry{}
			}
			return json.NewEncoder(stdout).Encode(all)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENTRY\tCONSUMER\tAPP\tTYPE\tEVENT\tDELIVERIES\tREASON\tLAST_FAILURE\tLAST_ERROR")
		for _, d := range all {
			tenant := "-"
			if d.TenantID != nil {
				tenant = d.TenantID.String()
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s %s\t%d\t%s\t%s\t%s\n", d.ID, d.Consumer, tenant, d.EventType, d.EventSource, d.EventID,
				d.DeliveryCount, d.Reason, d.LastFailureAt.UTC().Format(time.RFC3339), oneLine(d.LastError, 80))
		}
		return tw.Flush()
	case "show":
		var d json.RawMessage
		if err := c.do(ctx, http.MethodGet, "/admin/v1/dlq/"+url.PathEscape(args[0]), nil, &d); err != nil {
			return err
		}
		var pretty strings.Builder
		enc := json.NewEncoder(&pretty)
		enc.SetIndent("", "  ")
		var v any
		_ = json.Unmarshal(d, &v)
		_ = enc.Encode(v)
		_, err := io.WriteString(stdout, pretty.String())
		return err
	case "replay", "purge":
		sel := map[string]any{}
		n := 0
		if len(args) > 0 {
			var ids []int64
			for _, a := range args {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil {
					return usageError("%q is not a dead-letter entry id", a)
				}
				ids = append(ids, id)
			}
			sel["ids"] = ids
			n++
		}
		if *consumerName != "" {
			sel["consumer"] = *consumerName
			n++
		}
		if *all {
			sel["all"] = true
			n++
		}
		if n != 1 {
			return usageError("prost dlq %s needs ENTRY ids, or --consumer C [--type T] [--since TIME] [--app ID], or --all", cmd)
		}
		for k, v := range map[string]string{"type": *typ, "since": *since, "app_id": *app} {
			if v != "" {
				sel[k] = v
			}
		}
		sel["dry_run"] = *dryRun
		var res dlq.Result
		if err := c.do(ctx, http.MethodPost, "/admin/v1/dlq/"+cmd, sel, &res); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(res)
		}
		verb := map[string]string{"replay": "replayed", "purge": "purged"}[cmd]
		if res.DryRun {
			verb = "would be " + verb
		}
		fmt.Fprintf(stdout, "%d entries %s: %v\n", res.Count, verb, res.IDs)
		return nil
	default:
		return usageError("unknown dlq command %q", cmd)
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
