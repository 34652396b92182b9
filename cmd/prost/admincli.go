package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/problem"
)

// adminClient talks to the admin API at PROST_URL with PROST_ADMIN_TOKEN.
type adminClient struct {
	base  string
	token string
	actor string // who the audit log says did it: PROST_ACTOR, else user@host
	http  *http.Client
}

func newAdminClient(e env) (*adminClient, error) {
	if e.AdminToken == "" {
		return nil, exitError{code: 2, msg: "PROST_ADMIN_TOKEN is not set (prost dev prints it)"}
	}
	actor := os.Getenv("PROST_ACTOR")
	if actor == "" {
		host, _ := os.Hostname()
		actor = os.Getenv("USER") + "@" + host
	}
	return &adminClient{base: e.URL, token: e.AdminToken, actor: actor, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// do sends a request and decodes a 2xx JSON answer into out; any other answer
// becomes an error carrying the problem's detail.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
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
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("X-Prost-Actor", c.actor)
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
		var p problem.Problem
		if json.Unmarshal(b, &p) == nil && p.Title != "" {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, p.Error())
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func runApps(ctx context.Context, e env, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError("prost apps needs create, list, rotate-secret, disable or enable")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("prost apps "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "App name")
	if err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	switch cmd {
	case "create":
		if *name == "" {
			return usageError("prost apps create needs --name")
		}
		var res struct {
			apps.Credentials
			App apps.App `json:"app"`
		}
		if err := c.do(ctx, http.MethodPost, "/admin/v1/apps", map[string]string{"name": *name}, &res); err != nil {
			return err
		}
		if *asJSON {
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
		if *asJSON {
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
		if fs.NArg() != 1 {
			return usageError("prost apps %s needs exactly one App id", cmd)
		}
		id := url.PathEscape(fs.Arg(0))
		if cmd == "rotate-secret" {
			var creds apps.Credentials
			if err := c.do(ctx, http.MethodPost, "/admin/v1/apps/"+id+"/rotate-secret", nil, &creds); err != nil {
				return err
			}
			if *asJSON {
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
		if *asJSON {
			return json.NewEncoder(stdout).Encode(app)
		}
		fmt.Fprintf(stdout, "app %s is now %s\n", app.ID, app.Status)
		return nil
	default:
		return usageError("unknown apps command %q", cmd)
	}
}

func runAudit(ctx context.Context, e env, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError("prost audit needs verify")
	}
	fs := flag.NewFlagSet("prost audit verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	app := fs.String("app", "", "verify only this App's chain")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseInterspersed(fs, args[1:]); err != nil {
		return usageError("%v", err)
	}
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *app != "" {
		q.Set("app_id", *app)
	}
	var res struct {
		OK     bool                 `json:"ok"`
		Chains []audit.VerifyResult `json:"chains"`
	}
	if err := c.do(ctx, http.MethodGet, "/admin/v1/audit/verify?"+q.Encode(), nil, &res); err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else {
		for _, ch := range res.Chains {
			if ch.Break == nil {
				fmt.Fprintf(stdout, "ok      app %s: %d entries verified\n", ch.TenantID, ch.Entries)
			} else {
				fmt.Fprintf(stdout, "BROKEN  app %s: entry %d: %s\n", ch.TenantID, ch.Break.Seq, ch.Break.Reason)
			}
		}
		if len(res.Chains) == 0 {
			fmt.Fprintln(stdout, "no audit chains yet")
		}
	}
	if !res.OK {
		for _, ch := range res.Chains {
			if ch.Break != nil {
				return exitError{code: 1, msg: ch.Break.Error()}
			}
		}
		return exitError{code: 1, msg: "audit verification failed"}
	}
	return nil
}

func runJobs(ctx context.Context, e env, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return usageError("prost jobs needs list")
	}
	fs := flag.NewFlagSet("prost jobs list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	state := fs.String("state", "", "only jobs in this state")
	kind := fs.String("kind", "", "only jobs of this kind")
	limit := fs.Int("limit", 100, "most jobs to list")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseInterspersed(fs, args[1:]); err != nil {
		return usageError("%v", err)
	}
	c, err := newAdminClient(e)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *state != "" {
		q.Set("state", *state)
	}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	var page struct {
		Items []jobs.Job `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/admin/v1/jobs?"+q.Encode(), nil, &page); err != nil {
		return err
	}
	if *asJSON {
		if page.Items == nil {
			page.Items = []jobs.Job{}
		}
		return json.NewEncoder(stdout).Encode(page.Items)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tATTEMPT\tSCHEDULED\tLAST_ERROR")
	for _, j := range page.Items {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Kind, j.State, j.Attempt, j.MaxAttempts,
			j.ScheduledAt.UTC().Format(time.RFC3339), j.LastError)
	}
	return tw.Flush()
}

// parseInterspersed parses flags that may come before or after positional
// arguments (prost apps disable ID --json).
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errors.New("no help flag; see prost help")
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}
