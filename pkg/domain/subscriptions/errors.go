package subscriptions

import "github.com/prost-platform/prost/pkg/problem"

// Errors of the subscriptions domain, each with its problem kind.
var (
	// ErrNotFound: no subscription with that id for this tenant (another
	// tenant's subscriptions are not found either).
	ErrNotFound = problem.Errorf(problem.NotFound, "no subscription with that id")
	// ErrTooMany: the tenant has MaxPerTenant subscriptions already.
	ErrTooMany = problem.Errorf(problem.Conflict, "too many subscriptions: delete one first (at most %d per App)", MaxPerTenant)
	// ErrNoSecretsKey: HTTP subscriptions need PROST_SECRETS_KEY to seal
	// their signing secrets.
	ErrNoSecretsKey = problem.Errorf(problem.Unavailable, "HTTP subscriptions are unavailable: the gateway has no PROST_SECRETS_KEY to seal signing secrets")
	// ErrNoBus: NATS subscriptions need the private bus's key set.
	ErrNoBus = problem.Errorf(problem.Unavailable, "NATS subscriptions are unavailable: the gateway has no key set of the private bus (PROST_NATS_AUTH_DIR)")
	// ErrNotNATS: credentials exist only for NATS subscriptions.
	ErrNotNATS = problem.Errorf(problem.Conflict, "only NATS subscriptions have credentials")
	// ErrNotHTTP: attempts, recover and test exist only for HTTP subscriptions.
	ErrNotHTTP = problem.Errorf(problem.Conflict, "only HTTP subscriptions have deliveries")
	// ErrCredentialsIssued: the credentials were handed out already; they
	// are shown once.
	ErrCredentialsIssued = problem.Errorf(problem.Conflict, "the credentials of this subscription were issued already and are shown once; rotate them (POST .../credentials/rotate) to get new ones")
	// ErrDisabled: a disabled subscription sends nothing.
	ErrDisabled = problem.Errorf(problem.Conflict, "the subscription is disabled; enable it first (PATCH {\"status\":\"active\"})")
)
