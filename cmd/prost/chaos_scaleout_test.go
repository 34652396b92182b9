//go:build chaos

package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	governancesvc "github.com/prost-platform/prost/services/governance"
	rulessvc "github.com/prost-platform/prost/services/rules"
)

// scaleoutLeaseTTL is the consumers' lease TTL in the scale-out scenario:
// the survivor must own every lane within it plus a renewal interval (a
// fifth of it) once the other instance was killed.
const scaleoutLeaseTTL = 4 * time.Second

// scaleoutScenario (issue 13): two relays and two instances of each
// consumer (governance, rules) share the work under load; one of each is
// killed with SIGKILL in the middle and not restarted. The load's checks
// require every accepted event audited once and in order per key; verify
// checks that the survivors took every lane over within the stated time.
func scaleoutScenario() chaosScenario {
	var killedAt time.Time
	return chaosScenario{
		name:      "scale-out-kill",
		rules:     true,
		instances: 2,
		env:       []string{"PROST_LEASE_TTL=" + scaleoutLeaseTTL.String()},
		fault: func(t *testing.T, s *scenarioEnv) {
			// Both instances of each consumer hold lanes before the kill.
			for _, grp := range []string{"consumer:" + governancesvc.ConsumerName, "consumer:" + rulessvc.ConsumerName} {
				if n := s.laneOwners(t, grp); n != 2 {
					t.Errorf("%s: lanes held by %d instances before the kill, want 2", grp, n)
				}
			}
			relay := s.relay
			if leads(s.relay2) {
				relay = s.relay2
			}
			killedAt = time.Now()
			s.killInFlight(t, s.governance, "messages delivered but not acknowledged", s.unacked)
			relay.kill()
			s.rules.kill()
			t.Logf("killed %s, %s and %s", s.governance.name, relay.name, s.rules.name)
		},
		verify: func(t *testing.T, s *scenarioEnv) {
			within := scaleoutLeaseTTL + scaleoutLeaseTTL/5 + 3*time.Second
			for _, grp := range []string{"consumer:" + governancesvc.ConsumerName, "consumer:" + rulessvc.ConsumerName} {
				took := time.Since(killedAt)
				for s.laneOwners(t, grp) != 1 || s.freeLanes(t, grp) != 0 {
					if time.Since(killedAt) > 2*time.Minute {
						t.Fatalf("%s: the survivor never took every lane", grp)
					}
					time.Sleep(100 * time.Millisecond)
				}
				// The lanes were taken over when their owner changed last.
				var last time.Time
				if err := s.pool.QueryRow(context.Background(), `SELECT max(taken_at) FROM partition_leases WHERE grp = $1`, grp).Scan(&last); err != nil {
					t.Fatal(err)
				}
				after := last.Sub(killedAt)
				t.Logf("%s: the survivor held every lane %s after the kill (checked after %s)", grp, after.Round(time.Millisecond), took.Round(time.Millisecond))
				if after > within {
					t.Errorf("%s: takeover took %s, more than the stated %s", grp, after, within)
				}
			}
		},
	}
}

// laneOwners counts the instances holding lanes of a lease group now.
func (s *scenarioEnv) laneOwners(t *testing.T, grp string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(DISTINCT owner) FROM partition_leases
		WHERE grp = $1 AND owner IS NOT NULL AND expires_at > now()`, grp).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// freeLanes counts the lanes of a group no live instance holds.
func (s *scenarioEnv) freeLanes(t *testing.T, grp string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM partition_leases
		WHERE grp = $1 AND (owner IS NULL OR expires_at <= now())`, grp).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// leads reports whether a relay's log says it leads now.
func leads(p *prostProc) bool {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return false
	}
	log := string(b)
	return strings.LastIndex(log, "relay is the leader") > strings.LastIndex(log, "relay stopped leading")
}
