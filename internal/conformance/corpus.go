// Package conformance is a corpus of chain-verdict cases, generated at test
// time with internal/testpki: for each case, the certificates of a place in
// order, the CA file beside it, the private keys stored with it, the name
// an endpoint is reached by, and the reason certwatch must give for it as a
// file (and Kubernetes Secret) and as an endpoint, with the rationale. Its
// tests run every case through the inspector, the files, endpoint and
// Kubernetes sources, and `openssl verify` (see docs/conformance.md).
//
// The expectations follow certwatch's verdict rules, not any one library:
// where crypto/x509 or openssl answer otherwise, the corpus says what a
// careful operator should be told, and docs/conformance.md says why.
package conformance

import (
	"crypto"
	"crypto/x509"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

// The reasons, as the inspector's label values (the corpus does not import
// the inspector, so that its expectations stand apart from it).
const (
	OK               = "ok"
	Expired          = "expired"
	NotYetValid      = "not_yet_valid"
	HostnameMismatch = "hostname_mismatch"
	IncompleteChain  = "incomplete_chain"
	UnknownAuthority = "unknown_authority"
	InvalidUsage     = "invalid_usage"
	WeakSignature    = "weak_signature"
	WeakKey          = "weak_key"
	KeyMismatch      = "key_mismatch"
	Invalid          = "invalid"
)

// Precedence lists the reasons from the one that wins to the one that
// yields, after ok.
var Precedence = []string{Expired, NotYetValid, HostnameMismatch, IncompleteChain, UnknownAuthority,
	InvalidUsage, WeakSignature, WeakKey, KeyMismatch, Invalid}

// Worse reports whether reason a takes precedence over b (ok yields to all).
func Worse(a, b string) bool { return rank(a) < rank(b) }

func rank(r string) int {
	for i, p := range Precedence {
		if p == r {
			return i
		}
	}
	return len(Precedence) // ok
}

// DefaultServerName is the name endpoints are reached by unless a case
// says otherwise.
const DefaultServerName = "localhost"

// Case is one place and what certwatch must say about it.
type Case struct {
	Name   string // unique, stable: docs/conformance.md refers to it
	Family string
	Why    string // one line: the rule the case exercises

	Place []*testpki.Cert // the certificates of the place, in stored or presented order
	// CA is the content of the CA file (ca_file, or a Secret's ca.crt);
	// nil means none: the system roots.
	CA []*testpki.Cert
	// Keys are the private keys stored with the certificates (files and
	// Secrets; an endpoint proves its key in the handshake instead).
	Keys []crypto.Signer
	// ServerName is the name an endpoint is reached by ("" means
	// DefaultServerName); an IP address is checked against IP SANs.
	ServerName string

	File     string // expected reason as a file or a Kubernetes Secret
	Endpoint string // expected reason as an endpoint; "" when it cannot be served
	// EndpointWhy says why the endpoint's reason differs from the file's,
	// or why the case cannot be served.
	EndpointWhy string

	// Leaves are the indices in Place of the certificates a file's verdict
	// judges (those that issued no other); nil means just the first. The
	// openssl cross-check verifies each.
	Leaves []int
	// Bundle marks a place of anchors (all self-signed, or CAs none of
	// which issued another): each certificate stands on its own.
	Bundle bool
	// ChainNotAfter, when set, is the certificate whose not-after must be
	// the verdict's ChainNotAfter: as a file, and as an endpoint unless
	// EndpointChainNotAfter says otherwise.
	ChainNotAfter, EndpointChainNotAfter *testpki.Cert
	// TLS12RSAKeyExchange serves the endpoint with TLS 1.2 RSA key
	// exchange: its leaf's key is too small to sign a handshake.
	TLS12RSAKeyExchange bool
}

// Server returns the server name of the case as an endpoint.
func (c Case) Server() string {
	if c.ServerName == "" {
		return DefaultServerName
	}
	return c.ServerName
}

// ChainNotAfterIn returns the certificate whose not-after must be the
// verdict's ChainNotAfter in a mode ("file" or "endpoint"), nil when the
// case does not say.
func (c Case) ChainNotAfterIn(mode string) *testpki.Cert {
	if mode == "endpoint" && c.EndpointChainNotAfter != nil {
		return c.EndpointChainNotAfter
	}
	return c.ChainNotAfter
}

// LeafIndices returns Leaves, or the first certificate when unset.
func (c Case) LeafIndices() []int {
	if c.Leaves == nil {
		return []int{0}
	}
	return c.Leaves
}

var corpus struct {
	once  sync.Once
	cases []Case
	made  time.Time
}

// Corpus returns the cases, generated once per test binary. The first
// caller's t reports generation failures.
func Corpus(t testing.TB) []Case {
	t.Helper()
	corpus.once.Do(func() {
		corpus.made = time.Now()
		corpus.cases = build(t, corpus.made)
	})
	if corpus.cases == nil {
		t.Fatal("the corpus could not be generated (see the first test that asked for it)")
	}
	return corpus.cases
}

// builder makes the corpus's certificates.
type builder struct {
	t   testing.TB
	now time.Time
}

const day = 24 * time.Hour

func (b builder) root(cn string, o testpki.Options) *testpki.Cert {
	o.CommonName, o.IsCA = cn, true
	if o.NotAfter.IsZero() {
		o.NotAfter = b.now.Add(3650 * day)
	}
	if o.KeyType != "" && o.Key == nil {
		o.Key = b.key(o.KeyType)
	}
	return testpki.New(b.t, nil, o)
}

func (b builder) inter(parent *testpki.Cert, cn string, o testpki.Options) *testpki.Cert {
	o.CommonName = cn
	if !o.NoBasicConstraints {
		o.IsCA = true
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = b.now.Add(1825 * day)
	}
	if o.KeyType != "" && o.Key == nil {
		o.Key = b.key(o.KeyType)
	}
	return testpki.New(b.t, parent, o)
}

// leaf issues an end-entity certificate; without names in o it covers
// localhost and 127.0.0.1.
func (b builder) leaf(parent *testpki.Cert, o testpki.Options) *testpki.Cert {
	if o.CommonName == "" {
		o.CommonName = "localhost"
	}
	if o.DNSNames == nil && o.IPs == nil {
		o.DNSNames = []string{"localhost"}
		o.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if o.KeyType != "" && o.Key == nil {
		o.Key = b.key(o.KeyType)
	}
	return testpki.New(b.t, parent, o)
}

// key returns a fresh key where keys are cheap, a shared one for RSA (the
// corpus's certificates never need distinct RSA keys unless they ask for
// one by number, see keyN).
func (b builder) key(keyType string) crypto.Signer {
	switch keyType {
	case "rsa512", "rsa768", "rsa1024", "rsa2048", "rsa4096", "rsa8192", "dsa":
		return testpki.SharedKey(b.t, keyType, 0)
	}
	return testpki.NewKey(b.t, keyType)
}

func (b builder) keyN(keyType string, n int) crypto.Signer { return testpki.SharedKey(b.t, keyType, n) }

func (b builder) expired() (nb, na time.Time) { return b.now.Add(-400 * day), b.now.Add(-day) }
func (b builder) future() (nb, na time.Time)  { return b.now.Add(day), b.now.Add(400 * day) }

func list(cs ...*testpki.Cert) []*testpki.Cert { return cs }
func keys(cs ...*testpki.Cert) []crypto.Signer {
	out := make([]crypto.Signer, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Key)
	}
	return out
}

func ipNet(cidr string) *net.IPNet {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(err)
	}
	return n
}

func build(t testing.TB, now time.Time) []Case {
	t.Helper()
	// The slow keys first, in the background, while the rest is made.
	testpki.PrepareSharedKey("rsa8192", 0)
	testpki.PrepareSharedKey("rsa4096", 0)
	for _, kt := range []string{"rsa2048", "rsa1024", "rsa768", "rsa512", "dsa"} {
		testpki.PrepareSharedKey(kt, 0)
	}
	testpki.PrepareSharedKey("rsa2048", 1)

	b := builder{t: t, now: now}
	var cs []Case
	add := func(c ...Case) { cs = append(cs, c...) }

	rootA := b.root("Root A", testpki.Options{})
	intA := b.inter(rootA, "Intermediate A", testpki.Options{})
	rootB := b.root("Root B", testpki.Options{})
	intB := b.inter(rootB, "Intermediate B", testpki.Options{})
	leaf := b.leaf(intA, testpki.Options{})

	add(validity(b, rootA, intA, intB, leaf)...)
	add(names(b, rootA, intA)...)
	add(constraints(b, rootA, intA)...)
	add(usages(b, rootA, intA, intB)...)
	add(signatures(b, rootA, intA)...)
	add(keySizes(b, rootA, intA)...)
	add(shapes(b, rootA, intA, rootB, intB, leaf)...)
	add(keyMatch(b, rootA, intA, intB, leaf)...)
	return cs
}

func validity(b builder, rootA, intA, intB, leaf *testpki.Cert) []Case {
	ca := list(rootA)
	nb, na := b.expired()
	expLeaf := b.leaf(intA, testpki.Options{NotBefore: nb, NotAfter: na})
	fnb, fna := b.future()
	futLeaf := b.leaf(intA, testpki.Options{NotBefore: fnb, NotAfter: fna})

	expInter := b.inter(rootA, "Expired intermediate", testpki.Options{NotBefore: b.now.Add(-800 * day), NotAfter: b.now.Add(-day)})
	underExpInter := b.leaf(expInter, testpki.Options{NotBefore: b.now.Add(-10 * day)})
	futInter := b.inter(rootA, "Future intermediate", testpki.Options{NotBefore: fnb, NotAfter: b.now.Add(800 * day)})
	underFutInter := b.leaf(futInter, testpki.Options{})

	expRoot := b.root("Expired root", testpki.Options{NotBefore: b.now.Add(-4000 * day), NotAfter: b.now.Add(-day)})
	underExpRoot := b.inter(expRoot, "Intermediate of an expired root", testpki.Options{NotBefore: b.now.Add(-10 * day)})
	leafExpRoot := b.leaf(underExpRoot, testpki.Options{})
	futRoot := b.root("Future root", testpki.Options{NotBefore: fnb, NotAfter: b.now.Add(4000 * day)})
	underFutRoot := b.inter(futRoot, "Intermediate of a future root", testpki.Options{})
	leafFutRoot := b.leaf(underFutRoot, testpki.Options{})

	shortInter := b.inter(rootA, "Short intermediate", testpki.Options{NotAfter: b.now.Add(30 * day)})
	underShortInter := b.leaf(shortInter, testpki.Options{})
	shortRoot := b.root("Short root", testpki.Options{NotAfter: b.now.Add(20 * day)})
	underShortRoot := b.inter(shortRoot, "Intermediate of a short root", testpki.Options{NotAfter: b.now.Add(60 * day)})
	leafShortRoot := b.leaf(underShortRoot, testpki.Options{})

	expMismatch := b.leaf(intA, testpki.Options{CommonName: "other.example", DNSNames: []string{"other.example"}, NotBefore: nb, NotAfter: na})
	expUnknown := b.leaf(intB, testpki.Options{NotBefore: nb, NotAfter: na})
	futUnderExpInter := b.leaf(expInter, testpki.Options{NotBefore: fnb, NotAfter: b.now.Add(30 * day)})
	expRootAlone := b.root("Expired lone root", testpki.Options{NotBefore: nb, NotAfter: na})

	const v = "validity"
	return []Case{
		{Name: "ok-full-chain", Family: v, Why: "leaf and intermediate presented, root in the CA file: the baseline",
			Place: list(leaf, intA), CA: ca, File: OK, Endpoint: OK, ChainNotAfter: leaf},
		{Name: "leaf-expired", Family: v, Why: "the leaf is past its not-after",
			Place: list(expLeaf, intA), CA: ca, File: Expired, Endpoint: Expired, ChainNotAfter: expLeaf},
		{Name: "leaf-not-yet-valid", Family: v, Why: "the leaf is before its not-before",
			Place: list(futLeaf, intA), CA: ca, File: NotYetValid, Endpoint: NotYetValid},
		{Name: "intermediate-expired", Family: v, Why: "an expired intermediate breaks a leaf that is in date",
			Place: list(underExpInter, expInter), CA: ca, File: Expired, Endpoint: Expired, ChainNotAfter: expInter},
		{Name: "intermediate-not-yet-valid", Family: v, Why: "an intermediate before its not-before breaks the chain",
			Place: list(underFutInter, futInter), CA: ca, File: NotYetValid, Endpoint: NotYetValid},
		{Name: "root-expired", Family: v, Why: "the trust anchor itself has expired: the chain is expired, not untrusted",
			Place: list(leafExpRoot, underExpRoot), CA: list(expRoot), File: Expired, Endpoint: Expired},
		{Name: "root-not-yet-valid", Family: v, Why: "the trust anchor is not valid yet",
			Place: list(leafFutRoot, underFutRoot), CA: list(futRoot), File: NotYetValid, Endpoint: NotYetValid},
		{Name: "intermediate-expires-before-leaf", Family: v, Why: "valid now; the chain breaks when the intermediate expires, before the leaf",
			Place: list(underShortInter, shortInter), CA: ca, File: OK, Endpoint: OK, ChainNotAfter: shortInter},
		{Name: "root-expires-first", Family: v, Why: "valid now; the anchor, never presented, is what expires first",
			Place: list(leafShortRoot, underShortRoot), CA: list(shortRoot), File: OK, Endpoint: OK, ChainNotAfter: shortRoot},
		{Name: "expired-beats-hostname-mismatch", Family: v, Why: "expired takes precedence over a name the leaf does not cover",
			Place: list(expMismatch, intA), CA: ca, File: Expired, Endpoint: Expired},
		{Name: "expired-beats-unknown-authority", Family: v, Why: "an expired leaf with no path to an anchor is reported as expired: the first reason in precedence order",
			Place: list(expUnknown, intB), CA: ca, File: Expired, Endpoint: Expired},
		{Name: "expired-beats-not-yet-valid", Family: v, Why: "an expired intermediate over a leaf whose dates are also wrong: expired comes first",
			Place: list(futUnderExpInter, expInter), CA: ca, File: Expired, Endpoint: Expired},
		{Name: "lone-expired-root", Family: v, Why: "a file holding one expired root is a bundle: judged on its dates",
			Place: list(expRootAlone), File: Expired, Endpoint: Expired, Bundle: true,
			EndpointWhy: "as an endpoint the root is the leaf: expired wins over its other faults"},
		{Name: "bundle-with-future-root", Family: v, Why: "a bundle of roots is as good as its worst member's dates",
			Place: list(rootA, futRoot), File: NotYetValid, Endpoint: HostnameMismatch, Bundle: true,
			EndpointWhy: "the first root presented is the leaf: it names no host"},
	}
}

func names(b builder, rootA, intA *testpki.Cert) []Case {
	ca := list(rootA)
	mkUnder := func(parent *testpki.Cert, dns []string, ips ...net.IP) *testpki.Cert {
		cn := "names"
		if len(dns) > 0 {
			cn = dns[0]
		}
		if dns == nil {
			dns = []string{}
		}
		return b.leaf(parent, testpki.Options{CommonName: cn, DNSNames: dns, IPs: ips})
	}
	mk := func(dns []string, ips ...net.IP) *testpki.Cert { return mkUnder(intA, dns, ips...) }
	lo := net.IPv4(127, 0, 0, 1)
	cnOnly := b.leaf(intA, testpki.Options{CommonName: "localhost", DNSNames: []string{}})
	cnIgnored := b.leaf(intA, testpki.Options{CommonName: "localhost", DNSNames: []string{"other.example"}})

	emailOnly := b.leaf(intA, testpki.Options{CommonName: "mail user", DNSNames: []string{}, Emails: []string{"user@example.test"}})
	spiffe := b.leaf(intA, testpki.Options{CommonName: "workload", DNSNames: []string{}, URIs: []string{"spiffe://example.test/ns/web/sa/api"}})
	ncInter := b.inter(rootA, "Constrained to example.test", testpki.Options{PermittedDNS: []string{"example.test"}})
	exInter := b.inter(rootA, "Excluding bad.example.test", testpki.Options{ExcludedDNS: []string{"bad.example.test"}})
	ipInter := b.inter(rootA, "Excluding 127.0.0.0/8", testpki.Options{ExcludedIPs: []*net.IPNet{ipNet("127.0.0.0/8")}})
	ncRoot := b.root("Root constrained to example.test", testpki.Options{PermittedDNS: []string{"example.test"}})
	underNCRoot := b.inter(ncRoot, "Intermediate of a constrained root", testpki.Options{})

	const f = "names"
	mismatch := "the endpoint's name is not covered; files are not reached by a name"
	return []Case{
		{Name: "san-dns-mismatch", Family: f, Why: "the leaf names another host",
			Place: list(mk([]string{"other.example"}), intA), CA: ca, File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "san-ip-match", Family: f, Why: "an IP address is matched against IP SANs",
			Place: list(mk(nil, lo), intA), CA: ca, ServerName: "127.0.0.1", File: OK, Endpoint: OK},
		{Name: "san-ip-mismatch", Family: f, Why: "a different IP SAN does not cover the address",
			Place: list(mk(nil, net.IPv4(127, 0, 0, 2)), intA), CA: ca, ServerName: "127.0.0.1", File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "ip-in-dns-san", Family: f, Why: "an address written as a DNS SAN does not cover it: addresses match IP SANs only",
			Place: list(mk([]string{"127.0.0.1"}), intA), CA: ca, ServerName: "127.0.0.1", File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "wildcard-match", Family: f, Why: "*.example.test covers one label below example.test",
			Place: list(mk([]string{"*.example.test"}), intA), CA: ca, ServerName: "www.example.test", File: OK, Endpoint: OK},
		{Name: "wildcard-not-apex", Family: f, Why: "*.example.test does not cover example.test itself",
			Place: list(mk([]string{"*.example.test"}), intA), CA: ca, ServerName: "example.test", File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "wildcard-one-label", Family: f, Why: "a wildcard covers exactly one label",
			Place: list(mk([]string{"*.example.test"}), intA), CA: ca, ServerName: "a.b.example.test", File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "wildcard-partial-label", Family: f, Why: "a wildcard inside a label (w*) is not honoured (RFC 9525 6.3)",
			Place: list(mk([]string{"w*.example.test"}), intA), CA: ca, ServerName: "www.example.test", File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "wildcard-not-leftmost", Family: f, Why: "a wildcard is only honoured as the whole leftmost label",
			Place: list(mk([]string{"www.*.example.test"}), intA), CA: ca, ServerName: "www.a.example.test", File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "wildcard-bare", Family: f, Why: "a bare * is no wildcard for a single-label name: clients require a name below a domain",
			Place: list(mk([]string{"*"}), intA), CA: ca, ServerName: "localhost", File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "cn-only", Family: f, Why: "a common name without SANs names no host (RFC 9525: CN-ID is not used)",
			Place: list(cnOnly, intA), CA: ca, File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "cn-ignored-with-san", Family: f, Why: "with a DNS SAN present the common name is never consulted",
			Place: list(cnIgnored, intA), CA: ca, File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "san-email-only", Family: f, Why: "an e-mail certificate: fine in a file, names no host",
			Place: list(emailOnly, intA), CA: ca, File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "san-uri-only", Family: f, Why: "a SPIFFE workload certificate (URI SAN only): fine in a file, names no host",
			Place: list(spiffe, intA), CA: ca, File: OK, Endpoint: HostnameMismatch, EndpointWhy: mismatch},
		{Name: "server-name-trailing-dot", Family: f, Why: "a fully qualified name with its trailing dot is the same host",
			Place: list(mk([]string{"www.example.test"}), intA), CA: ca, ServerName: "www.example.test.", File: OK, Endpoint: OK},
		{Name: "san-case-insensitive", Family: f, Why: "DNS names compare without regard to ASCII case",
			Place: list(mk([]string{"WWW.Example.Test"}), intA), CA: ca, ServerName: "www.example.test", File: OK, Endpoint: OK},
		{Name: "name-constraint-permitted", Family: f, Why: "a name inside a permitted subtree passes",
			Place: list(mkUnder(ncInter, []string{"www.example.test"}), ncInter), CA: ca, ServerName: "www.example.test", File: OK, Endpoint: OK},
		{Name: "name-constraint-permitted-violation", Family: f, Why: "a SAN outside the intermediate's permitted subtree breaks the chain, file or endpoint",
			Place: list(mkUnder(ncInter, []string{"www.other.test"}), ncInter), CA: ca, ServerName: "www.other.test", File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "name-constraint-excluded-violation", Family: f, Why: "a SAN inside an excluded subtree breaks the chain",
			Place: list(mkUnder(exInter, []string{"host.bad.example.test"}), exInter), CA: ca, ServerName: "host.bad.example.test", File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "name-constraint-excluded-ip", Family: f, Why: "an IP SAN inside an excluded range breaks the chain",
			Place: list(mkUnder(ipInter, nil, lo), ipInter), CA: ca, ServerName: "127.0.0.1", File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "name-constraint-on-root", Family: f, Why: "the anchor's own name constraints apply too",
			Place: list(mkUnder(underNCRoot, []string{"www.other.test"}), underNCRoot), CA: list(ncRoot), ServerName: "www.other.test", File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "name-constraint-dns-leaves-ip-alone", Family: f, Why: "a DNS constraint does not restrict IP SANs",
			Place: list(mkUnder(ncInter, nil, lo), ncInter), CA: ca, ServerName: "127.0.0.1", File: OK, Endpoint: OK},
	}
}

func constraints(b builder, rootA, intA *testpki.Cert) []Case {
	ca := list(rootA)
	notCA := b.inter(rootA, "Not a CA", testpki.Options{NoBasicConstraints: true, IsCA: false})
	// NoBasicConstraints is cleared so the certificate says CA:FALSE.
	saysNotCA := testpki.New(b.t, rootA, testpki.Options{CommonName: "CA:FALSE issuer", NotAfter: b.now.Add(1825 * day)})
	noCertSign := b.inter(rootA, "CA without keyCertSign", testpki.Options{KeyUsage: x509.KeyUsageDigitalSignature})

	pl0 := b.inter(rootA, "Path length 0", testpki.Options{PathLen: testpki.Int(0)})
	belowPL0 := b.inter(pl0, "Below path length 0", testpki.Options{})
	pl1 := b.inter(rootA, "Path length 1", testpki.Options{PathLen: testpki.Int(1)})
	belowPL1 := b.inter(pl1, "Below path length 1", testpki.Options{})
	rootPL0 := b.root("Root with path length 0", testpki.Options{PathLen: testpki.Int(0)})
	underRootPL0 := b.inter(rootPL0, "Below a root of path length 0", testpki.Options{})

	// A key rollover: a self-issued certificate of the root's name for a
	// new key, issued by the old one (RFC 5280 6.1: not counted against
	// the path length).
	rollRoot := b.root("Rollover Root", testpki.Options{PathLen: testpki.Int(0)})
	rolled := b.inter(rollRoot, "Rollover Root", testpki.Options{})
	certSignLeaf := b.leaf(intA, testpki.Options{KeyUsage: x509.KeyUsageCertSign})

	critLeaf := b.leaf(intA, testpki.Options{UnknownCriticalExtension: true})
	critInter := b.inter(rootA, "Intermediate with an unknown critical extension", testpki.Options{UnknownCriticalExtension: true})

	caLeaf := b.leaf(intA, testpki.Options{IsCA: true})
	selfCALeaf := b.leaf(nil, testpki.Options{IsCA: true})

	const f = "basic constraints"
	return []Case{
		{Name: "issuer-without-basic-constraints", Family: f, Why: "a v3 issuer without basicConstraints is not a CA",
			Place: list(b.leaf(notCA, testpki.Options{}), notCA), CA: ca, File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "issuer-ca-false", Family: f, Why: "an issuer that says CA:FALSE may not issue",
			Place: list(b.leaf(saysNotCA, testpki.Options{}), saysNotCA), CA: ca, File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "issuer-without-keycertsign", Family: f, Why: "a CA whose key usage lacks keyCertSign may not sign certificates (RFC 5280 4.2.1.3)",
			Place: list(b.leaf(noCertSign, testpki.Options{}), noCertSign), CA: ca, File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "path-length-0-ok", Family: f, Why: "path length 0 allows end-entity certificates directly below",
			Place: list(b.leaf(pl0, testpki.Options{}), pl0), CA: ca, File: OK, Endpoint: OK},
		{Name: "path-length-0-exceeded", Family: f, Why: "path length 0 forbids a further intermediate",
			Place: list(b.leaf(belowPL0, testpki.Options{}), belowPL0, pl0), CA: ca, File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "path-length-1-ok", Family: f, Why: "path length 1 allows one further intermediate",
			Place: list(b.leaf(belowPL1, testpki.Options{}), belowPL1, pl1), CA: ca, File: OK, Endpoint: OK},
		{Name: "root-path-length-0-exceeded", Family: f, Why: "the anchor's path length counts too",
			Place: list(b.leaf(underRootPL0, testpki.Options{}), underRootPL0), CA: list(rootPL0), File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "self-issued-counts-against-path-length", Family: f, Why: "crypto/x509 counts a self-issued (key rollover) intermediate against the root's path length 0, where RFC 5280 does not: certwatch reports what Go clients will do",
			Place: list(b.leaf(rolled, testpki.Options{}), rolled), CA: list(rollRoot), File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "leaf-key-usage-not-checked", Family: f, Why: "a leaf's key usage bits (keyCertSign only here) are not checked, as crypto/x509 does not check them",
			Place: list(certSignLeaf, intA), CA: ca, File: OK, Endpoint: OK},
		{Name: "leaf-unknown-critical-extension", Family: f, Why: "a critical extension the verifier does not know must make it reject the certificate (RFC 5280 4.2)",
			Place: list(critLeaf, intA), CA: ca, File: Invalid, Endpoint: Invalid},
		{Name: "intermediate-unknown-critical-extension", Family: f, Why: "the same on the intermediate",
			Place: list(b.leaf(critInter, testpki.Options{}), critInter), CA: ca, File: Invalid, Endpoint: Invalid},
		{Name: "leaf-is-ca", Family: f, Why: "a CA certificate with a host name, issued by the intermediate",
			Place: list(caLeaf, intA), CA: ca, File: OK, Endpoint: InvalidUsage,
			EndpointWhy: "a TLS server must not present a CA certificate as its own; a file may hold a sub-CA"},
		{Name: "self-signed-ca-leaf-trusted", Family: f, Why: "a self-signed CA used as a server certificate and trusted by the CA file",
			Place: list(selfCALeaf), CA: list(selfCALeaf), File: OK, Endpoint: InvalidUsage, Bundle: true,
			EndpointWhy: "a server presenting a CA certificate as its own is misconfigured even when it is trusted"},
	}
}

func usages(b builder, rootA, intA, intB *testpki.Cert) []Case {
	ca := list(rootA)
	eku := func(u ...x509.ExtKeyUsage) *testpki.Cert {
		return b.leaf(intA, testpki.Options{ExtKeyUsage: u})
	}
	clientOnly := eku(x509.ExtKeyUsageClientAuth)
	clientInter := b.inter(rootA, "Intermediate for clients", testpki.Options{CAExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	serverInter := b.inter(rootA, "Intermediate for servers", testpki.Options{CAExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	const f = "key usage"
	onlyEndpoints := "only endpoints need serverAuth: files hold client and server certificates alike"
	return []Case{
		{Name: "eku-client-only", Family: f, Why: "a clientAuth-only leaf",
			Place: list(clientOnly, intA), CA: ca, File: OK, Endpoint: InvalidUsage, EndpointWhy: onlyEndpoints},
		{Name: "eku-absent", Family: f, Why: "no EKU extension means no restriction",
			Place: list(b.leaf(intA, testpki.Options{NoExtKeyUsage: true}), intA), CA: ca, File: OK, Endpoint: OK},
		{Name: "eku-empty", Family: f, Why: "an EKU extension with no purpose is malformed (RFC 5280: SIZE (1..MAX)), whatever the use",
			Place: list(b.leaf(intA, testpki.Options{EmptyExtKeyUsage: true}), intA), CA: ca, File: InvalidUsage, Endpoint: InvalidUsage},
		{Name: "eku-code-signing", Family: f, Why: "a codeSigning-only leaf",
			Place: list(eku(x509.ExtKeyUsageCodeSigning), intA), CA: ca, File: OK, Endpoint: InvalidUsage, EndpointWhy: onlyEndpoints},
		{Name: "eku-any", Family: f, Why: "anyExtendedKeyUsage allows server authentication",
			Place: list(eku(x509.ExtKeyUsageAny), intA), CA: ca, File: OK, Endpoint: OK},
		{Name: "eku-server-only", Family: f, Why: "a serverAuth-only leaf",
			Place: list(eku(x509.ExtKeyUsageServerAuth), intA), CA: ca, File: OK, Endpoint: OK},
		{Name: "eku-intermediate-client-only", Family: f, Why: "an intermediate restricted to clientAuth cannot vouch for a server",
			Place: list(b.leaf(clientInter, testpki.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), clientInter), CA: ca,
			File: OK, Endpoint: InvalidUsage, EndpointWhy: onlyEndpoints},
		{Name: "eku-intermediate-server", Family: f, Why: "an intermediate restricted to serverAuth over a server leaf",
			Place: list(b.leaf(serverInter, testpki.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), serverInter), CA: ca,
			File: OK, Endpoint: OK},
		{Name: "eku-wrong-and-hostname-mismatch", Family: f, Why: "hostname_mismatch takes precedence over invalid_usage",
			Place: list(b.leaf(intA, testpki.Options{CommonName: "other.example", DNSNames: []string{"other.example"},
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), intA), CA: ca,
			File: OK, Endpoint: HostnameMismatch, EndpointWhy: onlyEndpoints + "; the name is checked first"},
		{Name: "eku-wrong-and-unknown-authority", Family: f, Why: "unknown_authority takes precedence over invalid_usage",
			Place: list(b.leaf(intB, testpki.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), intB), CA: ca,
			File: UnknownAuthority, Endpoint: UnknownAuthority},
	}
}

func signatures(b builder, rootA, intA *testpki.Cert) []Case {
	ca := list(rootA)
	rsaRoot := b.root("RSA root", testpki.Options{KeyType: "rsa2048"})
	rsaInter := b.inter(rsaRoot, "RSA intermediate", testpki.Options{Key: b.keyN("rsa2048", 1)})
	rsaCA := list(rsaRoot)
	nb, na := b.expired()

	sha1Inter := b.inter(rsaRoot, "SHA-1 intermediate", testpki.Options{SigAlg: x509.SHA1WithRSA})
	md5Inter := b.inter(rsaRoot, "MD5 intermediate", testpki.Options{SigAlg: x509.MD5WithRSA})
	sha1Root := b.root("SHA-1 root", testpki.Options{KeyType: "rsa2048", SigAlg: x509.SHA1WithRSA})
	underSHA1Root := b.inter(sha1Root, "Intermediate of a SHA-1 root", testpki.Options{})
	md5Root := b.root("MD5 root", testpki.Options{KeyType: "rsa2048", SigAlg: x509.MD5WithRSA})
	underMD5Root := b.inter(md5Root, "Intermediate of an MD5 root", testpki.Options{})
	unrelatedSHA1 := b.root("Unrelated SHA-1 root", testpki.Options{KeyType: "rsa2048", SigAlg: x509.SHA1WithRSA})

	pssRoot := b.root("RSA-PSS root", testpki.Options{KeyType: "rsa2048", SigAlg: x509.SHA256WithRSAPSS})
	pssInter := b.inter(pssRoot, "RSA-PSS intermediate", testpki.Options{Key: b.keyN("rsa2048", 1), SigAlg: x509.SHA256WithRSAPSS})
	p384Root := b.root("P-384 root", testpki.Options{KeyType: "ecdsa384", SigAlg: x509.ECDSAWithSHA384})
	p384Inter := b.inter(p384Root, "P-384 intermediate", testpki.Options{KeyType: "ecdsa384", SigAlg: x509.ECDSAWithSHA384})
	edRoot := b.root("Ed25519 root", testpki.Options{KeyType: "ed25519"})
	edInter := b.inter(edRoot, "Ed25519 intermediate", testpki.Options{KeyType: "ed25519"})

	const f = "signatures"
	return []Case{
		{Name: "leaf-sha1-rsa", Family: f, Why: "a SHA-1 signature on the leaf",
			Place: list(b.leaf(rsaInter, testpki.Options{SigAlg: x509.SHA1WithRSA}), rsaInter), CA: rsaCA, File: WeakSignature, Endpoint: WeakSignature},
		{Name: "leaf-sha1-ecdsa", Family: f, Why: "an ECDSA-SHA1 signature on the leaf",
			Place: list(b.leaf(intA, testpki.Options{SigAlg: x509.ECDSAWithSHA1}), intA), CA: ca, File: WeakSignature, Endpoint: WeakSignature},
		{Name: "leaf-md5-rsa", Family: f, Why: "an MD5 signature on the leaf",
			Place: list(b.leaf(rsaInter, testpki.Options{SigAlg: x509.MD5WithRSA}), rsaInter), CA: rsaCA, File: WeakSignature, Endpoint: WeakSignature},
		{Name: "intermediate-sha1", Family: f, Why: "a SHA-1 signature on the intermediate",
			Place: list(b.leaf(sha1Inter, testpki.Options{}), sha1Inter), CA: rsaCA, File: WeakSignature, Endpoint: WeakSignature},
		{Name: "intermediate-md5", Family: f, Why: "an MD5 signature on the intermediate",
			Place: list(b.leaf(md5Inter, testpki.Options{}), md5Inter), CA: rsaCA, File: WeakSignature, Endpoint: WeakSignature},
		{Name: "root-self-signed-sha1", Family: f, Why: "an anchor's own signature is never relied upon",
			Place: list(b.leaf(underSHA1Root, testpki.Options{}), underSHA1Root), CA: list(sha1Root), File: OK, Endpoint: OK},
		{Name: "root-self-signed-md5", Family: f, Why: "even an MD5 self-signature on the anchor does not matter",
			Place: list(b.leaf(underMD5Root, testpki.Options{}), underMD5Root), CA: list(md5Root), File: OK, Endpoint: OK},
		{Name: "sha1-leaf-expired", Family: f, Why: "expired takes precedence over a weak signature",
			Place: list(b.leaf(rsaInter, testpki.Options{SigAlg: x509.SHA1WithRSA, NotBefore: nb, NotAfter: na}), rsaInter), CA: rsaCA, File: Expired, Endpoint: Expired},
		{Name: "unrelated-sha1-root-in-place", Family: f, Why: "a SHA-1 certificate off the leaf's path does not count",
			Place: list(b.leaf(intA, testpki.Options{}), intA, unrelatedSHA1), CA: ca, File: OK, Endpoint: OK, Leaves: []int{0}},
		{Name: "sha1-beats-weak-key", Family: f, Why: "weak_signature takes precedence over weak_key",
			Place: list(b.leaf(rsaInter, testpki.Options{SigAlg: x509.SHA1WithRSA, KeyType: "rsa1024"}), rsaInter), CA: rsaCA, File: WeakSignature, Endpoint: WeakSignature},
		{Name: "rsa-pss-chain", Family: f, Why: "RSA-PSS signatures throughout",
			Place: list(b.leaf(pssInter, testpki.Options{KeyType: "rsa2048", SigAlg: x509.SHA256WithRSAPSS}), pssInter), CA: list(pssRoot), File: OK, Endpoint: OK},
		{Name: "ecdsa-p384-sha384-chain", Family: f, Why: "P-384 keys with ECDSA-SHA384 throughout",
			Place: list(b.leaf(p384Inter, testpki.Options{KeyType: "ecdsa384", SigAlg: x509.ECDSAWithSHA384}), p384Inter), CA: list(p384Root), File: OK, Endpoint: OK},
		{Name: "ed25519-leaf", Family: f, Why: "an Ed25519 leaf under an ECDSA intermediate",
			Place: list(b.leaf(intA, testpki.Options{KeyType: "ed25519"}), intA), CA: ca, File: OK, Endpoint: OK},
		{Name: "ed25519-chain", Family: f, Why: "Ed25519 keys and signatures throughout",
			Place: list(b.leaf(edInter, testpki.Options{KeyType: "ed25519"}), edInter), CA: list(edRoot), File: OK, Endpoint: OK},
	}
}

func keySizes(b builder, rootA, intA *testpki.Cert) []Case {
	ca := list(rootA)
	leafKey := func(kt string) *testpki.Cert { return b.leaf(intA, testpki.Options{KeyType: kt}) }
	interKey := func(kt string) (*testpki.Cert, *testpki.Cert) {
		in := b.inter(rootA, kt+" intermediate", testpki.Options{KeyType: kt})
		return b.leaf(in, testpki.Options{}), in
	}
	rootKey := func(kt string) (*testpki.Cert, *testpki.Cert, *testpki.Cert) {
		r := b.root(kt+" root", testpki.Options{KeyType: kt})
		in := b.inter(r, "Intermediate of a "+kt+" root", testpki.Options{})
		return b.leaf(in, testpki.Options{}), in, r
	}
	case3 := func(name, why, want string, l, in, r *testpki.Cert) Case {
		return Case{Name: name, Family: "keys", Why: why, Place: list(l, in), CA: list(r), File: want, Endpoint: want}
	}
	case2 := func(name, why, want string, l, in *testpki.Cert) Case {
		return Case{Name: name, Family: "keys", Why: why, Place: list(l, in), CA: ca, File: want, Endpoint: want}
	}
	l768, i768 := interKey("rsa768")
	l512, i512 := interKey("rsa512")
	l1024, i1024 := interKey("rsa1024")
	lp224, ip224 := interKey("ecdsa224")
	lr1024, ir1024, r1024 := rootKey("rsa1024")
	lr512, ir512, r512 := rootKey("rsa512")
	lrp224, irp224, rp224 := rootKey("ecdsa224")
	lrDSA, irDSA, rDSA := rootKey("dsa")
	lDSAInter, iDSA := interKey("dsa")
	nb, na := b.expired()
	unsignable := "a TLS server cannot sign a handshake with this key, so the case cannot be served"

	cs := []Case{
		{Name: "leaf-rsa512", Family: "keys", Why: "RSA under 2048 bits is weak", Place: list(leafKey("rsa512"), intA), CA: ca,
			File: WeakKey, Endpoint: WeakKey, TLS12RSAKeyExchange: true},
		case2("leaf-rsa768", "RSA under 2048 bits is weak", WeakKey, leafKey("rsa768"), intA),
		case2("leaf-rsa1024", "RSA-1024 is weak (NIST SP 800-131A: disallowed since 2013)", WeakKey, leafKey("rsa1024"), intA),
		case2("leaf-rsa2048", "RSA-2048 is the floor", OK, leafKey("rsa2048"), intA),
		case2("leaf-rsa4096", "RSA-4096", OK, leafKey("rsa4096"), intA),
		case2("leaf-rsa8192", "RSA-8192", OK, leafKey("rsa8192"), intA),
		{Name: "leaf-p224", Family: "keys", Why: "ECDSA under 256 bits is weak", Place: list(leafKey("ecdsa224"), intA), CA: ca,
			File: WeakKey, EndpointWhy: unsignable + " (TLS has no P-224 signature scheme)"},
		case2("leaf-p256", "ECDSA P-256", OK, leafKey("ecdsa"), intA),
		case2("leaf-p384", "ECDSA P-384", OK, leafKey("ecdsa384"), intA),
		case2("leaf-p521", "ECDSA P-521", OK, leafKey("ecdsa521"), intA),
		{Name: "leaf-dsa", Family: "keys", Why: "DSA is weak at any size", Place: list(leafKey("dsa"), intA), CA: ca,
			File: WeakKey, EndpointWhy: unsignable + " (no TLS 1.2/1.3 stack here signs with DSA)"},
		case2("intermediate-rsa512", "a 512-bit intermediate: crypto/x509 may refuse its signatures, the verdict is still weak_key", WeakKey, l512, i512),
		case2("intermediate-rsa768", "a 768-bit intermediate is weak", WeakKey, l768, i768),
		case2("intermediate-rsa1024", "a 1024-bit intermediate is weak", WeakKey, l1024, i1024),
		case2("intermediate-p224", "a P-224 intermediate (crypto/x509 cannot check its signatures) is weak", WeakKey, lp224, ip224),
		case2("intermediate-dsa", "a DSA intermediate (crypto/x509 cannot check DSA signatures) is weak", WeakKey, lDSAInter, iDSA),
		case3("root-rsa1024", "the anchor's key counts too", WeakKey, lr1024, ir1024, r1024),
		case3("root-rsa512", "a 512-bit anchor is weak_key, not unknown_authority", WeakKey, lr512, ir512, r512),
		case3("root-p224", "a P-224 anchor is weak", WeakKey, lrp224, irp224, rp224),
		case3("root-dsa", "a DSA root in the CA file is weak_key", WeakKey, lrDSA, irDSA, rDSA),
		case2("weak-key-leaf-expired", "expired takes precedence over weak_key", Expired,
			b.leaf(intA, testpki.Options{KeyType: "rsa1024", NotBefore: nb, NotAfter: na}), intA),
	}
	return cs
}

func shapes(b builder, rootA, intA, rootB, intB, leaf *testpki.Cert) []Case {
	ca := list(rootA)
	nb, na := b.expired()
	aiaLeaf := b.leaf(intB, testpki.Options{IssuerURL: "http://ca.example.test/intermediate-b.cer"})
	aiaLeafA := b.leaf(intA, testpki.Options{IssuerURL: "http://ca.example.test/intermediate-a.cer"})
	aiaInterB := b.inter(rootB, "Intermediate B with AIA", testpki.Options{IssuerURL: "http://ca.example.test/root-b.cer"})
	underAIAInterB := b.leaf(aiaInterB, testpki.Options{})
	expAIALeaf := b.leaf(intB, testpki.Options{IssuerURL: "http://ca.example.test/intermediate-b.cer", NotBefore: nb, NotAfter: na})
	selfLeaf := b.leaf(nil, testpki.Options{})
	leafB := b.leaf(intB, testpki.Options{})
	leaf2 := b.leaf(intA, testpki.Options{CommonName: "second"})
	expLeaf2 := b.leaf(intA, testpki.Options{CommonName: "second", NotBefore: nb, NotAfter: na})
	expLeaf := b.leaf(intA, testpki.Options{NotBefore: nb, NotAfter: na})
	rootLeaf := b.leaf(rootA, testpki.Options{})
	int2 := b.inter(intA, "Second-level intermediate", testpki.Options{})
	belowInt2 := b.leaf(int2, testpki.Options{})

	// Cross-signing: "Cross Root" is one key with two certificates, its
	// own self-signed one and one issued by "Old Root".
	crossKey := testpki.NewKey(b.t, "ecdsa")
	oldRoot := b.root("Old Root", testpki.Options{})
	newRoot := b.root("Cross Root", testpki.Options{Key: crossKey})
	cross := b.inter(oldRoot, "Cross Root", testpki.Options{Key: crossKey, NotAfter: b.now.Add(10 * day)})
	crossExp := b.inter(oldRoot, "Cross Root", testpki.Options{Key: crossKey, NotBefore: b.now.Add(-800 * day), NotAfter: b.now.Add(-day)})
	crossInter := b.inter(newRoot, "Intermediate of Cross Root", testpki.Options{})
	crossLeaf := b.leaf(crossInter, testpki.Options{})

	// A loop: X and Y each issued a certificate for the other's key.
	xKey, yKey := testpki.NewKey(b.t, "ecdsa"), testpki.NewKey(b.t, "ecdsa")
	xSelf := b.root("Loop X", testpki.Options{Key: xKey})
	ySelf := b.root("Loop Y", testpki.Options{Key: yKey})
	xByY := b.inter(ySelf, "Loop X", testpki.Options{Key: xKey})
	yByX := b.inter(xSelf, "Loop Y", testpki.Options{Key: yKey})
	loopLeaf := b.leaf(xSelf, testpki.Options{})

	weakRoot := b.root("Weak bundle root", testpki.Options{KeyType: "rsa1024"})

	const f = "chain shape"
	firstIsLeaf := "an endpoint's first certificate is its leaf, whatever the order: here it names no host"
	return []Case{
		{Name: "leaf-only-unknown", Family: f, Why: "only the leaf, its issuer known nowhere: no path",
			Place: list(leaf), CA: ca, File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "leaf-only-intermediate-in-ca-file", Family: f, Why: "only the leaf; the CA file's intermediate completes it: the place omits it",
			Place: list(leaf), CA: list(rootA, intA), File: IncompleteChain, Endpoint: IncompleteChain},
		{Name: "leaf-only-with-aia", Family: f, Why: "only the leaf, which names where its issuer can be fetched",
			Place: list(aiaLeaf), CA: ca, File: IncompleteChain, Endpoint: IncompleteChain},
		{Name: "leaf-only-aia-and-ca-file", Family: f, Why: "only the leaf; AIA and the CA file both point at the missing intermediate",
			Place: list(aiaLeafA), CA: list(rootA, intA), File: IncompleteChain, Endpoint: IncompleteChain},
		{Name: "leaf-only-aia-expired", Family: f, Why: "expired takes precedence over incomplete_chain",
			Place: list(expAIALeaf), CA: ca, File: Expired, Endpoint: Expired},
		{Name: "complete-chain-untrusted-aia", Family: f, Why: "a complete chain to an untrusted root is unknown_authority even with an AIA URL on top",
			Place: list(underAIAInterB, aiaInterB), CA: ca, File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "middle-intermediate-in-ca-file", Family: f, Why: "the second-level intermediate is presented, the first only in the CA file",
			Place: list(belowInt2, int2), CA: list(rootA, intA), File: IncompleteChain, Endpoint: IncompleteChain},
		{Name: "middle-intermediate-unknown", Family: f, Why: "a presented intermediate whose issuer is known nowhere",
			Place: list(belowInt2, int2), CA: ca, File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "full-chain-with-root", Family: f, Why: "the root presented too, and trusted by the CA file",
			Place: list(leaf, intA, rootA), CA: ca, File: OK, Endpoint: OK},
		{Name: "full-chain-root-untrusted", Family: f, Why: "a root in the place itself is never trusted",
			Place: list(leaf, intA, rootA), CA: list(rootB), File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "full-chain-system-roots", Family: f, Why: "no CA file: the system roots do not know the test root",
			Place: list(leaf, intA, rootA), File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "chain-system-roots", Family: f, Why: "no CA file and no root presented",
			Place: list(leaf, intA), File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "pinned-intermediate-not-anchor", Family: f, Why: "an intermediate alone in the CA file is not a trust anchor",
			Place: list(leaf, intA), CA: list(intA), File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "leaf-only-pinned-intermediate", Family: f, Why: "the CA file's intermediate does not lead to an anchor either",
			Place: list(leaf), CA: list(intA), File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "ca-file-with-unrelated-intermediate", Family: f, Why: "an intermediate in the CA file that is not the missing one",
			Place: list(leaf), CA: list(rootA, intB), File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "ca-file-root-and-intermediate", Family: f, Why: "the full chain presented; the CA file holds root and intermediate",
			Place: list(leaf, intA), CA: list(rootA, intA), File: OK, Endpoint: OK},
		{Name: "leaf-under-root", Family: f, Why: "a leaf issued by the root directly",
			Place: list(rootLeaf), CA: ca, File: OK, Endpoint: OK},
		{Name: "leaf-under-root-root-presented-untrusted", Family: f, Why: "the root presented beside its leaf, no CA file",
			Place: list(rootLeaf, rootA), File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "self-signed-leaf", Family: f, Why: "a lone self-signed server certificate in a file is a bundle: judged on its dates",
			Place: list(selfLeaf), File: OK, Endpoint: UnknownAuthority, Bundle: true,
			EndpointWhy: "a TLS client does not trust a self-signed certificate it was not given"},
		{Name: "self-signed-leaf-trusted", Family: f, Why: "a self-signed server certificate that the CA file trusts",
			Place: list(selfLeaf), CA: list(selfLeaf), File: OK, Endpoint: OK, Bundle: true},
		{Name: "reversed-chain", Family: f, Why: "intermediate before leaf: a file's leaf is found by who issued whom",
			Place: list(intA, leaf), CA: ca, File: OK, Endpoint: HostnameMismatch, Leaves: []int{1}, EndpointWhy: firstIsLeaf},
		{Name: "root-first", Family: f, Why: "root, intermediate, leaf: still one leaf in a file",
			Place: list(rootA, intA, leaf), CA: ca, File: OK, Endpoint: HostnameMismatch, Leaves: []int{2}, EndpointWhy: firstIsLeaf},
		{Name: "root-first-untrusted", Family: f, Why: "root first, and the root is not trusted",
			Place: list(rootA, intA, leaf), CA: list(rootB), File: UnknownAuthority, Endpoint: HostnameMismatch, Leaves: []int{2},
			EndpointWhy: firstIsLeaf + "; hostname_mismatch takes precedence over unknown_authority"},
		{Name: "extra-unrelated-leaf", Family: f, Why: "an unrelated leaf in the file is judged too, and has no path",
			Place: list(leaf, intA, leafB), CA: ca, File: UnknownAuthority, Endpoint: OK, Leaves: []int{0, 2},
			EndpointWhy: "a TLS client ignores presented certificates off the leaf's path"},
		{Name: "extra-unrelated-intermediate", Family: f, Why: "an unrelated intermediate issued nothing in the file: it is a leaf of its own, without a path",
			Place: list(leaf, intA, intB), CA: ca, File: UnknownAuthority, Endpoint: OK, Leaves: []int{0, 2},
			EndpointWhy: "a TLS client ignores presented certificates off the leaf's path"},
		{Name: "extra-unrelated-root", Family: f, Why: "an unrelated self-signed root that issued nothing is not a leaf",
			Place: list(leaf, intA, rootB), CA: ca, File: OK, Endpoint: OK},
		{Name: "duplicate-leaf", Family: f, Why: "the same leaf twice is one leaf",
			Place: list(leaf, leaf, intA), CA: ca, File: OK, Endpoint: OK},
		{Name: "duplicate-intermediate", Family: f, Why: "the same intermediate twice",
			Place: list(leaf, intA, intA), CA: ca, File: OK, Endpoint: OK},
		{Name: "two-leaves", Family: f, Why: "two leaves of one intermediate, both good",
			Place: list(leaf, leaf2, intA), CA: ca, File: OK, Endpoint: OK, Leaves: []int{0, 1}},
		{Name: "two-leaves-second-expired", Family: f, Why: "a file is as good as its worst leaf",
			Place: list(leaf, expLeaf2, intA), CA: ca, File: Expired, Endpoint: OK, Leaves: []int{0, 1},
			EndpointWhy: "an endpoint is judged on its first certificate only", ChainNotAfter: expLeaf2, EndpointChainNotAfter: leaf},
		{Name: "two-leaves-first-expired", Family: f, Why: "the expired leaf first",
			Place: list(expLeaf, leaf2, intA), CA: ca, File: Expired, Endpoint: Expired, Leaves: []int{0, 1}},
		{Name: "cross-signed-new-root", Family: f, Why: "a cross-certificate is presented, the CA file trusts the new self-signed root: the path through it counts",
			Place: list(crossLeaf, crossInter, cross), CA: list(newRoot), File: OK, Endpoint: OK, ChainNotAfter: crossLeaf},
		{Name: "cross-signed-old-root", Family: f, Why: "only the old root is trusted: the path runs through the cross-certificate, which expires first",
			Place: list(crossLeaf, crossInter, cross), CA: list(oldRoot), File: OK, Endpoint: OK, ChainNotAfter: cross},
		{Name: "cross-signed-expired-valid-path", Family: f, Why: "the cross-certificate has expired but the new root gives a valid path",
			Place: list(crossLeaf, crossInter, crossExp), CA: list(oldRoot, newRoot), File: OK, Endpoint: OK},
		{Name: "cross-signed-expired-only-path", Family: f, Why: "the only path runs through an expired cross-certificate",
			Place: list(crossLeaf, crossInter, crossExp), CA: list(oldRoot), File: Expired, Endpoint: Expired},
		{Name: "loop-untrusted", Family: f, Why: "two CAs that certify each other, neither trusted: no path, and no endless search",
			Place: list(loopLeaf, xByY, yByX), CA: ca, File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "loop-trusted", Family: f, Why: "the same loop, with one of the two trusted through its self-signed certificate",
			Place: list(loopLeaf, xByY, yByX), CA: list(xSelf), File: OK, Endpoint: OK},
		{Name: "bundle-of-roots", Family: f, Why: "a file of roots is a bundle: each stands on its own",
			Place: list(rootA, rootB), File: OK, Endpoint: HostnameMismatch, Bundle: true, EndpointWhy: firstIsLeaf},
		{Name: "bundle-of-intermediates", Family: f, Why: "CAs none of which issued another form a bundle too",
			Place: list(intA, intB), File: OK, Endpoint: HostnameMismatch, Bundle: true, EndpointWhy: firstIsLeaf},
		{Name: "bundle-weak-root", Family: f, Why: "a bundle with a 1024-bit root is weak_key",
			Place: list(rootA, weakRoot), File: WeakKey, Endpoint: HostnameMismatch, Bundle: true, EndpointWhy: firstIsLeaf},
	}
}

func keyMatch(b builder, rootA, intA, intB, leaf *testpki.Cert) []Case {
	ca := list(rootA)
	nb, na := b.expired()
	other := testpki.NewKey(b.t, "ecdsa")
	expLeaf := b.leaf(intA, testpki.Options{NotBefore: nb, NotAfter: na})
	rsaLeaf := b.leaf(intA, testpki.Options{Key: b.keyN("rsa2048", 0)})
	sha1Leaf := b.leaf(intA, testpki.Options{SigAlg: x509.ECDSAWithSHA1})
	weakLeaf := b.leaf(intA, testpki.Options{KeyType: "rsa1024"})
	leafB := b.leaf(intB, testpki.Options{})
	leaf2 := b.leaf(intA, testpki.Options{CommonName: "second"})
	const f = "key match"
	noKeys := "an endpoint proves its key in the handshake: no stored key to compare"
	return []Case{
		{Name: "key-matches", Family: f, Why: "the leaf stored with its own key",
			Place: list(leaf, intA), CA: ca, Keys: keys(leaf), File: OK, Endpoint: OK},
		{Name: "key-mismatch", Family: f, Why: "the stored key is not the leaf's",
			Place: list(leaf, intA), CA: ca, Keys: []crypto.Signer{other}, File: KeyMismatch, Endpoint: OK, EndpointWhy: noKeys},
		{Name: "key-mismatch-rsa", Family: f, Why: "an RSA key of the same size that is not the leaf's",
			Place: list(rsaLeaf, intA), CA: ca, Keys: []crypto.Signer{b.keyN("rsa2048", 1)}, File: KeyMismatch, Endpoint: OK, EndpointWhy: noKeys},
		{Name: "key-of-intermediate", Family: f, Why: "a key that matches the intermediate, not a leaf",
			Place: list(leaf, intA), CA: ca, Keys: keys(intA), File: KeyMismatch, Endpoint: OK, EndpointWhy: noKeys},
		{Name: "two-keys-one-matches", Family: f, Why: "one of the stored keys is the leaf's",
			Place: list(leaf, intA), CA: ca, Keys: []crypto.Signer{other, leaf.Key}, File: OK, Endpoint: OK},
		{Name: "key-matches-second-leaf", Family: f, Why: "with two leaves, a key matching either is enough",
			Place: list(leaf, leaf2, intA), CA: ca, Keys: keys(leaf2), File: OK, Endpoint: OK, Leaves: []int{0, 1}},
		{Name: "key-mismatch-expired", Family: f, Why: "expired takes precedence over key_mismatch",
			Place: list(expLeaf, intA), CA: ca, Keys: []crypto.Signer{other}, File: Expired, Endpoint: Expired},
		{Name: "key-mismatch-weak-signature", Family: f, Why: "weak_signature takes precedence over key_mismatch",
			Place: list(sha1Leaf, intA), CA: ca, Keys: []crypto.Signer{other}, File: WeakSignature, Endpoint: WeakSignature},
		{Name: "key-mismatch-weak-key", Family: f, Why: "weak_key takes precedence over key_mismatch",
			Place: list(weakLeaf, intA), CA: ca, Keys: []crypto.Signer{other}, File: WeakKey, Endpoint: WeakKey},
		{Name: "key-mismatch-unknown-authority", Family: f, Why: "unknown_authority takes precedence over key_mismatch",
			Place: list(leafB, intB), CA: ca, Keys: []crypto.Signer{other}, File: UnknownAuthority, Endpoint: UnknownAuthority},
		{Name: "bundle-root-with-own-key", Family: f, Why: "a CA's certificate stored with its own key",
			Place: list(rootA), Keys: keys(rootA), File: OK, Endpoint: HostnameMismatch, Bundle: true,
			EndpointWhy: "an endpoint presenting a root names no host"},
		{Name: "bundle-root-with-other-key", Family: f, Why: "a self-signed CA stored with a key that is not its own",
			Place: list(rootA), Keys: []crypto.Signer{other}, File: KeyMismatch, Endpoint: HostnameMismatch, Bundle: true,
			EndpointWhy: "an endpoint presenting a root names no host"},
	}
}
