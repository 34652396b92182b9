package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/natsauth"
)

// subscriptionFlags are the members create and update set.
type subscriptionFlags struct {
	protocol, sink, secret, schedule string
	types, filters                   []string
}

func (f *subscriptionFlags) add(cmd *cobra.Command, create bool) {
	fl := cmd.Flags()
	if create {
		fl.StringVar(&f.protocol, "protocol", "", "HTTP (PROST POSTs signed deliveries to --sink) or NATS (a consumer read with minted credentials) (required)")
	}
	fl.StringVar(&f.sink, "sink", "", "HTTP: the URL deliveries are POSTed to")
	fl.StringArrayVar(&f.types, "type", nil, "an event type to receive (repeat for more; none: every type)")
	fl.StringArrayVar(&f.filters, "filter", nil, `a filter as JSON, e.g. '{"prefix":{"source":"/shop"}}' (repeat: all must match; dialects exact, prefix, suffix, all, any, not, sql)`)
	fl.StringVar(&f.schedule, "retry-schedule", "", `HTTP: the wait before each retry, e.g. "5s,5m,30m" (default: the server's)`)
	fl.StringVar(&f.secret, "secret", "", "HTTP: a signing secret of your own (whsec_...); by default the server makes one and shows it once")
}

// input builds the request body from the flags set on cmd.
func (f *subscriptionFlags) input(cmd *cobra.Command) (map[string]any, error) {
	in := map[string]any{}
	ch := cmd.Flags().Changed
	if ch("protocol") {
		in["protocol"] = strings.ToUpper(f.protocol)
	}
	if ch("sink") {
		in["sink"] = f.sink
	}
	if ch("type") {
		in["types"] = f.types
	}
	if ch("filter") {
		fs := make([]json.RawMessage, 0, len(f.filters))
		for _, s := range f.filters {
			if !json.Valid([]byte(s)) {
				return nil, usageError("--filter %q is not JSON", s)
			}
			fs = append(fs, json.RawMessage(s))
		}
		in["filters"] = fs
	}
	if ch("retry-schedule") {
		ds, err := parseDurations(f.schedule)
		if err != nil {
			return nil, usageError("--retry-schedule: %v", err)
		}
		s := make([]string, len(ds))
		for i, d := range ds {
			s[i] = d.String()
		}
		in["config"] = map[string]any{"retry_schedule": s}
	}
	if ch("secret") {
		in["protocolsettings"] = map[string]string{"secret": f.secret}
	}
	return in, nil
}

func (c *cli) subscriptionsCmd() *cobra.Command {
	var asJSON bool
	var create, update subscriptionFlags
	var enable, disable, rotate bool
	var since string
	var limit int
	show := func(s subscriptions.Subscription) error {
		if asJSON {
			return json.NewEncoder(c.stdout).Encode(s)
		}
		printSubscription(c.stdout, s)
		return nil
	}
	createCmd := &cobra.Command{
		Use:   "create --protocol HTTP|NATS [flags]",
		Short: "Create a subscription to the App's events (App credentials)",
		Example: `  prost subscriptions create --protocol HTTP --sink https://example.com/hook --type order.placed
  prost subscriptions create --protocol NATS --type order.placed`,
		Args: cobra.NoArgs,
		RunE: do(func(cmd *cobra.Command, _ []string) error {
			in, err := create.input(cmd)
			if err != nil {
				return err
			}
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			var s subscriptions.Subscription
			if err := api.do(c.ctx, http.MethodPost, "/v1/subscriptions", in, &s); err != nil {
				return err
			}
			return show(s)
		}),
	}
	create.add(createCmd, true)
	_ = createCmd.MarkFlagRequired("protocol")
	jsonFlag(createCmd, &asJSON)

	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List the App's subscriptions (App credentials)",
		Args:  cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			var all []subscriptions.Subscription
			for cur := ""; ; {
				var page struct {
					Items      []subscriptions.Subscription `json:"items"`
					NextCursor *string                      `json:"next_cursor"`
				}
				if err := api.do(c.ctx, http.MethodGet, "/v1/subscriptions?limit=1000&cursor="+url.QueryEscape(cur), nil, &page); err != nil {
					return err
				}
				all = append(all, page.Items...)
				if page.NextCursor == nil {
					break
				}
				cur = *page.NextCursor
			}
			if asJSON {
				return json.NewEncoder(c.stdout).Encode(all)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPROTOCOL\tSTATUS\tTYPES\tSINK")
			for _, s := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Protocol, s.Status, typesText(s.Types), s.Sink)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(listCmd, &asJSON)

	showCmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a subscription (App credentials)",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			var s subscriptions.Subscription
			if err := api.do(c.ctx, http.MethodGet, "/v1/subscriptions/"+url.PathEscape(args[0]), nil, &s); err != nil {
				return err
			}
			return show(s)
		}),
	}
	jsonFlag(showCmd, &asJSON)

	updateCmd := &cobra.Command{
		Use:     "update ID [flags]",
		Short:   "Change a subscription: only the flags given change (App credentials)",
		Example: "  prost subscriptions update 0190... --type order.placed --type order.paid\n  prost subscriptions update 0190... --enable",
		Args:    cobra.ExactArgs(1),
		RunE: do(func(cmd *cobra.Command, args []string) error {
			in, err := update.input(cmd)
			if err != nil {
				return err
			}
			switch {
			case enable && disable:
				return usageError("--enable and --disable exclude each other")
			case enable:
				in["status"] = subscriptions.StatusActive
			case disable:
				in["status"] = subscriptions.StatusDisabled
			}
			if len(in) == 0 {
				return usageError("nothing to change: give at least one flag")
			}
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			var s subscriptions.Subscription
			if err := api.do(c.ctx, http.MethodPatch, "/v1/subscriptions/"+url.PathEscape(args[0]), in, &s); err != nil {
				return err
			}
			return show(s)
		}),
	}
	update.add(updateCmd, false)
	updateCmd.Flags().BoolVar(&enable, "enable", false, "enable the subscription (after a receiver disabled it, or you did)")
	updateCmd.Flags().BoolVar(&disable, "disable", false, "disable the subscription: HTTP deliveries stop, NATS credentials are revoked")
	jsonFlag(updateCmd, &asJSON)

	deleteCmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a subscription; a NATS subscription's credentials are revoked (App credentials)",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			if err := api.do(c.ctx, http.MethodDelete, "/v1/subscriptions/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "subscription %s deleted\n", args[0])
			return nil
		}),
	}

	credsCmd := &cobra.Command{
		Use:   "creds ID [--rotate]",
		Short: "Print a NATS subscription's credentials file, once (App credentials)",
		Long: `prost subscriptions creds mints the credentials of a NATS subscription and prints the .creds file
(a user JWT and its nkey seed) on standard output; where and how to connect goes to standard error.
They are shown once: asked again, PROST answers 409. --rotate revokes the credentials issued before
(their connections are dropped at once) and mints new ones.`,
		Example: "  prost subscriptions creds 0190... > app.creds",
		Args:    cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			method, path := http.MethodGet, "/v1/subscriptions/"+url.PathEscape(args[0])+"/credentials"
			if rotate {
				method, path = http.MethodPost, path+"/rotate"
			}
			var cr subscriptions.Credentials
			if err := api.do(c.ctx, method, path, nil, &cr); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(c.stdout).Encode(cr)
			}
			fmt.Fprint(c.stdout, cr.Creds)
			fmt.Fprintf(c.stderr, "connect to %s with these credentials and nats.CustomInboxPrefix(%q);\n"+
				"read stream %s, consumer %s, with jetstream.NewWithAPIPrefix(nc, %q)\n",
				cr.URL, cr.InboxPrefix, cr.Stream, cr.Consumer, cr.APIPrefix)
			return nil
		}),
	}
	credsCmd.Flags().BoolVar(&rotate, "rotate", false, "revoke the credentials issued before and mint new ones")
	jsonFlag(credsCmd, &asJSON)

	attemptsCmd := &cobra.Command{
		Use:   "attempts ID",
		Short: "List an HTTP subscription's delivery attempts, oldest first (App credentials)",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			var all []subscriptions.Attempt
			for cur := ""; len(all) < limit; {
				var page struct {
					Items      []subscriptions.Attempt `json:"items"`
					NextCursor *string                 `json:"next_cursor"`
				}
				q := fmt.Sprintf("?limit=%d&cursor=%s", min(limit-len(all), 1000), url.QueryEscape(cur))
				if err := api.do(c.ctx, http.MethodGet, "/v1/subscriptions/"+url.PathEscape(args[0])+"/attempts"+q, nil, &page); err != nil {
					return err
				}
				all = append(all, page.Items...)
				if page.NextCursor == nil {
					break
				}
				cur = *page.NextCursor
			}
			if asJSON {
				return json.NewEncoder(c.stdout).Encode(all)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tEVENT\tATTEMPT\tSTATUS\tCODE\tMS\tERROR")
			for _, a := range all {
				code := "-"
				if a.ResponseCode != nil {
					code = fmt.Sprint(*a.ResponseCode)
				}
				ev := a.EventType
				if a.EventID != "" {
					ev = a.EventSource + " " + a.EventID
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.1f\t%s\n", a.At.Format(time.RFC3339), ev, a.Attempt, a.Status, code, a.DurationMs, a.Error)
			}
			return tw.Flush()
		}),
	}
	attemptsCmd.Flags().IntVar(&limit, "limit", 100, "show at most this many attempts")
	jsonFlag(attemptsCmd, &asJSON)

	recoverCmd := &cobra.Command{
		Use:     "recover ID --since TIME",
		Short:   "Re-send an HTTP subscription's deliveries that failed since a time (App credentials)",
		Example: "  prost subscriptions recover 0190... --since 2026-12-01T00:00:00Z\n  prost subscriptions recover 0190... --since 2h",
		Args:    cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			t, err := sinceTime(since)
			if err != nil {
				return err
			}
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			var res struct {
				Recovered int       `json:"recovered"`
				Since     time.Time `json:"since"`
			}
			if err := api.do(c.ctx, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(args[0])+"/recover",
				map[string]string{"since": t.UTC().Format(time.RFC3339Nano)}, &res); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(c.stdout).Encode(res)
			}
			fmt.Fprintf(c.stdout, "%d deliveries that failed since %s are sent again\n", res.Recovered, res.Since.Format(time.RFC3339))
			return nil
		}),
	}
	recoverCmd.Flags().StringVar(&since, "since", "", "an RFC 3339 time, or a duration back from now (2h) (required)")
	_ = recoverCmd.MarkFlagRequired("since")
	jsonFlag(recoverCmd, &asJSON)

	testCmd := &cobra.Command{
		Use:   "test ID",
		Short: "Send a signed ping to an HTTP subscription's sink; exit 1 when the receiver does not answer 2xx (App credentials)",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			api, err := newTenantClient(c.env)
			if err != nil {
				return err
			}
			var a subscriptions.Attempt
			if err := api.do(c.ctx, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(args[0])+"/test", nil, &a); err != nil {
				return err
			}
			if asJSON {
				if err := json.NewEncoder(c.stdout).Encode(a); err != nil {
					return err
				}
			} else {
				code := "no answer"
				if a.ResponseCode != nil {
					code = fmt.Sprint(*a.ResponseCode)
				}
				fmt.Fprintf(c.stdout, "ping %s: %s (%s, %.1f ms) %s\n", a.WebhookID, a.Status, code, a.DurationMs, a.Error)
			}
			if a.Status != "succeeded" {
				return exitError{code: 1}
			}
			return nil
		}),
	}
	jsonFlag(testCmd, &asJSON)

	return group("subscriptions", "Consume the App's events: HTTP deliveries and NATS consumers (docs/subscriptions.md)",
		createCmd, listCmd, showCmd, updateCmd, deleteCmd, credsCmd, attemptsCmd, recoverCmd, testCmd)
}

// sinceTime reads an RFC 3339 time or a duration back from now.
func sinceTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, usageError("--since %q must be an RFC 3339 time (2026-12-01T00:00:00Z) or a duration (2h)", s)
}

func typesText(ts []string) string {
	if len(ts) == 0 {
		return "*"
	}
	return strings.Join(ts, ",")
}

func printSubscription(w io.Writer, s subscriptions.Subscription) {
	fmt.Fprintf(w, "id:        %s\nprotocol:  %s\nsink:      %s\ntypes:     %s\nstatus:    %s\n", s.ID, s.Protocol, s.Sink,
		typesText(s.Types), s.Status)
	if len(s.Filters) > 0 {
		b, _ := json.Marshal(s.Filters)
		fmt.Fprintf(w, "filters:   %s\n", b)
	}
	if len(s.Config.RetrySchedule) > 0 {
		parts := make([]string, len(s.Config.RetrySchedule))
		for i, d := range s.Config.RetrySchedule {
			parts[i] = time.Duration(d).String()
		}
		fmt.Fprintf(w, "retries:   %s\n", strings.Join(parts, ","))
	}
	if s.DisabledReason != "" {
		fmt.Fprintf(w, "disabled:  %s\n", s.DisabledReason)
	}
	if ps := s.ProtocolSettings; ps != nil {
		if ps.Secret != "" {
			fmt.Fprintf(w, "secret:    %s   (shown once: keep it to verify deliveries)\n", ps.Secret)
		}
		if ps.Consumer != "" {
			fmt.Fprintf(w, "consumer:  %s on %s (prost subscriptions creds %s > app.creds)\n", ps.Consumer, ps.Stream, s.ID)
		}
	}
}

func (c *cli) natsAuthCmd() *cobra.Command {
	var dir, serverDir string
	initCmd := &cobra.Command{
		Use:   "init --dir DIR [--server-dir DIR]",
		Short: "Generate the private bus's operator, accounts and credentials (reuses an existing set)",
		Long: `prost nats-auth init writes the key set of PROST's private NATS bus into --dir (mode 0700, every file
0600): the operator, the SYS, PROST and PROST_TENANTS accounts, the services' credentials
(prost-service.creds, for PROST_NATS_CREDS) and the signing keys the gateway mints and revokes tenants'
credentials with (point PROST_NATS_AUTH_DIR at the directory). A directory that holds a set already is
reused. With --server-dir it also writes accounts.conf there: what a nats-server needs to trust the
operator (no secret), included by nats/nats-server.conf.`,
		Example: "  prost nats-auth init --dir /etc/prost/nats --server-dir /etc/nats/auth",
		Args:    cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			keys, created, err := natsauth.Ensure(dir)
			if err != nil {
				return err
			}
			verb := "reused"
			if created {
				verb = "generated"
			}
			fmt.Fprintf(c.stdout, "%s the key set in %s (operator %s)\n", verb, dir, keys.OperatorClaims().Subject)
			if serverDir != "" {
				if err := os.MkdirAll(serverDir, 0o755); err != nil {
					return err
				}
				p := filepath.Join(serverDir, "accounts.conf")
				if err := os.WriteFile(p, []byte(keys.AccountsConfig()), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "wrote %s\n", p)
			}
			return nil
		}),
	}
	initCmd.Flags().StringVar(&dir, "dir", "", "the directory of the key set (required)")
	initCmd.Flags().StringVar(&serverDir, "server-dir", "", "also write the nats-server's accounts.conf here")
	_ = initCmd.MarkFlagRequired("dir")
	return group("nats-auth", "Manage the private NATS bus's keys", initCmd)
}
