// Package natsauth makes PROST's NATS bus private with the NATS ecosystem's
// own mechanism: operator mode with decentralized JWT authentication
// (github.com/nats-io/jwt/v2, github.com/nats-io/nkeys).
//
// PROST generates and owns the operator (it acts as its own nsc). Every
// connection needs a user JWT and its nkey seed (a .creds file); anonymous
// and user/password connections are refused. There are three accounts:
//
//   - SYS, the system account, with one user that pushes account JWT
//     updates (revocations) to the servers;
//   - PROST, with JetStream, holding PROST's streams and one service user
//     with every right inside the account (PROST_NATS_CREDS);
//   - PROST_TENANTS, without JetStream, holding the users minted for
//     tenants' NATS subscriptions. It imports, under the API prefix
//     APIPrefix, only the three consumer-side services of the streams PROST
//     exports (fetch, consumer info, ack), and each tenant user may publish
//     to those services for its one consumer only.
//
// Tenant users never live in the PROST account: there, the reply subject of
// a pull request is not checked against the user's permissions, and a user
// allowed only to fetch from its consumer can make the server write the
// fetched messages into any stream of the account. In PROST_TENANTS the
// reply subject lives in an account with no streams.
//
// Revoking a tenant user adds its public key to the PROST_TENANTS account
// JWT, re-signed with the operator signing key and pushed to the servers
// through the system account; the server drops the user's connections at
// once and refuses new ones. See Accounts.
package natsauth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// The files of a key directory (`prost dev` keeps one in
// PROST_DATA_DIR/nats-auth; `prost nats-auth init` writes one). Every file is
// mode 0600 and the directory 0700.
const (
	FileOperatorJWT       = "operator.jwt"        // the operator (servers trust it)
	FileOperatorSeed      = "operator.nk"         // only to re-sign the operator JWT: keep offline
	FileOperatorSigning   = "operator-signing.nk" // signs account JWTs: revocations
	FileSysAccountJWT     = "sys-account.jwt"     // preloaded by the servers
	FileProstAccountJWT   = "prost-account.jwt"   // preloaded by the servers
	FileTenantsAccountJWT = "tenants-account.jwt" // preloaded; the template revocations are added to
	FileTenantsSigning    = "tenants-signing.nk"  // mints tenant users
	FileServiceCreds      = "prost-service.creds" // every PROST service (PROST_NATS_CREDS)
	FileSysCreds          = "sys.creds"           // pushes account JWT updates
)

// Account names.
const (
	AccountSys     = "SYS"
	AccountProst   = "PROST"
	AccountTenants = "PROST_TENANTS"
)

// APIPrefix is the JetStream API prefix tenant users work under
// (jetstream.NewWithAPIPrefix). An account without JetStream answers
// $JS.API.> itself ("JetStream not enabled"), which would shadow the
// imported consumer info service, so the imports are renamed under it.
const APIPrefix = "PROST.JSAPI"

// ExportedStreams are the streams whose consumers tenants may read, through
// the services PROST exports to PROST_TENANTS.
var ExportedStreams = []string{"PROST_EVENTS"}

// pullResponseThreshold is how long a tenant's pull request may be answered
// by the exporting account; it must exceed the consumers'
// MaxRequestExpires (see MaxRequestExpires).
const pullResponseThreshold = 2 * time.Minute

// MaxRequestExpires caps how long a tenant's pull request may wait on the
// server; consumers made for tenants set it.
const MaxRequestExpires = time.Minute

// KeySet is everything PROST generates once: the operator, the three
// accounts and the users PROST itself connects as. Seeds that only
// generation needs (the operator and account identity keys) may be absent
// from a loaded set.
type KeySet struct {
	OperatorJWT     string
	Operator        nkeys.KeyPair // nil when not kept
	OperatorSigning nkeys.KeyPair // nil when not kept: revocations impossible
	SysAccountJWT   string
	ProstAccountJWT string
	// TenantsAccountJWT is the template of the tenants account: its imports
	// and signing key, no revocations.
	TenantsAccountJWT string
	TenantsSigning    nkeys.KeyPair // nil when not kept: no tenant users
	ServiceCreds      []byte
	SysCreds          []byte

	operator *jwt.OperatorClaims
	prost    *jwt.AccountClaims
	tenants  *jwt.AccountClaims
}

func newKey(f func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	kp, err := f()
	if err != nil {
		panic("natsauth: nkeys: " + err.Error()) // only when the system's random source fails
	}
	return kp
}

func publicKey(kp nkeys.KeyPair) string {
	p, err := kp.PublicKey()
	if err != nil {
		panic("natsauth: nkeys: " + err.Error())
	}
	return p
}

func seed(kp nkeys.KeyPair) []byte {
	s, err := kp.Seed()
	if err != nil {
		panic("natsauth: nkeys: " + err.Error())
	}
	return s
}

// Generate makes a new key set.
func Generate() (*KeySet, error) {
	operator := newKey(nkeys.CreateOperator)
	opSigning := newKey(nkeys.CreateOperator)
	sys := newKey(nkeys.CreateAccount)
	prost := newKey(nkeys.CreateAccount)
	prostSigning := newKey(nkeys.CreateAccount)
	tenants := newKey(nkeys.CreateAccount)
	tenantsSigning := newKey(nkeys.CreateAccount)
	k := &KeySet{Operator: operator, OperatorSigning: opSigning, TenantsSigning: tenantsSigning}
	var err error

	oc := jwt.NewOperatorClaims(publicKey(operator))
	oc.Name = "PROST"
	oc.SystemAccount = publicKey(sys)
	oc.SigningKeys.Add(publicKey(opSigning))
	if k.OperatorJWT, err = oc.Encode(operator); err != nil {
		return nil, fmt.Errorf("natsauth: operator: %w", err)
	}

	sc := jwt.NewAccountClaims(publicKey(sys))
	sc.Name = AccountSys
	if k.SysAccountJWT, err = sc.Encode(opSigning); err != nil {
		return nil, fmt.Errorf("natsauth: system account: %w", err)
	}

	ac := jwt.NewAccountClaims(publicKey(prost))
	ac.Name = AccountProst
	// Non-zero JetStream limits switch JetStream on; -1 is unlimited.
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1,
		MaxAckPending: -1, MemoryMaxStreamBytes: -1, DiskMaxStreamBytes: -1}
	ac.SigningKeys.Add(publicKey(prostSigning))
	for _, s := range ExportedStreams {
		// Public exports: only accounts signed by PROST's operator exist on
		// the server, and only PROST_TENANTS imports them.
		ac.Exports.Add(
			&jwt.Export{Name: s + " fetch", Subject: jwt.Subject("$JS.API.CONSUMER.MSG.NEXT." + s + ".*"), Type: jwt.Service,
				ResponseType: jwt.ResponseTypeStream, ResponseThreshold: pullResponseThreshold},
			&jwt.Export{Name: s + " info", Subject: jwt.Subject("$JS.API.CONSUMER.INFO." + s + ".*"), Type: jwt.Service},
			&jwt.Export{Name: s + " ack", Subject: jwt.Subject("$JS.ACK." + s + ".*.>"), Type: jwt.Service},
		)
	}
	if k.ProstAccountJWT, err = ac.Encode(opSigning); err != nil {
		return nil, fmt.Errorf("natsauth: PROST account: %w", err)
	}

	tc := jwt.NewAccountClaims(publicKey(tenants))
	tc.Name = AccountTenants // no JetStream limits: JetStream is off in this account
	tc.SigningKeys.Add(publicKey(tenantsSigning))
	tc.Limits.DisallowBearer = true
	for _, e := range ac.Exports {
		local := strings.Replace(string(e.Subject), "$JS.API.", APIPrefix+".", 1)
		tc.Imports.Add(&jwt.Import{Name: e.Name, Subject: e.Subject, LocalSubject: jwt.RenamingSubject(local),
			Account: publicKey(prost), Type: jwt.Service})
	}
	if k.TenantsAccountJWT, err = tc.Encode(opSigning); err != nil {
		return nil, fmt.Errorf("natsauth: tenants account: %w", err)
	}

	// The service user has no permission lists: every right inside PROST.
	svc := newKey(nkeys.CreateUser)
	uc := jwt.NewUserClaims(publicKey(svc))
	uc.Name = "prost-service"
	uc.IssuerAccount = publicKey(prost)
	ujwt, err := uc.Encode(prostSigning)
	if err != nil {
		return nil, fmt.Errorf("natsauth: service user: %w", err)
	}
	if k.ServiceCreds, err = jwt.FormatUserConfig(ujwt, seed(svc)); err != nil {
		return nil, err
	}
	// The system user is signed by the system account's own key.
	su := newKey(nkeys.CreateUser)
	suc := jwt.NewUserClaims(publicKey(su))
	suc.Name = "prost-sys"
	sjwt, err := suc.Encode(sys)
	if err != nil {
		return nil, fmt.Errorf("natsauth: system user: %w", err)
	}
	if k.SysCreds, err = jwt.FormatUserConfig(sjwt, seed(su)); err != nil {
		return nil, err
	}
	return k, k.decode()
}

// decode parses the JWTs and checks they belong together.
func (k *KeySet) decode() error {
	var err error
	if k.operator, err = jwt.DecodeOperatorClaims(k.OperatorJWT); err != nil {
		return fmt.Errorf("natsauth: %s: %w", FileOperatorJWT, err)
	}
	sys, err := jwt.DecodeAccountClaims(k.SysAccountJWT)
	if err != nil {
		return fmt.Errorf("natsauth: %s: %w", FileSysAccountJWT, err)
	}
	if k.prost, err = jwt.DecodeAccountClaims(k.ProstAccountJWT); err != nil {
		return fmt.Errorf("natsauth: %s: %w", FileProstAccountJWT, err)
	}
	if k.tenants, err = jwt.DecodeAccountClaims(k.TenantsAccountJWT); err != nil {
		return fmt.Errorf("natsauth: %s: %w", FileTenantsAccountJWT, err)
	}
	if sys.Subject != k.operator.SystemAccount {
		return fmt.Errorf("natsauth: %s is not the operator's system account", FileSysAccountJWT)
	}
	if k.OperatorSigning != nil && !k.operator.SigningKeys.Contains(publicKey(k.OperatorSigning)) {
		return fmt.Errorf("natsauth: %s is not a signing key of the operator", FileOperatorSigning)
	}
	if k.TenantsSigning != nil && !k.tenants.SigningKeys.Contains(publicKey(k.TenantsSigning)) {
		return fmt.Errorf("natsauth: %s is not a signing key of the tenants account", FileTenantsSigning)
	}
	return nil
}

// SystemAccount is the public key of the system account.
func (k *KeySet) SystemAccount() string { return k.operator.SystemAccount }

// ProstAccount is the public key of the PROST account (its JetStream
// directory name in operator mode).
func (k *KeySet) ProstAccount() string { return k.prost.Subject }

// TenantsAccount is the public key of the tenants account.
func (k *KeySet) TenantsAccount() string { return k.tenants.Subject }

// OperatorClaims are the decoded operator JWT.
func (k *KeySet) OperatorClaims() *jwt.OperatorClaims { return k.operator }

// Preload maps each account's public key to its JWT: what a server loads
// into its resolver on start (resolver_preload). A newer JWT pushed since
// (revocations) is never replaced by these.
func (k *KeySet) Preload() map[string]string {
	return map[string]string{
		k.operator.SystemAccount: k.SysAccountJWT,
		k.prost.Subject:          k.ProstAccountJWT,
		k.tenants.Subject:        k.TenantsAccountJWT,
	}
}

// Write writes the key set into dir (made with mode 0700 when missing),
// every file 0600, through a temporary directory renamed into place, so a
// crash never leaves half a key set. It refuses to overwrite a directory
// that has a key set already.
func (k *KeySet) Write(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, FileOperatorJWT)); err == nil {
		return fmt.Errorf("natsauth: %s already holds a key set", dir)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files := map[string][]byte{
		FileOperatorJWT:       []byte(k.OperatorJWT + "\n"),
		FileSysAccountJWT:     []byte(k.SysAccountJWT + "\n"),
		FileProstAccountJWT:   []byte(k.ProstAccountJWT + "\n"),
		FileTenantsAccountJWT: []byte(k.TenantsAccountJWT + "\n"),
		FileServiceCreds:      k.ServiceCreds,
		FileSysCreds:          k.SysCreds,
	}
	for name, kp := range map[string]nkeys.KeyPair{FileOperatorSeed: k.Operator, FileOperatorSigning: k.OperatorSigning,
		FileTenantsSigning: k.TenantsSigning} {
		if kp != nil {
			files[name] = append(seed(kp), '\n')
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	// An empty directory in the way (a volume mount point) is filled file
	// by file instead of replaced.
	if entries, err := os.ReadDir(dir); err == nil {
		if len(entries) > 0 {
			return fmt.Errorf("natsauth: %s is not empty and holds no key set", dir)
		}
		for name := range files {
			if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
				return err
			}
		}
		return nil
	}
	return os.Rename(tmp, dir)
}

// Load reads the key set in dir. The seeds are optional: without
// operator-signing.nk no tenant credentials can be revoked, without
// tenants-signing.nk none can be minted.
func Load(dir string) (*KeySet, error) {
	read := func(name string, optional bool) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if optional && errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("natsauth: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	keyPair := func(name string) (nkeys.KeyPair, error) {
		s, err := read(name, true)
		if err != nil || s == "" {
			return nil, err
		}
		kp, err := nkeys.FromSeed([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("natsauth: %s: %w", filepath.Join(dir, name), err)
		}
		return kp, nil
	}
	k := &KeySet{}
	var errs []error
	get := func(dst *string, name string) {
		var err error
		*dst, err = read(name, false)
		errs = append(errs, err)
	}
	get(&k.OperatorJWT, FileOperatorJWT)
	get(&k.SysAccountJWT, FileSysAccountJWT)
	get(&k.ProstAccountJWT, FileProstAccountJWT)
	get(&k.TenantsAccountJWT, FileTenantsAccountJWT)
	var svc, sys string
	get(&svc, FileServiceCreds)
	get(&sys, FileSysCreds)
	k.ServiceCreds, k.SysCreds = []byte(svc+"\n"), []byte(sys+"\n")
	var err error
	k.Operator, err = keyPair(FileOperatorSeed)
	errs = append(errs, err)
	k.OperatorSigning, err = keyPair(FileOperatorSigning)
	errs = append(errs, err)
	k.TenantsSigning, err = keyPair(FileTenantsSigning)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, k.decode()
}

// Ensure loads the key set in dir, or generates and writes one when dir
// holds none. created reports a new set.
func Ensure(dir string) (k *KeySet, created bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, FileOperatorJWT)); err == nil {
		k, err := Load(dir)
		return k, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if k, err = Generate(); err != nil {
		return nil, false, err
	}
	if err := k.Write(dir); err != nil {
		return nil, false, err
	}
	return k, true, nil
}
