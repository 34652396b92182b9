//go:build chaos

package main

// The chaos suite's real processes: the prost binary, nats-server (one node
// or a three-node cluster) and a private Postgres cluster, each started in its
// own process group so a kill -9 takes everything it spawned.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/natsauth"
)

// proc is one OS process the suite starts, kills and restarts.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	cred    *syscall.Credential
	dir     string // working directory; empty: the test's
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	killed bool // stopped on purpose; an exit is expected
}

// start runs the process; its output is appended to logPath.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== chaos: %s start %s %s\n", time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== chaos: %s exited: %v\n", time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		close(exited)
	}()
	p.cmd, p.exited, p.killed = cmd, exited, false
	return nil
}

// kill sends SIGKILL to the process group and waits for the process to exit.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killed = true
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
	}
}

// exitedUnexpectedly reports whether the process ended without being killed.
func (p *proc) exitedUnexpectedly() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.killed {
		return false
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// tail returns the last n bytes of the process's log.
func (p *proc) tail(n int64) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// procs tracks every process of a test and kills them all in t.Cleanup.
type procs struct {
	t   *testing.T
	mu  sync.Mutex
	all []*proc
}

func newProcs(t *testing.T) *procs {
	ps := &procs{t: t}
	t.Cleanup(func() {
		ps.mu.Lock()
		all := ps.all
		ps.mu.Unlock()
		for i := len(all) - 1; i >= 0; i-- {
			all[i].kill()
		}
	})
	return ps
}

func (ps *procs) add(p *proc) *proc {
	ps.mu.Lock()
	ps.all = append(ps.all, p)
	ps.mu.Unlock()
	return p
}

// dumpOnFailure prints the tail of every log when the test failed.
func (ps *procs) dumpOnFailure() {
	ps.t.Cleanup(func() {
		if !ps.t.Failed() {
			return
		}
		ps.mu.Lock()
		defer ps.mu.Unlock()
		for _, p := range ps.all {
			ps.t.Logf("----- tail of %s (%s) -----\n%s", p.name, p.logPath, p.tail(6000))
		}
	})
}

// removeLater removes dir when the test ends, unless PROST_CHAOS_KEEP is set
// (then its logs stay for a post-mortem).
func removeLater(t *testing.T, dir string) {
	t.Cleanup(func() {
		if os.Getenv("PROST_CHAOS_KEEP") != "" {
			t.Logf("kept %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// chaosBins builds the prost binary from this package and nats-server from
// the module cache (the version pkg/go.mod requires) into dir.
func chaosBins(t *testing.T, dir string) (prostBin, natsBin string) {
	t.Helper()
	prostBin, natsBin = filepath.Join(dir, "prost"), filepath.Join(dir, "nats-server")
	build := func(wd string, args ...string) {
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = wd
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	build(".", "-o", prostBin, ".")
	build(filepath.Join(repoRoot(t), "pkg"), "-o", natsBin, "github.com/nats-io/nats-server/v2")
	return prostBin, natsBin
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// baseEnv is the environment every child starts from: no inherited
// DATABASE_URL, NATS_URL, PROST_* or OTEL_* settings.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "LANG=C", "TZ=UTC"}
}

// ---------------------------------------------------------------- nats-server

// natsNode is one nats-server with JetStream.
type natsNode struct {
	name        string
	port        int
	clusterPort int
	storeDir    string
	confPath    string
	*proc
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// startNATS starts count nats-servers with JetStream in dir; with count > 1
// they form a cluster on loopback. A single node fsyncs every write
// (sync_interval: always, as PROST's single-node configuration does). Every
// node runs the private bus as the container stack does: operator mode with
// the accounts `prost nats-auth init` wrote into dir/auth (keys), a full
// resolver of its own.
func startNATS(t *testing.T, ps *procs, bin, dir string, count int, keys *natsauth.KeySet) []*natsNode {
	t.Helper()
	// Beside the nodes' configuration files: nats-server resolves an include
	// relative to the including file.
	accounts := filepath.Join(dir, "nats-accounts.conf")
	if err := os.WriteFile(accounts, []byte(keys.AccountsConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := make([]*natsNode, count)
	var routes []string
	for i := range nodes {
		n := &natsNode{name: fmt.Sprintf("n%d", i+1), port: freePort(t)}
		if count > 1 {
			n.clusterPort = freePort(t)
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", n.clusterPort))
		}
		nodes[i] = n
	}
	for _, n := range nodes {
		n.storeDir = filepath.Join(dir, "nats-"+n.name)
		n.confPath = filepath.Join(dir, "nats-"+n.name+".conf")
		var conf bytes.Buffer
		fmt.Fprintf(&conf, "server_name: %s\nlisten: 127.0.0.1:%d\nmax_payload: 8MB\n", n.name, n.port)
		conf.WriteString(natsauth.ResolverConfig(filepath.Join(dir, "nats-"+n.name+"-jwt")))
		conf.WriteString("include ./nats-accounts.conf\n") // relative to this file
		if count == 1 {
			fmt.Fprintf(&conf, "jetstream {\n  store_dir: %q\n  sync_interval: always\n}\n", n.storeDir)
		} else {
			fmt.Fprintf(&conf, "jetstream {\n  store_dir: %q\n}\n", n.storeDir)
			fmt.Fprintf(&conf, "cluster {\n  name: prost-chaos\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n",
				n.clusterPort, strings.Join(routes, ", "))
		}
		if err := os.WriteFile(n.confPath, conf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		n.proc = ps.add(&proc{name: "nats-" + n.name, bin: bin, args: []string{"-c", n.confPath},
			env: baseEnv(), logPath: filepath.Join(dir, "nats-"+n.name+".log")})
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
	}
	waitJetStream(t, natsURLs(nodes), keys.ServiceCreds, 60*time.Second)
	return nodes
}

func natsURLs(nodes []*natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url()
	}
	return strings.Join(urls, ",")
}

// connectNATS opens a client connection for the test's own checks, as
// PROST's service user.
func connectNATS(t *testing.T, urls string, creds []byte) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	auth, err := natsauth.ConnectOption(creds)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(urls, nats.Name("prost-chaos-checker"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.RetryOnFailedConnect(true), auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// waitJetStream waits until JetStream answers (on a cluster: a meta leader
// was elected).
func waitJetStream(t *testing.T, urls string, creds []byte, within time.Duration) {
	t.Helper()
	auth, err := natsauth.ConnectOption(creds)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		nc, err := nats.Connect(urls, nats.Timeout(time.Second), auth)
		if err == nil {
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			nc.Close()
			if err == nil {
				return
			}
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("JetStream at %s not ready within %s: %v", urls, within, last)
}

// ---------------------------------------------------------------- Postgres

// pgCluster is a private Postgres cluster made with initdb in a temporary
// directory, run as the postgres OS user when the suite runs as root
// (initdb refuses root).
type pgCluster struct {
	dir, data, sock string
	port            int
	bin             string
	cred            *syscall.Credential
	*proc
}

func postgresBinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", fmt.Errorf("initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin)")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// startPostgres creates and starts a private cluster. Its directory is
// removed, and every process of it killed, when the test ends.
func startPostgres(t *testing.T, ps *procs) *pgCluster {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "prost-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	removeLater(t, dir)
	c := &pgCluster{dir: dir, data: filepath.Join(dir, "data"), sock: filepath.Join(dir, "sock"), port: freePort(t), bin: bin}
	if err := os.Mkdir(c.sock, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres OS user for initdb: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, d := range []string{dir, c.sock} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", c.data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Env = baseEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.proc = ps.add(&proc{name: "postgres", bin: filepath.Join(bin, "postgres"), cred: c.cred, env: baseEnv(),
		logPath: filepath.Join(dir, "postgres.log"),
		args: []string{"-D", c.data, "-p", strconv.Itoa(c.port), "-k", c.sock,
			"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "fsync=on",
			"-c", "synchronous_commit=on", "-c", "shared_buffers=64MB", "-c", "logging_collector=off"}})
	t.Cleanup(c.kill) // before its directory goes
	c.startAndWait(t)
	return c
}

func (c *pgCluster) startAndWait(t *testing.T) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.url("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("private postgres not ready: %v\n%s", err, c.tail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *pgCluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// createDatabase makes a fresh database and returns its URL.
func (c *pgCluster) createDatabase(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return c.url(name)
}

// ---------------------------------------------------------------- prost

// prostProc is one `prost serve <service>` process.
type prostProc struct {
	service string
	addr    string
	*proc
}

// startProst starts `prost serve service` and waits for /readyz.
func startProst(t *testing.T, ps *procs, bin, dir, service string, env []string) *prostProc {
	t.Helper()
	pp := &prostProc{service: service, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	// From the repository root, as `make run` runs it: the default
	// PROST_*_DIR settings (nats/, schemas/) resolve there.
	// A second instance of a service gets a name and a log of its own.
	name := "prost-" + service
	for i := 2; ; i++ {
		if _, err := os.Stat(filepath.Join(dir, name+".log")); err != nil {
			break
		}
		name = fmt.Sprintf("prost-%s-%d", service, i)
	}
	pp.proc = ps.add(&proc{name: name, bin: bin, args: []string{"serve", service}, dir: repoRoot(t),
		env:     append(append(baseEnv(), env...), "PROST_HTTP_ADDR="+pp.addr),
		logPath: filepath.Join(dir, name+".log")})
	pp.restart(t)
	return pp
}

// restart starts the process (again) and waits until it is ready.
func (pp *prostProc) restart(t *testing.T) {
	t.Helper()
	if err := pp.start(); err != nil {
		t.Fatal(err)
	}
	pp.waitReady(t, 60*time.Second)
}

func (pp *prostProc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get("http://" + pp.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if pp.exitedUnexpectedly() {
			t.Fatalf("%s exited during start:\n%s", pp.name, pp.tail(4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s:\n%s", pp.name, within, pp.tail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
