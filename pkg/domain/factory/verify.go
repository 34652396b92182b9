package factory

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/jackc/pgx/v5"

	"github.com/prost-platform/prost/pkg/domain/audit"
	"github.com/prost-platform/prost/pkg/domain/factory/internal/factorydb"
)

// Check is one thing verification looked at.
type Check struct {
	// Name says what was checked, naming the artifact or record.
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// VerifyReport is the outcome of verifying a run's PEC chain.
type VerifyReport struct {
	RunID uuid.UUID `json:"run_id"`
	OK    bool      `json:"ok"`
	KeyID string    `json:"keyid,omitempty"`
	// Manifest is the sha256 of the signed manifest, when the run has one.
	Manifest string  `json:"manifest_sha256,omitempty"`
	Checks   []Check `json:"checks"`
	// Failures names every artifact or record that does not match.
	Failures []string `json:"failures,omitempty"`
}

func (r *VerifyReport) add(name string, ok bool, format string, args ...any) {
	c := Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)}
	r.Checks = append(r.Checks, c)
	if !ok {
		r.Failures = append(r.Failures, name+": "+c.Detail)
	}
}

// Verify checks a run's PEC chain against what is stored: every stored
// artifact's content against its recorded sha256; every signed statement
// against the tenant's public key; every subject of every statement (the
// artifacts and each file of the source trees) against the stored content;
// the manifest's byproducts against the run report's statements and the
// approval record; the approval record against the recorded decision; and
// the manifest's digest against the tenant's audit chain, whose hashes must
// verify. The report names everything that does not match.
func (s *Store) Verify(ctx context.Context, tenant, runID uuid.UUID) (*VerifyReport, error) {
	run, err := s.Run(ctx, tenant, runID)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{RunID: runID}
	key, err := s.PublicKey(ctx, tenant)
	if err != nil {
		return nil, err
	}
	rows, err := s.q.ListArtifactsWithContent(ctx, factorydb.ListArtifactsWithContentParams{TenantID: tenant, RunID: runID})
	if err != nil {
		return nil, fmt.Errorf("factory: read artifacts: %w", err)
	}
	if len(rows) == 0 {
		rep.add("artifacts", false, "the run has stored no artifacts")
		return rep, nil
	}
	content := map[string][]byte{}
	for _, r := range rows {
		name := "artifact " + r.Name
		switch {
		case r.Content == nil:
			rep.add(name, false, "its content is missing")
		case Digest(r.Content) != r.Digest:
			rep.add(name, false, "the stored content has sha256 %s; the run recorded %s", Digest(r.Content), r.Digest)
		default:
			rep.add(name, true, "sha256 %s", r.Digest)
		}
		if r.Content != nil {
			content[r.Name] = r.Content
		}
	}
	if key == nil {
		rep.add("signing key", false, "the tenant has no signing key: nothing was signed")
		return rep, nil
	}
	rep.KeyID = key.KeyID
	pub := ed25519.PublicKey(key.PublicKey)
	trees := map[string]map[string][]byte{}
	treeFile := func(tree, file string) ([]byte, error) {
		files, ok := trees[tree]
		if !ok {
			b, ok := content[tree]
			if !ok {
				return nil, fmt.Errorf("the tree %s is not stored", tree)
			}
			var err error
			if files, err = UnpackTree(b); err != nil {
				return nil, err
			}
			trees[tree] = files
		}
		f, ok := files[file]
		if !ok {
			return nil, fmt.Errorf("the tree %s has no file %s", tree, file)
		}
		return f, nil
	}
	var envelopes []string
	for _, r := range rows {
		if strings.HasPrefix(r.Name, "pec/") && strings.HasSuffix(r.Name, ".dsse.json") {
			envelopes = append(envelopes, r.Name)
		}
	}
	slices.Sort(envelopes)
	var manifestSubjects []Subject
	var byproducts []Subject
	for _, name := range envelopes {
		body, ok := content[name]
		if !ok {
			continue
		}
		st, err := OpenEnvelope(ctx, body, pub)
		if err != nil {
			rep.add("signature "+name, false, "%v", err)
			continue
		}
		rep.add("signature "+name, true, "%s signed by %s", st.GetPredicateType(), key.KeyID)
		for _, sub := range StatementSubjects(st) {
			tree, file, isFile := strings.Cut(sub.Name, "!")
			var got []byte
			var what string
			if isFile {
				what = tree + "!" + file
				got, err = treeFile(tree, file)
			} else {
				what = "artifact " + sub.Name
				var ok bool
				if got, ok = content[sub.Name]; !ok {
					err = errors.New("it is not stored")
				}
			}
			if err != nil {
				rep.add(what, false, "signed in %s but %v", name, err)
				err = nil
				continue
			}
			if d := Digest(got); d != sub.Digest {
				rep.add(what, false, "its sha256 is %s, but %s signed %s", d, name, sub.Digest)
			}
		}
		switch name {
		case ArtifactManifest:
			manifestSubjects = StatementSubjects(st)
			if byproducts, err = ManifestByproducts(st); err != nil {
				rep.add("manifest", false, "its provenance cannot be read: %v", err)
			}
		case ArtifactApproval:
			s.checkApproval(ctx, rep, tenant, runID, st)
		}
	}
	mb, hasManifest := content[ArtifactManifest]
	if !hasManifest {
		reason := "the run has no manifest"
		if !run.Status.Final() {
			reason += " yet (it is " + string(run.Status) + ")"
		} else if run.DryRun {
			reason += " (a dry run stops after the gates)"
		}
		rep.Checks = append(rep.Checks, Check{Name: "manifest", OK: true, Detail: reason})
	} else {
		rep.Manifest = Digest(mb)
		if len(manifestSubjects) == 0 {
			rep.add("manifest", false, "it names no build")
		}
		covered := map[string]bool{}
		for _, b := range byproducts {
			covered[b.Name] = true
			got, ok := content[b.Name]
			switch {
			case !ok:
				rep.add("artifact "+b.Name, false, "named by the manifest but not stored")
			case Digest(got) != b.Digest:
				rep.add("artifact "+b.Name, false, "its sha256 is %s, but the manifest signed %s", Digest(got), b.Digest)
			}
		}
		for _, name := range envelopes {
			if name == ArtifactManifest || name == LinkArtifact(StageDeploy) {
				continue
			}
			if !covered[name] {
				rep.add("artifact "+name, false, "a signed statement the manifest does not name")
			}
		}
		s.checkAudit(ctx, rep, tenant, rep.Manifest)
	}
	rep.OK = len(rep.Failures) == 0
	return rep, nil
}

// checkApproval compares the signed approval record with the decision
// recorded on the run.
func (s *Store) checkApproval(ctx context.Context, rep *VerifyReport, tenant, runID uuid.UUID, st *intoto.Statement) {
	pred := st.GetPredicate().AsMap()
	decision, _ := pred["decision"].(string)
	actor, _ := pred["actor"].(string)
	as, err := s.Approvals(ctx, tenant, runID)
	if err != nil {
		rep.add("approval record", false, "cannot read the recorded decisions: %v", err)
		return
	}
	if len(as) == 0 {
		rep.add("approval record", false, "signed (%s by %s) but no decision is recorded on the run", decision, actor)
		return
	}
	last := as[len(as)-1]
	if last.Decision != decision || last.Actor != actor {
		rep.add("approval record", false, "signed %s by %s, but the run records %s by %s", decision, actor, last.Decision, last.Actor)
		return
	}
	rep.add("approval record", true, "%s by %s", decision, actor)
}

// checkAudit looks for the manifest's digest in the tenant's audit chain and
// verifies the chain.
func (s *Store) checkAudit(ctx context.Context, rep *VerifyReport, tenant uuid.UUID, digest string) {
	e, err := s.q.FindAuditEntry(ctx, factorydb.FindAuditEntryParams{TenantID: tenant, EventType: ManifestAuditType,
		Action: ManifestAuditAction(digest)})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		rep.add("audit chain", false, "no audit entry records the manifest's sha256 %s", digest)
		return
	case err != nil:
		rep.add("audit chain", false, "cannot read the audit log: %v", err)
		return
	}
	res, err := audit.Verify(ctx, s.pool, tenant)
	if err != nil {
		rep.add("audit chain", false, "cannot verify the audit chain: %v", err)
		return
	}
	if res.Break != nil {
		rep.add("audit chain", false, "the tenant's audit chain is broken at entry %d: %s", res.Break.Seq, res.Break.Reason)
		return
	}
	rep.add("audit chain", true, "entry %d records the manifest's sha256; the chain verifies", e.Seq)
}
