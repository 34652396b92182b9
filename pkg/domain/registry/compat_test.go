package registry_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/schemacompat"
)

// TestCompatibilityThroughReferences checks that the compatibility check
// compares what a $ref to another registered version names, as the
// validator does, rather than the reference's text.
func TestCompatibilityThroughReferences(t *testing.T) {
	t.Parallel()
	b := setup(t, registry.Config{})
	ctx := t.Context()
	tenant := uuid.New()
	b.register(tenant, "money", `{"type":"number","maximum":100}`)
	b.register(tenant, "money", `{"type":"number","maximum":1000}`)
	order := func(ref string) string {
		return `{"type":"object","properties":{"total":{"$ref":"` + ref + `"}},"required":["total"]}`
	}
	b.register(tenant, "order.placed", order("urn:prost:schema:money:1"))

	// money 2 accepts every total money 1 did: compatible, not a changed
	// reference.
	res, err := b.reg.CheckCompatibility(ctx, tenant, "order.placed", "", []byte(order("urn:prost:schema:money:2")))
	require.NoError(t, err)
	require.True(t, res.Compatible, "%v", res.Messages)
	require.Len(t, res.Differences, 1)
	require.Equal(t, schemacompat.MaximumIncreased, res.Differences[0].Type)
	require.Equal(t, "#/properties/total/maximum", res.Differences[0].Pointer)
	require.Equal(t, 2, b.register(tenant, "order.placed", order("urn:prost:schema:money:2")))

	// Back to money 1 narrows the total, named where it changed. (The
	// title keeps it from being version 1 again.)
	_, _, err = b.reg.Register(ctx, tenant, "order.placed", []byte(`{"title":"order",`+order("urn:prost:schema:money:1")[1:]))
	var ie *registry.IncompatibleError
	require.True(t, errors.As(err, &ie), "%v", err)
	require.Len(t, ie.Result.Messages, 1)
	require.Contains(t, ie.Result.Messages[0], "MAXIMUM_DECREASED at #/properties/total/maximum")

	// The referenced schema written out in place is the same schema.
	res, err = b.reg.CheckCompatibility(ctx, tenant, "order.placed", "latest", []byte(`{"type":"object","properties":{"total":{"type":"number","maximum":1000}},"required":["total"]}`))
	require.NoError(t, err)
	require.True(t, res.Compatible, "%v", res.Messages)
	require.Empty(t, res.Differences)

	// A version deleted since it was referenced is compared by its name.
	_, err = b.reg.DeleteVersion(ctx, tenant, "money", "1", false)
	require.NoError(t, err)
	res, err = b.reg.CheckCompatibility(ctx, tenant, "order.placed", "1", []byte(order("urn:prost:schema:money:2")))
	require.NoError(t, err)
	require.False(t, res.Compatible)
	require.Equal(t, schemacompat.SchemaRemoved, res.Differences[0].Type)
	require.Equal(t, "#/properties/total/$ref", res.Differences[0].Pointer)

	// Another tenant's versions are not this tenant's.
	other := uuid.New()
	b.register(other, "money", `{"type":"number","maximum":5}`)
	res, err = b.reg.CheckCompatibility(ctx, tenant, "order.placed", "", []byte(order("urn:prost:schema:money:2")))
	require.NoError(t, err)
	require.True(t, res.Compatible, "%v", res.Messages)
}
