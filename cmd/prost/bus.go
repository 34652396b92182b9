package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prost-platform/prost/pkg/natsauth"
	"github.com/prost-platform/prost/pkg/natsembed"
)

// The private bus. `prost dev` generates the embedded server's key set into
// PROST_DATA_DIR/nats-auth on first start (or uses PROST_NATS_AUTH_DIR) and
// runs the server in operator mode; every service connects with the
// service user's credentials. `prost serve` connects with PROST_NATS_CREDS,
// or the service credentials of PROST_NATS_AUTH_DIR; the gateway also needs
// PROST_NATS_AUTH_DIR to mint and revoke tenants' NATS credentials.

// devAuthDir is where `prost dev` keeps the embedded server's key set.
func (e env) devAuthDir() string {
	if e.NATSAuthDir != "" {
		return e.NATSAuthDir
	}
	return filepath.Join(e.DataDir, "nats-auth")
}

// connectBus starts the embedded nats-server when asked and NATS_URL is
// unset, then connects to NATS as PROST's service user and, when the key set
// is known, as the system user that pushes revocations.
func (p *platform) connectBus(allowEmbedded bool) error {
	e := p.env
	p.natsURL = e.NATSURL
	var creds []byte
	if p.natsURL == "" {
		if !allowEmbedded {
			return errors.New("NATS_URL is required for prost serve (prost dev embeds a server)")
		}
		keys, created, err := natsauth.Ensure(e.devAuthDir())
		if err != nil {
			return fmt.Errorf("nats credentials: %w", err)
		}
		if created {
			p.log.Info("generated the embedded nats-server's operator, accounts and credentials", "dir", e.devAuthDir())
		}
		p.keys = keys
		store := filepath.Join(e.DataDir, "nats")
		if err := moveGlobalAccount(store, keys.ProstAccount()); err != nil {
			return err
		}
		p.embedded, err = natsembed.Start(natsembed.Config{
			Addr:       e.EmbeddedNATSAddr,
			StoreDir:   store,
			SyncAlways: e.SyncAlwaysEmbedded,
			Accounts: &natsembed.Accounts{OperatorJWT: keys.OperatorJWT, Preload: keys.Preload(),
				ResolverDir: filepath.Join(store, "jwt")},
		})
		if errors.Is(err, syscall.EADDRINUSE) {
			return exitError{code: 1, msg: fmt.Sprintf("%s is in use; set PROST_EMBEDDED_NATS_ADDR to a free address (or NATS_URL to use a running NATS server)", e.EmbeddedNATSAddr)}
		}
		if err != nil {
			return err
		}
		p.natsURL = p.embedded.URL()
		creds = keys.ServiceCreds
		p.log.Info("embedded nats-server started", "url", p.natsURL, "store", store, "sync_always", e.SyncAlwaysEmbedded,
			"credentials", filepath.Join(e.devAuthDir(), natsauth.FileServiceCreds))
	} else {
		if e.NATSAuthDir != "" {
			keys, err := natsauth.Load(e.NATSAuthDir)
			if err != nil {
				return fmt.Errorf("PROST_NATS_AUTH_DIR: %w", err)
			}
			p.keys = keys
			creds = keys.ServiceCreds
		}
		if e.NATSCreds != "" {
			b, err := os.ReadFile(e.NATSCreds)
			if err != nil {
				return fmt.Errorf("PROST_NATS_CREDS: %w", err)
			}
			creds = b
		}
		if creds == nil {
			p.log.Warn("connecting to NATS without credentials: set PROST_NATS_CREDS (or PROST_NATS_AUTH_DIR) and run the server in operator mode to keep the bus private (docs/subscriptions.md)")
		}
	}
	opts := []nats.Option{nats.Name("prost"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				p.log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { p.log.Info("nats reconnected") })}
	if creds != nil {
		o, err := natsauth.ConnectOption(creds)
		if err != nil {
			return fmt.Errorf("nats credentials: %w", err)
		}
		opts = append(opts, o)
	}
	var err error
	if p.nc, err = nats.Connect(p.natsURL, opts...); err != nil {
		return fmt.Errorf("nats: connect %s: %w", p.natsURL, err)
	}
	if p.keys != nil && p.keys.OperatorSigning != nil {
		o, err := natsauth.ConnectOption(p.keys.SysCreds)
		if err != nil {
			return fmt.Errorf("nats system credentials: %w", err)
		}
		p.sysNC, err = nats.Connect(p.natsURL, o, nats.Name("prost-sys"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
		if err != nil {
			return fmt.Errorf("nats: connect %s as the system user: %w", p.natsURL, err)
		}
		if p.natsAccounts, err = natsauth.NewAccounts(p.keys, p.sysNC); err != nil {
			return err
		}
	}
	return nil
}

// moveGlobalAccount moves JetStream data written before the bus was private
// (the global account, $G) to the PROST account, where operator mode looks
// for it, so an existing dev data directory keeps its streams.
func moveGlobalAccount(storeDir, account string) error {
	from := filepath.Join(storeDir, "jetstream", "$G")
	to := filepath.Join(storeDir, "jetstream", account)
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("move the embedded server's streams to the PROST account: %w", err)
	}
	return nil
}
