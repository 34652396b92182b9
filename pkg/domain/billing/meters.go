package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/domain/billing/internal/billingdb"
	"github.com/prost-platform/prost/pkg/jobs"
	"github.com/prost-platform/prost/pkg/problem"
)

// Aggregation is how a meter combines the values of its events.
type Aggregation string

// The aggregations, as OpenMeter names them.
const (
	Sum         Aggregation = "SUM"
	Count       Aggregation = "COUNT"
	UniqueCount Aggregation = "UNIQUE_COUNT"
	Avg         Aggregation = "AVG"
	Min         Aggregation = "MIN"
	Max         Aggregation = "MAX"
	Latest      Aggregation = "LATEST"
)

// Aggregations lists every aggregation.
var Aggregations = []Aggregation{Sum, Count, UniqueCount, Avg, Min, Max, Latest}

// numericValue reports whether the aggregation needs a number per event.
func (a Aggregation) numericValue() bool {
	return a == Sum || a == Avg || a == Min || a == Max || a == Latest
}

// Limits of a meter.
const (
	MaxGroupBy     = 16
	maxDescription = 1000
)

var (
	slugPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	groupPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// Meter turns an App's events of one type into usage.
type Meter struct {
	ID          uuid.UUID   `json:"id"`
	Slug        string      `json:"slug"`
	Description string      `json:"description,omitempty"`
	EventType   string      `json:"event_type"`
	Aggregation Aggregation `json:"aggregation"`
	// ValueProperty is the JSONPath of the value in the event's data; empty
	// for COUNT.
	ValueProperty string `json:"value_property,omitempty"`
	// GroupBy maps group names to JSONPaths in data.
	GroupBy map[string]string `json:"group_by"`
	// CustomerProperty is the JSONPath of the PROST customer id in data;
	// empty when usage is not per customer.
	CustomerProperty string        `json:"customer_property,omitempty"`
	Backfill         BackfillState `json:"backfill"`
	CreatedAt        time.Time     `json:"created_at"`
	UpdatedAt        time.Time     `json:"updated_at"`
	DeletedAt        *time.Time    `json:"deleted_at,omitempty"`

	tenant   uuid.UUID
	value    Path
	groups   []namedPath
	customer Path
}

type namedPath struct {
	name string
	path Path
}

// BackfillState is how far counting the events stored before the meter
// existed has got.
type BackfillState struct {
	// Done is when every earlier event was counted; nil while the job runs.
	Done *time.Time `json:"done_at"`
	// Skipped counts earlier events that could not be counted (Error says
	// why, for the last one).
	Skipped int64  `json:"skipped"`
	Error   string `json:"error,omitempty"`
}

// MeterInput is the body of POST /v1/meters.
type MeterInput struct {
	Slug             string            `json:"slug"`
	Description      string            `json:"description"`
	EventType        string            `json:"event_type"`
	Aggregation      Aggregation       `json:"aggregation"`
	ValueProperty    string            `json:"value_property"`
	GroupBy          map[string]string `json:"group_by"`
	CustomerProperty string            `json:"customer_property"`
}

// compile checks in and returns the meter it describes, or an Invalid
// problem naming every failing member.
func (in MeterInput) compile() (Meter, error) {
	var fields []problem.FieldError
	bad := func(field, detail string) { fields = append(fields, problem.FieldError{Field: field, Detail: detail}) }
	m := Meter{Slug: in.Slug, Description: in.Description, EventType: in.EventType, Aggregation: in.Aggregation,
		ValueProperty: in.ValueProperty, GroupBy: in.GroupBy, CustomerProperty: in.CustomerProperty}
	if !slugPattern.MatchString(in.Slug) {
		bad("/slug", "a slug is 1 to 63 lower-case letters, digits, '-' and '_', starting with a letter or digit")
	}
	if len(in.Description) > maxDescription {
		bad("/description", fmt.Sprintf("at most %d bytes", maxDescription))
	}
	switch {
	case in.EventType == "" || len(in.EventType) > 255:
		bad("/event_type", "the CloudEvents type to meter, 1 to 255 bytes")
	case in.EventType == CorrectionType || strings.HasPrefix(in.EventType, "prost."):
		bad("/event_type", "the platform's own events (prost.*) cannot be metered; corrections apply to the events they correct")
	}
	if !slices.Contains(Aggregations, in.Aggregation) {
		bad("/aggregation", "one of SUM, COUNT, UNIQUE_COUNT, AVG, MIN, MAX, LATEST")
	}
	switch {
	case in.Aggregation == Count && in.ValueProperty != "":
		bad("/value_property", "a COUNT meter counts events and takes no value_property")
	case in.Aggregation != Count && in.ValueProperty == "" && slices.Contains(Aggregations, in.Aggregation):
		bad("/value_property", "required for "+string(in.Aggregation)+": the JSONPath of the value in the event's data, such as $.tokens")
	case in.ValueProperty != "":
		p, err := ParsePath(in.ValueProperty)
		if err != nil {
			bad("/value_property", err.Error())
		}
		m.value = p
	}
	if len(in.GroupBy) > MaxGroupBy {
		bad("/group_by", fmt.Sprintf("at most %d groups", MaxGroupBy))
	}
	names := make([]string, 0, len(in.GroupBy))
	for name := range in.GroupBy {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !groupPattern.MatchString(name) {
			bad("/group_by/"+name, "a group name is 1 to 64 letters, digits and '_', not starting with a digit")
			continue
		}
		p, err := ParsePath(in.GroupBy[name])
		if err != nil {
			bad("/group_by/"+name, err.Error())
			continue
		}
		m.groups = append(m.groups, namedPath{name, p})
	}
	if m.GroupBy == nil {
		m.GroupBy = map[string]string{}
	}
	if in.CustomerProperty != "" {
		p, err := ParsePath(in.CustomerProperty)
		if err != nil {
			bad("/customer_property", err.Error())
		}
		m.customer = p
	}
	if len(fields) > 0 {
		return Meter{}, &problem.Error{Kind: problem.Invalid, Msg: "the meter is invalid", Fields: fields}
	}
	return m, nil
}

// checkSchema checks the meter's paths against the schema of its event
// type: each path must be one the schema can produce, and the value of a
// SUM, AVG, MIN, MAX or LATEST meter must be able to be a number.
func (m *Meter) checkSchema(schema []byte) error {
	var doc any
	if err := json.Unmarshal(schema, &doc); err != nil {
		return nil // the registry only keeps valid schemas; nothing to follow
	}
	var fields []problem.FieldError
	check := func(field string, p Path, numeric bool) {
		c := checkPath(doc, p)
		switch {
		case !c.produced:
			fields = append(fields, problem.FieldError{Field: field, Pointer: p.Pointer(), Keyword: "path",
				Detail: fmt.Sprintf("the registered schema of %s cannot produce %s: it declares no %s", m.EventType, p, c.at)})
		case numeric && !c.numeric():
			fields = append(fields, problem.FieldError{Field: field, Pointer: p.Pointer(), Keyword: "type",
				Detail: fmt.Sprintf("%s aggregates numbers, but the registered schema of %s makes %s a %s", m.Aggregation, m.EventType, p, c.describeTypes())})
		}
	}
	if !m.value.IsZero() {
		check("/value_property", m.value, m.Aggregation.numericValue())
	}
	for _, g := range m.groups {
		check("/group_by/"+g.name, g.path, false)
	}
	if !m.customer.IsZero() {
		check("/customer_property", m.customer, false)
	}
	if len(fields) > 0 {
		return &problem.Error{Kind: problem.Invalid, Msg: "the meter does not fit the registered schema of " + m.EventType, Fields: fields}
	}
	return nil
}

// CreateMeter checks and stores a meter, and queues the job that counts
// the events of its type stored before it existed.
func (s *Service) CreateMeter(ctx context.Context, tenant uuid.UUID, in MeterInput) (Meter, error) {
	m, err := in.compile()
	if err != nil {
		return Meter{}, err
	}
	if s.cfg.Schemas != nil {
		schema, found, err := s.cfg.Schemas.LatestSchema(ctx, tenant, m.EventType)
		if err != nil {
			return Meter{}, fmt.Errorf("billing: read the schema of %s: %w", m.EventType, err)
		}
		if found {
			if err := m.checkSchema(schema); err != nil {
				return Meter{}, err
			}
		}
	}
	groups, _ := json.Marshal(m.GroupBy)
	var row billingdb.BillingMeter
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		row, err = billingdb.New(tx).CreateMeter(ctx, billingdb.CreateMeterParams{
			MeterID: uuid.Must(uuid.NewV7()), TenantID: tenant, Slug: m.Slug, Description: m.Description, EventType: m.EventType,
			Aggregation: string(m.Aggregation), ValueProperty: nonEmpty(m.ValueProperty), GroupBy: groups,
			CustomerProperty: nonEmpty(m.CustomerProperty),
		})
		if err != nil {
			return err
		}
		args, _ := json.Marshal(backfillArgs{MeterID: row.MeterID})
		_, _, err = jobs.Insert(ctx, tx, jobs.InsertParams{TenantID: &tenant, Kind: KindBackfill, Args: args,
			UniqueKey: row.MeterID.String()})
		return err
	})
	if isUniqueViolation(err) {
		return Meter{}, fmt.Errorf("%w: %s", ErrMeterExists, m.Slug)
	}
	if err != nil {
		return Meter{}, fmt.Errorf("billing: create meter: %w", err)
	}
	return meterFrom(row)
}

// Meter returns the App's live meter with slug.
func (s *Service) Meter(ctx context.Context, tenant uuid.UUID, slug string) (Meter, error) {
	row, err := s.q.GetMeter(ctx, billingdb.GetMeterParams{TenantID: tenant, Slug: slug})
	if errors.Is(err, pgx.ErrNoRows) {
		return Meter{}, ErrMeterNotFound
	}
	if err != nil {
		return Meter{}, fmt.Errorf("billing: get meter: %w", err)
	}
	return meterFrom(row)
}

// Meters lists the App's live meters by slug, a page at a time.
func (s *Service) Meters(ctx context.Context, tenant uuid.UUID, after string, limit int) ([]Meter, string, error) {
	limit = pageSize(limit)
	afterSlug, err := cursor.ParseString("m", after)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.q.ListMeters(ctx, billingdb.ListMetersParams{TenantID: tenant, AfterSlug: afterSlug, MaxRows: int32(limit + 1)}) //nolint:gosec // at most 1001
	if err != nil {
		return nil, "", fmt.Errorf("billing: list meters: %w", err)
	}
	var next string
	if len(rows) > limit {
		rows = rows[:limit]
		next = cursor.String("m", rows[len(rows)-1].Slug)
	}
	out := make([]Meter, len(rows))
	for i, r := range rows {
		if out[i], err = meterFrom(r); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// MeterPatch is the body of PATCH /v1/meters/{slug}. Only the description
// changes: what a meter counts is fixed when it is made (create another
// meter to count differently), so usage already counted never changes
// meaning.
type MeterPatch struct {
	Description *string `json:"description"`
}

// UpdateMeter applies p.
func (s *Service) UpdateMeter(ctx context.Context, tenant uuid.UUID, slug string, p MeterPatch) (Meter, error) {
	if p.Description == nil {
		return s.Meter(ctx, tenant, slug)
	}
	if len(*p.Description) > maxDescription {
		return Meter{}, problem.InvalidField("/description", fmt.Sprintf("at most %d bytes", maxDescription))
	}
	row, err := s.q.UpdateMeterDescription(ctx, billingdb.UpdateMeterDescriptionParams{TenantID: tenant, Slug: slug, Description: *p.Description})
	if errors.Is(err, pgx.ErrNoRows) {
		return Meter{}, ErrMeterNotFound
	}
	if err != nil {
		return Meter{}, fmt.Errorf("billing: update meter: %w", err)
	}
	return meterFrom(row)
}

// DeleteMeter stops the meter counting. Its usage stays (prices and
// invoices refer to it by id); the slug is free for a new meter.
func (s *Service) DeleteMeter(ctx context.Context, tenant uuid.UUID, slug string) (Meter, error) {
	row, err := s.q.DeleteMeter(ctx, billingdb.DeleteMeterParams{TenantID: tenant, Slug: slug})
	if errors.Is(err, pgx.ErrNoRows) {
		return Meter{}, ErrMeterNotFound
	}
	if err != nil {
		return Meter{}, fmt.Errorf("billing: delete meter: %w", err)
	}
	return meterFrom(row)
}

// meterFrom reads a stored meter, parsing its paths.
func meterFrom(r billingdb.BillingMeter) (Meter, error) {
	m := Meter{ID: r.MeterID, tenant: r.TenantID, Slug: r.Slug, Description: r.Description, EventType: r.EventType,
		Aggregation: Aggregation(r.Aggregation), ValueProperty: deref(r.ValueProperty), CustomerProperty: deref(r.CustomerProperty),
		Backfill:  BackfillState{Done: r.BackfillDoneAt, Skipped: r.BackfillSkipped, Error: deref(r.BackfillError)},
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, DeletedAt: r.DeletedAt}
	if err := json.Unmarshal(r.GroupBy, &m.GroupBy); err != nil {
		return Meter{}, fmt.Errorf("billing: meter %s: group_by: %w", r.MeterID, err)
	}
	var err error
	if m.ValueProperty != "" {
		if m.value, err = ParsePath(m.ValueProperty); err != nil {
			return Meter{}, fmt.Errorf("billing: meter %s: %w", r.MeterID, err)
		}
	}
	if m.CustomerProperty != "" {
		if m.customer, err = ParsePath(m.CustomerProperty); err != nil {
			return Meter{}, fmt.Errorf("billing: meter %s: %w", r.MeterID, err)
		}
	}
	names := make([]string, 0, len(m.GroupBy))
	for n := range m.GroupBy {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p, err := ParsePath(m.GroupBy[n])
		if err != nil {
			return Meter{}, fmt.Errorf("billing: meter %s: %w", r.MeterID, err)
		}
		m.groups = append(m.groups, namedPath{n, p})
	}
	return m, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// pageSize is the page length of a list: 50 by default, at most 1000.
func pageSize(limit int) int {
	if limit <= 0 {
		return 50
	}
	return min(limit, 1000)
}
