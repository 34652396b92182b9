package dataprotect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/problem"
)

// Policy says which values of an event's data are encrypted, under whose
// key: the data subject's id is at Subject, and each Field's value is
// encrypted with the subject's key for the field's purpose and retention.
// Build one with NewPolicy; it is immutable and safe for concurrent use.
type Policy struct {
	// Subject is the JSON pointer of the data subject's id in data.
	Subject string
	// Fields are the classified values.
	Fields []Field

	subject []string
	fields  [][]string
}

// Field is one classified value: a JSON pointer into data, its class
// (personal, sensitive or payment), why it is kept and for how long.
type Field struct {
	Pointer   string
	Class     string
	Purpose   string
	Retention Retention
}

// NewPolicy checks the pointers and returns the policy.
func NewPolicy(subject string, fields []Field) (*Policy, error) {
	p := &Policy{Subject: subject, Fields: fields}
	var err error
	if subject == "" {
		return nil, fmt.Errorf("dataprotect: the data subject's pointer is required")
	}
	if p.subject, err = ParsePointer(subject); err != nil {
		return nil, fmt.Errorf("dataprotect: data subject: %w", err)
	}
	for _, f := range fields {
		toks, err := ParsePointer(f.Pointer)
		if err != nil {
			return nil, fmt.Errorf("dataprotect: %w", err)
		}
		p.fields = append(p.fields, toks)
	}
	return p, nil
}

// Covers reports whether a pointer names a classified value or a part of
// one (its value is then personal data too).
func (p *Policy) Covers(pointer string) bool {
	toks, err := ParsePointer(pointer)
	if err != nil {
		return false
	}
	for _, f := range p.fields {
		if len(f) <= len(toks) && slices.Equal(f, toks[:len(f)]) {
			return true
		}
	}
	return false
}

// MissingSubjectError is an event of a classified type whose data does not
// hold its data subject's id. It is a problem.Invalid (422) naming the
// pointer.
type MissingSubjectError struct {
	Pointer string
}

func (e *MissingSubjectError) Error() string {
	return "the data subject's id (" + e.Pointer + ") is missing: it must be a non-empty string or a number"
}

// Unwrap gives the error's kind.
func (e *MissingSubjectError) Unwrap() error { return problem.Invalid }

// SubjectID returns the data subject's id in data: a non-empty string as it
// is, a number as its JSON text. When an object repeats the member, the last
// one counts (as in the schema's validation). A *MissingSubjectError when
// there is none.
func (p *Policy) SubjectID(data []byte) (string, error) {
	if len(data) == 0 {
		return "", &MissingSubjectError{Pointer: p.Subject}
	}
	spans, err := findSpans(data, [][]string{p.subject})
	if err != nil {
		return "", err
	}
	return p.subjectFrom(data, spans[0])
}

func (p *Policy) subjectFrom(data []byte, spans []span) (string, error) {
	if len(spans) == 0 {
		return "", &MissingSubjectError{Pointer: p.Subject}
	}
	raw := data[spans[len(spans)-1].start:spans[len(spans)-1].end]
	switch {
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || strings.TrimSpace(s) == "" {
			return "", &MissingSubjectError{Pointer: p.Subject}
		}
		return s, nil
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		return string(raw), nil
	default:
		return "", &MissingSubjectError{Pointer: p.Subject}
	}
}

// Protect returns data with every value a Field of p names replaced by its
// encryption under the data subject's key for the field's purpose and
// retention (a token string, see HasTokens); everything else is kept byte
// for byte. Values are encrypted whole (an object or array as one value),
// every repetition of a repeated member is encrypted, and a pointer that
// names nothing encrypts nothing. It returns a *MissingSubjectError when the
// data subject's id is missing. On a nil Keyring it fails: classified data
// is never stored in clear.
func (k *Keyring) Protect(ctx context.Context, tenant uuid.UUID, data []byte, p *Policy) ([]byte, error) {
	if k == nil {
		return nil, ErrNoKEK
	}
	out, _, err := k.protect(ctx, tenant, data, p)
	return out, err
}

// ErrNoKEK is returned when data must be encrypted but no KEK is configured.
var ErrNoKEK = problem.Errorf(problem.Unavailable, "this PROST has no key encryption key (PROST_PRIVACY_KEK): events of a type whose contract classifies data cannot be accepted")

func (k *Keyring) protect(ctx context.Context, tenant uuid.UUID, data []byte, p *Policy) ([]byte, []uuid.UUID, error) {
	if len(data) == 0 {
		return nil, nil, &MissingSubjectError{Pointer: p.Subject}
	}
	targets := make([][]string, 0, 1+len(p.fields))
	targets = append(targets, p.subject)
	targets = append(targets, p.fields...)
	spans, err := findSpans(data, targets)
	if err != nil {
		return nil, nil, err
	}
	subject, err := p.subjectFrom(data, spans[0])
	if err != nil {
		return nil, nil, err
	}
	type repl struct {
		span
		field int
	}
	var rs []repl
	for i, ss := range spans[1:] {
		for _, s := range ss {
			rs = append(rs, repl{s, i})
		}
	}
	if len(rs) == 0 {
		return data, nil, nil
	}
	// Outermost first; a value inside an encrypted one is encrypted with it.
	slices.SortFunc(rs, func(a, b repl) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	sref, err := k.SubjectRef(ctx, tenant, subject)
	if err != nil {
		return nil, nil, err
	}
	ad := valueAD(tenant)
	keys := make(map[int]dataKey)
	var used []uuid.UUID
	out := make([]byte, 0, len(data)+len(rs)*128)
	at := 0
	for _, r := range rs {
		if r.start < at {
			continue // inside a value already encrypted
		}
		dk, ok := keys[r.field]
		if !ok {
			f := p.Fields[r.field]
			if dk, err = k.currentKey(ctx, tenant, sref, f.Purpose, f.Retention); err != nil {
				return nil, nil, err
			}
			keys[r.field] = dk
			if !slices.Contains(used, dk.id) {
				used = append(used, dk.id)
			}
		}
		ct, err := dk.aead.Encrypt(data[r.start:r.end], ad)
		if err != nil {
			return nil, nil, fmt.Errorf("dataprotect: encrypt: %w", err)
		}
		out = append(out, data[at:r.start]...)
		out = appendToken(out, dk.id, ct)
		at = r.end
	}
	out = append(out, data[at:]...)
	return out, used, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
