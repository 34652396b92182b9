package registry_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/schemacompat"
)

func TestParseRef(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]registry.Ref{
		"urn:prost:schema:order.placed:2":                                        {Subject: "order.placed", Version: 2},
		"URN:PROST:SCHEMA:order.placed:2":                                        {Subject: "order.placed", Version: 2},
		"urn:prost:schema:a:b:c:10":                                              {Subject: "a:b:c", Version: 10},
		"urn:prost:schema:com.shop%2Forder%20paid:1":                             {Subject: "com.shop/order paid", Version: 1},
		"https://prost.example.com/v1/registry/subjects/order.placed/versions/3": {Subject: "order.placed", Version: 3},
		"http://h:8080/api/v1/registry/subjects/a%2Fb/versions/1#frag":           {Subject: "a/b", Version: 1},
	} {
		got, ok, err := registry.ParseRef(in)
		require.NoError(t, err, in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
		again, _, err := registry.ParseRef(got.URN())
		require.NoError(t, err)
		require.Equal(t, got, again, "URN round-trips")
	}
	for _, in := range []string{"https://schemas.example.com/order.json", "urn:isbn:123", "/v1/registry/subjects/a/versions/1", "mailto:x@y"} {
		_, ok, err := registry.ParseRef(in)
		require.NoError(t, err, in)
		require.False(t, ok, in)
	}
	for _, in := range []string{"urn:prost:schema:a", "urn:prost:schema:a:0", "urn:prost:schema:a:-1", "urn:prost:schema::1",
		"urn:prost:schema:a:latest", "https://h/v1/registry/subjects/a/versions/x", "https://h/v1/registry/subjects/a", "urn:prost:schema:%zz:1"} {
		_, ok, err := registry.ParseRef(in)
		require.True(t, ok, in)
		require.Error(t, err, in)
	}
}

// TestPlatformSchemas: every platform schema compiles (registry.New does)
// and each version is BACKWARD_TRANSITIVE compatible with the earlier ones.
func TestPlatformSchemas(t *testing.T) {
	t.Parallel()
	_, err := registry.New(nil, registry.Config{PlatformDir: "../../../schemas"})
	require.NoError(t, err)
	dirs, err := os.ReadDir("../../../schemas")
	require.NoError(t, err)
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		var docs []any
		for v := 1; ; v++ {
			b, err := os.ReadFile(filepath.Join("../../../schemas", d.Name(), "v"+itoa(v)+".json"))
			if os.IsNotExist(err) {
				break
			}
			require.NoError(t, err)
			doc, err := schemacompat.ParseSchema(b)
			require.NoError(t, err)
			res, err := schemacompat.Check(schemacompat.ModeBackwardTransitive, schemacompat.PolicyStrict, docs, doc)
			require.NoError(t, err)
			require.True(t, res.Compatible, "%s v%d: %v", d.Name(), v, res.Messages)
			docs = append(docs, doc)
			n++
		}
	}
	require.GreaterOrEqual(t, n, 2)

	// A platform directory with a gap in its numbers, or a schema that does
	// not compile, stops the registry from starting.
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "x.y"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.y", "v2.json"), []byte(`{}`), 0o644))
	_, err = registry.New(nil, registry.Config{PlatformDir: dir})
	require.ErrorContains(t, err, "without gaps")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.y", "v1.json"), []byte(`{"type":7}`), 0o644))
	_, err = registry.New(nil, registry.Config{PlatformDir: dir})
	require.ErrorIs(t, err, registry.ErrInvalidSchema)
	_, err = registry.New(nil, registry.Config{PlatformDir: filepath.Join(dir, "missing")})
	require.Error(t, err)
}
