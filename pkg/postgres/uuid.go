package postgres

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// RegisterUUID makes m encode and scan github.com/google/uuid.UUID as the 16
// bytes of Postgres's binary uuid. Without it pgx goes through the type's
// database/sql methods: every UUID sent is formatted as a 36-character string
// and parsed back, and every UUID read is formatted as one and parsed; a
// statement given the tenants of a batch as a uuid[] pays that once per
// element. What is stored and read does not change (TestUUIDBinary compares
// with a connection without it). AfterConnect registers it on every connection.
func RegisterUUID(m *pgtype.Map) {
	m.RegisterType(&pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}})
}

// uuidCodec is pgtype.UUIDCodec with uuid.UUID's binary format handled
// directly; anything else is left to pgtype.UUIDCodec.
type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return encodeBinaryUUID{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanBinaryUUID{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

type encodeBinaryUUID struct{}

func (encodeBinaryUUID) Encode(value any, buf []byte) ([]byte, error) {
	u := value.(uuid.UUID)
	return append(buf, u[:]...), nil
}

type scanBinaryUUID struct{}

func (scanBinaryUUID) Scan(src []byte, dst any) error {
	if src == nil {
		return nil // (*uuid.UUID).Scan leaves the UUID as it was on NULL
	}
	if len(src) != 16 {
		return fmt.Errorf("invalid length for uuid: %d", len(src))
	}
	copy(dst.(*uuid.UUID)[:], src)
	return nil
}
