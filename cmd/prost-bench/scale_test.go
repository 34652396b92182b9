package main

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInParallel: every index is done exactly once, by a worker in range,
// and an error stops nothing but is returned.
func TestInParallel(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	done := map[int]int{}
	boom := errors.New("boom")
	err := inParallel(100, 4, func(w, i int) error {
		require.True(t, w >= 0 && w < 4, "worker %d", w)
		mu.Lock()
		done[i]++
		mu.Unlock()
		if i%10 == 3 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	require.Len(t, done, 100)
	for i, n := range done {
		require.Equal(t, 1, n, "index %d", i)
	}
	require.NoError(t, inParallel(0, 4, func(int, int) error { return boom }), "nothing to do")
}
