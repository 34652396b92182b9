package schemacompat

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalidSchema reports a schema whose root is neither a JSON object
	// nor a boolean, JSON bytes that do not parse, or a schema nested deeper
	// than this package follows. It is always wrapped with a detail.
	ErrInvalidSchema = errors.New("schemacompat: invalid schema")

	// ErrUnknownMode reports a compatibility mode other than the seven
	// [Mode] values.
	ErrUnknownMode = errors.New("schemacompat: unknown compatibility mode")

	// ErrUnknownPolicy reports a policy other than STRICT and LENIENT.
	ErrUnknownPolicy = errors.New("schemacompat: unknown compatibility policy")
)

// Policy selects which verdict column of the change-type table applies.
// The zero value ("") means [PolicyStrict].
type Policy string

const (
	// PolicyStrict is the default policy: Confluent's STRICT verdicts. A
	// property added to an open content model is incompatible because old
	// data may hold that property with any value.
	PolicyStrict Policy = "STRICT"
	// PolicyLenient accepts, in addition, the object changes Confluent's
	// LENIENT policy accepts: closing or narrowing additionalProperties and
	// unevaluatedProperties, removing a property from a closed or partially
	// open model, and adding an optional property (or a required property
	// with a default) to an open model. It assumes producers never sent
	// properties the schema did not define.
	PolicyLenient Policy = "LENIENT"
)

// ParsePolicy returns the policy named by s, compared case-insensitively
// after trimming spaces. The empty string yields [PolicyStrict]. Other
// strings yield an error wrapping [ErrUnknownPolicy].
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", string(PolicyStrict):
		return PolicyStrict, nil
	case string(PolicyLenient):
		return PolicyLenient, nil
	default:
		return "", fmt.Errorf("%w: %q", ErrUnknownPolicy, s)
	}
}

// Mode is a schema registry compatibility mode: which earlier versions a new
// version is compared with, and in which direction.
type Mode string

const (
	// ModeBackward: the new version must read data written with the latest
	// version. Confluent's default.
	ModeBackward Mode = "BACKWARD"
	// ModeBackwardTransitive: the new version must read data written with
	// every earlier version.
	ModeBackwardTransitive Mode = "BACKWARD_TRANSITIVE"
	// ModeForward: the latest version must read data written with the new
	// version.
	ModeForward Mode = "FORWARD"
	// ModeForwardTransitive: every earlier version must read data written
	// with the new version.
	ModeForwardTransitive Mode = "FORWARD_TRANSITIVE"
	// ModeFull: both BACKWARD and FORWARD against the latest version.
	ModeFull Mode = "FULL"
	// ModeFullTransitive: both BACKWARD and FORWARD against every earlier
	// version.
	ModeFullTransitive Mode = "FULL_TRANSITIVE"
	// ModeNone: no check; every new version is compatible.
	ModeNone Mode = "NONE"
)

// Modes returns the seven modes in the order of the registry documentation.
func Modes() []Mode {
	return []Mode{
		ModeBackward, ModeBackwardTransitive,
		ModeForward, ModeForwardTransitive,
		ModeFull, ModeFullTransitive,
		ModeNone,
	}
}

// ParseMode returns the mode named by s, compared case-insensitively after
// trimming spaces ("backward_transitive" is [ModeBackwardTransitive]).
// Anything else, including the empty string, yields an error wrapping
// [ErrUnknownMode].
func ParseMode(s string) (Mode, error) {
	u := Mode(strings.ToUpper(strings.TrimSpace(s)))
	for _, m := range Modes() {
		if u == m {
			return m, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownMode, s)
}

// backward reports whether the mode checks that the new version reads old
// data.
func (m Mode) backward() bool {
	return m == ModeBackward || m == ModeBackwardTransitive || m == ModeFull || m == ModeFullTransitive
}

// forward reports whether the mode checks that old versions read new data.
func (m Mode) forward() bool {
	return m == ModeForward || m == ModeForwardTransitive || m == ModeFull || m == ModeFullTransitive
}

// transitive reports whether the mode compares with every earlier version.
func (m Mode) transitive() bool {
	return m == ModeBackwardTransitive || m == ModeForwardTransitive || m == ModeFullTransitive
}
