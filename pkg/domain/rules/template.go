package rules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/prost-platform/prost/pkg/cloudevent"
	"github.com/prost-platform/prost/pkg/domain/rules/condition"
)

// Templates: every JSON string inside an emit action's data (and its
// subject) may hold ${path} placeholders over the triggering event:
//
//	${id} ${source} ${type} ${subject} ${time} ...   an attribute
//	${region}                                         an extension
//	${data} ${data.amount} ${data.items.0.sku}        the data, or a path in it
//	${rule.id} ${rule.version} ${decision.id}         the decision
//
// A string that is exactly one placeholder is replaced by the value with its
// JSON type (a number stays a number, an object an object); a placeholder
// inside a longer string is replaced by its text. A path that names nothing
// gives null (or "" inside a string). $${ writes a literal ${.
//
// Placeholders read classified values in clear; what they write stays
// protected (see privacy.go): a whole classified value is copied as its
// token, and a string built around one is sealed under its keys.

// templateContext is what placeholders read.
type templateContext struct {
	ev          *cloudevent.Event
	data        any // decoded lazily
	dataDecoded bool
	ruleID      uuid.UUID
	ruleVersion int
	decisionID  uuid.UUID
	// ctx and priv guard classified values; priv is nil when the event's
	// data held none.
	ctx  context.Context
	priv *protected
}

var errNoValue = errors.New("no value")

func checkTemplateString(s string) error {
	_, err := scanTemplate(s, nil)
	return err
}

func checkTemplate(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case string:
			return checkTemplateString(x)
		case map[string]any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(v)
}

// scanTemplate checks s, and with tc renders it: the text, or the typed
// value when s is exactly one placeholder (returned as whole).
func scanTemplate(s string, tc *templateContext) (any, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var keys []uuid.UUID
	i := 0
	for i < len(s) {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed placeholder in %q (write $${ for a literal ${)", s)
		}
		path := s[i+2 : i+end]
		if !placeholderPath.MatchString(path) {
			return nil, fmt.Errorf("invalid placeholder ${%s}: use an attribute name, data or data.<path>, rule.id, rule.version or decision.id", path)
		}
		if tc != nil {
			v, err := tc.lookup(path)
			var g any = v
			if err == nil && tc.priv != nil {
				if segs, isData := dataSegments(path); isData {
					var ks []uuid.UUID
					if g, ks, err = tc.priv.guard(tc.ctx, segs, v); err != nil {
						return nil, err
					}
					keys = append(keys, ks...)
				}
			}
			if i == 0 && i+end+1 == len(s) { // the whole string is one placeholder
				if err != nil {
					return nil, nil
				}
				return g, nil
			}
			if err == nil {
				b.WriteString(text(v))
			}
		}
		i += end + 1
	}
	if tc != nil && len(keys) > 0 {
		return tc.priv.seal(tc.ctx, b.String(), keys)
	}
	return b.String(), nil
}

// dataSegments splits a data placeholder path (data, data.a.0) into its
// segments under data.
func dataSegments(path string) ([]string, bool) {
	if path == "data" {
		return nil, true
	}
	rest, ok := strings.CutPrefix(path, "data.")
	if !ok {
		return nil, false
	}
	return strings.Split(rest, "."), true
}

func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func (tc *templateContext) lookup(path string) (any, error) {
	switch path {
	case "rule.id":
		return tc.ruleID.String(), nil
	case "rule.version":
		return tc.ruleVersion, nil
	case "decision.id":
		return tc.decisionID.String(), nil
	}
	head, rest, _ := strings.Cut(path, ".")
	if head != "data" {
		if rest != "" {
			return nil, errNoValue
		}
		if v, ok := tc.ev.Extension(head); ok {
			return v, nil
		}
		if s, ok := tc.ev.Attribute(head); ok {
			return s, nil
		}
		return nil, errNoValue
	}
	if !tc.dataDecoded {
		tc.dataDecoded = true
		if len(tc.ev.Data) > 0 {
			tc.data, _ = condition.DecodeJSON(tc.ev.Data)
		}
	}
	cur := tc.data
	if rest == "" {
		if cur == nil {
			return nil, errNoValue
		}
		return cur, nil
	}
	for _, seg := range strings.Split(rest, ".") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[seg]
			if !ok {
				return nil, errNoValue
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(x) {
				return nil, errNoValue
			}
			cur = x[n]
		default:
			return nil, errNoValue
		}
	}
	return cur, nil
}

// render fills the placeholders of a data template.
func (tc *templateContext) render(data json.RawMessage) (json.RawMessage, error) {
	if len(data) == 0 || !bytes.Contains(data, []byte("${")) {
		return data, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		switch x := v.(type) {
		case string:
			return scanTemplate(x, tc)
		case map[string]any:
			for k, e := range x {
				r, err := walk(e)
				if err != nil {
					return nil, err
				}
				x[k] = r
			}
		case []any:
			for i, e := range x {
				r, err := walk(e)
				if err != nil {
					return nil, err
				}
				x[i] = r
			}
		}
		return v, nil
	}
	out, err := walk(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// renderString fills the placeholders of a string template. A result
// sealed under classified values' keys is the token itself.
func (tc *templateContext) renderString(s string) (string, error) {
	v, err := scanTemplate(s, tc)
	if err != nil {
		return "", err
	}
	if raw, ok := v.(json.RawMessage); ok {
		var tok string
		if json.Unmarshal(raw, &tok) == nil {
			return tok, nil
		}
	}
	return text(v), nil
}
