// Package netguard keeps PROST's outbound requests (rule webhooks, and any
// other request a tenant can aim, such as subscription sinks) away from the
// platform's own network: a tenant must not be able to make PROST probe or
// call its NATS server, its database, its admin API, a cloud metadata
// service or anything else only reachable from inside.
//
// A Guard refuses every address that is not public unicast: loopback,
// private (RFC 1918, unique local fc00::/7), carrier-grade NAT
// (100.64.0.0/10), link-local (169.254.0.0/16 and fe80::/10, which hold the
// cloud metadata services 169.254.169.254 and fd00:ec2::254 is in fc00::/7),
// unspecified (0.0.0.0, ::), multicast, broadcast, the documentation and
// benchmarking ranges and the other IANA special-purpose blocks, IPv4 and
// IPv6 alike. IPv4 written inside IPv6 (::ffff:127.0.0.1, NAT64
// 64:ff9b::/96, 6to4 2002::/16) is judged by the IPv4 address it carries.
//
// It checks twice: CheckURL when a target is created (the URL's form, and
// its host when the host is an IP address or a localhost name), and, for
// every connection, the address the dialer is about to connect to, after
// DNS resolution (Client and Transport), so a name that resolves to an
// internal address, or starts to (DNS rebinding), is refused too. Proxies
// from the environment are ignored (a proxy would resolve the name itself)
// and redirects are not followed.
//
// An allow-list (PROST_OUTBOUND_ALLOW, prefixes such as 127.0.0.1/32) lets
// chosen addresses through, for development: a receiver on the developer's
// machine. Nothing is allowed by default.
//
// What reaches the tenant about a failed request is fixed and short (see
// Reason): the status code, or one of a few words for a network failure,
// never a response body or the text of a network error, which can carry
// what the target answered (a malformed response quotes its first bytes).
package netguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbidden is the error of a target whose address is not allowed.
var ErrForbidden = errors.New("netguard: the target address is not allowed (loopback, private, link-local or another internal range)")

// Guard checks outbound targets. The zero value allows nothing but public
// addresses. It is safe for concurrent use.
type Guard struct {
	allow []netip.Prefix
}

// New returns a Guard that also lets the addresses in allow through.
func New(allow ...netip.Prefix) *Guard {
	return &Guard{allow: append([]netip.Prefix(nil), allow...)}
}

// ParseAllowList reads a comma-separated list of IP prefixes or addresses
// (an address is its own /32 or /128), as PROST_OUTBOUND_ALLOW holds it.
func ParseAllowList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("netguard: %q is neither an IP prefix nor an IP address", part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Internal and special-purpose ranges (IANA IPv4 and IPv6 Special-Purpose
// Address Registries, plus multicast and reserved).
var (
	blocked4 = mustPrefixes(
		"0.0.0.0/8",       // "this network", unspecified
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // carrier-grade NAT (and some clouds' metadata, 100.100.100.200)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata 169.254.169.254
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.88.99.0/24",  // 6to4 relay anycast
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
	)
	blocked6 = mustPrefixes(
		"::/96",         // unspecified, loopback, IPv4-compatible (deprecated)
		"100::/64",      // discard
		"2001::/23",     // IETF protocol assignments (Teredo 2001::/32 among them)
		"2001:db8::/32", // documentation
		"3fff::/20",     // documentation
		"5f00::/16",     // segment routing
		"fc00::/7",      // unique local, AWS metadata fd00:ec2::254
		"fe80::/10",     // link-local
		"fec0::/10",     // site-local (deprecated)
		"ff00::/8",      // multicast
	)
	nat64      = netip.MustParsePrefix("64:ff9b::/96")   // well-known NAT64: the IPv4 address is the last 32 bits
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64: refused
	sixToFour  = netip.MustParsePrefix("2002::/16")      // 6to4: the IPv4 address is bits 16-47
)

// Allowed reports whether a connection to a may be made: a is in the
// allow-list, or is a public unicast address.
func (g *Guard) Allowed(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range g.allow {
		if p.Contains(a) {
			return true
		}
	}
	return public(a)
}

func public(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return false
	}
	if a.Is4() {
		for _, p := range blocked4 {
			if p.Contains(a) {
				return false
			}
		}
		return true
	}
	if nat64.Contains(a) {
		b := a.As16()
		return public(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	if nat64Local.Contains(a) {
		return false
	}
	if sixToFour.Contains(a) {
		b := a.As16()
		return public(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	for _, p := range blocked6 {
		if p.Contains(a) {
			return false
		}
	}
	return a.IsGlobalUnicast()
}

// CheckURL checks a target URL when it is created: an absolute http or
// https URL without credentials whose host, when it is an IP address (in
// any form Go parses, bracketed IPv6 and mapped forms included) or a
// localhost name, is allowed. A host name is checked again, once resolved,
// at every connection.
func (g *Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http or https URL")
	}
	if u.User != nil {
		return errors.New("must not hold credentials")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return errors.New("must name a host")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !g.Allowed(a) {
			return ErrForbidden
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if !g.Allowed(netip.MustParseAddr("127.0.0.1")) && !g.Allowed(netip.IPv6Loopback()) {
			return ErrForbidden
		}
	}
	return nil
}

// control refuses, before connecting, an address that is not allowed; it
// runs for every address the dialer tries, after name resolution.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return ErrForbidden
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !g.Allowed(a) {
		return ErrForbidden
	}
	return nil
}

// Dialer returns a copy of d (a zero Dialer when nil) that refuses, for every
// connection, an address the Guard does not allow.
func (g *Guard) Dialer(d *net.Dialer) *net.Dialer {
	out := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if d != nil {
		*out = *d
	}
	out.Control, out.ControlContext = g.control, nil
	return out
}

// Transport returns an http.Transport whose every connection goes through
// the Guard's Dialer, with no proxy.
func (g *Guard) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           g.Dialer(nil).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

// Client returns an http.Client on the Guard's Transport that follows no
// redirects (a 3xx is the answer) and gives up after timeout.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     g.Transport(),
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Fixed reasons of a failed request, the only words about it a tenant sees.
const (
	ReasonForbidden  = "target address not allowed"
	ReasonTimeout    = "timed out"
	ReasonDNS        = "host name not resolved"
	ReasonRefused    = "connection refused"
	ReasonTLS        = "TLS handshake failed"
	ReasonConnection = "connection failed"
)

// Reason is the fixed short reason of a request error (an error from
// http.Client.Do), safe to show the tenant: it never repeats the error's
// text.
func Reason(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, ErrForbidden):
		return ReasonForbidden
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ReasonTimeout
	case errors.As(err, &dnsErr):
		return ReasonDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &certInvalid), errors.As(err, &recErr):
		return ReasonTLS
	}
	return ReasonConnection
}

// StatusReason is the fixed short reason of a response that is not a
// success: its status code, and nothing of its body.
func StatusReason(status int) string {
	return fmt.Sprintf("the receiver answered HTTP %d", status)
}
