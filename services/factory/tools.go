package factorysvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// The tools a gate needs that are not linked into PROST: staticcheck, built
// from the module proxy at a pinned version, and the Go vulnerability
// database, built from a pinned version of the golang.org/x/vulndb module.
// Both are made once into the tools directory, on first use (a clean
// machine needs only the module proxy, or a module cache that has them).
const (
	StaticcheckModule  = "honnef.co/go/tools/cmd/staticcheck"
	StaticcheckVersion = "v0.8.2"
	VulnDBModule       = "golang.org/x/vulndb"
	VulnDBVersion      = "v0.0.0-20261105234957-e22db6528018"
)

// Tools makes and finds the gate tools in Dir. It is safe for concurrent
// use, also by processes sharing Dir: they take turns (a lock file), and a
// tool appears whole (an atomic rename).
type Tools struct {
	Dir string
	Go  string
	Log *slog.Logger

	mu sync.Mutex
}

// lock takes the tools directory's lock: this process's mutex, then an
// exclusive lock on Dir/.lock shared with other processes.
func (t *Tools) lock() (func(), error) {
	t.mu.Lock()
	if err := os.MkdirAll(t.Dir, 0o750); err != nil {
		t.mu.Unlock()
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(t.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.mu.Unlock()
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		t.mu.Unlock()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
		t.mu.Unlock()
	}, nil
}

// toolEnv is the environment of the go commands that fetch tools.
func toolEnv(extra ...string) []string {
	return append(sandboxEnv("GOFLAGS="), extra...)
}

// Staticcheck returns the path of the pinned staticcheck, building it first
// when needed.
func (t *Tools) Staticcheck(ctx context.Context) (string, error) {
	bin := filepath.Join(t.Dir, "staticcheck-"+StaticcheckVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	unlock, err := t.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // made by another process meanwhile
	}
	tmp, err := os.MkdirTemp(t.Dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	out, err := command(ctx, tmp, toolEnv("GOBIN="+tmp), t.Go, "install", StaticcheckModule+"@"+StaticcheckVersion)
	if err != nil {
		return "", fmt.Errorf("build staticcheck %s: %v: %s", StaticcheckVersion, err, tail(string(out), 1000))
	}
	if err := os.Rename(filepath.Join(tmp, "staticcheck"), bin); err != nil {
		return "", err
	}
	if t.Log != nil {
		t.Log.Info("factory: staticcheck built", "version", StaticcheckVersion, "path", bin, "took", time.Since(start).Round(time.Millisecond))
	}
	return bin, nil
}

// VulnDB returns the directory of the local vulnerability database
// (govulncheck's file:// layout), building it first when needed from the
// OSV entries of the pinned golang.org/x/vulndb module.
func (t *Tools) VulnDB(ctx context.Context) (string, error) {
	dir := filepath.Join(t.Dir, "vulndb-"+VulnDBVersion)
	if _, err := os.Stat(filepath.Join(dir, "index", "modules.json")); err == nil {
		return dir, nil
	}
	unlock, err := t.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "index", "modules.json")); err == nil {
		return dir, nil
	}
	start := time.Now()
	out, err := command(ctx, t.Dir, toolEnv(), t.Go, "mod", "download", "-json", VulnDBModule+"@"+VulnDBVersion)
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %v: %s", VulnDBModule, VulnDBVersion, err, tail(string(out), 1000))
	}
	var dl struct {
		Dir, Info string
	}
	if err := json.Unmarshal(out, &dl); err != nil || dl.Dir == "" {
		return "", fmt.Errorf("download %s: unexpected answer %s", VulnDBModule, tail(string(out), 500))
	}
	modified := time.Time{}
	if b, err := os.ReadFile(dl.Info); err == nil {
		var info struct{ Time time.Time }
		if json.Unmarshal(b, &info) == nil {
			modified = info.Time
		}
	}
	tmp, err := os.MkdirTemp(t.Dir, "vulndb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	n, err := indexVulnDB(filepath.Join(dl.Dir, "data", "osv"), tmp, modified)
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(filepath.Join(dir, "index", "modules.json")); serr != nil {
			return "", err
		}
	}
	if t.Log != nil {
		t.Log.Info("factory: vulnerability database built", "entries", n, "path", dir, "took", time.Since(start).Round(time.Millisecond))
	}
	return dir, nil
}

// indexVulnDB writes govulncheck's database layout (index/db.json,
// index/modules.json, ID/<id>.json) from a directory of OSV entries. The
// modules index omits the fixed versions: govulncheck then reads every entry
// of a module and matches its ranges itself.
func indexVulnDB(src, out string, modified time.Time) (int, error) {
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("no OSV entries in %s", src)
	}
	for _, d := range []string{"ID", "index"} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o750); err != nil {
			return 0, err
		}
	}
	type modVuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
	}
	type modMeta struct {
		Path  string    `json:"path"`
		Vulns []modVuln `json:"vulns"`
	}
	mods := map[string]*modMeta{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		var e struct {
			ID       string    `json:"id"`
			Modified time.Time `json:"modified"`
			Affected []struct {
				Package struct {
					Name string `json:"name"`
				} `json:"package"`
			} `json:"affected"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		if err := os.WriteFile(filepath.Join(out, "ID", e.ID+".json"), b, 0o600); err != nil {
			return 0, err
		}
		seen := map[string]bool{}
		for _, a := range e.Affected {
			p := a.Package.Name
			if seen[p] {
				continue
			}
			seen[p] = true
			if mods[p] == nil {
				mods[p] = &modMeta{Path: p, Vulns: []modVuln{}}
			}
			mods[p].Vulns = append(mods[p].Vulns, modVuln{ID: e.ID, Modified: e.Modified})
		}
	}
	list := make([]*modMeta, 0, len(mods))
	for _, m := range mods {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	mb, _ := json.Marshal(list)
	if err := os.WriteFile(filepath.Join(out, "index", "modules.json"), mb, 0o600); err != nil {
		return 0, err
	}
	db, _ := json.Marshal(map[string]time.Time{"modified": modified})
	return len(files), os.WriteFile(filepath.Join(out, "index", "db.json"), db, 0o600)
}
