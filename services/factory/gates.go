package factorysvc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/domain/registry"
)

// Gate checks a built module. A gate that fails while Blocking fails the run
// (fail closed); a gate that cannot run fails too.
type Gate interface {
	// Name is the gate's name (factory.GateLint ...).
	Name() string
	// Blocking reports whether a failure stops the run.
	Blocking() bool
	// Run checks the module. It returns the verdict with its findings, and
	// artifacts or a vulnerability scan for the run report.
	Run(ctx context.Context, s *Service, in GateInput) (factory.GateResult, *GateExtra, error)
}

// GateInput is what a gate checks.
type GateInput struct {
	// Dir holds the module's tested source; Binary its built binary.
	Dir, Binary string
	Pack0       *factory.Pack0
	Tenant      uuid.UUID
	RunID       uuid.UUID
	Module      string
	State       factory.State
}

// GateExtra is what a gate adds to the run beyond its verdict.
type GateExtra struct {
	Artifacts []Blob            `json:"artifacts,omitempty"`
	Vulns     *factory.VulnScan `json:"vulns,omitempty"`
}

// Blob is a named artifact body.
type Blob struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	Content   []byte `json:"content"`
}

// DefaultGates are the gates of each state. NORMAL runs every gate (all
// blocking but the SBOM); PRESSAO only secrets and contracts (the tests
// stage is its third gate).
func DefaultGates() map[factory.State][]Gate {
	return map[factory.State][]Gate{
		factory.Normal: {
			LintGate{}, ToolGate{GateName: factory.GateSecrets, Block: true}, ToolGate{GateName: factory.GateSAST, Block: true},
			ToolGate{GateName: factory.GateVulns, Block: true}, ToolGate{GateName: factory.GateDeps, Block: true},
			ToolGate{GateName: factory.GateSBOM}, ContractsGate{}, PerfGate{},
		},
		factory.Pressao: {ToolGate{GateName: factory.GateSecrets, Block: true}, ContractsGate{}},
	}
}

// gateRequest is what a gate process reads on its stdin.
type gateRequest struct {
	Gate   string `json:"gate"`
	Dir    string `json:"dir"`
	VulnDB string `json:"vulndb,omitempty"`
	// VulnDBVersion names the vulndb module version the database was built from.
	VulnDBVersion string `json:"vulndb_version,omitempty"`
	Go            string `json:"go"`
}

// gateResponse is what a gate process writes on its stdout.
type gateResponse struct {
	Result factory.GateResult `json:"result"`
	Extra  *GateExtra         `json:"extra,omitempty"`
	Error  string             `json:"error,omitempty"`
}

// GateProcessEnv marks a process started to run one gate.
const GateProcessEnv = "PROST_FACTORY_GATE_PROCESS"

// MaybeGateProcess runs a gate and exits when this process was started as a
// gate process (by a ToolGate, with GateProcessEnv set); otherwise it
// returns at once. Call it first in main, and in TestMain of tests whose
// factory service runs tool gates with this executable.
func MaybeGateProcess() {
	if os.Getenv(GateProcessEnv) != "1" {
		return
	}
	var req gateRequest
	var resp gateResponse
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		resp.Error = "read the gate request: " + err.Error()
	} else {
		ctx, stop := signalContext()
		res, extra, err := runToolGate(ctx, req)
		stop()
		resp.Result, resp.Extra = res, extra
		if err != nil {
			resp.Error = err.Error()
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(resp)
	os.Exit(0)
}

// ToolGate is a gate whose tool runs in a child process (this executable,
// Config.GateCommand) with the allow-listed environment, in the module's
// directory, killed when the gate times out: secrets (gitleaks), sast
// (gosec), vulns and deps (govulncheck on the local vulnerability
// database), sbom (cyclonedx-gomod).
type ToolGate struct {
	GateName string
	Block    bool
}

// Name is the gate's name.
func (t ToolGate) Name() string { return t.GateName }

// Blocking reports whether the gate blocks.
func (t ToolGate) Blocking() bool { return t.Block }

// Run runs the gate's tool in a child process.
func (t ToolGate) Run(ctx context.Context, s *Service, in GateInput) (factory.GateResult, *GateExtra, error) {
	req := gateRequest{Gate: t.GateName, Dir: in.Dir, Go: s.cfg.Go}
	if t.GateName == factory.GateVulns || t.GateName == factory.GateDeps {
		db, err := s.tools.VulnDB(ctx)
		if err != nil {
			return factory.GateResult{}, nil, err
		}
		req.VulnDB, req.VulnDBVersion = db, VulnDBVersion
	}
	body, _ := json.Marshal(req)
	cmd := exec.CommandContext(ctx, s.cfg.GateCommand[0], s.cfg.GateCommand[1:]...)
	cmd.Dir = in.Dir
	cmd.Env = sandboxEnv(GateProcessEnv + "=1")
	cmd.Stdin = bytes.NewReader(body)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return factory.GateResult{}, nil, fmt.Errorf("the %s gate timed out: %w", t.GateName, ctx.Err())
		}
		return factory.GateResult{}, nil, fmt.Errorf("the %s gate process failed: %v: %s", t.GateName, err, tail(errOut.String(), 2000))
	}
	var resp gateResponse
	if err := json.Unmarshal(lastLine(out.Bytes()), &resp); err != nil {
		return factory.GateResult{}, nil, fmt.Errorf("the %s gate process answered no result: %v: %s", t.GateName, err, tail(out.String()+errOut.String(), 2000))
	}
	if resp.Error != "" {
		return factory.GateResult{}, nil, errors.New(resp.Error)
	}
	return resp.Result, resp.Extra, nil
}

// lastLine is the last non-empty line of b (a gate process may print before
// its answer).
func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// LintGate is go vet and staticcheck (a pinned binary, built from the module
// proxy into the tools directory on first use).
type LintGate struct{}

// Name is "lint".
func (LintGate) Name() string { return factory.GateLint }

// Blocking is true.
func (LintGate) Blocking() bool { return true }

var vetLineRe = regexp.MustCompile(`^(?:\./)?([^:\s]+\.go):(\d+)(?::\d+)?: (.*)$`)

// Run runs go vet, then staticcheck.
func (LintGate) Run(ctx context.Context, s *Service, in GateInput) (factory.GateResult, *GateExtra, error) {
	res := factory.GateResult{Gate: factory.GateLint, Blocking: true}
	sc, err := s.tools.Staticcheck(ctx)
	if err != nil {
		return res, nil, err
	}
	res.Tool = "go vet; staticcheck " + StaticcheckVersion
	out, err := command(ctx, in.Dir, sandboxEnv(), s.cfg.Go, "vet", "./...")
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return res, nil, fmt.Errorf("go vet: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if m := vetLineRe.FindStringSubmatch(sc.Text()); m != nil {
				line, _ := strconv.Atoi(m[2])
				res.Findings = append(res.Findings, factory.Finding{Gate: factory.GateLint, Rule: "go vet", File: m[1], Line: line,
					Severity: "error", Message: m[3], Blocking: true})
			}
		}
		if len(res.Findings) == 0 {
			res.Findings = append(res.Findings, factory.Finding{Gate: factory.GateLint, Rule: "go vet", Severity: "error",
				Message: tail(string(out), 2000), Blocking: true})
		}
	}
	out, err = command(ctx, in.Dir, sandboxEnv(), sc, "-f", "json", "./...")
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return res, nil, fmt.Errorf("staticcheck: %w", err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Code     string `json:"code"`
			Severity string `json:"severity"`
			Location struct {
				File string `json:"file"`
				Line int    `json:"line"`
			} `json:"location"`
			Message string `json:"message"`
		}
		if err := dec.Decode(&p); err != nil {
			if !errors.Is(err, io.EOF) && len(res.Findings) == 0 && !bytes.Contains(out, []byte(`"code"`)) && len(bytes.TrimSpace(out)) > 0 {
				return res, nil, fmt.Errorf("staticcheck: %s", tail(string(out), 1000))
			}
			break
		}
		file, _ := filepath.Rel(in.Dir, p.Location.File)
		if file == "" || strings.HasPrefix(file, "..") {
			file = p.Location.File
		}
		res.Findings = append(res.Findings, factory.Finding{Gate: factory.GateLint, Rule: p.Code, File: filepath.ToSlash(file),
			Line: p.Location.Line, Severity: p.Severity, Message: p.Message, Blocking: true})
	}
	res.Passed = len(res.Findings) == 0
	if res.Passed {
		res.Summary = "go vet and staticcheck found nothing"
	} else {
		res.Summary = fmt.Sprintf("%d finding(s), first %s", len(res.Findings), res.Findings[0].String())
	}
	return res, nil, nil
}

// ContractsGate applies PROST's contract gates A, B and C to the module's
// event contracts (contracts/) with their schemas (schemas/), and checks each
// schema against the tenant's registry: a subject the tenant already has must
// accept the new schema under its compatibility mode.
type ContractsGate struct{}

// Name is "contracts".
func (ContractsGate) Name() string { return factory.GateContracts }

// Blocking is true.
func (ContractsGate) Blocking() bool { return true }

// Run lints the contracts and checks the schemas.
func (ContractsGate) Run(ctx context.Context, s *Service, in GateInput) (factory.GateResult, *GateExtra, error) {
	res := factory.GateResult{Gate: factory.GateContracts, Blocking: true, Tool: "prost contracts lint (gates A, B, C); registry compatibility"}
	cdir, sdir := filepath.Join(in.Dir, "contracts"), filepath.Join(in.Dir, "schemas")
	if _, err := os.Stat(cdir); err != nil {
		res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "contracts", File: "contracts/", Severity: "error",
			Message: "the module has no contracts for its events", Blocking: true})
		res.Summary = "no contracts"
		return res, nil, nil
	}
	reports, err := contracts.LintPaths([]string{cdir}, sdir)
	if err != nil {
		return res, nil, err
	}
	checked := 0
	for _, r := range reports {
		file, _ := filepath.Rel(in.Dir, r.Path)
		file = filepath.ToSlash(file)
		for _, f := range r.Findings {
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "gate " + f.Gate, File: file, Severity: "error",
				Message: f.Field + ": " + f.Message, Blocking: true})
		}
		checked++
		if r.Type == "" || s.cfg.Registry == nil {
			continue
		}
		typ := r.Type
		text, err := os.ReadFile(filepath.Join(sdir, typ, "v1.json"))
		if err != nil {
			continue // reported by the lint when the contract names it
		}
		if s.cfg.Registry.IsPlatform(typ) {
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "registry", File: "schemas/" + typ + "/v1.json",
				Severity: "error", Message: typ + " is one of PROST's own event types", Blocking: true})
			continue
		}
		cr, err := s.cfg.Registry.CheckCompatibility(ctx, in.Tenant, typ, "", text)
		switch {
		case errors.Is(err, registry.ErrSubjectNotFound):
			// A new subject: nothing to be compatible with.
		case err != nil:
			res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "registry", File: "schemas/" + typ + "/v1.json",
				Severity: "error", Message: err.Error(), Blocking: true})
		case !cr.Compatible:
			for _, m := range cr.Messages {
				res.Findings = append(res.Findings, factory.Finding{Gate: res.Gate, Rule: "registry-compatibility", File: "schemas/" + typ + "/v1.json",
					Severity: "error", Message: m, Blocking: true})
			}
		}
	}
	res.Passed = len(res.Findings) == 0
	if res.Passed {
		res.Summary = fmt.Sprintf("%d contract(s) pass gates A, B and C and the tenant's registry", checked)
	} else {
		res.Summary = fmt.Sprintf("%d finding(s), first %s", len(res.Findings), res.Findings[0].String())
	}
	return res, nil, nil
}
