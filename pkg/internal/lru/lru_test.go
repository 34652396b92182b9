package lru

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCache(t *testing.T) {
	t.Parallel()
	c := New[string, int](2, 0)
	c.Put("a", 1)
	c.Put("b", 2)
	_, _ = c.Get("a") // a is now the most recently used
	c.Put("c", 3)     // evicts b
	_, ok := c.Get("b")
	require.False(t, ok)
	v, ok := c.Get("a")
	require.True(t, ok)
	require.Equal(t, 1, v)
	c.Put("a", 10)
	v, _ = c.Get("a")
	require.Equal(t, 10, v)
	require.Equal(t, 2, c.Len())
	c.RemoveIf(func(k string) bool { return k == "c" })
	c.Remove("a")
	require.Zero(t, c.Len())
}

// TestPutIfGen: a value read before a removal is not cached after it, even
// when the removal was of a key not yet in the cache (the reader's own), and
// a read that saw no removal is cached.
func TestPutIfGen(t *testing.T) {
	t.Parallel()
	for _, remove := range []struct {
		name string
		fn   func(c *Cache[string, int])
	}{
		{"Remove of the key being read", func(c *Cache[string, int]) { c.Remove("a") }},
		{"Remove of another key", func(c *Cache[string, int]) { c.Remove("zzz") }},
		{"RemoveIf", func(c *Cache[string, int]) { c.RemoveIf(func(string) bool { return true }) }},
	} {
		t.Run(remove.name, func(t *testing.T) {
			t.Parallel()
			c := New[string, int](10, 0)
			gen := c.Gen()
			remove.fn(c) // a change lands while the reader reads
			require.False(t, c.PutIfGen("a", 1, gen))
			_, ok := c.Get("a")
			require.False(t, ok, "the stale read must not be cached")

			gen = c.Gen()
			require.True(t, c.PutIfGen("a", 2, gen))
			v, ok := c.Get("a")
			require.True(t, ok)
			require.Equal(t, 2, v)
		})
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	c := New[int, string](10, time.Second)
	c.now = func() time.Time { return now }
	c.Put(1, "x")
	_, ok := c.Get(1)
	require.True(t, ok)
	now = now.Add(2 * time.Second)
	_, ok = c.Get(1)
	require.False(t, ok, "expired")
	require.Zero(t, c.Len())
}

// TestNewAllocatesForWhatItHolds: an empty cache of 100,000 entries costs
// next to nothing; it used to size its map for every entry up front (about
// 20 MiB per cache, seven caches in a process).
func TestNewAllocatesForWhatItHolds(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := New[string, int](100_000, 0)
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10))
	c.Put("a", 1)
	v, ok := c.Get("a")
	require.True(t, ok)
	require.Equal(t, 1, v)
}
