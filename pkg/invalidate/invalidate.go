// Package invalidate tells every PROST process that something it may have
// cached has changed, through Postgres LISTEN/NOTIFY on Channel, and every
// process's Feed hands the key to the caches subscribed to the topic, which
// drop it. Caches can then keep what they read for long (DefaultTTL is only a
// safety net), instead of asking the database again every few seconds for
// every App.
//
// Apps, schema subjects and registry settings, and contracts are notified by
// triggers on their tables (migration 027), from the transaction that changes
// them: the notice is delivered when, and only when, the change commits,
// whoever made it. Other topics (dataprotect's destroyed keys) call Notify
// after their commit; a process that dies in between leaves the others to
// their own, short, TTL.
//
// A notification sent while a Feed is reconnecting is not heard, so on every
// (re)connection a Feed tells each subscriber to drop everything (key "").
package invalidate

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the Postgres notification channel.
const Channel = "prost_invalidate"

// DefaultTTL is how long a cache subscribed to a running Feed keeps an entry
// when it hears nothing. With the notices sent by triggers it is a safety net
// against a write the triggers do not see, not against a lost notification.
// It was 30 s while the notices were sent after the commit: with 1,000 Apps
// every process then read every App's credentials, schema states and
// contracts again twice a minute (docs/benchmarks.md).
const DefaultTTL = 10 * time.Minute

// Feed delivers invalidations to the subscribed caches of this process. A nil
// *Feed is usable: Notify and Subscribe do nothing.
type Feed struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu   sync.Mutex
	subs map[string][]func(key string)

	listening  chan struct{} // closed once the Feed first listens
	listenOnce sync.Once
}

// New returns a Feed on pool; Run it.
func New(pool *pgxpool.Pool, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Feed{pool: pool, log: log, subs: map[string][]func(string){}, listening: make(chan struct{})}
}

// closedChan is what a nil Feed's Listening returns.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Listening is closed once the Feed first listens: every change committed
// after that reaches the subscribers (a test waits for it before it caches
// what it means to see dropped). A nil Feed's is closed: there is nothing to
// wait for.
func (f *Feed) Listening() <-chan struct{} {
	if f == nil {
		return closedChan
	}
	return f.listening
}

// Subscribe calls fn with the key of every change notified on topic, by
// any process; key "" means "drop everything". fn must not block.
func (f *Feed) Subscribe(topic string, fn func(key string)) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[topic] = append(f.subs[topic], fn)
}

type message struct {
	Topic string `json:"t"`
	Key   string `json:"k"`
}

// Notify tells every process that key of topic changed. Call it after the
// change committed (topics with a trigger need no call). It fails only when
// the database does.
func (f *Feed) Notify(ctx context.Context, topic, key string) error {
	if f == nil {
		return nil
	}
	b, _ := json.Marshal(message{Topic: topic, Key: key})
	_, err := f.pool.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, string(b))
	return err
}

func (f *Feed) deliver(topic, key string) {
	f.mu.Lock()
	fns := append([]func(string){}, f.subs[topic]...)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(key)
	}
}

func (f *Feed) flushAll() {
	f.mu.Lock()
	var fns []func(string)
	for _, s := range f.subs {
		fns = append(fns, s...)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn("")
	}
}

// Run listens until ctx ends, reconnecting after a failure (and telling every
// subscriber to drop everything, since notifications may have been missed).
// It returns nil when ctx ends.
func (f *Feed) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := f.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.log.Warn("invalidate: listener lost; caches flushed, reconnecting", "error", err)
		f.flushAll()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (f *Feed) listen(ctx context.Context) error {
	c, err := f.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := c.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	// Whatever changed before the LISTEN took effect was not heard.
	f.flushAll()
	f.listenOnce.Do(func() { close(f.listening) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var m message
		if json.Unmarshal([]byte(n.Payload), &m) != nil {
			continue
		}
		f.deliver(m.Topic, m.Key)
	}
}
