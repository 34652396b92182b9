// Package lru is a bounded least-recently-used cache whose entries may
// also expire, shared by the registry and the contracts store.
package lru

import (
	"container/list"
	"sync"
	"time"
)

// Cache is a bounded least-recently-used cache whose entries may also expire.
// It is safe for concurrent use. The zero value is not usable; use New.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration // 0: entries never expire
	ll    *list.List
	items map[K]*list.Element
	now   func() time.Time
	gen   uint64 // counts Remove and RemoveIf calls (see Gen)
}

type lruEntry[K comparable, V any] struct {
	key     K
	val     V
	expires time.Time
}

// New returns a cache of at most max entries, each valid for ttl (0: no
// expiry). Its memory grows with the entries it holds, up to max: the map
// is not sized for max up front (100,000 entries made each cache take about
// 20 MiB before its first entry).
func New[K comparable, V any](max int, ttl time.Duration) *Cache[K, V] {
	return &Cache[K, V]{max: max, ttl: ttl, ll: list.New(), items: map[K]*list.Element{}, now: time.Now}
}

// Get returns the value of key if it is cached and has not expired.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	e := el.Value.(*lruEntry[K, V])
	if c.ttl > 0 && c.now().After(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		var zero V
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

// Put stores key, evicting the least recently used entry when full.
func (c *Cache[K, V]) Put(key K, val V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(key, val)
}

func (c *Cache[K, V]) put(key K, val V) {
	var exp time.Time
	if c.ttl > 0 {
		exp = c.now().Add(c.ttl)
	}
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry[K, V])
		e.val, e.expires = val, exp
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&lruEntry[K, V]{key: key, val: val, expires: exp})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*lruEntry[K, V]).key)
	}
}

// Gen is the cache's generation, which every Remove and RemoveIf changes. A
// caller that fills the cache from elsewhere takes Gen before it reads and
// stores what it read with PutIfGen: a removal in between (the value read
// may predate the change that caused it) then wins, where a plain Put would
// cache the stale value until it expires.
func (c *Cache[K, V]) Gen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// PutIfGen stores key like Put unless Remove or RemoveIf was called since Gen
// returned gen; it reports whether it stored.
func (c *Cache[K, V]) PutIfGen(key K, val V, gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return false
	}
	c.put(key, val)
	return true
}

// Remove drops key.
func (c *Cache[K, V]) Remove(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

// RemoveIf drops every entry whose key matches.
func (c *Cache[K, V]) RemoveIf(match func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, el := range c.items {
		if match(k) {
			c.ll.Remove(el)
			delete(c.items, k)
		}
	}
}

// Len is the number of entries held, expired or not.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
