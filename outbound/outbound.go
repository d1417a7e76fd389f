// Package outbound owns what certwatch fetches over HTTP from URLs it did
// not choose — the OCSP responders and CRL distribution points named inside
// certificates — and from the URLs users configure (the urls source), and
// how it fetches them. The URLs are untrusted input: a certificate anyone
// can present to a scraped endpoint could otherwise point certwatch at its
// own metrics port, at a cloud metadata service or at the internal network.
//
// The rules, set by global.revocation (config.Fetch):
//
//   - Schemes: http always; https only with HTTPS set, or for a host:port
//     the configuration names (Policy.Trust). URLs carrying credentials
//     (user:password@) are refused: they would end up in labels and logs.
//   - Addresses are checked when the connection is dialed, not when the URL
//     is read: the name is resolved once, every address it resolves to is
//     checked, and the checked address is dialed, so a DNS answer that
//     changes in between (rebinding) cannot steer a fetch. Denied are
//     loopback, unspecified, link-local (169.254.0.0/16, fe80::/10, where
//     cloud metadata services answer), fd00:ec2::254, and the Deny ranges.
//     IPv4-mapped IPv6 addresses are checked in their IPv4 form. A name
//     with one denied address is refused as a whole.
//   - Allow rules (probe_allow syntax, HOST:PORT) admit otherwise denied
//     destinations: a name rule admits the addresses of the names it
//     matches; an address rule admits the addresses it holds, but only
//     when it lies inside the denied range (127.0.0.0/8:* or
//     127.0.0.1/32:8080 admit loopback, 0.0.0.0/0:* admits nothing denied),
//     so that a broad rule cannot open the metadata service by accident.
//   - Redirects are followed only to the same scheme, host and port, at
//     most MaxRedirects of them; a redirect elsewhere is refused (denied).
//   - No proxy: HTTP_PROXY and the like are ignored, because a proxy would
//     resolve and reach the names itself, out of reach of these checks.
//   - Bodies are read up to a cap (too_large past it); a status other than
//     200 (or 304 to a revalidation) is an http error naming the status.
//     Errors never carry the response body.
//
// Host:ports the configuration names (Trust) are fetched as written, as
// /probe trusts configured targets: the operator chose them.
package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/config/probeallow"
	"github.com/certwatch/certwatch/source"
)

// MaxRedirects is how many same-host redirects one fetch follows.
const MaxRedirects = 3

// maxHeaderBytes bounds the response headers a server may send.
const maxHeaderBytes = 64 << 10

// deniedRange is a range fetches do not reach unless an allow rule admits it.
type deniedRange struct {
	prefix netip.Prefix
	kind   string
}

// builtinDenied are the exporter's own host (loopback, unspecified) and the
// link-local networks where cloud metadata services answer.
var builtinDenied = []deniedRange{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
}

// Policy is the outbound rules of one configuration. It is safe for
// concurrent use.
type Policy struct {
	https  bool
	allow  []probeallow.Rule
	denied []deniedRange

	mu      sync.RWMutex
	trusted map[string]bool // canonical host:port
}

// NewPolicy builds the rules of f (validated by config; an invalid rule or
// range is still reported here).
func NewPolicy(f config.Fetch) (*Policy, error) {
	p := &Policy{https: f.HTTPS, trusted: map[string]bool{}}
	p.denied = append(p.denied, builtinDenied...)
	for i, rule := range f.Allow {
		r, err := probeallow.Parse(rule)
		if err != nil {
			return nil, fmt.Errorf("global.revocation.allow[%d]: %w", i, err)
		}
		p.allow = append(p.allow, r)
	}
	for i, d := range f.Deny {
		pr, err := netip.ParsePrefix(d)
		if err != nil {
			return nil, fmt.Errorf("global.revocation.deny[%d]: %w", i, err)
		}
		pr = pr.Masked()
		if pr.Addr().Is4In6() && pr.Bits() >= 96 {
			pr = netip.PrefixFrom(pr.Addr().Unmap(), pr.Bits()-96)
		}
		p.denied = append(p.denied, deniedRange{pr, "denied by global.revocation.deny"})
	}
	return p, nil
}

// Trust admits hostport — the host and port of a URL the configuration
// names, "ca.example:443" — as written: it is fetched over https even
// without HTTPS set, and its addresses are not checked. A host without a
// port is trusted on ports 80 and 443. Trust applies to every Client of the
// policy, those made before included.
func (p *Policy) Trust(hostport string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		p.trusted[canonicalHostPort(hostport, "80")] = true
		p.trusted[canonicalHostPort(hostport, "443")] = true
		return
	}
	p.trusted[canonicalHostPort(hostport, "")] = true
}

func (p *Policy) isTrusted(hostport string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.trusted[canonicalHostPort(hostport, "")]
}

// canonicalHostPort lower-cases the host and adds defaultPort when hostport
// has none.
func canonicalHostPort(hostport, defaultPort string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.Trim(hostport, "[]"), defaultPort
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

// HostPort is raw's host:port as the rules see it (the host lower-cased,
// the scheme's default port filled in); "" when raw does not parse.
func HostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return urlHostPort(u)
}

// urlHostPort is u's host:port, the scheme's default port filled in.
func urlHostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// checkURL refuses what the rules refuse before any network I/O: schemes,
// credentials, and IP-literal hosts in a denied range.
func (p *Policy) checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, source.Errorf(source.ClassDenied, "URL %q does not parse", raw)
	}
	if u.User != nil {
		return nil, source.Errorf(source.ClassDenied, "URL of %s carries credentials, which are refused", u.Host)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, source.Errorf(source.ClassDenied, "URL %q names no host", raw)
	}
	hostport := urlHostPort(u)
	switch u.Scheme {
	case "http":
	case "https":
		if !p.https && !p.isTrusted(hostport) {
			return nil, source.Errorf(source.ClassDenied, "%s: https URLs are followed only with global.revocation.https set", raw)
		}
	default:
		return nil, source.Errorf(source.ClassDenied, "%s: scheme %q is refused (want http or https)", raw, u.Scheme)
	}
	if p.isTrusted(hostport) {
		return u, nil
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		_, portText, _ := net.SplitHostPort(hostport)
		port, perr := strconv.ParseUint(portText, 10, 16)
		if perr != nil {
			return nil, source.Errorf(source.ClassDenied, "URL %q: bad port", raw)
		}
		if err := p.checkAddrs(u.Hostname(), uint16(port), []netip.Addr{a}); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// checkAddrs refuses addrs if any lies in a denied range no allow rule
// admits on port; host is the name they came from (or the address).
func (p *Policy) checkAddrs(host string, port uint16, addrs []netip.Addr) error {
	for _, addr := range addrs {
		addr = addr.Unmap().WithZone("")
		for _, d := range p.denied {
			if !d.prefix.Contains(addr) || p.admits(d.prefix, host, addr, port) {
				continue
			}
			what := fmt.Sprintf("%s resolves to %s, a %s address", host, addr, d.kind)
			if !probeallow.IsName(host) {
				what = fmt.Sprintf("%s is a %s address", addr, d.kind)
			}
			return source.Errorf(source.ClassDenied, "%s (%s), which only a global.revocation.allow rule admits", what, d.prefix)
		}
	}
	return nil
}

// admits reports whether an allow rule admits addr (reached by host) on
// port although it lies in the denied range d.
func (p *Policy) admits(d netip.Prefix, host string, addr netip.Addr, port uint16) bool {
	for _, r := range p.allow {
		if !r.MatchPort(port) {
			continue
		}
		if r.IsAddress() {
			rp := r.Prefix()
			if r.MatchAddr(addr) && rp.Bits() >= d.Bits() && d.Contains(rp.Addr()) {
				return true
			}
		} else if r.MatchName(host) {
			return true
		}
	}
	return false
}

// Client fetches under a Policy. It is safe for concurrent use.
type Client struct {
	policy   *Policy
	timeout  time.Duration
	http     *http.Client
	resolver *net.Resolver
	dialer   *net.Dialer
}

// Client returns a client whose requests each take at most timeout, body
// included, talking TLS with tlsConfig (nil: system roots, TLS defaults).
func (p *Policy) Client(tlsConfig *tls.Config, timeout time.Duration) *Client {
	c := &Client{policy: p, timeout: timeout, resolver: net.DefaultResolver, dialer: &net.Dialer{KeepAlive: 30 * time.Second}}
	tr := &http.Transport{
		Proxy:                  nil, // see the package doc: a proxy would bypass the address checks
		DialContext:            c.dial,
		TLSClientConfig:        tlsConfig.Clone(),
		MaxIdleConnsPerHost:    16, // reuse across the fetches in flight rather than redial (and exhaust ports)
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
		DisableCompression:     true, // the size cap counts the bytes the server sent
		ResponseHeaderTimeout:  timeout,
	}
	c.http = &http.Client{Transport: tr, CheckRedirect: c.checkRedirect}
	return c
}

// CloseIdleConnections closes the kept-alive connections, which each hold
// goroutines; a background user calls it when it stops.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// dial connects to address (host:port of the URL) after checking what it
// resolves to, and dials the checked addresses themselves.
func (c *Client) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if c.policy.isTrusted(address) {
		return c.dialer.DialContext(ctx, network, address)
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, source.Errorf(source.ClassDenied, "address %q: %w", address, err)
	}
	port64, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, source.Errorf(source.ClassDenied, "address %q: bad port", address)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		if !probeallow.IsName(host) {
			// Resolvers read 2130706433 or 0x7f.1 as addresses.
			return nil, source.Errorf(source.ClassDenied, "host %q is neither an IP address nor a DNS name", host)
		}
		ipNet := "ip"
		switch network {
		case "tcp4":
			ipNet = "ip4"
		case "tcp6":
			ipNet = "ip6"
		}
		addrs, err = c.resolver.LookupNetIP(ctx, ipNet, host)
		if err != nil {
			return nil, source.WithClass(source.Infer(err, source.ClassDNS), fmt.Errorf("resolving %s: %w", host, err))
		}
		if len(addrs) == 0 {
			return nil, source.Errorf(source.ClassDNS, "resolving %s: no addresses", host)
		}
	}
	if err := c.policy.checkAddrs(host, uint16(port64), addrs); err != nil {
		return nil, err
	}
	var first error
	for _, a := range addrs {
		conn, err := c.dialer.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), portText))
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// checkRedirect follows a redirect to the same scheme, host and port only.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	from := via[0].URL
	if req.URL.User != nil {
		return source.Errorf(source.ClassDenied, "redirect from %s to a URL with credentials refused", from.Host)
	}
	if req.URL.Scheme != from.Scheme || urlHostPort(req.URL) != urlHostPort(from) {
		return source.Errorf(source.ClassDenied, "redirect from %s://%s to %s://%s refused: only redirects to the same scheme, host and port are followed",
			from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
	}
	if len(via) > MaxRedirects {
		return source.Errorf(source.ClassHTTP, "more than %d redirects from %s", MaxRedirects, from.Host)
	}
	return nil
}

// Response is what a fetch read.
type Response struct {
	Status int // 200, or 304 to a revalidation
	Body   []byte
	Header http.Header
	URL    string // the URL finally fetched, after redirects
}

// Get fetches url with the extra request headers given (If-None-Match,
// If-Modified-Since), reading at most maxBytes of body. A 304 is returned
// as a Response (with no body) only when header asks to revalidate.
func (c *Client) Get(ctx context.Context, url string, header http.Header, maxBytes int64) (*Response, error) {
	revalidating := header.Get("If-None-Match") != "" || header.Get("If-Modified-Since") != ""
	return c.do(ctx, http.MethodGet, url, header, nil, maxBytes, revalidating)
}

// Post posts body as contentType to url (OCSP over POST), reading at most
// maxBytes of the answer.
func (c *Client) Post(ctx context.Context, url, contentType string, body []byte, maxBytes int64) (*Response, error) {
	return c.do(ctx, http.MethodPost, url, http.Header{"Content-Type": {contentType}}, body, maxBytes, false)
}

func (c *Client) do(ctx context.Context, method, raw string, header http.Header, body []byte, maxBytes int64, revalidating bool) (*Response, error) {
	u, err := c.policy.checkURL(raw)
	if err != nil {
		return nil, err
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, source.Errorf(source.ClassDenied, "%s %s: %w", method, u.Redacted(), err)
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	req.Header.Set("User-Agent", "certwatch")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, classify(ctx, err)
	}
	defer resp.Body.Close()
	out := &Response{Status: resp.StatusCode, Header: resp.Header, URL: resp.Request.URL.String()}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotModified && revalidating:
		return out, nil
	default:
		return nil, source.Errorf(source.ClassHTTP, "%s %s: HTTP status %d", method, out.URL, resp.StatusCode)
	}
	if resp.ContentLength > maxBytes {
		return nil, source.Errorf(source.ClassTooLarge, "%s %s: body of %d bytes is over the %d-byte cap", method, out.URL, resp.ContentLength, maxBytes)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength) + 1)
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, classify(ctx, fmt.Errorf("%s %s: reading the body: %w", method, out.URL, err))
	}
	if n > maxBytes {
		return nil, source.Errorf(source.ClassTooLarge, "%s %s: body over the %d-byte cap", method, out.URL, maxBytes)
	}
	out.Body = buf.Bytes()
	return out, nil
}

// classify gives err a class: its own, timeout when the deadline passed,
// or what the network error says.
func classify(ctx context.Context, err error) error {
	var ce *source.Error
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return source.WithClass(source.ClassTimeout, err)
	}
	return source.WithClass(source.Infer(err, source.ClassUnknown), err)
}
