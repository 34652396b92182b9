package main

import (
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/subjects"
)

// The benchmark's events: an order placed in a web shop, a structured-mode
// CloudEvent of about 400 bytes (450 with tenantid) with the extensions PROST records (actorid,
// action, partitionkey). Every step sends the same shape: the raw steps
// store and publish it with the tenantid extension stamped in (what PROST
// stores and publishes), the PROST steps send it without (the gateway
// stamps it).
const (
	eventSource = "/bench/shop"
	eventType   = "order.placed"
	partitions  = subjects.DevPartitions // PROST_PARTITIONS of prost dev on a new data directory
)

// eventTime is the events' time attribute; fixed, so payloads are the same size.
var eventTime = time.Date(2026, 11, 27, 5, 37, 5, 159928000, time.UTC).Format(time.RFC3339Nano)

// appendEvent appends one structured CloudEvent to dst. id must be unique
// per tenant and JSON-safe; n varies the business fields; tenant, when not
// empty, is stamped as the tenantid extension.
func appendEvent(dst []byte, id string, n int64, tenant string) []byte {
	dst = append(dst, `{"specversion":"1.0","id":"`...)
	dst = append(dst, id...)
	dst = append(dst, `","source":"`+eventSource+`","type":"`+eventType+`","subject":"order-`...)
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, `","time":"`...)
	dst = append(dst, eventTime...)
	dst = append(dst, `","actorid":"user-`...)
	dst = strconv.AppendInt(dst, n%1000, 10)
	dst = append(dst, `","action":"place","partitionkey":"`...)
	dst = append(dst, partitionKey(n)...)
	dst = append(dst, '"')
	if tenant != "" {
		dst = append(dst, `,"tenantid":"`...)
		dst = append(dst, tenant...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"data":{"order_id":"order-`...)
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, `","customer_id":"`...)
	dst = append(dst, partitionKey(n)...)
	dst = append(dst, `","currency":"EUR","total_cents":`...)
	dst = strconv.AppendInt(dst, 1299*2+4550+n%100, 10)
	dst = append(dst, `,"items":[{"sku":"SKU-`...)
	dst = strconv.AppendInt(dst, n%50, 10)
	dst = append(dst, `","qty":2,"price_cents":1299},{"sku":"SKU-`...)
	dst = strconv.AppendInt(dst, (n+7)%50, 10)
	dst = append(dst, `","qty":1,"price_cents":4550}]}}`...)
	return dst
}

// partitionKey is the event's partitionkey extension: its customer.
func partitionKey(n int64) string { return "customer-" + strconv.FormatInt(n%997, 10) }

// eventID is a unique event id for a step, worker and sequence number.
func eventID(step string, worker int, n int64) string {
	return step + "-" + strconv.Itoa(worker) + "-" + strconv.FormatInt(n, 10)
}

// outboxSubject is the subject PROST publishes event n of tenant on.
func outboxSubject(tenant uuid.UUID, n int64) string {
	return subjects.Event(tenant, subjects.Partition(partitionKey(n), partitions), eventType)
}
