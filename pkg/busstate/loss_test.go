package busstate

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busstate/internal/busdb"
)

// TestLossOf: what a stream's state, against what was recorded, says was
// lost, including what is not a loss (messages that expired, a stream that
// was empty when it was created again).
func TestLossOf(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	created := now.Add(-30 * 24 * time.Hour)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	week := 7 * 24 * time.Hour
	info := func(created time.Time, first, last, msgs uint64) *jetstream.StreamInfo {
		return &jetstream.StreamInfo{Created: created, Config: jetstream.StreamConfig{MaxAge: week},
			State: jetstream.StreamState{FirstSeq: first, LastSeq: last, Msgs: msgs}}
	}
	rec := busdb.BusStream{Created: created, LastSeq: 100, LastTime: ago(time.Minute), AckedSeq: 100}
	for _, tc := range []struct {
		name      string
		rec       busdb.BusStream
		info      *jetstream.StreamInfo
		published bool
		want      string
		purged    bool
	}{
		{"intact", rec, info(created, 1, 120, 120), false, "", false},
		{"the same stream, recorded with microseconds", rec, info(created.Add(300*time.Nanosecond), 1, 100, 100), false, "", false},
		{"created again while it held messages", rec, info(now, 0, 0, 0), false, "the stream was created again", false},
		{"created again, empty, but published to since", busdb.BusStream{Created: created}, info(now, 0, 0, 0), true, "the stream was created again", false},
		{"created again while it held nothing", busdb.BusStream{Created: created}, info(now, 0, 0, 0), false, "", false},
		{"created again after a purge was rebuilt and nothing since", busdb.BusStream{Created: created, LastSeq: 100, AckedSeq: 100},
			info(now, 0, 0, 0), false, "", false},
		{"created again after everything had expired", busdb.BusStream{Created: created, LastSeq: 100, LastTime: ago(8 * 24 * time.Hour), AckedSeq: 100},
			info(now, 0, 0, 0), false, "", false},
		{"ends before what was acknowledged", busdb.BusStream{Created: created, LastSeq: 90, LastTime: ago(time.Minute), AckedSeq: 100},
			info(created, 1, 95, 95), false, "ends at sequence 95, but JetStream had acknowledged messages up to sequence 100", false},
		{"purged", rec, info(created, 101, 100, 0), false, "purged", true},
		{"purged, and published to since", rec, info(created, 101, 110, 10), true, "purged", true},
		{"expired by age", busdb.BusStream{Created: created, LastSeq: 100, LastTime: ago(week + time.Hour), AckedSeq: 100},
			info(created, 101, 100, 0), false, "", false},
		{"the front expired, the recorded last message kept", rec, info(created, 50, 100, 51), false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, purged := lossOf(tc.rec, tc.info, now, tc.published, DefaultMargin)
			if tc.want == "" {
				require.Empty(t, got)
			} else {
				require.Contains(t, got, tc.want)
			}
			require.Equal(t, tc.purged, purged)
		})
	}
}
