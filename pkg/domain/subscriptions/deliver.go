package subscriptions

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/domain/rules/filter"
	"github.com/prost-platform/prost/pkg/domain/subscriptions/internal/subscriptionsdb"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/netguard"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/subjects"
	"github.com/prost-platform/prost/pkg/webhook"
)

// KindDeliver is the job kind of an HTTP delivery.
const KindDeliver = "subscriptions.deliver"

// DLQConsumer names HTTP deliveries in the dead-letter queue.
const DLQConsumer = "subscriptions-http"

// DisabledType is the type of the event PROST emits into the tenant's
// stream when it disables an HTTP subscription (410 Gone, or failing for
// longer than the disable window).
const DisabledType = "prost.subscription.disabled"

// PingType is the type of the event a test sends.
const PingType = "prost.subscription.ping"

// EventSource is the source of the events this domain emits, followed by
// the subscription id.
const EventSource = "/prost/subscriptions/"

// Delivery states.
const (
	stateQueued    = "queued"
	statePending   = "pending"
	stateDelivered = "delivered"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

// maxRecover caps the deliveries one Recover re-sends; call it again for
// more (what it re-sent is no longer failed).
const maxRecover = 10_000

// maxRetryAfter caps how long a receiver's Retry-After can delay a retry.
const maxRetryAfter = 24 * time.Hour

// deliverArgs are a delivery job's arguments.
type deliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// WebhookID is the webhook-id of the delivery of an event (its NATS
// message id, see subjects.MsgID) to a subscription: the same on every
// attempt, retry, recovery and replay, the key a receiver deduplicates on.
func WebhookID(subscription uuid.UUID, eventMsgID string) string {
	h := sha256.New()
	_, _ = h.Write(subscription[:])
	_, _ = h.Write([]byte(eventMsgID))
	return "msg_" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// compiled is a subscription as the fan-out matches it.
type compiled struct {
	updatedAt   time.Time
	types       []string
	list        filter.List
	broken      bool // stored filters that no longer compile: matches nothing
	maxAttempts int
}

func (s *Service) compile(r subscriptionsdb.ActiveHTTPSubscriptionsRow) *compiled {
	s.mu.Lock()
	c, ok := s.cache[r.ID]
	s.mu.Unlock()
	if ok && c.updatedAt.Equal(r.UpdatedAt) {
		return c
	}
	var cfg SubscriptionConfig
	_ = json.Unmarshal(r.Config, &cfg)
	c = &compiled{updatedAt: r.UpdatedAt, types: r.Types, maxAttempts: len(cfg.Schedule(s.cfg.RetrySchedule)) + 1}
	if fs := rawFilters(r.Filters); len(fs) > 0 {
		list, errs := filter.Compile("/filters", fs)
		if len(errs) > 0 {
			// Stored filters were valid when stored; a newer filter package
			// that refuses one matches nothing rather than everything.
			s.cfg.Logger.Error("subscriptions: stored filters no longer compile; the subscription matches nothing",
				"subscription_id", r.ID, "error", errs[0].Error())
			c.broken = true
		}
		c.list = list
	}
	s.mu.Lock()
	if len(s.cache) > 10_000 {
		clear(s.cache)
	}
	s.cache[r.ID] = c
	s.mu.Unlock()
	return c
}

// HandleEvents is the fan-out, a consumer.Handler: for each event it finds
// the tenant's active HTTP subscriptions whose types and filters match and,
// in tx, records one delivery per match and makes it runnable in its lane
// (subscription and partition key), so the deliveries of a key reach the
// receiver in stream order. A redelivered event makes no second delivery.
// Relevant is the fan-out consumer's consumer.Config.Relevant: it keeps the
// messages of a type some active HTTP subscription of their tenant takes
// (read through tx as HandleEvents reads them), so the events no
// subscription can receive are acknowledged with nothing written. A message
// whose subject names no tenant or no plain type is kept if its tenant may
// have a subscription.
func (s *Service) Relevant(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) ([]*consumer.Message, error) {
	tenants := consumer.Tenants(msgs)
	if len(tenants) == 0 {
		return msgs, nil
	}
	rows, err := subscriptionsdb.New(tx).ActiveHTTPSubscriptions(ctx, tenants)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: load subscriptions: %w", err)
	}
	types := make(map[uuid.UUID][][]string, len(rows))
	for _, r := range rows {
		types[r.TenantID] = append(types[r.TenantID], r.Types)
	}
	return consumer.Keep(msgs, func(t uuid.UUID, typ string, typed bool) bool {
		subs, ok := types[t]
		return ok && (!typed || slices.ContainsFunc(subs, func(ts []string) bool { return typeMatches(ts, typ) }))
	}), nil
}

func (s *Service) HandleEvents(ctx context.Context, tx pgx.Tx, msgs []*consumer.Message) error {
	type item struct {
		tenant uuid.UUID
		ev     cloudevent.Event
		msgID  string
	}
	items := make([]item, 0, len(msgs))
	var tenants []uuid.UUID
	for _, m := range msgs {
		ev, err := cloudevent.ParseStructured(m.Data)
		if err != nil {
			s.cfg.Logger.Warn("subscriptions: unreadable event skipped", "msg_id", m.ID, "subject", m.Subject, "error", err)
			continue
		}
		tv, _ := ev.Extension("tenantid")
		ts, _ := tv.(string)
		tenant, err := uuid.Parse(ts)
		if err != nil {
			s.cfg.Logger.Warn("subscriptions: event without a tenant skipped", "msg_id", m.ID, "subject", m.Subject)
			continue
		}
		items = append(items, item{tenant: tenant, ev: ev, msgID: subjects.MsgID(tenant, ev.Source, ev.ID)})
		if !slices.Contains(tenants, tenant) {
			tenants = append(tenants, tenant)
		}
	}
	if len(items) == 0 {
		return nil
	}
	q := subscriptionsdb.New(tx)
	rows, err := q.ActiveHTTPSubscriptions(ctx, tenants)
	if err != nil {
		return fmt.Errorf("subscriptions: load subscriptions: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	byTenant := map[uuid.UUID][]sub{}
	maxAttempts := map[uuid.UUID]int{}
	for _, r := range rows {
		c := s.compile(r)
		byTenant[r.TenantID] = append(byTenant[r.TenantID], sub{r.ID, c})
		maxAttempts[r.ID] = c.maxAttempts
	}
	var p subscriptionsdb.InsertDeliveriesParams
	type lane struct {
		sub uuid.UUID
		key string
	}
	var lanes []lane
	for _, it := range items {
		subs := byTenant[it.tenant]
		if len(subs) == 0 {
			continue
		}
		fe := s.filterEvent(ctx, it.tenant, &it.ev, subs)
		key := partitionKey(&it.ev)
		for _, sb := range subs {
			if sb.c.broken || !typeMatches(sb.c.types, it.ev.Type) || (len(sb.c.list) > 0 && !sb.c.list.Match(fe)) {
				continue
			}
			state := statePending
			if key != "" {
				state = stateQueued
				if l := (lane{sb.id, key}); !slices.Contains(lanes, l) {
					lanes = append(lanes, l)
				}
			}
			p.Ords = append(p.Ords, int32(len(p.Ords))) //nolint:gosec // a batch is small
			p.TenantIds = append(p.TenantIds, it.tenant)
			p.SubscriptionIds = append(p.SubscriptionIds, sb.id)
			p.WebhookIds = append(p.WebhookIds, WebhookID(sb.id, it.msgID))
			p.EventSources = append(p.EventSources, it.ev.Source)
			p.EventIds = append(p.EventIds, it.ev.ID)
			p.EventTypes = append(p.EventTypes, it.ev.Type)
			p.PartitionKeys = append(p.PartitionKeys, key)
			p.States = append(p.States, state)
		}
	}
	if len(p.Ords) == 0 {
		return nil
	}
	// Lanes are locked in one order everywhere, so two transactions never
	// wait on each other's lanes in a cycle.
	slices.SortFunc(lanes, func(a, b lane) int {
		return cmp.Or(strings.Compare(a.sub.String(), b.sub.String()), strings.Compare(a.key, b.key))
	})
	for _, l := range lanes {
		if err := q.LockLane(ctx, subscriptionsdb.LockLaneParams{SubscriptionID: l.sub.String(), PartitionKey: l.key}); err != nil {
			return fmt.Errorf("subscriptions: lock lane: %w", err)
		}
	}
	inserted, err := q.InsertDeliveries(ctx, p)
	if err != nil {
		return fmt.Errorf("subscriptions: record deliveries: %w", err)
	}
	for _, d := range inserted {
		if d.State == statePending {
			if err := s.enqueue(ctx, tx, d.ID, d.TenantID, maxAttempts[d.SubscriptionID]); err != nil {
				return err
			}
		}
	}
	for _, l := range lanes {
		if err := s.promote(ctx, tx, l.sub, l.key, maxAttempts[l.sub]); err != nil {
			return err
		}
	}
	s.cfg.Wake()
	return nil
}

func partitionKey(ev *cloudevent.Event) string {
	if v, ok := ev.Extension("partitionkey"); ok {
		return fmt.Sprint(v)
	}
	return ""
}

// enqueue inserts the job that sends a pending delivery.
func (s *Service) enqueue(ctx context.Context, tx pgx.Tx, id int64, tenant uuid.UUID, maxAttempts int) error {
	args, _ := json.Marshal(deliverArgs{DeliveryID: id})
	j, _, err := jobs.Insert(ctx, tx, jobs.InsertParams{TenantID: &tenant, Kind: KindDeliver, Args: args, MaxAttempts: maxAttempts,
		UniqueKey: "delivery:" + strconv.FormatInt(id, 10)})
	if err != nil {
		return fmt.Errorf("subscriptions: enqueue delivery %d: %w", id, err)
	}
	return subscriptionsdb.New(tx).SetDeliveryJob(ctx, subscriptionsdb.SetDeliveryJobParams{ID: id, JobID: &j.ID})
}

// promote makes the next queued delivery of a lane pending when none is,
// and enqueues it. The caller holds the lane's lock.
func (s *Service) promote(ctx context.Context, tx pgx.Tx, sub uuid.UUID, key string, maxAttempts int) error {
	r, err := subscriptionsdb.New(tx).PromoteLane(ctx, subscriptionsdb.PromoteLaneParams{SubscriptionID: sub, PartitionKey: &key})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("subscriptions: promote lane: %w", err)
	}
	return s.enqueue(ctx, tx, r.ID, r.TenantID, maxAttempts)
}

// sendResult is what one HTTP attempt got.
type sendResult struct {
	status     int           // 0 when no answer
	err        error         // nil on 2xx
	retryAfter time.Duration // the receiver's Retry-After, 0 when none
	took       time.Duration
}

// send POSTs a signed structured CloudEvent.
func (s *Service) send(ctx context.Context, sink, secret, webhookID string, body []byte) sendResult {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, sink, bytes.NewReader(body))
	if err != nil {
		return sendResult{err: fmt.Errorf("POST %s: %w", sink, err)}
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", UserAgent)
	if err := webhook.SetHeaders(req.Header, secret, webhookID, time.Now(), body); err != nil {
		return sendResult{err: err}
	}
	// What the tenant sees of a failure is a fixed reason or the status
	// code, never the target's answer or a network error's text (which can
	// quote what the target sent); the logs keep the error.
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		s.cfg.Logger.Debug("subscriptions: delivery attempt failed", "webhook_id", webhookID, "error", err)
		return sendResult{err: errors.New(netguard.Reason(err)), took: time.Since(start)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	res := sendResult{status: resp.StatusCode, took: time.Since(start), retryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.err = errors.New(netguard.StatusReason(resp.StatusCode))
	}
	return res
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// Deliver is the jobs.Handler of KindDeliver: one attempt at one delivery.
// A 2xx answer delivers it and starts the next delivery of its lane; 410
// Gone disables the subscription; any other outcome fails the attempt,
// which is retried after the subscription's schedule (or the receiver's
// Retry-After when that is later) until the attempts run out: then the
// delivery is failed, its lane moves on, and the job engine discards the
// job (see DeadLetter). A subscription failing for longer than the disable
// window is disabled. Each attempt is recorded with its outcome.
func (s *Service) Deliver(ctx context.Context, j *jobs.Job) error {
	var a deliverArgs
	if err := json.Unmarshal(j.Args, &a); err != nil || a.DeliveryID == 0 {
		return jobs.Cancel(fmt.Errorf("subscriptions: unreadable job args: %v", err))
	}
	d, err := subscriptionsdb.New(s.pool).GetDelivery(ctx, a.DeliveryID)
	if errors.Is(err, pgx.ErrNoRows) {
		return jobs.Cancel(errors.New("subscriptions: the subscription was deleted"))
	}
	if err != nil {
		return err
	}
	switch d.State {
	case stateDelivered, stateCancelled, stateQueued:
		return nil // delivered already, cancelled by a disable, or not its turn (a stale job)
	}
	var cfg SubscriptionConfig
	_ = json.Unmarshal(d.Config, &cfg)
	schedule := cfg.Schedule(s.cfg.RetrySchedule)
	maxAttempts := len(schedule) + 1
	log := s.cfg.Logger.With("subscription_id", d.SubscriptionID, "delivery_id", d.ID, "webhook_id", d.WebhookID, "attempt", j.Attempt)
	if d.SubscriptionStatus != StatusActive {
		return s.finish(ctx, j, d, stateCancelled, nil, "the subscription is disabled", maxAttempts)
	}
	if s.cfg.SecretsKey == nil {
		return errors.New("subscriptions: no PROST_SECRETS_KEY to open the signing secret")
	}
	secret, err := s.cfg.SecretsKey.Open(d.Secret, d.SubscriptionID[:])
	if err != nil {
		return fmt.Errorf("subscriptions: open the signing secret: %w", err)
	}
	env, err := subscriptionsdb.New(s.pool).GetEventEnvelope(ctx, subscriptionsdb.GetEventEnvelopeParams{TenantID: d.TenantID,
		Source: d.EventSource, ID: d.EventID})
	if errors.Is(err, pgx.ErrNoRows) {
		return s.finish(ctx, j, d, stateFailed, nil, "the event is not in the store", maxAttempts)
	}
	if err != nil {
		return err
	}
	body := []byte(env)
	if s.cfg.Reveal != nil {
		if body, err = s.cfg.Reveal.Reveal(ctx, d.TenantID, body); err != nil {
			return fmt.Errorf("subscriptions: reveal the event: %w", err)
		}
	}
	res := s.send(ctx, d.Sink, string(secret), d.WebhookID, body)
	attempt := subscriptionsdb.InsertAttemptParams{TenantID: d.TenantID, SubscriptionID: d.SubscriptionID, DeliveryID: &d.ID,
		WebhookID: d.WebhookID, EventType: d.EventType, Attempt: d.Attempts + 1, DurationMs: float64(res.took.Microseconds()) / 1000}
	var status *int32
	if res.status != 0 {
		st := int32(res.status) //nolint:gosec // an HTTP status
		status = &st
		attempt.ResponseCode = status
	}
	if res.err == nil {
		attempt.Status = "succeeded"
		log.Debug("subscriptions: delivered", "status", res.status)
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			q := subscriptionsdb.New(tx)
			if err := q.InsertAttempt(ctx, attempt); err != nil {
				return err
			}
			if err := q.ClearFailing(ctx, d.SubscriptionID); err != nil {
				return err
			}
			if err := s.finishTx(ctx, tx, d, stateDelivered, status, "", maxAttempts); err != nil {
				return err
			}
			return jobs.CompleteTx(ctx, tx, j)
		})
		if err == nil {
			s.cfg.Wake()
		}
		return err
	}
	msg := res.err.Error()
	attempt.Status, attempt.Error = "failed", &msg
	if res.status == http.StatusGone {
		log.Warn("subscriptions: the receiver answered 410 Gone; disabling the subscription")
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			q := subscriptionsdb.New(tx)
			if err := q.InsertAttempt(ctx, attempt); err != nil {
				return err
			}
			if err := s.finishTx(ctx, tx, d, stateFailed, status, msg, maxAttempts); err != nil {
				return err
			}
			if err := s.disableTx(ctx, tx, d.SubscriptionID, "the receiver at "+d.Sink+" answered 410 Gone"); err != nil {
				return err
			}
			return jobs.CompleteTx(ctx, tx, j)
		})
	}
	last := j.Attempt >= j.MaxAttempts
	disabled := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := subscriptionsdb.New(tx)
		disabled = false
		if err := q.InsertAttempt(ctx, attempt); err != nil {
			return err
		}
		f, err := q.MarkFailing(ctx, d.SubscriptionID)
		if err != nil {
			return err
		}
		if f.Now.Sub(f.FailingSince) >= s.cfg.DisableAfter {
			disabled = true
			if err := s.finishTx(ctx, tx, d, stateFailed, status, msg, maxAttempts); err != nil {
				return err
			}
			if err := s.disableTx(ctx, tx, d.SubscriptionID, fmt.Sprintf("every attempt failed for %s (since %s); the last: %s",
				f.Now.Sub(f.FailingSince).Round(time.Second), f.FailingSince.UTC().Format(time.RFC3339), msg)); err != nil {
				return err
			}
			return jobs.CompleteTx(ctx, tx, j)
		}
		if last {
			return s.finishTx(ctx, tx, d, stateFailed, status, msg, maxAttempts)
		}
		return q.FailDeliveryAttempt(ctx, subscriptionsdb.FailDeliveryAttemptParams{ID: d.ID, LastStatus: status, LastError: &msg})
	})
	switch {
	case err != nil:
		return err
	case disabled:
		log.Warn("subscriptions: failing for longer than the disable window; subscription disabled", "error", msg)
		return nil
	case last:
		s.cfg.Wake()
		log.Warn("subscriptions: delivery failed on its last attempt", "error", msg)
		return res.err // the job engine discards the job: DeadLetter stores it
	}
	delay := schedule[min(j.Attempt-1, len(schedule)-1)]
	if res.retryAfter > delay {
		delay = res.retryAfter
	}
	log.Info("subscriptions: delivery failed; retrying", "retry_in", delay, "error", msg)
	return jobs.RetryIn(res.err, delay)
}

// finish ends a delivery without an attempt (cancelled, or unsendable) in
// one transaction with the job's completion.
func (s *Service) finish(ctx context.Context, j *jobs.Job, d subscriptionsdb.GetDeliveryRow, state string, status *int32,
	msg string, maxAttempts int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.finishTxAttempted(ctx, tx, d, state, status, msg, maxAttempts, false); err != nil {
			return err
		}
		return jobs.CompleteTx(ctx, tx, j)
	})
	if err == nil {
		s.cfg.Wake()
	}
	return err
}

// finishTx records a delivery's final state and moves its lane on.
func (s *Service) finishTx(ctx context.Context, tx pgx.Tx, d subscriptionsdb.GetDeliveryRow, state string, status *int32,
	msg string, maxAttempts int) error {
	return s.finishTxAttempted(ctx, tx, d, state, status, msg, maxAttempts, true)
}

// finishTxAttempted is finishTx; attempted says whether an attempt was made.
func (s *Service) finishTxAttempted(ctx context.Context, tx pgx.Tx, d subscriptionsdb.GetDeliveryRow, state string, status *int32,
	msg string, maxAttempts int, attempted bool) error {
	q := subscriptionsdb.New(tx)
	if d.PartitionKey != nil {
		if err := q.LockLane(ctx, subscriptionsdb.LockLaneParams{SubscriptionID: d.SubscriptionID.String(), PartitionKey: *d.PartitionKey}); err != nil {
			return err
		}
	}
	p := subscriptionsdb.FinishDeliveryParams{ID: d.ID, State: state, LastStatus: status, Attempted: 1}
	if msg != "" {
		p.LastError = &msg
	}
	if !attempted {
		p.Attempted = 0
	}
	if err := q.FinishDelivery(ctx, p); err != nil {
		return err
	}
	if d.PartitionKey == nil {
		return nil
	}
	return s.promote(ctx, tx, d.SubscriptionID, *d.PartitionKey, maxAttempts)
}

// disableTx disables a subscription, cancels what it was about to deliver
// and emits DisabledType into the tenant's stream, in tx.
func (s *Service) disableTx(ctx context.Context, tx pgx.Tx, id uuid.UUID, reason string) error {
	q := subscriptionsdb.New(tx)
	row, err := q.DisableSubscription(ctx, subscriptionsdb.DisableSubscriptionParams{ID: id, Reason: &reason})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // disabled already
	}
	if err != nil {
		return err
	}
	if _, err := q.CancelOpenDeliveries(ctx, id); err != nil {
		return err
	}
	evID, _ := uuid.NewV7()
	data, _ := json.Marshal(map[string]any{"subscription_id": id, "sink": row.Sink, "reason": reason,
		"failing_since": row.FailingSince, "disabled_at": row.DisabledAt})
	ev := cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: evID.String(), Source: EventSource + id.String(),
		Type: DisabledType, Subject: id.String(), Time: time.Now().UTC(), DataContentType: "application/json", Data: data,
		DataSchema: "urn:prost:schema:" + DisabledType + ":1"}
	ev.SetExtension("tenantid", row.TenantID.String())
	if _, err := eventstore.AppendTx(ctx, tx, []eventstore.NewEvent{{TenantID: row.TenantID, Source: ev.Source, ID: ev.ID,
		Type: ev.Type, Subject: ev.Subject, Time: ev.Time, Envelope: ev.AppendJSON(nil),
		OutboxSubject: subjects.Event(row.TenantID, subjects.Partition(id.String(), s.cfg.Partitions), ev.Type)}}); err != nil {
		return fmt.Errorf("subscriptions: emit %s: %w", DisabledType, err)
	}
	s.cfg.Logger.Warn("subscriptions: subscription disabled", "tenant", row.TenantID, "subscription_id", id, "reason", reason)
	return eventstore.NotifyTx(ctx, tx)
}

// DeadLetter stores a discarded delivery job (its attempts ran out) in the
// dead-letter queue as consumer DLQConsumer; replaying the entry retries
// the job, which sends the delivery once more.
func (s *Service) DeadLetter(ctx context.Context, j *jobs.Job) error {
	var a deliverArgs
	_ = json.Unmarshal(j.Args, &a)
	d, err := subscriptionsdb.New(s.pool).GetDelivery(ctx, a.DeliveryID)
	if err != nil {
		return fmt.Errorf("subscriptions: dead-letter job %d: %w", j.ID, err)
	}
	first := j.CreatedAt
	if len(j.Errors) > 0 {
		first = j.Errors[0].At
	}
	last := time.Now()
	if j.FinishedAt != nil {
		last = *j.FinishedAt
	}
	_, err = dlq.DeadLetterJob(ctx, s.pool, dlq.JobFailure{Consumer: DLQConsumer, JobID: j.ID, Kind: j.Kind, TenantID: j.TenantID,
		MsgID: d.WebhookID, EventID: d.EventID, EventSource: d.EventSource, EventType: d.EventType, Attempts: j.Attempt,
		LastError: j.LastError, FirstFailure: first, LastFailure: last, Payload: j.Args})
	return err
}

// Recover re-sends the HTTP subscription's deliveries that failed or were
// cancelled since since, each in its lane after what is in flight, and
// returns how many it re-sent (at most 10,000 per call).
func (s *Service) Recover(ctx context.Context, tenant, id uuid.UUID, since time.Time) (int, error) {
	sub, err := s.Get(ctx, tenant, id)
	if err != nil {
		return 0, err
	}
	if sub.Protocol != ProtocolHTTP {
		return 0, ErrNotHTTP
	}
	if sub.Status != StatusActive {
		return 0, ErrDisabled
	}
	maxAttempts := len(sub.Config.Schedule(s.cfg.RetrySchedule)) + 1
	n := 0
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := subscriptionsdb.New(tx)
		rows, err := q.RequeueUndelivered(ctx, subscriptionsdb.RequeueUndeliveredParams{SubscriptionID: id, Since: since, MaxRows: maxRecover})
		if err != nil {
			return err
		}
		n = len(rows)
		var keys []string
		for _, r := range rows {
			if r.PartitionKey == nil {
				if err := s.enqueue(ctx, tx, r.ID, r.TenantID, maxAttempts); err != nil {
					return err
				}
			} else if !slices.Contains(keys, *r.PartitionKey) {
				keys = append(keys, *r.PartitionKey)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := q.LockLane(ctx, subscriptionsdb.LockLaneParams{SubscriptionID: id.String(), PartitionKey: k}); err != nil {
				return err
			}
			if err := s.promote(ctx, tx, id, k, maxAttempts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("subscriptions: recover: %w", err)
	}
	s.cfg.Wake()
	s.cfg.Logger.Info("subscriptions: recover", "tenant", tenant, "subscription_id", id, "since", since, "deliveries", n)
	return n, nil
}

// Attempt is one recorded HTTP attempt.
type Attempt struct {
	ID         int64  `json:"id"`
	DeliveryID *int64 `json:"delivery_id,omitempty"`
	WebhookID  string `json:"webhook_id"`
	EventType  string `json:"event_type"`
	// EventSource and EventID identify the event (absent for a test ping).
	EventSource string `json:"event_source,omitempty"`
	EventID     string `json:"event_id,omitempty"`
	// Attempt counts the attempts at the delivery, from 1.
	Attempt int `json:"attempt"`
	// Status is succeeded or failed.
	Status       string    `json:"status"`
	ResponseCode *int      `json:"response_code,omitempty"`
	DurationMs   float64   `json:"duration_ms"`
	Error        string    `json:"error,omitempty"`
	At           time.Time `json:"at"`
}

// Attempts returns a page of the HTTP subscription's attempts, oldest
// first, and the next page's cursor ("" on the last).
func (s *Service) Attempts(ctx context.Context, tenant, id uuid.UUID, cur string, limit int) ([]Attempt, string, error) {
	sub, err := s.Get(ctx, tenant, id)
	if err != nil {
		return nil, "", err
	}
	if sub.Protocol != ProtocolHTTP {
		return nil, "", ErrNotHTTP
	}
	after, err := cursor.ParseInt("att", cur)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = 100
	}
	rows, err := subscriptionsdb.New(s.pool).ListAttempts(ctx, subscriptionsdb.ListAttemptsParams{TenantID: tenant, SubscriptionID: id,
		After: after, MaxRows: int32(limit + 1)}) //nolint:gosec // limit <= 1000
	if err != nil {
		return nil, "", fmt.Errorf("subscriptions: attempts: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.Int("att", rows[len(rows)-1].ID)
	}
	out := make([]Attempt, len(rows))
	for i, r := range rows {
		a := Attempt{ID: r.ID, DeliveryID: r.DeliveryID, WebhookID: r.WebhookID, EventType: r.EventType, Attempt: int(r.Attempt),
			Status: r.Status, DurationMs: r.DurationMs, At: r.At}
		if r.ResponseCode != nil {
			c := int(*r.ResponseCode)
			a.ResponseCode = &c
		}
		if r.Error != nil {
			a.Error = *r.Error
		}
		if r.EventSource != nil {
			a.EventSource, a.EventID = *r.EventSource, *r.EventID
		}
		out[i] = a
	}
	return out, next, nil
}

// Test sends a signed ping (an event of type PingType) to the HTTP
// subscription's sink now, records the attempt and returns it. A receiver's
// failure is the attempt's outcome, not an error.
func (s *Service) Test(ctx context.Context, tenant, id uuid.UUID) (Attempt, error) {
	row, err := subscriptionsdb.New(s.pool).GetSubscription(ctx, subscriptionsdb.GetSubscriptionParams{TenantID: tenant, ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Attempt{}, ErrNotFound
	}
	if err != nil {
		return Attempt{}, err
	}
	if row.Protocol != ProtocolHTTP {
		return Attempt{}, ErrNotHTTP
	}
	if s.cfg.SecretsKey == nil {
		return Attempt{}, ErrNoSecretsKey
	}
	secret, err := s.cfg.SecretsKey.Open(row.Secret, id[:])
	if err != nil {
		return Attempt{}, problem.Errorf(problem.Internal, "subscriptions: open the signing secret: %w", err)
	}
	evID, _ := uuid.NewV7()
	data, _ := json.Marshal(map[string]any{"subscription_id": id, "message": "a test ping from PROST"})
	ev := cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: evID.String(), Source: EventSource + id.String(),
		Type: PingType, Subject: id.String(), Time: time.Now().UTC(), DataContentType: "application/json", Data: data}
	ev.SetExtension("tenantid", tenant.String())
	webhookID := "msg_ping_" + strings.ReplaceAll(evID.String(), "-", "")
	res := s.send(ctx, row.Sink, string(secret), webhookID, ev.AppendJSON(nil))
	p := subscriptionsdb.InsertAttemptParams{TenantID: tenant, SubscriptionID: id, WebhookID: webhookID, EventType: PingType,
		Attempt: 1, Status: "succeeded", DurationMs: float64(res.took.Microseconds()) / 1000}
	out := Attempt{WebhookID: webhookID, EventType: PingType, Attempt: 1, Status: "succeeded", DurationMs: p.DurationMs, At: time.Now().UTC()}
	if res.status != 0 {
		st := int32(res.status) //nolint:gosec // an HTTP status
		p.ResponseCode = &st
		out.ResponseCode = &res.status
	}
	if res.err != nil {
		msg := res.err.Error()
		p.Status, p.Error = "failed", &msg
		out.Status, out.Error = "failed", msg
	}
	if err := subscriptionsdb.New(s.pool).InsertAttempt(ctx, p); err != nil {
		return Attempt{}, fmt.Errorf("subscriptions: record the test: %w", err)
	}
	return out, nil
}

// sub is an active HTTP subscription, compiled.
type sub struct {
	id uuid.UUID
	c  *compiled
}

// filterEvent is what a subscription's filters see of ev: its classified
// values revealed for its own tenant when a subscription of the tenant
// filters (so a filter on a personal value matches its plain value), else
// the event as stored.
func (s *Service) filterEvent(ctx context.Context, tenant uuid.UUID, ev *cloudevent.Event, subs []sub) *filter.Event {
	fe := filter.NewEvent(ev)
	if s.cfg.Reveal == nil {
		return fe
	}
	filters := false
	for _, sb := range subs {
		filters = filters || len(sb.c.list) > 0
	}
	if !filters {
		return fe
	}
	doc, err := s.cfg.Reveal.Reveal(ctx, tenant, ev.AppendJSON(nil))
	if err != nil {
		return fe
	}
	plain, err := cloudevent.ParseStructured(doc)
	if err != nil {
		return fe
	}
	return filter.NewEvent(&plain)
}
