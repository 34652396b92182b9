package consumer_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dlq"
)

// TestUnsignedMessagesAreDeadLettered reproduces issue 10 case 3 at the
// consumer runtime: a message forged by someone with bus access, unsigned
// or signed with another key or altered after signing, is dead-lettered at
// intake (reason permanent, under no tenant, terminated) and never reaches
// the handler; the signed messages around it are applied in order.
func TestUnsignedMessagesAreDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t, jetstream.StreamConfig{})
	signer, err := busauth.Parse(busauth.NewKey())
	require.NoError(t, err)
	other, err := busauth.Parse(busauth.NewKey())
	require.NoError(t, err)

	pub := func(id string, sign *busauth.Signer, body string) uint64 {
		msg := &nats.Msg{Subject: "test.events", Data: []byte(body), Header: nats.Header{}}
		if sign != nil {
			sign.Sign(msg.Header, msg.Subject, id, []byte(`{"id":"`+id+`"}`))
		}
		ack, err := b.js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(id))
		require.NoError(t, err)
		return ack.Sequence
	}
	forged := `{"id":"x","tenantid":"00000000-0000-0000-0000-00000000000a","type":"t","source":"/s"}`
	pub("ok-1", signer, `{"id":"ok-1"}`)
	unsigned := pub("forged-unsigned", nil, forged)
	pub("ok-2", signer, `{"id":"ok-2"}`)
	wrongKey := pub("forged-other-key", other, `{"id":"forged-other-key"}`)
	altered := pub("forged-altered", signer, `{"id":"forged-altered","evil":true}`)
	pub("ok-3", signer, `{"id":"ok-3"}`)

	terms := b.terminations(t)
	var handled []string
	c, err := consumer.New(testDB.Pool, b.js, b.config(consumer.Config{Signer: signer}),
		func(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
			for _, m := range msgs {
				handled = append(handled, m.ID)
			}
			return recordEffects(ctx, tx, b.name, msgs)
		})
	require.NoError(t, err)
	run(t, c)
	for _, seq := range []uint64{unsigned, wrongKey, altered} {
		requireTerminated(t, terms, seq, "unauthenticated")
	}
	b.waitSettled(t, c)

	require.Equal(t, []string{"ok-1", "ok-2", "ok-3"}, order(t, b.name), "signed messages are applied, in order")
	require.NotContains(t, handled, "forged-unsigned")
	entries := deadLetters(t, b.name)
	require.Len(t, entries, 3)
	errs := map[string]string{}
	for _, e := range entries {
		errs[e.MsgID] = e.LastError
		require.Equal(t, dlq.ReasonPermanent, e.Reason)
		require.Nil(t, e.TenantID, "what a forged message claims is not believed")
		require.Empty(t, e.EventID)
	}
	require.Equal(t, map[string]string{
		"forged-unsigned":  busauth.ErrUnsigned.Error(),
		"forged-other-key": busauth.ErrBadSignature.Error(),
		"forged-altered":   busauth.ErrBadSignature.Error(),
	}, errs)
	require.EqualValues(t, 3, c.DeadLettered())
}
