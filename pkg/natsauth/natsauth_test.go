package natsauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/natsembed"
	"github.com/prost-platform/prost/pkg/prosttest"
)

var testDB *prosttest.Database

func TestMain(m *testing.M) { prosttest.Main(m, &testDB) }

// violations collects the asynchronous permission errors of a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	v.errs = append(v.errs, err.Error())
	v.mu.Unlock()
}

func (v *violations) has(sub string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

type bundle struct {
	srv  *natsembed.Server
	keys *natsauth.KeySet
	js   jetstream.JetStream
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv, keys := prosttest.SecureNATS(t)
	nc := prosttest.Connect(t, srv.URL(), keys.ServiceCreds)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "PROST_EVENTS", Subjects: []string{"prost.events.>"}})
	require.NoError(t, err)
	for _, tenant := range []string{"A", "B"} {
		for range 3 {
			_, err := js.Publish(t.Context(), "prost.events."+tenant+".0.order.placed", []byte(`{"tenant":"`+tenant+`"}`))
			require.NoError(t, err)
		}
		_, err := js.CreateConsumer(t.Context(), "PROST_EVENTS", jetstream.ConsumerConfig{Durable: "sub_" + tenant,
			FilterSubject: "prost.events." + tenant + ".>", AckPolicy: jetstream.AckExplicitPolicy,
			MaxRequestExpires: natsauth.MaxRequestExpires})
		require.NoError(t, err)
	}
	return &bundle{srv: srv, keys: keys, js: js}
}

func (b *bundle) streamMsgs(t *testing.T) uint64 {
	t.Helper()
	st, err := b.js.Stream(t.Context(), "PROST_EVENTS")
	require.NoError(t, err)
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	return info.State.Msgs
}

func (b *bundle) mint(t *testing.T, tenant string) natsauth.Minted {
	t.Helper()
	m, err := b.keys.MintConsumerUser(natsauth.ConsumerUser{Name: "sub-" + tenant, Stream: "PROST_EVENTS",
		Consumer: "sub_" + tenant, InboxPrefix: "_INBOX_" + tenant})
	require.NoError(t, err)
	return m
}

func TestAnonymousRefused(t *testing.T) {
	b := setup(t)
	for name, opts := range map[string][]nats.Option{
		"no credentials":    nil,
		"user and password": {nats.UserInfo("prost", "prost")},
		"a token":           {nats.Token("prost")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := nats.Connect(b.srv.URL(), opts...)
			require.ErrorIs(t, err, nats.ErrAuthorization)
		})
	}
	// Credentials of another operator are refused too.
	other, err := natsauth.Generate()
	require.NoError(t, err)
	o, err := natsauth.ConnectOption(other.ServiceCreds)
	require.NoError(t, err)
	_, err = nats.Connect(b.srv.URL(), o)
	require.ErrorIs(t, err, nats.ErrAuthorization)
}

func TestTenantUser(t *testing.T) {
	b := setup(t)
	m := b.mint(t, "A")
	var v violations
	nc := prosttest.Connect(t, b.srv.URL(), m.Creds, nats.CustomInboxPrefix("_INBOX_A"), nats.ErrorHandler(v.handler))
	js, err := jetstream.NewWithAPIPrefix(nc, natsauth.APIPrefix)
	require.NoError(t, err)

	// Its own consumer: info, fetch, ack.
	c, err := js.Consumer(t.Context(), "PROST_EVENTS", "sub_A")
	require.NoError(t, err)
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	n := 0
	for msg := range batch.Messages() {
		require.Equal(t, "prost.events.A.0.order.placed", msg.Subject())
		require.NoError(t, msg.DoubleAck(t.Context()))
		n++
	}
	require.Equal(t, 3, n)
	info, err := c.Info(t.Context())
	require.NoError(t, err)
	require.Zero(t, info.NumAckPending)
	before := b.streamMsgs(t)

	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	t.Run("another consumer", func(t *testing.T) {
		_, err := js.Consumer(short(), "PROST_EVENTS", "sub_B")
		require.Error(t, err)
		require.Eventually(t, func() bool { return v.has(`Publish to "PROST.JSAPI.CONSUMER.INFO.PROST_EVENTS.sub_B"`) }, 30*time.Second, 10*time.Millisecond)
	})
	t.Run("creating a consumer", func(t *testing.T) {
		_, err := js.CreateConsumer(short(), "PROST_EVENTS", jetstream.ConsumerConfig{FilterSubject: "prost.events.B.>"})
		require.Error(t, err)
		_, err = js.OrderedConsumer(short(), "PROST_EVENTS", jetstream.OrderedConsumerConfig{})
		require.Error(t, err)
	})
	t.Run("another tenant's subjects", func(t *testing.T) {
		for _, subj := range []string{"prost.events.B.>", "prost.events.>", ">", "_INBOX_B.>", "$JS.API.>"} {
			_, err := nc.SubscribeSync(subj)
			require.NoError(t, err) // refused asynchronously
			require.Eventually(t, func() bool { return v.has(`Subscription to "` + subj + `"`) }, 30*time.Second, 10*time.Millisecond, subj)
		}
	})
	t.Run("publishing", func(t *testing.T) {
		for _, subj := range []string{"prost.events.A.0.forged", "prost.events.B.0.forged", "prost.replay.x.A.0.y"} {
			require.NoError(t, nc.Publish(subj, []byte(`{}`)))
			require.Eventually(t, func() bool { return v.has(`Publish to "` + subj + `"`) }, 30*time.Second, 10*time.Millisecond, subj)
		}
	})
	t.Run("a reply subject into another tenant's stream", func(t *testing.T) {
		// The server checks publish rights on the subject only: in the
		// PROST account the pulled message would be written to the reply
		// subject, here it lands in an account without streams.
		require.NoError(t, nc.PublishRequest(natsauth.APIPrefix+".CONSUMER.MSG.NEXT.PROST_EVENTS.sub_A",
			"prost.events.B.0.injected", []byte(`{"batch":1,"no_wait":true}`)))
		require.NoError(t, nc.Flush())
		time.Sleep(200 * time.Millisecond)
	})
	require.Equal(t, before, b.streamMsgs(t), "nothing the tenant did wrote into the stream")
}

func TestRevoke(t *testing.T) {
	b := setup(t)
	sys := prosttest.Connect(t, b.srv.URL(), b.keys.SysCreds)
	acc, err := natsauth.NewAccounts(b.keys, sys)
	require.NoError(t, err)
	ma, mb := b.mint(t, "A"), b.mint(t, "B")
	closed := make(chan struct{})
	nca := prosttest.Connect(t, b.srv.URL(), ma.Creds, nats.CustomInboxPrefix("_INBOX_A"), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	ncb := prosttest.Connect(t, b.srv.URL(), mb.Creds, nats.CustomInboxPrefix("_INBOX_B"))

	// Two revocations in the same second: the second JWT must still be
	// newer than the first, or the server would keep the first.
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		return acc.RevokeTx(t.Context(), tx, []string{"UNUSED" + strings.Repeat("A", 50)})
	}))
	require.NoError(t, pgx.BeginFunc(t.Context(), testDB.Pool, func(tx pgx.Tx) error {
		return acc.RevokeTx(t.Context(), tx, []string{ma.UserKey})
	}))
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked user's connection is still open")
	}
	_ = nca
	o, err := natsauth.ConnectOption(ma.Creds)
	require.NoError(t, err)
	_, err = nats.Connect(b.srv.URL(), o)
	require.Error(t, err, "the revoked user cannot connect again")
	require.True(t, ncb.IsConnected(), "another tenant's user stays connected")
	jsb, err := jetstream.NewWithAPIPrefix(ncb, natsauth.APIPrefix)
	require.NoError(t, err)
	_, err = jsb.Consumer(t.Context(), "PROST_EVENTS", "sub_B")
	require.NoError(t, err)

	// Sync pushes the same revocations again (a server that lost them).
	require.NoError(t, acc.Sync(t.Context(), testDB.Pool))
	_, err = nats.Connect(b.srv.URL(), o)
	require.Error(t, err)
}

func TestKeyDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats-auth")
	k, created, err := natsauth.Ensure(dir)
	require.NoError(t, err)
	require.True(t, created)
	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 9)
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), e.Name())
	}
	again, created, err := natsauth.Ensure(dir)
	require.NoError(t, err)
	require.False(t, created, "a second start reuses the keys")
	require.Equal(t, k.OperatorJWT, again.OperatorJWT)
	require.Equal(t, string(k.ServiceCreds), string(again.ServiceCreds))
	require.Equal(t, k.TenantsAccount(), again.TenantsAccount())
	require.Error(t, k.Write(dir), "never overwrites a key set")

	// Without the signing seeds nothing can be minted nor revoked.
	require.NoError(t, os.Remove(filepath.Join(dir, natsauth.FileTenantsSigning)))
	require.NoError(t, os.Remove(filepath.Join(dir, natsauth.FileOperatorSigning)))
	partial, err := natsauth.Load(dir)
	require.NoError(t, err)
	_, err = partial.MintConsumerUser(natsauth.ConsumerUser{Stream: "PROST_EVENTS", Consumer: "c", InboxPrefix: "_INBOX_c"})
	require.ErrorIs(t, err, natsauth.ErrCannotMint)
	_, err = natsauth.NewAccounts(partial, nil)
	require.ErrorIs(t, err, natsauth.ErrCannotRevoke)

	// A mismatched file is caught.
	other, err := natsauth.Generate()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, natsauth.FileSysAccountJWT), []byte(other.SysAccountJWT), 0o600))
	_, err = natsauth.Load(dir)
	require.Error(t, err)
}

// The generated configuration loads in a real server and refuses anonymous
// clients there too.
func TestServerConfig(t *testing.T) {
	k, err := natsauth.Generate()
	require.NoError(t, err)
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats-server.conf")
	text := "listen: 127.0.0.1:-1\njetstream {\n  store_dir: " + `"` + filepath.Join(dir, "js") + `"` + "\n}\n" +
		natsauth.ResolverConfig(filepath.Join(dir, "jwt")) + "include ./accounts.conf\n"
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "accounts.conf"), []byte(k.AccountsConfig()), 0o600))
	opts, err := server.ProcessConfigFile(conf)
	require.NoError(t, err)
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	require.True(t, s.ReadyForConnections(10*time.Second))
	_, err = nats.Connect(s.ClientURL())
	require.True(t, errors.Is(err, nats.ErrAuthorization), "%v", err)
	nc := prosttest.Connect(t, s.ClientURL(), k.ServiceCreds)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.AccountInfo(t.Context())
	require.NoError(t, err, "the PROST account has JetStream")
}
