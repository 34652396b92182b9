package gatewaysvc

import (
	"context"
	"errors"
	"net/http"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/dlq"
	"github.com/prost-platform/prost/pkg/domain/apps"
	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/problem"
)

// errTenantMismatch is a request naming a tenant other than the caller's.
var errTenantMismatch = errors.New("the event names a tenant other than the authenticated App")

// problemFor maps every error the gateway can meet to its HTTP problem: the
// one place where errors become statuses.
func problemFor(err error) *problem.Problem {
	var p *problem.Problem
	if errors.As(err, &p) {
		return p
	}
	var verr *cloudevent.ValidationError
	var ierr *registry.IngestError
	switch {
	case errors.As(err, &ierr):
		// The events are valid CloudEvents whose data breaks their schema
		// or contract, or whose type is not registered (decision 0006).
		out := problem.New(http.StatusUnprocessableEntity, "the request holds events whose data breaks their schema or contract")
		for _, ip := range ierr.Problems {
			fe := fieldError(ip.Index, ip.Field, ip.Detail)
			fe.Pointer, fe.Keyword = ip.Pointer, ip.Keyword
			out.Errors = append(out.Errors, fe)
		}
		return out
	case errors.As(err, &verr):
		// 400: the request could not be read as CloudEvents; 422: it was
		// read, and an event breaks the CloudEvents rules (decision 0006).
		out := problem.New(http.StatusUnprocessableEntity, "the request holds events that break the CloudEvents rules")
		if verr.Malformed() {
			out = problem.New(http.StatusBadRequest, "the request cannot be read as CloudEvents")
		}
		for _, vp := range verr.Problems {
			out.Errors = append(out.Errors, fieldError(vp.Index, vp.Field, vp.Detail))
		}
		return out
	case errors.Is(err, cloudevent.ErrUnsupportedMediaType):
		return problem.New(http.StatusUnsupportedMediaType, err.Error())
	case errors.Is(err, cloudevent.ErrTooLarge):
		return problem.New(http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, apps.ErrUnauthenticated):
		return problem.New(http.StatusUnauthorized, "missing or invalid X-Prost-App-Key / X-Prost-App-Secret")
	case errors.Is(err, apps.ErrDisabled):
		return problem.New(http.StatusForbidden, "this App is disabled")
	case errors.Is(err, apps.ErrNotFound):
		return problem.New(http.StatusNotFound, "no App with that id")
	case errors.Is(err, apps.ErrInvalidName):
		p := problem.New(http.StatusUnprocessableEntity, err.Error())
		p.Errors = []problem.FieldError{{Field: "name", Detail: err.Error()}}
		return p
	case errors.Is(err, dlq.ErrNotFound):
		return problem.New(http.StatusNotFound, "no dead-letter entry with that id")
	case errors.Is(err, eventstore.ErrBadCursor), errors.Is(err, audit.ErrBadCursor), errors.Is(err, dlq.ErrBadCursor):
		p := problem.New(http.StatusBadRequest, "invalid cursor")
		p.Errors = []problem.FieldError{{Field: "cursor", Detail: "use the next_cursor of a previous page"}}
		return p
	case errors.Is(err, eventstore.ErrOverloaded), errors.Is(err, eventstore.ErrClosed):
		p := problem.New(http.StatusServiceUnavailable, "PROST is overloaded or shutting down; retry later")
		p.RetryAfter = 1
		return p
	case errors.Is(err, context.DeadlineExceeded):
		p := problem.New(http.StatusServiceUnavailable, "the request timed out; retry later")
		p.RetryAfter = 1
		return p
	default:
		return problem.New(http.StatusInternalServerError, "internal error; the request id identifies it in the logs")
	}
}

func fieldError(index int, field, detail string) problem.FieldError {
	fe := problem.FieldError{Field: field, Detail: detail}
	if index >= 0 {
		i := index
		fe.Index = &i
	}
	return fe
}

// badParam is a 400 naming a query parameter.
func badParam(name, detail string) *problem.Problem {
	p := problem.New(http.StatusBadRequest, "invalid query parameter "+name)
	p.Errors = []problem.FieldError{{Field: name, Detail: detail}}
	return p
}
