package eventstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/problem"
)

var (
	// ErrOverloaded means the committer's queue is full: the caller should
	// shed the request (429/503 with Retry-After) rather than wait.
	ErrOverloaded = problem.Errorf(problem.Unavailable, "PROST is overloaded; retry later")
	// ErrClosed means the committer is shutting down.
	ErrClosed = problem.Errorf(problem.Unavailable, "PROST is shutting down; retry later")
)

// Defaults of CommitterConfig.
const (
	DefaultWriters   = 4
	DefaultMaxEvents = 2000
	DefaultQueueSize = 4096
	DefaultTxTimeout = 10 * time.Second
)

// CommitterConfig tunes a Committer. The zero value is usable.
type CommitterConfig struct {
	// Writers is the number of shared transactions in flight at once.
	// Defaults to DefaultWriters.
	Writers int
	// MaxEvents caps the events one shared transaction takes from the queue.
	// A single append larger than this still commits, alone. Defaults to
	// DefaultMaxEvents.
	MaxEvents int
	// QueueSize is how many appends may wait for a writer; past it Append
	// fails at once with ErrOverloaded. Defaults to DefaultQueueSize.
	QueueSize int
	// TxTimeout bounds one shared transaction. Defaults to DefaultTxTimeout.
	TxTimeout time.Duration
	// NoNotify leaves out the NOTIFY prost_outbox each transaction that
	// stored events sends to wake relays in other processes. Defaults to false (notify).
	NoNotify bool
	// OnCommit, when set, is called after every successful commit (the
	// in-process relay's wake-up). It must not block.
	OnCommit func()
	// Logger receives failures. Defaults to discarding.
	Logger *slog.Logger
}

// Committer coalesces concurrent appends into shared transactions (group
// commit). Each Append returns only after the transaction holding its events
// committed, or with an error, in which case none of its events were stored
// by it. Appends from different callers share a transaction only while all of
// them succeed: when a shared transaction fails, each append is retried in a
// transaction of its own, so one caller's failure never fails another's.
type Committer struct {
	pool  *pgxpool.Pool
	cfg   CommitterConfig
	queue chan *appendReq

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

type appendReq struct {
	ctx  context.Context
	evs  []NewEvent
	out  []Outcome
	err  error
	done chan struct{}
}

// NewCommitter returns a Committer on pool; Run runs its writers. Appends
// made before Run wait in the queue.
func NewCommitter(pool *pgxpool.Pool, cfg CommitterConfig) *Committer {
	if cfg.Writers <= 0 {
		cfg.Writers = DefaultWriters
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.TxTimeout <= 0 {
		cfg.TxTimeout = DefaultTxTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Committer{pool: pool, cfg: cfg, queue: make(chan *appendReq, cfg.QueueSize)}
}

// Run runs the writers until ctx ends. Then it refuses new appends
// (ErrClosed), commits every append already queued, and returns nil once the
// writers are done: an append accepted into the queue is always answered
// with its commit's outcome. Each commit is bounded by TxTimeout, so Run
// returns within about TxTimeout of a stuck database. Run runs once.
func (c *Committer) Run(ctx context.Context) error {
	c.wg.Add(c.cfg.Writers)
	for range c.cfg.Writers {
		go c.writer()
	}
	<-ctx.Done()
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

// Append stores evs durably and returns one Outcome per event (see AppendTx).
// It fails fast with ErrOverloaded when the queue is full and ErrClosed once
// Run's context ended. If ctx ends while the append waits, Append returns ctx.Err(); the
// events may or may not have been stored, and a retry is answered as a
// duplicate where they were.
func (c *Committer) Append(ctx context.Context, evs []NewEvent) ([]Outcome, error) {
	if len(evs) == 0 {
		return []Outcome{}, nil
	}
	r := &appendReq{ctx: ctx, evs: evs, done: make(chan struct{})}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case c.queue <- r:
		c.mu.RUnlock()
	default:
		c.mu.RUnlock()
		return nil, ErrOverloaded
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// QueueLen reports how many appends wait for a writer.
func (c *Committer) QueueLen() int { return len(c.queue) }

// writerConn is the pool connection a writer keeps: pgx keeps each
// connection's largest statement's parameters (a group's arrays of
// envelopes, ~1 MiB) for its next statement, so a connection that has
// committed a group holds them; kept by their writers, only Writers
// connections do, not every connection of the pool in turn.
type writerConn struct {
	pool *pgxpool.Pool
	conn *pgxpool.Conn
}

func (w *writerConn) get(ctx context.Context) (*pgxpool.Conn, error) {
	if w.conn == nil {
		conn, err := w.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		w.conn = conn
	}
	return w.conn, nil
}

// release gives the connection back to the pool, which closes it if it is
// broken; the next commit takes another.
func (w *writerConn) release() {
	if w.conn != nil {
		w.conn.Release()
		w.conn = nil
	}
}

func (c *Committer) writer() {
	defer c.wg.Done()
	wc := &writerConn{pool: c.pool}
	defer wc.release()
	batch := make([]*appendReq, 0, 64)
	for r := range c.queue {
		batch = append(batch[:0], r)
		n := len(r.evs)
	drain:
		for n < c.cfg.MaxEvents {
			select {
			case r, ok := <-c.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				n += len(r.evs)
			default:
				break drain
			}
		}
		c.commitGroup(wc, batch)
	}
}

func (c *Committer) commitGroup(wc *writerConn, batch []*appendReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		c.commitOne(wc, live[0])
		return
	}
	var all []NewEvent
	for _, r := range live {
		all = append(all, r.evs...)
	}
	out, err := c.commit(wc, all)
	if err != nil {
		c.cfg.Logger.Warn("shared ingest transaction failed; retrying each append alone",
			"appends", len(live), "events", len(all), "error", err)
		for _, r := range live {
			c.commitOne(wc, r)
		}
		return
	}
	for _, r := range live {
		r.out, out = out[:len(r.evs):len(r.evs)], out[len(r.evs):]
		close(r.done)
	}
}

func (c *Committer) commitOne(wc *writerConn, r *appendReq) {
	r.out, r.err = c.commit(wc, r.evs)
	close(r.done)
}

func (c *Committer) commit(wc *writerConn, evs []NewEvent) (out []Outcome, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.TxTimeout)
	defer cancel()
	conn, err := wc.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("commit %d events: %w", len(evs), err)
	}
	// One statement outside a transaction block is its own transaction:
	// BEGIN, the notification and COMMIT would each be a round trip more.
	// It has committed when it returns without error.
	out, err = appendEvents(ctx, conn, evs, !c.cfg.NoNotify)
	if err != nil {
		wc.release()
		return nil, fmt.Errorf("commit %d events: %w", len(evs), err)
	}
	if c.cfg.OnCommit != nil {
		c.cfg.OnCommit()
	}
	return out, nil
}
