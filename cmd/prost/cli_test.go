package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestAppsCLI: the apps commands manage Apps through the admin API, and
// rotation and disabling take effect at once.
func TestAppsCLI(t *testing.T) {
	s := startStack(t, nil)
	out, err := s.cli("apps", "create", "--name", "cli-shop", "--json")
	require.NoError(t, err, out)
	var created map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	require.Len(t, created, 3, "exactly app_id, api_key, api_secret: %s", out)
	for _, k := range []string{"app_id", "api_key", "api_secret"} {
		require.NotEmpty(t, created[k], k)
	}
	app := creds{APIKey: created["api_key"], APISecret: created["api_secret"]}
	ev := `{"specversion":"1.0","id":"c-1","source":"/cli","type":"t"}`
	code, _ := s.post(app, "application/cloudevents+json", ev)
	require.Equal(t, http.StatusAccepted, code)

	out, err = s.cli("apps", "list")
	require.NoError(t, err, out)
	require.Regexp(t, created["app_id"]+`\s+cli-shop\s+`+created["api_key"]+`\s+active`, out)
	require.NotContains(t, out, created["api_secret"], "secrets are never listed")

	// Rotation: the old secret stops working at once, the new one works.
	out, err = s.cli("apps", "rotate-secret", created["app_id"], "--json")
	require.NoError(t, err, out)
	var rotated map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &rotated))
	require.NotEqual(t, created["api_secret"], rotated["api_secret"])
	code, _ = s.post(app, "application/cloudevents+json", ev)
	require.Equal(t, http.StatusUnauthorized, code)
	app.APISecret = rotated["api_secret"]
	code, _ = s.post(app, "application/cloudevents+json", ev)
	require.Equal(t, http.StatusAccepted, code)

	// Disable: refused at once with 403; enable again.
	out, err = s.cli("apps", "disable", created["app_id"])
	require.NoError(t, err, out)
	require.Contains(t, out, "disabled")
	code, _ = s.post(app, "application/cloudevents+json", ev)
	require.Equal(t, http.StatusForbidden, code)
	_, err = s.cli("apps", "enable", created["app_id"])
	require.NoError(t, err)
	code, _ = s.post(app, "application/cloudevents+json", ev)
	require.Equal(t, http.StatusAccepted, code)

	// Errors are clear and exit non-zero.
	_, err = s.cli("apps", "disable", "not-a-uuid")
	require.ErrorContains(t, err, "400")
	_, err = s.cli("apps", "disable", "00000000-0000-0000-0000-000000000000")
	require.ErrorContains(t, err, "404")
	_, err = s.cli("apps", "create")
	var ee exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.code)
	t.Setenv("PROST_ADMIN_TOKEN", "wrong")
	var buf strings.Builder
	err = run(context.Background(), []string{"apps", "list"}, &buf, &buf)
	require.ErrorContains(t, err, "401")
}

// TestMigrateCLI: prost migrate status, down and up on a database of its own.
func TestMigrateCLI(t *testing.T) {
	t.Setenv("DATABASE_URL", strings.Replace(testDB.URL, testDB.Name, testDB.Name+"_migrate", 1))
	t.Cleanup(func() {
		_, _ = testDB.Pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+testDB.Name+"_migrate WITH (FORCE)")
	})
	ctx := context.Background()
	var out strings.Builder
	require.NoError(t, run(ctx, []string{"migrate", "status"}, &out, &out))
	require.Regexp(t, `001\s+apps\s+pending`, out.String())
	require.Contains(t, out.String(), "pending")
	out.Reset()
	require.NoError(t, run(ctx, []string{"migrate", "up"}, &out, &out))
	require.Contains(t, out.String(), "applied 001")
	out.Reset()
	require.NoError(t, run(ctx, []string{"migrate", "up"}, &out, &out))
	require.Contains(t, out.String(), "up to date")
	out.Reset()
	require.NoError(t, run(ctx, []string{"migrate", "down", "all"}, &out, &out))
	require.Contains(t, out.String(), "reverted 001")
	out.Reset()
	require.NoError(t, run(ctx, []string{"migrate", "status"}, &out, &out))
	require.NotContains(t, out.String(), "T", "nothing applied") // applied rows carry an RFC 3339 time
	out.Reset()
	require.NoError(t, run(ctx, []string{"migrate", "up"}, &out, &out))
	require.Contains(t, out.String(), "applied 001")
}

// syncBuffer is a strings.Builder safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevPrintsWorkingCredentials: `prost dev` (what make run runs) starts
// everything on an embedded NATS, prints an admin token, the demo App's
// credentials and a curl that works as printed, and exits cleanly when asked.
func TestDevPrintsWorkingCredentials(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to run the printed curl")
	}
	dbURL := strings.Replace(testDB.URL, testDB.Name, testDB.Name+"_dev", 1)
	t.Cleanup(func() {
		_, _ = testDB.Pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+testDB.Name+"_dev WITH (FORCE)")
	})
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("NATS_URL", "")
	t.Setenv("PROST_ADMIN_TOKEN", "")
	t.Setenv("PROST_DATA_DIR", t.TempDir())
	t.Setenv("PROST_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("PROST_EMBEDDED_NATS_ADDR", "127.0.0.1:0")
	t.Setenv("PROST_NATS_DIR", "../../nats")
	t.Setenv("PROST_LOG_LEVEL", "warn")
	t.Setenv("PROST_PARTITIONS", "")
	dataDir := os.Getenv("PROST_DATA_DIR")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"dev"}, &out, &out) }()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "docs/subscriptions.md") }, 30*time.Second, 20*time.Millisecond)
	text := out.String()
	// The bus is private: a client without credentials is refused, the
	// service credentials printed work.
	bus := regexp.MustCompile(`NATS at (\S+) refuses clients without credentials\.\nPROST's services connect with (\S+);`).FindStringSubmatch(text)
	require.Len(t, bus, 3, text)
	_, err := nats.Connect(bus[1])
	require.ErrorIs(t, err, nats.ErrAuthorization)
	nc, err := nats.Connect(bus[1], nats.UserCredentials(bus[2]))
	require.NoError(t, err)
	defer nc.Close()
	// A new data directory runs on one partition (subjects.DevPartitions), recorded
	// for the next start: one durable per consumer on the events stream.
	b, err := os.ReadFile(filepath.Join(dataDir, "partitions"))
	require.NoError(t, err)
	require.Equal(t, "1", strings.TrimSpace(string(b)))
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var durables []string
	require.Eventually(t, func() bool {
		durables = durables[:0]
		st, err := js.Stream(ctx, "PROST_EVENTS")
		if err != nil {
			return false
		}
		names := st.ConsumerNames(ctx)
		for n := range names.Name() {
			durables = append(durables, n)
		}
		return slices.Contains(durables, "rules-engine") && slices.Contains(durables, "billing-usage")
	}, 30*time.Second, 50*time.Millisecond)
	for _, d := range durables {
		require.NotRegexp(t, `-p[0-9]+$`, d, "no partitioned durables: %v", durables)
	}
	require.Regexp(t, `export PROST_ADMIN_TOKEN=prost_admin_[0-9a-f]{48}`, text)
	curl := regexp.MustCompile(`(?s)(curl -i \S+/v1/events \\.*?-d '[^']*')`).FindString(text)
	require.NotEmpty(t, curl, text)
	if _, err := exec.LookPath("curl"); err == nil {
		res, err := exec.Command("sh", "-c", curl+" -s -o /dev/null -w '%{http_code}'").CombinedOutput()
		require.NoError(t, err, string(res))
		require.Equal(t, "202", strings.TrimSpace(string(res)), "the printed curl records an event")
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "Ctrl-C drains and exits cleanly")
	case <-time.After(30 * time.Second):
		t.Fatal("prost dev did not stop")
	}
}
