package factorysvc_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/prosttest"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// buildModule builds a stdlib module whose health check answers status and
// whose "migrate" prints a fixed count, returning the binary.
func buildModule(t *testing.T, status int) []byte {
	t.Helper()
	dir := t.TempDir()
	src := `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		fmt.Println(1)
		return
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(` + itoa3(status) + `) })
	_ = http.ListenAndServe(os.Getenv("ADDR"), nil)
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.26\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600))
	cmd := exec.Command("go", "build", "-o", "m", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(filepath.Join(dir, "m"))
	require.NoError(t, err)
	return b
}

func itoa3(n int) string {
	if n == 200 {
		return "200"
	}
	return "500"
}

func healthy(t *testing.T, addr string) bool {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// A build that fails its health check is stopped and the module's previous
// build keeps serving (rollback).
func TestLocalDeployRollsBack(t *testing.T) {
	db := prosttest.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	store := factory.NewStore(db.Pool, factory.StoreConfig{})
	d := &factorysvc.LocalDeployer{Dir: t.TempDir(), DatabaseURL: db.URL, Store: store, HealthTimeout: 3 * time.Second, Log: testLogger()}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	tenant := uuid.New()
	good := factory.RunKey{ID: uuid.New(), TenantID: tenant, Module: "svc"}
	bad := factory.RunKey{ID: uuid.New(), TenantID: tenant, Module: "svc"}
	ga, err := store.PutArtifact(ctx, good, factory.StageTests, "bin/svc", "application/octet-stream", buildModule(t, 200))
	require.NoError(t, err)
	ba, err := store.PutArtifact(ctx, bad, factory.StageTests, "bin/svc", "application/octet-stream", buildModule(t, 500))
	require.NoError(t, err)

	out, err := d.Deploy(ctx, good, ga.Digest)
	require.NoError(t, err)
	require.Empty(t, out.Failure)
	require.Equal(t, factory.DeploymentActive, out.Deployment.Status)
	addr := out.Deployment.Address
	require.True(t, healthy(t, addr))

	out, err = d.Deploy(ctx, bad, ba.Digest)
	require.NoError(t, err)
	require.Contains(t, out.Failure, "health check failed")
	require.Contains(t, out.Failure, "rolled back to run "+good.ID.String())
	require.Equal(t, factory.DeploymentRolledBack, out.Deployment.Status)
	active, err := store.ActiveDeployment(ctx, tenant, "svc", factory.TargetLocal)
	require.NoError(t, err)
	require.Equal(t, good.ID, active.RunID)
	require.True(t, healthy(t, active.Address), "the previous build serves again")
	require.True(t, strings.HasPrefix(active.Address, "127.0.0.1:"))
}
