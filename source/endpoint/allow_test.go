package endpoint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
)

// fakeDNS answers from a table the test owns (nothing leaves the machine)
// and counts the questions. A name may have a list of answers, one per
// question, the last repeated: a rebinding server.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][][]string
	asked   map[string]int
}

func newFakeDNS(answers map[string][]string) *fakeDNS {
	d := &fakeDNS{answers: map[string][][]string{}, asked: map[string]int{}}
	for name, addrs := range answers {
		d.answers[name] = [][]string{addrs}
	}
	return d
}

func (d *fakeDNS) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	host = strings.ToLower(host)
	n := d.asked[host]
	d.asked[host]++
	seq, ok := d.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, a := range seq[min(n, len(seq)-1)] {
		out = append(out, net.IPAddr{IP: net.ParseIP(a)})
	}
	return out, nil
}

func (d *fakeDNS) questions(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[host]
}

// loopbackOnly is a dialer that connects to loopback addresses only and
// records them; anything else is a test failure, refused without a packet.
type loopbackOnly struct {
	t      testing.TB
	mu     sync.Mutex
	dialed []string
}

func (l *loopbackOnly) dial(ctx context.Context, network, address string) (net.Conn, error) {
	l.mu.Lock()
	l.dialed = append(l.dialed, address)
	l.mu.Unlock()
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		l.t.Errorf("dial %s: not a loopback address (the probe resolved by itself or dialed a denied address)", address)
		return nil, errors.New("test dialer: off-loopback dial refused")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

func (l *loopbackOnly) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.dialed...)
}

// withNet gives every module of p the test's resolver and dialer.
func withNet(p *Prober, r Resolver, d dialFunc) *Prober {
	for _, m := range p.modules {
		m.access.resolver, m.access.dial = r, d
	}
	return p
}

// sniServer is a TLS server on 127.0.0.1 that records the SNI it is sent.
func sniServer(t *testing.T) (port string, sni <-chan string) {
	t.Helper()
	chain := testpki.NewChain(t, testpki.Options{})
	cert := testpki.TLSCertificate(chain.Leaf, chain.Intermediate)
	names := make(chan string, 100)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	cfg := &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		names <- hello.ServerName
		return &cert, nil
	}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = tls.Server(c, cfg).Handshake()
			}()
		}
	}()
	_, port, _ = net.SplitHostPort(l.Addr().String())
	return port, names
}

// TestAllowed: what /probe may reach, rule by rule, and which family
// refuses the rest. Nothing is dialed to decide.
func TestAllowed(t *testing.T) {
	t.Parallel()
	dns := newFakeDNS(map[string][]string{
		"web.internal.example":           {"10.20.0.5"},
		"two.internal.example":           {"10.20.0.6", "2001:db8::6"},
		"meta.internal.example":          {"169.254.169.254"},
		"meta6.internal.example":         {"fd00:ec2::254"},
		"lo.internal.example":            {"127.0.0.1"},
		"lo6.internal.example":           {"::1"},
		"mapped.internal.example":        {"::ffff:127.0.0.1"},
		"zero.internal.example":          {"0.0.0.0"},
		"zero6.internal.example":         {"::"},
		"ll6.internal.example":           {"fe80::1"},
		"mixed.internal.example":         {"10.20.0.7", "127.0.0.1"},
		"db-1":                           {"10.30.0.1"},
		"db-1.evil.example":              {"10.30.0.1"},
		"a.b.internal.example":           {"10.20.0.8"},
		"deep.a.b.apps.example":          {"10.40.0.1"},
		"node-exporter.local.example":    {"127.0.0.1"},
		"configured.internal.example":    {"127.0.0.1"},
		"10.1.anything.attacker.example": {"10.1.2.3"},
	})
	p := proberFor(t, `
modules:
  internal:
    probe_allow:
      - "*.internal.example:443"
      - "10.1.0.0/16:*"
      - "[fd00::/8]:*"
      - "[2001:db8::1]:443"
      - "db-*:5432"
      - "**.apps.example:8000-8999"
      - "node-exporter.local.example:9100"
      - "127.0.0.1/32:9100"
      - "0.0.0.0/0:8443"
  strict: {}
endpoints:
  - targets: ["configured.internal.example:443", "[2001:db8::7]:8443", "127.0.0.1:443"]
    module: internal
  - targets: ["strict.example.com:636"]
    module: strict
`, shard.Shard{})
	dialer := &loopbackOnly{t: t}
	withNet(p, dns, dialer.dial)

	const ok, notAllowed, denied = "ok", "not allowed", "address denied"
	cases := []struct{ target, module, want string }{
		// Configured targets, as written and with their module only; trusted.
		{"configured.internal.example:443", "internal", ok},
		{"127.0.0.1:443", "internal", ok},
		{"[2001:db8::7]:8443", "internal", ok},
		{"strict.example.com:636", "strict", ok},
		{"strict.example.com:636", "internal", notAllowed},
		{"configured.internal.example:443", "strict", notAllowed},
		{"configured.internal.example:443", "default", notAllowed}, // the implicit default module allows nothing
		// Names, label by label.
		{"web.internal.example:443", "internal", ok},
		{"WEB.Internal.Example:443", "internal", ok},
		{"two.internal.example:443", "internal", ok},
		{"web.internal.example:444", "internal", notAllowed},
		{"internal.example:443", "internal", notAllowed},
		{"a.b.internal.example:443", "internal", notAllowed}, // "*" is one label
		{"web.internal.example.evil.com:443", "internal", notAllowed},
		{"db-1:5432", "internal", ok},
		{"db-1.evil.example:5432", "internal", notAllowed}, // "*" never crosses a dot
		{"deep.a.b.apps.example:8080", "internal", ok},     // "**." is any number of labels
		{"deep.a.b.apps.example:9000", "internal", notAllowed},
		{"web.internal.example:443", "strict", notAllowed}, // probe_allow is per module
		// Addresses, by range, and never as names.
		{"10.1.2.3:443", "internal", ok},
		{"[::ffff:10.1.2.3]:443", "internal", ok},
		{"10.2.0.1:443", "internal", notAllowed},
		{"10.1.anything.attacker.example:443", "internal", notAllowed},
		{"[2001:db8::1]:443", "internal", ok},
		{"[2001:db8::2]:443", "internal", notAllowed},
		{"[fd00::1]:22", "internal", ok},
		{"2130706433:443", "internal", notAllowed},
		// The deny list: names resolving to the exporter's own host or the
		// link-local network (cloud metadata), however written.
		{"meta.internal.example:443", "internal", denied},
		{"meta6.internal.example:443", "internal", denied},
		{"lo.internal.example:443", "internal", denied},
		{"lo6.internal.example:443", "internal", denied},
		{"mapped.internal.example:443", "internal", denied},
		{"zero.internal.example:443", "internal", denied},
		{"zero6.internal.example:443", "internal", denied},
		{"ll6.internal.example:443", "internal", denied},
		{"mixed.internal.example:443", "internal", denied}, // one denied address is enough
		// ... and addresses inside broader ranges.
		{"[fd00:ec2::254]:443", "internal", denied},
		{"10.9.9.9:8443", "internal", ok},
		{"127.0.0.1:8443", "internal", denied},
		{"169.254.169.254:8443", "internal", denied},
		{"[::ffff:169.254.169.254]:8443", "internal", denied},
		{"0.0.0.0:8443", "internal", denied},
		// A rule inside a denied range names it explicitly, on its ports.
		{"127.0.0.1:9100", "internal", ok},
		{"node-exporter.local.example:9100", "internal", ok},
		// Not a target.
		{"nosuch.internal.example:443", "internal", ok}, // allowed; the probe reports the DNS failure
		{"configured.internal.example", "internal", notAllowed},
		{"configured.internal.example:http", "internal", notAllowed},
		{":443", "internal", notAllowed},
		{"x:1", "nosuchmodule", notAllowed},
	}
	for _, tc := range cases {
		err := p.Allowed(tc.target, tc.module)
		got := ok
		switch {
		case errors.Is(err, ErrNotAllowed):
			got = notAllowed
		case errors.Is(err, ErrAddressDenied):
			got = denied
		case err != nil:
			got = "unclassified: " + err.Error()
		}
		if got != tc.want {
			t.Errorf("Allowed(%q, %q) = %v, want %s", tc.target, tc.module, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), got+": ") {
			t.Errorf("Allowed(%q, %q): message %q does not start with the rule family %q", tc.target, tc.module, err, got)
		}
	}
	if err := p.Allowed("x:1", "nosuchmodule"); err == nil || !strings.Contains(err.Error(), "unknown module") {
		t.Errorf("unknown module: %v", err)
	}
	if err := p.Allowed("lo.internal.example:443", "internal"); err == nil || !strings.Contains(err.Error(), "127.0.0.1/32:443") {
		t.Errorf("a denial should say which rule would admit the address: %v", err)
	}
	if d := dialer.seen(); len(d) != 0 {
		t.Errorf("deciding dialed %v", d)
	}
	if n := dns.questions("configured.internal.example"); n != 0 {
		t.Errorf("a configured target was resolved %d times to be admitted", n)
	}
}

// TestProbeDialsTheCheckedAddress: a name is resolved once; the probe dials
// the address that was checked, sends the name as SNI, and a DNS answer that
// changes in between (rebinding to the metadata address) is never used.
// Without an admission (or once it is stale) the probe checks again, and
// refuses before connecting.
func TestProbeDialsTheCheckedAddress(t *testing.T) {
	t.Parallel()
	port, sni := sniServer(t)
	dns := &fakeDNS{answers: map[string][][]string{
		"svc.rebind.example":   {{"127.0.0.1"}, {"169.254.169.254"}},
		"other.rebind.example": {{"169.254.169.254"}},
	}, asked: map[string]int{}}
	p := proberFor(t, fmt.Sprintf(`
modules:
  m:
    timeout: 5s
    probe_allow: ["*.rebind.example:%[1]s", "127.0.0.1/32:%[1]s", "0.0.0.0/0:*"]
`, port), shard.Shard{})
	dialer := &loopbackOnly{t: t}
	withNet(p, dns, dialer.dial)

	target := "svc.rebind.example:" + port
	if err := p.Allowed(target, "m"); err != nil {
		t.Fatalf("Allowed: %v", err)
	}
	f := p.Probe(context.Background(), target, "m")
	if f.Err != nil || len(f.Certs) != 2 {
		t.Fatalf("probe: %v, %d certificates", f.Err, len(f.Certs))
	}
	if got := <-sni; got != "svc.rebind.example" {
		t.Errorf("SNI %q, want the name", got)
	}
	if f.Verify.DNSName != "svc.rebind.example" {
		t.Errorf("verified against %q, want the name", f.Verify.DNSName)
	}
	if n := dns.questions("svc.rebind.example"); n != 1 {
		t.Errorf("the name was looked up %d times, want once", n)
	}
	if d := dialer.seen(); len(d) != 1 || d[0] != "127.0.0.1:"+port {
		t.Errorf("dialed %v, want the checked address 127.0.0.1:%s once", d, port)
	}

	// Probe without a fresh admission: resolved again, checked again.
	other := "other.rebind.example:" + port
	f = p.Probe(context.Background(), other, "m")
	if !errors.Is(f.Err, ErrAddressDenied) || source.ClassOf(f.Err) != source.ClassConfig {
		t.Errorf("probe of a name resolving to the metadata address: %v (class %s), want address denied", f.Err, source.ClassOf(f.Err))
	}
	p.mu.Lock()
	p.admitted = newMemo[[]netip.Addr](maxRemembered) // the admission went stale
	p.mu.Unlock()
	f = p.Probe(context.Background(), target, "m")
	if !errors.Is(f.Err, ErrAddressDenied) {
		t.Errorf("probe after the name rebound to the metadata address: %v, want address denied", f.Err)
	}
	// An address a broad range admits but the deny list refuses: Probe
	// refuses it too, without Allowed.
	f = p.Probe(context.Background(), "127.0.0.2:"+port, "m")
	if !errors.Is(f.Err, ErrAddressDenied) {
		t.Errorf("probe of 127.0.0.2 through 0.0.0.0/0: %v, want address denied", f.Err)
	}
	if d := dialer.seen(); len(d) != 1 {
		t.Errorf("dialed %v, want no dial after the first probe", d)
	}
}

// TestConfiguredTargetsTrusted: a configured name is resolved once and its
// addresses dialed in order (the next when one refuses), loopback included:
// the deny list is for /probe's rules, not for what the operator listed.
func TestConfiguredTargetsTrusted(t *testing.T) {
	t.Parallel()
	port, sni := sniServer(t)
	dns := newFakeDNS(map[string][]string{"svc.cluster.example": {"127.0.0.3", "127.0.0.1"}})
	target := "svc.cluster.example:" + port
	p := proberFor(t, fmt.Sprintf("modules:\n  default:\n    timeout: 5s\nendpoints:\n  - targets: [%q]\n", target), shard.Shard{})
	dialer := &loopbackOnly{t: t}
	withNet(p, dns, dialer.dial)
	if err := p.Allowed(target, "default"); err != nil {
		t.Fatalf("Allowed: %v", err)
	}
	f := p.CollectAll(context.Background())[0]
	if f.Err != nil {
		t.Fatalf("probe: %v", f.Err)
	}
	if got := <-sni; got != "svc.cluster.example" {
		t.Errorf("SNI %q", got)
	}
	if d := dialer.seen(); len(d) != 2 || d[0] != "127.0.0.3:"+port || d[1] != "127.0.0.1:"+port {
		t.Errorf("dialed %v, want 127.0.0.3 (refused) then 127.0.0.1", d)
	}
	if n := dns.questions("svc.cluster.example"); n != 1 {
		t.Errorf("looked up %d times, want once", n)
	}
}

// TestAdmittedBounded: the addresses kept between admission and probe are
// bounded like the results, however many names callers try.
func TestAdmittedBounded(t *testing.T) {
	t.Parallel()
	var resolved atomic.Int64
	p := proberFor(t, "modules:\n  default:\n    probe_allow: [\"*.many.example:443\"]\n", shard.Shard{})
	withNet(p, resolverFunc(func(_ context.Context, host string) ([]net.IPAddr, error) {
		n := resolved.Add(1)
		if n%2 == 0 {
			return []net.IPAddr{{IP: net.ParseIP("127.0.0.1")}}, nil // refused: loopback
		}
		return []net.IPAddr{{IP: net.IPv4(10, byte(n>>16), byte(n>>8), byte(n))}}, nil
	}), (&loopbackOnly{t: t}).dial)
	for i := range 2 * maxRemembered {
		target := fmt.Sprintf("h%d.many.example:443", i)
		err := p.Allowed(target, "default")
		if (err == nil) != (i%2 == 0) {
			t.Fatalf("Allowed(%s) = %v", target, err)
		}
		_ = p.Allowed(fmt.Sprintf("h%d.elsewhere.example:443", i), "default") // refused: adds nothing
	}
	p.mu.Lock()
	n := p.admitted.len()
	p.mu.Unlock()
	if n > maxRemembered || n == 0 {
		t.Errorf("%d admissions kept, want between 1 and %d", n, maxRemembered)
	}
}

type resolverFunc func(ctx context.Context, host string) ([]net.IPAddr, error)

func (f resolverFunc) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return f(ctx, host)
}
