package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/subjects"
	governancesvc "github.com/prost-platform/prost/services/governance"
	rulessvc "github.com/prost-platform/prost/services/rules"
)

// TestForgedMessagesAreRefused reproduces issue 10 case 3: with access to
// the bus, a message forged on prost.events.<tenant>.<n>.<type> was
// appended to that tenant's audit chain, fired its rules, and audit verify
// still passed. Now the audit and rules consumers dead-letter it unhandled
// (under no tenant), whether unsigned, signed with another key or altered;
// the tenant's chain holds only its real events and verifies; and a DLQ
// replay, signed by PROST, is applied.
func TestForgedMessagesAreRefused(t *testing.T) {
	s := startStack(t, nil)
	app := s.createApp("victim")
	code, body := s.tenantJSON(app, "POST", "/v1/rules", `{"name":"r","filters":[{"exact":{"type":"order.placed"}}],"actions":[{"emit":{"type":"order.seen","source":"/r"}}]}`)
	require.Equal(t, http.StatusCreated, code, body)
	code, raw := s.post(app, "application/cloudevents+json", `{"specversion":"1.0","id":"real-1","source":"/shop","type":"order.placed","actorid":"user-1"}`)
	require.Equal(t, http.StatusAccepted, code, string(raw))

	other, err := busauth.Parse(busauth.NewKey())
	require.NoError(t, err)
	forge := func(id string, sign *busauth.Signer, alter bool) {
		env := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/shop","type":"order.placed","actorid":"mallory","tenantid":%q}`, id, app.AppID)
		subject := subjects.Event(app.AppID, 0, "order.placed")
		msgID := subjects.MsgID(app.AppID, "/shop", id)
		msg := &nats.Msg{Subject: subject, Data: []byte(env), Header: nats.Header{}}
		if sign != nil {
			sign.Sign(msg.Header, subject, msgID, msg.Data)
		}
		if alter {
			s.p.signer.Sign(msg.Header, subject, msgID, msg.Data)
			msg.Data = []byte(strings.Replace(env, "mallory", "mallory2", 1))
		}
		_, err := s.p.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(msgID))
		require.NoError(t, err)
	}
	forge("forged-unsigned", nil, false)
	forge("forged-other-key", other, false)
	forge("forged-altered", nil, true)

	// Every forged message is dead-lettered by both consumers, unhandled.
	forgedIDs := map[string]bool{}
	for _, id := range []string{"forged-unsigned", "forged-other-key", "forged-altered"} {
		forgedIDs[subjects.MsgID(app.AppID, "/shop", id)] = true
	}
	forgedEntries := func() []dlq.Entry {
		var out []dlq.Entry
		for _, c := range []string{governancesvc.ConsumerName, rulessvc.ConsumerName} {
			es, _, err := dlq.List(context.Background(), s.p.pool, dlq.Filter{Consumer: c, Limit: 1000})
			require.NoError(t, err)
			for _, e := range es {
				if forgedIDs[e.MsgID] {
					out = append(out, e)
				}
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(forgedEntries()) == 6 }, 20*time.Second, 50*time.Millisecond)
	s.waitQuiet(t)
	for _, e := range forgedEntries() {
		require.Nil(t, e.TenantID, "what a forged message claims is not believed")
		require.Contains(t, e.LastError, "busauth:")
	}
	var ids []string
	for _, e := range s.audit(app) {
		ids = append(ids, e.EventID)
		require.False(t, strings.HasPrefix(e.EventID, "forged"), "a forged message reached the audit chain: %s", e.EventID)
		require.NotEqual(t, "mallory", e.ActorID)
	}
	require.Contains(t, ids, "real-1")
	require.Len(t, ids, 3, "the real event, and the rule's emitted event and decision (signed by the relay)")
	var decisions int
	require.NoError(t, s.p.pool.QueryRow(context.Background(), `SELECT count(*) FROM decisions WHERE tenant_id = $1`, app.AppID).Scan(&decisions))
	require.Equal(t, 1, decisions, "the forged messages fired no rule")
	out, err := s.cli("audit", "verify", "--app", app.AppID.String())
	require.NoError(t, err, out)

	// The tenant does not see the forged entries: they name no tenant.
	code, raw = s.do(http.MethodGet, "/v1/dlq", auth(app), nil)
	require.Equal(t, http.StatusOK, code, string(raw))
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	require.NoError(t, json.Unmarshal(raw, &page))
	require.Empty(t, page.Items)
}
