package factory

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	linkv0 "github.com/in-toto/attestation/go/predicates/link/v0"
	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	testresult "github.com/in-toto/attestation/go/predicates/test_result/v0"
	vulnsv02 "github.com/in-toto/attestation/go/predicates/vulns/v02"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/jackc/pgx/v5"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/domain/factory/internal/factorydb"
)

// The PEC chain (run report, approval, manifest) is made of standard
// records: in-toto Statements v1, each signed as a DSSE envelope with the
// tenant's ed25519 key and stored as an artifact of the run.
const (
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// PredicateLink is an in-toto link: what a stage took and made.
	PredicateLink = "https://in-toto.io/attestation/link/v0.3"
	// PredicateTestResult records the generated tests' outcome.
	PredicateTestResult = "https://in-toto.io/attestation/test-result/v0.1"
	// PredicateVulns records a vulnerability scan.
	PredicateVulns = "https://in-toto.io/attestation/vulns/v0.2"
	// PredicateApproval is PROST's approval record: who decided, what,
	// when, about which build.
	PredicateApproval = "https://prost.dev/factory/approval/v1"
	// PredicateProvenance is SLSA provenance v1: the manifest.
	PredicateProvenance = "https://slsa.dev/provenance/v1"
	// BuildType is the SLSA build type of a factory build.
	BuildType = "https://prost.dev/factory/build/v1"
	// BuilderID is the SLSA builder of every factory build.
	BuilderID = "https://prost.dev/factory"
)

// Names of the PEC artifacts of a run.
const (
	ArtifactApproval = "pec/approval.dsse.json"
	ArtifactManifest = "pec/manifest.dsse.json"
	// ManifestAuditType is the event_type of the audit entry that records a
	// signed manifest's digest in the tenant's chain.
	ManifestAuditType = "factory.manifest.signed"
)

// LinkArtifact is the name of a stage's signed link.
func LinkArtifact(st Stage) string { return "pec/" + string(st) + ".link.dsse.json" }

// Subject names an artifact (or a file of a source tree, as
// "<tree artifact>!<path>") and its sha256.
type Subject struct {
	Name   string `json:"name"`
	Digest string `json:"sha256"`
}

func descriptors(ss []Subject) []*intoto.ResourceDescriptor {
	out := make([]*intoto.ResourceDescriptor, len(ss))
	for i, s := range ss {
		out[i] = &intoto.ResourceDescriptor{Name: s.Name, Digest: map[string]string{"sha256": s.Digest}}
	}
	return out
}

func statement(subjects []Subject, predicateType string, pred proto.Message) (*intoto.Statement, error) {
	b, err := protojson.Marshal(pred)
	if err != nil {
		return nil, err
	}
	ps := &structpb.Struct{}
	if err := protojson.Unmarshal(b, ps); err != nil {
		return nil, err
	}
	st := &intoto.Statement{Type: intoto.StatementTypeUri, Subject: descriptors(subjects), PredicateType: predicateType, Predicate: ps}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("factory: statement: %w", err)
	}
	return st, nil
}

func structOf(m map[string]any) *structpb.Struct {
	if len(m) == 0 {
		return nil
	}
	b, _ := json.Marshal(m)
	var plain map[string]any
	_ = json.Unmarshal(b, &plain)
	s, err := structpb.NewStruct(plain)
	if err != nil {
		return nil
	}
	return s
}

// LinkStatement is a stage's in-toto link: the command it ran, what it read
// (materials) and what it made (products, the statement's subjects).
func LinkStatement(st Stage, command []string, materials, products []Subject, byproducts, env map[string]any) (*intoto.Statement, error) {
	if len(products) == 0 {
		return nil, fmt.Errorf("factory: link of stage %s has no products", st)
	}
	return statement(products, PredicateLink, &linkv0.Link{Name: string(st), Command: command, Materials: descriptors(materials),
		Byproducts: structOf(byproducts), Environment: structOf(env)})
}

// TestResultStatement records the generated tests' outcome for a source tree.
func TestResultStatement(tree Subject, passed bool, passedTests, failedTests []string, command string) (*intoto.Statement, error) {
	res := "PASSED"
	if !passed {
		res = "FAILED"
	}
	return statement([]Subject{tree}, PredicateTestResult, &testresult.TestResult{Result: res,
		Configuration: []*intoto.ResourceDescriptor{{Name: command, Digest: map[string]string{"sha256": Digest([]byte(command))}}},
		PassedTests:   passedTests, FailedTests: failedTests})
}

// VulnScan is what a vulnerability gate reports into the run report.
type VulnScan struct {
	Scanner, Version, DBURI, DBVersion string
	IDs                                []string
	Started, Finished                  time.Time
}

// VulnsStatement records a vulnerability scan of subject.
func VulnsStatement(subject Subject, v VulnScan) (*intoto.Statement, error) {
	res := make([]*vulnsv02.Result, len(v.IDs))
	for i, id := range v.IDs {
		res[i] = &vulnsv02.Result{Id: id}
	}
	return statement([]Subject{subject}, PredicateVulns, &vulnsv02.Vulns{
		Scanner:  &vulnsv02.Scanner{Uri: v.Scanner, Version: &v.Version, Db: &vulnsv02.VulnDatabase{Uri: &v.DBURI, Version: &v.DBVersion}, Result: res},
		Metadata: &vulnsv02.ScanMetadata{ScanStartedOn: timestamppb.New(v.Started), ScanFinishedOn: timestamppb.New(v.Finished)},
	})
}

// ApprovalPredicate is the predicate of the approval record.
type ApprovalPredicate struct {
	RunID     uuid.UUID `json:"run_id"`
	Decision  string    `json:"decision"`
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason,omitempty"`
	Automatic bool      `json:"automatic"`
	DecidedAt time.Time `json:"decided_at"`
}

// ApprovalStatement is the approval record of a build.
func ApprovalStatement(build []Subject, runID uuid.UUID, a Approval) (*intoto.Statement, error) {
	b, _ := json.Marshal(ApprovalPredicate{RunID: runID, Decision: a.Decision, Actor: a.Actor, Reason: a.Reason,
		Automatic: a.Automatic, DecidedAt: a.DecidedAt.UTC()})
	ps := &structpb.Struct{}
	if err := protojson.Unmarshal(b, ps); err != nil {
		return nil, err
	}
	st := &intoto.Statement{Type: intoto.StatementTypeUri, Subject: descriptors(build), PredicateType: PredicateApproval, Predicate: ps}
	return st, st.Validate()
}

// Provenance is what the manifest says about a build.
type Provenance struct {
	RunID                uuid.UUID
	External             map[string]any // module, state, deploy target, the Pack0's digest
	Internal             map[string]any // gates run, healing attempts
	Dependencies         []Subject      // the source tree, the toolchain
	Byproducts           []Subject      // the run report's signed statements and the approval record
	Started, Finished    time.Time
	BuilderVersion       map[string]string
	ResolvedDependencies []string // module@version of every Go dependency
}

// ProvenanceStatement is the manifest: SLSA provenance v1 for build (the
// binary and the source tree it was built from).
func ProvenanceStatement(build []Subject, p Provenance) (*intoto.Statement, error) {
	deps := descriptors(p.Dependencies)
	for _, d := range p.ResolvedDependencies {
		deps = append(deps, &intoto.ResourceDescriptor{Uri: "pkg:golang/" + d})
	}
	prov := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{BuildType: BuildType, ExternalParameters: structOf(p.External),
			InternalParameters: structOf(p.Internal), ResolvedDependencies: deps},
		RunDetails: &slsa.RunDetails{
			Builder:    &slsa.Builder{Id: BuilderID, Version: p.BuilderVersion},
			Metadata:   &slsa.BuildMetadata{InvocationId: p.RunID.String(), StartedOn: timestamppb.New(p.Started), FinishedOn: timestamppb.New(p.Finished)},
			Byproducts: descriptors(p.Byproducts),
		},
	}
	if prov.BuildDefinition.ExternalParameters == nil {
		prov.BuildDefinition.ExternalParameters = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	if err := prov.Validate(); err != nil {
		return nil, fmt.Errorf("factory: provenance: %w", err)
	}
	return statement(build, PredicateProvenance, prov)
}

// edKey is a tenant's signing key as a dsse.SignerVerifier.
type edKey struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func (k edKey) Sign(_ context.Context, data []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, errors.New("no private key")
	}
	return ed25519.Sign(k.priv, data), nil
}

func (k edKey) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(k.pub, data, sig) {
		return errors.New("the signature does not match")
	}
	return nil
}

func (k edKey) KeyID() (string, error)   { return dsse.SHA256KeyID(k.pub) }
func (k edKey) Public() crypto.PublicKey { return k.pub }

// PublicKey is a tenant's signing key as verifiers see it.
type PublicKey struct {
	KeyID     string    `json:"keyid"`
	Algorithm string    `json:"algorithm"`
	PublicKey []byte    `json:"public_key"` // raw ed25519, base64 in JSON
	CreatedAt time.Time `json:"created_at"`
}

// keyAD binds a sealed signing key to its tenant.
func keyAD(tenant uuid.UUID) []byte { return []byte("prost-factory-signing-key:" + tenant.String()) }

// signingKey returns the tenant's signing key, making it on first use.
func (s *Store) signingKey(ctx context.Context, tenant uuid.UUID) (edKey, error) {
	if s.cfg.SecretsKey == nil {
		return edKey{}, ErrNoSigningKey
	}
	row, err := s.q.GetKey(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		pub, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return edKey{}, gerr
		}
		id, _ := dsse.SHA256KeyID(pub)
		if err := s.q.InsertKey(ctx, factorydb.InsertKeyParams{TenantID: tenant, KeyID: id, PublicKey: pub,
			SealedPrivate: s.cfg.SecretsKey.Seal(priv.Seed(), keyAD(tenant))}); err != nil {
			return edKey{}, fmt.Errorf("factory: store signing key: %w", err)
		}
		row, err = s.q.GetKey(ctx, tenant) // another process may have made it first
	}
	if err != nil {
		return edKey{}, fmt.Errorf("factory: read signing key: %w", err)
	}
	seed, err := s.cfg.SecretsKey.Open(row.SealedPrivate, keyAD(tenant))
	if err != nil {
		return edKey{}, fmt.Errorf("factory: open the tenant's signing key (was PROST_SECRETS_KEY changed?): %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return edKey{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
}

// PublicKey returns the tenant's public signing key; nil when the tenant has
// never signed anything.
func (s *Store) PublicKey(ctx context.Context, tenant uuid.UUID) (*PublicKey, error) {
	row, err := s.q.GetKey(ctx, tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("factory: read signing key: %w", err)
	}
	return &PublicKey{KeyID: row.KeyID, Algorithm: "ed25519", PublicKey: row.PublicKey, CreatedAt: row.CreatedAt}, nil
}

// Sign signs st as a DSSE envelope with the tenant's key and returns the
// envelope's JSON.
func (s *Store) Sign(ctx context.Context, tenant uuid.UUID, st *intoto.Statement) ([]byte, error) {
	k, err := s.signingKey(ctx, tenant)
	if err != nil {
		return nil, err
	}
	payload, err := protojson.Marshal(st)
	if err != nil {
		return nil, err
	}
	signer, err := dsse.NewEnvelopeSigner(k)
	if err != nil {
		return nil, err
	}
	env, err := signer.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("factory: sign: %w", err)
	}
	return json.Marshal(env)
}

// SignArtifact signs st and stores the envelope as run k's artifact name.
func (s *Store) SignArtifact(ctx context.Context, k RunKey, st Stage, name string, stmt *intoto.Statement) (Artifact, error) {
	env, err := s.Sign(ctx, k.TenantID, stmt)
	if err != nil {
		return Artifact{}, err
	}
	return s.PutArtifact(ctx, k, st, name, "application/vnd.dsse.envelope.v1+json", env)
}

// RecordManifest stores the signed manifest of run k and appends its digest
// to the tenant's audit chain, in one transaction.
func (s *Store) RecordManifest(ctx context.Context, k RunKey, envelope []byte) (Artifact, error) {
	a := Artifact{Name: ArtifactManifest, Digest: Digest(envelope), MediaType: "application/vnd.dsse.envelope.v1+json",
		Stage: StageManifest, Size: int64(len(envelope)), CreatedAt: time.Now()}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := factorydb.New(tx)
		if err := q.PutBlob(ctx, factorydb.PutBlobParams{TenantID: k.TenantID, Digest: a.Digest, Content: envelope, Size: a.Size}); err != nil {
			return err
		}
		if err := q.PutArtifact(ctx, factorydb.PutArtifactParams{RunID: k.ID, TenantID: k.TenantID, Name: a.Name, Digest: a.Digest,
			MediaType: a.MediaType, Stage: string(a.Stage), Size: a.Size}); err != nil {
			return err
		}
		_, err := audit.AppendTx(ctx, tx, []audit.Record{{TenantID: k.TenantID, EventID: k.ID.String(), EventSource: Source,
			EventType: ManifestAuditType, ActorID: "prost-factory", Action: ManifestAuditAction(a.Digest)}})
		return err
	})
	if err != nil {
		return Artifact{}, fmt.Errorf("factory: record manifest: %w", err)
	}
	return a, nil
}

// ManifestAuditAction is the action of the audit entry of a signed manifest.
func ManifestAuditAction(digest string) string { return "sign sha256:" + digest }

// Envelope is a parsed DSSE envelope.
type Envelope = dsse.Envelope

// OpenEnvelope verifies a DSSE envelope with pub and returns its statement.
func OpenEnvelope(ctx context.Context, envJSON []byte, pub ed25519.PublicKey) (*intoto.Statement, error) {
	var env dsse.Envelope
	if err := json.Unmarshal(envJSON, &env); err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("payload type %q, want %s", env.PayloadType, PayloadType)
	}
	v, err := dsse.NewEnvelopeVerifier(edKey{pub: pub})
	if err != nil {
		return nil, err
	}
	_, body, err := v.VerifyAndDecode(ctx, &env)
	if err != nil {
		return nil, fmt.Errorf("the signature does not verify with the tenant's key: %w", err)
	}
	var st intoto.Statement
	if err := protojson.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("the payload is not an in-toto statement: %w", err)
	}
	return &st, nil
}

// StatementSubjects lists a statement's subjects with their sha256.
func StatementSubjects(st *intoto.Statement) []Subject {
	out := make([]Subject, 0, len(st.GetSubject()))
	for _, d := range st.GetSubject() {
		out = append(out, Subject{Name: d.GetName(), Digest: d.GetDigest()["sha256"]})
	}
	return out
}

// ManifestByproducts lists what an SLSA provenance statement names as
// byproducts (the run report's statements and the approval record).
func ManifestByproducts(st *intoto.Statement) ([]Subject, error) {
	b, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, err
	}
	var prov slsa.Provenance
	if err := protojson.Unmarshal(b, &prov); err != nil {
		return nil, err
	}
	var out []Subject
	for _, d := range prov.GetRunDetails().GetByproducts() {
		out = append(out, Subject{Name: d.GetName(), Digest: d.GetDigest()["sha256"]})
	}
	slices.SortFunc(out, func(a, b Subject) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}
