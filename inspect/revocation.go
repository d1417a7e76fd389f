package inspect

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/certwatch/certwatch/revocation"
	"github.com/certwatch/certwatch/source"
)

// Revocation is judged apart from the rest of the verdict. A chain's
// verdict is cached until time alone could change it; whether a
// certificate is revoked changes whenever an OCSP responder or a CRL says
// so, which the revocation package learns in the background. So Revoke
// lays what is known now over a verdict, on every scrape, from answers
// already held: it never waits on the network.
//
// Only answers whose signature verified count, and only "revoked" changes
// the verdict: a responder that is down, slow or says "unknown" leaves a
// valid chain valid (its failures have their own series).

// RevocationFacts is what is known of the revocation of a place's
// certificates.
type RevocationFacts struct {
	// Certs are the answers about the place's certificates that have any,
	// in place order.
	Certs []CertAnswers
	// Stapled says the endpoint stapled an OCSP response to its handshake;
	// StapleErr says why it could not be used (its class is reported).
	Stapled   bool
	StapleErr error
}

// CertAnswers are the answers about one certificate of a place.
type CertAnswers struct {
	Index   int // its position among the place's certificates
	Answers []revocation.Answer
}

type revocationSource struct{ revocation.Lookuper }

// SetRevocations gives the inspector the answers of background revocation
// checks to read; nil turns active checks off.
func (in *Inspector) SetRevocations(l revocation.Lookuper) {
	if l == nil {
		in.revocations.Store(nil)
		return
	}
	in.revocations.Store(&revocationSource{l})
}

// Revoke returns v with what is known of the revocation of c's
// certificates: the stapled response, and the answers of the checks c
// opted in to. A verified "revoked" about any certificate of a leaf's
// chain makes the verdict revoked, which comes first of all reasons.
func (in *Inspector) Revoke(c Chain, v Verdict) Verdict {
	active := in.revocations.Load()
	if len(c.Staple) == 0 && (active == nil || !c.Verify.Revocation.Any()) {
		return v
	}
	facts := &RevocationFacts{Stapled: len(c.Staple) > 0}
	byIndex := map[int]int{} // place index -> position in facts.Certs
	add := func(i int, a revocation.Answer) {
		if i < 0 {
			return
		}
		k, ok := byIndex[i]
		if !ok {
			k = len(facts.Certs)
			byIndex[i] = k
			facts.Certs = append(facts.Certs, CertAnswers{Index: i})
		}
		facts.Certs[k].Answers = append(facts.Certs[k].Answers, a)
	}
	var revokedCert *x509.Certificate
	var revokedBy revocation.Answer
	note := func(cert *x509.Certificate, a revocation.Answer) {
		if a.Status == revocation.StatusRevoked && revokedCert == nil {
			revokedCert, revokedBy = cert, a
		}
	}

	if len(c.Staple) > 0 {
		leaf := c.Certs[0]
		if issuer := issuerIn(v.Paths(), leaf); issuer == nil {
			facts.StapleErr = source.Errorf(source.ClassUnknown, "the issuer of %q is not known, so its stapled OCSP response cannot be verified", nameOf(leaf))
		} else if a, err := in.staples.judge(c.Staple, leaf, issuer); err != nil {
			facts.StapleErr = err
		} else {
			add(0, a)
			note(leaf, a)
		}
	}

	if active != nil && c.Verify.Revocation.Any() {
		done := map[*x509.Certificate]bool{}
		for _, path := range v.Paths() {
			for k := 0; k+1 < len(path); k++ {
				cert, issuer := path[k], path[k+1]
				if done[cert] {
					continue
				}
				done[cert] = true
				i := indexAt(c.Certs, cert)
				for _, a := range active.Lookup(cert, issuer, c.Verify.Revocation.OCSP, c.Verify.Revocation.CRL) {
					add(i, a)
					note(cert, a)
				}
			}
		}
	}
	if revokedCert != nil {
		v.Reason = ReasonRevoked
		v.Detail = limitString(revokedDetail(revokedCert, revokedBy), MaxDetailBytes)
	}
	v.rev = &revocationState{paths: v.Paths(), facts: facts}
	return v
}

func revokedDetail(c *x509.Certificate, a revocation.Answer) string {
	by := "its stapled OCSP response"
	switch a.Method {
	case revocation.MethodOCSP:
		by = "the OCSP responder " + a.URL
	case revocation.MethodCRL:
		by = "the CRL at " + a.URL
	}
	why := ""
	if r := a.Reason.String(); r != "" {
		why = " (" + r + ")"
	}
	return fmt.Sprintf("%q (serial %x) was revoked at %s%s, says %s", nameOf(c), c.SerialNumber,
		a.RevokedAt.UTC().Format(time.RFC3339), why, by)
}

// needsPaths reports whether verdicts under p keep their leaves' paths,
// which Revoke reads: endpoints may staple, and places may opt in to checks.
func needsPaths(p source.VerifyParams) bool { return p.ServerAuth || p.Revocation.Any() }

// issuerIn finds the certificate after cert in a path that holds it.
func issuerIn(paths [][]*x509.Certificate, cert *x509.Certificate) *x509.Certificate {
	for _, path := range paths {
		for k := 0; k+1 < len(path); k++ {
			if path[k] == cert {
				return path[k+1]
			}
		}
	}
	return nil
}

// indexAt is cert's first position among certs, -1 when it is not one of
// them (an intermediate from a CA file, say: judged, but it has no series
// at this place).
func indexAt(certs []*x509.Certificate, cert *x509.Certificate) int {
	for i, c := range certs {
		if c == cert {
			return i
		}
	}
	fp := Fingerprint(cert)
	for i, c := range certs {
		if Fingerprint(c) == fp {
			return i
		}
	}
	return -1
}

// stapleCache remembers judged staples: an endpoint staples the same
// response for hours, and verifying its signature on every scrape of
// thousands of endpoints would cost more than the rest of the scrape.
type stapleCache struct {
	mu      sync.Mutex
	entries map[[32]byte]stapleEntry
}

type stapleEntry struct {
	answer revocation.Answer
	err    error
}

// maxStaples bounds the cache; it is cleared when full, as the verdict
// cache is: entries are re-derivable.
const maxStaples = 1 << 14

func (s *stapleCache) judge(der []byte, leaf, issuer *x509.Certificate) (revocation.Answer, error) {
	h := sha256.New()
	h.Write(der)
	lf, isf := Fingerprint(leaf), Fingerprint(issuer)
	h.Write(lf[:])
	h.Write(isf[:])
	var key [32]byte
	h.Sum(key[:0])
	s.mu.Lock()
	e, ok := s.entries[key]
	s.mu.Unlock()
	if ok {
		return e.answer, e.err
	}
	e.answer, e.err = revocation.ParseStaple(der, leaf, issuer)
	s.mu.Lock()
	if s.entries == nil || len(s.entries) >= maxStaples {
		s.entries = map[[32]byte]stapleEntry{}
	}
	s.entries[key] = e
	s.mu.Unlock()
	return e.answer, e.err
}
