// Package factory is PROST's software factory: a run turns a module request
// (a Pack0, docs/factory.md) into a module that compiles, passes its tests and
// every gate, is approved, signed and deployed, with a record of each step
// that can be verified later.
//
// This package holds the domain: runs, stages, gates and their findings, the
// Pack0 model and its gate, the events every stage and gate emits into the
// tenant's stream (through the outbox, in the transaction that records the
// step), the PEC chain (in-toto statements, the approval record and the SLSA
// provenance manifest, signed as DSSE with a key kept per tenant) and its
// verification. The saga that drives a run - a durable workflow on DBOS with
// the executors, the gate tools and the deployers - is services/factory; it
// plugs in here as an Engine, so this package needs no workflow engine and no
// gate tool.
//
// A run's stages, in order: pack0, codegen, testgen, tests (with the
// self-healing loop), gates, approval, manifest, deploy. A run is started by a
// factory.module.requested event (its id is the run's dedup key) or by POST
// /v1/factory/runs, which records that event too.
package factory

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/problem"
)

// State is how much a run checks.
type State string

const (
	// Normal runs every gate; the blocking ones fail closed, and a deploy
	// needs an approval unless the run has auto-deploy and every gate passed.
	Normal State = "NORMAL"
	// Pressao ("pressão", pressure) is the fast MVP mode: only the secrets,
	// contracts and tests gates run, and the run is marked MVP.
	Pressao State = "PRESSAO"
)

// Target is where a build is deployed.
type Target string

const (
	// TargetLocal runs the built module as a process on the factory's host,
	// with its migrations, a health check and rollback to the previous build.
	TargetLocal Target = "local"
	// TargetCompose writes and validates a Dockerfile and a compose service;
	// running them needs a container engine (docs/factory.md).
	TargetCompose Target = "compose"
)

// Status is where a run stands.
type Status string

// The statuses of a run. queued: waiting for its turn (one active run per
// tenant and module); running; awaiting_approval: stopped at the approval
// stage until someone approves or rejects it; then one of the final ones.
const (
	StatusQueued           Status = "queued"
	StatusRunning          Status = "running"
	StatusAwaitingApproval Status = "awaiting_approval"
	StatusSucceeded        Status = "succeeded"
	StatusFailed           Status = "failed"
	StatusRejected         Status = "rejected"
	StatusCancelled        Status = "cancelled"
)

// Final reports whether a run with status s has ended.
func (s Status) Final() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusRejected, StatusCancelled:
		return true
	}
	return false
}

// Stage is a step of a run.
type Stage string

// The stages, in the order a run goes through them.
const (
	StagePack0    Stage = "pack0"
	StageCodegen  Stage = "codegen"
	StageTestgen  Stage = "testgen"
	StageTests    Stage = "tests"
	StageGates    Stage = "gates"
	StageApproval Stage = "approval"
	StageManifest Stage = "manifest"
	StageDeploy   Stage = "deploy"
)

// Stages lists every stage in order.
var Stages = []Stage{StagePack0, StageCodegen, StageTestgen, StageTests, StageGates, StageApproval, StageManifest, StageDeploy}

// Position is the stage's index in Stages, or -1.
func (s Stage) Position() int { return slices.Index(Stages, s) }

// ParseStage reads a stage name.
func ParseStage(s string) (Stage, error) {
	st := Stage(strings.ToLower(strings.TrimSpace(s)))
	if st.Position() < 0 {
		return "", fmt.Errorf("unknown stage %q (stages: %s)", s, stageList())
	}
	return st, nil
}

func stageList() string {
	names := make([]string, len(Stages))
	for i, s := range Stages {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// The gates a run can pass through. The pack0 gate runs in the pack0 stage and
// the tests gate in the tests stage; the others in the gates stage.
const (
	GatePack0     = "pack0"
	GateTests     = "tests"
	GateLint      = "lint"
	GateSecrets   = "secrets"
	GateSAST      = "sast"
	GateVulns     = "vulns"
	GateDeps      = "deps"
	GateSBOM      = "sbom"
	GateContracts = "contracts"
	GatePerf      = "perf"
)

// EventType names of the factory's events.
const (
	TypeModuleRequested = "factory.module.requested"
	TypeStageStarted    = "factory.stage.started"
	TypeStageSucceeded  = "factory.stage.succeeded"
	TypeStageFailed     = "factory.stage.failed"
	TypeGatePassed      = "factory.gate.passed"
	TypeGateFailed      = "factory.gate.failed"
)

// Source is the CloudEvents source of the events the factory emits, and of
// the factory.module.requested events POST /v1/factory/runs records.
const Source = "/prost/factory"

// Request asks for a module: the data of a factory.module.requested event
// and the body of POST /v1/factory/runs.
type Request struct {
	// Module is the module's name; it must equal the Pack0's module.
	Module string `json:"module"`
	// Pack0 is the module's requirements (JSON; the CLI also reads YAML).
	// Absent, the run reuses the Pack0 of the module's latest run.
	Pack0 json.RawMessage `json:"pack0,omitempty"`
	// State defaults to NORMAL.
	State State `json:"state,omitempty"`
	// AutoDeploy deploys without waiting for an approval: in NORMAL only
	// when every gate passed.
	AutoDeploy bool `json:"auto_deploy,omitempty"`
	// DeployTarget defaults to local.
	DeployTarget Target `json:"deploy_target,omitempty"`
	// DryRun stops after the gates: no approval, manifest or deploy.
	DryRun bool `json:"dry_run,omitempty"`
	// RequestedBy names who asked (free text, such as user@host).
	RequestedBy string `json:"requested_by,omitempty"`
}

var moduleRe = regexp.MustCompile(`^[a-z][a-z0-9-]{1,39}$`)

// MaxPack0Bytes bounds a Pack0 document.
const MaxPack0Bytes = 256 << 10

// Normalize fills the defaults and checks the request, returning a problem
// naming each failing field.
func (r *Request) Normalize() error {
	var fields []problem.FieldError
	add := func(f, msg string) { fields = append(fields, problem.FieldError{Field: f, Detail: msg}) }
	r.Module = strings.TrimSpace(r.Module)
	switch {
	case r.Module == "":
		add("module", "required: the module's name")
	case !moduleRe.MatchString(r.Module):
		add("module", "2 to 40 lower-case letters, digits and '-', starting with a letter")
	}
	switch r.State = State(strings.ToUpper(string(r.State))); r.State {
	case "":
		r.State = Normal
	case Normal, Pressao:
	default:
		add("state", fmt.Sprintf("%q: want NORMAL or PRESSAO", r.State))
	}
	switch r.DeployTarget {
	case "":
		r.DeployTarget = TargetLocal
	case TargetLocal, TargetCompose:
	default:
		add("deploy_target", fmt.Sprintf("%q: want local or compose", r.DeployTarget))
	}
	if len(r.Pack0) > MaxPack0Bytes {
		add("pack0", "at most 256 KiB")
	} else if len(r.Pack0) > 0 && string(r.Pack0) != "null" {
		var obj map[string]any
		if err := json.Unmarshal(r.Pack0, &obj); err != nil {
			add("pack0", "a JSON object (the Pack0 document)")
		} else if m, ok := obj["module"].(string); ok && r.Module != "" && m != r.Module {
			add("pack0", fmt.Sprintf("the Pack0 describes module %q, not %q", m, r.Module))
		}
	} else {
		r.Pack0 = nil
	}
	if len(r.RequestedBy) > 200 {
		add("requested_by", "at most 200 characters")
	}
	if len(fields) > 0 {
		e := problem.Errorf(problem.Invalid, "the module request is invalid")
		e.Fields = fields
		return e
	}
	return nil
}

// Run is one run of the factory.
type Run struct {
	ID           uuid.UUID  `json:"id"`
	TenantID     uuid.UUID  `json:"-"`
	Module       string     `json:"module"`
	State        State      `json:"state"`
	Status       Status     `json:"status"`
	Stage        Stage      `json:"stage,omitempty"`
	AutoDeploy   bool       `json:"auto_deploy"`
	DeployTarget Target     `json:"deploy_target"`
	DryRun       bool       `json:"dry_run"`
	MVP          bool       `json:"mvp"`
	RequestedBy  string     `json:"requested_by,omitempty"`
	Request      EventRef   `json:"request"`
	RerunOf      *uuid.UUID `json:"rerun_of,omitempty"`
	RerunFrom    Stage      `json:"rerun_from,omitempty"`
	Error        string     `json:"error,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	// Pack0 is the document as sent; omitted from lists.
	Pack0 json.RawMessage `json:"pack0,omitempty"`
	// Stages and Gates are filled by Runs.Get.
	Stages []StageRecord `json:"stages,omitempty"`
	Gates  []GateRecord  `json:"gates,omitempty"`
	// Deployment is the run's deployment, when it was deployed.
	Deployment *Deployment `json:"deployment,omitempty"`
}

// EventRef names an event.
type EventRef struct {
	Source string `json:"source"`
	ID     string `json:"id"`
}

// StageRecord is how a stage of a run went.
type StageRecord struct {
	Stage      Stage           `json:"stage"`
	Status     string          `json:"status"`
	Executions int             `json:"executions"`
	Reused     bool            `json:"reused,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	Error      string          `json:"error,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// GateRecord is a gate's verdict.
type GateRecord struct {
	Gate       string     `json:"gate"`
	Status     string     `json:"status"`
	Blocking   bool       `json:"blocking"`
	Tool       string     `json:"tool,omitempty"`
	Executions int        `json:"executions"`
	Summary    string     `json:"summary,omitempty"`
	Findings   int        `json:"findings"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Finding is one thing a gate found. Blocking findings fail their gate.
type Finding struct {
	Gate     string `json:"gate"`
	Rule     string `json:"rule"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Severity string `json:"severity,omitempty"`
	Message  string `json:"message"`
	Blocking bool   `json:"blocking"`
}

// String is "file:line rule: message".
func (f Finding) String() string {
	loc := f.File
	if f.Line > 0 {
		loc = fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	if loc != "" {
		loc += " "
	}
	return loc + f.Rule + ": " + f.Message
}

// GateResult is what a gate reports.
type GateResult struct {
	Gate     string    `json:"gate"`
	Passed   bool      `json:"passed"`
	Blocking bool      `json:"blocking"`
	Tool     string    `json:"tool,omitempty"`
	Summary  string    `json:"summary"`
	Findings []Finding `json:"findings,omitempty"`
	// Skipped is set when the gate did not run (and says why in Summary).
	Skipped bool `json:"skipped,omitempty"`
}

// Attempt is one try of the tests stage's self-healing loop.
type Attempt struct {
	Attempt int       `json:"attempt"`
	Passed  bool      `json:"passed"`
	Output  string    `json:"output,omitempty"`
	Healer  string    `json:"healer,omitempty"`
	Healed  string    `json:"healed,omitempty"`
	At      time.Time `json:"at"`
}

// LogLine is one line of a run's log.
type LogLine struct {
	ID    int64     `json:"id"`
	Stage Stage     `json:"stage,omitempty"`
	Line  string    `json:"line"`
	At    time.Time `json:"at"`
}

// Artifact is a named output of a run, stored by digest.
type Artifact struct {
	Name      string    `json:"name"`
	Digest    string    `json:"sha256"`
	MediaType string    `json:"media_type"`
	Stage     Stage     `json:"stage"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
}

// Approval is a decision on a run waiting at its approval stage.
type Approval struct {
	Decision  string    `json:"decision"` // approve | reject
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason,omitempty"`
	Automatic bool      `json:"automatic,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// The decisions of an Approval.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Deployment is a deployed build of a module.
type Deployment struct {
	ID           int64     `json:"id"`
	Module       string    `json:"module"`
	Target       Target    `json:"target"`
	RunID        uuid.UUID `json:"run_id"`
	Status       string    `json:"status"`
	BinaryDigest string    `json:"binary_sha256,omitempty"`
	Address      string    `json:"address,omitempty"`
	Migrations   int       `json:"migrations"`
	Detail       string    `json:"detail,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Statuses of a deployment.
const (
	DeploymentActive     = "active"
	DeploymentSuperseded = "superseded"
	DeploymentFailed     = "failed"
	DeploymentRolledBack = "rolled_back"
)

// runNamespace derives run ids from the request event that started them.
var runNamespace = uuid.MustParse("6f2f7a4e-3c1b-5d0e-9a57-1f0c2b8e4d61")

// RunIDFor is the id of the run a factory.module.requested event starts: the
// same for every delivery of the event, so an event starts one run.
func RunIDFor(tenant uuid.UUID, source, id string) uuid.UUID {
	return uuid.NewSHA1(runNamespace, []byte(tenant.String()+"\x00"+source+"\x00"+id))
}
