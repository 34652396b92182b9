// Package privacy is the personal-data domain: the right to erasure (an
// erasure destroys every data key of a data subject), the retention job
// (destroying keys whose retention ended), and the right of access and
// portability (an export of a data subject's events, decrypted). The
// encryption itself is pkg/dataprotect's; the classification is the
// contracts'. See docs/privacy.md.
//
// Every destruction is recorded as an event of type ErasedType in the
// tenant's stream, in the same transaction: consumers learn which keys are
// gone, and the governance consumer appends it to the tenant's audit chain.
// The event names the destroyed keys, never the data subject.
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/problem"
	"github.com/prost-platform/prost/pkg/subjects"
)

const (
	// ErasedType is the CloudEvents type recorded for every destruction of
	// data keys, by an erasure or by retention.
	ErasedType = "prost.privacy.erased"
	// Source is the source of ErasedType events.
	Source = "/prost/privacy"
	// KindRetention is the job kind of the retention job.
	KindRetention = "privacy.retention"
	// MaxSubjectIDLen bounds a data subject's id.
	MaxSubjectIDLen = 1024
	// ActionErase and ActionRetention are the action extension (and audit
	// action) of ErasedType events.
	ActionErase     = "erase"
	ActionRetention = "shred:retention"
	// keysPerEvent bounds the keys one ErasedType event lists.
	keysPerEvent = 500
)

// Defaults of Config.
const (
	DefaultRetentionInterval = time.Minute
	DefaultBatchSize         = 1000
)

// Config tunes a Service. The zero value is usable.
type Config struct {
	// Partitions is the gateway's PROST_PARTITIONS, for the subjects of
	// ErasedType events. Defaults to DefaultPartitions.
	Partitions int
	// RetentionInterval is how often the retention job runs. Defaults to
	// DefaultRetentionInterval.
	RetentionInterval time.Duration
	// BatchSize is how many keys the retention job destroys per
	// transaction. Defaults to DefaultBatchSize.
	BatchSize int
	// Now tells the time (tests move it). Defaults to time.Now.
	Now func() time.Time
	// Logger receives the service's logs. Defaults to discarding.
	Logger *slog.Logger
}

// ContractReader gives a tenant's contract of an event type
// (*contracts.Store).
type ContractReader interface {
	Get(ctx context.Context, tenant uuid.UUID, typ string) (contracts.Stored, error)
}

// Service erases, exports and applies retention. It is safe for concurrent
// use.
type Service struct {
	pool      *pgxpool.Pool
	kr        *dataprotect.Keyring
	contracts ContractReader
	cfg       Config
}

// New returns the service. kr may be nil (no KEK configured): erasures and
// exports then fail with dataprotect.ErrNoKEK.
func New(pool *pgxpool.Pool, kr *dataprotect.Keyring, cs ContractReader, cfg Config) *Service {
	if cfg.Partitions <= 0 {
		cfg.Partitions = subjects.DefaultPartitions
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = DefaultRetentionInterval
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, kr: kr, contracts: cs, cfg: cfg}
}

// Erasure is the receipt of an erasure: which keys were destroyed. The data
// subject is not named.
type Erasure struct {
	ErasureID     uuid.UUID                  `json:"erasure_id"`
	Reason        string                     `json:"reason"`
	KeysDestroyed int                        `json:"keys_destroyed"`
	Keys          []dataprotect.DestroyedKey `json:"keys"`
	ErasedAt      time.Time                  `json:"erased_at"`
}

// ErrSubjectID is an unusable data subject id.
var ErrSubjectID = problem.BadPathParam("id", fmt.Sprintf("a data subject's id is 1 to %d bytes", MaxSubjectIDLen))

func checkSubject(id string) error {
	if strings.TrimSpace(id) == "" || len(id) > MaxSubjectIDLen {
		return ErrSubjectID
	}
	return nil
}

// Erase destroys every data key of a data subject of the tenant: every value
// encrypted for them reads {"erased":true} from then on, in every event,
// decision and copy inside PROST, while the events and the audit chain stay
// as they are. In the same transaction an ErasedType event is recorded
// (actor and action "erase" as its actorid and action extensions, so the
// audit chain shows who erased). Erasing a subject with no keys (unknown,
// or erased before) destroys nothing and is still recorded.
func (s *Service) Erase(ctx context.Context, tenant uuid.UUID, subjectID, actor string) (Erasure, error) {
	if err := checkSubject(subjectID); err != nil {
		return Erasure{}, err
	}
	if s.kr == nil {
		return Erasure{}, dataprotect.ErrNoKEK
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Erasure{}, err
	}
	out := Erasure{ErasureID: id, Reason: dataprotect.ReasonErasure, ErasedAt: s.cfg.Now().UTC()}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		keys, err := s.kr.EraseSubjectTx(ctx, tx, tenant, subjectID, id)
		if err != nil {
			return err
		}
		out.Keys = keys
		return s.record(ctx, tx, tenant, id, dataprotect.ReasonErasure, ActionErase, actor, keys, out.ErasedAt)
	})
	if err != nil {
		return Erasure{}, err
	}
	s.kr.Forget(ctx, out.Keys)
	out.KeysDestroyed = len(out.Keys)
	if out.Keys == nil {
		out.Keys = []dataprotect.DestroyedKey{}
	}
	s.cfg.Logger.Info("privacy: data subject erased", "tenant", tenant, "erasure_id", id, "keys", out.KeysDestroyed, "actor", actor)
	return out, nil
}

// erasedData is the data of an ErasedType event.
type erasedData struct {
	ErasureID uuid.UUID                  `json:"erasure_id"`
	Reason    string                     `json:"reason"`
	KeyCount  int                        `json:"key_count"`
	Keys      []dataprotect.DestroyedKey `json:"keys"`
	Part      int                        `json:"part"`
	Parts     int                        `json:"parts"`
}

// record appends the ErasedType event(s) of one destruction (one per
// keysPerEvent keys; at least one) in tx.
func (s *Service) record(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, reason, action, actor string, keys []dataprotect.DestroyedKey, at time.Time) error {
	parts := max(1, (len(keys)+keysPerEvent-1)/keysPerEvent)
	news := make([]eventstore.NewEvent, 0, parts)
	for p := range parts {
		chunk := keys[min(p*keysPerEvent, len(keys)):min((p+1)*keysPerEvent, len(keys))]
		if chunk == nil {
			chunk = []dataprotect.DestroyedKey{}
		}
		data, err := json.Marshal(erasedData{ErasureID: id, Reason: reason, KeyCount: len(keys), Keys: chunk, Part: p + 1, Parts: parts})
		if err != nil {
			return err
		}
		evID := id.String()
		if parts > 1 {
			evID = fmt.Sprintf("%s#%d", id, p+1)
		}
		ev := cloudevent.Event{SpecVersion: cloudevent.SpecVersion, ID: evID, Source: Source, Type: ErasedType, Time: at,
			DataContentType: "application/json", Data: data}
		ev.SetExtension("tenantid", tenant.String())
		ev.SetExtension("actorid", actor)
		ev.SetExtension("action", action)
		news = append(news, eventstore.NewEvent{TenantID: tenant, Source: ev.Source, ID: ev.ID, Type: ev.Type, Time: ev.Time,
			Envelope:      ev.AppendJSON(nil),
			OutboxSubject: subjects.Event(tenant, subjects.Partition(ev.Source+"\x00"+ev.ID, s.cfg.Partitions), ev.Type)})
	}
	if _, err := eventstore.AppendTx(ctx, tx, news); err != nil {
		return fmt.Errorf("privacy: record the erasure: %w", err)
	}
	return eventstore.NotifyTx(ctx, tx)
}

// Shredded is one line of a retention run's report: how many keys of a
// tenant's purpose and retention were destroyed.
type Shredded struct {
	TenantID  uuid.UUID `json:"tenant_id"`
	ErasureID uuid.UUID `json:"erasure_id"`
	Purpose   string    `json:"purpose"`
	Retention string    `json:"retention"`
	Keys      int       `json:"keys"`
}

// Report is what one retention run did.
type Report struct {
	// Shredded lists the destroyed keys by tenant, purpose and retention.
	Shredded []Shredded `json:"shredded"`
	// Keys is how many keys were destroyed in all.
	Keys int `json:"keys"`
	// Restored is how many destroyed keys that had come back (a restored
	// backup) were deleted again.
	Restored int `json:"restored"`
	// Rewrapped is how many keys were re-wrapped under the current KEK
	// version.
	Rewrapped int `json:"rewrapped"`
}

// ApplyRetention destroys every data key whose retention has ended, in
// batches of Config.BatchSize, recording an ErasedType event (reason
// retention) per tenant and batch and logging one line per tenant, purpose
// and retention; then deletes keys that came back from a restored backup,
// and re-wraps keys still wrapped under an older KEK version.
func (s *Service) ApplyRetention(ctx context.Context) (Report, error) {
	var rep Report
	if s.kr == nil {
		return rep, nil
	}
	for {
		now := s.cfg.Now().UTC()
		var got []dataprotect.DestroyedKey
		ids := map[uuid.UUID]uuid.UUID{}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			got, err = s.kr.ShredExpiredTx(ctx, tx, now, s.cfg.BatchSize, func(tenant uuid.UUID) uuid.UUID {
				if id, ok := ids[tenant]; ok {
					return id
				}
				id, _ := uuid.NewV7()
				ids[tenant] = id
				return id
			})
			if err != nil {
				return err
			}
			byTenant := map[uuid.UUID][]dataprotect.DestroyedKey{}
			var tenants []uuid.UUID
			for _, k := range got {
				if _, ok := byTenant[k.TenantID]; !ok {
					tenants = append(tenants, k.TenantID)
				}
				byTenant[k.TenantID] = append(byTenant[k.TenantID], k)
			}
			for _, t := range tenants {
				if err := s.record(ctx, tx, t, ids[t], dataprotect.ReasonRetention, ActionRetention, "prost/retention", byTenant[t], now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("privacy: retention: %w", err)
		}
		s.kr.Forget(ctx, got)
		rep.Keys += len(got)
		lines := summarise(got, ids)
		for _, l := range lines {
			s.cfg.Logger.Info("privacy: retention shredded data keys", "tenant", l.TenantID, "erasure_id", l.ErasureID,
				"purpose", l.Purpose, "retention", l.Retention, "keys", l.Keys)
		}
		rep.Shredded = append(rep.Shredded, lines...)
		if len(got) < s.cfg.BatchSize {
			break
		}
	}
	var restored []dataprotect.DestroyedKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		restored, err = s.kr.ReconcileTx(ctx, tx)
		return err
	})
	if err != nil {
		return rep, err
	}
	if rep.Restored = len(restored); rep.Restored > 0 {
		s.kr.Forget(ctx, restored)
		s.cfg.Logger.Warn("privacy: destroyed data keys were back (a restored backup?) and are deleted again", "keys", rep.Restored)
	}
	if rep.Rewrapped, err = s.kr.Rewrap(ctx, s.cfg.BatchSize); err != nil {
		return rep, err
	}
	if rep.Rewrapped > 0 {
		s.cfg.Logger.Info("privacy: data keys re-wrapped under the current KEK version", "keys", rep.Rewrapped)
	}
	return rep, nil
}

func summarise(keys []dataprotect.DestroyedKey, ids map[uuid.UUID]uuid.UUID) []Shredded {
	type k struct {
		t    uuid.UUID
		p, r string
	}
	count := map[k]int{}
	var order []k
	for _, d := range keys {
		key := k{d.TenantID, d.Purpose, d.Retention}
		if _, ok := count[key]; !ok {
			order = append(order, key)
		}
		count[key]++
	}
	out := make([]Shredded, 0, len(order))
	for _, key := range order {
		out = append(out, Shredded{TenantID: key.t, ErasureID: ids[key.t], Purpose: key.p, Retention: key.r, Keys: count[key]})
	}
	return out
}

// RunRetention is the jobs.Handler of KindRetention: it applies retention
// and puts itself back for Config.RetentionInterval. It never fails the
// job (a failed run is logged and tried again next interval), so the job
// runs for as long as the platform does.
func (s *Service) RunRetention(ctx context.Context, _ *jobs.Job) error {
	if _, err := s.ApplyRetention(ctx); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Error("privacy: retention run failed; trying again next interval", "error", err)
	}
	return jobs.Snooze(s.cfg.RetentionInterval)
}

// EnsureRetentionJob enqueues the retention job unless it is already queued
// (it is unique: one per platform, whichever process runs it).
func EnsureRetentionJob(ctx context.Context, db jobs.DB) error {
	_, _, err := jobs.Insert(ctx, db, jobs.InsertParams{Kind: KindRetention, UniqueKey: "retention"})
	return err
}

// ExportLine is one line of an export: an event holding the data subject's
// values, decrypted, with the tenant's contract of its type (null when
// there is none any more).
type ExportLine struct {
	Event    json.RawMessage     `json:"event"`
	Contract *contracts.Contract `json:"contract"`
}

// Export writes every event of the tenant that holds values of the data
// subject (encrypted under their live keys), decrypted, as NDJSON
// (ExportLine per line) in store order, and returns how many it wrote.
// After an erasure it writes nothing: the subject has no keys left.
func (s *Service) Export(ctx context.Context, tenant uuid.UUID, subjectID string, w io.Writer) (int, error) {
	if err := checkSubject(subjectID); err != nil {
		return 0, err
	}
	if s.kr == nil {
		return 0, dataprotect.ErrNoKEK
	}
	keys, err := s.kr.SubjectKeys(ctx, tenant, subjectID)
	if err != nil {
		return 0, err
	}
	ids := make([]uuid.UUID, len(keys))
	for i, k := range keys {
		ids[i] = k.KeyID
	}
	contractOf := map[string]*contracts.Contract{}
	n := 0
	var after int64
	for len(ids) > 0 {
		docs, last, err := eventstore.EventsByDataKeys(ctx, s.pool, tenant, ids, after, 200)
		if err != nil {
			return n, err
		}
		if len(docs) == 0 {
			break
		}
		after = last
		if err := s.kr.RevealAll(ctx, tenant, docs); err != nil {
			return n, err
		}
		for _, d := range docs {
			var head struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(d, &head)
			c, seen := contractOf[head.Type]
			if !seen {
				st, err := s.contracts.Get(ctx, tenant, head.Type)
				switch {
				case errors.Is(err, contracts.ErrNotFound):
				case err != nil:
					return n, err
				default:
					c = &st.Contract
				}
				contractOf[head.Type] = c
			}
			line, err := json.Marshal(ExportLine{Event: d, Contract: c})
			if err != nil {
				return n, err
			}
			if _, err := w.Write(append(line, '\n')); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Tombstones lists the tenant's destroyed keys: what erasures and retention
// shredded.
func (s *Service) Tombstones(ctx context.Context, tenant uuid.UUID, q dataprotect.TombstoneQuery) ([]dataprotect.Tombstone, string, error) {
	if s.kr == nil {
		return nil, "", dataprotect.ErrNoKEK
	}
	if q.Reason != "" && !slices.Contains([]string{dataprotect.ReasonErasure, dataprotect.ReasonRetention}, q.Reason) {
		return nil, "", problem.BadParam("reason", "erasure or retention")
	}
	return s.kr.Tombstones(ctx, tenant, q)
}
