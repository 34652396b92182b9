package dataprotect_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/dataprotect"
)

// BenchmarkProtect is encrypting two classified values of an event with its
// subject's key cached, over 1,000 subjects.
func BenchmarkProtect(b *testing.B) {
	ctx := context.Background()
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(b, err)
	kr, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek})
	require.NoError(b, err)
	p, err := dataprotect.NewPolicy("/customer_id", []dataprotect.Field{
		{Pointer: "/customer_id", Class: "personal", Purpose: "orders", Retention: dataprotect.Forever},
		{Pointer: "/items", Class: "personal", Purpose: "orders", Retention: dataprotect.Forever}})
	require.NoError(b, err)
	tenant := uuid.New()
	docs := make([][]byte, 1000)
	for i := range docs {
		docs[i] = []byte(`{"order_id":"order-1","customer_id":"customer-` + strconv.Itoa(i) + `","currency":"EUR","total_cents":7148,` +
			`"items":[{"sku":"SKU-1","qty":2,"price_cents":1299},{"sku":"SKU-8","qty":1,"price_cents":4550}]}`)
		_, err := kr.Protect(ctx, tenant, docs[i], p)
		require.NoError(b, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := kr.Protect(ctx, tenant, docs[i%len(docs)], p); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkReveal is decrypting an event's two values, keys cached.
func BenchmarkReveal(b *testing.B) {
	ctx := context.Background()
	kek, err := dataprotect.ParseKEK(dataprotect.NewKEKSpec())
	require.NoError(b, err)
	kr, err := dataprotect.New(testDB.Pool, dataprotect.Config{KEK: kek})
	require.NoError(b, err)
	p, err := dataprotect.NewPolicy("/customer_id", []dataprotect.Field{
		{Pointer: "/email", Class: "personal", Purpose: "orders", Retention: dataprotect.Forever},
		{Pointer: "/items", Class: "personal", Purpose: "orders", Retention: dataprotect.Forever}})
	require.NoError(b, err)
	tenant := uuid.New()
	doc, err := kr.Protect(ctx, tenant, []byte(`{"customer_id":"c-1","email":"a@example.com","items":[{"sku":"SKU-1","qty":2}]}`), p)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := kr.Reveal(ctx, tenant, doc); err != nil {
			b.Fatal(err)
		}
	}
}
