package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/invalidate"
)

// TestFeedCarriesRegistryChanges: with an invalidation feed, a version
// registered and a setting changed through one process's registry apply at
// once to ingest in another, although it would trust what it read for an
// hour.
func TestFeedCarriesRegistryChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	feedA, feedB := invalidate.New(testDB.Pool, nil), invalidate.New(testDB.Pool, nil)
	var wg sync.WaitGroup
	for _, f := range []*invalidate.Feed{feedA, feedB} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.Run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()
	a, err := registry.New(testDB.Pool, registry.Config{Feed: feedA, StateTTL: time.Hour})
	require.NoError(t, err)
	b, err := registry.New(testDB.Pool, registry.Config{Feed: feedB, StateTTL: time.Hour})
	require.NoError(t, err)
	ingestB := registry.NewIngest(b, contracts.NewStore(testDB.Pool, contracts.StoreConfig{Feed: feedB, TTL: time.Hour}), nil)
	tenant := uuid.New()
	ev := cloudevent.Event{SpecVersion: "1.0", ID: "f-1", Source: "/f", Type: "fed.thing", Data: []byte(`{}`)}

	accept := registry.UnregisteredAccept
	_, err = a.SetConfig(ctx, tenant, "", registry.SettingsPatch{UnregisteredTypes: &accept})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := ingestB.CheckEvents(ctx, tenant, []cloudevent.Event{ev}, false)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "the tenant's setting reaches the other process")

	_, _, err = a.Register(ctx, tenant, "fed.thing", []byte(`{"type":"object","required":["a"]}`))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := ingestB.CheckEvents(ctx, tenant, []cloudevent.Event{ev}, false)
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the new version validates in the other process at once")
}
