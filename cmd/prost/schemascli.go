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
	"strings"
	"text/tabwriter"

	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/schemacompat"
	"github.com/spf13/cobra"
)

func (c *cli) schemasCmd() *cobra.Command {
	var asJSON bool
	var typ, file, mode, policy string
	register := &cobra.Command{
		Use:   "register --type TYPE --file SCHEMA.json",
		Short: "Register a JSON Schema version for an event type (App credentials); exit 1 naming each incompatible change",
		Args:  cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return schemasRegister(c.ctx, c.env, typ, file, asJSON, c.stdout)
		}),
	}
	register.Flags().StringVar(&typ, "type", "", "the event type (the registry subject) (required)")
	register.Flags().StringVar(&file, "file", "", "the JSON Schema file (required)")
	_ = register.MarkFlagRequired("type")
	_ = register.MarkFlagRequired("file")
	jsonFlag(register, &asJSON)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the App's subjects and the platform's (App credentials)",
		Args:  cobra.NoArgs,
		RunE:  do(func(*cobra.Command, []string) error { return schemasList(c.ctx, c.env, asJSON, c.stdout) }),
	}
	jsonFlag(list, &asJSON)
	compat := &cobra.Command{
		Use:   "compat [--mode M] [--policy P] OLD.json [MORE.json...] NEW.json",
		Short: "Check a schema's compatibility offline, no server needed; exit 1 listing each incompatible change",
		Long: `prost schemas compat checks NEW.json (the last file) against the earlier versions, oldest first,
under a compatibility mode and policy, with the same checker the registry uses. It needs no server, so
it fits a CI step.`,
		Example: "  prost schemas compat schemas/prost.rule.decision/v1.json new.json\n" +
			"  prost schemas compat --mode FULL_TRANSITIVE v1.json v2.json v3.json",
		Args: cobra.MinimumNArgs(2),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return schemasCompat(args, mode, policy, asJSON, c.stdout)
		}),
	}
	compat.Flags().StringVar(&mode, "mode", string(schemacompat.ModeBackward),
		"compatibility mode: BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE")
	compat.Flags().StringVar(&policy, "policy", string(schemacompat.PolicyStrict), "STRICT or LENIENT")
	jsonFlag(compat, &asJSON)
	return group("schemas", "Register and check the JSON Schemas events are validated against", register, list, compat)
}

func (c *cli) contractsCmd() *cobra.Command {
	var asJSON bool
	var schemas string
	lint := &cobra.Command{
		Use:   "lint [PATH...]",
		Short: "Apply gates A, B and C to event contract files (default contracts/); exit 1 naming gate and field",
		Args:  cobra.ArbitraryArgs,
		RunE:  do(func(_ *cobra.Command, args []string) error { return contractsLint(args, schemas, asJSON, c.stdout) }),
	}
	lint.Flags().StringVar(&schemas, "schemas", "", "directory of the schemas the contracts name (default: ../schemas beside each file's directory)")
	jsonFlag(lint, &asJSON)
	return group("contracts", "Check event contracts", lint)
}

func schemasRegister(ctx context.Context, e env, typ, file string, asJSON bool, stdout io.Writer) error {
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

// contractsLint runs `prost contracts lint [--schemas DIR] [--json] [PATH...]`.
func contractsLint(paths []string, schemas string, asJSON bool, stdout io.Writer) error {
	if len(paths) == 0 {
		paths = []string{"contracts"}
	}
	reps, err := contracts.LintPaths(paths, schemas)
	if err != nil {
		return exitError{code: 2, msg: err.Error()}
	}
	failed := 0
	for _, r := range reps {
		if len(r.Findings) > 0 {
			failed++
		}
	}
	if asJSON {
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
