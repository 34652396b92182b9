package ruleshttp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/rules"
	"github.com/prost-platform/prost/pkg/domain/rules/ruleshttp"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/httpapi/httpapitest"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

const alertRule = `{"name": "big failed payments",
 "filters": [{"exact": {"type": "payment.failed"}}],
 "condition": "data.amount > 1000",
 "actions": [{"emit": {"type": "alert.raised", "source": "/rules/big-payments", "data": {"amount": "${data.amount}", "note": "payment ${id} failed"}}},
             {"webhook": {"url": "https://hooks.example.com/prost"}},
             {"schedule": {"after": "10m", "action": {"emit": {"type": "alert.reminder", "source": "/rules/big-payments"}}}}]}`

// api serves the handlers behind the test tenant header.
type api struct {
	t   *testing.T
	srv *httpapitest.Server
}

func newAPI(t *testing.T, store *rules.Store) *api {
	return &api{t: t, srv: httpapitest.New(t, ruleshttp.New(store))}
}

func (a *api) do(tenant uuid.UUID, method, path, body string) (int, map[string]any) {
	a.t.Helper()
	var bd any
	if body != "" {
		bd = body
	}
	res := a.srv.Do(a.t, method, path, bd, httpapitest.AsTenant(tenant))
	var out map[string]any
	if len(bytes.TrimSpace(res.Body)) > 0 {
		require.NoError(a.t, json.Unmarshal(res.Body, &out), string(res.Body))
	}
	return res.Status, out
}

// bundle records events and runs the engine over them, as the rules
// consumer does, so that decisions exist to read.
type bundle struct {
	store  *rules.Store
	engine *rules.Engine
	tenant uuid.UUID
}

func setup(t *testing.T) *bundle {
	t.Helper()
	k, _ := secretbox.NewKey()
	return &bundle{store: rules.NewStore(testDB.Pool, rules.StoreConfig{SecretsKey: &k}), engine: rules.NewEngine(testDB.Pool, rules.EngineConfig{Partitions: 4}), tenant: uuid.New()}
}

func (b *bundle) create(t *testing.T, doc string) rules.Rule {
	t.Helper()
	c, err := rules.ParseDocument([]byte(doc))
	require.NoError(t, err)
	r, _, err := b.store.Create(t.Context(), b.tenant, c)
	require.NoError(t, err)
	return r
}

func (b *bundle) recordMany(t *testing.T, n int) []*consumer.Message {
	t.Helper()
	out := make([]*consumer.Message, n)
	for i := range out {
		ev, err := cloudevent.ParseStructured([]byte(fmt.Sprintf(
			`{"specversion":"1.0","id":"p-%d","source":"/billing","type":"payment.failed","partitionkey":"cust-1","data":{"amount":2000}}`, i)))
		require.NoError(t, err)
		ev.SetExtension(rules.ExtTenant, b.tenant.String())
		env := ev.AppendJSON(nil)
		require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
			_, err := eventstore.AppendTx(t.Context(), tx, []eventstore.NewEvent{{TenantID: b.tenant, Source: ev.Source, ID: ev.ID,
				Type: ev.Type, Envelope: env, OutboxSubject: subjects.Event(b.tenant, 0, ev.Type)}})
			return err
		}))
		out[i] = &consumer.Message{ID: subjects.MsgID(b.tenant, ev.Source, ev.ID), Subject: subjects.Event(b.tenant, 0, ev.Type), Data: env, NumDelivered: 1}
	}
	return out
}

func (b *bundle) handle(t *testing.T, msgs ...*consumer.Message) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		return b.engine.HandleEvents(t.Context(), tx, msgs)
	}))
}

func TestRulesAPI(t *testing.T) {
	t.Parallel()
	k, _ := secretbox.NewKey()
	a := newAPI(t, rules.NewStore(testDB.Pool, rules.StoreConfig{SecretsKey: &k}))
	tenant, other := uuid.New(), uuid.New()

	code, created := a.do(tenant, "POST", "/v1/rules", alertRule)
	require.Equal(t, http.StatusCreated, code, created)
	id := created["id"].(string)
	secret, _ := created["webhook_secret"].(string)
	require.True(t, strings.HasPrefix(secret, "whsec_"), created)
	require.EqualValues(t, 1, created["version"])
	require.Equal(t, "active", created["status"])
	require.Equal(t, "data.amount > 1000", created["condition"])
	require.Equal(t, map[string]any{"status": "active"}, created["webhook"])

	// The secret is shown once, and is not stored in clear.
	code, got := a.do(tenant, "GET", "/v1/rules/"+id, "")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, got, "webhook_secret")
	var sealed []byte
	require.NoError(t, testDB.Pool.QueryRow(t.Context(), `SELECT webhook_secret FROM rules WHERE rule_id = $1`, id).Scan(&sealed))
	require.False(t, bytes.Contains(sealed, []byte(secret)))
	require.False(t, bytes.Contains(sealed, []byte(strings.TrimPrefix(secret, "whsec_"))))
	wt, err := rules.NewStore(testDB.Pool, rules.StoreConfig{SecretsKey: &k}).Webhook(t.Context(), tenant, uuid.MustParse(id))
	require.NoError(t, err)
	require.Equal(t, secret, wt.Secret)

	// Another tenant sees nothing.
	code, _ = a.do(other, "GET", "/v1/rules/"+id, "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = a.do(other, "PUT", "/v1/rules/"+id, alertRule)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = a.do(other, "POST", "/v1/rules/"+id+"/disable", "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = a.do(other, "GET", "/v1/rules/"+id+"/versions/1", "")
	require.Equal(t, http.StatusNotFound, code)
	code, list := a.do(other, "GET", "/v1/rules", "")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, list["items"])

	// An update is a new version; the old one stays readable; the secret is
	// kept (not shown again).
	code, upd := a.do(tenant, "PUT", "/v1/rules/"+id, strings.Replace(alertRule, "> 1000", "> 5000", 1))
	require.Equal(t, http.StatusOK, code, upd)
	require.EqualValues(t, 2, upd["version"])
	require.Equal(t, "data.amount > 5000", upd["condition"])
	require.NotContains(t, upd, "webhook_secret")
	code, v1 := a.do(tenant, "GET", "/v1/rules/"+id+"/versions/1", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "data.amount > 1000", v1["document"].(map[string]any)["condition"])
	code, vs := a.do(tenant, "GET", "/v1/rules/"+id+"/versions", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, vs["items"], 2)
	code, _ = a.do(tenant, "GET", "/v1/rules/"+id+"/versions/3", "")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = a.do(tenant, "GET", "/v1/rules/"+id+"/versions/x", "")
	require.Equal(t, http.StatusBadRequest, code)

	// Disable and enable.
	code, dis := a.do(tenant, "POST", "/v1/rules/"+id+"/disable", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "disabled", dis["status"])
	code, en := a.do(tenant, "POST", "/v1/rules/"+id+"/enable", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "active", en["status"])

	// Paging.
	for range 2 {
		code, _ = a.do(tenant, "POST", "/v1/rules", `{"name": "n", "actions": [{"emit": {"type": "t", "source": "/s"}}]}`)
		require.Equal(t, http.StatusCreated, code)
	}
	var ids []string
	cursor := ""
	for {
		code, p := a.do(tenant, "GET", "/v1/rules?limit=2&cursor="+cursor, "")
		require.Equal(t, http.StatusOK, code)
		for _, it := range p["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		if p["next_cursor"] == nil {
			break
		}
		cursor = p["next_cursor"].(string)
	}
	require.Len(t, ids, 3)
	require.Equal(t, id, ids[0])
	code, _ = a.do(tenant, "GET", "/v1/rules?cursor=nonsense", "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = a.do(tenant, "GET", "/v1/rules?limit=0", "")
	require.Equal(t, http.StatusBadRequest, code)
}

func TestInvalidRuleIs422WithPosition(t *testing.T) {
	t.Parallel()
	k, _ := secretbox.NewKey()
	a := newAPI(t, rules.NewStore(testDB.Pool, rules.StoreConfig{SecretsKey: &k}))
	code, p := a.do(uuid.New(), "POST", "/v1/rules", `{"name": "x",
		"filters": [{"exact": {"type": "a"}}, {"sql": "type = 'a' AND"}],
		"condition": "data.amount >",
		"actions": [{"emit": {"type": "t", "source": "/s"}}]}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, p)
	require.EqualValues(t, 422, p["status"])
	errs := p["errors"].([]any)
	require.Len(t, errs, 2)
	e0, e1 := errs[0].(map[string]any), errs[1].(map[string]any)
	require.Equal(t, "/filters/1/sql", e0["field"])
	require.EqualValues(t, 1, e0["line"])
	require.EqualValues(t, 15, e0["column"])
	require.Equal(t, "/condition", e1["field"])
	require.EqualValues(t, 14, e1["column"])

	code, _ = a.do(uuid.New(), "POST", "/v1/rules", `{"name": `)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = a.do(uuid.New(), "PUT", "/v1/rules/"+uuid.NewString(), `{"name": "x", "actions": []}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
}

func TestWebhooksNeedASecretsKey(t *testing.T) {
	t.Parallel()
	a := newAPI(t, rules.NewStore(testDB.Pool, rules.StoreConfig{}))
	code, p := a.do(uuid.New(), "POST", "/v1/rules", alertRule)
	require.Equal(t, http.StatusServiceUnavailable, code, p)
	code, _ = a.do(uuid.New(), "POST", "/v1/rules", `{"name": "n", "actions": [{"emit": {"type": "t", "source": "/s"}}]}`)
	require.Equal(t, http.StatusCreated, code)
}

func TestDecisionsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := newAPI(t, b.store)
	r1 := b.create(t, alertRule)
	r2 := b.create(t, `{"name": "all payments", "filters": [{"prefix": {"type": "payment."}}], "actions": [{"emit": {"type": "seen", "source": "/r"}}]}`)
	var msgs = b.recordMany(t, 3)
	b.handle(t, msgs...)

	code, p := a.do(b.tenant, "GET", "/v1/decisions", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p["items"], 6)
	item := p["items"].([]any)[0].(map[string]any)
	for _, k := range []string{"rule_id", "rule_version", "event_id", "event_source", "inputs", "actions", "decided_at"} {
		require.Contains(t, item, k)
	}

	code, p = a.do(b.tenant, "GET", "/v1/decisions?rule="+r2.ID.String()+"&limit=2", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p["items"], 2)
	require.NotNil(t, p["next_cursor"])
	code, p = a.do(b.tenant, "GET", "/v1/decisions?rule="+r2.ID.String()+"&limit=2&cursor="+p["next_cursor"].(string), "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p["items"], 1)
	require.Nil(t, p["next_cursor"])

	code, p = a.do(b.tenant, "GET", "/v1/decisions?event_id=p-1&rule="+r1.ID.String(), "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, p["items"], 1)
	require.Equal(t, r1.ID.String(), p["items"].([]any)[0].(map[string]any)["rule_id"])

	code, p = a.do(uuid.New(), "GET", "/v1/decisions", "")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, p["items"], "another tenant sees no decision")

	code, _ = a.do(b.tenant, "GET", "/v1/decisions?rule=nope", "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = a.do(b.tenant, "GET", "/v1/decisions?cursor=zzz", "")
	require.Equal(t, http.StatusBadRequest, code)
}
