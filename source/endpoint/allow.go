package endpoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/config/probeallow"
	"github.com/certwatch/certwatch/source"
)

// What /probe may reach: targets configured with the module (trusted as
// written), IP-literal targets inside one of its probe_allow address ranges,
// and names matching one of its name rules whose every address is outside
// the deny list below. A name is resolved once, when it is admitted, and
// the probe dials the addresses that were checked, never the name again, so
// a DNS answer that changes in between (rebinding) cannot steer it.

// Refusals, for errors.Is: the first means no rule admits the target, the
// second that one did but the target is, or resolves to, a denied address.
var (
	ErrNotAllowed    = errors.New("not allowed")
	ErrAddressDenied = errors.New("address denied")
)

// deniedRanges are addresses /probe does not reach through a name rule or a
// broader address range: the exporter's own host (loopback, unspecified)
// and the link-local network, where cloud metadata services answer
// (169.254.169.254, fd00:ec2::254). Only an address rule lying inside one of
// them (127.0.0.1/32:9100, [::1]:*) admits such an address. IPv4-mapped
// IPv6 addresses are checked in their IPv4 form.
var deniedRanges = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
}

// admissionTTL is how long the addresses a name was admitted with stay
// usable by the probe that follows (/probe admits, then probes at once).
const admissionTTL = 5 * time.Second

// Resolver looks names up; *net.Resolver is one. Tests give a module their own.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// access is how a module reaches the network: its probe_allow rules, the
// resolver it asks and the dialer it connects with.
type access struct {
	rules    []probeallow.Rule
	resolver Resolver
	dial     dialFunc
}

func newAccess(mc config.Module) access {
	a := access{resolver: net.DefaultResolver, dial: (&net.Dialer{}).DialContext}
	for _, pattern := range mc.ProbeAllow {
		if r, err := probeallow.Parse(pattern); err == nil { // validated at load
			a.rules = append(a.rules, r)
		}
	}
	return a
}

// Allowed reports whether /probe may reach target with the named module,
// resolving a name within the module's timeout. See AllowedContext.
func (p *Prober) Allowed(target, moduleName string) error {
	m, ok := p.modules[moduleName]
	if !ok {
		return fmt.Errorf("%w: unknown module %q", ErrNotAllowed, moduleName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(m.cfg.Timeout))
	defer cancel()
	return p.AllowedContext(ctx, target, moduleName)
}

// AllowedContext reports whether /probe may reach target with the named
// module; anything else would let a caller use certwatch to scan the
// network. Targets configured with the module are allowed as they are.
// Other targets need a probe_allow rule, and must not be (or resolve to) a
// denied address unless an address rule names it. A refusal wraps
// ErrNotAllowed or ErrAddressDenied and is decided before any connection;
// its message names the rule family, never a connection's outcome. A name
// that does not resolve is allowed: the probe reports the DNS failure.
func (p *Prober) AllowedContext(ctx context.Context, target, moduleName string) error {
	m, ok := p.modules[moduleName]
	if !ok {
		return fmt.Errorf("%w: unknown module %q", ErrNotAllowed, moduleName)
	}
	if err := config.ValidateTarget(target); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAllowed, err)
	}
	if _, ok := m.configured[target]; ok {
		return nil
	}
	host, portText, _ := net.SplitHostPort(target)
	port64, _ := strconv.ParseUint(portText, 10, 16) // ValidateTarget checked it
	port := uint16(port64)
	notAllowed := fmt.Errorf("%w: target %q is neither configured with module %q nor matched by its probe_allow rules", ErrNotAllowed, target, moduleName)
	if addr, err := netip.ParseAddr(host); err == nil {
		if !m.access.matchAddr(addr, port) {
			return notAllowed
		}
		return m.access.checkAddrs(target, moduleName, port, []netip.Addr{addr})
	}
	if !m.access.matchName(host, port) {
		return notAllowed
	}
	if m.proxy != nil {
		return nil // the proxy resolves the name, and its own policy decides
	}
	addrs, err := m.lookup(ctx, host)
	if err != nil {
		return nil
	}
	if err := m.access.checkAddrs(target, moduleName, port, addrs); err != nil {
		return err
	}
	p.mu.Lock()
	p.admitted.put(m.name+"\x00"+target, addrs, time.Now().Add(admissionTTL))
	p.mu.Unlock()
	return nil
}

// route says how a probe reaches its target.
type route struct {
	// addrs were resolved and checked when the target was admitted; nil:
	// resolve when dialing.
	addrs []netip.Addr
	// guarded: a probe_allow rule, not the configuration, admits the
	// target, so what it is or resolves to is checked against the deny list
	// before dialing.
	guarded bool
	port    uint16
}

// routeFor decides how Probe reaches target. What a probe_allow rule admits
// is checked against the deny list again at dial time; configured targets,
// and targets no rule admits (the caller did not ask Allowed, and vouches
// for them), are dialed as they are.
func (p *Prober) routeFor(m *module, target string) route {
	if _, ok := m.configured[target]; ok {
		return route{}
	}
	host, portText, err := net.SplitHostPort(target)
	port64, perr := strconv.ParseUint(portText, 10, 16)
	if err != nil || perr != nil {
		return route{}
	}
	port := uint16(port64)
	if addr, err := netip.ParseAddr(host); err == nil {
		if m.access.matchAddr(addr, port) {
			return route{guarded: true, port: port, addrs: []netip.Addr{addr.Unmap()}}
		}
		return route{}
	}
	if !m.access.matchName(host, port) {
		return route{}
	}
	rt := route{guarded: true, port: port}
	p.mu.Lock()
	rt.addrs, _ = p.admitted.get(m.name + "\x00" + target)
	p.mu.Unlock()
	return rt
}

func (a *access) matchAddr(addr netip.Addr, port uint16) bool {
	for _, r := range a.rules {
		if r.MatchPort(port) && r.MatchAddr(addr) {
			return true
		}
	}
	return false
}

func (a *access) matchName(host string, port uint16) bool {
	for _, r := range a.rules {
		if r.MatchPort(port) && r.MatchName(host) {
			return true
		}
	}
	return false
}

// checkAddrs refuses addrs if any is denied and no address rule lying
// inside its denied range admits it on port.
func (a *access) checkAddrs(target, moduleName string, port uint16, addrs []netip.Addr) error {
	for _, addr := range addrs {
		addr = addr.Unmap()
		for _, d := range deniedRanges {
			if !d.prefix.Contains(addr.WithZone("")) || a.namesExplicitly(d.prefix, addr, port) {
				continue
			}
			what := fmt.Sprintf("target %q resolves to %s", target, addr)
			if host, _, _ := net.SplitHostPort(target); !probeallow.IsName(host) {
				what = fmt.Sprintf("target %q is", target)
			}
			return fmt.Errorf("%w: %s, a %s address, which only a probe_allow address rule inside %s (such as %s) admits; module %q has none",
				ErrAddressDenied, what, d.kind, d.prefix, example(addr, port), moduleName)
		}
	}
	return nil
}

// namesExplicitly reports whether an address rule lying inside the denied
// range d admits addr on port.
func (a *access) namesExplicitly(d netip.Prefix, addr netip.Addr, port uint16) bool {
	for _, r := range a.rules {
		rp := r.Prefix()
		if r.IsAddress() && r.MatchPort(port) && r.MatchAddr(addr) && rp.Bits() >= d.Bits() && d.Contains(rp.Addr()) {
			return true
		}
	}
	return false
}

func example(addr netip.Addr, port uint16) string {
	if addr.Is6() {
		return fmt.Sprintf("[%s]:%d", addr.WithZone(""), port)
	}
	return fmt.Sprintf("%s/32:%d", addr, port)
}

// lookup returns host's addresses (IPv4-mapped ones in IPv4 form), or host
// itself when it is an address.
func (m *module) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	ips, err := m.access.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, source.WithClass(inferClass(err, source.ClassDNS), fmt.Errorf("resolving %s: %w", host, err))
	}
	addrs := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.IP); ok {
			addrs = append(addrs, a.Unmap().WithZone(ip.Zone))
		}
	}
	if len(addrs) == 0 {
		return nil, source.Errorf(source.ClassDNS, "resolving %s: no addresses", host)
	}
	return addrs, nil
}
