package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

// factoryStack is the whole platform with the factory, its modules' database
// being the test database (each module in a schema of its own).
func factoryStack(t *testing.T) *stack {
	t.Helper()
	_, key := secretbox.NewKey()
	return startStack(t, func(e *env) {
		e.SecretsKey = key
		e.Factory.DatabaseURL = testDB.URL
		e.Factory.WorkDir = t.TempDir()
		e.Factory.ToolsDir = os.Getenv("PROST_FACTORY_TOOLS_DIR")
	})
}

// factoryRunJSON reads a run with the CLI.
func (s *stack) factoryRun(id string) factory.Run {
	s.t.Helper()
	out, err := s.cli("factory", "status", id, "--json")
	require.NoError(s.t, err, out)
	var run factory.Run
	require.NoError(s.t, json.Unmarshal([]byte(out), &run), out)
	return run
}

func (s *stack) waitRun(id string, within time.Duration, cond func(factory.Run) bool) factory.Run {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		run := s.factoryRun(id)
		if cond(run) {
			return run
		}
		if time.Now().After(deadline) {
			out, _ := s.cli("factory", "logs", id)
			s.t.Fatalf("run %s is %s at %s (%s):\n%s", id, run.Status, run.Stage, run.Error, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// streamedRunEvents reads the tenant's stream (JetStream) until it holds
// want factory events of the run, and returns them in stream order as
// "type stage-or-gate".
func streamedRunEvents(t *testing.T, js jetstream.JetStream, tenant uuid.UUID, run string, want int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	oc, err := js.OrderedConsumer(ctx, "PROST_EVENTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjects.Tenant(tenant)}})
	require.NoError(t, err)
	var out []string
	for len(out) < want {
		msg, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second))
		if ctx.Err() != nil {
			t.Fatalf("the stream holds %d of the run's %d events: %v", len(out), want, out)
		}
		if err != nil {
			continue
		}
		ev, err := cloudevent.ParseStructured(msg.Data())
		require.NoError(t, err)
		if ev.Subject != run || !strings.HasPrefix(ev.Type, "factory.") || ev.Type == factory.TypeModuleRequested {
			continue
		}
		var d struct{ Stage, Gate string }
		require.NoError(t, json.Unmarshal(ev.Data, &d))
		out = append(out, ev.Type+" "+d.Stage+d.Gate)
	}
	return out
}

// The sample Pack0, requested by a factory.module.requested event: a module
// that compiles, passes its generated tests and every NORMAL gate, is
// approved with the CLI, deployed locally and answers its health check;
// `prost factory verify` passes; the tenant's stream holds every stage and
// gate event in order; an altered artifact makes verify exit 1 naming it.
func TestFactoryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds, tests, scans and deploys a generated module")
	}
	s := factoryStack(t)
	app := s.createApp("factory-e2e")
	tenant := app.AppID
	t.Setenv("PROST_APP_KEY", app.APIKey)
	t.Setenv("PROST_APP_SECRET", app.APISecret)
	t.Setenv("PROST_ACTOR", "reviewer@factory-e2e")

	pack0, err := os.ReadFile("../../examples/pack0/inventory.yaml")
	require.NoError(t, err)
	pj, err := factory.Pack0JSON(pack0)
	require.NoError(t, err)
	evID := uuid.NewString()
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/ci/pipelines","type":"factory.module.requested",
		"datacontenttype":"application/json","data":{"module":"inventory","state":"NORMAL","deploy_target":"local","requested_by":"ci","pack0":%s}}`, evID, pj)
	code, resp := s.post(app, "application/cloudevents+json", body)
	require.Equal(t, http.StatusAccepted, code, string(resp))
	id := factory.RunIDFor(tenant, "/ci/pipelines", evID).String()

	// The consumer starts the run; NORMAL without auto-deploy waits for a decision.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := s.cli("factory", "status", id); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the factory consumer started no run for the event")
		time.Sleep(200 * time.Millisecond)
	}
	run := s.waitRun(id, 6*time.Minute, func(r factory.Run) bool { return r.Status == factory.StatusAwaitingApproval || r.Status.Final() })
	require.Equal(t, factory.StatusAwaitingApproval, run.Status, run.Error)
	require.False(t, run.MVP)
	for _, g := range []string{factory.GatePack0, factory.GateTests, factory.GateLint, factory.GateSecrets, factory.GateSAST,
		factory.GateVulns, factory.GateDeps, factory.GateSBOM, factory.GateContracts, factory.GatePerf} {
		var found bool
		for _, rg := range run.Gates {
			if rg.Gate == g {
				found = true
				require.Equal(t, "passed", rg.Status, "gate %s: %s", g, rg.Summary)
			}
		}
		require.True(t, found, "gate %s did not run", g)
	}

	out, err := s.cli("factory", "approve", id, "--reason", "reviewed the gates")
	require.NoError(t, err, out)
	run = s.waitRun(id, 2*time.Minute, func(r factory.Run) bool { return r.Status.Final() })
	require.Equal(t, factory.StatusSucceeded, run.Status, run.Error)
	require.NotNil(t, run.Deployment)
	require.Equal(t, factory.DeploymentActive, run.Deployment.Status)

	// The deployed module answers its health check and serves its API.
	hc, err := http.Get("http://" + run.Deployment.Address + "/healthz")
	require.NoError(t, err)
	hc.Body.Close()
	require.Equal(t, http.StatusOK, hc.StatusCode)
	req, _ := http.NewRequest(http.MethodPost, "http://"+run.Deployment.Address+"/v1/items",
		strings.NewReader(`{"sku":"A-1","name":"anvil","quantity":3}`))
	req.Header.Set("X-Tenant-ID", uuid.NewString())
	req.Header.Set("X-Role", "manager")
	created, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	created.Body.Close()
	require.Equal(t, http.StatusCreated, created.StatusCode)

	out, err = s.cli("factory", "verify", id)
	require.NoError(t, err, out)
	require.Contains(t, out, "verifies")

	var stages []string
	for _, st := range factory.Stages {
		stages = append(stages, string(st))
	}
	want := []string{}
	for _, st := range stages {
		want = append(want, "factory.stage.started "+st)
		switch st {
		case "pack0":
			want = append(want, "factory.gate.passed pack0")
		case "tests":
			want = append(want, "factory.gate.passed tests")
		case "gates":
			for _, g := range []string{"lint", "secrets", "sast", "vulns", "deps", "sbom", "contracts", "perf"} {
				want = append(want, "factory.gate.passed "+g)
			}
		}
		want = append(want, "factory.stage.succeeded "+st)
	}
	require.Equal(t, want, streamedRunEvents(t, s.p.js, tenant, id, len(want)))

	// The manifest's digest is in the App's audit chain.
	var rep factory.VerifyReport
	out, err = s.cli("factory", "verify", id, "--json")
	require.NoError(t, err, out)
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	var audited bool
	for _, e := range s.audit(app) {
		audited = audited || (e.EventType == factory.ManifestAuditType && e.Action == factory.ManifestAuditAction(rep.Manifest))
	}
	require.True(t, audited, "the manifest's digest is not in the audit chain")

	out, err = s.cli("factory", "logs", id)
	require.NoError(t, err)
	require.Contains(t, out, "stage deploy succeeded")
	require.Contains(t, out, "approve by reviewer@factory-e2e: reviewed the gates")
	out, err = s.cli("factory", "list", "--module", "inventory")
	require.NoError(t, err)
	require.Contains(t, out, id)

	// An altered artifact: verify exits 1 naming it.
	var digest string
	require.NoError(t, testDB.Pool.QueryRow(context.Background(),
		`SELECT digest FROM factory_artifacts WHERE run_id = $1 AND name = 'bin/inventory'`, run.ID).Scan(&digest))
	_, err = testDB.Pool.Exec(context.Background(),
		`UPDATE factory_blobs SET content = content || '\x00'::bytea WHERE tenant_id = $1 AND digest = $2`, tenant, digest)
	require.NoError(t, err)
	out, err = s.cli("factory", "verify", id)
	var ee exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.code)
	require.Contains(t, out, "FAIL  artifact bin/inventory")
	require.Contains(t, ee.msg, "bin/inventory")

	// `prost factory run` reuses the module's Pack0; a PRESSAO dry run stops after its gates.
	out, err = s.cli("factory", "run", "--module", "inventory", "--state", "PRESSAO", "--dry-run", "--wait")
	require.NoError(t, err, out)
	require.Contains(t, out, "status succeeded  (MVP)")
	require.Contains(t, out, "deploy    skipped")
}

// `prost factory check` asks the pack0 gate about a file without starting a
// run: the sample passes and names its routes and events; a Pack0 that
// NORMAL refuses exits 1 naming each problem by pointer and rule, and passes
// as PRESSAO; a file that is not a Pack0 is a usage error (2).
func TestFactoryCheck(t *testing.T) {
	s := startStack(t, nil)
	app := s.createApp("factory-check")
	t.Setenv("PROST_APP_KEY", app.APIKey)
	t.Setenv("PROST_APP_SECRET", app.APISecret)

	out, err := s.cli("factory", "check", "--pack0", "../../examples/pack0/inventory.yaml")
	require.NoError(t, err, out)
	require.Contains(t, out, "the Pack0 passes the pack0 gate (NORMAL): 10 routes, 5 event types")
	require.Contains(t, out, "route  GET /v1/suppliers/{id}")
	require.Contains(t, out, "event  inventory.supplier.deleted")

	draft := t.TempDir() + "/notes.yaml"
	require.NoError(t, os.WriteFile(draft, []byte("pack0: 1\nmodule: notes\ndescription: Notes.\nentities:\n  - {name: note, key: id, fields: [{name: id, type: uuid}]}\n"), 0o600))
	out, err = s.cli("factory", "check", "--pack0", draft)
	var ee exitError
	require.ErrorAs(t, err, &ee, out)
	require.Equal(t, 1, ee.code)
	require.Contains(t, out, "FAIL  /budgets normal-budgets: ")
	require.Contains(t, out, "FAIL  /threats normal-threats: ")
	out, err = s.cli("factory", "check", "--pack0", draft, "--state", "pressao", "--json")
	require.NoError(t, err, out)
	require.Contains(t, out, `"ok":true`)
	require.Contains(t, out, `"state":"PRESSAO"`)

	require.NoError(t, os.WriteFile(draft, []byte("- just\n- a list\n"), 0o600))
	_, err = s.cli("factory", "check", "--pack0", draft)
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.code)

	// Nothing was started.
	out, err = s.cli("factory", "list", "--json")
	require.NoError(t, err, out)
	require.JSONEq(t, `[]`, out)
}
