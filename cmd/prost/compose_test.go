package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/prost-platform/prost/pkg/natsauth"
)

// knownEnv lists every environment variable prost reads, found in config.go.
func knownEnv(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("config.go")
	require.NoError(t, err)
	re := regexp.MustCompile(`"((?:PROST|DATABASE|NATS)_[A-Z_]+)"`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	require.Contains(t, out, "DATABASE_URL")
	return out
}

type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
}

// TestComposeMatchesProst: no Docker engine runs here, so the compose file is
// checked against what prost accepts: every PROST container runs a valid
// `prost serve` command, sets only variables prost reads (with values it can
// parse), publishes the port it listens on, and every service exists in it;
// Prometheus scrapes the PROST containers; the dashboard queries PROST metrics
// that exist.
func TestComposeMatchesProst(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var cf composeFile
	require.NoError(t, yaml.Unmarshal(b, &cf))
	known := knownEnv(t)

	served := map[string]bool{}
	natsAuthInit := false
	var prostContainers []string
	for name, svc := range cf.Services {
		if svc.Image != "prost:dev" && svc.Image != "prost-factory:dev" {
			continue
		}
		require.NotNil(t, svc.Build, "%s is built from this repository", name)
		if len(svc.Command) > 1 && svc.Command[0] == "nats-auth" {
			// The one-shot container that makes the private bus's keys: a
			// command prost accepts, writing where the others read.
			root := (&cli{env: envFromOS()}).rootCmd()
			cmd, args, err := root.Find(svc.Command)
			require.NoError(t, err, name)
			require.NoError(t, cmd.ParseFlags(args), name)
			dir, _ := cmd.Flags().GetString("dir")
			serverDir, _ := cmd.Flags().GetString("server-dir")
			require.True(t, mounts(svc.Volumes, dir), "%s writes the keys into a volume", name)
			require.True(t, mounts(svc.Volumes, serverDir), "%s writes the server's accounts.conf into a volume", name)
			natsAuthInit = true
			continue
		}
		prostContainers = append(prostContainers, name)
		require.GreaterOrEqual(t, len(svc.Command), 2, name)
		require.Equal(t, "serve", svc.Command[0], name)
		names, err := parseServices(svc.Command[1:])
		require.NoError(t, err, name)
		for _, n := range names {
			served[n] = true
		}
		for k, v := range svc.Environment {
			require.Contains(t, known, k, "%s sets %s, which prost does not read", name, k)
			if k == "PROST_HTTP_ADDR" {
				_, port, err := net.SplitHostPort(v)
				require.NoError(t, err)
				if len(svc.Ports) > 0 {
					for _, p := range svc.Ports {
						require.True(t, strings.HasSuffix(p, ":"+port), "%s publishes %s but listens on %s", name, p, port)
					}
				}
			}
		}
		require.Contains(t, svc.Environment, "DATABASE_URL", name)
		require.Contains(t, svc.Environment, "NATS_URL", name)
		// The bus is private: every service connects with credentials from
		// the keys' volume, and the gateway mints tenants' with the key set.
		require.True(t, strings.HasPrefix(svc.Environment["PROST_NATS_CREDS"], "/var/lib/prost/nats-auth/"), "%s connects to NATS with credentials", name)
		require.True(t, mounts(svc.Volumes, "/var/lib/prost/nats-auth"), "%s mounts the keys", name)
		if slices.Contains(svc.Command, "gateway") {
			require.Equal(t, "/var/lib/prost/nats-auth", svc.Environment["PROST_NATS_AUTH_DIR"], name)
		}
		// The values parse as prost parses them.
		for k, v := range svc.Environment {
			t.Setenv(k, os.Expand(v, func(string) string { return "x" }))
		}
		badVars = nil
		require.NoError(t, envFromOS().validate(), name)
	}
	for _, s := range services {
		require.True(t, served[s], "no container runs the %s service", s)
	}
	require.True(t, natsAuthInit, "a container runs prost nats-auth init")

	// NATS runs in operator mode with the accounts nats-auth-init wrote, and
	// does not publish its unauthenticated monitoring port.
	conf, err := os.ReadFile("../../nats/nats-server.conf")
	require.NoError(t, err)
	require.Contains(t, string(conf), "include ./auth/accounts.conf")
	require.Regexp(t, `(?s)resolver \{\s*type: full`, string(conf))
	natsSvc := cf.Services["nats"]
	require.True(t, mounts(natsSvc.Volumes, "/etc/nats/auth"), "nats mounts the accounts")
	for _, p := range natsSvc.Ports {
		require.NotContains(t, p, "8222", "the monitoring port is not published")
	}

	// Prometheus scrapes every PROST container on its port.
	prom, err := os.ReadFile("../../deploy/prometheus/prometheus.yml")
	require.NoError(t, err)
	for _, c := range prostContainers {
		_, port, err := net.SplitHostPort(cf.Services[c].Environment["PROST_METRICS_ADDR"])
		require.NoError(t, err, "%s serves its metrics on a port of their own", c)
		require.Contains(t, string(prom), `"`+c+`:`+port+`"`, "prometheus scrapes %s", c)
	}

	// Issue 10 case 6: only the API and the tenants' (authenticated) NATS
	// port are published on every interface; the internal ports are bound
	// to the host's loopback, and Grafana asks for a password.
	for name, svc := range cf.Services {
		for _, p := range svc.Ports {
			if name == "gateway" || (name == "nats" && p == "4222:4222") {
				continue
			}
			require.True(t, strings.HasPrefix(p, "127.0.0.1:"), "%s publishes %s beyond localhost", name, p)
		}
	}
	g := cf.Services["grafana"].Environment
	require.Equal(t, "false", g["GF_AUTH_ANONYMOUS_ENABLED"])
	require.Contains(t, g["GF_SECURITY_ADMIN_PASSWORD"], ":?", "the admin password must be set, never a default")
	for _, mount := range cf.Services["prometheus"].Volumes {
		src := strings.Split(mount, ":")[0]
		_, err := os.Stat("../../" + src)
		require.NoError(t, err, "prometheus mounts %s", src)
	}
	for _, mount := range cf.Services["grafana"].Volumes {
		src := strings.Split(mount, ":")[0]
		_, err := os.Stat("../../" + src)
		require.NoError(t, err, "grafana mounts %s", src)
	}

	// The dashboard's queries name metrics PROST exports.
	dash, err := os.ReadFile("../../deploy/grafana/dashboards/prost.json")
	require.NoError(t, err)
	require.True(t, json.Valid(dash))
	exported := []string{"prost_ingest_events_total", "prost_ingest_request_duration_seconds", "prost_outbox_pending",
		"prost_outbox_lag_seconds", "prost_relay_published_total", "prost_relay_reordered_total", "prost_consumer_processed_total", "prost_consumer_lag", "prost_dlq_messages"}
	for _, m := range regexp.MustCompile(`prost_[a-z_]+`).FindAllString(string(dash)+string(prom), -1) {
		m = strings.TrimSuffix(m, "_bucket")
		require.Contains(t, exported, m, "the dashboard queries %s", m)
	}
}

// mounts reports whether volumes mount something at path.
func mounts(volumes []string, path string) bool {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == path {
			return true
		}
	}
	return false
}

// TestConfigurationDocumented: docs/configuration.md lists every variable prost reads.
func TestConfigurationDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	for _, k := range knownEnv(t) {
		require.Contains(t, string(doc), "`"+k+"`", "docs/configuration.md documents %s", k)
	}
}

// TestStackNATSConfigLoads: the stack's nats-server.conf, with the
// accounts.conf `prost nats-auth init` writes beside it, is a configuration
// nats-server accepts, in operator mode with PROST's operator.
func TestStackNATSConfigLoads(t *testing.T) {
	dir := t.TempDir()
	conf, err := os.ReadFile("../../nats/nats-server.conf")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nats-server.conf"), []byte(strings.ReplaceAll(string(conf), "/data/", dir+"/data/")), 0o600))
	var out strings.Builder
	require.NoError(t, run(t.Context(), []string{"nats-auth", "init", "--dir", filepath.Join(dir, "keys"), "--server-dir", filepath.Join(dir, "auth")}, &out, &out))
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats-server.conf"))
	require.NoError(t, err)
	require.NotNil(t, opts.AccountResolver, "a full resolver")
	opts.AccountResolver.Close()
	keys, err := natsauth.Load(filepath.Join(dir, "keys"))
	require.NoError(t, err)
	require.Len(t, opts.TrustedOperators, 1)
	require.Equal(t, keys.OperatorClaims().Subject, opts.TrustedOperators[0].Subject)
	require.Equal(t, keys.SystemAccount(), opts.SystemAccount)
	require.True(t, opts.SyncAlways)
}
