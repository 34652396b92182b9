// Package natsembed runs a NATS server with JetStream inside the PROST process.
// It is what `prost dev` uses when NATS_URL is not set, and what the tests use.
package natsembed

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// DefaultAddr is where the embedded server listens when Config sets no
// Addr (4222 is left to a system nats-server).
const DefaultAddr = "127.0.0.1:4223"

// Config describes the embedded server. The zero value is not usable: StoreDir is required.
type Config struct {
	// Addr is host:port to listen on. Port 0 picks a free port.
	// Defaults to DefaultAddr.
	Addr string
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// SyncAlways makes JetStream fsync every write before acknowledging it
	// (sync_interval: always). PROST runs a single embedded node with it on,
	// because a lone node with the default two-minute fsync interval can lose
	// acknowledged writes on power failure (Jepsen, NATS 2.12.1). Defaults to
	// false in the zero value; callers that hold real data set it.
	SyncAlways bool
	// ServerName names the server. Defaults to "prost-embedded".
	ServerName string
	// ReadyTimeout bounds the wait for the server to accept connections. Defaults to 10s.
	ReadyTimeout time.Duration
	// Accounts, when set, runs the server in operator mode: every client
	// must authenticate as a user of one of the operator's accounts
	// (pkg/natsauth makes them). nil (the default) accepts any client.
	Accounts *Accounts
}

// Accounts is the operator-mode setup of a server.
type Accounts struct {
	// OperatorJWT is the operator the server trusts; its system account
	// becomes the server's.
	OperatorJWT string
	// Preload maps account public keys to the account JWTs stored into the
	// resolver at start. A JWT the resolver already holds in a newer version
	// (pushed since) is kept.
	Preload map[string]string
	// ResolverDir is the full resolver's directory, which keeps pushed
	// account JWTs (revocations) across restarts. Required.
	ResolverDir string
}

// Server is a running embedded nats-server.
type Server struct {
	*server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "prost-embedded"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("natsembed: address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("natsembed: port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// The server listens in the background and only logs a taken port:
		// find out here, with an error that says so (errors.Is
		// syscall.EADDRINUSE).
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("natsembed: listen on %s: %w", cfg.Addr, err)
		}
		_ = ln.Close()
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	}
	if cfg.SyncAlways {
		opts.SyncAlways = true
	}
	if a := cfg.Accounts; a != nil {
		if err := operatorMode(opts, a); err != nil {
			return nil, err
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(cfg.ReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("natsembed: server on %s not ready after %s", cfg.Addr, cfg.ReadyTimeout)
	}
	return &Server{Server: s}, nil
}

// operatorMode makes opts trust a's operator with a full account resolver in
// a.ResolverDir, seeded with a.Preload.
func operatorMode(opts *server.Options, a *Accounts) error {
	opc, err := jwt.DecodeOperatorClaims(a.OperatorJWT)
	if err != nil {
		return fmt.Errorf("natsembed: operator JWT: %w", err)
	}
	if a.ResolverDir == "" {
		return errors.New("natsembed: Accounts.ResolverDir is required")
	}
	if err := os.MkdirAll(a.ResolverDir, 0o700); err != nil {
		return fmt.Errorf("natsembed: %w", err)
	}
	res, err := server.NewDirAccResolver(a.ResolverDir, 0, 0, server.NoDelete)
	if err != nil {
		return fmt.Errorf("natsembed: resolver: %w", err)
	}
	for _, pub := range slices.Sorted(maps.Keys(a.Preload)) {
		if err := res.Store(pub, a.Preload[pub]); err != nil {
			res.Close()
			return fmt.Errorf("natsembed: preload %s: %w", pub, err)
		}
	}
	opts.TrustedOperators = []*jwt.OperatorClaims{opc}
	opts.AccountResolver = res
	opts.SystemAccount = opc.SystemAccount
	return nil
}

// URL is the client URL of the running server.
func (s *Server) URL() string { return s.ClientURL() }

// Stop shuts the server down and waits for it to finish.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}
