//go:build chaos

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prost-platform/prost/pkg/busstate"
)

// TestChaosBusLoss (issue 12 item 4): the bus is derived state. Under the
// usual load of two Apps, with a rule per App recording a decision for
// every event, the audit consumer is killed half-way and stays down (held
// back: the rest of the load is published, decided on by the rules engine
// and not audited). Then every process stops, NATS's data directory is
// wiped, and everything but the audit consumer starts again, with
// PROST_BUS_REBUILD=manual. The loss must be detected (an ERROR in the
// relay's log, /readyz 503 naming it, prost_bus_loss_detected 1), the
// relay must hold back the events accepted meanwhile, and `prost audit
// verify` must name the first event without an audit entry. After `prost
// streams rebuild --since` the time the loss report suggests, and the audit
// consumer started again, every accepted event is audited exactly once and
// in per-key order, and the rules engine's decisions are what they were
// (plus one per new event): nothing was applied twice.
//
// go test -tags chaos -count=1 -v -run TestChaosBusLoss ./cmd/prost/
func TestChaosBusLoss(t *testing.T) {
	if only := os.Getenv("PROST_CHAOS_ONLY"); only != "" && !strings.Contains(","+only+",", ",bus-loss,") {
		t.Skip("PROST_CHAOS_ONLY does not name bus-loss")
	}
	began := time.Now()
	suite := &chaosSuite{}
	suite.prostBin, suite.natsBin = chaosBins(t, t.TempDir())
	ps := newProcs(t)
	ps.dumpOnFailure()
	suite.pg = startPostgres(t, ps)
	s := suite.startScenario(t, chaosScenario{name: "bus-loss", rules: true,
		env: []string{"PROST_BUS_REBUILD=manual", "PROST_BUS_CHECK_INTERVAL=1s"}})
	for _, a := range s.apps {
		s.adminOrTenant(t, http.MethodPost, "/v1/rules", &a,
			`{"name":"tick","filters":[{"exact":{"type":"`+chaosType+`"}}],"actions":[{"emit":{"type":"chaos.seen","source":"/rule"}}]}`, http.StatusCreated)
	}

	// The load, with the audit consumer killed half-way.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loadDone := make(chan *loadResult, 1)
	go func() { loadDone <- runLoad(ctx, "http://"+s.gateway.addr, s.apps, chaosLoad) }()
	time.Sleep(time.Duration(chaosLoad.perClient) * chaosLoad.interval / 2)
	s.governance.kill()
	t.Logf("audit consumer killed at %s into the load", time.Since(began).Round(time.Millisecond))
	res := <-loadDone
	t.Logf("load finished: %s", res.summary())
	if errs := res.errors(); len(errs) > 0 {
		t.Fatalf("load generator errors (%d), first: %s", len(errs), errs[0])
	}

	// Everything published and decided on; the audit consumer behind.
	var decisionsBefore int
	deadline := time.Now().Add(90 * time.Second)
	for {
		var pending, stored, decided int
		if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL AND refused_at IS NULL),
			(SELECT count(*) FROM events WHERE type = $1), (SELECT count(*) FROM decisions)`, chaosType).Scan(&pending, &stored, &decided); err != nil {
			t.Fatal(err)
		}
		if pending == 0 && decided == stored && s.rulesQuiet(t) {
			decisionsBefore = decided
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: pending=%d stored=%d decided=%d", pending, stored, decided)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var audited, stored int
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_log WHERE event_type = $1), (SELECT count(*) FROM events WHERE type = $1)`,
		chaosType).Scan(&audited, &stored); err != nil {
		t.Fatal(err)
	}
	t.Logf("before the wipe: %d events stored, %d audited, %d decisions", stored, audited, decisionsBefore)
	if audited >= stored {
		t.Fatalf("the audit consumer was not held back: %d of %d audited", audited, stored)
	}

	// Stop everything, wipe NATS's data directory, start all but the
	// audit consumer again.
	for _, p := range []*prostProc{s.gateway, s.relay, s.rules} {
		p.kill()
	}
	n := s.nats[0]
	n.kill()
	if err := os.RemoveAll(n.storeDir); err != nil {
		t.Fatal(err)
	}
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	waitJetStream(t, n.url(), s.keys.ServiceCreds, 60*time.Second)
	t.Logf("NATS data directory %s wiped; NATS started again", n.storeDir)
	for _, p := range []*prostProc{s.gateway, s.relay, s.rules} {
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		p.waitHealthy(t)
	}

	// Detected: logged as an error, readiness and a metric say so.
	var why string
	waitFor(t, 60*time.Second, "the gateway's /readyz names the loss", func() bool {
		code, body := httpGet(t, "http://"+s.gateway.addr+"/readyz", "")
		why = body
		return code == http.StatusServiceUnavailable && strings.Contains(body, "PROST_EVENTS lost messages it had acknowledged")
	})
	t.Logf("readyz: %s", why)
	if !strings.Contains(s.relay.tail(1<<20), `level=ERROR msg="bus: PROST_EVENTS lost messages it had acknowledged`) {
		t.Errorf("the relay did not log the loss as an ERROR:\n%s", s.relay.tail(3000))
	}
	waitFor(t, 30*time.Second, "prost_bus_loss_detected is 1", func() bool {
		_, body := httpGet(t, "http://"+s.gateway.addr+"/metrics", chaosAdminToken)
		return strings.Contains(body, `prost_bus_loss_detected{stream="PROST_EVENTS"} 1`)
	})

	// The relay holds back what is accepted now: it would reach the
	// consumers before the lost events.
	after := postMore(t, s, res, 3)
	time.Sleep(2 * time.Second)
	var pending int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL AND refused_at IS NULL`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending < after {
		t.Errorf("the relay published events accepted after the loss (%d of %d pending) before the lost ones were rebuilt", pending, after)
	}

	// prost audit verify names the first event without its entry.
	out, code := s.prostCLI(t, "audit", "verify", "--settle", "0s")
	t.Logf("prost audit verify (exit %d):\n%s", code, out)
	if code != 1 || !strings.Contains(out, "MISSING app") {
		t.Errorf("prost audit verify did not name the missing entries (exit %d)", code)
	}
	first := regexp.MustCompile(`first: event "([^"]+)" \(source "([^"]+)"`).FindStringSubmatch(out)
	if first == nil {
		t.Fatalf("prost audit verify names no first missing event")
	}
	var has bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log WHERE event_id = $1 AND event_source = $2)`, first[1], first[2]).Scan(&has); err != nil {
		t.Fatal(err)
	}
	if has {
		t.Errorf("prost audit verify named event %s, which is audited", first[1])
	}

	// Recovery: the rebuild the loss report suggests.
	var status busstate.Status
	_, body := httpGet(t, "http://"+s.gateway.addr+"/admin/v1/streams", chaosAdminToken)
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var since string
	for _, r := range status.Rebuilds {
		if r.Cause == busstate.CauseLoss {
			since = r.Since.UTC().Format(time.RFC3339Nano)
		}
	}
	if since == "" {
		t.Fatalf("no loss recorded: %s", body)
	}
	out, code = s.prostCLI(t, "streams", "rebuild", "--since", since)
	t.Logf("prost streams rebuild --since %s (exit %d):\n%s", since, code, out)
	if code != 0 {
		t.Fatalf("prost streams rebuild failed")
	}
	waitFor(t, 30*time.Second, "the gateway is ready again", func() bool {
		code, _ := httpGet(t, "http://"+s.gateway.addr+"/readyz", "")
		return code == http.StatusOK
	})
	s.governance.restart(t)

	quiet := s.waitQuiet(t, 120*time.Second)
	r := s.check(t, res)
	// The rules engine, killed with -9 before the wipe, takes its lanes
	// back once its old leases expire (PROST_LEASE_TTL): wait for it to
	// decide on the new events before comparing.
	var decisionsAfter int
	waitFor(t, 60*time.Second, "the rules engine decided on the new events", func() bool {
		return s.pool.QueryRow(ctx, `SELECT count(*) FROM decisions`).Scan(&decisionsAfter) == nil && decisionsAfter >= decisionsBefore+after
	})
	time.Sleep(time.Second) // a decision made twice would show now
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM decisions`).Scan(&decisionsAfter); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("scenario=bus-loss sent=%d accepted=%d audited=%d duplicates=%d lost=%d decisions=%d->%d (+%d new events)",
		res.sent.Load()+int64(after), res.accepted.Load()+int64(after), r.audited, r.duplicates, r.lost, decisionsBefore, decisionsAfter, after)
	fmt.Println(line)
	if !quiet {
		t.Errorf("the platform did not become quiet")
	}
	if r.duplicates != 0 || r.lost != 0 {
		t.Errorf("duplicates=%d lost=%d (first lost: %v)", r.duplicates, r.lost, r.lostSample)
	}
	if n := len(r.orderViolations); n > 0 {
		t.Errorf("%d per-key order violations; first: %s", n, strings.Join(r.orderViolations[:min(n, 5)], "; "))
	}
	if !r.chainOK {
		t.Errorf("audit verify: %s", r.chainDetail)
	}
	if decisionsAfter != decisionsBefore+after {
		t.Errorf("the rules engine's decisions went from %d to %d with %d new events: events were decided on again", decisionsBefore, decisionsAfter, after)
	}
	out, code = s.prostCLI(t, "audit", "verify", "--settle", "0s")
	if code != 0 {
		t.Errorf("prost audit verify after the recovery (exit %d):\n%s", code, out)
	}
	t.Logf("took %s", time.Since(began).Round(time.Second))
}

// postMore posts n events per App with new keys after the load, each
// answered 202, and adds them to what res expects audited.
func postMore(t *testing.T, s *scenarioEnv, res *loadResult, n int) int {
	t.Helper()
	httpc := &http.Client{Timeout: 20 * time.Second}
	count := 0
	for ai, a := range s.apps {
		key := fmt.Sprintf("after-a%d", ai)
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("%s-%06d", key, i)
			body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":%q,"partitionkey":%q,"data":{"key":%q,"seq":%d}}`,
				id, chaosSource, chaosType, key, key, i)
			if err := postUntilAnswered(context.Background(), httpc, "http://"+s.gateway.addr, a, []byte(body), res); err != nil {
				t.Fatal(err)
			}
			res.mu.Lock()
			res.ids[a.AppID.String()][id] = true
			res.mu.Unlock()
			count++
		}
	}
	return count
}

// rulesQuiet reports whether every rules-engine durable has nothing
// pending or unacknowledged.
func (s *scenarioEnv) rulesQuiet(t *testing.T) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, "PROST_EVENTS")
	if err != nil {
		return false
	}
	ok := true
	for ci := range st.ListConsumers(ctx).Info() {
		if strings.HasPrefix(ci.Name, "rules-engine") && (ci.NumPending > 0 || ci.NumAckPending > 0) {
			ok = false
		}
	}
	return ok
}

// adminOrTenant sends a request as the App (a non-nil) or as the operator
// and fails the test unless it is answered want.
func (s *scenarioEnv) adminOrTenant(t *testing.T, method, path string, a *creds, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.gateway.addr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if a != nil {
		req.Header.Set("X-Prost-App-Key", a.APIKey)
		req.Header.Set("X-Prost-App-Secret", a.APISecret)
	} else {
		req.Header.Set("Authorization", "Bearer "+chaosAdminToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

// prostCLI runs the prost binary against the gateway as an operator and
// returns its output and exit code.
func (s *scenarioEnv) prostCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(s.suite.prostBin, args...)
	cmd.Env = append(baseEnv(), "PROST_URL=http://"+s.gateway.addr, "PROST_ADMIN_TOKEN="+chaosAdminToken)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// waitHealthy waits until the process answers /healthz (it may not be
// ready: readiness is what the test looks at).
func (pp *prostProc) waitHealthy(t *testing.T) {
	t.Helper()
	waitFor(t, 60*time.Second, pp.name+" answers /healthz", func() bool {
		if pp.exitedUnexpectedly() {
			t.Fatalf("%s exited during start:\n%s", pp.name, pp.tail(4000))
		}
		code, _ := httpGet(t, "http://"+pp.addr+"/healthz", "")
		return code == http.StatusOK
	})
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
