//go:build chaos

package main

// The chaos suite (make test-chaos): real `prost serve` processes, real
// nats-server processes and a private Postgres cluster, a steady load of
// events with per-key sequence numbers, and one fault in the middle of it per
// scenario. After each scenario every event answered 202 must be in its
// tenant's audit log exactly once, and each partition key's events must be
// there in the order they were sent.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/natsauth"
)

const (
	chaosAdminToken = "prost-chaos-admin-token"
	chaosSource     = "/chaos"
	chaosType       = "chaos.tick"
	// chaosBusKey signs and verifies the bus messages of every process.
	chaosBusKey = "Y2hhb3MtYnVzLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE="
)

// chaosLoad shapes the load of every scenario: clients × perClient events,
// one every interval per client (about 230 events/s for about 14 s).
var chaosLoad = loadConfig{clients: 8, keysPerClient: 4, perClient: 400, interval: 35 * time.Millisecond}

// chaosSuite is what the scenarios share: the binaries and the private
// Postgres cluster (one fresh database per scenario).
type chaosSuite struct {
	prostBin, natsBin string
	pg                *pgCluster
	lines             []string
}

// scenarioEnv is one scenario's running platform.
type scenarioEnv struct {
	suite      *chaosSuite
	ps         *procs
	nats       []*natsNode
	dbURL      string
	pool       *pgxpool.Pool
	js         jetstream.JetStream
	gateway    *prostProc
	relay      *prostProc
	governance *prostProc
	rules      *prostProc // only when the scenario asks for it
	// relay2, governance2 and rules2 are second instances, in the
	// scenarios that run two of each.
	relay2, governance2, rules2 *prostProc
	apps                        []creds
	// keys is the private bus's key set (PROST_NATS_AUTH_DIR of every
	// process).
	keys *natsauth.KeySet
	// subscriptions and rcv run in the scenarios with subscriptions: the
	// subscriptions service and the HTTP receiver each App subscribes.
	subscriptions *prostProc
	rcv           *chaosReceiver
}

type chaosScenario struct {
	name    string
	cluster bool
	// subscriptions runs the subscriptions service, with an HTTP
	// subscription of each App to the load's events.
	subscriptions bool
	// env adds settings of the scenario's own; rules also runs the rules
	// service.
	env   []string
	rules bool
	// instances is how many of the relay and of each consumer service run
	// (1 or 2).
	instances int
	// verify, when set, runs after the load's checks.
	verify func(t *testing.T, s *scenarioEnv)
	// fault runs while the load is running, faultAfter into it.
	fault func(t *testing.T, s *scenarioEnv)
}

func TestChaos(t *testing.T) {
	began := time.Now()
	bins := t.TempDir()
	suite := &chaosSuite{}
	suite.prostBin, suite.natsBin = chaosBins(t, bins)
	ps := newProcs(t)
	ps.dumpOnFailure()
	suite.pg = startPostgres(t, ps)
	t.Logf("binaries built and private postgres on port %d ready in %s", suite.pg.port, time.Since(began).Round(time.Millisecond))

	scenarios := []chaosScenario{
		{name: "relay-kill", fault: func(t *testing.T, s *scenarioEnv) {
			// Kill the relay between a publish and its mark: rows stored in
			// the stream but still pending in the outbox.
			s.killInFlight(t, s.relay, "rows published but not marked", s.publishedUnmarked)
			time.Sleep(time.Second)
			s.relay.restart(t)
		}},
		{name: "governance-kill", fault: func(t *testing.T, s *scenarioEnv) {
			// Kill the consumer while it holds delivered, unacknowledged messages.
			s.killInFlight(t, s.governance, "messages delivered but not acknowledged", s.unacked)
			time.Sleep(time.Second)
			s.governance.restart(t)
		}},
		{name: "gateway-kill", fault: func(t *testing.T, s *scenarioEnv) {
			s.gateway.kill()
			time.Sleep(time.Second)
			s.gateway.restart(t)
		}},
		{name: "nats-restart", fault: func(t *testing.T, s *scenarioEnv) {
			n := s.nats[0]
			n.kill()
			time.Sleep(time.Second)
			if err := n.start(); err != nil {
				t.Fatal(err)
			}
			waitJetStream(t, n.url(), s.keys.ServiceCreds, 60*time.Second)
		}},
		{name: "postgres-restart", fault: func(t *testing.T, s *scenarioEnv) {
			s.suite.pg.kill()
			time.Sleep(time.Second)
			s.suite.pg.startAndWait(t)
		}},
		{name: "subscriptions-kill", subscriptions: true, fault: func(t *testing.T, s *scenarioEnv) {
			// Kill the subscriptions service while deliveries are in flight
			// (the receiver may have answered one it never recorded), and
			// the relay between a publish and its mark.
			s.killInFlight(t, s.subscriptions, "deliveries in flight", s.deliveriesInFlight)
			s.killInFlight(t, s.relay, "rows published but not marked", s.publishedUnmarked)
			time.Sleep(time.Second)
			s.subscriptions.restart(t)
			s.relay.restart(t)
		}},
		{name: "nats-cluster-leader-kill", cluster: true, fault: func(t *testing.T, s *scenarioEnv) {
			leader := s.streamLeader(t)
			t.Logf("PROST_EVENTS stream leader is %s; killing it", leader.name)
			leader.kill()
			time.Sleep(3 * time.Second)
			if err := leader.start(); err != nil {
				t.Fatal(err)
			}
		}},
		hostileTenantScenario(),
		scaleoutScenario(),
	}
	if only := os.Getenv("PROST_CHAOS_ONLY"); only != "" {
		scenarios = slices.DeleteFunc(scenarios, func(sc chaosScenario) bool { return !strings.Contains(","+only+",", ","+sc.name+",") })
		if len(scenarios) == 0 {
			t.Fatalf("PROST_CHAOS_ONLY=%s names no scenario", only)
		}
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { suite.run(t, sc) })
	}
	fmt.Println("chaos summary:")
	for _, l := range suite.lines {
		fmt.Println("  " + l)
	}
	fmt.Printf("chaos wall time: %s\n", time.Since(began).Round(time.Second))
}

func (suite *chaosSuite) run(t *testing.T, sc chaosScenario) {
	began := time.Now()
	s := suite.startScenario(t, sc)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	faultAfter := time.Duration(chaosLoad.perClient) * chaosLoad.interval * 2 / 5
	loadDone := make(chan *loadResult, 1)
	go func() { loadDone <- runLoad(ctx, "http://"+s.gateway.addr, s.apps, chaosLoad) }()
	select {
	case <-time.After(faultAfter):
	case res := <-loadDone:
		t.Fatalf("load ended before the fault: %s; errors: %v", res.summary(), res.errors())
	}
	t.Logf("injecting fault %s at %s into the load", sc.name, faultAfter)
	sc.fault(t, s)
	t.Logf("fault %s done; platform back", sc.name)
	res := <-loadDone
	t.Logf("load finished in %s: %s", time.Since(began).Round(time.Millisecond), res.summary())

	quiet := s.waitQuiet(t, 90*time.Second)
	r := s.check(t, res)
	if sc.subscriptions {
		s.checkDeliveries(t, res)
	}
	line := fmt.Sprintf("scenario=%s sent=%d accepted=%d audited=%d duplicates=%d lost=%d",
		sc.name, res.sent.Load(), res.accepted.Load(), r.audited, r.duplicates, r.lost)
	fmt.Println(line)
	suite.lines = append(suite.lines, line)
	t.Logf("scenario %s took %s (retries=%d, quiet=%v, order violations=%d)", sc.name,
		time.Since(began).Round(time.Millisecond), res.retries.Load(), quiet, len(r.orderViolations))

	if errs := res.errors(); len(errs) > 0 {
		t.Errorf("load generator errors (%d), first: %s", len(errs), errs[0])
	}
	if res.accepted.Load() != res.sent.Load() {
		t.Errorf("only %d of %d events were accepted: the platform did not recover for the clients", res.accepted.Load(), res.sent.Load())
	}
	if r.duplicates != 0 || r.lost != 0 {
		t.Errorf("duplicates=%d lost=%d (first lost: %v)", r.duplicates, r.lost, r.lostSample)
	}
	if n := len(r.orderViolations); n > 0 {
		// Tell where order broke: in the stream (the relay) or after it.
		sv, err := s.streamOrderViolations()
		where := fmt.Sprintf("the stream itself holds %d out-of-order events", len(sv))
		if err != nil {
			where = "stream not checked: " + err.Error()
		} else if len(sv) > 0 {
			where += ", first: " + strings.Join(sv[:min(len(sv), 3)], "; ")
		}
		t.Errorf("%d per-key order violations in the audit log (%s); first: %s", n, where, strings.Join(r.orderViolations[:min(n, 5)], "; "))
	}
	if !r.chainOK {
		t.Errorf("audit chains do not verify: %s", r.chainDetail)
	}
	for _, p := range []*prostProc{s.gateway, s.relay, s.governance, s.subscriptions, s.rules, s.relay2, s.governance2, s.rules2} {
		if p == nil {
			continue
		}
		if p.exitedUnexpectedly() {
			t.Errorf("%s exited on its own", p.name)
		}
	}
	if !quiet {
		t.Errorf("the platform did not become quiet (outbox drained, consumers caught up) within the deadline")
	}
	if sc.verify != nil {
		sc.verify(t, s)
	}
}

// startScenario starts NATS, a fresh database and the three services, and
// creates two Apps.
func (suite *chaosSuite) startScenario(t *testing.T, sc chaosScenario) *scenarioEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "prost-chaos-"+sc.name+"-")
	if err != nil {
		t.Fatal(err)
	}
	removeLater(t, dir)
	s := &scenarioEnv{suite: suite}
	s.ps = newProcs(t) // registered after the dir cleanup: runs first
	s.ps.dumpOnFailure()
	count := 1
	if sc.cluster {
		count = 3
	}
	keysDir := filepath.Join(dir, "nats-auth")
	if s.keys, _, err = natsauth.Ensure(keysDir); err != nil {
		t.Fatal(err)
	}
	s.nats = startNATS(t, s.ps, suite.natsBin, dir, count, s.keys)
	s.dbURL = suite.pg.createDatabase(t, "chaos_"+strings.ReplaceAll(sc.name, "-", "_"))
	s.pool, err = pgxpool.New(context.Background(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.pool.Close)
	_, s.js = connectNATS(t, natsURLs(s.nats), s.keys.ServiceCreds)

	env := []string{
		"DATABASE_URL=" + s.dbURL,
		"NATS_URL=" + natsURLs(s.nats),
		"PROST_ADMIN_TOKEN=" + chaosAdminToken,
		"PROST_NATS_DIR=" + filepath.Join(repoRoot(t), "nats"),
		"PROST_RELAY_POLL_INTERVAL=100ms",
		"PROST_DB_MAX_CONNS=16",
		"PROST_LOG_FORMAT=text",
		"PROST_SHUTDOWN_TIMEOUT=5s",
		"PROST_BUS_KEY=" + chaosBusKey,
		// The subscriptions' receivers listen on loopback (the
		// hostile-tenant scenario turns this off).
		"PROST_OUTBOUND_ALLOW=127.0.0.1/32",
		// The private bus: every process connects with the service
		// credentials of the key set, the gateway mints with it.
		"PROST_NATS_AUTH_DIR=" + keysDir,
		"PROST_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"PROST_SUBSCRIPTIONS_RETRY_SCHEDULE=200ms,500ms,1s,2s,5s,10s,10s",
		"PROST_SUBSCRIPTIONS_DELIVERY_TIMEOUT=2s",
	}
	if sc.cluster {
		env = append(env, "PROST_STREAM_REPLICAS=3")
	}
	env = append(env, sc.env...)
	s.gateway = startProst(t, s.ps, suite.prostBin, dir, "gateway", env)
	s.relay = startProst(t, s.ps, suite.prostBin, dir, "relay", env)
	s.governance = startProst(t, s.ps, suite.prostBin, dir, "governance", env)
	if sc.rules {
		s.rules = startProst(t, s.ps, suite.prostBin, dir, "rules", env)
	}
	if sc.instances > 1 {
		s.relay2 = startProst(t, s.ps, suite.prostBin, dir, "relay", env)
		s.governance2 = startProst(t, s.ps, suite.prostBin, dir, "governance", env)
		if sc.rules {
			s.rules2 = startProst(t, s.ps, suite.prostBin, dir, "rules", env)
		}
	}
	for i := range 2 {
		s.apps = append(s.apps, s.createApp(t, fmt.Sprintf("chaos-%s-%d", sc.name, i)))
	}
	if sc.subscriptions {
		s.subscriptions = startProst(t, s.ps, suite.prostBin, dir, "subscriptions", env)
		s.rcv = newChaosReceiver(t)
		for _, a := range s.apps {
			s.subscribe(t, a)
		}
	}
	return s
}

func (s *scenarioEnv) createApp(t *testing.T, name string) creds {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.gateway.addr+"/admin/v1/apps", strings.NewReader(`{"name":"`+name+`"}`))
	req.Header.Set("Authorization", "Bearer "+chaosAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create app: %d %s", resp.StatusCode, body)
	}
	var c creds
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	// The App's events carry a registered type: register its JSON Schema
	// (a gateway without the schema registry answers 404; nothing to do).
	req, _ = http.NewRequest(http.MethodPost, "http://"+s.gateway.addr+"/v1/registry/subjects/"+chaosType+"/versions",
		strings.NewReader(`{"schema":{"type":"object","properties":{"key":{"type":"string"},"seq":{"type":"integer"}},"required":["key","seq"]}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Prost-App-Key", c.APIKey)
	req.Header.Set("X-Prost-App-Secret", c.APISecret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("register the %s schema: %d %s", chaosType, resp.StatusCode, body)
	}
	return c
}

// killInFlight kills p with SIGKILL while it holds work that a graceful stop
// would have finished: it polls inFlight and kills p the moment it reports
// some, then checks, after the kill, that the work was still there. When it
// was not (it finished in between), p is restarted (with the backlog of its
// downtime to work through) and the hunt starts again, a few times at most.
func (s *scenarioEnv) killInFlight(t *testing.T, p *prostProc, what string, inFlight func() int64) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); {
			if inFlight() > 0 {
				break
			}
		}
		p.kill()
		n := inFlight()
		if n > 0 || attempt == 6 {
			t.Logf("killed %s (attempt %d) with %d %s", p.name, attempt, n, what)
			return
		}
		p.restart(t)
	}
}

// unacked is the number of messages of PROST_EVENTS delivered to a durable
// consumer and not acknowledged.
func (s *scenarioEnv) unacked() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, "PROST_EVENTS")
	if err != nil {
		return 0
	}
	var n int64
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		n += int64(ci.NumAckPending)
	}
	return n
}

// publishedUnmarked is the number of events stored in PROST_EVENTS whose
// outbox rows are not marked published (the relay is the only publisher).
func (s *scenarioEnv) publishedUnmarked() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var marked int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NOT NULL`).Scan(&marked); err != nil {
		return 0
	}
	st, err := s.js.Stream(ctx, "PROST_EVENTS")
	if err != nil {
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0
	}
	return int64(info.State.Msgs) - marked
}

// streamLeader is the nats node leading PROST_EVENTS, found through the
// JetStream API (stream info, cluster leader).
func (s *scenarioEnv) streamLeader(t *testing.T) *natsNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, "PROST_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil {
		t.Fatalf("PROST_EVENTS is not an R3 stream: replicas=%d cluster=%+v", info.Config.Replicas, info.Cluster)
	}
	for _, n := range s.nats {
		if n.name == info.Cluster.Leader {
			return n
		}
	}
	t.Fatalf("stream leader %q is none of the nodes", info.Cluster.Leader)
	return nil
}

// waitQuiet polls until the outbox is drained, every stored chaos event has
// an audit entry and every durable consumer has nothing pending or unacked.
// It returns false when the deadline passes first.
func (s *scenarioEnv) waitQuiet(t *testing.T, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := s.quiet()
		if ok {
			return true
		}
		if why != last {
			t.Logf("not quiet yet: %s", why)
			last = why
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func (s *scenarioEnv) quiet() (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pending, stored, audited int64
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM outbox WHERE published_at IS NULL AND refused_at IS NULL),
		(SELECT count(*) FROM events WHERE source = $1 AND type = $2),
		(SELECT count(DISTINCT (tenant_id, event_id)) FROM audit_log WHERE event_source = $1 AND event_type = $2)`,
		chaosSource, chaosType).Scan(&pending, &stored, &audited)
	if err != nil {
		return false, "database: " + err.Error()
	}
	if pending > 0 || audited < stored {
		return false, fmt.Sprintf("outbox pending=%d, events stored=%d audited=%d", pending, stored, audited)
	}
	st, err := s.js.Stream(ctx, "PROST_EVENTS")
	if err != nil {
		return false, "stream: " + err.Error()
	}
	lister := st.ListConsumers(ctx)
	var infos []*jetstream.ConsumerInfo
	for ci := range lister.Info() { // read it all: stopping early blocks the lister's goroutine
		infos = append(infos, ci)
	}
	n := len(infos)
	for _, ci := range infos {
		if ci.NumPending > 0 || ci.NumAckPending > 0 {
			return false, fmt.Sprintf("consumer %s pending=%d ack_pending=%d", ci.Name, ci.NumPending, ci.NumAckPending)
		}
	}
	if err := lister.Err(); err != nil || n == 0 {
		return false, fmt.Sprintf("consumers: %d listed, error %v", n, err)
	}
	return true, ""
}

// streamOrderViolations reads PROST_EVENTS from the start and reports every
// chaos event stored before an earlier event of its key (first copies only).
func (s *scenarioEnv) streamOrderViolations() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	oc, err := s.js.OrderedConsumer(ctx, "PROST_EVENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	info, err := oc.Info(ctx)
	if err != nil {
		return nil, err
	}
	total := info.NumPending
	var out []string
	last := map[string]int{} // tenant/key -> highest seq stored so far
	for read := uint64(0); read < total; {
		batch, err := oc.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return out, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var e struct {
				ID, Source, Type, Tenantid, Partitionkey string
			}
			if json.Unmarshal(m.Data(), &e) != nil || e.Source != chaosSource || e.Type != chaosType {
				continue
			}
			key, seq, _ := splitEventID(e.ID)
			k := e.Tenantid + "/" + key
			if prev, ok := last[k]; ok && seq < prev {
				md, _ := m.Metadata()
				sseq := uint64(0)
				if md != nil {
					sseq = md.Sequence.Stream
				}
				out = append(out, fmt.Sprintf("key %s seq %d at stream seq %d after seq %d", key, seq, sseq, prev))
			} else if seq > prev {
				last[k] = seq
			}
		}
		if batch.Error() != nil && n == 0 {
			return out, batch.Error()
		}
		read += uint64(n)
	}
	return out, nil
}

// checkResult is what the audit log says about the load.
type checkResult struct {
	audited, duplicates, lost int
	lostSample                []string
	orderViolations           []string
	chainOK                   bool
	chainDetail               string
}

// check compares the audit log with what the clients were told: every event
// answered 202 exactly once in its tenant's chain, and each key's events in
// ascending sequence order along the chain.
func (s *scenarioEnv) check(t *testing.T, res *loadResult) checkResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		SELECT a.tenant_id::text, a.seq, a.event_id, coalesce(e.partition_key, '')
		FROM audit_log a
		LEFT JOIN events e ON e.tenant_id = a.tenant_id AND e.source = a.event_source AND e.id = a.event_id
		WHERE a.event_source = $1 AND a.event_type = $2
		ORDER BY a.tenant_id, a.seq`, chaosSource, chaosType)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var r checkResult
	seen := map[string]int{}     // tenant/id -> entries
	lastSeq := map[string]int{}  // tenant/key -> last sequence seen along the chain
	lastAt := map[string]int64{} // tenant/key -> audit seq of that entry
	for rows.Next() {
		var tenant, id, pkey string
		var aseq int64
		if err := rows.Scan(&tenant, &aseq, &id, &pkey); err != nil {
			t.Fatal(err)
		}
		seen[tenant+"/"+id]++
		key, n, ok := splitEventID(id)
		if !ok || pkey != key {
			r.orderViolations = append(r.orderViolations, fmt.Sprintf("audit entry %d of %s: event %q has partition key %q", aseq, tenant, id, pkey))
			continue
		}
		k := tenant + "/" + key
		if prev, ok := lastSeq[k]; ok && n <= prev {
			r.orderViolations = append(r.orderViolations, fmt.Sprintf("tenant %s key %s: seq %d (audit %d) after seq %d (audit %d)",
				tenant[:8], key, n, aseq, prev, lastAt[k]))
		}
		if prev, ok := lastSeq[k]; !ok || n > prev {
			lastSeq[k], lastAt[k] = n, aseq
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for tenant, ids := range res.acceptedIDs() {
		for id := range ids {
			switch c := seen[tenant+"/"+id]; {
			case c == 0:
				r.lost++
				if len(r.lostSample) < 5 {
					r.lostSample = append(r.lostSample, tenant[:8]+"/"+id)
				}
			default:
				r.audited++
				r.duplicates += c - 1
			}
		}
	}
	// Entries for events no client was told about can exist (a request that
	// committed while its client gave up); duplicates among them count too.
	accepted := res.acceptedIDs()
	for k, c := range seen {
		tenant, id, _ := strings.Cut(k, "/")
		if !accepted[tenant][id] && c > 1 {
			r.duplicates += c - 1
		}
	}
	r.chainOK, r.chainDetail = s.verifyChains(t)
	return r
}

// verifyChains asks the gateway to recompute every audit chain.
func (s *scenarioEnv) verifyChains(t *testing.T) (bool, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.gateway.addr+"/admin/v1/audit/verify", nil)
	req.Header.Set("Authorization", "Bearer "+chaosAdminToken)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v struct {
		OK bool `json:"ok"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil {
		return false, fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	return v.OK, string(body)
}

// splitEventID splits "<key>-<seq>" into its key and sequence number.
func splitEventID(id string) (string, int, bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	return id[:i], n, err == nil
}

// ---------------------------------------------------------------- load

type loadConfig struct {
	clients, keysPerClient, perClient int
	interval                          time.Duration
}

// loadResult counts what the clients sent and what they were answered.
type loadResult struct {
	sent, accepted, retries atomic.Int64

	mu   sync.Mutex
	ids  map[string]map[string]bool // tenant -> event ids answered 202
	errs []string
}

func (r *loadResult) summary() string {
	return fmt.Sprintf("sent=%d accepted=%d retries=%d errors=%d", r.sent.Load(), r.accepted.Load(), r.retries.Load(), len(r.errors()))
}

func (r *loadResult) acceptedIDs() map[string]map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids
}

func (r *loadResult) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs
}

func (r *loadResult) fail(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// runLoad runs cfg.clients concurrent clients. Client c posts cfg.perClient
// events round-robin over its own keys, one every cfg.interval (catching up
// after a stall), each event with id "<key>-<seq>" where seq counts that
// key's events. A request that fails with a network error, a 5xx or a 429 is
// retried with the same event, so a retry of a stored event is a duplicate;
// the next event of a client is sent only once the previous one was answered
// 202, so each key's events are accepted in sequence order.
func runLoad(ctx context.Context, baseURL string, apps []creds, cfg loadConfig) *loadResult {
	res := &loadResult{ids: map[string]map[string]bool{}}
	for _, a := range apps {
		res.ids[a.AppID.String()] = map[string]bool{}
	}
	httpc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.clients}}
	var wg sync.WaitGroup
	for c := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			app := apps[c%len(apps)]
			tenant := app.AppID.String()
			keys := make([]string, cfg.keysPerClient)
			for k := range keys {
				keys[k] = fmt.Sprintf("c%02d-k%d", c, k)
			}
			seq := map[string]int{}
			start := time.Now()
			for i := range cfg.perClient {
				if d := time.Until(start.Add(time.Duration(i) * cfg.interval)); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				key := keys[i%len(keys)]
				seq[key]++
				id := fmt.Sprintf("%s-%06d", key, seq[key])
				body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":%q,"partitionkey":%q,"actorid":"client-%d","action":"tick","data":{"key":%q,"seq":%d}}`,
					id, chaosSource, chaosType, key, c, key, seq[key])
				res.sent.Add(1)
				if err := postUntilAnswered(ctx, httpc, baseURL, app, []byte(body), res); err != nil {
					res.fail("client %d event %s: %v", c, id, err)
					return // its keys' later events would no longer be in a known order
				}
				res.accepted.Add(1)
				res.mu.Lock()
				res.ids[tenant][id] = true
				res.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// postUntilAnswered posts one structured event until it is answered 202
// (accepted or duplicate), retrying network errors, 5xx and 429 for up to
// 90 s. Any other answer is an error.
func postUntilAnswered(ctx context.Context, httpc *http.Client, baseURL string, app creds, body []byte, res *loadResult) error {
	deadline := time.Now().Add(90 * time.Second)
	backoff := 50 * time.Millisecond
	var last string
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			res.retries.Add(1)
			if time.Now().After(deadline) {
				return fmt.Errorf("gave up after %d attempts; last: %s", attempt, last)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set("X-Prost-App-Key", app.APIKey)
		req.Header.Set("X-Prost-App-Secret", app.APISecret)
		resp, err := httpc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			last = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted:
			var out IngestAnswer
			if err := json.Unmarshal(b, &out); err != nil || len(out.Results) != 1 ||
				(out.Results[0].Status != "accepted" && out.Results[0].Status != "duplicate") {
				return fmt.Errorf("unexpected 202 body %s", b)
			}
			return nil
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
		default:
			return fmt.Errorf("answered %d: %s", resp.StatusCode, b)
		}
	}
}

// IngestAnswer is the 202 body of POST /v1/events.
type IngestAnswer struct {
	Results []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"results"`
}
