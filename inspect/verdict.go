package inspect

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"runtime"
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
	ReasonRevoked          Reason = "revoked"           // a certificate in the chain is revoked, by an answer whose signature verified
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
var Reasons = []Reason{ReasonOK, ReasonRevoked, ReasonExpired, ReasonNotYetValid, ReasonHostnameMismatch,
	ReasonIncompleteChain, ReasonUnknownAuthority, ReasonInvalidUsage, ReasonWeakSignature,
	ReasonWeakKey, ReasonKeyMismatch, ReasonInvalid}

// Role is what a certificate is at its place, found from who issued whom:
// the value of the "role" label of certificate series.
type Role string

// The roles.
const (
	RoleLeaf         Role = "leaf"         // issued none of the place's other certificates: what the place is for
	RoleIntermediate Role = "intermediate" // a CA certificate that is not self-signed
	RoleRoot         Role = "root"         // a self-signed certificate that issued another one of the place
	RoleAnchor       Role = "anchor"       // a certificate of a bundle of trust anchors (a CA file, a trust store)
)

// Roles lists every role, for documentation and tests.
var Roles = []Role{RoleLeaf, RoleIntermediate, RoleRoot, RoleAnchor}

// Verdict is the judgement on one place's chain.
type Verdict struct {
	Reason Reason
	Detail string // why, for the log; never contains key material
	// ChainNotAfter is the earliest not-after of the chains this place
	// relies on: each leaf's verified chain up to its anchor when
	// verification succeeds, its path through the certificates at hand
	// otherwise. It is the moment the place breaks.
	ChainNotAfter time.Time
	// ValidUntil is the next moment the verdict could change by the passing
	// of time alone (the nearest not-before or not-after still ahead).
	ValidUntil time.Time
	// Roles holds the role of each of the place's certificates, in the
	// place's order. It is shared between verdicts: do not modify it.
	Roles []Role
	// rev holds what Paths and Revocation return, behind one pointer, nil
	// for most places: verdicts are held for every place, three times over
	// (the verdict cache, the rendered-place cache and the snapshot).
	rev *revocationState
}

// revocationState is a verdict's part about revocation.
type revocationState struct {
	paths [][]*x509.Certificate
	facts *RevocationFacts
}

// Revocation is what is known of the revocation of the place's
// certificates; nil when the place stapled nothing and opted in to no
// check. Set by Revoke, never cached with the verdict.
func (v Verdict) Revocation() *RevocationFacts {
	if v.rev == nil {
		return nil
	}
	return v.rev.facts
}

// Paths are each leaf's chain as judged, leaf first: the verified chain up
// to its anchor, or the leaf's path through the certificates at hand when
// verification failed. Kept only where revocation is judged (an endpoint,
// which may staple, or a place that opted in to checks): elsewhere they
// would cost memory for every place to no use. Nil for a bundle of
// anchors. Shared between verdicts: do not modify.
func (v Verdict) Paths() [][]*x509.Certificate {
	if v.rev == nil {
		return nil
	}
	return v.rev.paths
}

// Valid reports whether the chain verified without reservation.
func (v Verdict) Valid() bool { return v.Reason == ReasonOK }

// Stands reports whether a verdict given earlier still holds for the same
// chain: until its ValidUntil, as the inspector's own cache has it.
func (in *Inspector) Stands(v Verdict) bool { return in.now().Before(v.ValidUntil) }

// Inspector judges chains. It remembers verdicts for unchanged chains until
// the moment they could change, so that a steady state costs no
// verification. A verdict depends only on the place's certificates, the
// keys stored with them, its verification settings and the time: never on
// which other places were judged before.
type Inspector struct {
	now func() time.Time
	// revocations holds the answers of background revocation checks; nil
	// when none are configured.
	revocations atomic.Pointer[revocationSource]
	staples     stapleCache

	mu       sync.Mutex
	verdicts map[[32]byte]Verdict
}

// NewInspector returns an Inspector; now is the clock (time.Now when nil).
func NewInspector(now func() time.Time) *Inspector {
	if now == nil {
		now = time.Now
	}
	return &Inspector{now: now, verdicts: map[[32]byte]Verdict{}}
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
	// Staple is the OCSP response an endpoint stapled, judged by Revoke.
	Staple []byte
}

// JudgeAll returns the verdicts on many places' chains, the same verdicts
// as calling Judge on each. Chains without a cached verdict are verified on
// every core: that is the bulk of the cost of a first scrape.
func (in *Inspector) JudgeAll(chains []Chain) []Verdict {
	out := make([]Verdict, len(chains))
	now := in.now()
	keys := make([][32]byte, len(chains))
	var todo []int                // first place of each distinct chain without a verdict
	pending := map[[32]byte]int{} // its index in todo
	var repeat []int              // places whose chain is judged at an earlier place
	in.mu.Lock()
	for i, c := range chains {
		if len(c.Certs) == 0 {
			out[i] = Verdict{Reason: ReasonInvalid, Detail: "no certificates"}
			continue
		}
		keys[i] = cacheKey(c.Certs, c.KeyPublics, c.Verify)
		if v, ok := in.verdicts[keys[i]]; ok && now.Before(v.ValidUntil) {
			out[i] = v
			continue
		}
		if _, ok := pending[keys[i]]; ok {
			repeat = append(repeat, i)
			continue
		}
		pending[keys[i]] = len(todo)
		todo = append(todo, i)
	}
	in.mu.Unlock()
	if len(todo) == 0 {
		return out
	}

	ls := newLinks()
	judgeOne := func(j int) {
		c := chains[todo[j]]
		out[todo[j]] = judge(c.Certs, c.KeyPublics, c.Verify, now, ls)
	}
	if workers := min(runtime.GOMAXPROCS(0), len(todo)); workers > 1 {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := int(next.Add(1) - 1); j < len(todo); j = int(next.Add(1) - 1) {
					judgeOne(j)
				}
			}()
		}
		wg.Wait()
	} else {
		for j := range todo {
			judgeOne(j)
		}
	}
	for _, i := range repeat {
		out[i] = out[todo[pending[keys[i]]]]
	}

	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.verdicts)+len(todo) > 1<<17 { // a crude bound; entries are small and re-derivable
		clear(in.verdicts)
	}
	for _, i := range todo {
		in.verdicts[keys[i]] = out[i]
	}
	return out
}

// cacheKey identifies a chain and how it is to be verified. Every scrape
// computes it for every place, so the certificates' fingerprints come from
// the per-certificate memo (see Fingerprint) rather than being rehashed.
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
	b = append(b, p.SPIFFEID...)
	b = append(b, '|')
	b = strconv.AppendBool(b, needsPaths(p)) // a verdict with paths, or without
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
