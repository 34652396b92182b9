package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/rules/condition"
)

// Classified values (docs/privacy.md): an event's data arrives with the
// values its contract classifies encrypted (pkg/dataprotect tokens).
// Conditions and templates work on the plain values, revealed for the
// event's tenant; what the engine stores from them (decision inputs, the
// data of emitted events) never holds a classified value in clear:
//
//   - a value read whole from a classified field (or a subtree holding one)
//     is stored as the event stored it: the token, still under its key;
//   - a part of a classified value, or a string a template built around
//     one, is sealed under the keys of the values it came from.
//
// So an erasure of the data subject erases those copies as well.

// protected is what the engine knows of an event whose data held tokens.
type protected struct {
	kr     *dataprotect.Keyring
	tenant uuid.UUID
	// orig is the stored data, decoded, tokens as strings.
	orig any
}

// reveal replaces ev.Data with its plain form for tenant, and returns what
// guard needs; nil when the data holds no tokens (or no keyring is set).
func reveal(ctx context.Context, kr *dataprotect.Keyring, tenant uuid.UUID, ev *cloudevent.Event) (*protected, error) {
	if kr == nil || !dataprotect.HasTokens(ev.Data) {
		return nil, nil
	}
	orig, err := condition.DecodeJSON(ev.Data)
	if err != nil {
		return nil, nil //nolint:nilerr // unreadable data: evaluated as it is
	}
	plain, err := kr.Reveal(ctx, tenant, ev.Data)
	if err != nil {
		return nil, fmt.Errorf("rules: reveal classified values: %w", err)
	}
	ev.Data = plain
	return &protected{kr: kr, tenant: tenant, orig: orig}, nil
}

// guard returns what may be stored for plain, the value at path (segments
// under data) of the revealed data: plain itself when no classified value
// is involved, the stored subtree when it holds tokens, or plain sealed
// under the keys of the token the path goes into. keys reports the keys
// involved (for strings built around the value).
func (p *protected) guard(ctx context.Context, path []string, plain any) (out any, keys []uuid.UUID, err error) {
	if p == nil {
		return plain, nil, nil
	}
	cur := p.orig
	for i := 0; ; i++ {
		if s, ok := cur.(string); ok && dataprotect.IsToken(s) {
			keys, err := p.keysOf(ctx, s)
			if err != nil {
				return nil, nil, err
			}
			if i == len(path) {
				return cur, keys, nil // the whole classified value: keep its token
			}
			b, err := json.Marshal(plain)
			if err != nil {
				return nil, nil, err
			}
			sealed, err := p.kr.SealWith(ctx, p.tenant, keys, b)
			if err != nil {
				return nil, nil, err
			}
			return json.RawMessage(sealed), keys, nil
		}
		if i == len(path) {
			break
		}
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[path[i]]
			if !ok {
				return plain, nil, nil
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(path[i])
			if err != nil || n < 0 || n >= len(x) {
				return plain, nil, nil
			}
			cur = x[n]
		default:
			return plain, nil, nil
		}
	}
	// A subtree: keep it as stored when it holds any token.
	b, err := json.Marshal(cur)
	if err != nil {
		return nil, nil, err
	}
	if !dataprotect.HasTokens(b) {
		return plain, nil, nil
	}
	if _, keys, err = p.kr.RevealUsed(ctx, p.tenant, b); err != nil {
		return nil, nil, err
	}
	return cur, keys, nil
}

// keysOf is every live key a token (and the sealed values inside it)
// depends on.
func (p *protected) keysOf(ctx context.Context, token string) ([]uuid.UUID, error) {
	q, _ := json.Marshal(token)
	_, keys, err := p.kr.RevealUsed(ctx, p.tenant, q)
	return keys, err
}

// seal seals a string built around classified values under their keys.
func (p *protected) seal(ctx context.Context, s string, keys []uuid.UUID) (any, error) {
	if p == nil || len(keys) == 0 {
		return s, nil
	}
	b, _ := json.Marshal(s)
	sealed, err := p.kr.SealWith(ctx, p.tenant, keys, b)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(sealed), nil
}

// guardInputs replaces the inputs a condition read from classified values.
func (p *protected) guardInputs(ctx context.Context, in condition.Inputs) error {
	if p == nil {
		return nil
	}
	for k, v := range in {
		path, ok := inputPath(k)
		if !ok {
			continue
		}
		var plain any = v
		if raw, isRaw := v.(json.RawMessage); isRaw {
			if err := json.Unmarshal(raw, &plain); err != nil {
				plain = v
			}
		}
		g, _, err := p.guard(ctx, path, plain)
		if err != nil {
			return err
		}
		if !sameJSON(g, plain) {
			in[k] = g
		}
	}
	return nil
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// inputPath reads a condition input's path over data (data, data.a.b,
// data["k"][0]) into segments; false for anything else (attributes,
// extensions, has(...) tests, which read no value).
func inputPath(p string) ([]string, bool) {
	rest, ok := strings.CutPrefix(p, "data")
	if !ok {
		return nil, false
	}
	var out []string
	for rest != "" {
		switch rest[0] {
		case '.':
			i := 1
			for i < len(rest) && rest[i] != '.' && rest[i] != '[' {
				i++
			}
			out = append(out, rest[1:i])
			rest = rest[i:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, false
			}
			lit := rest[1:end]
			if strings.HasPrefix(lit, `"`) {
				// A quoted key may hold ]: find the closing quote first.
				q, err := strconv.QuotedPrefix(rest[1:])
				if err != nil || len(rest) < 2+len(q) || rest[1+len(q)] != ']' {
					return nil, false
				}
				s, _ := strconv.Unquote(q)
				out = append(out, s)
				rest = rest[2+len(q):]
				continue
			}
			out = append(out, lit)
			rest = rest[end+1:]
		default:
			return nil, false
		}
	}
	return out, true
}
