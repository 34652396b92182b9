package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/registry"
)

// Encryption is the cost per event of protecting personal data
// (measureEncryption): the ingest check of an event whose contract
// classifies two fields, with and without that contract, and revealing the
// stored data for its tenant.
type Encryption struct {
	// CheckMicros is the ingest check with the classified contract
	// (subject lookup, two values encrypted).
	CheckMicros float64 `json:"check_us_per_event"`
	// PlainCheckMicros is the same check for a type without a contract.
	PlainCheckMicros float64 `json:"plain_check_us_per_event"`
	// EncryptMicros is the difference: what encryption adds per event.
	EncryptMicros float64 `json:"encrypt_us_per_event"`
	// RevealMicros is decrypting one event's data for a read.
	RevealMicros float64 `json:"reveal_us_per_event"`
}

// measureEncryption measures what encrypting an event's classified values
// costs at ingest, in this process on PROST's database, the way the gateway
// does it (pkg/domain/registry.Ingest with a keyring): the benchmark's
// payload under a contract whose data subject is /customer_id, with
// /customer_id and /items personal, over the payload's 997 customers (their
// keys cached after first use, as in a running gateway), for a tenth of a
// step (at least one second) each.
func measureEncryption(ctx context.Context, cfg Config, log *slog.Logger, p *prostProc) (*Encryption, string) {
	fail := func(err error) (*Encryption, string) {
		log.Warn("encryption cost not measured", "error", err)
		return nil, "not measured: " + err.Error()
	}
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	if err != nil {
		return fail(err)
	}
	// Keys stay cached for the whole measurement (a gateway's hot subjects
	// are re-read once per PROST_PRIVACY_KEY_CACHE_TTL, a database read and
	// an unwrap of about 6 us, far below the per-event cost).
	kr, err := dataprotect.New(p.pool, dataprotect.Config{KEK: kek, CacheTTL: time.Hour})
	if err != nil {
		return fail(err)
	}
	reg, err := registry.New(p.pool, registry.Config{UnregisteredTypes: "accept"})
	if err != nil {
		return fail(err)
	}
	cs := contracts.NewStore(p.pool, contracts.StoreConfig{TTL: time.Hour})
	tenant := uuid.New()
	_, _, err = cs.Put(ctx, tenant, &contracts.Contract{Type: eventType, Owner: "bench", Description: "an order was placed",
		Level: contracts.LevelStandard, Schema: "urn:prost:schema:" + eventType + ":1", Compatibility: "BACKWARD",
		Idempotency: &contracts.Idempotency{Key: []string{"source", "id"}}, Retry: &contracts.Retry{MaxAttempts: 3},
		DataSubject: "/customer_id", Purpose: "fulfil orders", Retention: "1y",
		Classification: contracts.Classification{"/customer_id": {Class: contracts.ClassPersonal}, "/items": {Class: contracts.ClassPersonal}}})
	if err != nil {
		return fail(err)
	}
	in := registry.NewIngest(reg, cs, kr)
	const n = 997
	events := make([]cloudevent.Event, n)
	for i := range events {
		if events[i], err = cloudevent.ParseStructured(appendEvent(nil, fmt.Sprintf("enc-%d", i), int64(i), "")); err != nil {
			return fail(err)
		}
	}
	window := max(cfg.Duration/10, time.Second)
	stored := make([][]byte, n)
	measure := func(typ string, keep bool) (float64, error) {
		evs := make([]cloudevent.Event, 1)
		count := 0
		start := time.Now()
		for time.Since(start) < window && ctx.Err() == nil {
			for i := range events {
				evs[0] = events[i]
				evs[0].Type = typ
				if _, err := in.CheckEvents(ctx, tenant, evs, false); err != nil {
					return 0, err
				}
				if keep {
					stored[i] = evs[0].Data
				}
			}
			count += n
		}
		return float64(time.Since(start).Nanoseconds()) / 1e3 / float64(count), nil
	}
	// Warm up: every customer's key made and cached, as in a running gateway.
	if _, err := measure(eventType, true); err != nil {
		return fail(err)
	}
	res := &Encryption{}
	if res.CheckMicros, err = measure(eventType, true); err != nil {
		return fail(err)
	}
	if res.PlainCheckMicros, err = measure("order.unclassified", false); err != nil {
		return fail(err)
	}
	res.EncryptMicros = res.CheckMicros - res.PlainCheckMicros
	// Warm up the read side too: every key opened and cached.
	for _, d := range stored {
		if _, err := kr.Reveal(ctx, tenant, d); err != nil {
			return fail(err)
		}
	}
	count := 0
	start := time.Now()
	for time.Since(start) < window && ctx.Err() == nil {
		for _, d := range stored {
			if _, err := kr.Reveal(ctx, tenant, d); err != nil {
				return fail(err)
			}
		}
		count += n
	}
	res.RevealMicros = float64(time.Since(start).Nanoseconds()) / 1e3 / float64(count)
	log.Info("prost: encryption cost", "check_us", res.CheckMicros, "plain_check_us", res.PlainCheckMicros,
		"encrypt_us", res.EncryptMicros, "reveal_us", res.RevealMicros)
	return res, ""
}
