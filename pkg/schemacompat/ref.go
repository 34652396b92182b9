package schemacompat

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// A Loader loads the schema documents that $refs name by absolute URI when
// the URI is not an $id inside the schema being compared, as the
// validator's loader does (the schema registry answers its own
// urn:prost:schema:<subject>:<version> names). Load returns the document as
// Diff accepts a schema (decoded JSON, []byte or json.RawMessage). An error
// wrapping [ErrUnresolvable] leaves the reference unresolved, so it is
// compared by its text; any other error stops the comparison and is
// returned by Diff and Check.
//
// A Loader must answer the same URI with the same document for the length
// of one Diff or Check call; each URI is loaded at most once per call.
type Loader interface {
	Load(uri string) (any, error)
}

// ErrUnresolvable is what a [Loader] wraps to say it has no schema for a
// URI.
var ErrUnresolvable = errors.New("schemacompat: reference not resolvable")

// maxDocuments bounds the documents one side of a comparison loads; further
// references stay unresolved.
const maxDocuments = 256

// Drafts, as the year or number of their name.
const (
	draft4       = 4
	draft6       = 6
	draft7       = 7
	draft2019    = 2019
	draft2020    = 2020
	defaultDraft = draft2020
)

// draftOf reads a $schema URI; 0 when it names no known draft.
func draftOf(s string) int {
	s = strings.TrimSuffix(s, "#")
	if t, ok := strings.CutPrefix(s, "https://"); ok {
		s = t
	} else {
		s = strings.TrimPrefix(s, "http://")
	}
	switch s {
	case "json-schema.org/draft-04/schema":
		return draft4
	case "json-schema.org/draft-06/schema":
		return draft6
	case "json-schema.org/draft-07/schema":
		return draft7
	case "json-schema.org/draft/2019-09/schema":
		return draft2019
	case "json-schema.org/draft/2020-12/schema", "json-schema.org/schema":
		return draft2020
	}
	return 0
}

// loadCache holds what a Loader answered, shared by every comparison of one
// Diff or Check call.
type loadCache struct {
	loader Loader
	docs   map[string]loaded
}

type loaded struct {
	v   any
	err error
}

func newLoadCache(l Loader) *loadCache {
	return &loadCache{loader: l, docs: map[string]loaded{}}
}

func (lc *loadCache) load(uri string) (any, error) {
	if r, ok := lc.docs[uri]; ok {
		return r.v, r.err
	}
	var r loaded
	if lc.loader == nil {
		r.err = ErrUnresolvable
	} else {
		r.v, r.err = lc.loader.Load(uri)
		if r.err == nil {
			r.v, r.err = rootValue(r.v)
		}
	}
	lc.docs[uri] = r
	return r.v, r.err
}

// side is one of the two schemas compared, with the documents its
// references load. The two sides never share documents: each version is
// resolved on its own, as the validator compiles it.
type side struct {
	name  string // "P" (previous) or "N" (next)
	root  *document
	docs  map[string]*document // loaded documents by URI; nil when not loadable
	cache *loadCache
	err   error // the first Loader error that is not ErrUnresolvable
}

func newSide(name string, root any, cache *loadCache) *side {
	s := &side{name: name, docs: map[string]*document{}, cache: cache}
	s.root = newDocument(name, s, "", root)
	return s
}

// load returns the document named by an absolute URI, or nil.
func (s *side) load(uri string) *document {
	if d, ok := s.docs[uri]; ok {
		return d
	}
	if len(s.docs) >= maxDocuments {
		return nil
	}
	v, err := s.cache.load(uri)
	if err != nil {
		if !errors.Is(err, ErrUnresolvable) && s.err == nil {
			if errors.Is(err, ErrInvalidSchema) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				s.err = fmt.Errorf("$ref %s: %w", uri, err)
			} else {
				s.err = fmt.Errorf("loading $ref %s: %w", uri, err)
			}
		}
		s.docs[uri] = nil
		return nil
	}
	d := newDocument(s.name+"<"+uri+">", s, uri, v)
	s.docs[uri] = d
	return d
}

// document is one schema document: the schema compared, or one a $ref
// loaded. Its resources are the subschemas that an $id (draft-04: id)
// makes a resource of, plus the root.
type document struct {
	id   string // keeps memo keys of documents apart
	side *side  // nil for the synthetic empty schema
	url  string // the URI it was loaded by; "" for a compared schema
	root any
	// resources by JSON pointer, and by URI.
	resources map[string]*resource
	byURI     map[string]*resource
	walked    map[string]bool
}

// resource is a schema resource: a subschema with an $id, or a root.
type resource struct {
	doc   *document
	ptr   string
	uri   string // absolute, or relative when the compared schema has no absolute $id
	draft int
	// anchors maps plain-name fragments ($anchor, $dynamicAnchor, an $id or
	// id of "#name") to pointers; dynamic holds the $dynamicAnchor names.
	anchors   map[string]string
	dynamic   map[string]bool
	recursive bool // $recursiveAnchor: true at its root
}

func (r *resource) hasDynamic() bool { return len(r.dynamic) > 0 || r.recursive }

func newDocument(id string, s *side, u string, root any) *document {
	d := &document{id: id, side: s, url: u, root: root,
		resources: map[string]*resource{}, byURI: map[string]*resource{}, walked: map[string]bool{}}
	d.walk(root, "", u, defaultDraft, nil, 0)
	return d
}

// singleSchemaKeywords, schemaMapKeywords and schemaListKeywords are the
// places a subschema can be, in any draft.
var (
	singleSchemaKeywords = []string{"additionalItems", "additionalProperties", "contains", "contentSchema",
		"else", "if", "items", "not", "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties"}
	schemaMapKeywords  = []string{"$defs", "definitions", "dependencies", "dependentSchemas", "patternProperties", "properties"}
	schemaListKeywords = []string{"allOf", "anyOf", "items", "oneOf", "prefixItems"}
)

// walk indexes the resources and anchors under raw, found at ptr, whose
// base URI is base, in draft, inside resource res.
func (d *document) walk(raw any, ptr, base string, draft int, res *resource, depth int) {
	if d.walked[ptr] || depth > maxDepth {
		return
	}
	d.walked[ptr] = true
	obj, ok := raw.(map[string]any)
	if !ok {
		if res == nil {
			d.addResource(ptr, base, draft)
		}
		return
	}
	own := draft
	if s, ok := obj["$schema"].(string); ok {
		if v := draftOf(s); v != 0 {
			own = v
		}
	}
	_, hasRef := obj["$ref"].(string)
	idKW := "$id"
	if own == draft4 {
		idKW = "id"
	}
	idURI, idFrag := "", ""
	if s, ok := obj[idKW].(string); ok && !(own < draft2019 && hasRef) {
		idURI, idFrag, _ = strings.Cut(s, "#")
	}
	if u, _, ok := joinURI(base, idURI); ok && idURI != "" {
		base = u
		res = d.addResource(ptr, base, own)
		draft = own
	} else if res == nil {
		res = d.addResource(ptr, base, own)
		draft = own
	}
	// Anchors. A draft before 2019-09 ignores every sibling of $ref.
	if !(res.draft < draft2019 && hasRef) {
		if idFrag != "" && !strings.HasPrefix(idFrag, "/") {
			res.addAnchor(idFrag, ptr)
		}
		if s, ok := obj["$anchor"].(string); ok && s != "" {
			res.addAnchor(s, ptr)
		}
		if s, ok := obj["$dynamicAnchor"].(string); ok && s != "" {
			res.addAnchor(s, ptr)
			if res.dynamic == nil {
				res.dynamic = map[string]bool{}
			}
			res.dynamic[s] = true
		}
		if b, ok := obj["$recursiveAnchor"].(bool); ok && b && res.ptr == ptr {
			res.recursive = true
		}
	}
	for _, kw := range singleSchemaKeywords {
		if v, ok := obj[kw]; ok {
			if _, isList := v.([]any); !isList {
				d.walk(v, ptr+"/"+escapeToken(kw), base, draft, res, depth+1)
			}
		}
	}
	for _, kw := range schemaMapKeywords {
		m, _ := obj[kw].(map[string]any)
		for _, k := range sortedKeys(m) {
			if _, isList := m[k].([]any); !isList {
				d.walk(m[k], ptr+"/"+escapeToken(kw)+"/"+escapeToken(k), base, draft, res, depth+1)
			}
		}
	}
	for _, kw := range schemaListKeywords {
		l, _ := obj[kw].([]any)
		for i, v := range l {
			d.walk(v, ptr+"/"+escapeToken(kw)+"/"+strconv.Itoa(i), base, draft, res, depth+1)
		}
	}
}

func (d *document) addResource(ptr, uri string, draft int) *resource {
	if r, ok := d.resources[ptr]; ok {
		return r
	}
	r := &resource{doc: d, ptr: ptr, uri: uri, draft: draft, anchors: map[string]string{}}
	d.resources[ptr] = r
	if _, dup := d.byURI[uri]; !dup {
		d.byURI[uri] = r // the first of duplicate $ids wins; the validator refuses them
	}
	return r
}

func (r *resource) addAnchor(name, ptr string) {
	if _, dup := r.anchors[name]; !dup {
		r.anchors[name] = ptr
	}
}

// resourceAt returns the resource a location belongs to: the nearest
// enclosing subschema that is a resource.
func (d *document) resourceAt(ptr string) *resource {
	if i := strings.IndexByte(ptr, '|'); i >= 0 {
		ptr = ptr[:i]
	}
	for {
		if r, ok := d.resources[ptr]; ok {
			return r
		}
		i := strings.LastIndexByte(ptr, '/')
		if i < 0 {
			return d.resources[""]
		}
		ptr = ptr[:i]
	}
}

// joinURI resolves ref against base as the validator does (RFC 3986, an
// opaque base such as a URN kept for relative references) and splits off
// the fragment, percent-decoded.
func joinURI(base, ref string) (uri, frag string, ok bool) {
	r, f, _ := strings.Cut(ref, "#")
	if u, err := url.PathUnescape(f); err == nil {
		f = u
	}
	if r == "" {
		return base, f, true
	}
	ru, err := url.Parse(r)
	if err != nil {
		return "", "", false
	}
	if base == "" {
		return ru.String(), f, true
	}
	bu, err := url.Parse(base)
	if err != nil {
		return ru.String(), f, true
	}
	out := bu.ResolveReference(ru)
	if !ru.IsAbs() && bu.Opaque != "" {
		out.Opaque = bu.Opaque
	}
	return out.String(), f, true
}

func isAbsoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs()
}

// target is where a reference leads.
type target struct {
	doc *document
	ptr string
	raw any
}

// lookup resolves ref, found in resource from, to a schema: a resource by
// $id (absolute or relative to the base URI) in the same document, a
// document by the URI it was loaded by, or a document the Loader loads;
// then the fragment, a JSON pointer from that resource or a plain-name
// anchor in it.
func (d *document) lookup(from *resource, ref string) (target, bool) {
	base := ""
	if from != nil {
		base = from.uri
	}
	uri, frag, ok := joinURI(base, ref)
	if !ok {
		return target{}, false
	}
	var r *resource
	switch {
	case uri == d.url:
		r = d.resources[""]
	case d.byURI[uri] != nil:
		r = d.byURI[uri]
	case d.side == nil:
		return target{}, false
	case uri == d.side.root.url:
		r = d.side.root.resources[""]
	case isAbsoluteURI(uri):
		ld := d.side.load(uri)
		if ld == nil {
			return target{}, false
		}
		r = ld.byURI[uri]
		if r == nil {
			r = ld.resources[""]
		}
	default:
		return target{}, false
	}
	if r == nil {
		return target{}, false
	}
	if frag == "" || strings.HasPrefix(frag, "/") {
		raw, loc, ok := pointerLookup(r.doc.root, r.ptr, frag)
		if !ok {
			return target{}, false
		}
		return target{doc: r.doc, ptr: loc, raw: raw}, true
	}
	ptr, ok := r.anchors[frag]
	if !ok {
		return target{}, false
	}
	raw, loc, ok := pointerLookup(r.doc.root, ptr, "")
	if !ok {
		return target{}, false
	}
	return target{doc: r.doc, ptr: loc, raw: raw}, true
}

// pointerLookup follows base (escaped, as this package writes pointers)
// then frag (an RFC 6901 pointer, already percent-decoded) from root.
func pointerLookup(root any, base, frag string) (any, string, bool) {
	cur := root
	var loc strings.Builder
	for _, p := range []string{base, frag} {
		if p == "" {
			continue
		}
		for _, tok := range strings.Split(p[1:], "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			switch c := cur.(type) {
			case map[string]any:
				next, ok := c[tok]
				if !ok {
					return nil, "", false
				}
				cur = next
			case []any:
				i, err := strconv.Atoi(tok)
				if err != nil || i < 0 || i >= len(c) {
					return nil, "", false
				}
				cur = c[i]
			default:
				return nil, "", false
			}
			loc.WriteString("/")
			loc.WriteString(escapeToken(tok))
		}
	}
	return cur, loc.String(), true
}

// ---- dynamic scope ----

// withResource returns scope with r appended, unless it is already in it:
// the outermost occurrence is the one $dynamicRef resolution can pick.
func withResource(scope []*resource, r *resource) []*resource {
	if r == nil {
		return scope
	}
	for _, s := range scope {
		if s == r {
			return scope
		}
	}
	out := make([]*resource, len(scope), len(scope)+1)
	copy(out, scope)
	return append(out, r)
}

// scopeKey names the part of a dynamic scope that can change what a
// $dynamicRef or $recursiveRef resolves to: the resources with dynamic
// anchors, outermost first.
func scopeKey(scope []*resource) string {
	var b strings.Builder
	for _, r := range scope {
		if r.hasDynamic() {
			b.WriteString("@")
			b.WriteString(r.doc.id)
			b.WriteString(r.ptr)
		}
	}
	return b.String()
}

// dynamicTarget applies the dynamic scope to the initial target of a
// $dynamicRef with a plain-name fragment: when that target declares the
// name as its $dynamicAnchor, the outermost resource in scope declaring it
// too is the target.
func dynamicTarget(t target, ref string, scope []*resource) target {
	_, name, _ := strings.Cut(ref, "#")
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	if name == "" || strings.HasPrefix(name, "/") {
		return t
	}
	obj, _ := t.raw.(map[string]any)
	if a, _ := obj["$dynamicAnchor"].(string); a != name {
		return t
	}
	for _, r := range scope {
		if !r.dynamic[name] {
			continue
		}
		if raw, loc, ok := pointerLookup(r.doc.root, r.anchors[name], ""); ok {
			return target{doc: r.doc, ptr: loc, raw: raw}
		}
	}
	return t
}

// recursiveTarget applies the dynamic scope to the initial target of a
// $recursiveRef (draft 2019-09): when it has $recursiveAnchor true, the
// outermost resource in scope with $recursiveAnchor true is the target.
func recursiveTarget(t target, scope []*resource) target {
	obj, _ := t.raw.(map[string]any)
	if b, _ := obj["$recursiveAnchor"].(bool); !b {
		return t
	}
	for _, r := range scope {
		if r.recursive {
			if raw, loc, ok := pointerLookup(r.doc.root, r.ptr, ""); ok {
				return target{doc: r.doc, ptr: loc, raw: raw}
			}
		}
	}
	return t
}

// ---- resolving schemas ----

// refOf returns the reference keyword a schema object uses and its value:
// $ref, else $dynamicRef (2020-12), else $recursiveRef (2019-09).
func refOf(v map[string]any) (string, string) {
	for _, kw := range []string{"$ref", "$dynamicRef", "$recursiveRef"} {
		if s, ok := v[kw].(string); ok {
			return kw, s
		}
	}
	return "", ""
}

// nodeAt resolves raw, found at loc in d, into a node, within the dynamic
// scope of the schema that contains it.
func (d *document) nodeAt(raw any, loc string, scope []*resource) node {
	return d.resolve(raw, loc, scope, nil)
}

// resolve turns raw into a node: booleans become empty or false schemas,
// references are followed (siblings of a $ref override the referenced
// keywords from draft 2019-09 on; before it they are ignored, as the
// validator ignores them), and any non-schema value is the empty schema.
func (d *document) resolve(raw any, loc string, scope []*resource, seen map[string]bool) node {
	res := d.resourceAt(loc)
	scope = withResource(scope, res)
	switch v := raw.(type) {
	case bool:
		if v {
			return node{doc: d, loc: loc, path: loc, m: emptyMap, scope: scope}
		}
		return node{doc: d, loc: loc, path: loc, isFalse: true, scope: scope}
	case map[string]any:
		if _, ok := v["$id"].(string); ok && d.resources[loc] == nil && !d.walked[loc] {
			// Reached through a pointer into a place no keyword makes a
			// subschema: index it now, as the validator does.
			base, draft := "", defaultDraft
			if res != nil {
				base, draft = res.uri, res.draft
			}
			d.walk(v, loc, base, draft, res, 0)
			res = d.resourceAt(loc)
			scope = withResource(scope, res)
		}
		kw, ref := refOf(v)
		if kw == "" {
			return node{doc: d, loc: loc, path: loc, m: v, scope: scope}
		}
		t, ok := d.lookup(res, ref)
		if ok {
			switch kw {
			case "$dynamicRef":
				t = dynamicTarget(t, ref, scope)
			case "$recursiveRef":
				t = recursiveTarget(t, scope)
			}
		}
		if !ok {
			return node{doc: d, loc: loc, path: loc, m: v, opaqueRef: ref, scope: scope}
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		key := t.doc.id + t.ptr
		if seen[key] || len(seen) >= maxRefHops {
			// A $ref cycle with no schema in between: it constrains nothing.
			return node{doc: d, loc: loc + "|cycle", path: loc + "|cycle", m: emptyMap, scope: scope}
		}
		seen[key] = true
		tn := t.doc.resolve(t.raw, t.ptr, scope, seen)
		if (res != nil && res.draft < draft2019) || !hasOverlay(v) || tn.isFalse {
			return tn
		}
		m := make(map[string]any, len(tn.m)+len(v))
		origin := make(map[string]source, len(tn.m)+len(v))
		for k, val := range tn.m {
			m[k] = val
			origin[escapeToken(k)] = tn.base(k)
		}
		for k, val := range v {
			switch k {
			case "$ref", "$dynamicRef", "$recursiveRef", "$defs", "definitions":
				continue
			}
			m[k] = val
			origin[escapeToken(k)] = source{doc: d, loc: loc}
		}
		if tn.opaqueRef == "" {
			delete(m, "$ref")
		}
		return node{doc: d, loc: loc + "|ref", path: loc, origin: origin, m: m, opaqueRef: tn.opaqueRef, scope: tn.scope}
	default:
		return node{doc: d, loc: loc, path: loc, m: emptyMap, scope: scope}
	}
}

// hasOverlay reports whether a $ref schema has sibling keywords other than
// definition containers and identifiers.
func hasOverlay(m map[string]any) bool {
	for k := range m {
		switch k {
		case "$ref", "$dynamicRef", "$recursiveRef", "$defs", "definitions", "$schema", "$comment",
			"$anchor", "$dynamicAnchor", "$recursiveAnchor":
		default:
			return true
		}
	}
	return false
}
