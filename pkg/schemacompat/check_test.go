package schemacompat

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMode(t *testing.T) {
	t.Parallel()
	for _, m := range Modes() {
		got, err := ParseMode(strings.ToLower(string(m)))
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	got, err := ParseMode(" Full_Transitive ")
	require.NoError(t, err)
	require.Equal(t, ModeFullTransitive, got)
	for _, s := range []string{"", "FULLY", "backward-transitive"} {
		_, err := ParseMode(s)
		require.ErrorIs(t, err, ErrUnknownMode, s)
	}
	require.Len(t, Modes(), 7)
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]Policy{"": PolicyStrict, "strict": PolicyStrict, "STRICT": PolicyStrict, " Lenient": PolicyLenient} {
		got, err := ParsePolicy(s)
		require.NoError(t, err)
		require.Equal(t, want, got, s)
	}
	_, err := ParsePolicy("relaxed")
	require.ErrorIs(t, err, ErrUnknownPolicy)
}

// versionsOf parses JSON texts into schema versions.
func versionsOf(t *testing.T, texts ...string) []any {
	t.Helper()
	out := make([]any, len(texts))
	for i, s := range texts {
		out[i] = mustParse(t, s)
	}
	return out
}

func TestCheckModes(t *testing.T) {
	t.Parallel()
	max10 := `{"type":"number","maximum":10}`
	max15 := `{"type":"number","maximum":15}`
	max20 := `{"type":"number","maximum":20}`
	max20Titled := `{"type":"number","maximum":20,"title":"amount"}`

	tests := []struct {
		name     string
		mode     Mode
		policy   Policy
		versions []string
		next     string
		want     bool
		// wantIn lists substrings each message must contain (first message).
		wantIn []string
	}{
		// A relaxed bound: the new version reads old data, not the reverse.
		{name: "backward, bound relaxed", mode: ModeBackward, versions: []string{max10}, next: max20, want: true},
		{name: "forward, bound relaxed", mode: ModeForward, versions: []string{max10}, next: max20, want: false, wantIn: []string{"version 1 (FORWARD)", "MAXIMUM_DECREASED", "#/maximum"}},
		{name: "backward, bound tightened", mode: ModeBackward, versions: []string{max20}, next: max10, want: false, wantIn: []string{"version 1 (BACKWARD)", "MAXIMUM_DECREASED", "#/maximum"}},
		{name: "forward, bound tightened", mode: ModeForward, versions: []string{max20}, next: max10, want: true},
		{name: "full, bound relaxed", mode: ModeFull, versions: []string{max10}, next: max20, want: false},
		{name: "full, bound tightened", mode: ModeFull, versions: []string{max20}, next: max10, want: false},
		{name: "full, annotation only", mode: ModeFull, versions: []string{max20}, next: max20Titled, want: true},
		{name: "none", mode: ModeNone, versions: []string{`{"type":"string"}`}, next: `{"type":"integer"}`, want: true},
		{name: "no versions yet", mode: ModeFullTransitive, versions: nil, next: max10, want: true},

		// Three versions: the latest relaxed what the new one tightens
		// relative to the first.
		{name: "backward passes against the latest", mode: ModeBackward, versions: []string{max20, max10}, next: max15, want: true},
		{name: "backward transitive fails against v1", mode: ModeBackwardTransitive, versions: []string{max20, max10}, next: max15, want: false, wantIn: []string{"version 1 (BACKWARD)", "MAXIMUM_DECREASED", "#/maximum"}},
		{name: "forward passes against the latest", mode: ModeForward, versions: []string{max10, max20}, next: max15, want: true},
		{name: "forward transitive fails against v1", mode: ModeForwardTransitive, versions: []string{max10, max20}, next: max15, want: false, wantIn: []string{"version 1 (FORWARD)", "MAXIMUM_DECREASED"}},
		{name: "full passes against the latest", mode: ModeFull, versions: []string{max10, max20, max20}, next: max20Titled, want: true},
		{name: "full transitive fails against v1", mode: ModeFullTransitive, versions: []string{max10, max20, max20}, next: max20Titled, want: false, wantIn: []string{"version 1 (FORWARD)", "MAXIMUM_DECREASED"}},
		{name: "backward transitive passes when every step holds", mode: ModeBackwardTransitive, versions: []string{max10, max15}, next: max20, want: true},

		// A property removed then re-added with another type: fine step by
		// step under LENIENT, not against the first version.
		{
			name: "lenient backward, property re-added", mode: ModeBackward, policy: PolicyLenient,
			versions: []string{`{"properties":{"a":{"type":"string"}}}`, `{"properties":{}}`, `{"properties":{"b":{}}}`},
			next:     `{"properties":{"a":{"type":"integer"},"b":{}}}`, want: true,
		},
		{
			name: "lenient backward transitive, property re-added", mode: ModeBackwardTransitive, policy: PolicyLenient,
			versions: []string{`{"properties":{"a":{"type":"string"}}}`, `{"properties":{}}`, `{"properties":{"b":{}}}`},
			next:     `{"properties":{"a":{"type":"integer"},"b":{}}}`, want: false,
			wantIn: []string{"version 1 (BACKWARD)", "TYPE_CHANGED", "#/properties/a/type"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Check(tc.mode, tc.policy, versionsOf(t, tc.versions...), mustParse(t, tc.next))
			require.NoError(t, err)
			require.Equal(t, tc.want, res.Compatible, "%v", res.Messages)
			require.NotNil(t, res.Messages)
			require.NotNil(t, res.Differences)
			if tc.want {
				require.Empty(t, res.Messages)
			} else {
				require.NotEmpty(t, res.Messages)
				for _, s := range tc.wantIn {
					require.Contains(t, res.Messages[0], s)
				}
			}
			for _, d := range res.Differences {
				require.Positive(t, d.Version)
				require.LessOrEqual(t, d.Version, len(tc.versions))
				require.NotEmpty(t, d.Direction)
			}
		})
	}
}

func TestCheckComparisonOrderAndDirection(t *testing.T) {
	t.Parallel()
	versions := versionsOf(t, `{"maximum":1}`, `{"maximum":2}`, `{"maximum":3}`)
	res, err := Check(ModeFullTransitive, PolicyStrict, versions, mustParse(t, `{"maximum":2}`))
	require.NoError(t, err)
	var got []string
	for _, d := range res.Differences {
		got = append(got, strings.Join([]string{string(d.Direction), string(rune('0' + d.Version)), string(d.Type)}, " "))
	}
	require.Equal(t, []string{
		"BACKWARD 3 MAXIMUM_DECREASED",
		"FORWARD 3 MAXIMUM_INCREASED",
		"BACKWARD 1 MAXIMUM_INCREASED",
		"FORWARD 1 MAXIMUM_DECREASED",
	}, got)
	require.Equal(t, []string{
		"version 3 (BACKWARD): MAXIMUM_DECREASED at #/maximum: maximum decreased from 3 to 2",
		"version 1 (FORWARD): MAXIMUM_DECREASED at #/maximum: maximum decreased from 2 to 1",
	}, res.Messages)
}

func TestCheckErrors(t *testing.T) {
	t.Parallel()
	v := versionsOf(t, `{}`)
	_, err := Check("SIDEWAYS", PolicyStrict, v, true)
	require.ErrorIs(t, err, ErrUnknownMode)
	_, err = Check(ModeBackward, "LOOSE", v, true)
	require.ErrorIs(t, err, ErrUnknownPolicy)
	_, err = Check(ModeNone, PolicyStrict, v, 42)
	require.ErrorIs(t, err, ErrInvalidSchema)
	_, err = Check(ModeBackwardTransitive, PolicyStrict, []any{true, "nope", true}, true)
	require.ErrorIs(t, err, ErrInvalidSchema)
	require.Contains(t, err.Error(), "version 2")
	// Case does not matter.
	res, err := Check("backward", "lenient", v, true)
	require.NoError(t, err)
	require.True(t, res.Compatible)
}

func TestResultJSON(t *testing.T) {
	t.Parallel()
	res, err := Check(ModeBackward, PolicyStrict, versionsOf(t, `{}`), mustParse(t, `{}`))
	require.NoError(t, err)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.JSONEq(t, `{"is_compatible":true,"messages":[],"differences":[]}`, string(b))

	res, err = Check(ModeBackward, PolicyStrict, versionsOf(t, `{}`), mustParse(t, `{"type":"string"}`))
	require.NoError(t, err)
	b, err = json.Marshal(res)
	require.NoError(t, err)
	require.JSONEq(t, `{"is_compatible":false,"messages":["version 1 (BACKWARD): TYPE_NARROWED at #/type: accepted types narrowed from [any] to [string]"],
		"differences":[{"type":"TYPE_NARROWED","pointer":"#/type","compatible":false,"message":"accepted types narrowed from [any] to [string]","version":1,"direction":"BACKWARD"}]}`, string(b))
}
