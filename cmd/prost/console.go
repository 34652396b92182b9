package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"time"

	"github.com/prost-platform/prost/pkg/console"
	"github.com/prost-platform/prost/pkg/console/consolehttp"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/problem"
)

// consoleVerifier checks console sign-ins against the App store and the
// admin token, and tells whether a session's principal is unchanged.
type consoleVerifier struct {
	apps       *apps.Store
	adminToken string
}

// stamp of a tenant session: the App's updated_at, which a rotated secret,
// a disable and an enable all move.
func appStamp(a apps.App) string { return a.UpdatedAt.UTC().Format(time.RFC3339Nano) }

func (v consoleVerifier) Tenant(ctx context.Context, key, secret string) (consolehttp.Principal, error) {
	a, err := v.apps.Authenticate(ctx, key, secret)
	if err != nil {
		return consolehttp.Principal{}, err
	}
	return consolehttp.Principal{TenantID: a.ID, Name: a.Name, Stamp: appStamp(a)}, nil
}

var errAppChanged = problem.Errorf(problem.Unauthenticated, "the App's credentials or status changed since sign-in")

var errConsoleAdmin = problem.Errorf(problem.Unauthenticated, "wrong admin token (PROST_ADMIN_TOKEN)")

func (v consoleVerifier) Operator(_ context.Context, token string) (consolehttp.Principal, error) {
	want, got := sha256.Sum256([]byte(v.adminToken)), sha256.Sum256([]byte(token))
	if v.adminToken == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return consolehttp.Principal{}, errConsoleAdmin
	}
	return consolehttp.Principal{Name: "operator", Stamp: console.OperatorStamp(v.adminToken)}, nil
}

func (v consoleVerifier) Current(ctx context.Context, s console.Session) error {
	if s.Kind == console.KindOperator {
		if !console.CheckOperatorStamp(v.adminToken, s.Stamp) {
			return errConsoleAdmin
		}
		return nil
	}
	a, err := v.apps.Get(ctx, s.TenantID)
	if err != nil {
		return err
	}
	if a.Status != apps.StatusActive {
		return apps.ErrDisabled
	}
	if appStamp(a) != s.Stamp {
		return errAppChanged
	}
	return nil
}
