package eventstore

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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

// CommitterConfig tunes a Committer. The zero value is usable.
type CommitterConfig struct {
	// Writers is the number of shared transactions in flight at once.
	// Defaults to 4.
	Writers int
	// MaxEvents caps the events one shared transaction takes from the queue.
	// A single append larger than this still commits, alone. Defaults to 2,000.
	MaxEvents int
	// QueueSize is how many appends may wait for a writer; past it Append
	// fails at once with ErrOverloaded. Defaults to 4,096.
	QueueSize int
	// TxTimeout bounds one shared transaction. Defaults to 10s.
	TxTimeout time.Duration
	// NoNotify leaves out the NOTIFY prost_outbox each transaction sends to
	// wake relays in other processes. Defaults to false (notify).
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

// NewCommitter starts a Committer's writers on pool. Close stops them.
func NewCommitter(pool *pgxpool.Pool, cfg CommitterConfig) *Committer {
	if cfg.Writers <= 0 {
		cfg.Writers = 4
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 2000
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.TxTimeout <= 0 {
		cfg.TxTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Committer{pool: pool, cfg: cfg, queue: make(chan *appendReq, cfg.QueueSize)}
	c.wg.Add(cfg.Writers)
	for range cfg.Writers {
		go c.writer()
	}
	return c
}

// Append stores evs durably and returns one Outcome per event (see AppendTx).
// It fails fast with ErrOverloaded when the queue is full and ErrClosed after
// Close. If ctx ends while the append waits, Append returns ctx.Err(); the
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

// Close stops accepting appends, lets the writers finish what is queued, and
// waits for them or for ctx.
func (c *Committer) Close(ctx context.Context) error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.queue)
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Committer) writer() {
	defer c.wg.Done()
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
		c.commitGroup(batch)
	}
}

func (c *Committer) commitGroup(batch []*appendReq) {
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
		c.commitOne(live[0])
		return
	}
	var all []NewEvent
	for _, r := range live {
		all = append(all, r.evs...)
	}
	out, err := c.commit(all)
	if err != nil {
		c.cfg.Logger.Warn("shared ingest transaction failed; retrying each append alone",
			"appends", len(live), "events", len(all), "error", err)
		for _, r := range live {
			c.commitOne(r)
		}
		return
	}
	for _, r := range live {
		r.out, out = out[:len(r.evs):len(r.evs)], out[len(r.evs):]
		close(r.done)
	}
}

func (c *Committer) commitOne(r *appendReq) {
	r.out, r.err = c.commit(r.evs)
	close(r.done)
}

func (c *Committer) commit(evs []NewEvent) (out []Outcome, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.TxTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		out, err = AppendTx(ctx, tx, evs)
		if err != nil {
			return err
		}
		if !c.cfg.NoNotify {
			return NotifyTx(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit %d events: %w", len(evs), err)
	}
	if c.cfg.OnCommit != nil {
		c.cfg.OnCommit()
	}
	return out, nil
}
