package billing

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/jobs"
)

// backfillArgs are the args of a billing.backfill job.
type backfillArgs struct {
	MeterID uuid.UUID `json:"meter_id"`
}

// backfillBudget is how long one run of a backfill job walks events before
// it snoozes and lets other jobs run.
const backfillBudget = 20 * time.Second

// RunBackfill is the jobs.Handler of KindBackfill: it counts, for a new
// meter, the events of its type (and the corrections of such events) that
// were stored before the meter existed, in store order, a page per
// transaction, recording how far it got. Rows the consumer already wrote are
// skipped, so the two never count an event twice. An event that cannot be
// counted is skipped and counted in the meter's backfill state. A long
// history is walked over several runs (the job snoozes between them).
func (s *Service) RunBackfill(ctx context.Context, j *jobs.Job) error {
	var a backfillArgs
	if err := json.Unmarshal(j.Args, &a); err != nil || j.TenantID == nil {
		return jobs.Cancel(fmt.Errorf("billing: unreadable backfill job args: %v", err))
	}
	row, err := s.q.GetMeterByID(ctx, a.MeterID)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (row.DeletedAt != nil || row.TenantID != *j.TenantID)) {
		return nil // the meter is gone: nothing to count
	}
	if err != nil {
		return err
	}
	m, err := meterFrom(row)
	if err != nil {
		return jobs.Cancel(err)
	}
	deadline := time.Now().Add(backfillBudget)
	page := s.cfg.BackfillPage
	after := row.BackfillSeq
	for {
		done := false
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			q := billingdb.New(tx)
			// The meter's events and the corrections, each read through
			// (tenant_id, type, seq), merged in store order up to the end
			// of the shorter full page.
			evs, err := q.EventsOfType(ctx, billingdb.EventsOfTypeParams{TenantID: m.tenant, Type: m.EventType, AfterSeq: after, MaxRows: int32(page)})
			if err != nil {
				return err
			}
			cors, err := q.EventsOfType(ctx, billingdb.EventsOfTypeParams{TenantID: m.tenant, Type: CorrectionType, AfterSeq: after, MaxRows: int32(page)})
			if err != nil {
				return err
			}
			bound := int64(math.MaxInt64)
			for _, rows := range [][]billingdb.EventsOfTypeRow{evs, cors} {
				if len(rows) == page {
					bound = min(bound, rows[len(rows)-1].Seq)
				}
			}
			evs = slices.DeleteFunc(append(evs, cors...), func(e billingdb.EventsOfTypeRow) bool { return e.Seq > bound })
			slices.SortFunc(evs, func(a, b billingdb.EventsOfTypeRow) int { return cmp.Compare(a.Seq, b.Seq) })
			var rows []usageRow
			var skipped int64
			var lastErr *string
			meters := map[string][]Meter{m.EventType: {m}}
			for _, ev := range evs {
				var e envelope
				if err := json.Unmarshal([]byte(ev.Envelope), &e); err != nil {
					skipped, lastErr = skipped+1, ptr(fmt.Sprintf("event %s from %s: %v", ev.ID, ev.Source, err))
					continue
				}
				if e.Type == CorrectionType {
					rs, err := s.correct(ctx, q, m.tenant, &e, meters)
					switch {
					case consumer.IsPermanent(err):
						skipped, lastErr = skipped+1, ptr(err.Error())
					case err != nil:
						return err
					default:
						for _, r := range rs {
							if r.meter == m.ID { // other meters' consumers count the rest
								rows = append(rows, r)
							}
						}
					}
					continue
				}
				data, err := s.eventData(ctx, m.tenant, []byte(e.Data))
				if err == nil {
					var r usageRow
					if r, err = m.extract(data); err == nil {
						r.source, r.id, r.time = ev.Source, ev.ID, ev.RecordedAt
						if ev.Time != nil {
							r.time = *ev.Time
						}
						rows = append(rows, r)
						continue
					}
				}
				skipped, lastErr = skipped+1, ptr(fmt.Sprintf("event %s from %s: %v", ev.ID, ev.Source, err))
			}
			for i := range rows {
				rows[i].tenant = m.tenant
			}
			if err := s.insertUsage(ctx, tx, rows); err != nil {
				return err
			}
			if len(evs) > 0 {
				after = evs[len(evs)-1].Seq
			}
			done = bound == math.MaxInt64
			return q.AdvanceBackfill(ctx, billingdb.AdvanceBackfillParams{MeterID: m.ID, BackfillSeq: after, Skipped: skipped,
				BackfillError: lastErr, Done: done})
		})
		if err != nil {
			return fmt.Errorf("billing: backfill meter %s: %w", m.Slug, err)
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return jobs.Snooze(0)
		}
	}
}
