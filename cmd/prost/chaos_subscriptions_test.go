//go:build chaos

package main

// The subscriptions scenario: an HTTP receiver in the test process that
// verifies every delivery's signature, one HTTP subscription of each App to
// the load's events, and the check that the receiver ends with every
// accepted event, in order per key, duplicates only of the same webhook-id.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prost-platform/prost/pkg/webhook"
)

// receipt is one delivery the receiver accepted.
type receipt struct {
	webhookID, tenant, eventID string
}

// chaosReceiver is a real HTTP receiver: one path per App, each verifying
// the App's subscription's signature.
type chaosReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	secrets  map[string]string // tenant -> signing secret
	got      []receipt
	badSigns int
}

func newChaosReceiver(t *testing.T) *chaosReceiver {
	r := &chaosReceiver{secrets: map[string]string{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *chaosReceiver) serve(w http.ResponseWriter, req *http.Request) {
	tenant := strings.TrimPrefix(req.URL.Path, "/")
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := webhook.Verify(r.secrets[tenant], req.Header, body, time.Now(), 0); err != nil {
		r.badSigns++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev struct{ ID string }
	_ = json.Unmarshal(body, &ev)
	r.got = append(r.got, receipt{webhookID: req.Header.Get(webhook.HeaderID), tenant: tenant, eventID: ev.ID})
	w.WriteHeader(http.StatusNoContent)
}

func (r *chaosReceiver) receipts() []receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receipt(nil), r.got...)
}

// subscribe gives App a an HTTP subscription to the load's events, POSTed to
// the receiver.
func (s *scenarioEnv) subscribe(t *testing.T, a creds) {
	t.Helper()
	body := fmt.Sprintf(`{"protocol":"HTTP","sink":%q,"types":[%q],"filters":[{"exact":{"source":%q}}]}`,
		s.rcv.URL+"/"+a.AppID.String(), chaosType, chaosSource)
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.gateway.addr+"/v1/subscriptions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Prost-App-Key", a.APIKey)
	req.Header.Set("X-Prost-App-Secret", a.APISecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create subscription: %d %s", resp.StatusCode, b)
	}
	var sub struct {
		ProtocolSettings struct {
			Secret string `json:"secret"`
		} `json:"protocolsettings"`
	}
	if err := json.Unmarshal(b, &sub); err != nil || sub.ProtocolSettings.Secret == "" {
		t.Fatalf("create subscription: no secret in %s", b)
	}
	s.rcv.mu.Lock()
	s.rcv.secrets[a.AppID.String()] = sub.ProtocolSettings.Secret
	s.rcv.mu.Unlock()
}

// deliveriesInFlight counts deliveries a worker has claimed and not
// finished: what a kill leaves for the rescuer.
func (s *scenarioEnv) deliveriesInFlight() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE kind = 'subscriptions.deliver' AND state = 'running'`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// checkDeliveries waits until the receiver holds every accepted event and no
// delivery waits, then checks: none lost; a duplicate only ever repeats a
// webhook-id (which the docs tell receivers to deduplicate on), each event
// always under the same one; each key's events first arrived in order; every
// signature verified.
func (s *scenarioEnv) checkDeliveries(t *testing.T, res *loadResult) {
	t.Helper()
	accepted := res.acceptedIDs()
	want := 0
	for _, ids := range accepted {
		want += len(ids)
	}
	deadline := time.Now().Add(120 * time.Second)
	var open int64
	for {
		first := map[string]bool{}
		for _, r := range s.rcv.receipts() {
			if accepted[r.tenant][r.eventID] {
				first[r.tenant+"/"+r.eventID] = true
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM subscription_deliveries WHERE state IN ('queued', 'pending')`).Scan(&open)
		cancel()
		if err == nil && open == 0 && len(first) >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("deliveries did not finish: %d of %d accepted events received, %d deliveries waiting", len(first), want, open)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	receipts := s.rcv.receipts()
	byEvent := map[string]string{} // tenant/event -> webhook-id
	seenWebhook := map[string]int{}
	lastSeq := map[string]int{}
	var duplicates, lost, received int
	var violations []string
	for _, r := range receipts {
		k := r.tenant + "/" + r.eventID
		if w, ok := byEvent[k]; ok && w != r.webhookID {
			violations = append(violations, fmt.Sprintf("event %s arrived under two webhook-ids %s and %s", k, w, r.webhookID))
		}
		byEvent[k] = r.webhookID
		if seenWebhook[r.webhookID]++; seenWebhook[r.webhookID] > 1 {
			duplicates++
			continue
		}
		received++
		key, n, ok := splitEventID(r.eventID)
		if !ok {
			continue
		}
		lk := r.tenant + "/" + key
		if prev, ok := lastSeq[lk]; ok && n <= prev {
			violations = append(violations, fmt.Sprintf("tenant %s key %s: %d first arrived after %d", r.tenant[:8], key, n, prev))
		}
		if n > lastSeq[lk] {
			lastSeq[lk] = n
		}
	}
	var lostSample []string
	for tenant, ids := range accepted {
		for id := range ids {
			if _, ok := byEvent[tenant+"/"+id]; !ok {
				lost++
				if len(lostSample) < 5 {
					lostSample = append(lostSample, tenant[:8]+"/"+id)
				}
			}
		}
	}
	s.rcv.mu.Lock()
	bad := s.rcv.badSigns
	s.rcv.mu.Unlock()
	line := fmt.Sprintf("scenario=subscriptions-kill deliveries: accepted=%d received=%d duplicates=%d (same webhook-id) lost=%d bad_signatures=%d",
		want, received, duplicates, lost, bad)
	fmt.Println(line)
	s.suite.lines = append(s.suite.lines, line)
	if lost > 0 {
		t.Errorf("%d accepted events never reached the receiver; first: %v", lost, lostSample)
	}
	if bad > 0 {
		t.Errorf("%d deliveries failed their signature check", bad)
	}
	if len(violations) > 0 {
		t.Errorf("%d delivery violations; first: %s", len(violations), strings.Join(violations[:min(len(violations), 5)], "; "))
	}
}
