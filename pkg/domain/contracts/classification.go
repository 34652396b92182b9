package contracts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/prost-platform/prost/pkg/dataprotect"
)

// Classification maps JSON pointers into data to classified fields. At
// ingest every classified value is encrypted under its data subject's key
// (pkg/dataprotect, docs/privacy.md).
type Classification map[string]Classified

// Classified is one classified field: its class, and the purpose and
// retention of its values when they differ from the contract's. It is
// written as the class alone (/email: personal) or as an object
// (/email: {class: personal, purpose: receipts, retention: 400d}).
type Classified struct {
	// Class is personal, sensitive or payment.
	Class string `json:"class" yaml:"class"`
	// Purpose overrides the contract's purpose for this field.
	Purpose string `json:"purpose,omitempty" yaml:"purpose,omitempty"`
	// Retention overrides the contract's retention for this field.
	Retention string `json:"retention,omitempty" yaml:"retention,omitempty"`
}

type classifiedDoc Classified

// UnmarshalJSON reads a class name or an object, refusing unknown members.
func (c *Classified) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*c = Classified{}
		return json.Unmarshal(b, &c.Class)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d classifiedDoc
	if err := dec.Decode(&d); err != nil {
		return fmt.Errorf("a classification is a class (personal, sensitive, payment) or {class, purpose, retention}: %w", err)
	}
	*c = Classified(d)
	return nil
}

// MarshalJSON writes the class alone when the field has no purpose or
// retention of its own.
func (c Classified) MarshalJSON() ([]byte, error) {
	if c.Purpose == "" && c.Retention == "" {
		return json.Marshal(c.Class)
	}
	return json.Marshal(classifiedDoc(c))
}

// UnmarshalYAML reads a class name or a mapping, refusing unknown keys.
func (c *Classified) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*c = Classified{}
		return n.Decode(&c.Class)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i].Value; k {
			case "class", "purpose", "retention":
			default:
				return fmt.Errorf("line %d: field %s not found in a classification (class, purpose, retention)", n.Content[i].Line, k)
			}
		}
		var d classifiedDoc
		if err := n.Decode(&d); err != nil {
			return err
		}
		*c = Classified(d)
		return nil
	}
	return errors.New("a classification is a class (personal, sensitive, payment) or {class, purpose, retention}")
}

// MarshalYAML writes the class alone when the field has no purpose or
// retention of its own.
func (c Classified) MarshalYAML() (any, error) {
	if c.Purpose == "" && c.Retention == "" {
		return c.Class, nil
	}
	return classifiedDoc(c), nil
}

// Pointers returns the classified pointers in order.
func (cl Classification) Pointers() []string {
	out := make([]string, 0, len(cl))
	for k := range cl {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PurposeOf is the purpose of a classified field: its own, else the
// contract's.
func (c *Contract) PurposeOf(pointer string) string {
	if p := c.Classification[pointer].Purpose; p != "" {
		return p
	}
	return c.Purpose
}

// RetentionOf is the retention of a classified field: its own, else the
// contract's ("" when neither states one).
func (c *Contract) RetentionOf(pointer string) string {
	if r := c.Classification[pointer].Retention; r != "" {
		return r
	}
	return c.Retention
}

// Policy is what ingest encrypts for a contract that passes lint: every
// classified field under the data subject's key for its purpose and
// retention (no retention stated: forever). nil when nothing is classified
// or the data subject is SubjectCause (nothing to encrypt at ingest).
func (c *Contract) Policy() (*dataprotect.Policy, error) {
	if len(c.Classification) == 0 || c.DataSubject == SubjectCause {
		return nil, nil
	}
	var fields []dataprotect.Field
	for _, p := range c.Classification.Pointers() {
		ret := dataprotect.Forever
		if s := c.RetentionOf(p); s != "" {
			r, err := dataprotect.ParseRetention(s)
			if err != nil {
				return nil, err
			}
			ret = r
		}
		fields = append(fields, dataprotect.Field{Pointer: p, Class: c.Classification[p].Class, Purpose: c.PurposeOf(p), Retention: ret})
	}
	return dataprotect.NewPolicy(c.DataSubject, fields)
}
