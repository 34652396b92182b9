package dataprotect

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// maxNesting bounds how deep sealed values inside sealed values are opened.
const maxNesting = 4

// Reveal returns doc (an event's data, or a whole structured-mode event)
// with each of the tenant's encrypted values replaced by its plain JSON
// value, or by {"erased":true} when its data key was destroyed (or belongs
// to no key of the tenant's). A token that does not decrypt under its live
// key (altered) is left as it is. A document without tokens is returned as
// it is, without allocating. This is the reader every tenant-facing read
// uses; see docs/privacy.md. On a nil Keyring doc is returned unchanged.
func (k *Keyring) Reveal(ctx context.Context, tenant uuid.UUID, doc []byte) ([]byte, error) {
	if k == nil || !HasTokens(doc) {
		return doc, nil
	}
	out, _, err := k.reveal(ctx, tenant, doc, nil, 0, nil)
	return out, err
}

// RevealAll reveals each document of a page in place, reading every key the
// page needs with one query.
func (k *Keyring) RevealAll(ctx context.Context, tenant uuid.UUID, docs [][]byte) error {
	if k == nil {
		return nil
	}
	var ids []uuid.UUID
	found := make([][]tokenAt, len(docs))
	for i, d := range docs {
		if !HasTokens(d) {
			continue
		}
		found[i] = scanTokens(d)
		for _, t := range found[i] {
			ids = append(ids, t.key)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	keys, err := k.load(ctx, tenant, ids)
	if err != nil {
		return err
	}
	for i, d := range docs {
		if found[i] == nil {
			continue
		}
		if docs[i], _, err = k.reveal(ctx, tenant, d, found[i], 0, keys); err != nil {
			return err
		}
	}
	return nil
}

// RevealUsed is Reveal that also returns the live keys whose values it
// revealed, so a caller that derives new values from them can seal those
// under the same keys (SealWith).
func (k *Keyring) RevealUsed(ctx context.Context, tenant uuid.UUID, doc []byte) ([]byte, []uuid.UUID, error) {
	if k == nil || !HasTokens(doc) {
		return doc, nil, nil
	}
	return k.reveal(ctx, tenant, doc, nil, 0, nil)
}

func (k *Keyring) reveal(ctx context.Context, tenant uuid.UUID, doc []byte, toks []tokenAt, depth int, keys map[uuid.UUID]tink.AEAD) ([]byte, []uuid.UUID, error) {
	if toks == nil {
		toks = scanTokens(doc)
	}
	if len(toks) == 0 {
		return doc, nil, nil
	}
	var missing []uuid.UUID
	for _, t := range toks {
		if _, ok := keys[t.key]; !ok {
			missing = append(missing, t.key)
		}
	}
	if len(missing) > 0 {
		more, err := k.load(ctx, tenant, missing)
		if err != nil {
			return nil, nil, err
		}
		if keys == nil {
			keys = more
		} else {
			for id, a := range more {
				keys[id] = a
			}
		}
	}
	ad := valueAD(tenant)
	var used []uuid.UUID
	out := make([]byte, 0, len(doc))
	at := 0
	for _, t := range toks {
		out = append(out, doc[at:t.start]...)
		at = t.end
		a := keys[t.key]
		if a == nil {
			out = append(out, Erased...)
			continue
		}
		pt, err := a.Decrypt(t.ct, ad)
		if err != nil {
			out = append(out, doc[t.start:t.end]...)
			continue
		}
		if !slices.Contains(used, t.key) {
			used = append(used, t.key)
		}
		if depth < maxNesting && HasTokens(pt) {
			var inner []uuid.UUID
			if pt, inner, err = k.reveal(ctx, tenant, pt, nil, depth+1, keys); err != nil {
				return nil, nil, err
			}
			for _, id := range inner {
				if !slices.Contains(used, id) {
					used = append(used, id)
				}
			}
		}
		out = append(out, pt...)
	}
	out = append(out, doc[at:]...)
	return out, used, nil
}

// SealWith encrypts a plain JSON value under each of the tenant's keys in
// turn (the last one outermost), returning the token: a value derived from
// values of several data subjects or purposes is readable only while every
// one of their keys exists. Keys already destroyed are skipped (the values
// derived from them already read {"erased":true}); with none left, plain is
// returned as it is.
func (k *Keyring) SealWith(ctx context.Context, tenant uuid.UUID, keyIDs []uuid.UUID, plain []byte) ([]byte, error) {
	if k == nil || len(keyIDs) == 0 {
		return plain, nil
	}
	keys, err := k.load(ctx, tenant, keyIDs)
	if err != nil {
		return nil, err
	}
	ad := valueAD(tenant)
	out := plain
	for _, id := range keyIDs {
		a := keys[id]
		if a == nil {
			continue
		}
		ct, err := a.Encrypt(out, ad)
		if err != nil {
			return nil, fmt.Errorf("dataprotect: seal: %w", err)
		}
		out = appendToken(nil, id, ct)
	}
	return out, nil
}
