package natsauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"

	"github.com/prost-platform/prost/pkg/natsauth/internal/natsauthdb"
)

// DefaultPushTimeout bounds the wait for the servers to accept an account
// JWT.
const DefaultPushTimeout = 5 * time.Second

// ErrCannotRevoke means the key set holds no operator signing key.
var ErrCannotRevoke = errors.New("natsauth: the key set has no operator signing key (" + FileOperatorSigning + ")")

// Accounts keeps the tenants account JWT on the servers current. The
// revocations are rows in Postgres (nats_revocations); every change re-signs
// the account JWT with all of them, under a lock, and pushes it to the
// servers as the system user, which drops the revoked users' connections at
// once. The last JWT pushed is kept (nats_account_jwts) so the next one is
// always newer: servers keep the newest JWT they saw, by issue time.
type Accounts struct {
	keys *KeySet
	sys  *nats.Conn
	// PushTimeout defaults to DefaultPushTimeout.
	PushTimeout time.Duration
}

// NewAccounts returns Accounts pushing through sys, a connection made with
// the key set's SysCreds.
func NewAccounts(keys *KeySet, sys *nats.Conn) (*Accounts, error) {
	if keys.OperatorSigning == nil {
		return nil, ErrCannotRevoke
	}
	return &Accounts{keys: keys, sys: sys}, nil
}

// DB is what the Accounts methods work in: a transaction.
type DB = natsauthdb.DBTX

// RevokeTx revokes the users (public keys) inside tx: it records the
// revocations and pushes the re-signed account JWT before returning, so the
// users are refused from the moment RevokeTx returns nil. If tx then rolls
// back, the servers still refuse the users until the next push (a newer JWT
// without them); revoke only users that are being dropped anyway.
func (a *Accounts) RevokeTx(ctx context.Context, tx pgx.Tx, userKeys []string) error {
	if len(userKeys) == 0 {
		return nil
	}
	acc := a.keys.TenantsAccount()
	if err := natsauthdb.New(tx).InsertRevocations(ctx, natsauthdb.InsertRevocationsParams{Account: acc, UserKeys: userKeys}); err != nil {
		return fmt.Errorf("natsauth: record revocations: %w", err)
	}
	return a.publishTx(ctx, tx)
}

// Sync pushes the tenants account JWT with every recorded revocation: run it
// when PROST starts, so a server that missed pushes (a new one, or one whose
// resolver directory was lost) refuses every revoked user again.
func (a *Accounts) Sync(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return a.publishTx(ctx, tx) })
}

func (a *Accounts) publishTx(ctx context.Context, tx pgx.Tx) error {
	acc := a.keys.TenantsAccount()
	q := natsauthdb.New(tx)
	if err := q.LockAccount(ctx, acc); err != nil {
		return fmt.Errorf("natsauth: lock: %w", err)
	}
	prev, err := q.GetAccountJWT(ctx, acc)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("natsauth: read the account JWT: %w", err)
	}
	revs, err := q.ListRevocations(ctx, acc)
	if err != nil {
		return fmt.Errorf("natsauth: read revocations: %w", err)
	}
	claims, err := jwt.DecodeAccountClaims(a.keys.TenantsAccountJWT)
	if err != nil {
		return err
	}
	for _, r := range revs {
		claims.RevokeAt(r.UserKey, r.RevokedAt)
	}
	j, err := encodeNewer(ctx, claims, prev, a.keys)
	if err != nil {
		return err
	}
	if err := a.push(ctx, acc, j); err != nil {
		return err
	}
	if err := q.PutAccountJWT(ctx, natsauthdb.PutAccountJWTParams{Account: acc, Jwt: j}); err != nil {
		return fmt.Errorf("natsauth: store the account JWT: %w", err)
	}
	return nil
}

// encodeNewer signs claims so that the JWT's issue time is later than
// prev's. jwt/v2 derives a JWT's id from its issuer, subject, name and issue
// second but not its content, and a server keeps a JWT only when it is
// newer than the one it has: two versions signed in the same second would
// leave the server with the first.
func encodeNewer(ctx context.Context, claims *jwt.AccountClaims, prev string, k *KeySet) (string, error) {
	if prev != "" {
		if old, err := jwt.DecodeAccountClaims(prev); err == nil {
			if wait := time.Until(time.Unix(old.IssuedAt+1, 0)); wait > 0 {
				select {
				case <-ctx.Done():
					return "", ctx.Err()
				case <-time.After(wait):
				}
			}
		}
	}
	j, err := claims.Encode(k.OperatorSigning)
	if err != nil {
		return "", fmt.Errorf("natsauth: sign the account JWT: %w", err)
	}
	return j, nil
}

// push sends an account JWT to the servers through the system account.
func (a *Accounts) push(ctx context.Context, account, accountJWT string) error {
	timeout := a.PushTimeout
	if timeout <= 0 {
		timeout = DefaultPushTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := a.sys.RequestWithContext(rctx, "$SYS.REQ.ACCOUNT."+account+".CLAIMS.UPDATE", []byte(accountJWT))
	if err != nil {
		return fmt.Errorf("natsauth: push the %s account JWT: %w", AccountTenants, err)
	}
	var r struct {
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return fmt.Errorf("natsauth: push: unreadable answer %q", msg.Data)
	}
	if r.Error != nil {
		return fmt.Errorf("natsauth: push the %s account JWT: %s (%d)", AccountTenants, r.Error.Description, r.Error.Code)
	}
	return nil
}
