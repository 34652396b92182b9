package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/subjects"
)

// envelope is what the billing consumer reads of a structured CloudEvent.
type envelope struct {
	ID       string          `json:"id"`
	Source   string          `json:"source"`
	Type     string          `json:"type"`
	Time     *time.Time      `json:"time"`
	TenantID string          `json:"tenantid"`
	Data     json.RawMessage `json:"data"`
}

// Correction is the data of a prost.billing.correction event: the event it
// corrects (by id and source) and either the data to count instead of that
// event's data, or void to count nothing for it.
type Correction struct {
	EventID     string          `json:"event_id"`
	EventSource string          `json:"event_source"`
	Reason      string          `json:"reason"`
	Data        json.RawMessage `json:"data,omitempty"`
	Void        bool            `json:"void,omitempty"`
}

// HandleEvents is the billing consumer's handler (a consumer.Handler): in
// tx it writes the usage every message counts for each of its tenant's
// meters of the event's type, applies corrections, and queues the Stripe
// meter events of meters billed through Stripe. An event a meter cannot
// count (its value missing or not a number, a correction naming an unknown
// event) fails permanently, so it lands in the dead-letter queue with the
// reason instead of being dropped.
func (s *Service) HandleEvents(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
	q := billingdb.New(tx)
	type item struct {
		msg *consumer.Message
		env envelope
	}
	byTenant := map[uuid.UUID][]item{}
	var order []uuid.UUID
	for _, m := range msgs {
		var e envelope
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return consumer.Permanent(fmt.Errorf("message %s is not a structured CloudEvent: %w", m.ID, err))
		}
		tenant, err := uuid.Parse(e.TenantID)
		if err != nil {
			return consumer.Permanent(fmt.Errorf("message %s has no valid tenantid: %w", m.ID, err))
		}
		if _, ok := byTenant[tenant]; !ok {
			order = append(order, tenant)
		}
		byTenant[tenant] = append(byTenant[tenant], item{m, e})
	}
	// Every tenant's meters of the batch's types, in one statement.
	var pairs []meterKey
	for _, tenant := range order {
		for _, it := range byTenant[tenant] {
			pairs = append(pairs, meterKey{tenant, it.env.Type})
		}
	}
	byPair, err := metersOf(ctx, q, pairs)
	if err != nil {
		return err
	}
	var usage []usageRow
	for _, tenant := range order {
		items := byTenant[tenant]
		meters := byPair[tenant]
		var metered []*envelope
		for i := range items {
			if e := &items[i].env; len(meters[e.Type]) > 0 && e.Type != CorrectionType {
				metered = append(metered, e)
			}
		}
		recorded, err := recordedTimes(ctx, tx, tenant, metered)
		if err != nil {
			return err
		}
		var rows []usageRow
		for _, it := range items {
			e := &it.env
			switch {
			case e.Type == CorrectionType:
				rs, err := s.correct(ctx, q, tenant, e, meters)
				if err != nil {
					return err
				}
				for i := range rs {
					rs[i].msg = it.msg
				}
				rows = append(rows, rs...)
			case e.Type == invoicePaidType && e.Source == StripeSource:
				if err := markPaid(ctx, q, tenant, e); err != nil {
					return err
				}
			default:
				ms := meters[e.Type]
				if len(ms) == 0 {
					continue
				}
				data, err := s.eventData(ctx, tenant, e.Data)
				if err != nil {
					return consumer.Permanent(fmt.Errorf("event %s from %s: data is not JSON: %w", e.ID, e.Source, err))
				}
				at, err := eventTime(tenant, e, recorded)
				if err != nil {
					return err
				}
				for i := range ms {
					r, err := ms[i].extract(data)
					if err != nil {
						return consumer.Permanent(fmt.Errorf("event %s from %s: %w", e.ID, e.Source, err))
					}
					r.source, r.id, r.time, r.msg = e.Source, e.ID, at, it.msg
					rows = append(rows, r)
				}
			}
		}
		for i := range rows {
			rows[i].tenant = tenant
		}
		usage = append(usage, rows...)
	}
	// Every tenant's usage in one statement.
	return s.insertUsage(ctx, tx, usage)
}

// meterKey is a (tenant, event type) pair.
type meterKey struct {
	tenant uuid.UUID
	typ    string
}

// metersOf returns, in one statement, the live meters of each pair, by
// tenant and then by type. Every tenant named in pairs has a map (empty
// when it has no meter of those types).
func metersOf(ctx context.Context, q *billingdb.Queries, pairs []meterKey) (map[uuid.UUID]map[string][]Meter, error) {
	out := map[uuid.UUID]map[string][]Meter{}
	seen := make(map[meterKey]bool, len(pairs))
	var p billingdb.MetersForPairsParams
	for _, k := range pairs {
		if out[k.tenant] == nil {
			out[k.tenant] = map[string][]Meter{}
		}
		if !seen[k] {
			seen[k] = true
			p.TenantIds, p.EventTypes = append(p.TenantIds, k.tenant), append(p.EventTypes, k.typ)
		}
	}
	if len(p.TenantIds) == 0 {
		return out, nil
	}
	rows, err := q.MetersForPairs(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("billing: read meters: %w", err)
	}
	for _, r := range rows {
		m, err := meterFrom(r)
		if err != nil {
			return nil, err
		}
		out[m.tenant][m.EventType] = append(out[m.tenant][m.EventType], m)
	}
	return out, nil
}

// invoicePaidType is the type of the Stripe event that marks an invoice
// paid (from StripeSource only).
const invoicePaidType = "stripe.invoice.paid"

// Relevant is the billing consumer's consumer.Config.Relevant: it keeps the
// messages whose tenant has a live meter of their type, every correction
// and every Stripe invoice event (they act on other events' usage and on
// invoices), and every message whose subject names no tenant or type. One
// statement reads the meters of the whole batch. What it leaves out counts
// towards no meter, and is not recorded as processed: a meter created later
// counts it through its backfill from the event store (RunBackfill), as it
// counts every event stored before the meter existed.
func (s *Service) Relevant(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) ([]*consumer.Message, error) {
	var pairs []meterKey
	for _, m := range msgs {
		t, ok := m.Tenant()
		typ, typed := m.EventType()
		if ok && typed && typ != CorrectionType && typ != invoicePaidType {
			pairs = append(pairs, meterKey{t, typ})
		}
	}
	if len(pairs) == 0 {
		return msgs, nil
	}
	meters, err := metersOf(ctx, billingdb.New(tx), pairs)
	if err != nil {
		return nil, err
	}
	return consumer.Keep(msgs, func(t uuid.UUID, typ string, typed bool) bool {
		return !typed || typ == CorrectionType || typ == invoicePaidType || len(meters[t][typ]) > 0
	}), nil
}

// eventTime is the event's time, or when it was recorded if it has none.
func eventTime(tenant uuid.UUID, e *envelope, recorded map[eventstore.Key]time.Time) (time.Time, error) {
	if e.Time != nil && !e.Time.IsZero() {
		return *e.Time, nil
	}
	at, ok := recorded[eventstore.Key{Tenant: tenant, Source: e.Source, ID: e.ID}]
	if !ok {
		return time.Time{}, consumer.Permanent(fmt.Errorf("event %s from %s is not in the event store", e.ID, e.Source))
	}
	return at, nil
}

// recordedTimes reads, in one statement, when those of events that have no
// time of their own were recorded.
func recordedTimes(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, events []*envelope) (map[eventstore.Key]time.Time, error) {
	var keys []eventstore.Key
	for _, e := range events {
		if e.Time == nil || e.Time.IsZero() {
			keys = append(keys, eventstore.Key{Tenant: tenant, Source: e.Source, ID: e.ID})
		}
	}
	at, err := eventstore.RecordedAt(ctx, tx, keys)
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	return at, nil
}

// correct turns a correction into a new revision of its target's usage for
// each meter of the target's type.
func (s *Service) correct(ctx context.Context, q *billingdb.Queries, tenant uuid.UUID, e *envelope, meters map[string][]Meter) ([]usageRow, error) {
	var c Correction
	if err := json.Unmarshal(e.Data, &c); err != nil || c.EventID == "" || c.EventSource == "" {
		return nil, consumer.Permanent(fmt.Errorf("correction %s from %s: data must name event_id and event_source (schema prost.billing.correction)", e.ID, e.Source))
	}
	self, err := q.EventByKey(ctx, billingdb.EventByKeyParams{TenantID: tenant, Source: e.Source, ID: e.ID})
	if err != nil {
		return nil, fmt.Errorf("billing: correction %s: read its position in the event store: %w", e.ID, err)
	}
	target, err := q.EventByKey(ctx, billingdb.EventByKeyParams{TenantID: tenant, Source: c.EventSource, ID: c.EventID})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, consumer.Permanent(fmt.Errorf("correction %s from %s corrects event %s from %s, which this App has not recorded; replay the dead letter once it is",
			e.ID, e.Source, c.EventID, c.EventSource))
	}
	if err != nil {
		return nil, fmt.Errorf("billing: correction %s: read the corrected event: %w", e.ID, err)
	}
	if target.Type == CorrectionType {
		return nil, consumer.Permanent(fmt.Errorf("correction %s from %s corrects another correction; correct the original event instead", e.ID, e.Source))
	}
	ms, ok := meters[target.Type]
	if !ok {
		m, err := metersOf(ctx, q, []meterKey{{tenant, target.Type}})
		if err != nil {
			return nil, err
		}
		ms = m[tenant][target.Type]
		meters[target.Type] = ms
	}
	if len(ms) == 0 {
		return nil, nil
	}
	at := target.RecordedAt
	if target.Time != nil {
		at = *target.Time
	}
	var data any
	if !c.Void {
		if data, err = decodeData(c.Data); err != nil || data == nil {
			return nil, consumer.Permanent(fmt.Errorf("correction %s from %s: give the data to count instead (data) or void: true", e.ID, e.Source))
		}
	}
	rows := make([]usageRow, 0, len(ms))
	for i := range ms {
		r := usageRow{meter: ms[i].ID, voided: true, groups: map[string]*string{}}
		if !c.Void {
			if r, err = ms[i].extract(data); err != nil {
				return nil, consumer.Permanent(fmt.Errorf("correction %s from %s: %w", e.ID, e.Source, err))
			}
		}
		r.source, r.id, r.time, r.revision = c.EventSource, c.EventID, at, self.Seq
		r.corrSrc, r.corrID = e.Source, e.ID
		rows = append(rows, r)
	}
	return rows, nil
}

// insertUsage writes rows, of any tenants, in one statement (repeats are
// skipped) and queues the Stripe meter events of the new rows whose meter
// has a Stripe meter.
func (s *Service) insertUsage(ctx context.Context, tx pgx.Tx, rows []usageRow) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	p := billingdb.InsertUsageParams{TenantIds: make([]uuid.UUID, n),
		MeterIds: make([]uuid.UUID, n), EventSources: make([]string, n), EventIds: make([]string, n), Revisions: make([]int64, n),
		Times: make([]time.Time, n), Customers: make([]string, n), GroupValues: make([]string, n), Vals: make([]pgtype.Numeric, n),
		UniqueValues: make([]string, n), Voids: make([]bool, n), CorrectionSources: make([]string, n), CorrectionIds: make([]string, n)}
	for i, r := range rows {
		groups, _ := json.Marshal(r.groups)
		p.TenantIds[i], p.MeterIds[i], p.EventSources[i], p.EventIds[i], p.Revisions[i] = r.tenant, r.meter, r.source, r.id, r.revision
		p.Times[i], p.Customers[i], p.GroupValues[i] = r.time, r.customer, string(groups)
		if r.value != nil {
			p.Vals[i] = numeric(*r.value)
		}
		p.UniqueValues[i], p.Voids[i], p.CorrectionSources[i], p.CorrectionIds[i] = r.unique, r.voided, r.corrSrc, r.corrID
	}
	q := billingdb.New(tx)
	inserted, err := q.InsertUsage(ctx, p)
	if err != nil {
		return fmt.Errorf("billing: insert usage: %w", err)
	}
	markSeen(rows, inserted)
	if len(inserted) == 0 {
		return nil
	}
	var sp billingdb.SyncedStripeMetersParams
	seen := map[uuid.UUID]bool{}
	for _, r := range inserted {
		if !seen[r.MeterID] {
			seen[r.MeterID] = true
			sp.TenantIds, sp.MeterIds = append(sp.TenantIds, r.TenantID), append(sp.MeterIds, r.MeterID)
		}
	}
	synced, err := q.SyncedStripeMeters(ctx, sp)
	if err != nil {
		return fmt.Errorf("billing: read stripe meters: %w", err)
	}
	if len(synced) == 0 {
		return nil
	}
	stripeMeters := map[uuid.UUID]bool{}
	for _, m := range synced {
		stripeMeters[m.MeterID] = true
	}
	slugs := map[uuid.UUID]string{}
	for _, r := range rows {
		slugs[r.meter] = r.meterSlug
	}
	for _, r := range inserted {
		if r.Revision != 0 || !stripeMeters[r.MeterID] {
			continue // corrections reach Stripe through invoices (docs/billing.md)
		}
		if err := queueMeterEvent(ctx, tx, r.TenantID, r.MeterID, slugs[r.MeterID], r.EventSource, r.EventID); err != nil {
			return err
		}
	}
	return nil
}

// markSeen marks Seen each message all of whose rows were there already:
// the consumer applied it before (it runs with consumer.Config.Idempotent,
// the rows' primary key being its record), so it counts as skipped.
func markSeen(rows []usageRow, inserted []billingdb.InsertUsageRow) {
	type key struct {
		meter      uuid.UUID
		source, id string
		revision   int64
	}
	isNew := make(map[key]bool, len(inserted))
	for _, r := range inserted {
		isNew[key{r.MeterID, r.EventSource, r.EventID, r.Revision}] = true
	}
	wrote := map[*consumer.Message]bool{}
	for _, r := range rows {
		if r.msg != nil {
			wrote[r.msg] = wrote[r.msg] || isNew[key{r.meter, r.source, r.id, r.revision}]
		}
	}
	for m, w := range wrote {
		if !w {
			m.Seen()
		}
	}
}

// meterEventArgs are the args of a billing.stripe.meter_event job.
type meterEventArgs struct {
	MeterID     uuid.UUID `json:"meter_id"`
	EventSource string    `json:"event_source"`
	EventID     string    `json:"event_id"`
}

func queueMeterEvent(ctx context.Context, db jobs.DB, tenant, meter uuid.UUID, slug, source, id string) error {
	args, _ := json.Marshal(meterEventArgs{MeterID: meter, EventSource: source, EventID: id})
	_, _, err := jobs.Insert(ctx, db, jobs.InsertParams{TenantID: &tenant, Kind: KindStripeMeterEvnt, Args: args,
		UniqueKey: meterEventIdentifier(tenant, slug, source, id)})
	if err != nil {
		return fmt.Errorf("billing: queue meter event: %w", err)
	}
	return nil
}

// meterEventIdentifier is the Stripe meter event identifier of an event's
// usage of a meter: the event's permanent dedupe key (the Nats-Msg-Id of
// tenant, source and id) and the meter's slug. The same event always gets
// the same identifier, so a retry can never bill it twice.
func meterEventIdentifier(tenant uuid.UUID, slug, source, id string) string {
	return subjects.MsgID(tenant, source, id) + "-" + slug
}

// markPaid records on PROST's invoice that Stripe said it was paid.
func markPaid(ctx context.Context, q *billingdb.Queries, tenant uuid.UUID, e *envelope) error {
	var ev struct {
		Data struct {
			Object struct {
				ID string `json:"id"`
			} `json:"object"`
		} `json:"data"`
	}
	if json.Unmarshal(e.Data, &ev) != nil || ev.Data.Object.ID == "" {
		return nil
	}
	at := time.Now()
	if e.Time != nil {
		at = *e.Time
	}
	if err := q.MarkInvoicePaid(ctx, billingdb.MarkInvoicePaidParams{TenantID: tenant, StripeInvoiceID: &ev.Data.Object.ID, PaidAt: &at}); err != nil {
		return fmt.Errorf("billing: mark invoice paid: %w", err)
	}
	return nil
}
