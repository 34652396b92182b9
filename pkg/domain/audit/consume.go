package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/consumer"
)

// envelope is the part of a structured CloudEvent the audit log records.
type envelope struct {
	ID       string          `json:"id"`
	Source   string          `json:"source"`
	Type     string          `json:"type"`
	TenantID string          `json:"tenantid"`
	ActorID  json.RawMessage `json:"actorid"`
	Action   json.RawMessage `json:"action"`
}

// HandleEvents is the governance consumer's handler: it appends each event
// (a structured CloudEvent stamped with tenantid) to its tenant's chain inside
// tx. actor_id and action come from the actorid and action extensions. A
// message that is not such an event fails permanently. An event whose entry
// the chain holds already (a redelivery) is left out and marked Seen: the
// consumer runs with consumer.Config.Idempotent, and this is its record.
func HandleEvents(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
	recs := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		var e envelope
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return consumer.Permanent(fmt.Errorf("message %s is not a structured CloudEvent: %w", m.ID, err))
		}
		tenant, err := uuid.Parse(e.TenantID)
		if err != nil {
			return consumer.Permanent(fmt.Errorf("message %s has no valid tenantid: %w", m.ID, err))
		}
		recs = append(recs, Record{TenantID: tenant, EventID: e.ID, EventSource: e.Source, EventType: e.Type,
			ActorID: extString(e.ActorID), Action: extString(e.Action)})
	}
	_, dup, err := AppendNewTx(ctx, tx, recs)
	if err != nil {
		return err
	}
	for i, d := range dup {
		if d {
			msgs[i].Seen()
		}
	}
	return nil
}

// extString renders an extension value (string, boolean or integer) as text.
func extString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(raw))
}
