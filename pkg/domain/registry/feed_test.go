package registry_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/prosttest"
)

// TestFeedCarriesRegistryChanges: with an invalidation feed, a version
// registered and a setting changed through one process's registry apply at
// once to ingest in another, although it would trust what it read for an
// hour.
func TestFeedCarriesRegistryChanges(t *testing.T) {
	ctx := t.Context()
	feedA, feedB := prosttest.Feed(t, testDB.Pool), prosttest.Feed(t, testDB.Pool)
	a, err := registry.New(testDB.Pool, registry.Config{Feed: feedA, StateTTL: time.Hour})
	require.NoError(t, err)
	b, err := registry.New(testDB.Pool, registry.Config{Feed: feedB, StateTTL: time.Hour})
	require.NoError(t, err)
	ingestB := registry.NewIngest(b, contracts.NewStore(testDB.Pool, contracts.StoreConfig{Feed: feedB, TTL: time.Hour}), nil, registry.IngestConfig{})
	tenant := uuid.New()
	ev := cloudevent.Event{SpecVersion: "1.0", ID: "f-1", Source: "/f", Type: "fed.thing", Data: []byte(`{}`)}

	accept := registry.UnregisteredAccept
	_, err = a.SetConfig(ctx, tenant, "", registry.SettingsPatch{UnregisteredTypes: &accept})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := ingestB.CheckEvents(ctx, tenant, []cloudevent.Event{ev}, false)
		return err == nil
	}, 30*time.Second, 10*time.Millisecond, "the tenant's setting reaches the other process")

	_, _, err = a.Register(ctx, tenant, "fed.thing", []byte(`{"type":"object","required":["a"]}`))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := ingestB.CheckEvents(ctx, tenant, []cloudevent.Event{ev}, false)
		return err != nil
	}, 30*time.Second, 10*time.Millisecond, "the new version validates in the other process at once")
}

// TestFeedHearsRegistryAndContractChangesMadeInSQL: the registry's and the
// contracts' tables notify from the changing transaction (migration 027),
// so a setting changed or a contract removed in psql reaches a process that
// would otherwise trust what it read for an hour.
func TestFeedHearsRegistryAndContractChangesMadeInSQL(t *testing.T) {
	ctx := t.Context()
	feed := prosttest.Feed(t, testDB.Pool)
	reg, err := registry.New(testDB.Pool, registry.Config{Feed: feed, StateTTL: time.Hour})
	require.NoError(t, err)
	cs := contracts.NewStore(testDB.Pool, contracts.StoreConfig{Feed: feed, TTL: time.Hour})
	ingest := registry.NewIngest(reg, cs, nil, registry.IngestConfig{})
	tenant := uuid.New()
	ev := cloudevent.Event{SpecVersion: "1.0", ID: "s-1", Source: "/s", Type: "sql.thing", Data: []byte(`{}`)}

	_, err = ingest.CheckEvents(ctx, tenant, []cloudevent.Event{ev}, false)
	require.Error(t, err, "unregistered types are refused by default")
	_, err = testDB.Pool.Exec(ctx, `INSERT INTO registry_config (tenant_id, subject, unregistered_types) VALUES ($1, '', 'accept')`, tenant)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := ingest.CheckEvents(ctx, tenant, []cloudevent.Event{ev}, false)
		return err == nil
	}, 30*time.Second, 10*time.Millisecond, "a tenant setting made in SQL applies at once")

	c := contracts.Contract{Type: "sql.thing", Owner: "shop", Description: "a thing happened", Level: contracts.LevelStandard,
		Schema: "urn:prost:schema:sql.thing:1", Compatibility: "BACKWARD", PartitionKey: "/order_id", Ordered: true,
		Idempotency: &contracts.Idempotency{Key: []string{"source", "id"}}, Retry: &contracts.Retry{MaxAttempts: 5}}
	_, _, err = cs.Put(ctx, tenant, &c)
	require.NoError(t, err)
	r, err := cs.Rules(ctx, tenant, "sql.thing") // cached for an hour
	require.NoError(t, err)
	require.Equal(t, "/order_id", r.PartitionKey)
	_, err = testDB.Pool.Exec(ctx, `DELETE FROM contracts WHERE tenant_id = $1 AND type = 'sql.thing'`, tenant)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := cs.Rules(ctx, tenant, "sql.thing")
		return err == nil && r.PartitionKey == ""
	}, 30*time.Second, 10*time.Millisecond, "a contract deleted in SQL is forgotten at once")
}
