package audit_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/prosttest"
)

// TestMeasureVerify measures a verification of one tenant's log of N
// entries and N events (issue 13: flat memory, no long request); it runs
// only with PROST_MEASURE_VERIFY_N set, e.g.
//
//	PROST_MEASURE_VERIFY_N=3000000 go test -run TestMeasureVerify -v -timeout 60m ./domain/audit/
func TestMeasureVerify(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROST_MEASURE_VERIFY_N"))
	if n == 0 {
		t.Skip()
	}
	db := prosttest.NewDatabase(t)
	tenant := uuid.New()
	began := time.Now()
	const chunk = 100_000
	prev := audit.Genesis
	now := time.Now().UTC().Truncate(time.Microsecond).Add(-time.Hour)
	for from := 0; from < n; from += chunk {
		var arows, erows [][]any
		for i := from; i < min(n, from+chunk); i++ {
			id := fmt.Sprintf("e-%07d", i)
			e := audit.Entry{TenantID: tenant, Seq: int64(i + 1), EventID: id, EventSource: "src", EventType: "t", RecordedAt: now, PrevHash: prev}
			e.Hash = e.ComputeHash()
			prev = e.Hash
			arows = append(arows, []any{tenant, e.Seq, id, "src", "t", "", "", now, e.PrevHash, e.Hash})
			erows = append(erows, []any{tenant, "src", id, "t", now, []byte(`{"id":"` + id + `"}`)})
		}
		_, err := db.Pool.CopyFrom(t.Context(), pgx.Identifier{"audit_log"}, []string{"tenant_id", "seq", "event_id", "event_source", "event_type", "actor_id", "action", "recorded_at", "prev_hash", "hash"}, pgx.CopyFromRows(arows))
		require.NoError(t, err)
		_, err = db.Pool.CopyFrom(t.Context(), pgx.Identifier{"events"}, []string{"tenant_id", "source", "id", "type", "recorded_at", "envelope"}, pgx.CopyFromRows(erows))
		require.NoError(t, err)
	}
	_, err := db.Pool.Exec(t.Context(), `INSERT INTO audit_heads VALUES ($1, $2, $3)`, tenant, n, prev)
	require.NoError(t, err)
	_, err = db.Pool.Exec(t.Context(), `VACUUM ANALYZE audit_log; `)
	require.NoError(t, err)
	_, err = db.Pool.Exec(t.Context(), `VACUUM ANALYZE events`)
	require.NoError(t, err)
	t.Logf("loaded %d entries and events in %s", n, time.Since(began).Round(time.Second))

	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	began = time.Now()
	o := audit.VerifyOptions{Settle: -1}
	calls := 0
	var res []audit.VerifyResult
	var longest time.Duration
	for {
		c0 := time.Now()
		p, err := audit.VerifyPaged(t.Context(), db.Pool, o)
		require.NoError(t, err)
		longest = max(longest, time.Since(c0))
		calls++
		res = append(res, p.Chains...)
		if p.NextCursor == "" {
			break
		}
		o.Cursor = p.NextCursor
	}
	close(stop)
	t.Logf("verified %d entries and %d events in %s, %d calls (longest %s); heap in use before %d MiB, peak %d MiB; ok=%v missing=%d",
		res[0].Entries, res[0].Events, time.Since(began).Round(time.Millisecond), calls, longest.Round(time.Millisecond),
		base.HeapInuse>>20, peak.Load()>>20, res[0].OK(), res[0].Missing)
}
