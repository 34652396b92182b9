package factory

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

func loadSchema(t *testing.T) *Pack0Schema {
	t.Helper()
	s, err := LoadPack0Schema("../../../schemas")
	require.NoError(t, err)
	return s
}

func samplePack0(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../../examples/pack0/inventory.yaml")
	require.NoError(t, err)
	js, err := Pack0JSON(b)
	require.NoError(t, err)
	return js
}

func TestSamplePack0PassesItsGate(t *testing.T) {
	for _, st := range []State{Normal, Pressao} {
		p, probs := CheckPack0(loadSchema(t), samplePack0(t), st)
		require.Empty(t, probs, "%s", st)
		require.Equal(t, "inventory", p.Module)
		require.Len(t, p.Entities, 2)
	}
}

// edit applies a change to the sample Pack0 (as a map) and returns JSON.
func edit(t *testing.T, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(samplePack0(t), &m))
	change(m)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func entity(m map[string]any, i int) map[string]any { return m["entities"].([]any)[i].(map[string]any) }
func field(m map[string]any, e, f int) map[string]any {
	return entity(m, e)["fields"].([]any)[f].(map[string]any)
}

// The pack0 gate names each failure: where, which rule, why.
func TestPack0GateNamesEachFailure(t *testing.T) {
	schema := loadSchema(t)
	for _, c := range []struct {
		name    string
		state   State
		change  func(m map[string]any)
		pointer string
		rule    string
	}{
		{"an entity without a key", Pressao, func(m map[string]any) { delete(entity(m, 0), "key") }, "/entities/0", "schema.required"},
		{"a key that is not a field", Pressao, func(m map[string]any) { entity(m, 0)["key"] = "nope" }, "/entities/0/key", "entity-key"},
		{"a key that is not a uuid", Pressao, func(m map[string]any) { entity(m, 0)["key"] = "sku" }, "/entities/0/key", "entity-key"},
		{"personal data without purpose", Pressao, func(m map[string]any) { delete(field(m, 1, 2), "purpose") }, "/entities/1/fields/2/purpose", "personal-purpose"},
		{"personal data without retention", Pressao, func(m map[string]any) { delete(field(m, 1, 2), "retention") }, "/entities/1/fields/2/retention", "personal-retention"},
		{"NORMAL without budgets", Normal, func(m map[string]any) { delete(m, "budgets") }, "/budgets", "normal-budgets"},
		{"NORMAL without threats", Normal, func(m map[string]any) { delete(m, "threats") }, "/threats", "normal-threats"},
		{"NORMAL without a retention row for personal data", Normal, func(m map[string]any) { m["retention"] = m["retention"].([]any)[:1] }, "/entities/1", "normal-retention-matrix"},
		{"a budget on no route", Pressao, func(m map[string]any) { m["budgets"].([]any)[0].(map[string]any)["route"] = "GET /v1/nothing" }, "/budgets/0/route", "budget-route"},
		{"a permission on no entity", Pressao, func(m map[string]any) {
			m["roles"].([]any)[0].(map[string]any)["permissions"] = []any{"ghost:read"}
		}, "/roles/0/permissions/0", "role-permission"},
		{"a reserved field", Pressao, func(m map[string]any) { field(m, 0, 1)["name"] = "tenant_id" }, "/entities/0/fields/1/name", "reserved-field"},
		{"a field type the schema does not know", Pressao, func(m map[string]any) { field(m, 0, 1)["type"] = "blob" }, "/entities/0/fields/1/type", "schema.enum"},
		{"an unknown member", Pressao, func(m map[string]any) { m["colour"] = "blue" }, "", "schema.additionalProperties"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, probs := CheckPack0(schema, edit(t, c.change), c.state)
			require.NotEmpty(t, probs)
			var found bool
			for _, p := range probs {
				found = found || (p.Pointer == c.pointer && p.Rule == c.rule && p.Message != "")
			}
			require.True(t, found, "want %s %s in %v", c.pointer, c.rule, probs)
		})
	}
	_, probs := CheckPack0(schema, []byte(`not json`), Normal)
	require.Equal(t, "json", probs[0].Rule)
	// PRESSAO does not need budgets or threats.
	_, probs = CheckPack0(schema, edit(t, func(m map[string]any) { delete(m, "budgets"); delete(m, "threats") }), Pressao)
	require.Empty(t, probs)
}

func TestRequestNormalize(t *testing.T) {
	r := Request{Module: "inventory", State: "pressao"}
	require.NoError(t, r.Normalize())
	require.Equal(t, Pressao, r.State)
	require.Equal(t, TargetLocal, r.DeployTarget)
	r = Request{Module: "Bad Name", State: "FAST", DeployTarget: "k8s", Pack0: json.RawMessage(`[1]`)}
	err := r.Normalize()
	require.Error(t, err)
	for _, f := range []string{"module", "state", "deploy_target", "pack0"} {
		require.Contains(t, describe(err), f+":")
	}
	r = Request{Module: "other", Pack0: json.RawMessage(`{"module":"inventory"}`)}
	require.ErrorContains(t, r.Normalize(), "invalid")
	require.Contains(t, describe(r.Normalize()), `describes module "inventory"`)
}

func TestTreeRoundTrip(t *testing.T) {
	files := map[string][]byte{"go.mod": []byte("module m\n"), "a/b.go": []byte("package a\n")}
	b1, err := PackTree(files)
	require.NoError(t, err)
	b2, err := PackTree(files)
	require.NoError(t, err)
	require.Equal(t, Digest(b1), Digest(b2), "the same files give the same bytes")
	back, err := UnpackTree(b1)
	require.NoError(t, err)
	require.Equal(t, files, back)
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", ""} {
		_, err := PackTree(map[string][]byte{bad: nil})
		require.Error(t, err, bad)
	}
}

// A run's PEC chain verifies; a changed artifact, a changed signed
// statement or a manifest missing from the audit chain are each named.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	k, _ := secretbox.NewKey()
	store := NewStore(testDB.Pool, StoreConfig{SecretsKey: &k})
	tenant := uuid.New()
	run := &Run{ID: uuid.New(), TenantID: tenant, Module: "mm", State: Normal, Status: StatusSucceeded, DeployTarget: TargetLocal,
		Request: EventRef{Source: Source, ID: uuid.NewString()}}
	require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error { _, err := store.insertRun(ctx, tx, run); return err }))
	key := run.Key()
	files := map[string][]byte{"main.go": []byte("package main\n"), "go.mod": []byte("module m\n")}
	tree, err := PackTree(files)
	require.NoError(t, err)
	ta, err := store.PutArtifact(ctx, key, StageTests, "tree/source.tar.gz", "application/gzip", tree)
	require.NoError(t, err)
	ba, err := store.PutArtifact(ctx, key, StageTests, "bin/m", "application/octet-stream", []byte("binary"))
	require.NoError(t, err)
	link, err := LinkStatement(StageTests, []string{"go", "build"}, nil,
		append([]Subject{{Name: ta.Name, Digest: ta.Digest}, {Name: ba.Name, Digest: ba.Digest}}, TreeSubjects(ta.Name, files)...), nil, nil)
	require.NoError(t, err)
	la, err := store.SignArtifact(ctx, key, StageTests, LinkArtifact(StageTests), link)
	require.NoError(t, err)
	build := []Subject{{Name: ba.Name, Digest: ba.Digest}}
	prov, err := ProvenanceStatement(build, Provenance{RunID: run.ID, External: map[string]any{"module": "m"},
		Byproducts: []Subject{{Name: la.Name, Digest: la.Digest}}})
	require.NoError(t, err)
	env, err := store.Sign(ctx, tenant, prov)
	require.NoError(t, err)
	_, err = store.RecordManifest(ctx, key, env)
	require.NoError(t, err)

	rep, err := store.Verify(ctx, tenant, run.ID)
	require.NoError(t, err)
	require.True(t, rep.OK, "%v", rep.Failures)
	require.NotEmpty(t, rep.Manifest)

	// A file of the source tree changed: its tree and the file are named.
	altered, err := PackTree(map[string][]byte{"main.go": []byte("package main // changed\n"), "go.mod": []byte("module m\n")})
	require.NoError(t, err)
	_, err = testDB.Pool.Exec(ctx, `UPDATE factory_blobs SET content = $3 WHERE tenant_id = $1 AND digest = $2`, tenant, ta.Digest, altered)
	require.NoError(t, err)
	rep, err = store.Verify(ctx, tenant, run.ID)
	require.NoError(t, err)
	require.False(t, rep.OK)
	all := strings.Join(rep.Failures, "\n")
	require.Contains(t, all, "artifact tree/source.tar.gz")
	require.Contains(t, all, "tree/source.tar.gz!main.go")
	require.NotContains(t, all, "go.mod")

	// Verification reads another tenant's run as not found.
	_, err = store.Verify(ctx, uuid.New(), run.ID)
	require.ErrorIs(t, err, ErrRunNotFound)
}

// countingEngine counts enqueued runs (the real engine, DBOS, is the
// service's; services/factory tests it).
type countingEngine struct{ enqueued []uuid.UUID }

func (e *countingEngine) Enqueue(_ context.Context, _ pgx.Tx, r *Run) error {
	e.enqueued = append(e.enqueued, r.ID)
	return nil
}
func (e *countingEngine) Decide(context.Context, pgx.Tx, *Run, Approval) error { return nil }
func (e *countingEngine) Cancel(context.Context, *Run) error                   { return nil }
func (e *countingEngine) Rerun(context.Context, *Run, *Run, Stage) error       { return nil }

// The factory consumer starts one run per factory.module.requested event,
// whatever the redeliveries; a request it cannot run is a failed run saying
// why; other events are not its business.
func TestHandleEvents(t *testing.T) {
	ctx := context.Background()
	eng := &countingEngine{}
	runs := NewRuns(NewStore(testDB.Pool, StoreConfig{}), eng, nil)
	tenant := uuid.New()
	event := func(id, typ, data string) *consumer.Message {
		return &consumer.Message{ID: id, Data: []byte(`{"specversion":"1.0","id":"` + id + `","source":"/ci","type":"` + typ +
			`","tenantid":"` + tenant.String() + `","datacontenttype":"application/json","data":` + data + `}`)}
	}
	good := event("req-1", TypeModuleRequested, `{"module":"inventory","pack0":`+string(samplePack0(t))+`}`)
	bad := event("req-2", TypeModuleRequested, `{"module":"other","pack0":`+string(samplePack0(t))+`}`)
	none := event("req-3", TypeModuleRequested, `{"module":"never-built"}`)
	other := event("req-4", "order.placed", `{"module":"inventory"}`)
	handle := func(msgs ...*consumer.Message) {
		require.NoError(t, pgx.BeginFunc(ctx, testDB.Pool, func(tx pgx.Tx) error { return runs.HandleEvents(ctx, tx, msgs) }))
	}
	handle(good, bad, none, other)
	handle(good) // a redelivery
	require.Equal(t, []uuid.UUID{RunIDFor(tenant, "/ci", "req-1")}, eng.enqueued)

	run, err := runs.Get(ctx, tenant, RunIDFor(tenant, "/ci", "req-1"))
	require.NoError(t, err)
	require.Equal(t, StatusQueued, run.Status)
	require.Equal(t, EventRef{Source: "/ci", ID: "req-1"}, run.Request)
	for id, reason := range map[string]string{"req-2": `describes module "inventory"`, "req-3": "no earlier run"} {
		run, err := runs.Get(ctx, tenant, RunIDFor(tenant, "/ci", id))
		require.NoError(t, err, id)
		require.Equal(t, StatusFailed, run.Status, id)
		require.Contains(t, run.Error, reason, id)
		require.NotNil(t, run.FinishedAt)
	}
	_, err = runs.Get(ctx, tenant, RunIDFor(tenant, "/ci", "req-4"))
	require.ErrorIs(t, err, ErrRunNotFound)
}
