package apps

import "time"

// SetClock makes s read the time from now, so a test can let its cache
// entries expire without waiting (and without depending on how fast a
// loaded machine runs).
func SetClock(s *Store, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}
