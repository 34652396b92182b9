package cloudevent

import (
	"strconv"

	"github.com/prost-platform/prost/pkg/storable"
)

// Limits of one event's envelope. PROST stores every attribute in Postgres
// and puts the type in the NATS subject and the trace context in NATS
// headers, so each is bounded here, where it is cheapest to refuse: the
// subject an event is published on stays far below NATS's 4 KiB control
// line, every value fits a Postgres text column, and no attribute is large
// enough to make a filter over it (a CESQL LIKE, say) expensive. Lengths are
// in bytes of UTF-8. [Event.Validate] and the parsers report a value over
// its limit as a problem naming the attribute (HTTP 422).
//
// The size of the whole event as it will be published (after re-encoding,
// with its headers) is bounded by the stream's maximum message size, which
// the gateway checks; see docs/api.md.
const (
	// MaxIDLen bounds id.
	MaxIDLen = 256
	// MaxSourceLen bounds source.
	MaxSourceLen = 1024
	// MaxTypeLen bounds type, which becomes the last tokens of the NATS
	// subject (each byte percent-encoded at most three times over).
	MaxTypeLen = 256
	// MaxSubjectLen bounds subject.
	MaxSubjectLen = 1024
	// MaxDataSchemaLen bounds dataschema.
	MaxDataSchemaLen = 2048
	// MaxDataContentTypeLen bounds datacontenttype.
	MaxDataContentTypeLen = 256
	// MaxExtensions bounds the number of extensions of one event.
	MaxExtensions = 32
	// MaxExtensionLen bounds the value of a string extension.
	MaxExtensionLen = 1024
	// MaxPartitionKeyLen bounds the partitionkey extension.
	MaxPartitionKeyLen = 256
	// MaxTraceParentLen bounds the traceparent extension, which is copied
	// into a NATS header; it may hold only 0-9, a-f and '-'.
	MaxTraceParentLen = 128
	// MaxTraceStateLen bounds the tracestate extension, which is copied
	// into a NATS header; it may hold only printable ASCII (0x20-0x7E).
	MaxTraceStateLen = 512
	// MaxTimeOffset bounds the time zone offset of the time attribute, in
	// seconds (exclusive): PostgreSQL's timestamptz takes offsets under 16
	// hours, RFC 3339 up to 23:59.
	MaxTimeOffset = 16 * 3600
)

// maxLenOf is the limit of a core attribute, 0 for none.
func maxLenOf(attr string) int {
	switch attr {
	case "id":
		return MaxIDLen
	case "source":
		return MaxSourceLen
	case "type":
		return MaxTypeLen
	case "subject":
		return MaxSubjectLen
	case "dataschema":
		return MaxDataSchemaLen
	case "datacontenttype":
		return MaxDataContentTypeLen
	}
	return 0
}

// tooLong is the detail of a value over its limit.
func tooLong(n, max int) string {
	return "is " + strconv.Itoa(n) + " bytes long; the limit is " + strconv.Itoa(max) + " bytes"
}

// nulDetail is the detail of a string holding U+0000.
const nulDetail = storable.NUL

// hasNUL reports whether s holds a NUL byte.
func hasNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// checkExtensionValue returns a problem detail, or "", for the string value
// of the named extension: the length limits and the character sets of the
// extensions PROST copies into message headers.
func checkExtensionValue(name, s string) string {
	max := MaxExtensionLen
	switch name {
	case "partitionkey":
		max = MaxPartitionKeyLen
	case "traceparent":
		if len(s) > MaxTraceParentLen {
			return tooLong(len(s), MaxTraceParentLen)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') && c != '-' {
				return "must be a W3C traceparent: only 0-9, a-f and '-'"
			}
		}
		return ""
	case "tracestate":
		if len(s) > MaxTraceStateLen {
			return tooLong(len(s), MaxTraceStateLen)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c > 0x7e {
				return "must be a W3C tracestate: printable ASCII only"
			}
		}
		return ""
	}
	if len(s) > max {
		return tooLong(len(s), max)
	}
	if hasNUL(s) {
		return nulDetail
	}
	return ""
}
