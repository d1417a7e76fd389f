// Package probeallow parses and matches the probe_allow rules of a module:
// which targets /probe may reach beyond the configured ones. It lives apart
// from the endpoint source so that configuration validation can use the same
// parser; what happens after a rule matches (resolving a name, refusing
// loopback and link-local addresses) is the endpoint source's business.
//
// A rule is HOST:PORT. HOST is one of
//
//   - an IP address range in CIDR notation, 10.1.0.0/16 or [fd00::/8];
//   - an IP address, 10.1.2.3 or [2001:db8::1] (a range of one);
//   - a DNS name pattern, matched label by label, without case: "*" stands
//     for one whole label or part of one ("db-*") and never crosses a dot;
//     a leading "**." stands for one or more whole labels.
//
// PORT is "*", a number, or a range such as 8000-8999.
//
// Address rules match IP-literal targets only, name rules names only: a name
// is never compared with an address rule before it is resolved, and an
// address is never read as a name.
package probeallow

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Rule is one parsed probe_allow rule.
type Rule struct {
	// Pattern is the rule as written.
	Pattern string

	prefix   netip.Prefix // address rules; invalid for name rules
	labels   []string     // name rules: lower-case labels, "*" inside allowed
	anyDepth bool         // name rules written "**.rest": one or more labels before rest
	portMin  uint16
	portMax  uint16
}

// Parse reads one rule. Its errors say what is wrong and, for the glob
// forms that earlier versions accepted, what to write instead.
func Parse(pattern string) (Rule, error) {
	r := Rule{Pattern: pattern}
	host, port, err := splitHostPort(pattern)
	if err != nil {
		return Rule{}, err
	}
	if r.portMin, r.portMax, err = parsePorts(port); err != nil {
		return Rule{}, err
	}
	if r.prefix, err = parseAddress(host); err != nil {
		return Rule{}, err
	}
	if r.prefix.IsValid() {
		return r, nil
	}
	if r.labels, r.anyDepth, err = parseName(host); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// IsAddress reports whether the rule is an address range (CIDR or IP).
func (r Rule) IsAddress() bool { return r.prefix.IsValid() }

// Prefix returns an address rule's range (IPv4 ranges written in IPv4-mapped
// IPv6 form are returned as IPv4).
func (r Rule) Prefix() netip.Prefix { return r.prefix }

// MatchPort reports whether port is among the rule's ports.
func (r Rule) MatchPort(port uint16) bool { return port >= r.portMin && port <= r.portMax }

// MatchAddr reports whether an address rule's range holds a (compared in
// IPv4 form when a is IPv4-mapped). Name rules hold no address.
func (r Rule) MatchAddr(a netip.Addr) bool {
	if !r.prefix.IsValid() || a.Zone() != "" {
		return false
	}
	return r.prefix.Contains(a.Unmap())
}

// MatchName reports whether a name rule matches host, label by label and
// without case. Address rules match no name, and a host that is not a
// plain DNS name (an IP literal, an empty label, characters other than
// letters, digits, '-' and '_', a last label that reads as a number) matches
// no rule: resolvers turn names such as 0x7f000001 or 2130706433 into
// addresses.
func (r Rule) MatchName(host string) bool {
	if r.prefix.IsValid() || !IsName(host) {
		return false
	}
	labels := strings.Split(strings.ToLower(host), ".")
	if r.anyDepth {
		if len(labels) <= len(r.labels) {
			return false
		}
		labels = labels[len(labels)-len(r.labels):]
	} else if len(labels) != len(r.labels) {
		return false
	}
	for i, pat := range r.labels {
		if !matchLabel(pat, labels[i]) {
			return false
		}
	}
	return true
}

// Match reports whether the rule matches target (host:port) as written,
// without resolving anything: an address rule against an IP-literal host, a
// name rule against a name. It is what tools checking a configuration can
// know; the endpoint source additionally checks what a name resolves to.
func (r Rule) Match(target string) bool {
	host, port, err := splitHostPort(target)
	if err != nil {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || !r.MatchPort(uint16(n)) {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return r.MatchAddr(a)
	}
	return r.MatchName(host)
}

// IsName reports whether host is a DNS name rules may match: not an IP
// literal, dot-separated non-empty labels of letters, digits, '-' and '_',
// and a last label that cannot be read as a number (decimal, octal or
// 0x-hex, as inet_aton reads "10.1" or "0x7f000001").
func IsName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	labels := strings.Split(host, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !isLabelChar(c) {
				return false
			}
		}
	}
	return !numeric(labels[len(labels)-1])
}

func isLabelChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// numeric reports whether a label reads as a number: decimal digits (octal
// when they start with 0) or 0x followed by hex digits.
func numeric(label string) bool {
	l := strings.ToLower(label)
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

// splitHostPort splits host:port; an IPv6 host (address or range) is
// written in brackets, which are removed.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", fmt.Errorf("%q: missing ']'", s)
		}
		host, rest := s[1:end], s[end+1:]
		port, ok := strings.CutPrefix(rest, ":")
		if !ok || port == "" {
			return "", "", fmt.Errorf("%q: want [ADDRESS or RANGE]:PORT", s)
		}
		if host == "" {
			return "", "", fmt.Errorf("%q: empty host", s)
		}
		return host, port, nil
	}
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", "", fmt.Errorf("%q: want HOST:PORT (PORT a number, a range like 8000-8999, or *)", s)
	}
	host, port = s[:i], s[i+1:]
	if strings.Contains(host, ":") {
		return "", "", fmt.Errorf("%q: an IPv6 address or range goes in brackets, as in [fd00::/8]:443", s)
	}
	if host == "" || port == "" {
		return "", "", fmt.Errorf("%q: want HOST:PORT (PORT a number, a range like 8000-8999, or *)", s)
	}
	return host, port, nil
}

func parsePorts(s string) (lo, hi uint16, err error) {
	if s == "*" {
		return 1, 65535, nil
	}
	one := func(p string) (uint16, error) {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("port %q: want a number from 1 to 65535, a range like 8000-8999, or *", s)
		}
		return uint16(n), nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		if lo, err = one(a); err != nil {
			return 0, 0, err
		}
		if hi, err = one(b); err != nil {
			return 0, 0, err
		}
		if lo > hi {
			return 0, 0, fmt.Errorf("port range %q: the first port is above the last", s)
		}
		return lo, hi, nil
	}
	lo, err = one(s)
	return lo, lo, err
}

// parseAddress reads an address or CIDR range; it returns an invalid prefix
// (and no error) for a host that is neither, which is then read as a name.
func parseAddress(host string) (netip.Prefix, error) {
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("address range %q: %w", host, err)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("address range %q has bits set after the prefix length: did you mean %s?", host, p.Masked())
		}
		return unmapPrefix(p), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}, nil
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q: zones are not supported", host)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96), so that
// it matches the IPv4 form every address is compared in.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

var errGlob = errors.New(`only "*" (within one label) and a leading "**." are wildcards; list alternatives as separate rules`)

func parseName(host string) (labels []string, anyDepth bool, err error) {
	host = strings.ToLower(host)
	if rest, ok := strings.CutPrefix(host, "**."); ok {
		host, anyDepth = rest, true
	}
	if strings.ContainsAny(host, "?[]{}\\") {
		return nil, false, fmt.Errorf("name pattern %q: %w", host, errGlob)
	}
	labels = strings.Split(host, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return nil, false, fmt.Errorf("name pattern %q: empty label", host)
		case strings.Contains(l, "**"):
			return nil, false, fmt.Errorf(`name pattern %q: "**" stands only as the first label ("**.example.com")`, host)
		case len(l) > 63:
			return nil, false, fmt.Errorf("name pattern %q: label longer than 63 characters", host)
		}
		for _, c := range l {
			if c != '*' && !isLabelChar(c) {
				return nil, false, fmt.Errorf("name pattern %q: %q is not a letter, digit, '-', '_' or '*'", host, c)
			}
		}
	}
	last := labels[len(labels)-1]
	switch {
	case allNumericOrWild(labels) && strings.ContainsAny(host, "0123456789"):
		return nil, false, fmt.Errorf("name pattern %q reads as an IP address pattern, but as a name it would admit names such as %s: write an address range such as %s", host, strings.ReplaceAll(host, "*", "1")+".attacker.example", suggestRange(labels))
	case (len(labels) > 1 || anyDepth) && strings.Contains(last, "*"):
		return nil, false, fmt.Errorf("name pattern %q: a wildcard in the last label would admit names under any top-level domain; write the domain out", host)
	case !strings.Contains(last, "*") && numeric(last):
		return nil, false, fmt.Errorf("name pattern %q: the last label is a number, which resolvers read as an address", host)
	}
	return labels, anyDepth, nil
}

// suggestRange turns "10.1.*" into 10.1.0.0/16, for the error message.
func suggestRange(labels []string) string {
	var octets []string
	for _, l := range labels {
		if strings.Contains(l, "*") {
			break
		}
		octets = append(octets, l)
	}
	bits := 8 * len(octets)
	for len(octets) < 4 {
		octets = append(octets, "0")
	}
	if p, err := netip.ParsePrefix(strings.Join(octets[:4], ".") + "/" + strconv.Itoa(bits)); err == nil && len(labels) <= 4 {
		return p.Masked().String()
	}
	return "10.1.0.0/16"
}

func allNumericOrWild(labels []string) bool {
	for _, l := range labels {
		if strings.Trim(l, "0123456789*") != "" {
			return false
		}
	}
	return true
}

// matchLabel matches one label against a pattern label whose only wildcard
// is '*' (any run of characters, possibly none, within the label).
func matchLabel(pattern, label string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == label
	}
	prefix, rest := pattern[:star], pattern[star+1:]
	if !strings.HasPrefix(label, prefix) {
		return false
	}
	label = label[len(prefix):]
	for i := 0; i <= len(label); i++ {
		if matchLabel(rest, label[i:]) {
			return true
		}
	}
	return false
}
