package registry_test

import (
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

// TestMain gives the package one fresh migrated database (each test uses
// tenants of its own) and fails the run when a goroutine outlives the tests.
func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// testBundle is a registry with the contracts store and the ingest check
// over both. The HTTP routes are tested in registryhttp.
type testBundle struct {
	t         *testing.T
	reg       *registry.Registry
	contracts *contracts.Store
	keyring   *dataprotect.Keyring
	ingest    *registry.Ingest
}

func setup(t *testing.T, cfg registry.Config) *testBundle {
	t.Helper()
	if cfg.PlatformDir == "" {
		cfg.PlatformDir = "../../../schemas"
	}
	reg, err := registry.New(testDB.Pool, cfg)
	require.NoError(t, err)
	cs := contracts.NewStore(testDB.Pool, contracts.StoreConfig{})
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(t, err)
	kr, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek})
	require.NoError(t, err)
	return &testBundle{t: t, reg: reg, contracts: cs, keyring: kr, ingest: registry.NewIngest(reg, cs, kr)}
}

// register registers schema and returns the version.
func (b *testBundle) register(tenant uuid.UUID, subject, schema string) int {
	b.t.Helper()
	v, _, err := b.reg.Register(b.t.Context(), tenant, subject, []byte(schema))
	require.NoError(b.t, err)
	return v.Version
}

func itoa(n int) string { return strconv.Itoa(n) }
