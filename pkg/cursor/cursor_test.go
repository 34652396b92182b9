package cursor_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/cursor"
	"github.com/prost-platform/prost/pkg/problem"
)

func TestRoundTrip(t *testing.T) {
	n, err := cursor.ParseInt("e", cursor.Int("e", 42))
	require.NoError(t, err)
	require.EqualValues(t, 42, n)
	s, err := cursor.ParseString("c", cursor.String("c", "order.placed"))
	require.NoError(t, err)
	require.Equal(t, "order.placed", s)
	n, err = cursor.ParseInt("e", "")
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestInvalid(t *testing.T) {
	for _, c := range []string{"!!", cursor.Int("a", 1), cursor.String("e", "x"), cursor.Int("e", 1) + "=", cursor.String("e", "")} {
		_, err := cursor.ParseInt("e", c)
		require.ErrorIs(t, err, cursor.ErrInvalid, c)
		require.True(t, errors.Is(err, problem.Malformed))
		p := problem.From(err)
		require.Equal(t, 400, p.Status)
		require.Equal(t, "cursor", p.Errors[0].Field)
	}
}
