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
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/domain/factory/factoryhttp"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/lifecycle"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// factoryEnv is the factory's configuration (docs/configuration.md).
type factoryEnv struct {
	WorkDir         string        // PROST_FACTORY_WORK_DIR
	ToolsDir        string        // PROST_FACTORY_TOOLS_DIR
	DatabaseURL     string        // PROST_FACTORY_DATABASE_URL
	WorkerID        string        // PROST_FACTORY_WORKER_ID
	ApprovalTimeout time.Duration // PROST_FACTORY_APPROVAL_TIMEOUT
	Timeout         time.Duration // PROST_FACTORY_TIMEOUT
	AgentURL        string        // PROST_FACTORY_AGENT_URL
	AgentSecret     string        // PROST_FACTORY_AGENT_SECRET
	AgentStages     string        // PROST_FACTORY_AGENT_STAGES
}

// moduleDatabaseURL is the database the factory's modules use: the one set,
// else PROST's server with a database of its own (<name>_factory).
func (f factoryEnv) moduleDatabaseURL(prostURL string) string {
	if f.DatabaseURL != "" {
		return f.DatabaseURL
	}
	u, err := url.Parse(prostURL)
	if err != nil {
		return ""
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		name = "prost"
	}
	u.Path = "/" + name + "_factory"
	return u.String()
}

// factoryService is the factory service: its consumer, its workflows and
// its local deployments. Without the Pack0 schema (prost started outside the
// repository with the default PROST_SCHEMAS_DIR) it is nil: no run could
// pass its first gate.
func (p *platform) factoryService(ctx context.Context) (*factorysvc.Service, error) {
	if _, err := os.Stat(filepath.Join(p.env.SchemasDir, factory.Pack0SchemaPath)); err != nil && os.Getenv("PROST_SCHEMAS_DIR") == "" {
		p.log.Warn("the factory does not run: the Pack0 schema is not in the default PROST_SCHEMAS_DIR", "dir", p.env.SchemasDir)
		return nil, nil
	}
	k, err := p.secretsKey()
	if err != nil {
		return nil, err
	}
	if k == nil {
		p.log.Warn("PROST_SECRETS_KEY is not set: factory runs cannot sign their PEC chain and fail at their first stage")
	}
	ccfg, err := p.consumerConfig(factorysvc.ConsumerName, "factory")
	if err != nil {
		return nil, err
	}
	fe := p.env.Factory
	log := p.log.With("service", "factory")
	reg, err := registry.New(p.pool, registry.Config{PlatformDir: p.env.SchemasDir, Logger: log})
	if err != nil {
		return nil, err
	}
	moduleDB := fe.moduleDatabaseURL(p.env.DatabaseURL)
	cfg := factorysvc.Config{
		Consumer:          ccfg,
		Store:             factory.StoreConfig{Partitions: p.env.Partitions, SecretsKey: k},
		SchemasDir:        p.env.SchemasDir,
		WorkDir:           fe.WorkDir,
		ToolsDir:          fe.ToolsDir,
		ModuleDatabaseURL: moduleDB,
		WorkerID:          fe.WorkerID,
		ApprovalTimeout:   fe.ApprovalTimeout,
		ExecutorTimeout:   fe.Timeout, TestTimeout: fe.Timeout, GateTimeout: fe.Timeout,
		Registry: reg,
		Logger:   log,
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(p.env.DataDir, "factory", "work")
	}
	if fe.AgentURL != "" {
		agent := factorysvc.HTTPExecutor{URL: fe.AgentURL, Secret: fe.AgentSecret, ExecutorName: "agent"}
		for _, st := range strings.Split(fe.AgentStages, ",") {
			switch strings.TrimSpace(st) {
			case factorysvc.ActionCodegen:
				cfg.Executors.Codegen = agent
			case factorysvc.ActionTestgen:
				cfg.Executors.Testgen = agent
			case factorysvc.ActionHeal:
				cfg.Executors.Healer = agent
			}
		}
	}
	return factorysvc.New(p.pool, p.js, cfg)
}

// factoryRoutes are the gateway's /v1/factory routes: on the factory
// service's engine when this process runs it, else on a DBOS client (added
// to g, which closes it).
func (p *platform) factoryRoutes(ctx context.Context, svc *factorysvc.Service, g *lifecycle.Group) (httpapi.Routes, error) {
	if svc != nil {
		return factoryhttp.New(svc.Runs(), factoryhttp.WithPack0Schema(svc.Pack0Schema())), nil
	}
	k, err := p.secretsKey()
	if err != nil {
		k = nil
	}
	eng, err := factorysvc.NewEngine(ctx, p.env.DatabaseURL, p.log.With("service", "factory-engine"))
	if err != nil {
		return nil, err
	}
	g.Add("factory-engine", eng)
	store := factory.NewStore(p.pool, factory.StoreConfig{Partitions: p.env.Partitions, SecretsKey: k})
	var opts []factoryhttp.Option
	if schema, err := factory.LoadPack0Schema(p.env.SchemasDir); err == nil {
		opts = append(opts, factoryhttp.WithPack0Schema(schema))
	} else {
		p.log.Warn("POST /v1/factory/pack0/check answers 503: no Pack0 schema", "err", err)
	}
	return factoryhttp.New(factory.NewRuns(store, eng, p.log), opts...), nil
}

// The factory CLI: tenant commands (PROST_APP_KEY, PROST_APP_SECRET).

func (c *cli) factoryCmd() *cobra.Command {
	var asJSON, autoDeploy, dryRun, wait, follow bool
	var module, pack0File, state, target, reason, from, status, gate string
	run := &cobra.Command{
		Use:   "run --module NAME [--pack0 FILE] [--state NORMAL|PRESSAO] [--auto-deploy] [--deploy-target local|compose] [--dry-run]",
		Short: "Start a factory run that builds a module from its Pack0 (App credentials)",
		Long: `prost factory run asks the factory to build a module: its Pack0 (a YAML or JSON file, checked by the
pack0 gate) goes through code generation, test generation, the tests with up to five healing attempts,
the gates, an approval, a signed manifest and the deploy. Without --pack0 the module's latest Pack0 is
used again. With --wait it waits until the run ends or waits for an approval, and exits 1 when it failed.`,
		Example: "  prost factory run --module inventory --pack0 examples/pack0/inventory.yaml\n" +
			"  prost factory run --module inventory --state PRESSAO --auto-deploy --deploy-target compose --wait",
		Args: cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			req := factory.Request{Module: module, State: factory.State(strings.ToUpper(state)), AutoDeploy: autoDeploy,
				DeployTarget: factory.Target(target), DryRun: dryRun}
			if pack0File != "" {
				b, err := os.ReadFile(pack0File)
				if err != nil {
					return exitError{code: 2, msg: err.Error()}
				}
				if req.Pack0, err = factory.Pack0JSON(b); err != nil {
					return exitError{code: 2, msg: pack0File + ": " + err.Error()}
				}
			}
			return factoryRun(c.ctx, c.env, req, wait, asJSON, c.stdout)
		}),
	}
	run.Flags().StringVar(&module, "module", "", "the module's name (required)")
	run.Flags().StringVar(&pack0File, "pack0", "", "the Pack0 file, YAML or JSON (default: the module's latest)")
	run.Flags().StringVar(&state, "state", "NORMAL", "NORMAL (every gate) or PRESSAO (fast MVP: secrets, contracts and tests)")
	run.Flags().BoolVar(&autoDeploy, "auto-deploy", false, "deploy without an approval (in NORMAL only when every gate passed)")
	run.Flags().StringVar(&target, "deploy-target", "local", "local (a process with migrations, health check, rollback) or compose (Dockerfile and compose service)")
	run.Flags().BoolVar(&dryRun, "dry-run", false, "stop after the gates: no approval, manifest or deploy")
	run.Flags().BoolVar(&wait, "wait", false, "wait until the run ends or waits for an approval; exit 1 when it failed")
	_ = run.MarkFlagRequired("module")
	jsonFlag(run, &asJSON)

	statusCmd := &cobra.Command{
		Use:   "status RUN",
		Short: "Show a run: its stages, gates and deployment",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return factoryStatus(c.ctx, c.env, args[0], asJSON, c.stdout)
		}),
	}
	jsonFlag(statusCmd, &asJSON)

	logs := &cobra.Command{
		Use:   "logs RUN [--follow]",
		Short: "Print a run's log; with --follow, until the run ends",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return factoryLogs(c.ctx, c.env, args[0], follow, c.stdout)
		}),
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until the run ends")

	decide := func(decision, short string) *cobra.Command {
		cmd := &cobra.Command{
			Use:   decision + " RUN [--reason TEXT]",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: do(func(_ *cobra.Command, args []string) error {
				return factoryPost(c.ctx, c.env, args[0], decision, map[string]string{"reason": reason}, asJSON, c.stdout)
			}),
		}
		cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the approval record)")
		jsonFlag(cmd, &asJSON)
		return cmd
	}
	cancel := &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run that has not ended (it stops at its next step)",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return factoryPost(c.ctx, c.env, args[0], "cancel", nil, asJSON, c.stdout)
		}),
	}
	jsonFlag(cancel, &asJSON)
	rerun := &cobra.Command{
		Use:   "rerun RUN --from STAGE",
		Short: "Run an ended run again from a stage (pack0, codegen, testgen, tests, gates, approval, manifest, deploy)",
		Long: `prost factory rerun starts a new run of the same request that reuses every stage before STAGE
(their records and artifacts are copied, not made again) and runs STAGE and the later stages.`,
		Example: "  prost factory rerun 0193f2c4-... --from gates",
		Args:    cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return factoryPost(c.ctx, c.env, args[0], "rerun", map[string]string{"from": from}, asJSON, c.stdout)
		}),
	}
	rerun.Flags().StringVar(&from, "from", "", "the stage to run again from (required)")
	_ = rerun.MarkFlagRequired("from")
	jsonFlag(rerun, &asJSON)
	list := &cobra.Command{
		Use:   "list [--module NAME] [--status STATUS]",
		Short: "List the App's runs, newest first",
		Args:  cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			return factoryList(c.ctx, c.env, module, status, asJSON, c.stdout)
		}),
	}
	list.Flags().StringVar(&module, "module", "", "only this module's runs")
	list.Flags().StringVar(&status, "status", "", "only runs with this status (queued, running, awaiting_approval, succeeded, failed, rejected, cancelled)")
	jsonFlag(list, &asJSON)
	findings := &cobra.Command{
		Use:   "findings RUN [--gate GATE]",
		Short: "List what a run's gates found, each naming file and rule",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return factoryFindings(c.ctx, c.env, args[0], gate, asJSON, c.stdout)
		}),
	}
	findings.Flags().StringVar(&gate, "gate", "", "only this gate's findings")
	jsonFlag(findings, &asJSON)
	verify := &cobra.Command{
		Use:   "verify RUN",
		Short: "Check a run's PEC chain (signatures, digests, approval, audit chain); exit 1 naming what does not match",
		Args:  cobra.ExactArgs(1),
		RunE: do(func(_ *cobra.Command, args []string) error {
			return factoryVerify(c.ctx, c.env, args[0], asJSON, c.stdout)
		}),
	}
	jsonFlag(verify, &asJSON)
	var checkFile, checkState string
	check := &cobra.Command{
		Use:   "check --pack0 FILE [--state NORMAL|PRESSAO]",
		Short: "Check a Pack0 as the run's first gate would, without starting a run; exit 1 naming each problem",
		Long: `prost factory check sends a Pack0 (YAML or JSON) to the factory's pack0 gate (POST /v1/factory/pack0/check):
its JSON Schema and its objective rules for the state. It prints each problem with its JSON pointer and rule and
exits 1 when there is one; otherwise it prints the routes and event types of the module. Nothing is recorded.`,
		Example: "  prost factory check --pack0 examples/pack0/inventory.yaml\n  prost factory check --pack0 draft.yaml --state PRESSAO --json",
		Args:    cobra.NoArgs,
		RunE: do(func(*cobra.Command, []string) error {
			b, err := os.ReadFile(checkFile)
			if err != nil {
				return exitError{code: 2, msg: err.Error()}
			}
			doc, err := factory.Pack0JSON(b)
			if err != nil {
				return exitError{code: 2, msg: checkFile + ": " + err.Error()}
			}
			return factoryCheck(c.ctx, c.env, doc, strings.ToUpper(checkState), asJSON, c.stdout)
		}),
	}
	check.Flags().StringVar(&checkFile, "pack0", "", "the Pack0 file, YAML or JSON (required)")
	check.Flags().StringVar(&checkState, "state", "NORMAL", "NORMAL (also needs budgets, threats and retention for personal data) or PRESSAO")
	_ = check.MarkFlagRequired("pack0")
	jsonFlag(check, &asJSON)
	return group("factory", "Build modules from a Pack0: runs, approvals, reruns and their verification (App credentials)",
		run, statusCmd, logs, decide("approve", "Approve a run waiting for a decision (an approval record: who, when, why)"),
		decide("reject", "Reject a run waiting for a decision"), cancel, rerun, list, findings, verify, check)
}

func runPath(id string) string { return "/v1/factory/runs/" + url.PathEscape(id) }

func factoryRun(ctx context.Context, e env, req factory.Request, wait, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var run factory.Run
	if err := c.do(ctx, http.MethodPost, "/v1/factory/runs", req, &run); err != nil {
		return err
	}
	if !wait {
		if asJSON {
			return json.NewEncoder(stdout).Encode(run)
		}
		fmt.Fprintf(stdout, "run %s of %s (%s) is %s\n", run.ID, run.Module, run.State, run.Status)
		return nil
	}
	for !run.Status.Final() && run.Status != factory.StatusAwaitingApproval {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		if err := c.do(ctx, http.MethodGet, runPath(run.ID.String()), nil, &run); err != nil {
			return err
		}
	}
	if asJSON {
		if err := json.NewEncoder(stdout).Encode(run); err != nil {
			return err
		}
	} else {
		printRun(stdout, &run)
	}
	if run.Status != factory.StatusSucceeded && run.Status != factory.StatusAwaitingApproval {
		return exitError{code: 1, msg: fmt.Sprintf("run %s %s: %s", run.ID, run.Status, run.Error)}
	}
	return nil
}

func printRun(w io.Writer, run *factory.Run) {
	fmt.Fprintf(w, "run %s  module %s  state %s  status %s", run.ID, run.Module, run.State, run.Status)
	if run.MVP {
		fmt.Fprint(w, "  (MVP)")
	}
	fmt.Fprintln(w)
	if run.Error != "" {
		fmt.Fprintf(w, "error: %s\n", run.Error)
	}
	if run.RerunOf != nil {
		fmt.Fprintf(w, "rerun of %s from %s\n", run.RerunOf, run.RerunFrom)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tSTATUS\tRUNS\tDETAIL")
	for _, s := range run.Stages {
		detail := s.Error
		if s.Reused {
			detail = "reused from the original run"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Stage, s.Status, s.Executions, detail)
	}
	_ = tw.Flush()
	if len(run.Gates) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GATE\tSTATUS\tBLOCKING\tFINDINGS\tSUMMARY")
		for _, g := range run.Gates {
			fmt.Fprintf(tw, "%s\t%s\t%t\t%d\t%s\n", g.Gate, g.Status, g.Blocking, g.Findings, g.Summary)
		}
		_ = tw.Flush()
	}
	if d := run.Deployment; d != nil {
		fmt.Fprintf(w, "deployment: %s %s %s %s\n", d.Target, d.Status, d.Address, d.Detail)
	}
}

func factoryStatus(ctx context.Context, e env, id string, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var run factory.Run
	if err := c.do(ctx, http.MethodGet, runPath(id), nil, &run); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(run)
	}
	printRun(stdout, &run)
	return nil
}

func factoryLogs(ctx context.Context, e env, id string, follow bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var after int64
	for {
		var page struct {
			Items []factory.LogLine `json:"items"`
			Next  int64             `json:"next"`
			Done  bool              `json:"done"`
		}
		if err := c.do(ctx, http.MethodGet, fmt.Sprintf("%s/logs?after=%d", runPath(id), after), nil, &page); err != nil {
			return err
		}
		for _, l := range page.Items {
			stage := string(l.Stage)
			if stage == "" {
				stage = "-"
			}
			fmt.Fprintf(stdout, "%s  %-8s  %s\n", l.At.Local().Format("15:04:05.000"), stage, l.Line)
		}
		after = page.Next
		if !follow || (page.Done && len(page.Items) == 0) {
			return nil
		}
		if len(page.Items) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

func factoryPost(ctx context.Context, e env, id, action string, body any, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	c.header.Set("X-Prost-Actor", cliActor())
	var run factory.Run
	if err := c.do(ctx, http.MethodPost, runPath(id)+"/"+action, body, &run); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(run)
	}
	switch action {
	case "rerun":
		fmt.Fprintf(stdout, "run %s reruns %s from %s; it is %s\n", run.ID, id, run.RerunFrom, run.Status)
	default:
		fmt.Fprintf(stdout, "run %s: %s; it is %s\n", run.ID, action, run.Status)
	}
	return nil
}

// cliActor names who runs the CLI: PROST_ACTOR, else user@host.
func cliActor() string {
	if a := os.Getenv("PROST_ACTOR"); a != "" {
		return a
	}
	host, _ := os.Hostname()
	return os.Getenv("USER") + "@" + host
}

func factoryList(ctx context.Context, e env, module, status string, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	q := url.Values{}
	if module != "" {
		q.Set("module", module)
	}
	if status != "" {
		q.Set("status", status)
	}
	var page struct {
		Items []factory.Run `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/factory/runs?"+q.Encode(), nil, &page); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(page.Items)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tMODULE\tSTATE\tSTATUS\tSTAGE\tCREATED")
	for _, r := range page.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Module, r.State, r.Status, r.Stage, r.CreatedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func factoryFindings(ctx context.Context, e env, id, gate string, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	path := runPath(id) + "/findings"
	if gate != "" {
		path += "?gate=" + url.QueryEscape(gate)
	}
	var page struct {
		Items []factory.Finding `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &page); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(page.Items)
	}
	for _, f := range page.Items {
		mark := "  "
		if f.Blocking {
			mark = "! "
		}
		fmt.Fprintf(stdout, "%s%-9s %s\n", mark, f.Gate, f.String())
	}
	return nil
}

func factoryVerify(ctx context.Context, e env, id string, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var rep factory.VerifyReport
	if err := c.do(ctx, http.MethodGet, runPath(id)+"/verify", nil, &rep); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return exitError{code: 1, msg: "no run " + id + " for this App"}
		}
		return err
	}
	if asJSON {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		for _, ch := range rep.Checks {
			mark := "ok  "
			if !ch.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(stdout, "%s  %s: %s\n", mark, ch.Name, ch.Detail)
		}
	}
	if !rep.OK {
		return exitError{code: 1, msg: fmt.Sprintf("run %s does not verify: %s", id, strings.Join(rep.Failures, "; "))}
	}
	switch {
	case asJSON:
	case rep.Manifest == "":
		fmt.Fprintf(stdout, "run %s verifies as far as it went: it has no manifest (yet)\n", id)
	default:
		fmt.Fprintf(stdout, "run %s verifies: manifest sha256 %s signed by %s\n", id, rep.Manifest, rep.KeyID)
	}
	return nil
}

// pack0Check is the answer of POST /v1/factory/pack0/check.
type pack0Check struct {
	OK       bool                   `json:"ok"`
	State    factory.State          `json:"state"`
	Problems []factory.Pack0Problem `json:"problems"`
	Routes   []string               `json:"routes"`
	Events   []string               `json:"events"`
}

func factoryCheck(ctx context.Context, e env, doc []byte, state string, asJSON bool, stdout io.Writer) error {
	c, err := newTenantClient(e)
	if err != nil {
		return err
	}
	var res pack0Check
	body := map[string]any{"pack0": json.RawMessage(doc), "state": state}
	if err := c.do(ctx, http.MethodPost, "/v1/factory/pack0/check", body, &res); err != nil {
		return err
	}
	if asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else if res.OK {
		fmt.Fprintf(stdout, "the Pack0 passes the pack0 gate (%s): %d routes, %d event types\n", res.State, len(res.Routes), len(res.Events))
		for _, r := range res.Routes {
			fmt.Fprintf(stdout, "  route  %s\n", r)
		}
		for _, t := range res.Events {
			fmt.Fprintf(stdout, "  event  %s\n", t)
		}
	} else {
		for _, p := range res.Problems {
			fmt.Fprintf(stdout, "FAIL  %s\n", p)
		}
	}
	if !res.OK {
		return exitError{code: 1, msg: fmt.Sprintf("the Pack0 fails the pack0 gate (%s) with %d problem(s)", res.State, len(res.Problems))}
	}
	return nil
}
