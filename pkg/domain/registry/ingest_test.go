package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/contracts"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/problem"
)

func event(typ, data string) cloudevent.Event {
	e := cloudevent.Event{SpecVersion: "1.0", ID: uuid.NewString(), Source: "/test", Type: typ}
	if data != "" {
		e.Data = []byte(data)
	}
	return e
}

func ingestProblems(t *testing.T, err error) []registry.Problem {
	t.Helper()
	var ie *registry.IngestError
	require.True(t, errors.As(err, &ie), "want an IngestError, got %v", err)
	return ie.Problems
}

func TestIngestValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	ctx := context.Background()
	tenant := uuid.New()
	b.register(tenant, "order.placed", `{"type":"object","properties":{"total":{"type":"number","maximum":100},
		"items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[A-Z]+$"}},"required":["sku"]}}},
		"required":["total"]}`)

	check := func(batch bool, evs ...cloudevent.Event) ([]string, error) {
		return b.ingest.CheckEvents(ctx, tenant, evs, batch)
	}
	keys, err := check(false, event("order.placed", `{"total":12,"items":[{"sku":"AB"}]}`))
	require.NoError(t, err)
	require.Nil(t, keys)

	_, err = check(false, event("order.placed", `{"total":150,"items":[{"sku":"ab"},{}]}`))
	ps := ingestProblems(t, err)
	require.Len(t, ps, 3)
	got := map[string]string{}
	for _, p := range ps {
		require.Equal(t, -1, p.Index)
		require.Equal(t, "data", p.Field)
		require.Contains(t, p.Detail, "urn:prost:schema:order.placed:1")
		got[p.Pointer] = p.Keyword
	}
	require.Equal(t, map[string]string{"/total": "maximum", "/items/0/sku": "pattern", "/items/1": "required"}, got)

	// In a batch each problem names its entry.
	_, err = check(true, event("order.placed", `{"total":1}`), event("order.placed", `{}`), event("order.placed", `"x"`))
	ps = ingestProblems(t, err)
	require.Len(t, ps, 2)
	require.Equal(t, 1, ps[0].Index)
	require.Equal(t, "required", ps[0].Keyword)
	require.Equal(t, 2, ps[1].Index)
	require.Equal(t, "type", ps[1].Keyword)

	// No data is validated as null.
	_, err = check(false, event("order.placed", ""))
	require.Equal(t, "type", ingestProblems(t, err)[0].Keyword)
	// Binary data cannot match a JSON Schema.
	bin := event("order.placed", "")
	bin.DataBase64 = []byte{1, 2, 3}
	_, err = check(false, bin)
	require.Contains(t, ingestProblems(t, err)[0].Detail, "data must be JSON")
}

func TestIngestDataSchema(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	ctx := context.Background()
	tenant := uuid.New()
	b.register(tenant, "order.placed", `{"type":"object","properties":{"total":{"type":"number","maximum":100}}}`)
	b.register(tenant, "order.placed", `{"type":"object","properties":{"total":{"type":"number","maximum":200}}}`)
	withSchema := func(ds string) cloudevent.Event {
		e := event("order.placed", `{"total":150}`)
		e.DataSchema = ds
		return e
	}
	// The latest version (max 200) accepts 150; version 1 does not, named
	// either way.
	_, err := b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{event("order.placed", `{"total":150}`)}, false)
	require.NoError(t, err)
	for _, ds := range []string{
		"urn:prost:schema:order.placed:1",
		"https://prost.example.com/v1/registry/subjects/order.placed/versions/1",
		"http://127.0.0.1:8080/prefix/v1/registry/subjects/order%2Eplaced/versions/1",
	} {
		_, err = b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{withSchema(ds)}, false)
		p := ingestProblems(t, err)[0]
		require.Equal(t, "/total", p.Pointer, ds)
		require.Equal(t, "maximum", p.Keyword, ds)
	}
	_, err = b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{withSchema("urn:prost:schema:order.placed:2")}, false)
	require.NoError(t, err)

	for ds, want := range map[string]string{
		"urn:prost:schema:order.placed:9":         "not registered",
		"urn:prost:schema:order.placed:latest":    "positive integer",
		"https://schemas.example.com/order.json":  "does not name a version of this registry",
		"urn:prost:schema:prost.rule.decision:9":  "not registered",
		"urn:prost:schema:other.tenants.thing:1":  "not registered",
		"https://x.example/v1/registry/subjects/": "want .../v1/registry/subjects",
	} {
		_, err = b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{withSchema(ds)}, false)
		p := ingestProblems(t, err)[0]
		require.Equal(t, "dataschema", p.Field, ds)
		require.Contains(t, p.Detail, want, ds)
	}
	// A dataschema may name a platform schema.
	e := event("my.decision.copy", `{"decision_id":"x"}`)
	e.DataSchema = "urn:prost:schema:prost.rule.decision:1"
	_, err = b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{e}, false)
	require.Equal(t, "required", ingestProblems(t, err)[0].Keyword)
}

func TestIngestUnregisteredTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, registry.Config{}) // the default: reject
	tenant := uuid.New()
	_, err := b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{event("never.registered", `{}`)}, false)
	p := ingestProblems(t, err)[0]
	require.Equal(t, "type", p.Field)
	require.Contains(t, p.Detail, "POST /v1/registry/subjects/never.registered/versions")
	require.Contains(t, p.Detail, "prost schemas register --type never.registered")

	// The tenant may accept them.
	accept := registry.UnregisteredAccept
	_, err = b.reg.SetConfig(ctx, tenant, "", registry.SettingsPatch{UnregisteredTypes: &accept})
	require.NoError(t, err)
	_, err = b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{event("never.registered", `{}`)}, false)
	require.NoError(t, err)

	// A registry whose default is accept, and a tenant that rejects.
	b2 := setup(t, registry.Config{UnregisteredTypes: registry.UnregisteredAccept})
	other := uuid.New()
	_, err = b2.ingest.CheckEvents(ctx, other, []cloudevent.Event{event("never.registered", `{}`)}, false)
	require.NoError(t, err)
	reject := registry.UnregisteredReject
	_, err = b2.reg.SetConfig(ctx, other, "", registry.SettingsPatch{UnregisteredTypes: &reject})
	require.NoError(t, err)
	_, err = b2.ingest.CheckEvents(ctx, other, []cloudevent.Event{event("never.registered", `{}`)}, false)
	require.Error(t, err)

	// Registering the type makes its events validated at once.
	b2.register(other, "never.registered", `{"type":"object","required":["a"]}`)
	_, err = b2.ingest.CheckEvents(ctx, other, []cloudevent.Event{event("never.registered", `{}`)}, false)
	require.Equal(t, "required", ingestProblems(t, err)[0].Keyword)
}

func TestIngestContracts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, registry.Config{UnregisteredTypes: registry.UnregisteredAccept})
	tenant := uuid.New()
	_, _, err := b.contracts.Put(ctx, tenant, &contracts.Contract{
		Type: "payment.captured", Owner: "billing", Description: "a payment was captured", Level: contracts.LevelStandard,
		Schema: "urn:prost:schema:payment.captured:1", Compatibility: "BACKWARD", PartitionKey: "/customer/id", Ordered: true,
		Idempotency: &contracts.Idempotency{Key: []string{"source", "id"}}, Retry: &contracts.Retry{MaxAttempts: 5},
		Classification: contracts.Classification{"/last4": {Class: contracts.ClassPayment}}, DataSubject: "/customer/id",
	})
	require.NoError(t, err)

	// A card number anywhere in data is refused, naming where.
	_, err = b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{
		event("payment.captured", `{"customer":{"id":"c-1"},"note":"paid with 4111 1111 1111 1111"}`)}, false)
	p := ingestProblems(t, err)[0]
	require.Equal(t, "/note", p.Pointer)
	require.Equal(t, "contract", p.Keyword)
	require.Contains(t, p.Detail, "card number")

	// The contract's partition key applies unless the event names its own.
	own := event("payment.captured", `{"customer":{"id":"c-2"}}`)
	own.SetExtension("partitionkey", "mine")
	keys, err := b.ingest.CheckEvents(ctx, tenant, []cloudevent.Event{
		event("payment.captured", `{"customer":{"id":"c-1"},"last4":"1111","amount":4111111111111112}`),
		own,
		event("payment.captured", `{"customer":{"id":42}}`),
		event("other.type", `{"customer":{"id":"c-3"}}`),
	}, true)
	require.NoError(t, err)
	require.Equal(t, []string{"c-1", "", "42", ""}, keys)
}

// TestIngestPrivacy: the values a contract classifies are encrypted before
// anything else sees the event; an event without its data subject's id is
// refused naming the pointer.
func TestIngestPrivacy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, registry.Config{UnregisteredTypes: registry.UnregisteredAccept})
	tenant := uuid.New()
	put := func(c *contracts.Contract) {
		c.Owner, c.Description, c.Level, c.Compatibility = "accounts", "a user signed up", contracts.LevelStandard, "BACKWARD"
		c.Schema = "urn:prost:schema:" + c.Type + ":1"
		c.Idempotency, c.Retry = &contracts.Idempotency{Key: []string{"source", "id"}}, &contracts.Retry{MaxAttempts: 3}
		_, _, err := b.contracts.Put(ctx, tenant, c)
		require.NoError(t, err)
	}
	put(&contracts.Contract{Type: "user.signup", DataSubject: "/user_id", PartitionKey: "/email", Purpose: "accounts", Retention: "2y",
		Classification: contracts.Classification{"/email": {Class: contracts.ClassPersonal}, "/phone": {Class: contracts.ClassPersonal}}})
	put(&contracts.Contract{Type: "user.flagged", DataSubject: contracts.SubjectCause, Purpose: "fraud", Retention: "1y",
		Classification: contracts.Classification{"/reason": {Class: contracts.ClassPersonal}}})

	evs := []cloudevent.Event{event("user.signup", `{"user_id":"u-1","email":"jane@example.com","phone":"+351 912 345 678","plan":"pro"}`)}
	keys, err := b.ingest.CheckEvents(ctx, tenant, evs, false)
	require.NoError(t, err)
	// Whole values, not fragments: the key id and the base64 ciphertext are
	// random and may hold any three digits or letters.
	require.NotContains(t, string(evs[0].Data), "jane@example.com")
	require.NotContains(t, string(evs[0].Data), "+351 912 345 678")
	require.Contains(t, string(evs[0].Data), `"user_id":"u-1"`)
	require.Contains(t, string(evs[0].Data), `"plan":"pro"`)
	require.NotContains(t, keys[0], "jane", "a classified partition key is a pseudonym")
	require.NotEmpty(t, keys[0])
	plain, err := b.keyring.Reveal(ctx, tenant, evs[0].Data)
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u-1","email":"jane@example.com","phone":"+351 912 345 678","plan":"pro"}`, string(plain))
	// The same value gives the same partition key: per-key order holds.
	again := []cloudevent.Event{event("user.signup", `{"user_id":"u-1","email":"jane@example.com"}`)}
	keys2, err := b.ingest.CheckEvents(ctx, tenant, again, false)
	require.NoError(t, err)
	require.Equal(t, keys[0], keys2[0])

	// Refusals name the pointer; a refused request encrypts nothing.
	batch := []cloudevent.Event{
		event("user.signup", `{"email":"bob@example.com"}`),
		{SpecVersion: "1.0", ID: "b", Source: "/t", Type: "user.signup", DataBase64: []byte("x")},
		event("user.flagged", `{"reason":"spam"}`),
		event("user.signup", `{"user_id":"u-2","email":"carl@example.com"}`),
	}
	_, err = b.ingest.CheckEvents(ctx, tenant, batch, true)
	ps := ingestProblems(t, err)
	require.Len(t, ps, 3)
	require.Equal(t, "/user_id", ps[0].Pointer)
	require.Equal(t, "contract", ps[0].Keyword)
	require.Equal(t, 0, ps[0].Index)
	require.Contains(t, ps[1].Detail, "data must be JSON")
	require.Equal(t, "type", ps[2].Field)
	require.Contains(t, ps[2].Detail, "emitted by PROST")
	require.Contains(t, string(batch[3].Data), "carl@example.com")

	// Without a KEK, classified events are refused with 503, never stored in clear.
	noKEK := registry.NewIngest(b.reg, b.contracts, nil, registry.IngestConfig{})
	_, err = noKEK.CheckEvents(ctx, tenant, []cloudevent.Event{event("user.signup", `{"user_id":"u-3","email":"d@example.com"}`)}, false)
	require.ErrorIs(t, err, dataprotect.ErrNoKEK)
	require.ErrorIs(t, err, problem.Unavailable)
}

// BenchmarkCheckEvent measures validation at ingest per event: one event of
// a registered type with a typical object schema, its compiled schema
// cached.
func BenchmarkCheckEvent(b *testing.B) {
	ctx := context.Background()
	reg, err := registry.New(testDB.Pool, registry.Config{})
	require.NoError(b, err)
	tenant := uuid.New()
	_, _, err = reg.Register(ctx, tenant, "order.placed", []byte(`{
		"type": "object",
		"properties": {
			"order_id": {"type": "string", "minLength": 1},
			"customer": {"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": "string", "format": "email"}}, "required": ["id"]},
			"total": {"type": "number", "minimum": 0},
			"currency": {"enum": ["EUR", "USD", "BRL"]},
			"items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}, "required": ["sku", "qty"]}}
		},
		"required": ["order_id", "total", "currency"]
	}`))
	require.NoError(b, err)
	in := registry.NewIngest(reg, nil, nil, registry.IngestConfig{})
	data := []byte(`{"order_id":"o-1","customer":{"id":"c-1","email":"ada@example.com"},"total":12.5,"currency":"EUR","items":[{"sku":"A1","qty":2},{"sku":"B2","qty":1}]}`)
	evs := []cloudevent.Event{{SpecVersion: "1.0", ID: "e", Source: "/bench", Type: "order.placed", Data: data}}
	_, err = in.CheckEvents(ctx, tenant, evs, false)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := in.CheckEvents(ctx, tenant, evs, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckEventUnregistered is the cost for an event whose type has no
// schema, under the accept policy: a cache lookup.
func BenchmarkCheckEventUnregistered(b *testing.B) {
	ctx := context.Background()
	reg, err := registry.New(testDB.Pool, registry.Config{UnregisteredTypes: registry.UnregisteredAccept})
	require.NoError(b, err)
	in := registry.NewIngest(reg, nil, nil, registry.IngestConfig{})
	evs := []cloudevent.Event{{SpecVersion: "1.0", ID: "e", Source: "/bench", Type: "not.registered", Data: []byte(`{"a":1}`)}}
	tenant := uuid.New()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := in.CheckEvents(ctx, tenant, evs, false); err != nil {
			b.Fatal(err)
		}
	}
}
