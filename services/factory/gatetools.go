package factorysvc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/CycloneDX/cyclonedx-gomod/pkg/generate/mod"
	"github.com/fatih/semgroup"
	"github.com/rs/zerolog"
	"github.com/securego/gosec/v2"
	"github.com/securego/gosec/v2/analyzers"
	"github.com/securego/gosec/v2/rules"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
	"github.com/zricethezav/gitleaks/v8/sources"
	"golang.org/x/vuln/scan"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// The versions of the tools linked into the gate process (pinned by
// services/factory/go.mod; a test checks they agree).
const (
	GitleaksVersion       = "v8.30.1"
	GosecVersion          = "v2.30.0"
	GovulncheckVersion    = "v1.9.0"
	CyclonedxGomodVersion = "v1.10.0"
)

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// runToolGate runs one tool gate in this (gate) process.
func runToolGate(ctx context.Context, req gateRequest) (factory.GateResult, *GateExtra, error) {
	switch req.Gate {
	case factory.GateSecrets:
		return secretsGate(ctx, req.Dir)
	case factory.GateSAST:
		return sastGate(req.Dir)
	case factory.GateVulns, factory.GateDeps:
		return vulnGate(ctx, req)
	case factory.GateSBOM:
		return sbomGate(req.Dir)
	}
	return factory.GateResult{}, nil, fmt.Errorf("no tool gate %q", req.Gate)
}

func relPath(dir, p string) string {
	if !filepath.IsAbs(p) {
		return filepath.ToSlash(p)
	}
	r, err := filepath.Rel(dir, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}

func summarize(res *factory.GateResult, ok string) {
	var blocking []factory.Finding
	for _, f := range res.Findings {
		if f.Blocking {
			blocking = append(blocking, f)
		}
	}
	res.Passed = len(blocking) == 0
	switch {
	case len(res.Findings) == 0:
		res.Summary = ok
	case res.Passed:
		res.Summary = fmt.Sprintf("%s; %d non-blocking finding(s), first %s", ok, len(res.Findings), res.Findings[0].String())
	default:
		res.Summary = fmt.Sprintf("%d blocking finding(s), first %s", len(blocking), blocking[0].String())
	}
}

// secretsGate scans every file of the module with gitleaks' default rules;
// secrets are redacted in the findings.
func secretsGate(ctx context.Context, dir string) (factory.GateResult, *GateExtra, error) {
	res := factory.GateResult{Gate: factory.GateSecrets, Blocking: true, Tool: "gitleaks " + GitleaksVersion}
	logging.Logger = logging.Logger.Level(zerolog.Disabled)
	d, err := detect.NewDetectorDefaultConfig()
	if err != nil {
		return res, nil, err
	}
	d.Redact = 100
	found, err := d.DetectSource(ctx, &sources.Files{Config: &d.Config, Path: dir, Sema: semgroup.NewGroup(ctx, 4), MaxFileSize: 10 << 20})
	if err != nil {
		return res, nil, err
	}
	for _, f := range found {
		file := relPath(dir, f.File)
		if file == treeMarker {
			continue
		}
		res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: f.RuleID, File: file, Line: f.StartLine,
			Severity: "high", Message: fmt.Sprintf("%s (secret redacted: %s)", f.Description, f.Secret), Blocking: true})
	}
	sort.Slice(res.Findings, func(i, j int) bool {
		a, b := res.Findings[i], res.Findings[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	summarize(&res, "no secrets found")
	return res, nil, nil
}

// sastGate runs gosec's rules and analyzers on the module's packages
// (tests excluded); #nosec comments are ignored, so a module cannot silence
// it.
func sastGate(dir string) (factory.GateResult, *GateExtra, error) {
	res := factory.GateResult{Gate: factory.GateSAST, Blocking: true, Tool: "gosec " + GosecVersion}
	conf := gosec.NewConfig()
	conf.SetGlobal(gosec.Nosec, "true")
	a := gosec.NewAnalyzer(conf, false, true, false, 1, log.New(io.Discard, "", 0))
	a.LoadRules(rules.Generate(false).RulesInfo())
	a.LoadAnalyzers(analyzers.Generate(false).AnalyzersInfo())
	paths, err := gosec.PackagePaths(filepath.Join(dir, "..."), nil)
	if err != nil {
		return res, nil, err
	}
	if err := a.Process(nil, paths...); err != nil {
		return res, nil, err
	}
	issues, _, errs := a.Report()
	for file, es := range errs {
		for _, e := range es {
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "load", File: relPath(dir, file), Line: e.Line,
				Severity: "error", Message: "gosec cannot analyse it: " + e.Err, Blocking: true})
		}
	}
	for _, i := range issues {
		line, _ := strconv.Atoi(strings.Split(i.Line, "-")[0])
		rule := i.RuleID
		if i.Cwe != nil && i.Cwe.ID != "" {
			rule += " (CWE-" + i.Cwe.ID + ")"
		}
		res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: rule, File: relPath(dir, i.File), Line: line,
			Severity: strings.ToLower(i.Severity.String()), Message: i.What, Blocking: true})
	}
	sort.Slice(res.Findings, func(i, j int) bool {
		a, b := res.Findings[i], res.Findings[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	summarize(&res, "gosec found nothing")
	return res, nil, nil
}

// govulnMessage is one message of govulncheck's JSON stream.
type govulnMessage struct {
	Config *struct {
		ScannerVersion string `json:"scanner_version"`
		DB             string `json:"db"`
		GoVersion      string `json:"go_version"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
			Receiver string `json:"receiver"`
			Position *struct {
				Filename string `json:"filename"`
				Line     int    `json:"line"`
			} `json:"position"`
		} `json:"trace"`
	} `json:"finding"`
}

// govulncheck runs govulncheck (source mode, call graph) on the module
// against the local database, reusing the scan of the same tree.
func govulncheck(ctx context.Context, req gateRequest) ([]govulnMessage, time.Time, time.Time, error) {
	marker, _ := os.ReadFile(filepath.Join(req.Dir, treeMarker))
	cache := ""
	if len(marker) > 0 {
		cache = filepath.Join(filepath.Dir(req.Dir), "govulncheck-"+string(marker)+".json")
	}
	started := time.Now()
	var out []byte
	if cache != "" {
		out, _ = os.ReadFile(cache)
	}
	if len(out) == 0 {
		var buf, errOut bytes.Buffer
		cmd := scan.Command(ctx, "-C", req.Dir, "-db", "file://"+req.VulnDB, "-format", "json", "./...")
		cmd.Stdout, cmd.Stderr = &buf, &errOut
		cmd.Env = os.Environ()
		if err := cmd.Start(); err != nil {
			return nil, started, time.Now(), err
		}
		if err := cmd.Wait(); err != nil {
			return nil, started, time.Now(), fmt.Errorf("govulncheck: %v: %s", err, tail(errOut.String(), 1000))
		}
		out = buf.Bytes()
		if cache != "" {
			_ = os.WriteFile(cache, out, 0o600)
		}
	}
	var msgs []govulnMessage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m govulnMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, started, time.Now(), fmt.Errorf("govulncheck output: %w", err)
		}
		msgs = append(msgs, m)
	}
	return msgs, started, time.Now(), nil
}

// requireLines maps each module required in dir's go.mod to its line.
func requireLines(dir string) map[string]int {
	out := map[string]int{}
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && strings.HasPrefix(fields[1], "v") {
			out[fields[0]] = n
		}
	}
	return out
}

// vulnGate is the vulns gate (vulnerable code the module calls, with the
// call site) or the deps gate (every required module with a known
// vulnerability, whether called or not, located in go.mod), from one
// govulncheck scan. Vulnerabilities of the Go standard library belong to the
// toolchain that builds the module, not to the module: they are recorded
// but do not block (upgrade the factory's Go to fix them).
func vulnGate(ctx context.Context, req gateRequest) (factory.GateResult, *GateExtra, error) {
	res := factory.GateResult{Gate: req.Gate, Blocking: true,
		Tool: "govulncheck " + GovulncheckVersion + " (db golang.org/x/vulndb@" + req.VulnDBVersion + ")"}
	msgs, started, finished, err := govulncheck(ctx, req)
	if err != nil {
		return res, nil, err
	}
	summaries := map[string]string{}
	goVersion := ""
	for _, m := range msgs {
		if m.OSV != nil {
			summaries[m.OSV.ID] = m.OSV.Summary
		}
		if m.Config != nil {
			goVersion = m.Config.GoVersion
		}
	}
	reqs := requireLines(req.Dir)
	seen := map[string]bool{}
	var ids []string
	for _, m := range msgs {
		f := m.Finding
		if f == nil || len(f.Trace) == 0 {
			continue
		}
		top := f.Trace[0]
		stdlib := top.Module == "stdlib" || top.Module == "toolchain"
		fixed := f.FixedVersion
		if fixed == "" {
			fixed = "no fixed version"
		} else {
			fixed = "fixed in " + fixed
		}
		switch req.Gate {
		case factory.GateVulns:
			if top.Function == "" {
				continue
			}
			key := f.OSV + " " + top.Module
			if seen[key] {
				continue
			}
			seen[key] = true
			if !slices.Contains(ids, f.OSV) {
				ids = append(ids, f.OSV)
			}
			sym := top.Package + "." + top.Function
			if top.Receiver != "" {
				sym = top.Package + "." + strings.TrimPrefix(top.Receiver, "*") + "." + top.Function
			}
			file, line := "", 0
			for i := len(f.Trace) - 1; i >= 0; i-- {
				if p := f.Trace[i].Position; p != nil && p.Filename != "" && !strings.Contains(p.Filename, "pkg/mod") {
					file, line = relPath(req.Dir, p.Filename), p.Line
					break
				}
			}
			if stdlib {
				res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: f.OSV, File: file, Line: line, Severity: "toolchain",
					Message: fmt.Sprintf("the Go toolchain (%s) that builds the module is affected: %s calls %s (%s): %s; upgrade the factory's Go",
						goVersion, file, sym, fixed, summaries[f.OSV]), Blocking: false})
				continue
			}
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: f.OSV, File: file, Line: line, Severity: "high",
				Message: fmt.Sprintf("calls %s of %s@%s (%s): %s", sym, top.Module, top.Version, fixed, summaries[f.OSV]), Blocking: true})
		case factory.GateDeps:
			if stdlib {
				continue
			}
			key := f.OSV + " " + top.Module
			if seen[key] {
				continue
			}
			seen[key] = true
			if !slices.Contains(ids, f.OSV) {
				ids = append(ids, f.OSV)
			}
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: f.OSV, File: "go.mod", Line: reqs[top.Module], Severity: "high",
				Message: fmt.Sprintf("requires %s@%s, which has a known vulnerability (%s): %s", top.Module, top.Version, fixed, summaries[f.OSV]), Blocking: true})
		}
	}
	sort.SliceStable(res.Findings, func(i, j int) bool { return res.Findings[i].Blocking && !res.Findings[j].Blocking })
	ok := "no known vulnerability reached"
	if req.Gate == factory.GateDeps {
		ok = "no required module has a known vulnerability"
	}
	summarize(&res, ok)
	extra := &GateExtra{Vulns: &factory.VulnScan{Scanner: "https://pkg.go.dev/golang.org/x/vuln/cmd/govulncheck", Version: GovulncheckVersion,
		DBURI: "https://pkg.go.dev/golang.org/x/vulndb", DBVersion: req.VulnDBVersion, IDs: ids, Started: started, Finished: finished}}
	return res, extra, nil
}

// sbomGate writes the module's CycloneDX 1.6 SBOM.
func sbomGate(dir string) (factory.GateResult, *GateExtra, error) {
	res := factory.GateResult{Gate: factory.GateSBOM, Tool: "cyclonedx-gomod " + CyclonedxGomodVersion}
	g, err := mod.NewGenerator(dir, mod.WithLogger(zerolog.Nop()), mod.WithComponentType(cdx.ComponentTypeApplication))
	if err != nil {
		return res, nil, err
	}
	bom, err := g.Generate()
	if err != nil {
		return res, nil, err
	}
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return res, nil, err
	}
	n := 0
	if bom.Components != nil {
		n = len(*bom.Components)
	}
	res.Passed = true
	res.Summary = fmt.Sprintf("CycloneDX 1.6 SBOM with %d component(s): sbom.cdx.json", n)
	return res, &GateExtra{Artifacts: []Blob{{Name: "sbom.cdx.json", MediaType: "application/vnd.cyclonedx+json", Content: buf.Bytes()}}}, nil
}
