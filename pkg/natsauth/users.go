package natsauth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Limits of a tenant user: pull requests and acks are small, and fetching
// and consuming use a handful of subscriptions.
const (
	tenantMaxPayload = 64 << 10
	tenantMaxSubs    = 20
)

// ConsumerUser describes a tenant user that may read one consumer and
// nothing else.
type ConsumerUser struct {
	// Name is the user's name in its JWT (shown by the server's monitoring).
	Name string
	// Stream and Consumer name the one consumer; Stream must be one of
	// ExportedStreams.
	Stream, Consumer string
	// InboxPrefix is the only subject prefix the user may subscribe to
	// (nats.CustomInboxPrefix); it must be unique to the user, or users could
	// read each other's fetch replies.
	InboxPrefix string
	// Expires, when not zero, ends the credentials.
	Expires time.Time
}

// Minted are new credentials.
type Minted struct {
	// Creds is the .creds file: the user JWT and its nkey seed.
	Creds []byte
	// UserKey is the user's public key, what a revocation names.
	UserKey string
	// IssuedAt is the JWT's issue time (seconds).
	IssuedAt time.Time
}

// ErrCannotMint means the key set holds no tenants signing key.
var ErrCannotMint = errors.New("natsauth: the key set has no tenants signing key (" + FileTenantsSigning + ")")

// MintConsumerUser mints credentials in the tenants account that allow
// exactly: fetching from the consumer and reading its info (under
// APIPrefix), acknowledging its messages, and receiving replies on
// InboxPrefix. Every other publish and subscription is refused by the
// server, and the account has no streams of its own to write into.
func (k *KeySet) MintConsumerUser(u ConsumerUser) (Minted, error) {
	if k.TenantsSigning == nil {
		return Minted{}, ErrCannotMint
	}
	if !slices.Contains(ExportedStreams, u.Stream) {
		return Minted{}, fmt.Errorf("natsauth: stream %q is not exported to tenants", u.Stream)
	}
	if !safeToken(u.Consumer) || !safeToken(u.InboxPrefix) {
		return Minted{}, fmt.Errorf("natsauth: consumer %q and inbox prefix %q must be single subject tokens", u.Consumer, u.InboxPrefix)
	}
	user := newKey(nkeys.CreateUser)
	uc := jwt.NewUserClaims(publicKey(user))
	uc.Name = u.Name
	uc.IssuerAccount = k.tenants.Subject
	uc.Pub.Allow.Add(
		APIPrefix+".CONSUMER.MSG.NEXT."+u.Stream+"."+u.Consumer,
		APIPrefix+".CONSUMER.INFO."+u.Stream+"."+u.Consumer,
		"$JS.ACK."+u.Stream+"."+u.Consumer+".>",
	)
	uc.Sub.Allow.Add(u.InboxPrefix + ".>")
	uc.Limits.Subs = tenantMaxSubs
	uc.Limits.Payload = tenantMaxPayload
	if !u.Expires.IsZero() {
		uc.Expires = u.Expires.Unix()
	}
	ujwt, err := uc.Encode(k.TenantsSigning)
	if err != nil {
		return Minted{}, fmt.Errorf("natsauth: mint: %w", err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed(user))
	if err != nil {
		return Minted{}, err
	}
	return Minted{Creds: creds, UserKey: uc.Subject, IssuedAt: time.Unix(uc.IssuedAt, 0)}, nil
}

// safeToken reports whether s is one subject token with no wildcard.
func safeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' || c == '*' || c == '>' || c <= ' ' || c == 0x7f:
			return false
		}
	}
	return true
}

// ConnectOption returns the nats.Option that authenticates with creds (the
// content of a .creds file).
func ConnectOption(creds []byte) (nats.Option, error) {
	j, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return nil, fmt.Errorf("natsauth: creds: %w", err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(creds)
	if err != nil {
		return nil, fmt.Errorf("natsauth: creds: %w", err)
	}
	s, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("natsauth: creds: %w", err)
	}
	return nats.UserJWTAndSeed(j, string(s)), nil
}
