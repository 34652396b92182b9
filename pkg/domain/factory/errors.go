package factory

import (
	"github.com/prost-platform/prost/pkg/problem"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrRunNotFound: no such run for this tenant (another tenant's runs are
	// not found either).
	ErrRunNotFound = problem.Errorf(problem.NotFound, "no such factory run")
	// ErrArtifactNotFound: the run has no artifact of that name.
	ErrArtifactNotFound = problem.Errorf(problem.NotFound, "the run has no artifact of that name")
	// ErrNotAwaitingApproval: approve or reject asked of a run that is not
	// waiting at its approval stage.
	ErrNotAwaitingApproval = problem.Errorf(problem.Conflict, "the run is not waiting for an approval")
	// ErrRunFinished: cancel asked of a run that has ended.
	ErrRunFinished = problem.Errorf(problem.Conflict, "the run has already ended")
	// ErrRunActive: rerun asked of a run that has not ended (cancel it first).
	ErrRunActive = problem.Errorf(problem.Conflict, "the run has not ended: cancel it before running it again")
	// ErrNoPack0: a request without a Pack0 for a module that never had one.
	ErrNoPack0 = problem.On(problem.Invalid, "pack0", "the module has no earlier run to take its Pack0 from: send one")
	// ErrNoSigningKey: a run cannot sign because the server has no
	// PROST_SECRETS_KEY to seal the tenant's signing key with.
	ErrNoSigningKey = problem.Errorf(problem.Unavailable, "the factory cannot sign: the server has no PROST_SECRETS_KEY to seal signing keys with")
	// ErrNoEngine: the server runs no factory engine to start runs with.
	ErrNoEngine = problem.Errorf(problem.Unavailable, "the factory is not available on this server")
)
