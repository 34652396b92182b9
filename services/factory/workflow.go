package factorysvc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// Artifact names of a run.
const (
	artPack0    = "pack0.json"
	artCodegen  = "tree/codegen.tar.gz"
	artTestgen  = "tree/testgen.tar.gz"
	artSource   = "tree/source.tar.gz"
	artTests    = "reports/tests.json"
	artDeploy   = "deploy/deployment.json"
	mediaTree   = "application/gzip"
	mediaJSON   = "application/json"
	mediaBinary = "application/octet-stream"
)

func artBinary(module string) string { return "bin/" + module }

// runInfo is what the first step reads about a run.
type runInfo struct {
	Key          factory.RunKey  `json:"key"`
	AutoDeploy   bool            `json:"auto_deploy"`
	DeployTarget factory.Target  `json:"deploy_target"`
	DryRun       bool            `json:"dry_run"`
	Pack0        json.RawMessage `json:"pack0"`
	CreatedAt    time.Time       `json:"created_at"`
}

// saga is one execution of a run's workflow.
type saga struct {
	s    *Service
	ctx  dbos.Context
	k    factory.RunKey
	info runInfo
	p    *factory.Pack0
}

// step runs fn as a durable step named name: retried when it returns an
// error (a database that did not answer, say); its result is recorded, so
// a resumed run does not run it again. Failures of the work itself (tests
// that fail, a gate that finds something) are results, not errors.
func step[R any](ctx dbos.Context, name string, fn func(context.Context) (R, error)) (R, error) {
	return dbos.RunAsStep(ctx, fn, dbos.WithStepName(name), dbos.WithStepMaxRetries(5),
		dbos.WithStepBaseInterval(500*time.Millisecond), dbos.WithStepBackoffFactor(2), dbos.WithStepMaxInterval(10*time.Second))
}

// pipeline is the workflow of a run.
func (s *Service) pipeline(ctx dbos.Context, in runInput) (runResult, error) {
	wid, err := ctx.GetWorkflowID()
	if err != nil {
		return runResult{}, err
	}
	runID, err := uuid.Parse(wid)
	if err != nil {
		return runResult{}, fmt.Errorf("factory: workflow id %q is not a run id", wid)
	}
	tenant, err := uuid.Parse(in.TenantID)
	if err != nil {
		return runResult{}, fmt.Errorf("factory: workflow input: %w", err)
	}
	info, err := step(ctx, "load", func(c context.Context) (runInfo, error) {
		run, err := s.store.Run(c, tenant, runID)
		if err != nil {
			return runInfo{}, err
		}
		return runInfo{Key: run.Key(), AutoDeploy: run.AutoDeploy, DeployTarget: run.DeployTarget, DryRun: run.DryRun,
			Pack0: run.Pack0, CreatedAt: run.CreatedAt}, nil
	})
	if err != nil {
		return runResult{}, err
	}
	// A rerun is a fork: the steps before its start stage, this one
	// included, are copied from the original run, whose id they carry.
	info.Key.ID = runID
	g := &saga{s: s, ctx: ctx, k: info.Key, info: info}
	res, err := g.run()
	if err != nil {
		// The run could not go on (its database kept failing): record
		// that, if the database lets us.
		_, _ = step(ctx, "abort", func(c context.Context) (bool, error) {
			return true, s.store.SetStatus(c, g.k, factory.StatusFailed, "", "the run stopped: "+err.Error(), false)
		})
		return runResult{Status: factory.StatusFailed, Error: err.Error()}, err
	}
	return res, nil
}

// stageOutcome is what a stage's body reports.
type stageOutcome struct {
	Detail  any
	Failure string
	// Status is the run's status when the stage ends it (rejected).
	Status factory.Status
}

// stage records a stage's start, runs its body and records its end.
func (g *saga) stage(st factory.Stage, status factory.Status, body func() (stageOutcome, error)) (stageOutcome, error) {
	if _, err := step(g.ctx, stageStep(st), func(c context.Context) (int, error) {
		return g.s.store.StartStage(c, g.k, st, status)
	}); err != nil {
		return stageOutcome{}, err
	}
	out, err := body()
	if err != nil {
		return out, err
	}
	_, err = step(g.ctx, stageStep(st)+":end", func(c context.Context) (bool, error) {
		return true, g.s.store.FinishStage(c, g.k, st, out.Failure == "", out.Detail, out.Failure)
	})
	return out, err
}

// finish records how the run ended.
func (g *saga) finish(status factory.Status, errMsg string) (runResult, error) {
	_, err := step(g.ctx, "finish", func(c context.Context) (bool, error) {
		return true, g.s.store.SetStatus(c, g.k, status, "", errMsg, g.k.State == factory.Pressao)
	})
	return runResult{Status: status, Error: errMsg}, err
}

func (g *saga) run() (runResult, error) {
	s := g.s
	// pack0
	out, err := g.stage(factory.StagePack0, factory.StatusRunning, g.pack0)
	if err != nil {
		return runResult{}, err
	}
	if out.Failure != "" {
		return g.finish(factory.StatusFailed, out.Failure)
	}
	var probs []factory.Pack0Problem
	if g.p, probs = factory.CheckPack0(s.schema, g.info.Pack0, g.k.State); len(probs) > 0 || g.p == nil {
		return g.finish(factory.StatusFailed, "the Pack0 no longer passes its gate")
	}
	// codegen, testgen
	var tree treeRef
	for _, sp := range []struct {
		st       factory.Stage
		action   string
		ex       Executor
		from, to string
	}{
		{factory.StageCodegen, ActionCodegen, s.cfg.Executors.Codegen, "", artCodegen},
		{factory.StageTestgen, ActionTestgen, s.cfg.Executors.Testgen, artCodegen, artTestgen},
	} {
		out, err := g.stage(sp.st, factory.StatusRunning, func() (stageOutcome, error) {
			res, err := step(g.ctx, string(sp.st), func(c context.Context) (genResult, error) {
				return g.generate(c, sp.st, sp.action, sp.ex, tree, sp.to)
			})
			if err != nil {
				return stageOutcome{}, err
			}
			tree = res.Tree
			return stageOutcome{Detail: res, Failure: res.Failure}, nil
		})
		if err != nil {
			return runResult{}, err
		}
		if out.Failure != "" {
			return g.finish(factory.StatusFailed, out.Failure)
		}
	}
	// tests, with the self-healing loop; the build
	var build buildResult
	out, err = g.stage(factory.StageTests, factory.StatusRunning, func() (stageOutcome, error) {
		var err error
		build, err = g.tests(tree)
		return stageOutcome{Detail: build, Failure: build.Failure}, err
	})
	if err != nil {
		return runResult{}, err
	}
	if out.Failure != "" {
		return g.finish(factory.StatusFailed, out.Failure)
	}
	// gates
	var gates gatesResult
	out, err = g.stage(factory.StageGates, factory.StatusRunning, func() (stageOutcome, error) {
		var err error
		gates, err = g.gates(build)
		return stageOutcome{Detail: gates, Failure: gates.Failure}, err
	})
	if err != nil {
		return runResult{}, err
	}
	if out.Failure != "" {
		return g.finish(factory.StatusFailed, out.Failure)
	}
	if g.info.DryRun {
		for _, st := range []factory.Stage{factory.StageApproval, factory.StageManifest, factory.StageDeploy} {
			if _, err := step(g.ctx, "skip:"+string(st), func(c context.Context) (bool, error) {
				return true, s.store.SkipStage(c, g.k, st, "a dry run stops after the gates")
			}); err != nil {
				return runResult{}, err
			}
		}
		return g.finish(factory.StatusSucceeded, "")
	}
	// approval
	auto, why := g.autoApproval(gates)
	status := factory.StatusAwaitingApproval
	if auto {
		status = factory.StatusRunning
	}
	out, err = g.stage(factory.StageApproval, status, func() (stageOutcome, error) { return g.approval(build, auto, why) })
	if err != nil {
		return runResult{}, err
	}
	if out.Failure != "" {
		st := out.Status
		if st == "" {
			st = factory.StatusFailed
		}
		return g.finish(st, out.Failure)
	}
	// manifest
	out, err = g.stage(factory.StageManifest, factory.StatusRunning, func() (stageOutcome, error) {
		res, err := step(g.ctx, "manifest", func(c context.Context) (manifestResult, error) { return g.manifest(c, build, gates) })
		return stageOutcome{Detail: res, Failure: res.Failure}, err
	})
	if err != nil {
		return runResult{}, err
	}
	if out.Failure != "" {
		return g.finish(factory.StatusFailed, out.Failure)
	}
	// deploy
	out, err = g.stage(factory.StageDeploy, factory.StatusRunning, func() (stageOutcome, error) {
		res, err := step(g.ctx, "deploy", func(c context.Context) (deployResult, error) { return g.deploy(c, build) })
		return stageOutcome{Detail: res, Failure: res.Failure}, err
	})
	if err != nil {
		return runResult{}, err
	}
	if out.Failure != "" {
		return g.finish(factory.StatusFailed, out.Failure)
	}
	return g.finish(factory.StatusSucceeded, "")
}

// dir is the run's work directory for the module.
func (g *saga) dir() string { return filepath.Join(g.s.cfg.WorkDir, g.k.ID.String(), "module") }

// treeRef names a stored source tree.
type treeRef struct {
	Name   string `json:"name"`
	Digest string `json:"sha256"`
}

// checkout makes the work directory hold tree, restoring it from the stored
// artifact unless it holds it already (a resumed run on another host, or a
// rerun, starts with none).
func (g *saga) checkout(c context.Context, tree treeRef) error {
	dir := g.dir()
	if tree.Name == "" {
		return writeTree(dir, nil, "")
	}
	if b, err := os.ReadFile(filepath.Join(dir, treeMarker)); err == nil && string(b) == tree.Digest {
		return nil
	}
	a, body, err := g.s.store.Artifact(c, g.k.TenantID, g.k.ID, tree.Name)
	if err != nil {
		return fmt.Errorf("restore %s: %w", tree.Name, err)
	}
	if a.Digest != tree.Digest || factory.Digest(body) != tree.Digest {
		return fmt.Errorf("restore %s: the stored tree does not match its sha256 %s", tree.Name, tree.Digest)
	}
	files, err := factory.UnpackTree(body)
	if err != nil {
		return err
	}
	return writeTree(dir, files, tree.Digest)
}

// storeTree reads the work directory and stores it as artifact name of stage
// st.
func (g *saga) storeTree(c context.Context, st factory.Stage, name string) (treeRef, map[string][]byte, error) {
	files, err := readTree(g.dir())
	if err != nil {
		return treeRef{}, nil, err
	}
	b, err := factory.PackTree(files)
	if err != nil {
		return treeRef{}, nil, err
	}
	a, err := g.s.store.PutArtifact(c, g.k, st, name, mediaTree, b)
	if err != nil {
		return treeRef{}, nil, err
	}
	if err := os.WriteFile(filepath.Join(g.dir(), treeMarker), []byte(a.Digest), 0o600); err != nil {
		return treeRef{}, nil, err
	}
	return treeRef{Name: name, Digest: a.Digest}, files, nil
}

// job is an executor's job on the run's work directory.
func (g *saga) job(action string) Job {
	return Job{RunID: g.k.ID, Action: action, Dir: g.dir(), Pack0: g.p, Pack0JSON: g.info.Pack0, State: g.k.State,
		Env: sandboxEnv(), Go: g.s.cfg.Go}
}

// execute runs an executor with the service's timeout.
func (g *saga) execute(c context.Context, ex Executor, job Job) (Output, error) {
	ctx, cancel := context.WithTimeout(c, g.s.cfg.ExecutorTimeout)
	defer cancel()
	out, err := ex.Run(ctx, job)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return out, err
}

// pack0 is the pack0 stage: the Pack0 gate, then the Pack0 stored and
// linked.
func (g *saga) pack0() (stageOutcome, error) {
	type result struct {
		Digest  string `json:"sha256,omitempty"`
		Failure string `json:"failure,omitempty"`
	}
	res, err := step(g.ctx, "pack0", func(c context.Context) (result, error) {
		s := g.s
		if err := s.store.StartGate(c, g.k, factory.GatePack0, true); err != nil {
			return result{}, err
		}
		_, probs := factory.CheckPack0(s.schema, g.info.Pack0, g.k.State)
		gr := factory.GateResult{Gate: factory.GatePack0, Passed: len(probs) == 0, Blocking: true, Tool: "prost pack0 gate (schema factory.pack0 v1)"}
		for _, p := range probs {
			gr.Findings = append(gr.Findings, factory.Finding{Gate: factory.GatePack0, Rule: p.Rule, File: artPack0 + "#" + p.Pointer,
				Severity: "error", Message: p.Message, Blocking: true})
		}
		if gr.Passed {
			gr.Summary = fmt.Sprintf("the Pack0 of %s passes its schema and every objective rule (%s)", g.k.Module, g.k.State)
		} else {
			gr.Summary = fmt.Sprintf("%d problem(s): %s", len(probs), probs[0].String())
		}
		if err := s.store.FinishGate(c, g.k, gr); err != nil {
			return result{}, err
		}
		if !gr.Passed {
			return result{Failure: "the Pack0 gate failed: " + gr.Summary}, nil
		}
		a, err := s.store.PutArtifact(c, g.k, factory.StagePack0, artPack0, mediaJSON, g.info.Pack0)
		if err != nil {
			return result{}, err
		}
		st, err := factory.LinkStatement(factory.StagePack0, []string{"prost", "factory", "pack0-gate"}, nil,
			[]factory.Subject{{Name: a.Name, Digest: a.Digest}}, map[string]any{"gate": "passed"}, g.env())
		if err != nil {
			return result{}, err
		}
		if _, err := s.store.SignArtifact(c, g.k, factory.StagePack0, factory.LinkArtifact(factory.StagePack0), st); err != nil {
			return result{Failure: "cannot sign the run report: " + err.Error()}, nil
		}
		return result{Digest: a.Digest}, nil
	})
	return stageOutcome{Detail: res, Failure: res.Failure}, err
}

// env is the environment a link records.
func (g *saga) env() map[string]any {
	return map[string]any{"run_id": g.k.ID.String(), "state": string(g.k.State), "module": g.k.Module, "builder": factory.BuilderID + "@" + AppVersion}
}

// genResult is what codegen and testgen report.
type genResult struct {
	Tree     treeRef `json:"tree"`
	Executor string  `json:"executor"`
	Files    int     `json:"files"`
	Notes    string  `json:"notes,omitempty"`
	Failure  string  `json:"failure,omitempty"`
}

// generate runs a codegen or testgen executor on from and stores the tree
// it leaves as artifact to, with its link.
func (g *saga) generate(c context.Context, st factory.Stage, action string, ex Executor, from treeRef, to string) (genResult, error) {
	res := genResult{Executor: ex.Name()}
	if err := g.checkout(c, from); err != nil {
		return res, err
	}
	out, err := g.execute(c, ex, g.job(action))
	if err != nil {
		if c.Err() != nil {
			return res, c.Err()
		}
		res.Failure = fmt.Sprintf("%s (executor %s) failed: %v", action, ex.Name(), err)
		return res, nil
	}
	res.Notes = out.Notes
	tree, files, err := g.storeTree(c, st, to)
	if err != nil {
		return res, err
	}
	res.Tree, res.Files = tree, len(files)
	var materials []factory.Subject
	if from.Name != "" {
		materials = []factory.Subject{{Name: from.Name, Digest: from.Digest}}
	} else {
		a, _, err := g.s.store.Artifact(c, g.k.TenantID, g.k.ID, artPack0)
		if err != nil {
			return res, err
		}
		materials = []factory.Subject{{Name: a.Name, Digest: a.Digest}}
	}
	products := append([]factory.Subject{{Name: tree.Name, Digest: tree.Digest}}, factory.TreeSubjects(tree.Name, files)...)
	stmt, err := factory.LinkStatement(st, []string{"executor", ex.Name(), action}, materials, products,
		map[string]any{"notes": out.Notes}, g.env())
	if err != nil {
		return res, err
	}
	if _, err := g.s.store.SignArtifact(c, g.k, st, factory.LinkArtifact(st), stmt); err != nil {
		res.Failure = "cannot sign the run report: " + err.Error()
		return res, nil
	}
	_ = g.s.store.Log(c, g.k, st, fmt.Sprintf("%s by %s: %s (%d files, sha256 %s)", action, ex.Name(), out.Notes, len(files), tree.Digest))
	return res, nil
}

// attemptResult is one test attempt.
type attemptResult struct {
	Passed bool     `json:"passed"`
	Output string   `json:"output"`
	Passes []string `json:"passes,omitempty"`
	Fails  []string `json:"fails,omitempty"`
}

// healResult is one healing.
type healResult struct {
	Tree    treeRef `json:"tree"`
	Healer  string  `json:"healer"`
	Notes   string  `json:"notes"`
	Failure string  `json:"failure,omitempty"`
}

// buildResult is what the tests stage reports.
type buildResult struct {
	Attempts     int      `json:"attempts"`
	Source       treeRef  `json:"source"`
	Binary       treeRef  `json:"binary"`
	Dependencies []string `json:"dependencies,omitempty"`
	GoVersion    string   `json:"go_version,omitempty"`
	Failure      string   `json:"failure,omitempty"`
}

var testLineRe = regexp.MustCompile(`^\s*--- (PASS|FAIL): (\S+)`)

// tests runs the module's tests up to MaxTestAttempts times, healing the
// module between failed attempts; once they pass it builds the binary.
func (g *saga) tests(tree treeRef) (buildResult, error) {
	s := g.s
	var last attemptResult
	passedAt := 0
	healer := s.cfg.Executors.Healer
	for attempt := 1; attempt <= MaxTestAttempts; attempt++ {
		cur := tree
		res, err := step(g.ctx, fmt.Sprintf("tests:attempt:%d", attempt), func(c context.Context) (attemptResult, error) {
			if err := g.checkout(c, cur); err != nil {
				return attemptResult{}, err
			}
			res := g.goTest(c)
			if c.Err() != nil {
				return res, c.Err()
			}
			return res, s.store.RecordAttempt(c, g.k, factory.Attempt{Attempt: attempt, Passed: res.Passed, Output: res.Output})
		})
		if err != nil {
			return buildResult{}, err
		}
		last = res
		if res.Passed {
			passedAt = attempt
			break
		}
		if attempt == MaxTestAttempts {
			break
		}
		h, err := step(g.ctx, fmt.Sprintf("tests:heal:%d", attempt), func(c context.Context) (healResult, error) {
			hr := healResult{Healer: healer.Name()}
			if err := g.checkout(c, cur); err != nil {
				return hr, err
			}
			job := g.job(ActionHeal)
			job.Attempt, job.LastFailure = attempt, res.Output
			out, err := g.execute(c, healer, job)
			if err != nil {
				if c.Err() != nil {
					return hr, c.Err()
				}
				hr.Notes = "the healer failed: " + err.Error()
				hr.Tree = cur
			} else {
				hr.Notes = out.Notes
				t, _, err := g.storeTree(c, factory.StageTests, fmt.Sprintf("tree/heal-%d.tar.gz", attempt))
				if err != nil {
					return hr, err
				}
				hr.Tree = t
			}
			_ = s.store.Log(c, g.k, factory.StageTests, fmt.Sprintf("attempt %d failed; healed by %s: %s", attempt, healer.Name(), hr.Notes))
			return hr, s.store.RecordHeal(c, g.k, attempt, healer.Name(), hr.Notes)
		})
		if err != nil {
			return buildResult{}, err
		}
		tree = h.Tree
	}
	if passedAt == 0 {
		msg := fmt.Sprintf("the tests still fail after %d attempts: %s", MaxTestAttempts, tail(last.Output, 600))
		_, err := step(g.ctx, "tests:gate", func(c context.Context) (bool, error) {
			gr := factory.GateResult{Gate: factory.GateTests, Blocking: true, Tool: "go test",
				Summary:  fmt.Sprintf("failed on all %d attempts", MaxTestAttempts),
				Findings: []factory.Finding{{Gate: factory.GateTests, Rule: "go-test", Severity: "error", Message: tail(last.Output, 2000), Blocking: true}}}
			for _, f := range last.Fails {
				gr.Findings = append(gr.Findings, factory.Finding{Gate: factory.GateTests, Rule: "go-test", File: f, Severity: "error", Message: f + " failed", Blocking: true})
			}
			return true, s.store.FinishGate(c, g.k, gr)
		})
		return buildResult{Attempts: MaxTestAttempts, Failure: msg}, err
	}
	final := tree
	return step(g.ctx, "tests:build", func(c context.Context) (buildResult, error) {
		return g.build(c, final, passedAt, last)
	})
}

// goTest runs the module's tests with the allow-listed environment and the
// module database.
func (g *saga) goTest(c context.Context) attemptResult {
	ctx, cancel := context.WithTimeout(c, g.s.cfg.TestTimeout)
	defer cancel()
	env := sandboxEnv()
	if g.s.cfg.ModuleDatabaseURL != "" {
		if err := ensureDatabase(ctx, g.s.cfg.ModuleDatabaseURL); err != nil {
			return attemptResult{Output: err.Error()}
		}
		env = append(env, "DATABASE_URL="+g.s.cfg.ModuleDatabaseURL)
	}
	out, err := command(ctx, g.dir(), env, g.s.cfg.Go, "test", "-count=1", "-v", "-timeout", g.s.cfg.TestTimeout.String(), "./...")
	res := attemptResult{Passed: err == nil, Output: tail(string(out), 16<<10)}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := testLineRe.FindStringSubmatch(sc.Text()); m != nil {
			if m[1] == "PASS" {
				res.Passes = append(res.Passes, m[2])
			} else {
				res.Fails = append(res.Fails, m[2])
			}
		}
	}
	if err != nil && len(out) == 0 {
		res.Output = err.Error()
	}
	return res
}

// build builds the binary of the tested tree and records the tests stage:
// the source tree, the binary, the test result and the stage's link.
func (g *saga) build(c context.Context, tree treeRef, attempts int, last attemptResult) (buildResult, error) {
	s := g.s
	res := buildResult{Attempts: attempts}
	if err := g.checkout(c, tree); err != nil {
		return res, err
	}
	source, files, err := g.storeTree(c, factory.StageTests, artSource)
	if err != nil {
		return res, err
	}
	res.Source = source
	bin := filepath.Join(filepath.Dir(g.dir()), "bin", g.k.Module)
	ctx, cancel := context.WithTimeout(c, s.cfg.TestTimeout)
	defer cancel()
	out, err := command(ctx, g.dir(), sandboxEnv(), s.cfg.Go, "build", "-trimpath", "-o", bin, ".")
	if err != nil {
		if c.Err() != nil {
			return res, c.Err()
		}
		res.Failure = "the tested module does not build: " + tail(string(out), 1000)
		return res, nil
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		return res, err
	}
	ba, err := s.store.PutArtifact(c, g.k, factory.StageTests, artBinary(g.k.Module), mediaBinary, body)
	if err != nil {
		return res, err
	}
	res.Binary = treeRef{Name: ba.Name, Digest: ba.Digest}
	if out, err := command(ctx, g.dir(), sandboxEnv(), s.cfg.Go, "list", "-m", "all"); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
			if f := strings.Fields(l); len(f) == 2 {
				res.Dependencies = append(res.Dependencies, f[0]+"@"+f[1])
			}
		}
	}
	if out, err := command(ctx, g.dir(), sandboxEnv(), s.cfg.Go, "env", "GOVERSION"); err == nil {
		res.GoVersion = strings.TrimSpace(string(out))
	}
	report, _ := json.Marshal(map[string]any{"attempts": attempts, "passed": last.Passes, "output": last.Output})
	if _, err := s.store.PutArtifact(c, g.k, factory.StageTests, artTests, mediaJSON, report); err != nil {
		return res, err
	}
	tr, err := factory.TestResultStatement(factory.Subject{Name: source.Name, Digest: source.Digest}, true, last.Passes, last.Fails,
		"go test -count=1 -v ./...")
	if err != nil {
		return res, err
	}
	if _, err := s.store.SignArtifact(c, g.k, factory.StageTests, "pec/tests.test-result.dsse.json", tr); err != nil {
		res.Failure = "cannot sign the run report: " + err.Error()
		return res, nil
	}
	products := append([]factory.Subject{{Name: source.Name, Digest: source.Digest}, {Name: ba.Name, Digest: ba.Digest}},
		factory.TreeSubjects(source.Name, files)...)
	link, err := factory.LinkStatement(factory.StageTests, []string{"go", "test", "./...", "&&", "go", "build", "-trimpath"},
		[]factory.Subject{{Name: artTestgen, Digest: g.artifactDigest(c, artTestgen)}}, products,
		map[string]any{"attempts": attempts, "go": res.GoVersion}, g.env())
	if err != nil {
		return res, err
	}
	if _, err := s.store.SignArtifact(c, g.k, factory.StageTests, factory.LinkArtifact(factory.StageTests), link); err != nil {
		res.Failure = "cannot sign the run report: " + err.Error()
		return res, nil
	}
	gr := factory.GateResult{Gate: factory.GateTests, Passed: true, Blocking: true, Tool: "go test",
		Summary: fmt.Sprintf("%d test(s) passed on attempt %d", len(last.Passes), attempts)}
	return res, s.store.FinishGate(c, g.k, gr)
}

// artifactDigest is the recorded sha256 of one of the run's artifacts ("" if
// none).
func (g *saga) artifactDigest(c context.Context, name string) string {
	a, _, err := g.s.store.Artifact(c, g.k.TenantID, g.k.ID, name)
	if err != nil {
		return strings.Repeat("0", 64)
	}
	return a.Digest
}

// gatesResult is what the gates stage reports.
type gatesResult struct {
	Results []gateSummary `json:"gates"`
	// AllPassed is true when every gate passed, blocking or not.
	AllPassed bool   `json:"all_passed"`
	Failure   string `json:"failure,omitempty"`
}

type gateSummary struct {
	Gate     string `json:"gate"`
	Passed   bool   `json:"passed"`
	Blocking bool   `json:"blocking"`
	Findings int    `json:"findings"`
}

// gates runs the state's gates, each a step, then links their reports.
func (g *saga) gates(build buildResult) (gatesResult, error) {
	s := g.s
	res := gatesResult{AllPassed: true}
	var blocked []string
	for _, gate := range s.cfg.Gates[g.k.State] {
		gr, err := step(g.ctx, "gate:"+gate.Name(), func(c context.Context) (factory.GateResult, error) {
			return g.runGate(c, gate, build)
		})
		if err != nil {
			return res, err
		}
		res.Results = append(res.Results, gateSummary{Gate: gr.Gate, Passed: gr.Passed, Blocking: gr.Blocking, Findings: len(gr.Findings)})
		if !gr.Passed {
			res.AllPassed = false
			if gr.Blocking {
				blocked = append(blocked, fmt.Sprintf("%s (%s)", gr.Gate, gr.Summary))
			}
		}
	}
	if _, err := step(g.ctx, "gates:report", func(c context.Context) (bool, error) {
		var products []factory.Subject
		arts, err := s.store.Artifacts(c, g.k.TenantID, g.k.ID)
		if err != nil {
			return false, err
		}
		for _, a := range arts {
			if a.Stage == factory.StageGates && !strings.HasPrefix(a.Name, "pec/") {
				products = append(products, factory.Subject{Name: a.Name, Digest: a.Digest})
			}
		}
		if len(products) == 0 {
			return true, nil
		}
		link, err := factory.LinkStatement(factory.StageGates, []string{"prost", "factory", "gates", string(g.k.State)},
			[]factory.Subject{{Name: build.Source.Name, Digest: build.Source.Digest}, {Name: build.Binary.Name, Digest: build.Binary.Digest}},
			products, map[string]any{"gates": res.Results}, g.env())
		if err != nil {
			return false, err
		}
		_, err = s.store.SignArtifact(c, g.k, factory.StageGates, factory.LinkArtifact(factory.StageGates), link)
		return err == nil, err
	}); err != nil {
		return res, err
	}
	if len(blocked) > 0 {
		res.Failure = "blocking gates failed (fail closed): " + strings.Join(blocked, "; ")
	}
	return res, nil
}

// runGate runs one gate on the built module, stores its report and records
// its verdict.
func (g *saga) runGate(c context.Context, gate Gate, build buildResult) (factory.GateResult, error) {
	s := g.s
	if err := s.store.StartGate(c, g.k, gate.Name(), gate.Blocking()); err != nil {
		return factory.GateResult{}, err
	}
	if err := g.checkout(c, build.Source); err != nil {
		return factory.GateResult{}, err
	}
	bin := filepath.Join(filepath.Dir(g.dir()), "bin", g.k.Module)
	if err := g.restoreBinary(c, build.Binary, bin); err != nil {
		return factory.GateResult{}, err
	}
	ctx, cancel := context.WithTimeout(c, s.cfg.GateTimeout)
	defer cancel()
	in := GateInput{Dir: g.dir(), Binary: bin, Pack0: g.p, Tenant: g.k.TenantID, Module: g.k.Module, State: g.k.State, RunID: g.k.ID}
	gr, extra, err := gate.Run(ctx, s, in)
	if c.Err() != nil {
		return gr, c.Err()
	}
	if err != nil {
		// A gate that cannot run fails closed.
		gr = factory.GateResult{Gate: gate.Name(), Blocking: gate.Blocking(), Summary: "the gate could not run: " + err.Error(),
			Findings: []factory.Finding{{Gate: gate.Name(), Rule: "gate-error", Severity: "error", Message: err.Error(), Blocking: gate.Blocking()}}}
	}
	gr.Gate, gr.Blocking = gate.Name(), gate.Blocking()
	if gr.Passed {
		for _, f := range gr.Findings {
			if f.Blocking {
				gr.Passed = false
			}
		}
	}
	report, _ := json.MarshalIndent(gr, "", "  ")
	if _, err := s.store.PutArtifact(c, g.k, factory.StageGates, "reports/"+gate.Name()+".json", mediaJSON, report); err != nil {
		return gr, err
	}
	if extra != nil {
		for _, a := range extra.Artifacts {
			if _, err := s.store.PutArtifact(c, g.k, factory.StageGates, a.Name, a.MediaType, a.Content); err != nil {
				return gr, err
			}
		}
		if extra.Vulns != nil {
			stmt, err := factory.VulnsStatement(factory.Subject{Name: build.Source.Name, Digest: build.Source.Digest}, *extra.Vulns)
			if err != nil {
				return gr, err
			}
			if _, err := s.store.SignArtifact(c, g.k, factory.StageGates, "pec/"+gate.Name()+".vulns.dsse.json", stmt); err != nil {
				return gr, err
			}
		}
	}
	return gr, s.store.FinishGate(c, g.k, gr)
}

// restoreBinary makes path hold the stored binary.
func (g *saga) restoreBinary(c context.Context, bin treeRef, path string) error {
	if b, err := os.ReadFile(path); err == nil && factory.Digest(b) == bin.Digest {
		return nil
	}
	_, body, err := g.s.store.Artifact(c, g.k.TenantID, g.k.ID, bin.Name)
	if err != nil {
		return err
	}
	if factory.Digest(body) != bin.Digest {
		return fmt.Errorf("restore %s: the stored binary does not match its sha256", bin.Name)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return os.WriteFile(path, body, 0o700) //nolint:gosec // the module's own binary, run by the gates and the deployer
}

// autoApproval reports whether the run deploys without waiting for a
// decision: with auto-deploy, in PRESSAO, or in NORMAL when every gate
// passed.
func (g *saga) autoApproval(gates gatesResult) (bool, string) {
	switch {
	case !g.info.AutoDeploy:
		return false, ""
	case g.k.State == factory.Pressao:
		return true, "auto-deploy of a PRESSAO (MVP) build"
	case gates.AllPassed:
		return true, "auto-deploy: every gate passed"
	}
	return false, ""
}

// approval is the approval stage: an automatic approval record, or a wait
// for a decision; then the signed approval record.
func (g *saga) approval(build buildResult, auto bool, why string) (stageOutcome, error) {
	s := g.s
	var a factory.Approval
	if auto {
		var err error
		a, err = step(g.ctx, "approval:auto", func(c context.Context) (factory.Approval, error) {
			as, err := s.store.Approvals(c, g.k.TenantID, g.k.ID)
			if err != nil {
				return factory.Approval{}, err
			}
			if len(as) > 0 {
				return as[len(as)-1], nil
			}
			var rec factory.Approval
			err = pgx.BeginFunc(c, s.store.Pool(), func(tx pgx.Tx) error {
				var err error
				rec, err = s.store.RecordApproval(c, tx, g.k, factory.Approval{Decision: factory.DecisionApprove, Actor: AppName,
					Reason: why, Automatic: true})
				return err
			})
			return rec, err
		})
		if err != nil {
			return stageOutcome{}, err
		}
	} else {
		var err error
		a, err = dbos.Recv[factory.Approval](g.ctx, ApprovalTopic, s.cfg.ApprovalTimeout)
		if errors.Is(err, dbos.ErrTimeout) || (err == nil && a.Decision == "") {
			return stageOutcome{Failure: fmt.Sprintf("no decision within %s", s.cfg.ApprovalTimeout)}, nil
		}
		if err != nil {
			return stageOutcome{}, err
		}
	}
	_, err := step(g.ctx, "approval:record", func(c context.Context) (bool, error) {
		stmt, err := factory.ApprovalStatement([]factory.Subject{{Name: build.Binary.Name, Digest: build.Binary.Digest},
			{Name: build.Source.Name, Digest: build.Source.Digest}}, g.k.ID, a)
		if err != nil {
			return false, err
		}
		_, err = s.store.SignArtifact(c, g.k, factory.StageApproval, factory.ArtifactApproval, stmt)
		return err == nil, err
	})
	if err != nil {
		return stageOutcome{}, err
	}
	detail := map[string]any{"decision": a.Decision, "actor": a.Actor, "automatic": a.Automatic}
	if a.Decision == factory.DecisionReject {
		msg := "rejected by " + a.Actor
		if a.Reason != "" {
			msg += ": " + a.Reason
		}
		return stageOutcome{Detail: detail, Failure: msg, Status: factory.StatusRejected}, nil
	}
	return stageOutcome{Detail: detail}, nil
}

// manifestResult is what the manifest stage reports.
type manifestResult struct {
	Digest  string `json:"sha256,omitempty"`
	Failure string `json:"failure,omitempty"`
}

// manifest signs the SLSA provenance of the build, naming every statement
// of the run report and the approval record, and records its digest in the
// tenant's audit chain.
func (g *saga) manifest(c context.Context, build buildResult, gates gatesResult) (manifestResult, error) {
	s := g.s
	arts, err := s.store.Artifacts(c, g.k.TenantID, g.k.ID)
	if err != nil {
		return manifestResult{}, err
	}
	var byproducts, deps []factory.Subject
	for _, a := range arts {
		if strings.HasPrefix(a.Name, "pec/") && a.Name != factory.ArtifactManifest && a.Stage != factory.StageDeploy {
			byproducts = append(byproducts, factory.Subject{Name: a.Name, Digest: a.Digest})
		}
		if a.Name == artPack0 {
			deps = append(deps, factory.Subject{Name: a.Name, Digest: a.Digest})
		}
	}
	deps = append(deps, factory.Subject{Name: build.Source.Name, Digest: build.Source.Digest})
	gateStatus := map[string]any{}
	for _, r := range gates.Results {
		gateStatus[r.Gate] = map[string]any{"passed": r.Passed, "blocking": r.Blocking, "findings": r.Findings}
	}
	stmt, err := factory.ProvenanceStatement(
		[]factory.Subject{{Name: build.Binary.Name, Digest: build.Binary.Digest}, {Name: build.Source.Name, Digest: build.Source.Digest}},
		factory.Provenance{
			RunID: g.k.ID,
			External: map[string]any{"module": g.k.Module, "state": string(g.k.State), "auto_deploy": g.info.AutoDeploy,
				"deploy_target": string(g.info.DeployTarget), "pack0_sha256": factory.Digest(g.info.Pack0)},
			Internal:             map[string]any{"gates": gateStatus, "test_attempts": build.Attempts},
			Dependencies:         deps,
			ResolvedDependencies: build.Dependencies,
			Byproducts:           byproducts,
			Started:              g.info.CreatedAt, Finished: time.Now(),
			BuilderVersion: map[string]string{"prost-factory": AppVersion, "go": build.GoVersion},
		})
	if err != nil {
		return manifestResult{}, err
	}
	env, err := s.store.Sign(c, g.k.TenantID, stmt)
	if err != nil {
		return manifestResult{Failure: "cannot sign the manifest: " + err.Error()}, nil
	}
	a, err := s.store.RecordManifest(c, g.k, env)
	if err != nil {
		return manifestResult{}, err
	}
	_ = s.store.Log(c, g.k, factory.StageManifest, "manifest signed; sha256 "+a.Digest+" recorded in the audit chain")
	return manifestResult{Digest: a.Digest}, nil
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
