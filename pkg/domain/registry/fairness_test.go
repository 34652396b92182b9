package registry_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/problem"
)

// heavySchema is issue 10 case 5's schema: an enum of n values applied to
// every item of an array.
func heavySchema(n int) string {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf("%q", fmt.Sprintf("value-%05d", i))
	}
	return `{"type":"object","properties":{"items":{"type":"array","items":{"enum":[` + strings.Join(vals, ",") + `]}}}}`
}

// heavyData is an array of n items, each the last value of the enum.
func heavyData(n, enum int) []byte {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("%q", fmt.Sprintf("value-%05d", enum-1))
	}
	return []byte(`{"items":[` + strings.Join(items, ",") + `]}`)
}

// TestValidationIsBoundedPerRequest reproduces issue 10 case 5's schema
// cost: a 5,000-value enum over 50,000 items cost seconds of gateway CPU
// per request. A request now gets ValidationBudget for its validation and
// is refused (422, naming the event's data and the budget) past it; the
// validations one tenant has running are capped, so another tenant's
// requests are validated meanwhile.
func TestValidationIsBoundedPerRequest(t *testing.T) {
	b := setup(t, registry.Config{})
	heavy, light := uuid.New(), uuid.New()
	b.register(heavy, "bulk.loaded", heavySchema(2000))
	b.register(light, "bulk.loaded", heavySchema(2000))
	big := []cloudevent.Event{{SpecVersion: "1.0", ID: "e", Source: "/s", Type: "bulk.loaded", Data: heavyData(20_000, 2000)}}

	// Unbounded, the validation takes its time (the baseline): the faster
	// of two runs, since the first also compiles the schema and either may
	// meet a busy machine, and a budget taken from a slow one could let the
	// bounded run below finish inside it.
	unbounded := registry.NewIngest(b.reg, nil, nil, registry.IngestConfig{ValidationBudget: -1})
	var full time.Duration
	for i := range 2 {
		start := time.Now()
		_, err := unbounded.CheckEvents(context.Background(), heavy, big, false)
		require.NoError(t, err)
		if took := time.Since(start); i == 0 || took < full {
			full = took
		}
	}
	budget := full / 5
	t.Logf("unbounded validation %s; budget %s", full, budget)

	in := registry.NewIngest(b.reg, nil, nil, registry.IngestConfig{ValidationBudget: budget, ValidationsPerTenant: 1})
	start := time.Now()
	_, err := in.CheckEvents(t.Context(), heavy, big, false)
	took := time.Since(start)
	var ie *registry.IngestError
	require.ErrorAs(t, err, &ie)
	p := problem.From(err)
	require.Equal(t, 422, p.Status)
	require.Equal(t, "data", p.Errors[0].Field)
	require.Contains(t, p.Errors[0].Detail, fmt.Sprintf("took longer than the %s a request may spend on it", budget))
	require.Less(t, took, full*4/5, "the request is answered at its budget, not when the validation ends")

	// While the heavy tenant's validation runs on in the background, its
	// next request waits for its only slot and is told to retry (429) at
	// its budget; the other tenant's requests are validated without
	// waiting (the first fails its schema: a value not in the enum).
	_, err = in.CheckEvents(t.Context(), heavy, []cloudevent.Event{{SpecVersion: "1.0", ID: "e2", Source: "/s", Type: "bulk.loaded", Data: []byte(`{"items":["value-00001"]}`)}}, false)
	p = problem.From(err)
	require.Equal(t, 429, p.Status, "%v", err)
	require.Equal(t, 1, p.RetryAfter)
	_, err = in.CheckEvents(t.Context(), light, []cloudevent.Event{{SpecVersion: "1.0", ID: "l", Source: "/s", Type: "bulk.loaded", Data: []byte(`{"items":["nope"]}`)}}, false)
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "enum", ie.Problems[0].Keyword, "the other tenant is validated at once")
	_, err = in.CheckEvents(t.Context(), light, []cloudevent.Event{{SpecVersion: "1.0", ID: "l2", Source: "/s", Type: "bulk.loaded", Data: []byte(`{"items":["value-00002"]}`)}}, false)
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		_, err := in.CheckEvents(t.Context(), heavy, []cloudevent.Event{{SpecVersion: "1.0", ID: "e3", Source: "/s", Type: "bulk.loaded", Data: []byte(`{"items":[]}`)}}, false)
		return err == nil
	}, 60*time.Second, 50*time.Millisecond, "the slot comes back when the background validation ends")
}

// TestSubjectLimit: a tenant may register MaxSubjects subjects; a new one
// beyond is 422, new versions of existing subjects are not limited, and a
// deleted subject frees its place.
func TestSubjectLimit(t *testing.T) {
	b := setup(t, registry.Config{MaxSubjects: 2})
	tenant := uuid.New()
	b.register(tenant, "a", `{"type":"object"}`)
	b.register(tenant, "b", `{"type":"object"}`)
	_, _, err := b.reg.Register(t.Context(), tenant, "c", []byte(`{"type":"object"}`))
	require.ErrorIs(t, err, registry.ErrTooManySubjects)
	require.Equal(t, 422, problem.From(err).Status)
	require.Contains(t, problem.From(err).Detail, "the limit is 2 subjects")
	b.register(tenant, "a", `{"type":"object","description":"v2"}`)
	b.register(uuid.New(), "c", `{"type":"object"}`)
	_, err = b.reg.DeleteSubject(t.Context(), tenant, "b", false)
	require.NoError(t, err)
	b.register(tenant, "c", `{"type":"object"}`)
}
