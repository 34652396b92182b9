package factorysvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// Executor does the work of a stage that writes code: generating the module
// (codegen), its tests (testgen), or healing it after its tests failed
// (heal). PROST ships a deterministic Generator (codegen and testgen), the
// default Healer, and HTTPExecutor, which hands a stage to an external agent
// (a model-backed generator or healer).
//
// An executor works in Job.Dir, the run's work directory holding the module:
// it reads and writes files there and nowhere else. Commands it runs take
// Job.Env, an allow-listed environment without PROST's settings or secrets.
// Run is bounded by ctx (Config.ExecutorTimeout).
type Executor interface {
	// Name identifies the executor in logs, attempts and the run report.
	Name() string
	// Run does job's action in job.Dir.
	Run(ctx context.Context, job Job) (Output, error)
}

// The actions an executor is asked to do.
const (
	ActionCodegen = "codegen"
	ActionTestgen = "testgen"
	ActionHeal    = "heal"
)

// Job is one piece of work for an executor.
type Job struct {
	RunID  uuid.UUID
	Action string
	// Attempt is, for heal, the test attempt that failed (1-based).
	Attempt int
	// Dir is the module's work directory.
	Dir string
	// Pack0 is the run's checked Pack0; Pack0JSON its document.
	Pack0     *factory.Pack0
	Pack0JSON []byte
	State     factory.State
	// LastFailure is, for heal, the output of the failed test attempt.
	LastFailure string
	// Env is the environment for commands the executor runs.
	Env []string
	// Go is the go command.
	Go string
}

// Output is what an executor reports.
type Output struct {
	// Notes says what it did (kept in the run's log and attempts).
	Notes string `json:"notes,omitempty"`
}

// Executors are the executors of a service's runs. A nil field takes the
// default: the Generator for Codegen and Testgen, the Healer for Healer.
type Executors struct {
	Codegen Executor
	Testgen Executor
	Healer  Executor
}

// AllowedEnv lists the variables a run's commands (executors, go test, the
// gate tools, a deployed module) may see, taken from the service's
// environment when set. Nothing else passes: not DATABASE_URL, NATS_URL or
// any PROST_ setting.
var AllowedEnv = []string{
	"PATH", "HOME", "USER", "TMPDIR", "LANG", "LC_ALL", "TZ",
	"GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GONOPROXY", "GOPRIVATE", "GONOSUMDB", "GOSUMDB", "GOINSECURE", "GOENV",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
}

// sandboxEnv is the allow-listed environment with extra settings: the Go
// toolchain stays the local one, modules resolve from go.mod, no cgo.
func sandboxEnv(extra ...string) []string {
	var env []string
	for _, k := range AllowedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOWORK=off")
	return append(env, extra...)
}

// command runs name with args in dir, with env and bounded by ctx; the
// whole process group is killed when ctx ends. It returns the combined
// output.
func command(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w (timed out)", name, strings.Join(args, " "), ctx.Err())
	}
	return out.Bytes(), err
}

// readTree reads every regular file under dir (skipping .git and the
// factory's own marker) as slash-separated relative paths.
func readTree(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == treeMarker || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += int64(len(b))
		if total > factory.MaxTreeBytes {
			return errors.New("the module is larger than 64 MiB")
		}
		files[rel] = b
		return nil
	})
	return files, err
}

// treeMarker records which stored tree a work directory holds.
const treeMarker = ".prost-tree"

// writeTree replaces dir's contents with files and marks it as tree digest.
func writeTree(dir string, files map[string][]byte, digest string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := factory.CheckTreePath(n); err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o600); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, treeMarker), []byte(digest), 0o600)
}
