package main

import (
	"encoding/json"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
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
	var prostContainers []string
	for name, svc := range cf.Services {
		if svc.Image != "prost:dev" && svc.Image != "prost-factory:dev" {
			continue
		}
		prostContainers = append(prostContainers, name)
		require.NotNil(t, svc.Build, "%s is built from this repository", name)
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

	// Prometheus scrapes every PROST container on its port.
	prom, err := os.ReadFile("../../deploy/prometheus/prometheus.yml")
	require.NoError(t, err)
	for _, c := range prostContainers {
		require.Contains(t, string(prom), `"`+c+`:8080"`, "prometheus scrapes %s", c)
	}
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

// TestConfigurationDocumented: docs/configuration.md lists every variable prost reads.
func TestConfigurationDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	for _, k := range knownEnv(t) {
		require.Contains(t, string(doc), "`"+k+"`", "docs/configuration.md documents %s", k)
	}
}
