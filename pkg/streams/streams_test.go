package streams_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/streams"
	"github.com/prost-platform/prost/pkg/subjects"
)

func TestMain(m *testing.M) { prosttest.MainNoDatabase(m) }

const repoStreams = "../../nats/streams"

func TestLoadRepositoryDefinitions(t *testing.T) {
	t.Parallel()
	cfgs, err := streams.Load(repoStreams)
	require.NoError(t, err)
	require.NotEmpty(t, cfgs)

	byName := map[string]jetstream.StreamConfig{}
	for _, c := range cfgs {
		byName[c.Name] = c
	}
	ev, ok := byName["PROST_EVENTS"]
	require.True(t, ok, "nats/streams must declare PROST_EVENTS")
	require.Equal(t, []string{subjects.All}, ev.Subjects)
	require.Equal(t, jetstream.LimitsPolicy, ev.Retention)
	require.Equal(t, jetstream.FileStorage, ev.Storage)
	// The relay republishes a round whose answer it lost after AckTimeout
	// and a poll, and a standby takes over within a poll: the duplicate
	// window covers both twice over. It is also bounded: the server keeps
	// ~150 bytes per message published within it, so 2 minutes at 20,000
	// msg/s held 350 MiB, and 20 s ~50 MiB while the relay caught up a
	// backlog at 10,000 msg/s (issue 13; decision 0003).
	require.GreaterOrEqual(t, ev.Duplicates, 2*(outbox.DefaultAckTimeout+outbox.DefaultPollInterval))
	require.LessOrEqual(t, ev.Duplicates, 15*time.Second)
	require.True(t, ev.AllowAtomicPublish, "the relay publishes rounds as atomic batches")
	require.Positive(t, ev.MaxAge)
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	return dir
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		files     map[string]string
		wantNames []string
		wantErr   string
	}{
		{
			name:    "empty directory",
			files:   nil,
			wantErr: "no stream definitions",
		},
		{
			name:    "only other files",
			files:   map[string]string{"README.md": "# streams", "a.json.bak": "{}"},
			wantErr: "no stream definitions",
		},
		{
			name:    "bad json",
			files:   map[string]string{"a.json": `{"name": "A", "subjects": ["a.>"]}`, "b.json": `{"name": `},
			wantErr: "b.json",
		},
		{
			name:    "unknown enum value",
			files:   map[string]string{"a.json": `{"name": "A", "subjects": ["a.>"], "retention": "forever"}`},
			wantErr: "a.json",
		},
		{
			name:    "missing name",
			files:   map[string]string{"a.json": `{"subjects": ["a.>"]}`},
			wantErr: "name and subjects are required",
		},
		{
			name:    "missing subjects",
			files:   map[string]string{"a.json": `{"name": "A"}`},
			wantErr: "name and subjects are required",
		},
		{
			name: "several, in file name order",
			files: map[string]string{
				"b.json": `{"name": "B", "subjects": ["b.>"]}`,
				"a.json": `{"name": "A", "subjects": ["a.>"], "duplicate_window": 5000000000}`,
				"c.txt":  `not a definition`,
			},
			wantNames: []string{"A", "B"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfgs, err := streams.Load(writeFiles(t, tt.files))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Nil(t, cfgs)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, c := range cfgs {
				names = append(names, c.Name)
			}
			require.Equal(t, tt.wantNames, names)
			require.Equal(t, 5*time.Second, cfgs[0].Duplicates)
		})
	}

	_, err := streams.Load(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err, "a missing directory has no definitions")
}

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	s := prosttest.NATS(t)
	nc, err := nats.Connect(s.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

func TestEnsureCreatesAndUpdates(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	js := connect(t)

	cfgs, err := streams.Load(repoStreams)
	require.NoError(t, err)
	require.NoError(t, streams.Ensure(ctx, js, cfgs, streams.Options{}))
	for _, want := range cfgs {
		s, err := js.Stream(ctx, want.Name)
		require.NoError(t, err, "Ensure must create %s", want.Name)
		got := s.CachedInfo().Config
		require.Equal(t, want.Subjects, got.Subjects)
		require.Equal(t, want.Duplicates, got.Duplicates)
		require.Equal(t, want.MaxAge, got.MaxAge)
		require.Equal(t, want.Storage, got.Storage)
		require.Equal(t, want.AllowDirect, got.AllowDirect)
	}

	// Running it again on existing streams is a no-op, not an error.
	require.NoError(t, streams.Ensure(ctx, js, cfgs, streams.Options{}))

	// A changed definition updates the live stream, and its messages stay.
	_, err = js.Publish(ctx, "prost.events.t.0.x", []byte("{}"))
	require.NoError(t, err)
	changed := make([]jetstream.StreamConfig, len(cfgs))
	copy(changed, cfgs)
	for i := range changed {
		changed[i].Description = "updated by the test"
		changed[i].MaxAge = 48 * time.Hour
		changed[i].Duplicates = time.Minute
	}
	require.NoError(t, streams.Ensure(ctx, js, changed, streams.Options{}))
	s, err := js.Stream(ctx, "PROST_EVENTS")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, "updated by the test", info.Config.Description)
	require.Equal(t, 48*time.Hour, info.Config.MaxAge)
	require.Equal(t, time.Minute, info.Config.Duplicates)
	require.EqualValues(t, 1, info.State.Msgs)
}

func TestEnsureReportsTheFailingStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	js := connect(t)

	tests := []struct {
		name string
		cfgs []jetstream.StreamConfig
		opts streams.Options
	}{
		{
			// A single server cannot hold three replicas.
			name: "replicas override",
			cfgs: []jetstream.StreamConfig{{Name: "REPLICATED", Subjects: []string{"replicated.>"}}},
			opts: streams.Options{Replicas: 3},
		},
		{
			name: "overlapping subjects",
			cfgs: []jetstream.StreamConfig{
				{Name: "FIRST", Subjects: []string{"overlap.>"}},
				{Name: "SECOND", Subjects: []string{"overlap.a"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := streams.Ensure(ctx, js, tt.cfgs, tt.opts)
			require.Error(t, err)
			require.ErrorContains(t, err, tt.cfgs[len(tt.cfgs)-1].Name)
		})
	}
}
