package consumer_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/subjects"
)

// TestMessageSubjectParts: the tenant and the event type a message's subject
// names (a replay's original subject), and false where it names none
// plainly; Config.Relevant functions keep such messages.
func TestMessageSubjectParts(t *testing.T) {
	tenant := uuid.New()
	for _, tc := range []struct {
		subject    string
		replay     bool
		wantType   string
		typeOK     bool
		wantTenant bool
	}{
		{subjects.Event(tenant, 3, "order.placed"), false, "order.placed", true, true},
		{subjects.Event(tenant, 0, "single"), false, "single", true, true},
		{subjects.Event(tenant, 0, "has space.x"), false, "", false, true}, // escaped token
		{subjects.Event(tenant, 0, "a..b"), false, "", false, true},        // empty token, escaped
		{"prost.replay.rules-engine." + tenant.String() + ".1.order.placed", true, "order.placed", true, true},
		{"test.events", false, "", false, false},
		{subjects.Root + ".not-a-tenant.0.t", false, "t", true, false},
	} {
		m := &consumer.Message{Subject: tc.subject, Replay: tc.replay}
		typ, ok := m.EventType()
		require.Equal(t, tc.typeOK, ok, tc.subject)
		require.Equal(t, tc.wantType, typ, tc.subject)
		got, ok := m.Tenant()
		require.Equal(t, tc.wantTenant, ok, tc.subject)
		if ok {
			require.Equal(t, tenant, got)
		}
	}
}
