package dataprotect

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/secretdata"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// KEK is the key encryption key: it wraps and unwraps data keys and tenants'
// pseudonymisation keys, always with associated data naming the key's
// owner. [ParseKEK] makes one from configuration (PROST_PRIVACY_KEK); a key
// management service plugs in as any tink.AEADWithContext: Vault Transit
// (github.com/tink-crypto/tink-go-hcvault), AWS KMS (tink-go-awskms) or
// Google Cloud KMS (tink-go-gcpkms) each return a tink.AEAD for a key URI,
// which [FromAEAD] adapts. Version names the key that wraps new keys; keys
// wrapped under another version are re-wrapped by [Keyring.Rewrap].
type KEK interface {
	tink.AEADWithContext
	// Version is the version new wraps are made with; 0 when the KEK
	// versions itself (a KMS).
	Version() uint32
}

// LocalKEK is a KEK held in memory: a Tink keyset of AES-256-GCM keys whose
// key ids are their versions. It is safe for concurrent use.
type LocalKEK struct {
	aead    tink.AEAD
	primary uint32
}

// ParseKEK reads a KEK from configuration: comma-separated <version>:<key>
// entries, each key the base64 of 32 random bytes and each version a
// distinct positive integer. The highest version wraps new keys; every
// listed version unwraps. To rotate, add a higher version, let the
// retention job re-wrap the stored keys (see docs/privacy.md), then remove
// the old one.
func ParseKEK(spec string) (*LocalKEK, error) {
	params, err := aesgcm.NewParameters(aesgcm.ParametersOpts{KeySizeInBytes: 32, IVSizeInBytes: 12, TagSizeInBytes: 16, Variant: aesgcm.VariantTink})
	if err != nil {
		return nil, err
	}
	m := keyset.NewManager()
	seen := map[uint32]bool{}
	var primary uint32
	for _, part := range strings.Split(strings.TrimSpace(spec), ",") {
		v, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, errors.New("dataprotect: KEK: want <version>:<base64 of 32 bytes>[,...]")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("dataprotect: KEK: version %q: want a positive integer", v)
		}
		ver := uint32(n)
		if seen[ver] {
			return nil, fmt.Errorf("dataprotect: KEK: version %d is listed twice", ver)
		}
		seen[ver] = true
		raw, err := decodeBase64(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("dataprotect: KEK version %d: want the base64 of 32 bytes", ver)
		}
		k, err := aesgcm.NewKey(secretdata.NewBytesFromData(raw, insecuresecretdataaccess.Token{}), ver, params)
		if err != nil {
			return nil, err
		}
		if _, err := m.AddKey(k); err != nil {
			return nil, err
		}
		primary = max(primary, ver)
	}
	if err := m.SetPrimary(primary); err != nil {
		return nil, err
	}
	h, err := m.Handle()
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, err
	}
	return &LocalKEK{aead: a, primary: primary}, nil
}

// NewKEKSpec returns a fresh KEK specification of one version, for
// configuration ("1:<base64>").
func NewKEKSpec() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "1:" + base64.StdEncoding.EncodeToString(b[:])
}

func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// Version is the highest version: the one new wraps are made with.
func (k *LocalKEK) Version() uint32 { return k.primary }

// EncryptWithContext wraps under the highest version.
func (k *LocalKEK) EncryptWithContext(_ context.Context, pt, ad []byte) ([]byte, error) {
	return k.aead.Encrypt(pt, ad)
}

// DecryptWithContext unwraps under whichever listed version wrapped.
func (k *LocalKEK) DecryptWithContext(_ context.Context, ct, ad []byte) ([]byte, error) {
	return k.aead.Decrypt(ct, ad)
}

// FromAEAD adapts a KMS's tink.AEAD (which versions its keys itself) to a
// KEK of version 0.
func FromAEAD(a tink.AEAD) KEK { return kmsKEK{a} }

type kmsKEK struct{ a tink.AEAD }

func (k kmsKEK) Version() uint32 { return 0 }
func (k kmsKEK) EncryptWithContext(_ context.Context, pt, ad []byte) ([]byte, error) {
	return k.a.Encrypt(pt, ad)
}
func (k kmsKEK) DecryptWithContext(_ context.Context, ct, ad []byte) ([]byte, error) {
	return k.a.Decrypt(ct, ad)
}
