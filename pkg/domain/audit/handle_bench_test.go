package audit_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/domain/audit"
)

// BenchmarkHandleEvents appends batches of 200 events of 8 tenants, each a
// transaction, as the audit consumer does under a backlog.
func BenchmarkHandleEvents(b *testing.B) {
	tenants := make([]uuid.UUID, 8)
	for i := range tenants {
		tenants[i] = uuid.New()
	}
	n := 0
	batch := func() []*consumer.Message {
		msgs := make([]*consumer.Message, 200)
		for i := range msgs {
			n++
			tenant := tenants[n%len(tenants)]
			msgs[i] = &consumer.Message{ID: fmt.Sprint("m-", n), Data: fmt.Appendf(nil,
				`{"specversion":"1.0","id":"ev-%d","source":"bench/orders","type":"order.created","tenantid":"%s","time":"2026-12-01T10:00:00Z","datacontenttype":"application/json","data":{"order_id":"o-%d","amount":1999,"currency":"EUR","items":[{"sku":"a","qty":1},{"sku":"b","qty":2}],"customer":{"id":"c-%d","country":"PT"}}}`,
				n, tenant, n, n%100)}
		}
		return msgs
	}
	b.ResetTimer()
	for b.Loop() {
		msgs := batch()
		err := pgx.BeginFunc(b.Context(), testDB.Pool, func(tx pgx.Tx) error { return audit.HandleEvents(b.Context(), tx, msgs) })
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*200), "us/event")
}
