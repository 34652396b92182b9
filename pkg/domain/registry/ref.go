package registry

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// URNPrefix starts the URN that names one version of a subject:
// urn:prost:schema:<subject>:<version>.
const URNPrefix = "urn:prost:schema:"

// registryPath is the path segment that starts a version's URL in the
// registry API: <base>/v1/registry/subjects/<subject>/versions/<version>.
const registryPath = "/v1/registry/subjects/"

// MaxSubjectLen is the longest subject (event type) the registry accepts.
const MaxSubjectLen = 255

// Ref names one version of a subject.
type Ref struct {
	Subject string
	Version int
}

// URN returns the URN naming the version, with the subject percent-encoded
// where a URI needs it: urn:prost:schema:order.placed:2.
func (r Ref) URN() string {
	return URNPrefix + url.PathEscape(r.Subject) + ":" + strconv.Itoa(r.Version)
}

// ParseRef reads a reference to a version of this registry. Two forms name
// a version:
//
//	urn:prost:schema:<subject>:<version>
//	<scheme>://<host>[/<prefix>]/v1/registry/subjects/<subject>/versions/<version>
//
// The subject is percent-decoded; the version is a positive integer. The
// host of the URL form is not compared: the same registry is reachable under
// many names. ParseRef returns ok false for a URI of neither form, and an
// error for one of these forms whose subject or version is invalid.
func ParseRef(uri string) (ref Ref, ok bool, err error) {
	var subj, ver string
	switch {
	case len(uri) > len(URNPrefix) && strings.EqualFold(uri[:len(URNPrefix)], URNPrefix):
		rest := uri[len(URNPrefix):]
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			rest = rest[:i]
		}
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return Ref{}, true, fmt.Errorf("%q: want %s<subject>:<version>", uri, URNPrefix)
		}
		subj, ver = rest[:i], rest[i+1:]
	default:
		u, perr := url.Parse(uri)
		if perr != nil || u.Scheme == "" || u.Opaque != "" {
			return Ref{}, false, nil
		}
		p := u.EscapedPath()
		i := strings.LastIndex(p, registryPath)
		if i < 0 {
			return Ref{}, false, nil
		}
		rest := p[i+len(registryPath):]
		j := strings.LastIndex(rest, "/versions/")
		if j < 0 {
			return Ref{}, true, fmt.Errorf("%q: want .../v1/registry/subjects/<subject>/versions/<version>", uri)
		}
		subj, ver = rest[:j], rest[j+len("/versions/"):]
	}
	s, uerr := url.PathUnescape(subj)
	if uerr != nil {
		return Ref{}, true, fmt.Errorf("%q: the subject is not percent-encoded correctly", uri)
	}
	if err := CheckSubject(s); err != nil {
		return Ref{}, true, fmt.Errorf("%q: %w", uri, err)
	}
	n, cerr := strconv.Atoi(ver)
	if cerr != nil || n < 1 || ver[0] == '+' {
		return Ref{}, true, fmt.Errorf("%q: the version must be a positive integer, not %q", uri, ver)
	}
	return Ref{Subject: s, Version: n}, true, nil
}

// errBadSubject is wrapped by CheckSubject's errors.
var errBadSubject = errors.New("invalid subject")

// CheckSubject reports whether s can be a subject: a CloudEvents type of 1 to
// 255 bytes of valid UTF-8 without control characters.
func CheckSubject(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: a subject (event type) cannot be empty", errBadSubject)
	case len(s) > MaxSubjectLen:
		return fmt.Errorf("%w: a subject is at most %d bytes", errBadSubject, MaxSubjectLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: a subject must be valid UTF-8", errBadSubject)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: a subject cannot hold control characters", errBadSubject)
		}
	}
	return nil
}
