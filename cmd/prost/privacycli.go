package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/privacy"
	"github.com/prost-platform/prost/pkg/problem"
)

func (c *cli) privacyCmd() *cobra.Command {
	var asJSON bool
	var output, reason, since string
	var limit int
	erase := &cobra.Command{
		Use:   "erase SUBJECT_ID",
		Short: "Erase a data subject: destroy every data key of theirs, so their values read {\"erased\":true} (App credentials)",
		Long: `prost privacy erase destroys every data key of one data subject of the App (DELETE
/v1/data-subjects/{id}): every value encrypted for them reads {"erased":true} from then on, while the
events and the audit chain stay as they are. The erasure is recorded as a prost.privacy.erased event and
in the audit chain, with PROST_ACTOR (default user@host) as the actor. See docs/privacy.md.`,
		Example: "  prost privacy erase user-42\n  PROST_ACTOR=dpo@example.com prost privacy erase --json user-42",
		Args:    cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return privacyErase(c.ctx, c.env, args[0], asJSON, c.stdout)
		}),
	}
	jsonFlag(erase, &asJSON)
	export := &cobra.Command{
		Use:   "export SUBJECT_ID",
		Short: "Write every event holding a data subject's values, decrypted, with its contract, as NDJSON (App credentials)",
		Long: `prost privacy export writes the answer of GET /v1/data-subjects/{id}/export: one JSON object per line,
{"event": <the CloudEvent, decrypted>, "contract": <the App's contract of its type, or null>}, for
every event that holds values of the data subject, in the order they were stored. After an erasure it
writes nothing.`,
		Example: "  prost privacy export user-42\n  prost privacy export user-42 --output user-42.ndjson",
		Args:    cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return privacyExport(c.ctx, c.env, args[0], output, c.stdout)
		}),
	}
	export.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	shredded := &cobra.Command{
		Use:   "shredded",
		Short: "List the App's destroyed data keys: what erasures and retention shredded (App credentials)",
		Args:  cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return privacyShredded(c.ctx, c.env, reason, since, limit, asJSON, c.stdout)
		}),
	}
	shredded.Flags().StringVar(&reason, "reason", "", "only keys destroyed for this reason: erasure or retention")
	shredded.Flags().StringVar(&since, "since", "", "only keys destroyed at or after this time (RFC 3339)")
	shredded.Flags().IntVar(&limit, "limit", 100, "most keys to list (1 to 10000)")
	jsonFlag(shredded, &asJSON)
	return group("privacy", "Erase and export data subjects' personal data; list what was shredded", erase, export, shredded)
}

// newPrivacyClient is the tenant client, with the actor an erasure records.
func newPrivacyClient(e env) (*apiClient, error) {
	c, err := newTenantClient(e)
	if err != nil {
		return nil, err
	}
	actor := os.Getenv("PROST_ACTOR")
	if actor == "" {
		host, _ := os.Hostname()
		actor = os.Getenv("USER") + "@" + host
	}
	c.header.Set("X-Prost-Actor", actor)
	return c, nil
}

func subjectPath(id string) string { return "/v1/data-subjects/" + url.PathEscape(id) }

func privacyErase(ctx context.Context, e env, id string, asJSON bool, stdout io.Writer) error {
	if id == "" || len(id) > privacy.MaxSubjectIDLen {
		return usageError("SUBJECT_ID must be 1 to %d bytes", privacy.MaxSubjectIDLen)
	}
	c, err := newPrivacyClient(e)
	if err != nil {
		return err
	}
	var res privacy.Erasure
	if err := c.do(ctx, http.MethodDelete, subjectPath(id), nil, &res); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "erased %s: %d key(s) destroyed (erasure %s)\n", id, res.KeysDestroyed, res.ErasureID)
	for _, k := range res.Keys {
		fmt.Fprintf(stdout, "  %s  %s  (retention %s)\n", k.KeyID, k.Purpose, k.Retention)
	}
	return nil
}

func privacyExport(ctx context.Context, e env, id, output string, stdout io.Writer) error {
	if id == "" || len(id) > privacy.MaxSubjectIDLen {
		return usageError("SUBJECT_ID must be 1 to %d bytes", privacy.MaxSubjectIDLen)
	}
	c, err := newPrivacyClient(e)
	if err != nil {
		return err
	}
	path := subjectPath(id) + "/export"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	// An export may be long: no overall timeout, the context ends it.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach PROST at %s (is it running? set PROST_URL): %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		ae := &apiError{method: http.MethodGet, path: path, status: resp.StatusCode, raw: b}
		_ = json.Unmarshal(b, &ae.problem)
		return ae
	}
	w := stdout
	if output != "" {
		f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return exitError{code: 2, msg: err.Error()}
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export cut short: %w", err)
	}
	return nil
}

func privacyShredded(ctx context.Context, e env, reason, since string, limit int, asJSON bool, stdout io.Writer) error {
	if limit < 1 || limit > 10000 {
		return usageError("--limit must be 1 to 10000")
	}
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	if since != "" {
		if _, err := time.Parse(time.RFC3339, since); err != nil {
			return usageError("--since must be an RFC 3339 time, such as 2026-12-01T00:00:00Z")
		}
		q.Set("since", since)
	}
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	items := []dataprotect.Tombstone{}
	for len(items) < limit {
		q.Set("limit", strconv.Itoa(min(limit-len(items), 1000)))
		var page struct {
			Items      []dataprotect.Tombstone `json:"items"`
			NextCursor *string                 `json:"next_cursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/privacy/shredded?"+q.Encode(), nil, &page); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.status == http.StatusBadRequest {
				return exitError{code: 2, msg: problemText(ae.problem)}
			}
			return err
		}
		items = append(items, page.Items...)
		if page.NextCursor == nil {
			break
		}
		q.Set("cursor", *page.NextCursor)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(items)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTROYED AT\tREASON\tPURPOSE\tRETENTION\tKEY\tERASURE")
	for _, t := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.DestroyedAt.UTC().Format(time.RFC3339), t.Reason, t.Purpose, t.Retention, t.KeyID, t.ErasureID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d key(s)\n", len(items))
	return nil
}

// problemText is a problem's detail and the fields it names.
func problemText(p problem.Problem) string {
	s := p.Detail
	if s == "" {
		s = p.Title
	}
	for _, f := range p.Errors {
		s += "; " + f.Field + ": " + f.Detail
	}
	return s
}
