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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/schemacompat"
)

// tenantClient talks to the tenant API at PROST_URL as the App whose
// credentials are in PROST_APP_KEY and PROST_APP_SECRET.
type tenantClient struct {
	base, key, secret string
	http              *http.Client
}

func newTenantClient(e env) (*tenantClient, error) {
	key, secret := os.Getenv("PROST_APP_KEY"), os.Getenv("PROST_APP_SECRET")
	if key == "" || secret == "" {
		return nil, exitError{code: 2, msg: "PROST_APP_KEY and PROST_APP_SECRET must hold the App's credentials (prost apps create prints them)"}
	}
	return &tenantClient{base: e.URL, key: key, secret: secret, http: &http.Client{Timeout: 60 * time.Second}}, nil
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

func (c *tenantClient) do(ctx context.Context, method, path string, body, out any) error {
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
	req.Header.Set("X-Prost-App-Key", c.key)
	req.Header.Set("X-Prost-App-Secret", c.secret)
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

func runSchemas(ctx context.Context, e env, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError("prost schemas needs register, list or compat")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("prost schemas "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	typ := fs.String("type", "", "event type (subject)")
	file := fs.String("file", "", "JSON Schema file")
	mode := fs.String("mode", string(schemacompat.ModeBackward), "compatibility mode")
	policy := fs.String("policy", string(schemacompat.PolicyStrict), "STRICT or LENIENT")
	if err := parseInterspersed(fs, args); err != nil {
		return usageError("%v", err)
	}
	switch cmd {
	case "register":
		return schemasRegister(ctx, e, *typ, *file, *asJSON, stdout)
	case "list":
		return schemasList(ctx, e, *asJSON, stdout)
	case "compat":
		return schemasCompat(fs.Args(), *mode, *policy, *asJSON, stdout)
	default:
		return usageError("unknown schemas command %q", cmd)
	}
}

func schemasRegister(ctx context.Context, e env, typ, file string, asJSON bool, stdout io.Writer) error {
	if typ == "" || file == "" {
		return usageError("prost schemas register needs --type and --file")
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return exitError{code: 2, msg: err.Error()}
	}
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var res struct {
		ID         int64  `json:"id"`
		Subject    string `json:"subject"`
		Version    int    `json:"version"`
		DataSchema string `json:"dataschema"`
		Created    bool   `json:"created"`
	}
	path := "/v1/registry/subjects/" + url.PathEscape(typ) + "/versions"
	err = c.do(ctx, http.MethodPost, path, map[string]string{"schemaType": "JSON", "schema": string(text)}, &res)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusConflict {
		if asJSON {
			_, _ = stdout.Write(ae.raw)
		} else {
			fmt.Fprintf(stdout, "%s is not compatible with %s:\n", file, typ)
			for _, fe := range ae.problem.Errors {
				fmt.Fprintf(stdout, "  %s\n", fe.Detail)
			}
		}
		return exitError{code: 1, msg: ae.problem.Detail}
	}
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	if res.Created {
		fmt.Fprintf(stdout, "registered %s version %d (id %d)\ndataschema: %s\n", res.Subject, res.Version, res.ID, res.DataSchema)
	} else {
		fmt.Fprintf(stdout, "%s version %d already holds this schema (id %d)\ndataschema: %s\n", res.Subject, res.Version, res.ID, res.DataSchema)
	}
	return nil
}

func schemasList(ctx context.Context, e env, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var subjects []string
	if err := c.do(ctx, http.MethodGet, "/v1/registry/subjects", nil, &subjects); err != nil {
		return err
	}
	type row struct {
		Subject  string `json:"subject"`
		Versions []int  `json:"versions"`
		Platform bool   `json:"platform"`
	}
	rows := make([]row, 0, len(subjects))
	for _, s := range subjects {
		esc := url.PathEscape(s)
		r := row{Subject: s}
		if err := c.do(ctx, http.MethodGet, "/v1/registry/subjects/"+esc+"/versions", nil, &r.Versions); err != nil {
			return err
		}
		var latest struct {
			Platform bool `json:"platform"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/registry/subjects/"+esc+"/versions/latest", nil, &latest); err != nil {
			return err
		}
		r.Platform = latest.Platform
		rows = append(rows, r)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tLATEST\tVERSIONS\tOWNER")
	for _, r := range rows {
		owner := "app"
		if r.Platform {
			owner = "platform (read-only)"
		}
		vs := make([]string, len(r.Versions))
		for i, v := range r.Versions {
			vs[i] = fmt.Sprint(v)
		}
		latest := 0
		if len(r.Versions) > 0 {
			latest = r.Versions[len(r.Versions)-1]
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.Subject, latest, strings.Join(vs, ","), owner)
	}
	return tw.Flush()
}

// schemasCompat checks NEW (the last file) against the earlier files, oldest
// first, without a server: exit 0 when compatible, 1 when not.
func schemasCompat(files []string, mode, policy string, asJSON bool, stdout io.Writer) error {
	if len(files) < 2 {
		return usageError("prost schemas compat needs OLD.json NEW.json (or several earlier versions, oldest first, then NEW.json)")
	}
	m, err := schemacompat.ParseMode(mode)
	if err != nil {
		return usageError("--mode %q: want BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE", mode)
	}
	p, err := schemacompat.ParsePolicy(policy)
	if err != nil {
		return usageError("--policy %q: want STRICT or LENIENT", policy)
	}
	docs := make([]any, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return exitError{code: 2, msg: err.Error()}
		}
		if docs[i], err = schemacompat.ParseSchema(b); err != nil {
			return exitError{code: 2, msg: f + ": " + err.Error()}
		}
	}
	res, err := schemacompat.Check(m, p, docs[:len(docs)-1], docs[len(docs)-1])
	if err != nil {
		return exitError{code: 2, msg: err.Error()}
	}
	if asJSON {
		out := struct {
			Mode   schemacompat.Mode   `json:"mode"`
			Policy schemacompat.Policy `json:"policy"`
			schemacompat.Result
		}{m, p, res}
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return err
		}
	} else {
		newFile := files[len(files)-1]
		for _, d := range res.Differences {
			verdict := "compatible  "
			if !d.Compatible {
				verdict = "INCOMPATIBLE"
			}
			fmt.Fprintf(stdout, "%s  %s  %s  %s (against %s, %s)\n", verdict, d.Type, d.Pointer, d.Message, files[d.Version-1], d.Direction)
		}
		if res.Compatible {
			fmt.Fprintf(stdout, "%s is compatible under %s (%s)\n", newFile, m, p)
		} else {
			fmt.Fprintf(stdout, "%s is NOT compatible under %s (%s): %d incompatible difference(s)\n", newFile, m, p, len(res.Messages))
		}
	}
	if !res.Compatible {
		return exitError{code: 1}
	}
	return nil
}

// runContracts runs `prost contracts lint [--schemas DIR] [--json] [PATH...]`.
func runContracts(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "lint" {
		return usageError("prost contracts needs lint")
	}
	fs := flag.NewFlagSet("prost contracts lint", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	schemas := fs.String("schemas", "", "directory of the schemas the contracts name (default: ../schemas beside each file's directory)")
	if err := parseInterspersed(fs, args[1:]); err != nil {
		return usageError("%v", err)
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"contracts"}
	}
	reps, err := contracts.LintPaths(paths, *schemas)
	if err != nil {
		return exitError{code: 2, msg: err.Error()}
	}
	failed := 0
	for _, r := range reps {
		if len(r.Findings) > 0 {
			failed++
		}
	}
	if *asJSON {
		if reps == nil {
			reps = []contracts.FileReport{}
		}
		if err := json.NewEncoder(stdout).Encode(reps); err != nil {
			return err
		}
	} else {
		for _, r := range reps {
			if len(r.Findings) == 0 {
				fmt.Fprintf(stdout, "ok    %s (%s)\n", r.Path, r.Type)
				continue
			}
			for _, f := range r.Findings {
				fmt.Fprintf(stdout, "FAIL  %s: %s\n", r.Path, f)
			}
		}
		fmt.Fprintf(stdout, "%d contract(s), %d failing\n", len(reps), failed)
	}
	if len(reps) == 0 {
		return exitError{code: 1, msg: "no contract files found in " + strings.Join(paths, ", ")}
	}
	if failed > 0 {
		return exitError{code: 1}
	}
	return nil
}
