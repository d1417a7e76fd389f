package inspect

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"runtime"
	"sync"
)

// A first scrape judges thousands of places whose leaves share a handful of
// intermediates. crypto/x509 checks every signature of every chain, so each
// leaf would pay again for its intermediate's signature by the root (and
// every link above): half the cold CPU of a tree of two-certificate files.
// links lets one batch of judgements verify the chain above a shared
// intermediate once: the leaf is then verified with that intermediate as
// its only possible first hop, at the cost of one signature, and its chains
// are that hop followed by the intermediate's own verified chains.
//
// The result must be exactly what crypto/x509 gives for the whole chain, so
// the shortcut is taken only where the two provably agree, and only to
// accept: whenever a precondition fails, or the shortcut does not verify,
// the leaf is verified the ordinary way and that answer (and its
// classification) stands. The preconditions, against crypto/x509's rules:
//
//   - Any extended key usage is acceptable (file-like places): crypto/x509
//     then checks no key usage along the chain.
//   - No certificate of the chain carries name constraints, policy mappings,
//     policy constraints or inhibitAnyPolicy: then policy validation accepts
//     every chain and the name constraint check has nothing to check, for
//     the long chain and the short one alike.
//   - The intermediate is a CA by its basic constraints: crypto/x509 checks
//     that of an intermediate but not of a root, and here it stands as one.
//   - A path length limit above the intermediate still admits the leaf's
//     chain, which has one intermediate more than the one verified alone.
//   - The place holds exactly one certificate named as the leaf's issuer,
//     so the intermediate is the only first hop the long verification could
//     take through the place; a trusted root of that name would be a second
//     first hop, and is found because the short verification searches the
//     same roots.
//   - Every chain the short verification finds goes through the
//     intermediate, which itself is not a trusted root (its chains are longer
//     than itself), and no certificate above it shares the leaf's subject
//     (crypto/x509 would not let the leaf's name appear twice on a path).
//
// Signatures do not change with time, but validity does: a batch's links
// hold for its one "now" and die with it.
type links struct {
	mu sync.Mutex
	m  map[[32]byte]*link
}

// link is the verified chains above one intermediate, under one set of
// roots and with one place's other certificates as intermediates.
type link struct {
	once sync.Once
	// chains are the intermediate's verified chains, each starting with it;
	// nil when the shortcut does not apply (it did not verify, or a
	// precondition above it failed).
	chains [][]*x509.Certificate
	// roots are the verification roots plus the intermediate, for the
	// leaf's one-signature verification.
	roots *x509.CertPool
}

func newLinks() *links { return &links{m: map[[32]byte]*link{}} }

// Extension OIDs that change chain validation beyond signatures and dates.
var (
	oidNameConstraints   = asn1.ObjectIdentifier{2, 5, 29, 30}
	oidPolicyMappings    = asn1.ObjectIdentifier{2, 5, 29, 33}
	oidPolicyConstraints = asn1.ObjectIdentifier{2, 5, 29, 36}
	oidInhibitAnyPolicy  = asn1.ObjectIdentifier{2, 5, 29, 54}
)

// constrainsChains reports a certificate whose extensions make chain
// validation depend on more than its own link (see links).
func constrainsChains(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		switch {
		case e.Id.Equal(oidNameConstraints), e.Id.Equal(oidPolicyMappings),
			e.Id.Equal(oidPolicyConstraints), e.Id.Equal(oidInhibitAnyPolicy):
			return true
		}
	}
	return false
}

// verifyShared verifies the place's leaf l through the links of its batch,
// returning its chains as crypto/x509 would; ok is false when the shortcut
// does not apply, and the caller verifies the ordinary way.
func (pl *place) verifyShared(ls *links, l int, opts x509.VerifyOptions, rootsID string) (chains [][]*x509.Certificate, ok bool) {
	if ls == nil || pl.unparsed || len(opts.KeyUsages) != 1 || opts.KeyUsages[0] != x509.ExtKeyUsageAny {
		return nil, false
	}
	leaf := pl.certs[l]
	named := pl.bySubject[string(leaf.RawIssuer)]
	if len(named) != 1 || named[0] == l {
		return nil, false
	}
	inter := pl.certs[named[0]]
	if constrainsChains(leaf) || constrainsChains(inter) || !inter.BasicConstraintsValid || !inter.IsCA {
		return nil, false
	}
	lk := ls.get(pl, l, named[0], opts, rootsID)
	if lk.chains == nil {
		return nil, false
	}
	for _, tail := range lk.chains {
		for k, c := range tail[1:] {
			// c stands at index k+2 of the leaf's chain, above k+1
			// intermediates; it was verified above k.
			if c.BasicConstraintsValid && c.MaxPathLen >= 0 && c.MaxPathLen < k+1 {
				return nil, false
			}
			if bytes.Equal(c.RawSubject, leaf.RawSubject) {
				return nil, false
			}
		}
	}
	short := opts
	short.Roots = lk.roots
	short.Intermediates = nil
	found, err := leaf.Verify(short)
	if err != nil {
		return nil, false
	}
	for _, c := range found {
		if len(c) != 2 || c[1] != inter {
			return nil, false // a trusted root is a first hop too: let crypto/x509 order them
		}
	}
	chains = make([][]*x509.Certificate, len(lk.chains))
	for i, tail := range lk.chains {
		chains[i] = append([]*x509.Certificate{leaf}, tail...)
	}
	return chains, true
}

// get returns the link above the place's certificate i, verifying it on
// first use. Concurrent judgements of the batch wait for one verification.
func (ls *links) get(pl *place, l, i int, opts x509.VerifyOptions, rootsID string) *link {
	key := linkKey(pl, l, i, rootsID)
	ls.mu.Lock()
	lk, ok := ls.m[key]
	if !ok {
		lk = &link{}
		ls.m[key] = lk
	}
	ls.mu.Unlock()
	lk.once.Do(func() { lk.verify(pl.certs[i], opts) })
	return lk
}

func (lk *link) verify(inter *x509.Certificate, opts x509.VerifyOptions) {
	above := opts
	above.DNSName = "" // a name is the leaf's to match
	chains, err := inter.Verify(above)
	if err != nil {
		return
	}
	for _, c := range chains {
		if len(c) < 2 {
			return // the intermediate is itself a trusted root
		}
		for _, k := range c[1:] {
			if constrainsChains(k) {
				return
			}
		}
	}
	roots := shortcutRoots(opts.Roots)
	if roots == nil {
		return
	}
	lk.roots = roots.Clone()
	lk.roots.AddCert(inter)
	lk.chains = chains
}

// linkKey identifies a link: the intermediate, the other certificates of
// the place that may lie above it (in their order, which crypto/x509's
// search follows), and the roots.
func linkKey(pl *place, l, i int, rootsID string) [32]byte {
	h := sha256.New()
	fp := Fingerprint(pl.certs[i])
	h.Write(fp[:])
	for j, c := range pl.certs {
		if j != l && j != i {
			fp := Fingerprint(c)
			h.Write(fp[:])
		}
	}
	h.Write([]byte{0})
	h.Write([]byte(rootsID))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// shortcutRoots returns the pool the shortcut adds an intermediate to: the
// verification roots, or a copy of the system's on Linux, where crypto/x509
// verifies against that pool rather than asking the platform. nil: no
// shortcut.
func shortcutRoots(p *x509.CertPool) *x509.CertPool {
	if p != nil {
		return p
	}
	if runtime.GOOS != "linux" {
		return nil
	}
	sys, err := x509.SystemCertPool()
	if err != nil {
		return nil
	}
	return sys
}
