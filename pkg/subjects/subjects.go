// Package subjects defines where PROST events live in NATS: the subject scheme
// and the partition of an event.
//
// Every accepted event is published on
//
//	prost.events.<tenant>.<partition>.<type>
//
// where <tenant> is the App id (a UUID), <partition> a decimal number in
// [0, partitions) and <type> the CloudEvents type with each dot-separated token
// kept when it is a safe NATS token and percent-encoded otherwise (see Token).
// A consumer of one tenant subscribes to prost.events.<tenant>.>, of one type
// to prost.events.*.*.<type>, of one partition to prost.events.*.<n>.>.
package subjects

import (
	"crypto/sha256"
	"encoding/base64"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Root is the first token of every event subject.
const Root = "prost.events"

// MaxLen is the longest subject PROST publishes on. NATS closes the
// connection of a client that sends a protocol line over 4 KiB (its default
// max_control_line), and the subject is on that line with the reply subject
// and sizes; the gateway's limit on the type keeps every event subject far
// below MaxLen.
const MaxLen = 2048

// All matches every event subject.
const All = Root + ".>"

// Event returns the subject of an event.
func Event(tenant uuid.UUID, partition int, eventType string) string {
	var b strings.Builder
	b.Grow(len(Root) + 40 + 4 + len(eventType)*2)
	b.WriteString(Root)
	b.WriteByte('.')
	b.WriteString(tenant.String())
	b.WriteByte('.')
	b.WriteString(strconv.Itoa(partition))
	b.WriteByte('.')
	b.WriteString(TypeTokens(eventType))
	return b.String()
}

// Tenant matches every event of one tenant.
func Tenant(tenant uuid.UUID) string { return Root + "." + tenant.String() + ".>" }

// TypeTokens turns an event type into subject tokens: split at dots, each
// token kept if safe (see Token).
func TypeTokens(eventType string) string {
	parts := strings.Split(eventType, ".")
	for i, p := range parts {
		parts[i] = Token(p)
	}
	return strings.Join(parts, ".")
}

// Token returns s if it is a safe NATS subject token (non-empty; letters,
// digits, '-', '_' only) and otherwise s percent-encoded ('%' followed by two
// hex digits for every other byte; an empty token becomes "%"). '%' itself is
// always encoded, so the mapping is one-to-one.
func Token(s string) string {
	if s == "" {
		return "%"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func safeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// DefaultPartitions is PROST_PARTITIONS when unset: how many partitions
// every tenant's events are spread over by partition key, the same number on
// the gateway, every consumer and every service that emits events. A
// partition is a consumer's unit of order and of scale-out: each has one
// durable JetStream consumer per consumer, applied by one instance at a
// time, so up to DefaultPartitions instances of a consumer share the work.
//
// It was 16 until 2026-12-02. Every durable whose position moves has its
// state written to disk with O_SYNC up to ten times a second by nats-server
// under sync_interval always; with five consumers that was ~85 durables and
// the fsyncs competed with Postgres's commits on the same disk (make bench:
// single-event ingest 684 events/s at 16, 1,149 at 4, docs/benchmarks.md).
// Raise it where more than four instances of a consumer must share the work;
// see docs/delivery.md for changing it on a running deployment.
const DefaultPartitions = 4

// DevPartitions is PROST_PARTITIONS when unset for `prost dev` on a new
// data directory. prost dev is one process, one instance of every consumer:
// more partitions only add durables, and each durable of a partitioned
// consumer reads the whole stream to pick its partition's messages. With
// four, the embedded server kept ~17 durables walking the stream; with one,
// five (decision 0018).
const DevPartitions = 1

// Partition maps a partition key to a partition in [0, n) with 32-bit FNV-1a.
// The same key always maps to the same partition while n stays the same.
func Partition(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// MsgID is the stable identity of an event in NATS, sent as Nats-Msg-Id so
// JetStream drops a republished copy within the stream's duplicate window, and
// used by consumers as their idempotency key: base64url (no padding) of the
// first 24 bytes of SHA-256(tenant NUL source NUL id).
func MsgID(tenant uuid.UUID, source, id string) string {
	h := sha256.New()
	_, _ = h.Write(tenant[:])
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(source))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:24])
}
