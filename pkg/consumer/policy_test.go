package consumer_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
)

func TestPolicyApply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  consumer.PolicyFile
		check   func(t *testing.T, c consumer.Config)
		wantErr string
	}{
		{"empty keeps the defaults", consumer.PolicyFile{Name: "x"}, func(t *testing.T, c consumer.Config) {
			require.Equal(t, consumer.Config{Partitions: 4}, c)
		}, ""},
		{"every field", consumer.PolicyFile{Name: "x", MaxDeliver: 3, Backoff: []string{"1s", "2m"}, AckWait: "45s",
			BatchSize: 250, RetryBudget: "1h", TenantLanes: 8, SingleLane: true, Linger: "5ms", LingerQuiet: "2ms"}, func(t *testing.T, c consumer.Config) {
			require.Equal(t, 3, c.Retry.MaxDeliver)
			require.Equal(t, []time.Duration{time.Second, 2 * time.Minute}, c.Retry.Backoff)
			require.Equal(t, 45*time.Second, c.Retry.AckWait)
			require.Equal(t, 250, c.BatchSize)
			require.Equal(t, time.Hour, c.Retry.Budget)
			require.Equal(t, 8, c.TenantLanes)
			require.Equal(t, 1, c.Partitions)
			require.Equal(t, 5*time.Millisecond, c.Linger)
			require.Equal(t, 2*time.Millisecond, c.LingerQuiet)
		}, ""},
		{"zero linger and budget switch them off", consumer.PolicyFile{Name: "x", Linger: "0s", LingerQuiet: "0s", RetryBudget: "0"}, func(t *testing.T, c consumer.Config) {
			require.Negative(t, c.Linger)
			require.Negative(t, c.LingerQuiet)
			require.Negative(t, c.Retry.Budget)
		}, ""},
		{"linger over a second", consumer.PolicyFile{Name: "x", Linger: "2s"}, nil, `linger "2s" must be a duration of at most 1s`},
		{"linger not a duration", consumer.PolicyFile{Name: "x", Linger: "soon"}, nil, `linger "soon"`},
		{"linger_quiet over a second", consumer.PolicyFile{Name: "x", LingerQuiet: "2s"}, nil, `linger_quiet "2s" must be a duration of at most 1s`},
		{"short ack_wait", consumer.PolicyFile{Name: "x", AckWait: "10ms"}, nil, `ack_wait "10ms" must be a duration of at least 1s`},
		{"bad backoff", consumer.PolicyFile{Name: "x", Backoff: []string{"-1s"}}, nil, `backoff "-1s" is not a positive duration`},
		{"negative numbers", consumer.PolicyFile{Name: "x", MaxDeliver: -1, BatchSize: -1, TenantLanes: -1}, nil, "batch_size must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.policy.Apply(consumer.Config{Partitions: 4})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

// TestLoadPolicies reads the repository's own policies, and refuses a file
// with an unknown field or no name.
func TestLoadPolicies(t *testing.T) {
	got, err := consumer.LoadPolicies(filepath.Join("..", "..", "nats", "consumers"))
	require.NoError(t, err)
	require.Contains(t, got, "governance-audit")
	require.True(t, got["governance-audit"].SingleLane)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"name":"a","lingr":"1ms"}`), 0o600))
	_, err = consumer.LoadPolicies(dir)
	require.ErrorContains(t, err, `unknown field "lingr"`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"linger":"1ms"}`), 0o600))
	_, err = consumer.LoadPolicies(dir)
	require.ErrorContains(t, err, "name is required")

	got, err = consumer.LoadPolicies(filepath.Join(dir, "missing"))
	require.NoError(t, err)
	require.Empty(t, got)
}
