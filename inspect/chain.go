package inspect

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwatch/certwatch/source"
)

// How a place is judged (the README's "Chain verdicts" section says the
// same for users):
//
//   - A place that is not an endpoint and whose certificates are all
//     self-signed, or all CAs none of which issued another, is a bundle of
//     trust anchors (a CA file, a trust store): each certificate stands on
//     its own dates and key.
//   - Otherwise its leaves are found by who issued whom: a certificate that
//     issued none of the others is a leaf (a self-signed one only when
//     there is nothing else). An endpoint's leaf is the first certificate
//     it presented, as a TLS client takes it. Each leaf's chain is verified
//     with the place's other certificates as intermediates, and the place
//     gets the worst verdict of its leaves.
//   - Only the verification settings' anchors are trusted: a self-signed
//     certificate in the place itself is not (a client would not trust a
//     root because the server sent it).
//   - Nothing but the place and its settings decides: intermediates seen at
//     other places play no part, so the same inputs get the same verdict in
//     any order and after a restart.

// precedence ranks reasons: the lower, the more it matters. "ok" comes last.
func precedence(r Reason) int {
	if r == ReasonOK {
		return len(Reasons)
	}
	return slices.Index(Reasons, r)
}

// MaxDetailBytes bounds a verdict's detail, which goes into log lines:
// crypto/x509's messages quote a certificate's names, which its issuer chose.
const MaxDetailBytes = 2048

// nameOf is a certificate's common name as its label has it (cut to
// MaxNameBytes).
func nameOf(c *x509.Certificate) string { return FactsOf(c).SubjectCN }

// judge returns the verdict on one place. It depends on nothing but its
// arguments, and is safe to call concurrently.
// ls, when not nil, holds the verified links of the batch the place is
// judged in (see links).
func judge(certs []*x509.Certificate, keyPublics []crypto.PublicKey, p source.VerifyParams, now time.Time, ls *links) Verdict {
	v := judgeUncut(certs, keyPublics, p, now, ls)
	v.Detail = limitString(v.Detail, MaxDetailBytes)
	return v
}

func judgeUncut(certs []*x509.Certificate, keyPublics []crypto.PublicKey, p source.VerifyParams, now time.Time, ls *links) Verdict {
	pl := newPlace(certs)
	v := Verdict{Reason: ReasonOK, ValidUntil: nextChange(certs, now)}
	if !p.ServerAuth && p.SPIFFEID == "" && pl.isBundle() {
		v.Roles = pl.roles(nil)
		v.ChainNotAfter = earliestNotAfter(certs)
		if v.Reason, v.Detail = judgeAnchors(pl.certs, now); v.Reason == ReasonOK {
			v.Reason, v.Detail = checkKeys(pl.certs, keyPublics)
		}
		return v
	}
	leaves := pl.leaves(p.ServerAuth || p.SPIFFEID != "")
	v.Roles = pl.roles(leaves)
	var paths [][]*x509.Certificate
	keepPaths := needsPaths(p)
	for n, l := range leaves {
		j := pl.judgeLeaf(l, p, now, ls)
		if keepPaths {
			paths = append(paths, j.path)
		}
		if na := earliestNotAfter(j.path); n == 0 || na.Before(v.ChainNotAfter) {
			v.ChainNotAfter = na
		}
		if until := nextChange(j.path, now); until.Before(v.ValidUntil) {
			v.ValidUntil = until
		}
		if precedence(j.reason) < precedence(v.Reason) {
			v.Reason, v.Detail = j.reason, j.detail
			if len(leaves) > 1 {
				v.Detail = fmt.Sprintf("leaf %q (%d of %d): %s", nameOf(pl.certs[l]), n+1, len(leaves), j.detail)
			}
		}
	}
	if paths != nil {
		v.rev = &revocationState{paths: paths}
	}
	if v.Reason == ReasonOK {
		leafCerts := make([]*x509.Certificate, len(leaves))
		for i, l := range leaves {
			leafCerts[i] = pl.certs[l]
		}
		v.Reason, v.Detail = checkKeys(leafCerts, keyPublics)
	}
	return v
}

// place is a place's distinct certificates and who issued whom among them.
type place struct {
	certs  []*x509.Certificate // distinct, in order of first appearance
	of     []int               // of[i]: the distinct index of the place's i-th certificate
	issued []bool              // issued[j]: certs[j] issued another of certs
	self   []bool              // self[j]: certs[j] is self-signed
	// unparsed: one of certs is a partial parse (source.ParseFailure).
	unparsed bool
	// bySubject indexes certs by subject name, so finding the issuers of a
	// certificate costs a lookup rather than a scan (a bundle can hold
	// thousands of certificates).
	bySubject map[string][]int
}

func newPlace(certs []*x509.Certificate) *place {
	pl := &place{of: make([]int, len(certs)), bySubject: make(map[string][]int, len(certs))}
	seen := make(map[[32]byte]int, len(certs))
	for i, c := range certs {
		fp := Fingerprint(c)
		if j, dup := seen[fp]; dup {
			pl.of[i] = j
			continue
		}
		seen[fp] = len(pl.certs)
		pl.of[i] = len(pl.certs)
		pl.bySubject[string(c.RawSubject)] = append(pl.bySubject[string(c.RawSubject)], len(pl.certs))
		pl.certs = append(pl.certs, c)
		pl.self = append(pl.self, FactsOf(c).SelfSigned)
	}
	pl.unparsed = anyUnparsed(pl.certs)
	pl.issued = make([]bool, len(pl.certs))
	for i, c := range pl.certs {
		for _, j := range pl.issuersNamed(c.RawIssuer) {
			if j != i && linked(pl.certs[j], c) {
				pl.issued[j] = true
			}
		}
	}
	return pl
}

// maxSameSubject bounds the certificates of one subject name considered as
// issuers: a CA has a few (renewals, cross-signs); a hostile file with
// thousands sharing one name must not cost a signature check per pair.
const maxSameSubject = 16

func (pl *place) issuersNamed(name []byte) []int {
	js := pl.bySubject[string(name)]
	return js[:min(len(js), maxSameSubject)]
}

// isBundle reports whether the place is a bundle of trust anchors.
func (pl *place) isBundle() bool {
	allSelf, allCA, noneIssued := true, true, true
	for j, c := range pl.certs {
		allSelf = allSelf && pl.self[j]
		allCA = allCA && c.IsCA
		noneIssued = noneIssued && !pl.issued[j]
	}
	return allSelf || allCA && noneIssued
}

// leaves returns the distinct indexes of the place's leaves.
func (pl *place) leaves(firstIsLeaf bool) []int {
	if firstIsLeaf {
		return []int{0}
	}
	var leaves, selfSigned []int
	for j := range pl.certs {
		switch {
		case pl.issued[j]:
		case pl.self[j]:
			selfSigned = append(selfSigned, j)
		default:
			leaves = append(leaves, j)
		}
	}
	if len(leaves) == 0 {
		leaves = selfSigned
	}
	if len(leaves) == 0 { // every certificate issued another: a loop
		leaves = []int{0}
	}
	return leaves
}

// roles returns the role of each of the place's certificates, in its
// order; with no leaves, the place is a bundle of anchors.
func (pl *place) roles(leaves []int) []Role {
	distinct := make([]Role, len(pl.certs))
	for j := range pl.certs {
		switch {
		case leaves == nil:
			distinct[j] = RoleAnchor
		case slices.Contains(leaves, j):
			distinct[j] = RoleLeaf
		case pl.self[j]:
			distinct[j] = RoleRoot
		default:
			distinct[j] = RoleIntermediate
		}
	}
	out := make([]Role, len(pl.of))
	for i, j := range pl.of {
		out[i] = distinct[j]
	}
	return out
}

// leafJudgement is the verdict on one leaf's chain.
type leafJudgement struct {
	reason Reason
	detail string
	path   []*x509.Certificate // the verified chain, or the leaf's path through what is known
}

// judgeLeaf verifies one leaf with the place's other certificates as
// intermediates, and finds out why when that fails.
func (pl *place) judgeLeaf(l int, p source.VerifyParams, now time.Time, ls *links) leafJudgement {
	leaf := pl.certs[l]
	// Only the place's own certificates can be unparsed (CA files are
	// parsed strictly), so the path is followed for this only when one is.
	if pl.unparsed {
		if path := pl.path(l, p, now); anyUnparsed(path) {
			// crypto/x509 could not parse a certificate of the path: no
			// client gets further. Its dates were read, and come first.
			if r, d := timeProblem(path, now); r != ReasonOK {
				return leafJudgement{reason: r, detail: d, path: path}
			}
			r, d := unparsedReason(path)
			return leafJudgement{reason: r, detail: d, path: path}
		}
	}
	others := make([]*x509.Certificate, 0, len(pl.certs)-1)
	for j, c := range pl.certs {
		if j != l {
			others = append(others, c)
		}
	}
	opts := x509.VerifyOptions{
		Roots:         p.Roots,
		Intermediates: poolOf(others),
		DNSName:       p.DNSName,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if p.ServerAuth {
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	chains, shared := pl.verifyShared(ls, l, opts, p.RootsID)
	var err error
	if !shared {
		chains, err = leaf.Verify(opts)
	}
	if err != nil {
		path := pl.path(l, p, now)
		presented := make(map[*x509.Certificate]bool, len(pl.certs))
		for _, c := range pl.certs {
			presented[c] = true
		}
		r, d := classify(err, path, presented, opts, p, now)
		return leafJudgement{reason: r, detail: d, path: path}
	}
	chain := longestLived(chains)
	j := leafJudgement{reason: ReasonOK, path: chain}
	j.reason, j.detail = checkChain(chain, p)
	return j
}

// checkChain applies to a chain that crypto/x509 verified the rules it
// does not check, in the order of precedence.
func checkChain(chain []*x509.Certificate, p source.VerifyParams) (Reason, string) {
	leaf := chain[0]
	if p.ServerAuth && leaf.BasicConstraintsValid && leaf.IsCA {
		return ReasonInvalidUsage, fmt.Sprintf("the server's certificate %q is a CA certificate (basicConstraints CA:TRUE), which the web PKI does not allow for a server", nameOf(leaf))
	}
	if p.SPIFFEID != "" {
		if r, d := checkSVID(leaf, p.SPIFFEID); r != ReasonOK {
			return r, d
		}
	}
	for _, c := range chain {
		if hasEmptyExtKeyUsage(c) {
			return ReasonInvalidUsage, fmt.Sprintf("%q has an empty extended key usage extension, which is malformed", nameOf(c))
		}
	}
	for _, c := range chain[:len(chain)-1] { // an anchor's own signature is not relied upon
		if hasWeakSignature(c) {
			return ReasonWeakSignature, fmt.Sprintf("%q is signed with %s", nameOf(c), c.SignatureAlgorithm)
		}
	}
	for _, c := range chain {
		if hasWeakKey(c) {
			return ReasonWeakKey, weakKeyDetail(c)
		}
	}
	return ReasonOK, ""
}

// classify turns a verification error into a reason. crypto/x509 folds
// several causes into "unknown authority", so the leaf's path through the
// certificates at hand (the place's, the CA file's intermediates and
// anchors) is examined to tell them apart.
func classify(err error, path []*x509.Certificate, presented map[*x509.Certificate]bool, opts x509.VerifyOptions, p source.VerifyParams, now time.Time) (Reason, string) {
	detail := err.Error()
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var insecure x509.InsecureAlgorithmError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			if r, d := timeProblem(path, now); r != ReasonOK {
				return r, d
			}
			return ReasonExpired, detail // an anchor in the pool expired
		}
		return ReasonInvalidUsage, detail
	case errors.As(err, &hostname):
		// crypto/x509 checks the name before it builds the chain: a chain
		// that is out of date as well is expired first.
		if r, d := timeProblem(path, now); r != ReasonOK {
			return r, d
		}
		return ReasonHostnameMismatch, detail
	case errors.As(err, &insecure):
		return ReasonWeakSignature, detail
	case !errors.As(err, &unknown):
		return ReasonInvalid, detail
	}

	if r, d := timeProblem(path, now); r != ReasonOK {
		return r, d + ": " + detail
	}
	// Would it verify with the CA file's intermediates? Then the place
	// lacks one.
	if len(p.Extra) > 0 {
		retry := opts
		retry.Intermediates = opts.Intermediates.Clone()
		for _, c := range p.Extra {
			retry.Intermediates.AddCert(c)
		}
		if _, err := path[0].Verify(retry); err == nil {
			return ReasonIncompleteChain, "the chain lacks an intermediate that the CA file has: " + detail
		}
	}
	if trustedTop(path, p, now) {
		// A path to an anchor exists by name; crypto/x509 refused a link of it.
		for i, c := range path[:len(path)-1] {
			if issuer := path[i+1]; !mayIssue(issuer) {
				return ReasonInvalidUsage, fmt.Sprintf("%q is signed by %q, which may not issue certificates: %s",
					nameOf(c), nameOf(issuer), detail)
			}
		}
		for _, c := range path {
			if hasWeakSignature(c) && !FactsOf(c).SelfSigned {
				return ReasonWeakSignature, fmt.Sprintf("%q is signed with %s: %s", nameOf(c), c.SignatureAlgorithm, detail)
			}
		}
		for _, c := range path {
			if hasWeakKey(c) {
				return ReasonWeakKey, weakKeyDetail(c) + ": " + detail
			}
		}
	}
	// The server sent its leaf alone, and the leaf says where its issuer
	// is: an intermediate is missing. A complete chain to a root that is
	// not trusted is not incomplete, whatever its intermediate's AIA says.
	if top := presentedTop(path, presented); !top.IsCA && len(top.IssuingCertificateURL) > 0 {
		return ReasonIncompleteChain, fmt.Sprintf("the chain ends at %q, whose issuer (%s) was not presented: %s",
			nameOf(top), top.IssuingCertificateURL[0], detail)
	}
	return ReasonUnknownAuthority, detail
}

// path follows the leaf's issuers by name and key identifier through the
// place's certificates, then the CA file's intermediates and anchors,
// preferring an issuer valid now. It ends at a self-signed certificate or
// where no issuer is known.
func (pl *place) path(l int, p source.VerifyParams, now time.Time) []*x509.Certificate {
	path := []*x509.Certificate{pl.certs[l]}
	onPath := map[*x509.Certificate]bool{pl.certs[l]: true}
	for len(path) < 16 {
		c := path[len(path)-1]
		if FactsOf(c).SelfSigned {
			break
		}
		var candidates []*x509.Certificate
		for _, j := range pl.issuersNamed(c.RawIssuer) {
			candidates = append(candidates, pl.certs[j])
		}
		for _, set := range [][]*x509.Certificate{p.Extra, p.Anchors} {
			for _, k := range set {
				if bytes.Equal(k.RawSubject, c.RawIssuer) {
					candidates = append(candidates, k)
				}
			}
		}
		var next *x509.Certificate
		for _, k := range candidates {
			if onPath[k] || !linked(k, c) || (next != nil && validAt(next, now)) {
				continue
			}
			if next == nil || validAt(k, now) {
				next = k
			}
		}
		if next == nil {
			break
		}
		onPath[next] = true
		path = append(path, next)
	}
	return path
}

// presentedTop is the last certificate of the path that the place holds
// (the leaf, or one of the intermediates it presented).
func presentedTop(path []*x509.Certificate, presented map[*x509.Certificate]bool) *x509.Certificate {
	top := path[0]
	for _, c := range path[1:] {
		if !presented[c] {
			break
		}
		top = c
	}
	return top
}

// trustedTop reports whether the path ends at a trust anchor, or at a
// certificate that chains to one.
func trustedTop(path []*x509.Certificate, p source.VerifyParams, now time.Time) bool {
	top := path[len(path)-1]
	if p.Anchors != nil {
		for _, a := range p.Anchors {
			if a.Equal(top) {
				return true
			}
		}
	}
	at := now
	if !validAt(top, now) {
		at = top.NotBefore.Add(top.NotAfter.Sub(top.NotBefore) / 2)
	}
	_, err := top.Verify(x509.VerifyOptions{Roots: p.Roots, Intermediates: poolOf(p.Extra), CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// linked reports whether parent issued child: the child names the parent
// as its issuer and, where both carry key identifiers, they match;
// otherwise the parent's key must verify the child's signature (or be
// unable to, for a weak algorithm: then the names decide).
func linked(parent, child *x509.Certificate) bool {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false
	}
	if len(child.AuthorityKeyId) > 0 && len(parent.SubjectKeyId) > 0 {
		return bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId)
	}
	err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature)
	return err == nil || cannotCheck(err)
}

// cannotCheck reports a signature crypto/x509 refuses to check rather than
// one it found wrong.
func cannotCheck(err error) bool {
	var insecure x509.InsecureAlgorithmError
	return errors.As(err, &insecure) || errors.Is(err, x509.ErrUnsupportedAlgorithm) || strings.Contains(err.Error(), "insecure")
}

func validAt(c *x509.Certificate, t time.Time) bool {
	return !t.Before(c.NotBefore) && !t.After(c.NotAfter)
}

// timeProblem says whether a certificate of the path is out of date:
// expired first, then not yet valid.
func timeProblem(path []*x509.Certificate, now time.Time) (Reason, string) {
	for _, c := range path {
		if now.After(c.NotAfter) {
			return ReasonExpired, fmt.Sprintf("%q expired at %s", nameOf(c), c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	for _, c := range path {
		if now.Before(c.NotBefore) {
			return ReasonNotYetValid, fmt.Sprintf("%q is not valid before %s", nameOf(c), c.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return ReasonOK, ""
}

// mayIssue mirrors crypto/x509's rule for a parent certificate: CA basic
// constraints (absent ones are tolerated only before v3) and, when a key
// usage is given, keyCertSign.
func mayIssue(c *x509.Certificate) bool {
	if c.Version == 3 && !c.BasicConstraintsValid || c.BasicConstraintsValid && !c.IsCA {
		return false
	}
	return c.KeyUsage == 0 || c.KeyUsage&x509.KeyUsageCertSign != 0
}

// oidExtKeyUsage is the extended key usage extension.
var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

// hasEmptyExtKeyUsage reports an extended key usage extension that lists no
// usage: RFC 5280 requires at least one, and crypto/x509 reads an empty
// one as no restriction at all.
func hasEmptyExtKeyUsage(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) > 0 || len(c.UnknownExtKeyUsage) > 0 {
		return false
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			return true
		}
	}
	return false
}

func judgeAnchors(certs []*x509.Certificate, now time.Time) (Reason, string) {
	if r, d := timeProblem(certs, now); r != ReasonOK {
		return r, d
	}
	if r, d := unparsedReason(certs); r != ReasonOK {
		return r, d
	}
	for _, c := range certs {
		if hasWeakKey(c) {
			return ReasonWeakKey, weakKeyDetail(c)
		}
	}
	return ReasonOK, ""
}

func anyUnparsed(certs []*x509.Certificate) bool {
	for _, c := range certs {
		if source.ParseFailure(c) != nil {
			return true
		}
	}
	return false
}

// unparsedReason says why a client refuses a certificate crypto/x509
// could not parse: a key it cannot use is a weak key (a P-192 curve, say),
// anything else (a negative serial number, a malformed name) is invalid.
func unparsedReason(certs []*x509.Certificate) (Reason, string) {
	for _, c := range certs {
		if err := source.ParseFailure(c); err != nil {
			name := nameOf(c)
			if name == "" {
				name = "serial " + SerialHex(c)
			}
			if c.PublicKey == nil {
				return ReasonWeakKey, fmt.Sprintf("%q has a %s key that crypto/x509 cannot use: %v", name, c.PublicKeyAlgorithm, err)
			}
			return ReasonInvalid, fmt.Sprintf("%q cannot be parsed by crypto/x509, so clients built on it refuse it: %v", name, err)
		}
	}
	return ReasonOK, ""
}

func weakKeyDetail(c *x509.Certificate) string {
	alg, bits := KeyInfo(c)
	if bits == 0 {
		return fmt.Sprintf("%q has a %s key that crypto/x509 does not support", nameOf(c), c.PublicKeyAlgorithm)
	}
	return fmt.Sprintf("%q has a %d-bit %s key", nameOf(c), bits, alg)
}

// checkKeys compares the keys stored with the place with its leaves (or,
// for a bundle, its certificates): one must match.
func checkKeys(certs []*x509.Certificate, keyPublics []crypto.PublicKey) (Reason, string) {
	if len(keyPublics) == 0 {
		return ReasonOK, ""
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for _, k := range keyPublics {
		e, ok := k.(equaler)
		if !ok {
			continue
		}
		for _, c := range certs {
			if e.Equal(c.PublicKey) {
				return ReasonOK, ""
			}
		}
	}
	return ReasonKeyMismatch, fmt.Sprintf("no private key stored with %q matches its public key", nameOf(certs[0]))
}

func poolOf(sets ...[]*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, set := range sets {
		for _, c := range set {
			pool.AddCert(c)
		}
	}
	return pool
}

func earliestNotAfter(certs []*x509.Certificate) time.Time {
	var t time.Time
	for i, c := range certs {
		if i == 0 || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// longestLived picks, among verified chains, the one that stays valid
// longest: a client that can build it will.
func longestLived(chains [][]*x509.Certificate) []*x509.Certificate {
	best := chains[0]
	for _, c := range chains[1:] {
		if earliestNotAfter(c).After(earliestNotAfter(best)) {
			best = c
		}
	}
	return best
}

// nextChange is the nearest not-before or not-after after now; verdicts
// computed now hold until then.
func nextChange(certs []*x509.Certificate, now time.Time) time.Time {
	next := now.Add(24 * time.Hour) // re-verify daily regardless: roots can change underneath
	for _, c := range certs {
		for _, t := range []time.Time{c.NotBefore, c.NotAfter.Add(time.Second)} {
			if t.After(now) && t.Before(next) {
				next = t
			}
		}
	}
	return next
}

// checkSVID applies the X.509-SVID rules a SPIFFE peer enforces: exactly one
// URI name, the SPIFFE ID the agent issued it for, not a CA, and a key
// usage that allows signing and no certificate or CRL signing.
func checkSVID(leaf *x509.Certificate, id string) (Reason, string) {
	name := nameOf(leaf)
	switch {
	case len(leaf.URIs) == 0:
		return ReasonInvalidUsage, fmt.Sprintf("the SVID %q has no URI name; an X.509-SVID carries its SPIFFE ID %q as its only URI name", name, limitString(id, MaxNameBytes))
	case len(leaf.URIs) > 1:
		return ReasonInvalidUsage, fmt.Sprintf("the SVID %q has %d URI names; an X.509-SVID has exactly one", name, len(leaf.URIs))
	}
	got := leaf.URIs[0].String()
	switch {
	case leaf.URIs[0].Scheme != "spiffe" || leaf.URIs[0].Host == "":
		return ReasonInvalidUsage, fmt.Sprintf("the SVID %q names %q, which is not a SPIFFE ID", name, limitString(got, MaxNameBytes))
	case got != id:
		return ReasonInvalidUsage, fmt.Sprintf("the SVID %q names %q, not the SPIFFE ID %q it was issued for", name, limitString(got, MaxNameBytes), limitString(id, MaxNameBytes))
	case leaf.BasicConstraintsValid && leaf.IsCA:
		return ReasonInvalidUsage, fmt.Sprintf("the SVID %q is a CA certificate, which an X.509-SVID leaf may not be", name)
	case leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return ReasonInvalidUsage, fmt.Sprintf("the SVID %q lacks the digitalSignature key usage", name)
	case leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return ReasonInvalidUsage, fmt.Sprintf("the SVID %q has the keyCertSign or cRLSign key usage, which an X.509-SVID leaf may not have", name)
	}
	return ReasonOK, ""
}
