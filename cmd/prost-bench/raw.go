package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/migrate"
	"github.com/prost-platform/prost/pkg/natsembed"
	"github.com/prost-platform/prost/pkg/postgres"
	"github.com/prost-platform/prost/pkg/streams"
	"github.com/prost-platform/prost/pkg/subjects"
)

// RawPG is a raw Postgres ceiling: events and outbox rows inserted directly,
// on PROST's own tables, by this program.
type RawPG struct {
	Clients      int     `json:"clients"`
	EventsPerTx  int     `json:"events_per_tx"`
	EventsPerSec float64 `json:"events_per_s"`
	TxPerSec     float64 `json:"tx_per_s"`
	// Tx is BEGIN to COMMIT returned; Commit is the COMMIT round trip alone.
	Tx       *Latency         `json:"tx_latency"`
	Commit   *Latency         `json:"commit_latency"`
	Failures map[string]int64 `json:"failures"`
	CPU      *CPUShare        `json:"cpu"`
}

// RawJS is a raw JetStream publish ceiling on an embedded nats-server.
type RawJS struct {
	Mode       string `json:"mode"`
	Clients    int    `json:"clients"`
	MaxPending int    `json:"max_pending,omitempty"`
	// BatchSize is the messages per atomic batch (mode atomic).
	BatchSize  int     `json:"batch_size,omitempty"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	// Latency is publish to ack, synchronous publishes only.
	Latency  *Latency         `json:"latency"`
	Failures map[string]int64 `json:"failures"`
	CPU      *CPUShare        `json:"cpu"`
}

const (
	rawInsertEvent = `INSERT INTO events (tenant_id, source, id, type, subject, time, partition_key, envelope)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`
	rawInsertOutbox      = `INSERT INTO outbox (event_seq, subject) VALUES ($1, $2)`
	rawInsertEventsBatch = `INSERT INTO events (tenant_id, source, id, type, subject, time, partition_key, envelope)
SELECT u.tenant_id, u.source, u.id, u.type, u.subject, u.time, u.partition_key, u.envelope::json
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[])
    AS u(tenant_id, source, id, type, subject, time, partition_key, envelope)
RETURNING seq`
	rawInsertOutboxBatch = `INSERT INTO outbox (event_seq, subject) SELECT * FROM unnest($1::int8[], $2::text[])`
)

// randomSuffix is 8 random hex digits for database and directory names.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// dropDatabase drops name on the configured server, disconnecting anyone
// still connected. It runs during clean-up, so it takes its own deadline.
func dropDatabase(ctx context.Context, cfg Config, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cfg.PostgresURL)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// runRawPostgres measures the single-row and batched ceilings on a fresh
// database migrated with PROST's migrations, and drops it afterwards.
func runRawPostgres(ctx context.Context, cfg Config, log *slog.Logger, res *Results) (err error) {
	name := "prost_bench_raw_" + randomSuffix()
	log.Info("raw postgres: creating database", "database", name)
	defer func() {
		if derr := dropDatabase(ctx, cfg, name); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	pool, err := postgres.Open(ctx, postgres.Config{URL: cfg.databaseURL(name), MaxConns: int32(cfg.RawPGClients + 1)})
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrate.New(pool).Up(ctx); err != nil {
		return fmt.Errorf("raw postgres: migrate: %w", err)
	}
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&res.Machine.Postgres); err != nil {
		return err
	}
	tenant := uuid.Must(uuid.NewV7())

	log.Info("raw postgres: single-row transactions", "clients", cfg.RawPGClients, "duration", cfg.Duration)
	cpu := watchCPU(ctx, 0, cfg.Warmup, cfg.Duration)
	lr := runClosedLoop(ctx, cfg.RawPGClients, cfg.Warmup, cfg.Duration, func(ctx context.Context, w int, n int64) opResult {
		return rawSingleTx(ctx, pool, tenant, eventID("raw1", w, n), n)
	})
	res.Raw.PGSingle = &RawPG{Clients: cfg.RawPGClients, EventsPerTx: 1, EventsPerSec: lr.rate(),
		TxPerSec: float64(lr.Ops) / lr.Window.Seconds(), Tx: summarize(lr.Latencies), Commit: summarize(lr.Aux),
		Failures: failureCounts(lr.Failures), CPU: cpu()}
	log.Info("raw postgres: single-row done", "events_per_s", int(lr.rate()))
	if err := ctx.Err(); err != nil {
		return err
	}

	log.Info("raw postgres: batched transactions", "clients", cfg.RawPGClients, "events_per_tx", cfg.BatchSize, "duration", cfg.Duration)
	cpu = watchCPU(ctx, 0, cfg.Warmup, cfg.Duration)
	lr = runClosedLoop(ctx, cfg.RawPGClients, cfg.Warmup, cfg.Duration, func(ctx context.Context, w int, n int64) opResult {
		return rawBatchTx(ctx, pool, tenant, "rawb-"+fmt.Sprint(w), n, cfg.BatchSize)
	})
	res.Raw.PGBatch = &RawPG{Clients: cfg.RawPGClients, EventsPerTx: cfg.BatchSize, EventsPerSec: lr.rate(),
		TxPerSec: float64(lr.Ops) / lr.Window.Seconds(), Tx: summarize(lr.Latencies), Commit: summarize(lr.Aux),
		Failures: failureCounts(lr.Failures), CPU: cpu()}
	log.Info("raw postgres: batched done", "events_per_s", int(lr.rate()))
	return ctx.Err()
}

// rawSingleTx is one transaction: INSERT event RETURNING seq; INSERT outbox; COMMIT.
func rawSingleTx(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, id string, n int64) opResult {
	env := appendEvent(make([]byte, 0, 512), id, n, tenant.String())
	tx, err := pool.Begin(ctx)
	if err != nil {
		return opResult{failure: "begin: " + pgFailure(err)}
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var seq int64
	if err := tx.QueryRow(ctx, rawInsertEvent, tenant, eventSource, id, eventType, "order-"+fmt.Sprint(n),
		eventTimeValue, partitionKey(n), env).Scan(&seq); err != nil {
		return opResult{failure: "insert event: " + pgFailure(err)}
	}
	if _, err := tx.Exec(ctx, rawInsertOutbox, seq, outboxSubject(tenant, n)); err != nil {
		return opResult{failure: "insert outbox: " + pgFailure(err)}
	}
	c := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return opResult{failure: "commit: " + pgFailure(err)}
	}
	return opResult{events: 1, aux: time.Since(c)}
}

// rawBatchTx is one transaction inserting size events and their outbox rows.
func rawBatchTx(ctx context.Context, pool *pgxpool.Pool, tenant uuid.UUID, prefix string, n int64, size int) opResult {
	var (
		tenants = make([]uuid.UUID, size)
		srcs    = make([]string, size)
		ids     = make([]string, size)
		types   = make([]string, size)
		subs    = make([]string, size)
		times   = make([]time.Time, size)
		pks     = make([]string, size)
		envs    = make([]string, size)
		obSubs  = make([]string, size)
	)
	buf := make([]byte, 0, 512)
	for i := range size {
		k := n*int64(size) + int64(i)
		id := prefix + "-" + fmt.Sprint(k)
		tenants[i], srcs[i], ids[i], types[i] = tenant, eventSource, id, eventType
		subs[i], times[i], pks[i] = "order-"+fmt.Sprint(k), eventTimeValue, partitionKey(k)
		buf = appendEvent(buf[:0], id, k, tenant.String())
		envs[i] = string(buf)
		obSubs[i] = outboxSubject(tenant, k)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return opResult{failure: "begin: " + pgFailure(err)}
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, rawInsertEventsBatch, tenants, srcs, ids, types, subs, times, pks, envs)
	if err != nil {
		return opResult{failure: "insert events: " + pgFailure(err)}
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return opResult{failure: "insert events: " + pgFailure(err)}
	}
	if _, err := tx.Exec(ctx, rawInsertOutboxBatch, seqs, obSubs[:len(seqs)]); err != nil {
		return opResult{failure: "insert outbox: " + pgFailure(err)}
	}
	c := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return opResult{failure: "commit: " + pgFailure(err)}
	}
	return opResult{events: len(seqs), aux: time.Since(c)}
}

// pgFailure names an error briefly enough to count failures by it.
func pgFailure(err error) string {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled"
	}
	return err.Error()
}

// eventTimeValue is eventTime as a time.Time, for the time column.
var eventTimeValue, _ = time.Parse(time.RFC3339Nano, eventTime)

// runRawJetStream measures asynchronous and synchronous publish ceilings on
// an embedded nats-server with a file store and sync_interval always, on
// the stream PROST declares (from cfg.NATSDir), with PROST's subjects and
// Nats-Msg-Id.
func runRawJetStream(ctx context.Context, cfg Config, log *slog.Logger, res *Results) error {
	dir, err := os.MkdirTemp("", "prost-bench-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Config{Addr: "127.0.0.1:0", StoreDir: dir, SyncAlways: true, ServerName: "prost-bench-raw"})
	if err != nil {
		return err
	}
	defer srv.Stop()
	cfgs, err := streams.Load(filepath.Join(cfg.NATSDir, "streams"))
	if err != nil {
		return err
	}
	nc, err := nats.Connect(srv.URL(), nats.Name("prost-bench-setup"))
	if err != nil {
		return err
	}
	defer nc.Close()
	res.Machine.NATSServer = nc.ConnectedServerVersion()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := streams.Ensure(ctx, js, cfgs, streams.Options{}); err != nil {
		return err
	}
	tenant := uuid.Must(uuid.NewV7())

	log.Info("raw jetstream: async publish", "clients", 1, "max_pending", cfg.JSAsyncMaxPending, "duration", cfg.Duration)
	a, err := jsAsync(ctx, cfg, srv.URL(), tenant)
	if err != nil {
		return err
	}
	res.Raw.JSAsync = a
	log.Info("raw jetstream: async done", "msgs_per_s", int(a.MsgsPerSec))
	if err := ctx.Err(); err != nil {
		return err
	}

	log.Info("raw jetstream: atomic batches", "clients", 1, "batch", cfg.JSAtomicBatch, "duration", cfg.Duration)
	at, err := jsAtomic(ctx, cfg, srv.URL(), tenant)
	if err != nil {
		return err
	}
	res.Raw.JSAtomic = at
	log.Info("raw jetstream: atomic done", "msgs_per_s", int(at.MsgsPerSec))
	if err := ctx.Err(); err != nil {
		return err
	}

	log.Info("raw jetstream: sync publish", "clients", cfg.JSSyncClients, "duration", cfg.Duration)
	pubs := make([]jetstream.JetStream, cfg.JSSyncClients)
	for i := range pubs {
		c, err := nats.Connect(srv.URL(), nats.Name(fmt.Sprintf("prost-bench-sync-%d", i)))
		if err != nil {
			return err
		}
		defer c.Close()
		if pubs[i], err = jetstream.New(c); err != nil {
			return err
		}
	}
	cpu := watchCPU(ctx, 0, cfg.Warmup, cfg.Duration)
	lr := runClosedLoop(ctx, cfg.JSSyncClients, cfg.Warmup, cfg.Duration, func(ctx context.Context, w int, n int64) opResult {
		m := jsMsg(tenant, eventID("jss", w, n), n)
		if _, err := pubs[w].PublishMsg(ctx, m); err != nil {
			return opResult{failure: pgFailure(err)}
		}
		return opResult{events: 1}
	})
	res.Raw.JSSync = &RawJS{Mode: "sync", Clients: cfg.JSSyncClients, MsgsPerSec: lr.rate(),
		Latency: summarize(lr.Latencies), Failures: failureCounts(lr.Failures), CPU: cpu()}
	log.Info("raw jetstream: sync done", "msgs_per_s", int(lr.rate()))
	return ctx.Err()
}

// jsMsg is event n as the relay publishes it: the envelope with tenantid,
// on its PROST subject, with its Nats-Msg-Id.
func jsMsg(tenant uuid.UUID, id string, n int64) *nats.Msg {
	m := nats.NewMsg(outboxSubject(tenant, n))
	m.Data = appendEvent(make([]byte, 0, 512), id, n, tenant.String())
	m.Header.Set(jetstream.MsgIDHeader, subjects.MsgID(tenant, eventSource, id))
	return m
}

// jsAsync publishes asynchronously from one client with at most
// cfg.JSAsyncMaxPending acks outstanding, and counts the acks that arrive
// inside the measured window.
func jsAsync(ctx context.Context, cfg Config, url string, tenant uuid.UUID) (*RawJS, error) {
	nc, err := nats.Connect(url, nats.Name("prost-bench-async"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	var acks, errs atomic.Int64
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.JSAsyncMaxPending),
		jetstream.WithPublishAsyncAckHandler(func(jetstream.JetStream, *nats.Msg, *jetstream.PubAck) { acks.Add(1) }),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { errs.Add(1) }))
	if err != nil {
		return nil, err
	}
	// The window's counts are read by timers at its start and end, so a
	// publish that stalls across either edge cannot shift them.
	var a0, e0, a1, e1 atomic.Int64
	cpu := watchCPU(ctx, 0, cfg.Warmup, cfg.Duration)
	startTimer := time.AfterFunc(cfg.Warmup, func() { a0.Store(acks.Load()); e0.Store(errs.Load()) })
	defer startTimer.Stop()
	end := make(chan struct{})
	endTimer := time.AfterFunc(cfg.Warmup+cfg.Duration, func() { a1.Store(acks.Load()); e1.Store(errs.Load()); close(end) })
	defer endTimer.Stop()
	ended := func() bool {
		select {
		case <-end:
			return true
		default:
			return ctx.Err() != nil
		}
	}
publish:
	for n := int64(0); !ended(); n++ {
		m := jsMsg(tenant, eventID("jsa", 0, n), n)
		for {
			_, err := js.PublishMsgAsync(m, jetstream.WithStallWait(250*time.Millisecond))
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return nil, fmt.Errorf("raw jetstream: publish: %w", err)
			}
			if ended() {
				break publish
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	window := cfg.Duration
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	acked, failed := a1.Load()-a0.Load(), e1.Load()-e0.Load()
	var fails map[string]int64
	if failed > 0 {
		fails = map[string]int64{"publish error": failed}
	}
	return &RawJS{Mode: "async", Clients: 1, MaxPending: cfg.JSAsyncMaxPending,
		MsgsPerSec: float64(acked) / window.Seconds(), Failures: fails, CPU: cpu()}, nil
}

// jsAtomic publishes atomic batches of cfg.JSAtomicBatch messages from one
// client, one batch at a time (as the relay does: the next batch waits for
// the commit of the one before), and counts the messages of the batches
// committed inside the measured window.
func jsAtomic(ctx context.Context, cfg Config, url string, tenant uuid.UUID) (*RawJS, error) {
	nc, err := nats.Connect(url, nats.Name("prost-bench-atomic"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	cpu := watchCPU(ctx, 0, cfg.Warmup, cfg.Duration)
	var n int64
	lr := runClosedLoop(ctx, 1, cfg.Warmup, cfg.Duration, func(ctx context.Context, _ int, b int64) opResult {
		id := "b" + strconv.FormatInt(b, 36)
		var resp *nats.Msg
		for j := range cfg.JSAtomicBatch {
			m := jsMsg(tenant, eventID("jsb", 0, n), n)
			n++
			m.Header.Set("Nats-Batch-Id", id)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(j+1))
			if j < cfg.JSAtomicBatch-1 {
				if err := nc.PublishMsg(m); err != nil {
					return opResult{failure: pgFailure(err)}
				}
				continue
			}
			m.Header.Set("Nats-Batch-Commit", "1")
			var err error
			if resp, err = nc.RequestMsgWithContext(ctx, m); err != nil {
				return opResult{failure: pgFailure(err)}
			}
		}
		var ack struct {
			Error *jetstream.APIError `json:"error"`
			Count int                 `json:"count"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil || ack.Error != nil || ack.Count != cfg.JSAtomicBatch {
			return opResult{failure: "batch refused: " + string(resp.Data)}
		}
		return opResult{events: cfg.JSAtomicBatch}
	})
	return &RawJS{Mode: "atomic", Clients: 1, BatchSize: cfg.JSAtomicBatch, MsgsPerSec: lr.rate(),
		Failures: failureCounts(lr.Failures), CPU: cpu()}, nil
}
