package main

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/natsembed"
	"github.com/prost-platform/prost/pkg/prosttest"
)

// TestDevDataSurvivesThePrivateBus: streams a dev data directory held
// before the bus became private (in the global account) are found in the
// PROST account afterwards.
func TestDevDataSurvivesThePrivateBus(t *testing.T) {
	store := filepath.Join(t.TempDir(), "nats")
	old, err := natsembed.Start(natsembed.Config{Addr: "127.0.0.1:0", StoreDir: store})
	require.NoError(t, err)
	js, err := jetstream.New(prosttest.Connect(t, old.URL(), nil))
	require.NoError(t, err)
	_, err = js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "PROST_EVENTS", Subjects: []string{"prost.events.>"}})
	require.NoError(t, err)
	_, err = js.Publish(t.Context(), "prost.events.x.0.t", []byte("kept"))
	require.NoError(t, err)
	old.Stop()

	keys, err := natsauth.Generate()
	require.NoError(t, err)
	require.NoError(t, moveGlobalAccount(store, keys.ProstAccount()))
	require.NoError(t, moveGlobalAccount(store, keys.ProstAccount()), "a second start has nothing to move")
	s, err := natsembed.Start(natsembed.Config{Addr: "127.0.0.1:0", StoreDir: store, Accounts: &natsembed.Accounts{
		OperatorJWT: keys.OperatorJWT, Preload: keys.Preload(), ResolverDir: filepath.Join(store, "jwt")}})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	js, err = jetstream.New(prosttest.Connect(t, s.URL(), keys.ServiceCreds))
	require.NoError(t, err)
	st, err := js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	m, err := st.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	require.Equal(t, "kept", string(m.Data))
}
