package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/subjects"
)

// testConsumer runs an extra consumer beside the platform's, as a rules or
// billing consumer would run, with its own handler.
func (s *stack) testConsumer(t *testing.T, name string, retry consumer.RetryPolicy, h consumer.Handler) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New(s.p.pool, s.p.js, consumer.Config{Name: name, Partitions: s.p.env.Partitions, BatchSize: 20, Retry: retry}, h)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

type eventOf struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	PartitionKey string `json:"partitionkey"`
}

func decodeEvent(t *testing.T, m *consumer.Message) eventOf {
	var e eventOf
	require.NoError(t, json.Unmarshal(m.Data, &e))
	return e
}

// TestDeadLetterAndReplay: a consumer that fails an event MaxDeliver times
// moves it to the DLQ with its metadata; a replay reaches that consumer only,
// once, and shows in the audit log.
func TestDeadLetterAndReplay(t *testing.T) {
	s := startStack(t, nil)
	a, other := s.createApp("dlq-a"), s.createApp("dlq-other")
	t.Setenv("PROST_ACTOR", "oncall@example")

	var failing atomic.Bool
	failing.Store(true)
	var attempts, applied atomic.Int64
	s.testConsumer(t, "flaky", consumer.RetryPolicy{MaxDeliver: 3, Backoff: []time.Duration{50 * time.Millisecond}},
		func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
			for _, m := range msgs {
				e := decodeEvent(t, m)
				if e.Type != "poison" {
					continue
				}
				attempts.Add(1)
				if failing.Load() {
					return errors.New("downstream said no to " + e.ID)
				}
				if e.ID == "perm-1" {
					return consumer.Permanent(errors.New("cannot ever handle perm-1"))
				}
				applied.Add(1)
			}
			return nil
		})

	code, body := s.post(a, "application/cloudevents+json", `{"specversion":"1.0","id":"p-1","source":"/dlq","type":"poison","actorid":"u1","data":{"n":1}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))

	var entries []dlq.Entry
	require.Eventually(t, func() bool {
		out, err := s.cli("dlq", "list", "--consumer", "flaky", "--json")
		if err != nil { // refused until flaky, a test's consumer, has an entry
			require.Contains(t, out+err.Error(), `no consumer is named "flaky"`)
			return false
		}
		require.NoError(t, json.Unmarshal([]byte(out), &entries))
		return len(entries) == 1
	}, 20*time.Second, 50*time.Millisecond)
	d := entries[0]
	require.EqualValues(t, 3, attempts.Load(), "MaxDeliver attempts, then no more")
	require.Equal(t, "flaky", d.Consumer)
	require.Equal(t, dlq.ReasonMaxDeliveries, d.Reason)
	require.Equal(t, 3, d.DeliveryCount)
	require.Contains(t, d.LastError, "downstream said no to p-1")
	require.Equal(t, "p-1", d.EventID)
	require.Equal(t, "/dlq", d.EventSource)
	require.Equal(t, "poison", d.EventType)
	require.Equal(t, a.AppID, *d.TenantID)
	require.Equal(t, "PROST_EVENTS", d.Stream)
	require.Positive(t, d.StreamSeq)
	require.Regexp(t, `^prost\.events\.`+a.AppID.String()+`\.\d+\.poison$`, d.Subject)
	require.False(t, d.LastFailureAt.Before(d.FirstFailureAt))
	require.Equal(t, dlq.StateDead, d.State)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(d.Event, &ev), "the full CloudEvent is kept")
	require.Equal(t, map[string]any{"n": float64(1)}, ev["data"])
	require.Equal(t, a.AppID.String(), ev["tenantid"])

	// show, and the tenant's own view; the other tenant sees nothing.
	out, err := s.cli("dlq", "show", strconv.FormatInt(d.ID, 10))
	require.NoError(t, err, out)
	require.Contains(t, out, `"last_error": "downstream said no to p-1"`)
	code, body = s.do(http.MethodGet, "/v1/dlq", auth(a), nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"event_id":"p-1"`)
	code, body = s.do(http.MethodGet, "/v1/dlq", auth(other), nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"items":[],"next_cursor":null}`, string(body))

	// The governance consumer was not affected: one audit entry.
	s.waitQuiet(t)
	require.Equal(t, 1, countAudit(s.audit(a), "p-1", "poison"))

	// A dry run changes nothing; a selector is required.
	out, err = s.cli("dlq", "replay", "--consumer", "flaky", "--dry-run")
	require.NoError(t, err, out)
	require.Contains(t, out, "1 entries would be replayed")
	_, err = s.cli("dlq", "replay")
	require.Error(t, err)

	// Replay: the flaky consumer now succeeds, exactly once.
	failing.Store(false)
	out, err = s.cli("dlq", "replay", strconv.FormatInt(d.ID, 10))
	require.NoError(t, err, out)
	require.Contains(t, out, "1 entries replayed")
	require.Eventually(t, func() bool { return applied.Load() == 1 }, 10*time.Second, 20*time.Millisecond)

	// Replaying again does nothing: the entry is no longer dead.
	out, err = s.cli("dlq", "replay", "--all")
	require.NoError(t, err, out)
	require.Contains(t, out, "0 entries replayed")

	// The replay is recorded: in the entry, and in the tenant's audit log;
	// governance did not receive the event a second time.
	out, err = s.cli("dlq", "list", "--state", "replayed", "--json")
	require.NoError(t, err, out)
	require.NoError(t, json.Unmarshal([]byte(out), &entries))
	require.Len(t, entries, 1)
	require.Equal(t, "oncall@example", entries[0].ReplayedBy)
	require.Equal(t, 1, entries[0].ReplayCount)
	time.Sleep(300 * time.Millisecond) // let any wrong delivery arrive
	require.EqualValues(t, 1, applied.Load())
	ea := s.audit(a)
	require.Equal(t, 1, countAudit(ea, "p-1", "poison"))
	require.Equal(t, 1, countAudit(ea, "p-1", ReplayAuditType))
	for _, e := range ea {
		if e.EventType == ReplayAuditType {
			require.Equal(t, "oncall@example", e.ActorID)
			require.Equal(t, "replay:flaky", e.Action)
		}
	}
	out, err = s.cli("audit", "verify", "--app", a.AppID.String())
	require.NoError(t, err, out)

	// A permanent failure goes straight to the DLQ, after one attempt.
	before := attempts.Load()
	code, body = s.post(a, "application/cloudevents+json", `{"specversion":"1.0","id":"perm-1","source":"/dlq","type":"poison"}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Eventually(t, func() bool {
		out, err := s.cli("dlq", "list", "--consumer", "flaky", "--type", "poison", "--json")
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal([]byte(out), &entries))
		return len(entries) == 1 && entries[0].EventID == "perm-1"
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, dlq.ReasonPermanent, entries[0].Reason)
	require.Equal(t, 1, entries[0].DeliveryCount)
	require.EqualValues(t, 1, attempts.Load()-before)

	// Purge keeps the entry but takes it off the dead list.
	out, err = s.cli("dlq", "purge", "--consumer", "flaky")
	require.NoError(t, err, out)
	require.Contains(t, out, "1 entries purged")
	out, err = s.cli("dlq", "list", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `[]`, out)
}

func countAudit(entries []auditEntry, id, typ string) int {
	n := 0
	for _, e := range entries {
		if e.EventID == id && e.EventType == typ {
			n++
		}
	}
	return n
}

// keysIn returns n partition keys: the first in partition p, the rest
// elsewhere (distinct partitions are not required among the others).
func keyInPartition(p, partitions int, prefix string) string {
	for i := 0; ; i++ {
		k := prefix + strconv.Itoa(i)
		if subjects.Partition(k, partitions) == p {
			return k
		}
	}
}

// TestFailingKeyDoesNotHoldBackOthers: while one key fails and is retried,
// keys in other partitions are processed at once; keys sharing its partition
// wait no longer than its retry schedule; every key keeps its order.
func TestFailingKeyDoesNotHoldBackOthers(t *testing.T) {
	s := startStack(t, nil)
	app := s.createApp("ordering")
	parts := s.p.env.Partitions
	bad := keyInPartition(0, parts, "bad-")
	neighbour := keyInPartition(0, parts, "neighbour-")
	far := keyInPartition(1, parts, "far-")
	other := keyInPartition(2, parts, "other-")

	// The first backoff is the time the other partitions have to be done
	// in: 3s leaves a loaded machine room for a request, the relay and the
	// consumer, where 1s did not.
	schedule := []time.Duration{3 * time.Second, time.Second}
	var mu sync.Mutex
	order := map[string][]string{}
	done := map[string]time.Time{}
	var badFirstFailed, badRetried time.Time
	s.testConsumer(t, "ordered", consumer.RetryPolicy{MaxDeliver: 3, Backoff: schedule},
		func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				e := decodeEvent(t, m)
				if e.PartitionKey == bad {
					switch {
					case badFirstFailed.IsZero():
						badFirstFailed = time.Now()
					case badRetried.IsZero():
						badRetried = time.Now()
					}
					return fmt.Errorf("key %s always fails", bad)
				}
			}
			for _, m := range msgs {
				e := decodeEvent(t, m)
				order[e.PartitionKey] = append(order[e.PartitionKey], e.ID)
				done[e.ID] = time.Now()
			}
			return nil
		})

	post := func(key, id string) {
		code, body := s.post(app, "application/cloudevents+json",
			fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/o","type":"step","partitionkey":%q}`, id, key))
		require.Equal(t, http.StatusAccepted, code, string(body))
	}
	post(bad, "bad-1")
	// The others are sent once the failing key has failed, in one request
	// (one transaction, relayed together): they all arrive while it waits
	// for its first retry, however slow the machine is at sending 30
	// requests one by one.
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return !badFirstFailed.IsZero() }, 30*time.Second, 10*time.Millisecond)
	var batch []string
	for i := range 10 {
		for _, e := range []struct{ key, id string }{{neighbour, "n"}, {far, "f"}, {other, "o"}} {
			batch = append(batch, fmt.Sprintf(`{"specversion":"1.0","id":"%s-%02d","source":"/o","type":"step","partitionkey":%q}`, e.id, i, e.key))
		}
	}
	code, body := s.post(app, "application/cloudevents-batch+json", "["+strings.Join(batch, ",")+"]")
	require.Equal(t, http.StatusAccepted, code, string(body))

	// Keys in other partitions are not held back by the failing key: they
	// are all done before its first retry.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order[far]) == 10 && len(order[other]) == 10
	}, 30*time.Second, 10*time.Millisecond)
	// Read under the lock, assert outside it: a failed assertion must not
	// leave the lock held while the handler (and the test's cleanup) waits.
	mu.Lock()
	farDone, otherDone, retried, neighbours := done["f-09"], done["o-09"], badRetried, len(order[neighbour])
	mu.Unlock()
	if !retried.IsZero() {
		require.True(t, farDone.Before(retried), "other partitions ran before the first retry of the failing key")
		require.True(t, otherDone.Before(retried), "other partitions ran before the first retry of the failing key")
	}
	require.Zero(t, neighbours, "the failing key's partition waits behind it, in order")

	// Its neighbour waits for the retry schedule, and no longer.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order[neighbour]) == 10
	}, 15*time.Second, 10*time.Millisecond)
	mu.Lock()
	waited := done["n-00"].Sub(badFirstFailed)
	mu.Unlock()
	var sum time.Duration
	for _, d := range schedule {
		sum += d
	}
	require.GreaterOrEqual(t, waited, sum, "attempts 2 and 3 of the failing key come first")
	require.Less(t, waited, sum+2*time.Second, "then the partition moves on")

	// Every key in order; the failing one dead-lettered.
	mu.Lock()
	defer mu.Unlock()
	for key, prefix := range map[string]string{neighbour: "n-", far: "f-", other: "o-"} {
		want := make([]string, 10)
		for i := range want {
			want[i] = fmt.Sprintf("%s%02d", prefix, i)
		}
		require.Equal(t, want, order[key], key)
	}
	require.Empty(t, order[bad])
	entries, _, err := dlq.List(context.Background(), testDB.Pool, dlq.Filter{Consumer: "ordered"})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "bad-1", entries[0].EventID)
}

// TestDLQReplayAndPurgeRefuse reproduces issue 12 cases 3 and 4 with the
// CLI. `prost dlq replay 999`, a replay of an entry already replayed,
// `prost dlq purge 3` of no such entry and `--consumer nope` all exited 0
// with "0 entries replayed"; each now exits 1 naming the id or the
// consumer, and does nothing. A replay that fails again is a new dead entry
// naming the one replayed (replay_of), so the dead letter never vanishes.
func TestDLQReplayAndPurgeRefuse(t *testing.T) {
	s := startStack(t, nil)
	a := s.createApp("dlq-refuse")
	s.testConsumer(t, "refusing", consumer.RetryPolicy{MaxDeliver: 3, Backoff: []time.Duration{50 * time.Millisecond}},
		func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
			for _, m := range msgs {
				if decodeEvent(t, m).Type == "poison" {
					return consumer.Permanent(errors.New("refusing poison"))
				}
			}
			return nil
		})
	code, body := s.post(a, "application/cloudevents+json", `{"specversion":"1.0","id":"r-1","source":"/dlq","type":"poison"}`)
	require.Equal(t, http.StatusAccepted, code, string(body))
	list := func(args ...string) []dlq.Entry {
		t.Helper()
		out, err := s.cli(append([]string{"dlq", "list", "--consumer", "refusing", "--json"}, args...)...)
		if err != nil && strings.Contains(out+err.Error(), `no consumer is named "refusing"`) {
			return nil // a test's consumer, known once it has an entry
		}
		require.NoError(t, err, out)
		var entries []dlq.Entry
		require.NoError(t, json.Unmarshal([]byte(out), &entries))
		return entries
	}
	var first dlq.Entry
	require.Eventually(t, func() bool {
		e := list()
		if len(e) == 1 {
			first = e[0]
		}
		return len(e) == 1
	}, 20*time.Second, 50*time.Millisecond)
	firstID := strconv.FormatInt(first.ID, 10)

	// The replay fails again: a new dead entry, replay_of the first.
	out, err := s.cli("dlq", "replay", firstID)
	require.NoError(t, err, out)
	require.Contains(t, out, "1 entries replayed")
	var second dlq.Entry
	require.Eventually(t, func() bool {
		e := list()
		if len(e) == 1 && e[0].ID != first.ID {
			second = e[0]
			return true
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "the failed replay is dead again, as a new entry")
	require.NotNil(t, second.ReplayOf)
	require.Equal(t, first.ID, *second.ReplayOf)
	require.False(t, second.FirstFailureAt.Before(*list("--state", "replayed")[0].ReplayedAt), "its failures are the replay's")
	secondID := strconv.FormatInt(second.ID, 10)

	exit1 := func(want string, args ...string) {
		t.Helper()
		out, err := s.cli(args...)
		var ee exitError
		require.ErrorAs(t, err, &ee, out)
		require.Equal(t, 1, ee.code, ee.msg)
		require.Contains(t, ee.msg, want)
	}
	exit1("entry 999999 does not exist", "dlq", "replay", "999999")
	exit1("entry "+firstID+" is replayed, not dead", "dlq", "replay", firstID)
	exit1("entry 999998 does not exist", "dlq", "purge", "999998")
	exit1(`no consumer is named "nope"`, "dlq", "list", "--consumer", "nope")
	exit1(`no consumer is named "nope"`, "dlq", "replay", "--consumer", "nope")
	exit1(`no consumer is named "nope"`, "dlq", "purge", "--consumer", "nope", "--dry-run")
	exit1("entry 999997 does not exist (nothing was purged)", "dlq", "purge", secondID, "999997")
	require.Len(t, list(), 1, "a refused request does nothing")

	out, err = s.cli("dlq", "purge", secondID)
	require.NoError(t, err, out)
	require.Contains(t, out, "1 entries purged")
	exit1("entry "+secondID+" is purged, not dead", "dlq", "replay", secondID)
	// A selection that finds nothing is no error.
	out, err = s.cli("dlq", "replay", "--consumer", "refusing")
	require.NoError(t, err, out)
	require.Contains(t, out, "0 entries replayed")
}
