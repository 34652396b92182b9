package factoryhttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/domain/factory/factoryhttp"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// queueEngine is the routes' engine: it keeps runs where they are (the
// workflow engine itself, DBOS, is tested with the service in
// services/factory). It counts what it was asked.
type queueEngine struct{ enqueued, cancelled int }

func (e *queueEngine) Enqueue(context.Context, pgx.Tx, *factory.Run) error { e.enqueued++; return nil }
func (e *queueEngine) Decide(context.Context, pgx.Tx, *factory.Run, factory.Approval) error {
	return nil
}
func (e *queueEngine) Cancel(context.Context, *factory.Run) error { e.cancelled++; return nil }
func (e *queueEngine) Rerun(context.Context, *factory.Run, *factory.Run, factory.Stage) error {
	return nil
}

func sample(t *testing.T) json.RawMessage {
	b, err := os.ReadFile("../../../../examples/pack0/inventory.yaml")
	require.NoError(t, err)
	js, err := factory.Pack0JSON(b)
	require.NoError(t, err)
	return js
}

func TestRoutes(t *testing.T) {
	db := prosttest.NewDatabase(t)
	eng := &queueEngine{}
	runs := factory.NewRuns(factory.NewStore(db.Pool, factory.StoreConfig{}), eng, nil)
	srv := httpapitest.New(t, factoryhttp.New(runs))
	tenant, other := uuid.New(), uuid.New()
	as := httpapitest.AsTenant(tenant)
	body := map[string]any{"module": "inventory", "pack0": sample(t), "state": "NORMAL", "dry_run": true}

	// Start: 201 with the run, its request recorded as an event.
	res := srv.Do(t, http.MethodPost, "/v1/factory/runs", body, as, httpapitest.Header("X-Prost-Actor", "dev@laptop"))
	require.Equal(t, http.StatusCreated, res.Status, string(res.Body))
	var run factory.Run
	res.JSON(t, &run)
	require.Equal(t, factory.StatusQueued, run.Status)
	require.Equal(t, "dev@laptop", run.RequestedBy)
	require.Equal(t, "/v1/factory/runs/"+run.ID.String(), res.Header.Get("Location"))
	require.Equal(t, 1, eng.enqueued)
	page, err := eventstore.List(context.Background(), db.Pool, eventstore.ListParams{TenantID: tenant})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	ev, err := cloudevent.ParseStructured(page.Items[0])
	require.NoError(t, err)
	require.Equal(t, factory.TypeModuleRequested, ev.Type)
	require.Equal(t, run.ID, factory.RunIDFor(tenant, ev.Source, ev.ID))

	// Without a Pack0 the module's latest one is reused.
	res = srv.Do(t, http.MethodPost, "/v1/factory/runs", map[string]any{"module": "inventory"}, as)
	require.Equal(t, http.StatusCreated, res.Status, string(res.Body))

	// Refused requests name the field.
	for _, c := range []struct {
		body   any
		status int
		field  string
	}{
		{map[string]any{"state": "NORMAL"}, http.StatusUnprocessableEntity, "module"},
		{map[string]any{"module": "inventory", "state": "FAST"}, http.StatusUnprocessableEntity, "state"},
		{map[string]any{"module": "inventory", "deploy_target": "k8s"}, http.StatusUnprocessableEntity, "deploy_target"},
		{map[string]any{"module": "other", "pack0": sample(t)}, http.StatusUnprocessableEntity, "pack0"},
		{map[string]any{"module": "never-built"}, http.StatusUnprocessableEntity, "pack0"},
		{map[string]any{"module": "inventory", "colour": "blue"}, http.StatusBadRequest, ""},
		{"{", http.StatusBadRequest, ""},
	} {
		res := srv.Do(t, http.MethodPost, "/v1/factory/runs", c.body, as)
		require.Equal(t, c.status, res.Status, "%v: %s", c.body, res.Body)
		p := res.Problem(t)
		if c.field != "" {
			require.Equal(t, c.field, p.Errors[0].Field, string(res.Body))
		}
	}

	// Read, list, page; another tenant sees nothing.
	res = srv.Do(t, http.MethodGet, "/v1/factory/runs/"+run.ID.String(), nil, as)
	require.Equal(t, http.StatusOK, res.Status)
	require.Contains(t, string(res.Body), `"pack0":{`)
	require.Equal(t, http.StatusNotFound, srv.Do(t, http.MethodGet, "/v1/factory/runs/"+run.ID.String(), nil, httpapitest.AsTenant(other)).Status)
	require.Equal(t, http.StatusBadRequest, srv.Do(t, http.MethodGet, "/v1/factory/runs/nope", nil, as).Status)
	var list struct {
		Items      []factory.Run `json:"items"`
		NextCursor *string       `json:"next_cursor"`
	}
	srv.Do(t, http.MethodGet, "/v1/factory/runs?limit=1", nil, as).JSON(t, &list)
	require.Len(t, list.Items, 1)
	require.NotNil(t, list.NextCursor)
	srv.Do(t, http.MethodGet, "/v1/factory/runs?limit=1&cursor="+*list.NextCursor, nil, as).JSON(t, &list)
	require.Len(t, list.Items, 1)
	require.Equal(t, run.ID, list.Items[0].ID)
	require.Nil(t, list.NextCursor)
	srv.Do(t, http.MethodGet, "/v1/factory/runs?module=other", nil, as).JSON(t, &list)
	require.Empty(t, list.Items)
	srv.Do(t, http.MethodGet, "/v1/factory/runs", nil, httpapitest.AsTenant(other)).JSON(t, &list)
	require.Empty(t, list.Items)
	require.Equal(t, http.StatusBadRequest, srv.Do(t, http.MethodGet, "/v1/factory/runs?status=done", nil, as).Status)
	require.Equal(t, http.StatusBadRequest, srv.Do(t, http.MethodGet, "/v1/factory/runs?cursor=bogus", nil, as).Status)

	// A run that waits for no decision refuses one; another tenant's is 404.
	id := run.ID.String()
	res = srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/approve", map[string]string{"reason": "ok"}, as)
	require.Equal(t, http.StatusConflict, res.Status, string(res.Body))
	require.Equal(t, http.StatusNotFound, srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/reject", nil, httpapitest.AsTenant(other)).Status)

	// Rerun needs an ended run; cancel ends it; a second cancel conflicts.
	require.Equal(t, http.StatusConflict, srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/rerun", map[string]string{"from": "gates"}, as).Status)
	res = srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/cancel", nil, as)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	res.JSON(t, &run)
	require.Equal(t, factory.StatusCancelled, run.Status)
	require.Equal(t, 1, eng.cancelled)
	require.Equal(t, http.StatusConflict, srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/cancel", nil, as).Status)
	require.Equal(t, http.StatusNotFound, srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/cancel", nil, httpapitest.AsTenant(other)).Status)
	res = srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/rerun", map[string]string{"from": "tests"}, as)
	require.Equal(t, http.StatusConflict, res.Status, "the run never reached the tests stage: %s", res.Body)
	res = srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/rerun", map[string]string{"from": "nowhere"}, as)
	require.Equal(t, http.StatusUnprocessableEntity, res.Status)
	require.Equal(t, "from", res.Problem(t).Errors[0].Field)
	res = srv.Do(t, http.MethodPost, "/v1/factory/runs/"+id+"/rerun", map[string]string{"from": "pack0"}, as)
	require.Equal(t, http.StatusCreated, res.Status, string(res.Body))
	var rerun factory.Run
	res.JSON(t, &rerun)
	require.Equal(t, run.ID, *rerun.RerunOf)
	require.Equal(t, factory.StagePack0, rerun.RerunFrom)

	// The run's records.
	var logs struct {
		Items []factory.LogLine `json:"items"`
		Next  int64             `json:"next"`
		Done  bool              `json:"done"`
	}
	srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+"/logs", nil, as).JSON(t, &logs)
	require.NotEmpty(t, logs.Items)
	require.True(t, logs.Done)
	srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+"/logs?after="+itoa(logs.Next), nil, as).JSON(t, &logs)
	require.Empty(t, logs.Items)
	require.Equal(t, http.StatusBadRequest, srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+"/logs?after=-1", nil, as).Status)
	for _, p := range []string{"/findings", "/attempts", "/artifacts"} {
		res := srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+p, nil, as)
		require.Equal(t, http.StatusOK, res.Status, p)
		require.JSONEq(t, `{"items":[]}`, string(res.Body), p)
		require.Equal(t, http.StatusNotFound, srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+p, nil, httpapitest.AsTenant(other)).Status, p)
	}
	require.Equal(t, http.StatusNotFound, srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+"/artifact?name=bin/x", nil, as).Status)
	require.Equal(t, http.StatusBadRequest, srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+"/artifact", nil, as).Status)
	var rep factory.VerifyReport
	srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+"/verify", nil, as).JSON(t, &rep)
	require.False(t, rep.OK)
	require.Equal(t, http.StatusNotFound, srv.Do(t, http.MethodGet, "/v1/factory/runs/"+id+"/verify", nil, httpapitest.AsTenant(other)).Status)
	require.Equal(t, http.StatusNotFound, srv.Do(t, http.MethodGet, "/v1/factory/key", nil, as).Status)
	require.Equal(t, http.StatusUnauthorized, srv.Do(t, http.MethodGet, "/v1/factory/runs", nil).Status)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// The pack0 check: the gate's verdict on a document, with no run started;
// NORMAL asks more than PRESSAO; bad requests name the field; without a
// schema the route is unavailable.
func TestCheckPack0(t *testing.T) {
	db := prosttest.NewDatabase(t)
	eng := &queueEngine{}
	runs := factory.NewRuns(factory.NewStore(db.Pool, factory.StoreConfig{}), eng, nil)
	schema, err := factory.LoadPack0Schema("../../../../schemas")
	require.NoError(t, err)
	srv := httpapitest.New(t, factoryhttp.New(runs, factoryhttp.WithPack0Schema(schema)))
	as := httpapitest.AsTenant(uuid.New())

	type result struct {
		OK       bool                   `json:"ok"`
		State    factory.State          `json:"state"`
		Problems []factory.Pack0Problem `json:"problems"`
		Routes   []string               `json:"routes"`
		Events   []string               `json:"events"`
	}
	var ok result
	res := srv.Do(t, http.MethodPost, "/v1/factory/pack0/check", map[string]any{"pack0": sample(t)}, as)
	require.Equal(t, http.StatusOK, res.Status, string(res.Body))
	res.JSON(t, &ok)
	require.True(t, ok.OK, "%v", ok.Problems)
	require.Equal(t, factory.Normal, ok.State)
	require.Empty(t, ok.Problems)
	require.Contains(t, ok.Routes, "GET /v1/items/{id}")
	require.Contains(t, ok.Routes, "DELETE /v1/suppliers/{id}")
	require.Equal(t, []string{"inventory.item.created", "inventory.item.updated", "inventory.item.deleted",
		"inventory.supplier.created", "inventory.supplier.deleted"}, ok.Events)

	// Without budgets, threats and retention: a NORMAL run would fail its
	// first gate, naming each rule; a PRESSAO one would pass.
	minimal := `{"pack0": "1", "module": "notes", "description": "Notes.", "entities": [{"name": "note", "key": "id",
		"fields": [{"name": "id", "type": "uuid"}, {"name": "author_email", "type": "email", "classification": "personal", "purpose": "reply", "retention": "1y"}]}]}`
	var normal result
	srv.Do(t, http.MethodPost, "/v1/factory/pack0/check", map[string]any{"pack0": json.RawMessage(minimal), "state": "normal"}, as).JSON(t, &normal)
	require.False(t, normal.OK)
	var rules []string
	for _, p := range normal.Problems {
		rules = append(rules, p.Rule+" "+p.Pointer)
	}
	require.ElementsMatch(t, []string{"normal-budgets /budgets", "normal-threats /threats", "normal-retention-matrix /entities/0"}, rules)
	require.Equal(t, []string{"notes.note.created", "notes.note.updated", "notes.note.deleted"}, normal.Events)
	var mvp result
	srv.Do(t, http.MethodPost, "/v1/factory/pack0/check", map[string]any{"pack0": json.RawMessage(minimal), "state": "PRESSAO"}, as).JSON(t, &mvp)
	require.True(t, mvp.OK, "%v", mvp.Problems)

	// A document its schema refuses: the problem is at the member's pointer; nothing parses.
	var broken result
	srv.Do(t, http.MethodPost, "/v1/factory/pack0/check", map[string]any{"pack0": map[string]any{"pack0": "1", "module": "x y", "description": "d", "entities": []any{}}}, as).JSON(t, &broken)
	require.False(t, broken.OK)
	require.NotEmpty(t, broken.Problems)
	require.Empty(t, broken.Routes)
	var pointers []string
	for _, p := range broken.Problems {
		pointers = append(pointers, p.Pointer)
	}
	require.ElementsMatch(t, []string{"/module", "/entities"}, pointers)

	// Nothing was started or recorded.
	require.Zero(t, eng.enqueued)

	for _, c := range []struct {
		body   any
		status int
		field  string
	}{
		{map[string]any{"state": "NORMAL"}, http.StatusUnprocessableEntity, "pack0"},
		{map[string]any{"pack0": sample(t), "state": "FAST"}, http.StatusUnprocessableEntity, "state"},
		{map[string]any{"pack0": sample(t), "module": "inventory"}, http.StatusBadRequest, ""},
		{"{", http.StatusBadRequest, ""},
	} {
		res := srv.Do(t, http.MethodPost, "/v1/factory/pack0/check", c.body, as)
		require.Equal(t, c.status, res.Status, "%v: %s", c.body, res.Body)
		if c.field != "" {
			require.Equal(t, c.field, res.Problem(t).Errors[0].Field, string(res.Body))
		}
	}
	require.Equal(t, http.StatusUnauthorized, srv.Do(t, http.MethodPost, "/v1/factory/pack0/check", map[string]any{"pack0": sample(t)}).Status)

	noSchema := httpapitest.New(t, factoryhttp.New(runs))
	res = noSchema.Do(t, http.MethodPost, "/v1/factory/pack0/check", map[string]any{"pack0": sample(t)}, as)
	require.Equal(t, http.StatusServiceUnavailable, res.Status, string(res.Body))
}
