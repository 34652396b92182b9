package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/prost-platform/prost/pkg/consumer"

	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/problem"
)

// Limits of usage.
const (
	// MaxCustomerLen is the longest customer id a meter reads.
	MaxCustomerLen = 200
	// MaxUsageRows is the most rows one usage query answers.
	MaxUsageRows = 100_000
	// maxDigits bounds a usage value's significant digits, and maxExponent
	// its decimal exponent, so one event cannot store an absurd number.
	maxDigits   = 40
	maxExponent = 40
)

// Windows of a usage query.
var Windows = []string{"MINUTE", "HOUR", "DAY", "MONTH"}

// usageRow is one revision of one event's usage of one meter.
type usageRow struct {
	tenant           uuid.UUID
	meter            uuid.UUID
	source, id       string
	revision         int64
	time             time.Time
	customer         string
	groups           map[string]*string
	value            *decimal.Decimal
	unique           string
	voided           bool
	corrSrc, corrID  string
	meterSlug        string
	meterAggregation Aggregation
	// msg is the message the consumer turned into this row (nil in a
	// backfill): one whose rows were all there already is marked Seen.
	msg *consumer.Message
}

// ExtractError says why an event cannot be counted by a meter.
type ExtractError struct {
	Meter  string
	Path   string
	Reason string
}

func (e *ExtractError) Error() string {
	return fmt.Sprintf("meter %s: %s %s", e.Meter, e.Path, e.Reason)
}

// extract reads what data (decoded with UseNumber) counts for m.
func (m *Meter) extract(data any) (usageRow, error) {
	r := usageRow{meter: m.ID, meterSlug: m.Slug, meterAggregation: m.Aggregation}
	fail := func(p Path, reason string) (usageRow, error) {
		return usageRow{}, &ExtractError{Meter: m.Slug, Path: p.String(), Reason: reason}
	}
	const sealed = "is encrypted (the App's contract classifies it as personal data): a meter cannot count it"
	if !m.value.IsZero() {
		v, ok := m.value.Lookup(data)
		if !ok {
			return fail(m.value, "is missing from the event's data")
		}
		if c, ok := v.(classified); ok {
			v = c.plain
		}
		if s, ok := v.(string); ok && dataprotect.IsToken(s) {
			return fail(m.value, sealed)
		}
		if m.Aggregation == UniqueCount {
			s, ok := scalarText(v)
			if !ok {
				return fail(m.value, "is an object or array; UNIQUE_COUNT counts distinct scalar values")
			}
			r.unique = s
		} else {
			d, err := parseNumber(v)
			if err != nil {
				return fail(m.value, err.Error())
			}
			r.value = &d
		}
	}
	if !m.customer.IsZero() {
		v, ok := m.customer.Lookup(data)
		if !ok {
			return fail(m.customer, "(the customer) is missing from the event's data")
		}
		if c, ok := v.(classified); ok {
			v = c.pseudonym
		}
		s, ok := scalarText(v)
		if ok && dataprotect.IsToken(s) {
			return fail(m.customer, "(the customer) "+sealed)
		}
		if !ok || s == "" || len(s) > MaxCustomerLen {
			return fail(m.customer, fmt.Sprintf("(the customer) must be a string or number of 1 to %d bytes", MaxCustomerLen))
		}
		r.customer = s
	}
	r.groups = make(map[string]*string, len(m.groups))
	for _, g := range m.groups {
		v, ok := g.path.Lookup(data)
		if !ok {
			r.groups[g.name] = nil
			continue
		}
		if c, ok := v.(classified); ok {
			v = c.pseudonym
		}
		s, ok := scalarText(v)
		if ok && dataprotect.IsToken(s) {
			return fail(g.path, "(group "+g.name+") "+sealed)
		}
		if !ok {
			return fail(g.path, "(group "+g.name+") is an object or array; groups take scalar values")
		}
		r.groups[g.name] = &s
	}
	return r, nil
}

// parseNumber reads a usage value: a JSON number, or a string holding a
// decimal number, exactly.
func parseNumber(v any) (decimal.Decimal, error) {
	var text string
	switch c := v.(type) {
	case json.Number:
		text = c.String()
	case string:
		text = strings.TrimSpace(c)
	default:
		return decimal.Zero, errors.New("is not a number")
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return decimal.Zero, fmt.Errorf("is not a number: %q", text)
	}
	if exp := d.Exponent(); exp > maxExponent || exp < -maxExponent || len(d.Coefficient().String()) > maxDigits+1 {
		return decimal.Zero, fmt.Errorf("is out of range: %q (at most %d significant digits)", text, maxDigits)
	}
	return d, nil
}

// decodeData decodes an event's data keeping numbers exact.
func decodeData(raw []byte) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// UsageQuery selects and shapes usage.
type UsageQuery struct {
	// From and To bound the events' times: From <= time < To. Defaults:
	// the Unix epoch and now.
	From, To time.Time
	// Window is MINUTE, HOUR, DAY or MONTH; "" for one row over the range.
	Window string
	// TZ is the IANA time zone windows are cut in. Defaults to UTC.
	TZ string
	// GroupBy lists the meter's groups to split usage by.
	GroupBy []string
	// Customers filters usage to these customers and splits it by
	// customer; empty for every customer together.
	Customers []string
}

// UsageRow is the usage of one window, customer and group.
type UsageRow struct {
	Value       Decimal            `json:"value"`
	WindowStart time.Time          `json:"window_start"`
	WindowEnd   time.Time          `json:"window_end"`
	Customer    *string            `json:"customer"`
	GroupBy     map[string]*string `json:"group_by"`
}

// Usage is the answer of a usage query.
type Usage struct {
	Meter  string     `json:"meter"`
	From   time.Time  `json:"from"`
	To     time.Time  `json:"to"`
	Window *string    `json:"window"`
	TZ     string     `json:"tz"`
	Data   []UsageRow `json:"data"`
}

// validate fills in q's defaults and checks it against m.
func (q *UsageQuery) validate(m *Meter, now time.Time) (*time.Location, error) {
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = time.Unix(0, 0).UTC()
	}
	if !q.From.Before(q.To) {
		return nil, problem.BadParam("from", "from must be before to")
	}
	if q.Window != "" && !slices.Contains(Windows, q.Window) {
		return nil, problem.BadParam("window", "one of MINUTE, HOUR, DAY, MONTH")
	}
	if q.TZ == "" {
		q.TZ = "UTC"
	}
	loc, err := time.LoadLocation(q.TZ)
	if err != nil || q.TZ == "Local" {
		return nil, problem.BadParam("tz", "an IANA time zone, such as Europe/Berlin or UTC")
	}
	for _, g := range q.GroupBy {
		if _, ok := m.GroupBy[g]; !ok {
			names := make([]string, 0, len(m.GroupBy))
			for n := range m.GroupBy {
				names = append(names, n)
			}
			slices.Sort(names)
			return nil, problem.BadParam("group_by", fmt.Sprintf("meter %s has no group %q (its groups: %s)", m.Slug, g, strings.Join(names, ", ")))
		}
	}
	if len(q.Customers) > 100 {
		return nil, problem.BadParam("customer", "at most 100 customers")
	}
	return loc, nil
}

// QueryUsage aggregates a meter's usage: the newest revision of every
// event's usage whose time is in [From, To), per window, customer and
// group. Empty windows have no row.
func (s *Service) QueryUsage(ctx context.Context, tenant uuid.UUID, slug string, q UsageQuery) (Usage, error) {
	m, err := s.Meter(ctx, tenant, slug)
	if err != nil {
		return Usage{}, err
	}
	return s.queryMeter(ctx, &m, q)
}

func (s *Service) queryMeter(ctx context.Context, m *Meter, q UsageQuery) (Usage, error) {
	loc, err := q.validate(m, s.cfg.Now())
	if err != nil {
		return Usage{}, err
	}
	groupKeys := slices.Clone(q.GroupBy)
	slices.Sort(groupKeys)
	groupKeys = slices.Compact(groupKeys)
	rows, err := s.q.QueryUsage(ctx, billingdb.QueryUsageParams{
		TenantID: m.tenant, MeterID: m.ID, FromTime: q.From, ToTime: q.To, Unit: strings.ToLower(q.Window), Tz: q.TZ,
		ByCustomer: len(q.Customers) > 0, GroupKeys: nonNil(groupKeys), Customers: nonNil(q.Customers),
		Aggregation: string(m.Aggregation), MaxRows: MaxUsageRows + 1,
	})
	if err != nil {
		return Usage{}, fmt.Errorf("billing: query usage: %w", err)
	}
	if len(rows) > MaxUsageRows {
		return Usage{}, problem.Errorf(problem.Invalid, "the query has more than %d rows: narrow from and to, or use a larger window", MaxUsageRows)
	}
	out := Usage{Meter: m.Slug, From: q.From.In(loc), To: q.To.In(loc), TZ: q.TZ, Data: make([]UsageRow, 0, len(rows))}
	if q.Window != "" {
		out.Window = &q.Window
	}
	for _, r := range rows {
		v, _ := fromNumeric(r.Value)
		row := UsageRow{Value: Decimal{v}, GroupBy: map[string]*string{}}
		if q.Window == "" {
			row.WindowStart, row.WindowEnd = out.From, out.To
		} else {
			row.WindowStart = r.WindowStart.In(loc)
			row.WindowEnd = windowEnd(row.WindowStart, q.Window)
		}
		if len(q.Customers) > 0 {
			row.Customer = ptr(r.Customer)
		}
		var grp map[string]*string
		if err := json.Unmarshal(r.Grp, &grp); err != nil {
			return Usage{}, fmt.Errorf("billing: query usage: groups: %w", err)
		}
		for _, k := range groupKeys {
			row.GroupBy[k] = grp[k]
		}
		out.Data = append(out.Data, row)
	}
	return out, nil
}

// windowEnd is the end of the window that starts at start (in its zone).
func windowEnd(start time.Time, window string) time.Time {
	switch window {
	case "MINUTE":
		return start.Add(time.Minute)
	case "HOUR":
		return start.Add(time.Hour)
	case "DAY":
		return start.AddDate(0, 0, 1)
	default:
		return start.AddDate(0, 1, 0)
	}
}

// total is a meter's usage of one customer over [from, to), zero when none.
func (s *Service) total(ctx context.Context, m *Meter, customer string, from, to time.Time) (decimal.Decimal, error) {
	u, err := s.queryMeter(ctx, m, UsageQuery{From: from, To: to, Customers: []string{customer}})
	if err != nil {
		return decimal.Zero, err
	}
	if len(u.Data) == 0 {
		return decimal.Zero, nil
	}
	return u.Data[0].Value.Decimal, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DataProtector reveals the values an App's contract encrypted at ingest
// and gives their pseudonyms (*dataprotect.Keyring).
type DataProtector interface {
	Reveal(ctx context.Context, tenant uuid.UUID, doc []byte) ([]byte, error)
	Pseudonym(ctx context.Context, tenant uuid.UUID, value string) (string, error)
}

// classified is a value the App's contract encrypted, revealed for
// counting: a meter counts its plain value, and keys usage (customer,
// groups) by its pseudonym, so no personal value is stored in clear and an
// erasure leaves nothing readable in the usage tables.
type classified struct {
	plain     any
	pseudonym string
}

// eventData decodes an event's data for the meters; with a DataProtector,
// the values encrypted at ingest are revealed as classified values (those
// already erased stay tokens, and a meter that needs one fails on it).
func (s *Service) eventData(ctx context.Context, tenant uuid.UUID, raw []byte) (any, error) {
	data, err := decodeData(raw)
	if err != nil || s.cfg.Protect == nil || !bytes.Contains(raw, []byte("prost:enc:")) {
		return data, err
	}
	doc, err := s.cfg.Protect.Reveal(ctx, tenant, raw)
	if err != nil {
		return nil, fmt.Errorf("billing: reveal: %w", err)
	}
	plain, err := decodeData(doc)
	if err != nil {
		return nil, err
	}
	return s.merge(ctx, tenant, data, plain)
}

// merge is orig with each token that plain holds a scalar for replaced by a
// classified value.
func (s *Service) merge(ctx context.Context, tenant uuid.UUID, orig, plain any) (any, error) {
	switch o := orig.(type) {
	case map[string]any:
		p, _ := plain.(map[string]any)
		for k, v := range o {
			m, err := s.merge(ctx, tenant, v, p[k])
			if err != nil {
				return nil, err
			}
			o[k] = m
		}
		return o, nil
	case []any:
		p, _ := plain.([]any)
		for i, v := range o {
			var pv any
			if i < len(p) {
				pv = p[i]
			}
			m, err := s.merge(ctx, tenant, v, pv)
			if err != nil {
				return nil, err
			}
			o[i] = m
		}
		return o, nil
	case string:
		if !dataprotect.IsToken(o) {
			return o, nil
		}
		text, ok := scalarText(plain)
		if !ok {
			return o, nil // erased: {"erased":true}
		}
		ps, err := s.cfg.Protect.Pseudonym(ctx, tenant, text)
		if err != nil {
			return nil, fmt.Errorf("billing: pseudonym: %w", err)
		}
		return classified{plain: plain, pseudonym: ps}, nil
	default:
		return orig, nil
	}
}
