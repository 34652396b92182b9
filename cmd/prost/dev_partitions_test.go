package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/subjects"
)

func TestDevPartitions(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // in the data directory before the start
		want    int
		wantErr bool
	}{
		{name: "new data directory", want: subjects.DevPartitions},
		{name: "recorded", files: map[string]string{"partitions": "3\n"}, want: 3},
		{name: "recorded wins over an earlier run", files: map[string]string{"partitions": "1", "bus-key": "k"}, want: 1},
		{name: "earlier run with an embedded server", files: map[string]string{"nats/x": ""}, want: subjects.DefaultPartitions},
		{name: "earlier run against NATS_URL", files: map[string]string{"admin-token": "t"}, want: subjects.DefaultPartitions},
		{name: "not a number", files: map[string]string{"partitions": "four"}, wantErr: true},
		{name: "zero", files: map[string]string{"partitions": "0"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
			}
			n, err := devPartitions(dir)
			if tt.wantErr {
				require.ErrorContains(t, err, "partitions")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, n)
			// Recorded: the next start runs on the same count, whatever
			// appears in the directory meanwhile.
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "nats"), 0o700))
			again, err := devPartitions(dir)
			require.NoError(t, err)
			require.Equal(t, tt.want, again)
		})
	}
}
