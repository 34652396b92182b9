package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/domain/audit/audithttp"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/spf13/cobra"
)

// cliTransport, when set (by tests), carries the CLI's requests.
var cliTransport http.RoundTripper

// apiClient talks to PROST's HTTP API at PROST_URL, as an operator (the
// admin token) or as an App (its key and secret).
type apiClient struct {
	base   string
	header http.Header
	http   *http.Client
}

// baseURL checks PROST_URL: a scheme and a host, nothing else.
func baseURL(e env) (string, error) {
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", exitError{code: 2, msg: fmt.Sprintf("PROST_URL %q must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080", e.URL)}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func newAdminClient(e env) (*apiClient, error) {
	base, err := baseURL(e)
	if err != nil {
		return nil, err
	}
	if e.AdminToken == "" {
		return nil, exitError{code: 2, msg: "PROST_ADMIN_TOKEN is not set (prost dev prints it)"}
	}
	actor := os.Getenv("PROST_ACTOR")
	if actor == "" {
		host, _ := os.Hostname()
		actor = os.Getenv("USER") + "@" + host
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+e.AdminToken)
	h.Set("X-Prost-Actor", actor)
	return &apiClient{base: base, header: h, http: &http.Client{Timeout: 60 * time.Second, Transport: cliTransport}}, nil
}

// newTenantClient talks to the tenant API as the App whose credentials are
// in PROST_APP_KEY and PROST_APP_SECRET.
func newTenantClient(e env) (*apiClient, error) {
	base, err := baseURL(e)
	if err != nil {
		return nil, err
	}
	key, secret := os.Getenv("PROST_APP_KEY"), os.Getenv("PROST_APP_SECRET")
	if key == "" || secret == "" {
		return nil, exitError{code: 2, msg: "PROST_APP_KEY and PROST_APP_SECRET must hold the App's credentials (prost apps create prints them)"}
	}
	h := http.Header{}
	h.Set("X-Prost-App-Key", key)
	h.Set("X-Prost-App-Secret", secret)
	return &apiClient{base: base, header: h, http: &http.Client{Timeout: 60 * time.Second, Transport: cliTransport}}, nil
}

// apiError is a non-2xx answer with its problem document.
type apiError struct {
	method, path string
	status       int
	problem      problem.Problem
	raw          []byte
}

func (e *apiError) Error() string {
	if e.problem.Title != "" {
		return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.problem.Error())
	}
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, http.StatusText(e.status))
}

// do sends a request and decodes a 2xx JSON answer into out; any other
// answer is an *apiError carrying the problem document.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach PROST at %s (is it running? set PROST_URL): %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{method: method, path: path, status: resp.StatusCode, raw: b}
		_ = json.Unmarshal(b, &ae.problem)
		return ae
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (c *cli) appsCmd() *cobra.Command {
	var asJSON bool
	var name string
	mk := func(use, short string, args cobra.PositionalArgs, sub string) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Args: args,
			RunE: do(func(_ *cobra.Command, a []string) error {
				return runApps(c.ctx, c.env, sub, name, asJSON, a, c.stdout)
			})}
		jsonFlag(cmd, &asJSON)
		return cmd
	}
	create := mk("create --name NAME", "Create an App; prints its key and secret, shown only this once", cobra.NoArgs, "create")
	create.Flags().StringVar(&name, "name", "", "the App's name, 1 to 200 characters (required)")
	_ = create.MarkFlagRequired("name")
	return group("apps", "Manage Apps (tenants) through the admin API",
		create,
		mk("list", "List every App", cobra.NoArgs, "list"),
		mk("rotate-secret APP_ID", "Replace an App's secret; prints the new one once; the old one stops working at once", cobra.ExactArgs(1), "rotate-secret"),
		mk("disable APP_ID", "Refuse every request of an App until it is enabled again", cobra.ExactArgs(1), "disable"),
		mk("enable APP_ID", "Accept an App's requests again", cobra.ExactArgs(1), "enable"),
	)
}

func (c *cli) auditCmd() *cobra.Command {
	var asJSON bool
	var app string
	var settle time.Duration
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit hash chains and check every stored event has its entry; exit 1 naming the first broken or missing entry",
		Long: `Recompute every App's hash chain from its first entry, and check that every event stored more than
--settle ago has its audit entry (events still waiting for the relay, refused by the bus, or whose dead
letter was purged are not expected). Exit 1 naming the first broken entry or the first missing event.
The server answers a page at a time; the command follows the pages, so a log of any length is checked.`,
		Args: cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return runAuditVerify(c.ctx, c.env, app, settle, asJSON, c.stdout)
		}),
	}
	verify.Flags().StringVar(&app, "app", "", "verify only this App's log (its app_id)")
	verify.Flags().DurationVar(&settle, "settle", audit.DefaultSettle, "expect the entries of events stored longer ago than this (0s: every event)")
	jsonFlag(verify, &asJSON)
	return group("audit", "Check the tamper-evident audit log", verify)
}

func (c *cli) jobsCmd() *cobra.Command {
	var asJSON bool
	var state, kind string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List background jobs (webhook deliveries, scheduled actions)",
		Args:  cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return runJobsList(c.ctx, c.env, state, kind, limit, asJSON, c.stdout)
		}),
	}
	list.Flags().StringVar(&state, "state", "", "only jobs in this state: available, running, retryable, completed, cancelled or discarded")
	list.Flags().StringVar(&kind, "kind", "", "only jobs of this kind")
	list.Flags().IntVar(&limit, "limit", 100, "most jobs to list (1 to 1000)")
	jsonFlag(list, &asJSON)
	return group("jobs", "Inspect the job engine", list)
}

func runApps(ctx context.Context, e env, cmd, name string, asJSON bool, args []string, stdout io.Writer) error {
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	switch cmd {
	case "create":
		var res struct {
			apps.Credentials
			App apps.App `json:"app"`
		}
		if err := c.do(ctx, http.MethodPost, "/admin/v1/apps", map[string]string{"name": name}, &res); err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(res.Credentials)
		}
		fmt.Fprintf(stdout, "app_id:     %s\napi_key:    %s\napi_secret: %s\n\nThe secret is shown only now: store it safely.\n",
			res.AppID, res.APIKey, res.APISecret)
		return nil
	case "list":
		var all []apps.App
		cursor := ""
		for {
			var page struct {
				Items      []apps.App `json:"items"`
				NextCursor *string    `json:"next_cursor"`
			}
			q := url.Values{"limit": {"1000"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			if err := c.do(ctx, http.MethodGet, "/admin/v1/apps?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			all = append(all, page.Items...)
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		if asJSON {
			if all == nil {
				all = []apps.App{}
			}
			return json.NewEncoder(stdout).Encode(all)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "APP_ID\tNAME\tAPI_KEY\tSTATUS\tCREATED")
		for _, a := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.ID, a.Name, a.APIKey, a.Status, a.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "rotate-secret", "disable", "enable":
		id := url.PathEscape(args[0])
		if cmd == "rotate-secret" {
			var creds apps.Credentials
			if err := c.do(ctx, http.MethodPost, "/admin/v1/apps/"+id+"/rotate-secret", nil, &creds); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(stdout).Encode(creds)
			}
			fmt.Fprintf(stdout, "app_id:     %s\napi_key:    %s\napi_secret: %s\n\nThe old secret no longer works. The new one is shown only now.\n",
				creds.AppID, creds.APIKey, creds.APISecret)
			return nil
		}
		var app apps.App
		if err := c.do(ctx, http.MethodPost, "/admin/v1/apps/"+id+"/"+cmd, nil, &app); err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(app)
		}
		fmt.Fprintf(stdout, "app %s is now %s\n", app.ID, app.Status)
		return nil
	default:
		return usageError("unknown apps command %q", cmd)
	}
}

func runAuditVerify(ctx context.Context, e env, app string, settle time.Duration, asJSON bool, stdout io.Writer) error {
	if settle < 0 {
		return usageError("--settle must not be negative")
	}
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	q := url.Values{"settle": {settle.String()}}
	if app != "" {
		q.Set("app_id", app)
	}
	// Each page's chains are printed as they come: the command keeps no
	// more than a page, however many Apps there are.
	var first *audit.VerifyResult
	chains := 0
	enc := json.NewEncoder(stdout)
	for {
		var res audithttp.VerifyResponse
		if err := c.do(ctx, http.MethodGet, "/admin/v1/audit/verify?"+q.Encode(), nil, &res); err != nil {
			return err
		}
		for _, ch := range res.Chains {
			chains++
			if asJSON {
				if err := enc.Encode(ch); err != nil {
					return err
				}
			} else {
				switch {
				case ch.Break != nil:
					fmt.Fprintf(stdout, "BROKEN  app %s: entry %d: %s\n", ch.TenantID, ch.Break.Seq, ch.Break.Reason)
				case ch.Missing > 0:
					m := ch.FirstMissing
					fmt.Fprintf(stdout, "MISSING app %s: %d of %d stored events have no audit entry; first: event %q (source %q, type %q, stored %s)",
						ch.TenantID, ch.Missing, ch.Events, m.EventID, m.EventSource, m.EventType, m.RecordedAt.UTC().Format(time.RFC3339))
					if m.Note != "" {
						fmt.Fprint(stdout, ": "+m.Note)
					}
					fmt.Fprintln(stdout)
				default:
					fmt.Fprintf(stdout, "ok      app %s: %d entries verified, %d events all audited\n", ch.TenantID, ch.Entries, ch.Events)
				}
			}
			if !ch.OK() && first == nil {
				failed := ch
				first = &failed
			}
		}
		if res.NextCursor == nil {
			break
		}
		q.Set("cursor", *res.NextCursor)
	}
	if chains == 0 && !asJSON {
		fmt.Fprintln(stdout, "no audit chains yet")
	}
	if first != nil {
		return exitError{code: 1, msg: first.Problem()}
	}
	return nil
}

func runJobsList(ctx context.Context, e env, state, kind string, limit int, asJSON bool, stdout io.Writer) error {
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if state != "" {
		q.Set("state", state)
	}
	if kind != "" {
		q.Set("kind", kind)
	}
	var page struct {
		Items []jobs.Job `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/admin/v1/jobs?"+q.Encode(), nil, &page); err != nil {
		return err
	}
	if asJSON {
		if page.Items == nil {
			page.Items = []jobs.Job{}
		}
		return json.NewEncoder(stdout).Encode(page.Items)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tATTEMPT\tSCHEDULED\tLAST_ERROR")
	for _, j := range page.Items {
		lastErr := j.LastError
		if j.State == jobs.StateCompleted {
			lastErr = "" // an earlier attempt's error; the job succeeded since
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Kind, j.State, j.Attempt, j.MaxAttempts,
			j.ScheduledAt.UTC().Format(time.RFC3339), oneLine(lastErr, 80))
	}
	return tw.Flush()
}
