package factorysvc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// LocalDeployer deploys builds as processes on this host (target local):
// each module runs its binary with its migrations against a schema of its
// own in the module database, answers its health check, and replaces the
// module's previous build only then; a build that fails its check is
// stopped, its migrations are reverted to the previous build's and the
// previous build keeps serving (rollback). When the service stops it stops
// the modules; when it starts it starts the active ones again.
type LocalDeployer struct {
	// Dir holds the deployed binaries and their logs.
	Dir string
	// DatabaseURL is the module database (Config.ModuleDatabaseURL).
	DatabaseURL string
	Store       *factory.Store
	// HealthTimeout bounds a health check.
	HealthTimeout time.Duration
	Log           *slog.Logger

	mu    sync.Mutex
	procs map[string]*moduleProc // by tenant/module
	ctx   context.Context
}

// moduleProc is a running module.
type moduleProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	addr   string
	bin    string
	digest string
	runID  uuid.UUID
}

func procKey(tenant uuid.UUID, module string) string { return tenant.String() + "/" + module }

// Run starts the active local deployments, waits for ctx to end, then stops
// every module it runs.
func (d *LocalDeployer) Run(ctx context.Context) error {
	d.mu.Lock()
	d.ctx = ctx
	if d.procs == nil {
		d.procs = map[string]*moduleProc{}
	}
	d.mu.Unlock()
	if d.DatabaseURL != "" {
		d.reconcile(ctx)
	}
	<-ctx.Done()
	d.mu.Lock()
	procs := d.procs
	d.procs = map[string]*moduleProc{}
	d.mu.Unlock()
	for _, p := range procs {
		p.stop()
	}
	return nil
}

// reconcile starts the active deployments' modules (after a restart).
func (d *LocalDeployer) reconcile(ctx context.Context) {
	deps, tenants, err := d.Store.ActiveDeployments(ctx, factory.TargetLocal)
	if err != nil {
		d.Log.Warn("factory: cannot list the active deployments", "error", err)
		return
	}
	for i, dep := range deps {
		k := factory.RunKey{ID: dep.RunID, TenantID: tenants[i], Module: dep.Module}
		bin, err := d.binary(ctx, k, dep.BinaryDigest)
		if err != nil {
			d.Log.Warn("factory: cannot restore a deployed module", "module", dep.Module, "run_id", dep.RunID, "error", err)
			continue
		}
		p, err := d.start(ctx, k, bin, dep.BinaryDigest)
		if err == nil {
			err = d.health(ctx, p)
		}
		if err != nil {
			d.Log.Warn("factory: a deployed module does not start", "module", dep.Module, "run_id", dep.RunID, "error", err)
			p.stop()
			continue
		}
		d.keep(k, p)
		_ = d.Store.SetDeployment(ctx, k.TenantID, dep.ID, factory.DeploymentActive, p.addr, "started again after a restart")
	}
}

// binary writes the build with digest into the deployment directory (from
// the run's artifact) and returns its path.
func (d *LocalDeployer) binary(ctx context.Context, k factory.RunKey, digest string) (string, error) {
	dir := filepath.Join(d.Dir, k.TenantID.String(), k.Module, digest)
	bin := filepath.Join(dir, k.Module)
	if b, err := os.ReadFile(bin); err == nil && factory.Digest(b) == digest {
		return bin, nil
	}
	_, body, err := d.Store.Artifact(ctx, k.TenantID, k.ID, artBinary(k.Module))
	if err != nil {
		return "", err
	}
	if factory.Digest(body) != digest {
		return "", fmt.Errorf("the stored binary of run %s does not match its sha256", k.ID)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	tmp := bin + ".tmp"
	if err := os.WriteFile(tmp, body, 0o700); err != nil { //nolint:gosec // the module's binary, run by the deployer
		return "", err
	}
	return bin, os.Rename(tmp, bin)
}

// moduleSchema is the schema a tenant's module lives in.
func moduleSchema(tenant uuid.UUID, module string) string {
	return "m_" + hex.EncodeToString(tenant[:6]) + "_" + strings.ReplaceAll(module, "-", "_")
}

// moduleDatabaseURL is DatabaseURL working in schema.
func moduleDatabaseURL(base, schema string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("the module database URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// ensureDatabase creates the database dsn names when it does not exist
// (connecting to the server's postgres database for that).
func ensureDatabase(ctx context.Context, dsn string) error {
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		return c.Close(ctx)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("the module database URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("the module database: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create the module database %s: %w", name, err)
	}
	return nil
}

// ensureSchema creates schema in the module database (and the database).
func ensureSchema(ctx context.Context, base, schema string) error {
	if err := ensureDatabase(ctx, base); err != nil {
		return err
	}
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("the module database: %w", err)
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize())
	return err
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs a module's binary (serve: migrations, then HTTP) on a free port.
func (d *LocalDeployer) start(ctx context.Context, k factory.RunKey, bin, digest string) (*moduleProc, error) {
	schema := moduleSchema(k.TenantID, k.Module)
	if err := ensureSchema(ctx, d.DatabaseURL, schema); err != nil {
		return nil, err
	}
	dsn, err := moduleDatabaseURL(d.DatabaseURL, schema)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(bin), "module.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	p, err := startProcess(bin, sandboxEnv("DATABASE_URL="+dsn, "ADDR="+addr), logf)
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	p.addr, p.digest, p.runID = addr, digest, k.ID
	go func() {
		<-p.done
		_ = logf.Close()
	}()
	return p, nil
}

// startProcess runs "<bin> serve" with env, its output to out, in a process
// group of its own that dies with this process.
func startProcess(bin string, env []string, out io.Writer) (*moduleProc, error) {
	cmd := exec.Command(bin, "serve") //nolint:gosec // the module's own binary
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &moduleProc{cmd: cmd, done: make(chan struct{}), bin: bin}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop terminates a module: SIGTERM, then SIGKILL after 10 seconds.
func (p *moduleProc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// health waits until the module answers GET /healthz with 200.
func (d *LocalDeployer) health(ctx context.Context, p *moduleProc) error {
	ctx, cancel := context.WithTimeout(ctx, d.HealthTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = "GET /healthz answered " + resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("the module exited (%v) before its health check passed: %s", p.cmd.ProcessState, tailFile(filepath.Join(filepath.Dir(p.bin), "module.log"), 800))
		case <-ctx.Done():
			return fmt.Errorf("no healthy answer within %s: %s", d.HealthTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	return tail(string(b), n)
}

// keep records p as the running module of k, stopping the one it replaces.
func (d *LocalDeployer) keep(k factory.RunKey, p *moduleProc) {
	d.mu.Lock()
	if d.procs == nil {
		d.procs = map[string]*moduleProc{}
	}
	prev := d.procs[procKey(k.TenantID, k.Module)]
	d.procs[procKey(k.TenantID, k.Module)] = p
	d.mu.Unlock()
	if prev != nil && prev != p {
		prev.stop()
	}
}

// running is the module of k this deployer runs, or nil.
func (d *LocalDeployer) running(k factory.RunKey) *moduleProc {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.procs[procKey(k.TenantID, k.Module)]
	if p != nil {
		select {
		case <-p.done:
			return nil
		default:
		}
	}
	return p
}

// migrationsOf runs "<bin> migrate <what>" against the module's schema and
// returns the number it prints.
func (d *LocalDeployer) migrationsOf(ctx context.Context, k factory.RunKey, bin string, args ...string) (int, error) {
	dsn, err := moduleDatabaseURL(d.DatabaseURL, moduleSchema(k.TenantID, k.Module))
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := command(ctx, filepath.Dir(bin), sandboxEnv("DATABASE_URL="+dsn), bin, append([]string{"migrate"}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("%s migrate %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, tail(string(out), 500))
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n, nil
}

// deployOutcome is what a deployment reports.
type deployOutcome struct {
	Deployment *factory.Deployment
	Failure    string
}

// Deploy runs run k's binary (digest) in place of the module's active
// deployment, or rolls back to it.
func (d *LocalDeployer) Deploy(ctx context.Context, k factory.RunKey, digest string) (deployOutcome, error) {
	if d.DatabaseURL == "" {
		return deployOutcome{Failure: "the local target needs the module database (PROST_FACTORY_DATABASE_URL)"}, nil
	}
	bin, err := d.binary(ctx, k, digest)
	if err != nil {
		return deployOutcome{}, err
	}
	prev, err := d.Store.ActiveDeployment(ctx, k.TenantID, k.Module, factory.TargetLocal)
	if err != nil {
		return deployOutcome{}, err
	}
	if prev != nil && prev.RunID == k.ID && prev.BinaryDigest == digest {
		if p := d.running(k); p != nil {
			return deployOutcome{Deployment: prev}, nil // a resumed deploy that had finished
		}
	}
	p, err := d.start(ctx, k, bin, digest)
	if err != nil {
		return deployOutcome{}, err
	}
	if herr := d.health(ctx, p); herr != nil {
		p.stop()
		if ctx.Err() != nil {
			return deployOutcome{}, ctx.Err()
		}
		detail := "health check failed: " + herr.Error()
		status := factory.DeploymentFailed
		if prev != nil {
			status = factory.DeploymentRolledBack
			prevK := factory.RunKey{ID: prev.RunID, TenantID: k.TenantID, Module: k.Module}
			prevBin, err := d.binary(ctx, prevK, prev.BinaryDigest)
			if err != nil {
				return deployOutcome{}, err
			}
			target, err := d.migrationsOf(ctx, prevK, prevBin, "latest")
			if err != nil {
				return deployOutcome{}, err
			}
			if _, err := d.migrationsOf(ctx, k, bin, "down", strconv.Itoa(target)); err != nil {
				detail += "; reverting its migrations failed: " + err.Error()
			}
			if d.running(prevK) == nil {
				pp, err := d.start(ctx, prevK, prevBin, prev.BinaryDigest)
				if err == nil {
					err = d.health(ctx, pp)
				}
				if err != nil {
					pp.stop()
					detail += "; the previous build does not start again either: " + err.Error()
				} else {
					d.keep(prevK, pp)
					_ = d.Store.SetDeployment(ctx, k.TenantID, prev.ID, factory.DeploymentActive, pp.addr, "serving again after a failed deploy of run "+k.ID.String())
				}
			}
			detail += fmt.Sprintf("; rolled back to run %s (migrations back to %d)", prev.RunID, target)
		}
		dep, err := d.Store.RecordDeployment(ctx, k, factory.Deployment{Target: factory.TargetLocal, Status: status, BinaryDigest: digest, Detail: detail})
		if err != nil {
			return deployOutcome{}, err
		}
		return deployOutcome{Deployment: dep, Failure: detail}, nil
	}
	migrations, err := d.migrationsOf(ctx, k, bin, "version")
	if err != nil {
		p.stop()
		return deployOutcome{}, err
	}
	dep, err := d.Store.RecordDeployment(ctx, k, factory.Deployment{Target: factory.TargetLocal, Status: factory.DeploymentActive,
		BinaryDigest: digest, Address: p.addr, Migrations: migrations, Detail: "serving on http://" + p.addr})
	if err != nil {
		p.stop()
		return deployOutcome{}, err
	}
	d.keep(k, p)
	return deployOutcome{Deployment: dep}, nil
}

// deployResult is what the deploy stage reports.
type deployResult struct {
	Target     factory.Target      `json:"target"`
	Deployment *factory.Deployment `json:"deployment,omitempty"`
	Files      []string            `json:"files,omitempty"`
	Failure    string              `json:"failure,omitempty"`
}

// deploy is the deploy stage's step.
func (g *saga) deploy(c context.Context, build buildResult) (deployResult, error) {
	s := g.s
	res := deployResult{Target: g.info.DeployTarget}
	var products []factory.Subject
	switch g.info.DeployTarget {
	case factory.TargetCompose:
		files, findings := composeFiles(g.k, build)
		for _, name := range []string{"deploy/Dockerfile", "deploy/compose.yaml"} {
			a, err := s.store.PutArtifact(c, g.k, factory.StageDeploy, name, "text/plain; charset=utf-8", files[name])
			if err != nil {
				return res, err
			}
			products = append(products, factory.Subject{Name: a.Name, Digest: a.Digest})
			res.Files = append(res.Files, name)
		}
		if len(findings) > 0 {
			res.Failure = "the compose deployment does not validate: " + strings.Join(findings, "; ")
			return res, nil
		}
		dep, err := s.store.RecordDeployment(c, g.k, factory.Deployment{Target: factory.TargetCompose, Status: factory.DeploymentActive,
			BinaryDigest: build.Binary.Digest, Detail: "written: deploy/Dockerfile and deploy/compose.yaml (docker compose up --build runs them)"})
		if err != nil {
			return res, err
		}
		res.Deployment = dep
	default:
		out, err := s.deployer.Deploy(c, g.k, build.Binary.Digest)
		if err != nil {
			return res, err
		}
		res.Deployment = out.Deployment
		if out.Failure != "" {
			res.Failure = out.Failure
			return res, nil
		}
		b, _ := json.MarshalIndent(out.Deployment, "", "  ")
		a, err := s.store.PutArtifact(c, g.k, factory.StageDeploy, artDeploy, mediaJSON, b)
		if err != nil {
			return res, err
		}
		products = append(products, factory.Subject{Name: a.Name, Digest: a.Digest})
	}
	link, err := factory.LinkStatement(factory.StageDeploy, []string{"prost", "factory", "deploy", string(g.info.DeployTarget)},
		[]factory.Subject{{Name: build.Binary.Name, Digest: build.Binary.Digest}}, products, nil, g.env())
	if err != nil {
		return res, err
	}
	if _, err := s.store.SignArtifact(c, g.k, factory.StageDeploy, factory.LinkArtifact(factory.StageDeploy), link); err != nil {
		return res, err
	}
	return res, nil
}

// composeFiles writes the Dockerfile and compose service of a build and
// validates them; it returns the files and what does not validate.
func composeFiles(k factory.RunKey, build buildResult) (map[string][]byte, []string) {
	mod := k.Module
	envName := strings.ToUpper(strings.ReplaceAll(mod, "-", "_")) + "_DATABASE_URL"
	docker := fmt.Sprintf(`# Generated by PROST's factory for run %[1]s: the %[2]s module, built from
# its tested source (sha256 %[3]s). Build context: the module's source tree.
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/%[2]s .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/%[2]s /usr/local/bin/%[2]s
USER nonroot:nonroot
ENV ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/%[2]s", "health"]
ENTRYPOINT ["/usr/local/bin/%[2]s"]
CMD ["serve"]
`, k.ID, mod, build.Source.Digest)
	compose := fmt.Sprintf(`# Generated by PROST's factory for run %[1]s. With the module's source
# tree beside deploy/: %[3]s=postgres://... docker compose -f deploy/compose.yaml up --build
services:
  %[2]s:
    build:
      context: ..
      dockerfile: deploy/Dockerfile
    environment:
      DATABASE_URL: ${%[3]s:?set the database of the %[2]s module}
      ADDR: 0.0.0.0:8080
    ports:
      - "127.0.0.1:8080:8080"
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    healthcheck:
      test: ["CMD", "/usr/local/bin/%[2]s", "health"]
      interval: 10s
      timeout: 3s
      retries: 3
    restart: unless-stopped
`, k.ID, mod, envName)
	files := map[string][]byte{"deploy/Dockerfile": []byte(docker), "deploy/compose.yaml": []byte(compose)}
	return files, validateCompose(mod, files)
}

// validateCompose checks what a container engine would need and what PROST
// requires of a deployment: a build from the module's tree, a non-root user,
// a health check, no privileges, and no secret in the file.
func validateCompose(mod string, files map[string][]byte) []string {
	var bad []string
	var doc struct {
		Services map[string]struct {
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Privileged  bool              `yaml:"privileged"`
			NetworkMode string            `yaml:"network_mode"`
			Healthcheck *struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			CapDrop []string `yaml:"cap_drop"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(files["deploy/compose.yaml"], &doc); err != nil {
		return []string{"compose.yaml: " + err.Error()}
	}
	svc, ok := doc.Services[mod]
	switch {
	case !ok:
		bad = append(bad, "compose.yaml: no service "+mod)
	default:
		if svc.Build == nil || svc.Build.Dockerfile != "deploy/Dockerfile" {
			bad = append(bad, "compose.yaml: the service does not build deploy/Dockerfile")
		}
		if svc.Privileged || svc.NetworkMode == "host" {
			bad = append(bad, "compose.yaml: the service runs privileged or on the host network")
		}
		if svc.Healthcheck == nil || len(svc.Healthcheck.Test) == 0 {
			bad = append(bad, "compose.yaml: the service has no health check")
		}
		if v := svc.Environment["DATABASE_URL"]; !strings.HasPrefix(v, "${") {
			bad = append(bad, "compose.yaml: DATABASE_URL must come from the environment, not the file")
		}
	}
	df := string(files["deploy/Dockerfile"])
	for _, want := range []string{"FROM ", "USER nonroot", "HEALTHCHECK ", "ENTRYPOINT "} {
		if !strings.Contains(df, want) {
			bad = append(bad, "Dockerfile: no "+strings.TrimSpace(want))
		}
	}
	for _, l := range strings.Split(df, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "FROM" && !strings.Contains(f[1], ":") && !strings.Contains(f[1], "@") {
			bad = append(bad, "Dockerfile: base image "+f[1]+" is not pinned to a tag or digest")
		}
		if strings.HasPrefix(strings.TrimSpace(l), "ADD http") {
			bad = append(bad, "Dockerfile: ADD from a URL")
		}
	}
	return bad
}
