// Package lease shares the partitions of a worker group (today: one
// consumer's lanes) among the instances that run it, so
// that N instances can run side by side and each partition is worked by
// exactly one of them at a time.
//
// The leases live in PROST's Postgres (tables lease_members and
// partition_leases), which every instance already depends on: no consensus
// of PROST's own, only row locks and timestamps the database orders.
//
// Guarantees:
//
//   - At most one owner: a partition is taken with one UPDATE that moves its
//     owner and its epoch together, only when it is free or its lease has
//     expired. A worker proves it still owns its partition inside the very
//     transaction that applies its work (Hold: a FOR SHARE lock on the lease
//     row, checked against owner and epoch), so a takeover waits for that
//     transaction, and a worker whose lease was taken cannot commit after
//     the new owner started (fencing).
//   - Fair shares: every Interval each instance stamps itself alive and
//     counts the live instances; it holds at most ceil(partitions/alive) and
//     hands back the rest (after their work stopped), which the others pick
//     up. An instance joining gets its share within about two intervals.
//   - Takeover: the partitions of an instance that died are free once its
//     leases expire (TTL after its last renewal); a survivor takes them at
//     its next interval, so within TTL + Interval (12 s with the defaults).
//     A graceful stop hands its partitions back at once.
//   - Losing the database: an instance that cannot renew for a TTL stops all
//     its work before another instance may take it over.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/lease/internal/leasedb"
)

// Defaults of Config.
const (
	// DefaultTTL is how long a lease lasts without renewal.
	DefaultTTL = 10 * time.Second
	// DefaultInterval is how often leases are renewed and shares balanced.
	DefaultInterval = 2 * time.Second
)

// ErrLost is returned by Hold when the lease is no longer this instance's.
var ErrLost = errors.New("lease: partition is no longer held by this instance")

// Config describes a worker group.
type Config struct {
	// Group names the worker group, e.g. "consumer:governance-audit". Every
	// instance of the group uses the same name.
	Group string
	// Partitions is the number of partitions, numbered 0 to Partitions-1.
	Partitions int
	// Instance identifies this instance. Defaults to host-pid-random.
	Instance string
	// TTL is how long a lease lasts without renewal. Defaults to DefaultTTL.
	TTL time.Duration
	// Interval is how often leases are renewed and shares balanced; it must
	// be well under TTL. Defaults to DefaultInterval, or TTL/5 when TTL is
	// set and Interval is not.
	Interval time.Duration
	// Logger receives changes of ownership. Defaults to discarding.
	Logger *slog.Logger
}

// Lease is one partition held by this instance.
type Lease struct {
	Group     string
	Partition int
	Instance  string
	// Epoch moves with every change of owner.
	Epoch int64
}

// Work does the work of one partition until ctx ends (the lease was lost,
// must be handed back, or the group stops). The lease is handed back when
// Work returns.
type Work func(ctx context.Context, l Lease)

// Group runs Work for the partitions this instance holds.
type Group struct {
	pool *pgxpool.Pool
	q    *leasedb.Queries
	cfg  Config

	mu      sync.Mutex
	running map[int]*held
	wg      sync.WaitGroup
}

type held struct {
	lease   Lease
	cancel  context.CancelFunc
	leaving bool // handed back once its work returns
}

// New returns a Group; it talks to the database only in Run.
func New(pool *pgxpool.Pool, cfg Config) (*Group, error) {
	if cfg.Group == "" {
		return nil, errors.New("lease: Group is required")
	}
	if cfg.Partitions <= 0 {
		return nil, errors.New("lease: Partitions must be positive")
	}
	if cfg.Instance == "" {
		cfg.Instance = NewInstanceID()
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(DefaultInterval, cfg.TTL/5)
	}
	if cfg.Interval*2 >= cfg.TTL {
		return nil, fmt.Errorf("lease: Interval %s must be under half of TTL %s", cfg.Interval, cfg.TTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Group{pool: pool, q: leasedb.New(pool), cfg: cfg, running: map[int]*held{}}, nil
}

// NewInstanceID returns host-pid-random, unique per process start.
func NewInstanceID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Instance is this instance's id.
func (g *Group) Instance() string { return g.cfg.Instance }

// Held lists the partitions whose work runs here now.
func (g *Group) Held() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]int, 0, len(g.running))
	for p := range g.cfg.Partitions {
		if _, ok := g.running[p]; ok {
			out = append(out, p)
		}
	}
	return out
}

// Run takes this instance's share of the partitions and runs work for each
// until ctx ends; it then stops every work, hands the partitions back and
// returns nil.
func (g *Group) Run(ctx context.Context, work Work) error {
	log := g.cfg.Logger.With("lease_group", g.cfg.Group, "instance", g.cfg.Instance)
	lastRenewed := time.Now()
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		if err := g.tick(ctx, work, log); err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("lease: cannot renew", "error", err)
			// Another instance may take these partitions once their leases
			// expire: stop before that can happen.
			if time.Since(lastRenewed) > g.cfg.TTL-g.cfg.Interval {
				g.stopAll(log, "leases could not be renewed")
			}
		} else {
			lastRenewed = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		break
	}
	g.stopAll(log, "stopping")
	g.wg.Wait()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = g.q.Leave(cctx, leasedb.LeaveParams{Grp: g.cfg.Group, Instance: g.cfg.Instance})
	return nil
}

// tick renews what this instance holds, stops what it lost, hands back what
// is over its share and takes what it is missing.
func (g *Group) tick(ctx context.Context, work Work, log *slog.Logger) error {
	if err := g.q.Stamp(ctx, leasedb.StampParams{Grp: g.cfg.Group, Instance: g.cfg.Instance}); err != nil {
		return err
	}
	if err := g.q.Forget(ctx, leasedb.ForgetParams{Grp: g.cfg.Group, TtlMs: g.cfg.TTL.Milliseconds()}); err != nil {
		return err
	}
	alive, err := g.q.Alive(ctx, leasedb.AliveParams{Grp: g.cfg.Group, TtlMs: g.cfg.TTL.Milliseconds()})
	if err != nil {
		return err
	}
	renewed, err := g.q.Renew(ctx, leasedb.RenewParams{Grp: g.cfg.Group, Instance: g.cfg.Instance, TtlMs: g.cfg.TTL.Milliseconds()})
	if err != nil {
		return err
	}
	still := map[int]int64{}
	for _, r := range renewed {
		still[int(r.Partition)] = r.Epoch
	}

	g.mu.Lock()
	for p, h := range g.running {
		if e, ok := still[p]; !ok || e != h.lease.Epoch {
			log.Warn("lease: partition taken over; stopping its work", "partition", p)
			h.cancel()
		}
	}
	share := (g.cfg.Partitions + int(alive) - 1) / max(int(alive), 1)
	kept := 0
	for p := range g.cfg.Partitions {
		h, ok := g.running[p]
		if !ok || h.leaving {
			continue
		}
		if _, ok := still[p]; !ok {
			continue
		}
		kept++
		if kept > share {
			log.Info("lease: handing a partition back to balance", "partition", p, "alive", alive, "share", share)
			h.leaving = true
			h.cancel()
		}
	}
	// Leases this instance still holds in the table without working them:
	// their work stopped while the database could not be reached for a TTL,
	// and handing them back failed with it. Renew keeps such a lease alive
	// and Acquire does not take it (it is neither free nor expired), so
	// without this the partition would stay held and unworked for good.
	// Work it again within the share; hand back the rest.
	var orphans []Lease
	for p, e := range still {
		if _, ok := g.running[p]; !ok {
			orphans = append(orphans, Lease{Group: g.cfg.Group, Partition: p, Instance: g.cfg.Instance, Epoch: e})
		}
	}
	busy := len(g.running)
	g.mu.Unlock()
	slices.SortFunc(orphans, func(a, b Lease) int { return a.Partition - b.Partition })
	for _, l := range orphans {
		if l.Partition < g.cfg.Partitions && kept < share {
			kept++
			busy++
			log.Info("lease: working again a partition still held", "partition", l.Partition, "epoch", l.Epoch)
			g.start(ctx, l, work, log)
			continue
		}
		if err := g.q.Release(ctx, leasedb.ReleaseParams{Grp: l.Group, Partition: int32(l.Partition), Instance: l.Instance, Epoch: l.Epoch}); err != nil {
			return err
		}
	}

	want := share - kept
	if want <= 0 || busy >= share {
		return nil
	}
	if err := g.q.EnsurePartitions(ctx, leasedb.EnsurePartitionsParams{Grp: g.cfg.Group, Partitions: int32(g.cfg.Partitions)}); err != nil {
		return err
	}
	got, err := g.q.Acquire(ctx, leasedb.AcquireParams{
		Instance: g.cfg.Instance, TtlMs: g.cfg.TTL.Milliseconds(), Grp: g.cfg.Group,
		Partitions: int32(g.cfg.Partitions), N: int32(min(want, share-busy)),
	})
	if err != nil {
		return err
	}
	for _, a := range got {
		l := Lease{Group: g.cfg.Group, Partition: int(a.Partition), Instance: g.cfg.Instance, Epoch: a.Epoch}
		log.Info("lease: took a partition", "partition", l.Partition, "epoch", l.Epoch, "alive", alive, "share", share)
		g.start(ctx, l, work, log)
	}
	return nil
}

// start runs work for l; when it returns the lease is handed back.
func (g *Group) start(ctx context.Context, l Lease, work Work, log *slog.Logger) {
	wctx, cancel := context.WithCancel(ctx)
	h := &held{lease: l, cancel: cancel}
	g.mu.Lock()
	g.running[l.Partition] = h
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		work(wctx, l)
		cancel()
		// Hand back only once the work stopped: from here on nothing of
		// this instance touches the partition.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if err := g.q.Release(rctx, leasedb.ReleaseParams{Grp: l.Group, Partition: int32(l.Partition), Instance: l.Instance, Epoch: l.Epoch}); err != nil {
			log.Warn("lease: hand back failed; the lease expires instead", "partition", l.Partition, "error", err)
		}
		g.mu.Lock()
		if g.running[l.Partition] == h {
			delete(g.running, l.Partition)
		}
		g.mu.Unlock()
	}()
}

func (g *Group) stopAll(log *slog.Logger, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for p, h := range g.running {
		if !h.leaving {
			log.Info("lease: stopping the work of a partition", "partition", p, "why", why)
		}
		h.leaving = true
		h.cancel()
	}
}

// Hold proves, inside tx, that l is still this instance's, and keeps the
// lease from being taken over until tx ends. It returns ErrLost otherwise:
// the caller must roll tx back and stop working the partition.
func Hold(ctx context.Context, tx pgx.Tx, l Lease) error {
	_, err := leasedb.New(tx).Hold(ctx, leasedb.HoldParams{Grp: l.Group, Partition: int32(l.Partition), Instance: l.Instance, Epoch: l.Epoch})
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrLost
	}
	return err
}

// Owner is one partition's lease as stored.
type Owner struct {
	Partition int        `json:"partition"`
	Owner     string     `json:"owner,omitempty"`
	Epoch     int64      `json:"epoch"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Owners lists who holds each partition of group.
func Owners(ctx context.Context, pool *pgxpool.Pool, group string) ([]Owner, error) {
	rows, err := leasedb.New(pool).Owners(ctx, group)
	if err != nil {
		return nil, err
	}
	out := make([]Owner, 0, len(rows))
	for _, r := range rows {
		o := Owner{Partition: int(r.Partition), Epoch: r.Epoch, ExpiresAt: r.ExpiresAt}
		if r.Owner != nil {
			o.Owner = *r.Owner
		}
		out = append(out, o)
	}
	return out, nil
}
