package inspect

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwatch/certwatch/source"
)

// Reason is the chain verdict: "ok" or why the chain is not valid. The set is
// fixed because it becomes a label value that alerts match on.
type Reason string

// The reasons, in the order of precedence used when several apply.
const (
	ReasonOK               Reason = "ok"
	ReasonExpired          Reason = "expired"           // a certificate in the chain is past its not-after
	ReasonNotYetValid      Reason = "not_yet_valid"     // a certificate in the chain is before its not-before
	ReasonHostnameMismatch Reason = "hostname_mismatch" // the leaf does not cover the name we connected to
	ReasonIncompleteChain  Reason = "incomplete_chain"  // an intermediate is missing from what was presented
	ReasonUnknownAuthority Reason = "unknown_authority" // no path to a trusted root
	ReasonInvalidUsage     Reason = "invalid_usage"     // wrong extended key usage, non-CA issuer, name constraints
	ReasonWeakSignature    Reason = "weak_signature"    // MD5 or SHA-1 signature in the chain
	ReasonWeakKey          Reason = "weak_key"          // RSA < 2048, ECDSA < 256, DSA
	ReasonKeyMismatch      Reason = "key_mismatch"      // the private key stored with the leaf is not its key
	ReasonInvalid          Reason = "invalid"           // any other verification failure; the log has the detail
)

// Reasons lists every reason, for documentation and tests.
var Reasons = []Reason{ReasonOK, ReasonExpired, ReasonNotYetValid, ReasonHostnameMismatch,
	ReasonIncompleteChain, ReasonUnknownAuthority, ReasonInvalidUsage, ReasonWeakSignature,
	ReasonWeakKey, ReasonKeyMismatch, ReasonInvalid}

// Verdict is the judgement on one place's chain.
type Verdict struct {
	Reason Reason
	Detail string // why, for the log; never contains key material
	// ChainNotAfter is the earliest not-after of the chain this place relies
	// on: the verified chain up to its root when verification succeeds, the
	// presented certificates otherwise. It is the moment the place breaks.
	ChainNotAfter time.Time
	// ValidUntil is the next moment the verdict could change by the passing
	// of time alone (the nearest not-before or not-after still ahead).
	ValidUntil time.Time
}

// Valid reports whether the chain verified without reservation.
func (v Verdict) Valid() bool { return v.Reason == ReasonOK }

// Stands reports whether a verdict given earlier still holds for the same
// chain: until its ValidUntil, as the inspector's own cache has it.
func (in *Inspector) Stands(v Verdict) bool { return in.now().Before(v.ValidUntil) }

// Inspector judges chains. It remembers verdicts for unchanged chains until
// the moment they could change, so that a steady state costs no
// verification, and it remembers intermediates it has seen so that a server
// that omits one can be told apart from one signed by an unknown authority.
type Inspector struct {
	now func() time.Time

	mu            sync.Mutex
	verdicts      map[[32]byte]Verdict
	intermediates map[[32]byte]*x509.Certificate
}

// maxRememberedIntermediates bounds the pool of intermediates seen elsewhere.
const maxRememberedIntermediates = 4096

// NewInspector returns an Inspector; now is the clock (time.Now when nil).
func NewInspector(now func() time.Time) *Inspector {
	if now == nil {
		now = time.Now
	}
	return &Inspector{now: now, verdicts: map[[32]byte]Verdict{}, intermediates: map[[32]byte]*x509.Certificate{}}
}

// Judge returns the verdict on a place's chain. certs are in presented or
// stored order; keyPublics are the public halves of private keys stored with
// them.
func (in *Inspector) Judge(certs []*x509.Certificate, keyPublics []crypto.PublicKey, p source.VerifyParams) Verdict {
	return in.JudgeAll([]Chain{{Certs: certs, KeyPublics: keyPublics, Verify: p}})[0]
}

// Chain is what Judge takes: a place's certificates, the public halves of
// the private keys stored with them, and how to verify them.
type Chain struct {
	Certs      []*x509.Certificate
	KeyPublics []crypto.PublicKey
	Verify     source.VerifyParams
}

// JudgeAll returns the verdicts on many places' chains, the same verdicts
// as calling Judge on each in turn. What only depends on a chain (its
// crypto/x509 verification, the bulk of the cost of a first scrape) is done
// for the chains without a cached verdict on every core; what depends on
// the places judged before (which intermediates were seen elsewhere, when a
// chain fails) is then done in order, as consecutive Judge calls would.
func (in *Inspector) JudgeAll(chains []Chain) []Verdict {
	out := make([]Verdict, len(chains))
	now := in.now()
	keys := make([][32]byte, len(chains))
	done := make([]bool, len(chains))
	var todo []int                // first place of each distinct chain without a verdict
	pending := map[[32]byte]int{} // its index in todo
	for i, c := range chains {
		if len(c.Certs) == 0 {
			out[i], done[i] = Verdict{Reason: ReasonInvalid, Detail: "no certificates"}, true
			continue
		}
		keys[i] = cacheKey(c.Certs, c.KeyPublics, c.Verify)
	}
	in.mu.Lock()
	for i := range chains {
		if done[i] {
			continue
		}
		if v, ok := in.verdicts[keys[i]]; ok && now.Before(v.ValidUntil) {
			out[i], done[i] = v, true
			continue
		}
		if _, ok := pending[keys[i]]; !ok {
			pending[keys[i]] = len(todo)
			todo = append(todo, i)
		}
	}
	in.mu.Unlock()
	if len(todo) == 0 {
		return out
	}

	verified := make([]verification, len(todo))
	verifyOne := func(j int) {
		c := chains[todo[j]]
		verified[j] = verify(c.Certs, c.KeyPublics, c.Verify, now)
	}
	if workers := min(runtime.GOMAXPROCS(0), len(todo)); workers > 1 {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := int(next.Add(1) - 1); j < len(todo); j = int(next.Add(1) - 1) {
					verifyOne(j)
				}
			}()
		}
		wg.Wait()
	} else {
		verifyOne(0)
	}

	for i, c := range chains {
		if done[i] {
			continue
		}
		in.mu.Lock()
		v, ok := in.verdicts[keys[i]] // the same chain at an earlier place
		in.mu.Unlock()
		if !ok || !now.Before(v.ValidUntil) {
			v = in.finish(verified[pending[keys[i]]], c.Certs, c.Verify)
			in.remember(keys[i], v, c.Certs)
		}
		out[i] = v
	}
	return out
}

// remember caches a verdict and the intermediates of its chain.
func (in *Inspector) remember(key [32]byte, v Verdict, certs []*x509.Certificate) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.verdicts) > 1<<17 { // a crude bound; entries are small and re-derivable
		clear(in.verdicts)
	}
	in.verdicts[key] = v
	for _, c := range certs[1:] {
		if c.IsCA && !FactsOf(c).SelfSigned && len(in.intermediates) < maxRememberedIntermediates {
			in.intermediates[Fingerprint(c)] = c
		}
	}
}

// cacheKey identifies a chain and how it is to be verified. Every scrape
// computes it for every place, so the certificates' fingerprints come from
// the per-certificate memo (see Fingerprint) rather than being rehashed.
// The bytes hashed are the same as ever: fingerprints, key DER,
// "|roots|name|serverAuth|", then the extra intermediates' fingerprints.
func cacheKey(certs []*x509.Certificate, keyPublics []crypto.PublicKey, p source.VerifyParams) [32]byte {
	h := sha256.New()
	for _, c := range certs {
		fp := Fingerprint(c)
		h.Write(fp[:])
	}
	for _, k := range keyPublics {
		if der, err := x509.MarshalPKIXPublicKey(k); err == nil {
			h.Write(der)
		}
	}
	var buf [256]byte
	b := append(buf[:0], '|')
	b = append(b, p.RootsID...)
	b = append(b, '|')
	b = append(b, p.DNSName...)
	b = append(b, '|')
	b = strconv.AppendBool(b, p.ServerAuth)
	b = append(b, '|')
	h.Write(b)
	for _, c := range p.Extra {
		fp := Fingerprint(c)
		h.Write(fp[:])
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// verification is the part of a verdict that depends on the chain alone.
// When crypto/x509 refused the chain (err set), the verdict's reason is
// still to be found by classify, which depends on the inspector's state.
type verification struct {
	v    Verdict
	err  error
	opts x509.VerifyOptions
	now  time.Time
}

// finish completes a verification into a verdict.
func (in *Inspector) finish(ver verification, certs []*x509.Certificate, p source.VerifyParams) Verdict {
	if ver.err == nil {
		return ver.v
	}
	v := ver.v
	v.Reason, v.Detail = in.classify(ver.err, certs, p.Extra, ver.opts, ver.now)
	return v
}

// verify judges a chain as far as the chain alone allows. It is safe to
// call concurrently.
func verify(certs []*x509.Certificate, keyPublics []crypto.PublicKey, p source.VerifyParams, now time.Time) verification {
	v := Verdict{ValidUntil: nextChange(certs, now)}
	leaf := certs[0]
	if leaf.IsCA && FactsOf(leaf).SelfSigned && p.DNSName == "" {
		// A file of trust anchors (a root, or a bundle of roots): there is no
		// chain to build, each certificate stands on its own dates and key.
		v.Reason, v.Detail = judgeAnchors(certs, now)
		v.ChainNotAfter = earliestNotAfter(certs)
		return verification{v: v, now: now}
	}

	// Only what the place presented builds the chain: intermediates known
	// from elsewhere (p.Extra, other places) are what tells an incomplete
	// chain from an unknown authority when this fails, so they must not
	// quietly complete it.
	opts := x509.VerifyOptions{
		Roots:         p.Roots,
		Intermediates: poolOf(certs[1:]),
		DNSName:       p.DNSName,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if p.ServerAuth {
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		v.ChainNotAfter = earliestNotAfter(certs)
		return verification{v: v, err: err, opts: opts, now: now}
	}
	chain := longestLived(chains)
	v.ChainNotAfter = earliestNotAfter(chain)
	if until := nextChange(chain, now); until.Before(v.ValidUntil) {
		v.ValidUntil = until
	}
	for _, c := range chain[:len(chain)-1] { // a root's own signature is not relied upon
		if hasWeakSignature(c) {
			v.Reason, v.Detail = ReasonWeakSignature, fmt.Sprintf("%q is signed with %s", c.Subject.CommonName, c.SignatureAlgorithm)
			return verification{v: v, now: now}
		}
	}
	for _, c := range chain {
		if hasWeakKey(c) {
			alg, bits := KeyInfo(c)
			v.Reason, v.Detail = ReasonWeakKey, fmt.Sprintf("%q has a %d-bit %s key", c.Subject.CommonName, bits, alg)
			return verification{v: v, now: now}
		}
	}
	if r, d := checkKeys(leaf, keyPublics); r != ReasonOK {
		v.Reason, v.Detail = r, d
		return verification{v: v, now: now}
	}
	v.Reason = ReasonOK
	return verification{v: v, now: now}
}

// classify turns a verification error into a reason, probing further where
// crypto/x509 folds several causes into "unknown authority".
func (in *Inspector) classify(err error, certs, extra []*x509.Certificate, opts x509.VerifyOptions, now time.Time) (Reason, string) {
	detail := err.Error()
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var insecure x509.InsecureAlgorithmError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return timeReason(certs, now), detail
		}
		return ReasonInvalidUsage, detail
	case errors.As(err, &hostname):
		return ReasonHostnameMismatch, detail
	case errors.As(err, &insecure):
		return ReasonWeakSignature, detail
	case !errors.As(err, &unknown):
		return ReasonInvalid, detail
	}

	// Would the chain verify at a moment when every presented certificate is
	// inside its validity? Then time is the problem, not trust.
	if at, ok := commonValidity(certs); ok {
		retry := opts
		retry.CurrentTime = at
		if _, err := certs[0].Verify(retry); err == nil {
			return timeReason(certs, now), detail
		}
	}
	for _, c := range certs {
		if hasWeakSignature(c) && !IsSelfSigned(c) {
			return ReasonWeakSignature, detail
		}
	}
	in.mu.Lock()
	known := make([]*x509.Certificate, 0, len(in.intermediates))
	for _, c := range in.intermediates {
		known = append(known, c)
	}
	in.mu.Unlock()
	// crypto/x509 reports an issuer that may not issue certificates (no CA
	// basic constraints, no keyCertSign) as an unknown authority.
	if child, issuer := nonCAIssuer(certs, slices.Concat(certs, extra, known)); issuer != nil {
		return ReasonInvalidUsage, fmt.Sprintf("%q is signed by %q, which may not issue certificates: %s",
			child.Subject.CommonName, issuer.Subject.CommonName, detail)
	}
	// Would it verify with intermediates the server did not send but that we
	// know from the CA file or from other places? Then the chain is incomplete.
	retry := opts
	retry.Intermediates = poolOf(certs[1:], extra, known)
	if len(extra)+len(known) > 0 {
		if _, err := certs[0].Verify(retry); err == nil {
			return ReasonIncompleteChain, "the presented chain lacks an intermediate: " + detail
		}
	}
	top := certs[len(certs)-1]
	if !IsSelfSigned(top) && len(top.IssuingCertificateURL) > 0 {
		return ReasonIncompleteChain, fmt.Sprintf("the presented chain ends at %q, whose issuer was not sent: %s", top.Subject.CommonName, detail)
	}
	return ReasonUnknownAuthority, detail
}

// nonCAIssuer finds a certificate among certs whose signature verifies with
// the key of a candidate that is not allowed to issue certificates.
func nonCAIssuer(certs, candidates []*x509.Certificate) (child, issuer *x509.Certificate) {
	for _, c := range certs {
		for _, p := range candidates {
			if bytes.Equal(p.Raw, c.Raw) || !bytes.Equal(c.RawIssuer, p.RawSubject) || mayIssue(p) {
				continue
			}
			if p.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil {
				return c, p
			}
		}
	}
	return nil, nil
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

func judgeAnchors(certs []*x509.Certificate, now time.Time) (Reason, string) {
	for _, c := range certs {
		if now.After(c.NotAfter) {
			return ReasonExpired, fmt.Sprintf("%q expired at %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	for _, c := range certs {
		if now.Before(c.NotBefore) {
			return ReasonNotYetValid, fmt.Sprintf("%q is not valid before %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	for _, c := range certs {
		if hasWeakKey(c) {
			alg, bits := KeyInfo(c)
			return ReasonWeakKey, fmt.Sprintf("%q has a %d-bit %s key", c.Subject.CommonName, bits, alg)
		}
	}
	return ReasonOK, ""
}

// checkKeys compares the leaf's public key with the keys stored beside it.
func checkKeys(leaf *x509.Certificate, keyPublics []crypto.PublicKey) (Reason, string) {
	if len(keyPublics) == 0 {
		return ReasonOK, ""
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for _, k := range keyPublics {
		if e, ok := k.(equaler); ok && e.Equal(leaf.PublicKey) {
			return ReasonOK, ""
		}
	}
	return ReasonKeyMismatch, fmt.Sprintf("no private key stored with %q matches its public key", leaf.Subject.CommonName)
}

// timeReason says whether a time failure is expiry or not-yet-valid.
func timeReason(certs []*x509.Certificate, now time.Time) Reason {
	for _, c := range certs {
		if now.After(c.NotAfter) {
			return ReasonExpired
		}
	}
	for _, c := range certs {
		if now.Before(c.NotBefore) {
			return ReasonNotYetValid
		}
	}
	return ReasonExpired // a root in the pool expired; the presented ones are in date
}

// commonValidity returns a moment inside every certificate's validity.
func commonValidity(certs []*x509.Certificate) (time.Time, bool) {
	start, end := certs[0].NotBefore, certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotBefore.After(start) {
			start = c.NotBefore
		}
		if c.NotAfter.Before(end) {
			end = c.NotAfter
		}
	}
	if !start.Before(end) {
		return time.Time{}, false
	}
	return start.Add(end.Sub(start) / 2), true
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
