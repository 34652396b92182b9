package factorysvc

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
)

// TestValidateCompose: the compose target's files as generated validate,
// and each thing PROST refuses in a deployment is named when it is there.
func TestValidateCompose(t *testing.T) {
	t.Parallel()
	k := factory.RunKey{ID: uuid.New(), TenantID: uuid.New(), Module: "inventory"}
	files, bad := composeFiles(k, buildResult{Source: treeRef{Digest: strings.Repeat("ab", 32)}})
	require.Empty(t, bad, "the generated files validate")
	compose, docker := string(files["deploy/compose.yaml"]), string(files["deploy/Dockerfile"])

	for _, c := range []struct {
		name            string
		compose, docker func(string) string
		want            string
	}{
		{"not YAML", func(string) string { return "services: [" }, nil, "compose.yaml: yaml:"},
		{"another service", func(s string) string { return strings.Replace(s, "  inventory:", "  other:", 1) }, nil, "compose.yaml: no service inventory"},
		{"privileged", func(s string) string { return strings.Replace(s, "    read_only: true", "    privileged: true", 1) }, nil,
			"compose.yaml: the service runs privileged or on the host network"},
		{"host network", func(s string) string { return strings.Replace(s, "    read_only: true", "    network_mode: host", 1) }, nil,
			"compose.yaml: the service runs privileged or on the host network"},
		{"no health check", func(s string) string { return s[:strings.Index(s, "    healthcheck:")] }, nil, "compose.yaml: the service has no health check"},
		{"a database URL in the file", func(s string) string {
			return strings.Replace(s, "DATABASE_URL: ${INVENTORY_DATABASE_URL", "DATABASE_URL: postgres://u:p@db/x #{", 1)
		}, nil, "compose.yaml: DATABASE_URL must come from the environment, not the file"},
		{"another Dockerfile", func(s string) string {
			return strings.Replace(s, "dockerfile: deploy/Dockerfile", "dockerfile: Dockerfile", 1)
		}, nil,
			"compose.yaml: the service does not build deploy/Dockerfile"},
		{"root user", nil, func(s string) string { return strings.Replace(s, "USER nonroot:nonroot\n", "", 1) }, "Dockerfile: no USER nonroot"},
		{"no health check in the image", nil, func(s string) string { return strings.Replace(s, "HEALTHCHECK ", "# ", 1) }, "Dockerfile: no HEALTHCHECK"},
		{"unpinned base image", nil, func(s string) string {
			return strings.Replace(s, "FROM golang:1.26 AS build", "FROM golang AS build", 1)
		},
			"Dockerfile: base image golang is not pinned to a tag or digest"},
		{"ADD from a URL", nil, func(s string) string { return strings.Replace(s, "COPY . .", "ADD https://example.com/x.tgz /src", 1) }, "Dockerfile: ADD from a URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cf, df := compose, docker
			if c.compose != nil {
				cf = c.compose(cf)
			}
			if c.docker != nil {
				df = c.docker(df)
			}
			require.NotEqual(t, compose+docker, cf+df, "the case changes a file")
			bad := validateCompose(k.Module, map[string][]byte{"deploy/compose.yaml": []byte(cf), "deploy/Dockerfile": []byte(df)})
			found := false
			for _, b := range bad {
				found = found || strings.HasPrefix(b, c.want)
			}
			require.True(t, found, "want %q in %q", c.want, bad)
		})
	}
}
