package billing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
	"github.com/prost-platform/prost/pkg/subjects"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// bundle is one test's App on a billing Service.
type bundle struct {
	db     *prosttest.Database
	svc    *billing.Service
	reg    *registry.Registry
	tenant uuid.UUID
	msgs   []*consumer.Message // every message recorded, in order
}

// registrySchemas adapts the registry to billing.SchemaSource, as cmd/prost
// does.
type registrySchemas struct{ reg *registry.Registry }

func (r registrySchemas) LatestSchema(ctx context.Context, tenant uuid.UUID, eventType string) ([]byte, bool, error) {
	v, err := r.reg.Get(ctx, tenant, eventType, "latest")
	if err != nil {
		return nil, false, nil //nolint:nilerr // no schema: nothing to check
	}
	return []byte(v.Schema), true, nil
}

type option func(*billing.Config)

func setup(t *testing.T, db *prosttest.Database, opts ...option) *bundle {
	t.Helper()
	if db == nil {
		db = testDB
	}
	reg, err := registry.New(db.Pool, registry.Config{PlatformDir: "../../../schemas"})
	require.NoError(t, err)
	k, _ := secretbox.NewKey()
	cfg := billing.Config{Schemas: registrySchemas{reg}, SecretsKey: &k, Partitions: 4}
	for _, o := range opts {
		o(&cfg)
	}
	return &bundle{db: db, svc: billing.New(db.Pool, cfg), reg: reg, tenant: uuid.New()}
}

// record stores an event of the bundle's App as the gateway does (a repeat
// is a duplicate and not stored) and returns its message as the consumer
// runtime delivers it.
func (b *bundle) record(t *testing.T, structured string) *consumer.Message {
	t.Helper()
	ev, err := cloudevent.ParseStructured([]byte(structured))
	require.NoError(t, err)
	ev.SetExtension("tenantid", b.tenant.String())
	env := ev.AppendJSON(nil)
	require.NoError(t, pgx.BeginFunc(t.Context(), b.db.Pool, func(tx pgx.Tx) error {
		_, err := eventstore.AppendTx(t.Context(), tx, []eventstore.NewEvent{{TenantID: b.tenant, Source: ev.Source, ID: ev.ID,
			Type: ev.Type, Time: ev.Time, Envelope: env, OutboxSubject: subjects.Event(b.tenant, 0, ev.Type)}})
		return err
	}))
	m := &consumer.Message{ID: subjects.MsgID(b.tenant, ev.Source, ev.ID), Subject: subjects.Event(b.tenant, 0, ev.Type), Data: env, NumDelivered: 1}
	b.msgs = append(b.msgs, m)
	return m
}

// handle runs the billing consumer's handler over msgs in one transaction.
func (b *bundle) handle(t *testing.T, msgs ...*consumer.Message) error {
	t.Helper()
	return pgx.BeginFunc(t.Context(), b.db.Pool, func(tx pgx.Tx) error {
		return b.svc.HandleEvents(t.Context(), tx, msgs)
	})
}

func (b *bundle) meter(t *testing.T, doc string) billing.Meter {
	t.Helper()
	var in billing.MeterInput
	require.NoError(t, json.Unmarshal([]byte(doc), &in))
	m, err := b.svc.CreateMeter(t.Context(), b.tenant, in)
	require.NoError(t, err)
	return m
}

// llmCall is an event of the usage scenario.
func llmCall(id string, at string, customer, model string, tokens any) string {
	tok, _ := json.Marshal(tokens)
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/llm","type":"llm.call","time":%q,"data":{"customer":%q,"model":%q,"tokens":%s}}`,
		id, at, customer, model, tok)
}

func correction(id, target string, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/corrections","type":"prost.billing.correction","data":{"event_id":%q,"event_source":"/llm","reason":"recount","data":%s}}`,
		id, target, data)
}

// runJobs runs the billing job kinds on a job client until the test ends.
func (b *bundle) runJobs(t *testing.T) *jobs.Client {
	t.Helper()
	c, err := jobs.NewClient(b.db.Pool, jobs.Config{PollInterval: 20 * time.Millisecond, OnDiscard: b.svc.OnDiscard,
		Backoff: func(int) time.Duration { return 50 * time.Millisecond }})
	require.NoError(t, err)
	for kind, h := range map[string]jobs.Handler{billing.KindBackfill: b.svc.RunBackfill, billing.KindStripeCustomer: b.svc.RunCustomer,
		billing.KindStripeProduct: b.svc.RunProduct, billing.KindStripePrice: b.svc.RunPrice, billing.KindStripeMeterEvnt: b.svc.RunMeterEvent,
		billing.KindStripeInvoice: b.svc.RunInvoice} {
		require.NoError(t, c.Register(kind, h))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return c
}

// waitJobs waits until no job of the bundle's App is waiting or running.
func (b *bundle) waitJobs(t *testing.T, c *jobs.Client) {
	t.Helper()
	require.Eventually(t, func() bool {
		js, err := c.List(t.Context(), jobs.ListParams{TenantID: &b.tenant, Limit: 1000})
		require.NoError(t, err)
		for _, j := range js {
			if !j.State.Final() {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
}

// problemFields lists the fields a problem error names.
func problemFields(err error) []string {
	var pe *problem.Error
	if !errors.As(err, &pe) {
		return nil
	}
	var out []string
	for _, f := range pe.Fields {
		out = append(out, f.Field)
	}
	return out
}
