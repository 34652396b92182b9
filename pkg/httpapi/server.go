package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the servers PROST runs.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultShutdownTimeout   = 15 * time.Second
)

// Server serves Handler on Listener as a lifecycle component: Run serves
// until its context ends, then shuts down gracefully, letting requests in
// progress finish for up to ShutdownTimeout.
type Server struct {
	Listener net.Listener
	Handler  http.Handler
	// ShutdownTimeout defaults to DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Run serves until ctx ends. It returns nil after a graceful shutdown, and
// the serving error when serving stops by itself.
func (s *Server) Run(ctx context.Context) error {
	stopping := make(chan struct{})
	base := context.WithValue(context.WithoutCancel(ctx), stoppingKey, (<-chan struct{})(stopping))
	srv := &http.Server{Handler: s.Handler, ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout,
		WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout, MaxHeaderBytes: DefaultMaxHeaderBytes,
		BaseContext: func(net.Listener) context.Context { return base }}
	// Shutdown waits for requests in progress; long-lived ones (event
	// streams) end when Stopping closes.
	srv.RegisterOnShutdown(func() { close(stopping) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.Listener) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	timeout := s.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil && s.Logger != nil {
		s.Logger.Warn("http shutdown", "addr", s.Listener.Addr().String(), "error", err)
	}
	return err
}

type stoppingKeyType struct{}

var stoppingKey stoppingKeyType

// Stopping returns a channel closed when the Server serving the request
// begins shutting down: long-lived responses (event streams) end then, so
// the graceful shutdown need not wait for them. It is nil (never ready)
// for requests not served by a Server.
func Stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey).(<-chan struct{})
	return ch
}
