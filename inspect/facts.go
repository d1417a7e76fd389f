// Package inspect turns certificates into facts and verdicts: the attributes
// of each certificate (dates, names, serial, fingerprint, key and signature
// algorithms) and, for each place, whether its chain verifies and, if not, the
// one reason from a small fixed set. It knows nothing of where certificates
// came from or of metrics.
package inspect

import (
	"crypto/dsa" //nolint:staticcheck // DSA keys still turn up in old stores and must be reported as weak.
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"runtime"
	"sync"
	"time"
	"unique"
	"unsafe"
	"weak"

	"github.com/certwatch/certwatch/source"
)

// Facts are the attributes of one certificate that certwatch reports.
type Facts struct {
	NotBefore          time.Time
	NotAfter           time.Time
	SubjectCN          string
	IssuerCN           string
	Subject            string // full distinguished name, RFC 2253 style
	Issuer             string
	Serial             string // lowercase hex of the serial's bytes, leading zeros kept
	FingerprintSHA256  string // lowercase hex
	DNSNames           []string
	IPAddresses        []string
	URIs               []string // SPIFFE IDs live here
	EmailAddresses     []string
	KeyAlgorithm       string // RSA, ECDSA, Ed25519, DSA, unknown
	KeyBits            int
	SignatureAlgorithm string
	IsCA               bool
	SelfSigned         bool
}

// FactsOf extracts the facts of one certificate. They are computed once per
// certificate object and remembered for as long as it lives: a steady state
// (unchanged files, cached Kubernetes objects) re-reports the same
// certificates on every scrape, and computing facts costs a signature check
// for self-signed certificates and several allocations for names. The
// returned slices are shared: callers must not modify them.
func FactsOf(c *x509.Certificate) Facts { return memoOf(c).facts }

// Fingerprint returns the SHA-256 of the certificate's DER encoding,
// computed once per certificate object (see FactsOf).
func Fingerprint(c *x509.Certificate) [32]byte { return memoOf(c).fp }

// factsOf computes the facts of one certificate.
func factsOf(c *x509.Certificate, fp [32]byte) Facts {
	f := Facts{
		NotBefore:          c.NotBefore,
		NotAfter:           c.NotAfter,
		SubjectCN:          limitString(c.Subject.CommonName, MaxNameBytes),
		IssuerCN:           intern(limitString(c.Issuer.CommonName, MaxNameBytes)),
		Subject:            limitString(c.Subject.String(), MaxInfoBytes),
		Issuer:             intern(limitString(c.Issuer.String(), MaxInfoBytes)),
		Serial:             limitString(SerialHex(c), MaxInfoBytes),
		FingerprintSHA256:  hex.EncodeToString(fp[:]),
		DNSNames:           limitList(c.DNSNames, MaxInfoBytes),
		EmailAddresses:     limitList(c.EmailAddresses, MaxInfoBytes),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		IsCA:               c.IsCA,
		SelfSigned:         IsSelfSigned(c),
	}
	for _, ip := range c.IPAddresses {
		f.IPAddresses = append(f.IPAddresses, ip.String())
	}
	for _, u := range c.URIs {
		f.URIs = append(f.URIs, u.String())
	}
	f.IPAddresses, f.URIs = limitList(f.IPAddresses, MaxInfoBytes), limitList(f.URIs, MaxInfoBytes)
	f.KeyAlgorithm, f.KeyBits = KeyInfo(c)
	return f
}

// intern returns the canonical copy of s. Issuer names repeat across every
// certificate of a CA: one copy saves memory, and label values that share
// their bytes compare by pointer when series are sorted.
func intern(s string) string { return unique.Make(s).Value() }

// memo is what is remembered about one certificate. It must hold no
// pointer to a certificate object, or that object would never be collected
// (slices such as DNSNames are separate allocations: sharing them does not
// keep the certificate alive).
type memo struct {
	fp    [32]byte
	facts Facts
	refs  int // certificate objects using it; guarded by memos
}

// memos maps live certificate objects to their memo, by address. The
// entry's weak pointer tells whether the certificate at that address is
// still the one the entry was made for: a collected certificate's weak
// pointer reads nil, so a new certificate allocated at the same address is
// never mistaken for it. (Making a weak pointer costs a walk of the
// runtime's per-span records; reading one is a load: lookups, on every
// scrape, only read.) A cleanup attached to each certificate drops its entry
// once it is collected, so the map holds the certificates some source still
// holds.
//
// Objects with the same content share one memo (byFP, reference-counted):
// Kubernetes Secrets each hold their own copy of the same intermediate and
// root, and every probe of an endpoint parses its chain anew.
var memos = struct {
	sync.RWMutex
	m    map[uintptr]memoEntry
	byFP map[[32]byte]*memo
}{m: map[uintptr]memoEntry{}, byFP: map[[32]byte]*memo{}}

type memoEntry struct {
	cert weak.Pointer[x509.Certificate]
	memo *memo
}

func memoOf(c *x509.Certificate) *memo {
	addr := uintptr(unsafe.Pointer(c))
	memos.RLock()
	e, ok := memos.m[addr]
	memos.RUnlock()
	if ok && e.cert.Value() == c {
		return e.memo
	}
	fp := sha256.Sum256(c.Raw)
	memos.RLock()
	m := memos.byFP[fp]
	memos.RUnlock()
	if m == nil {
		m = &memo{fp: fp, facts: factsOf(c, fp)}
	}
	w := weak.Make(c)
	memos.Lock()
	if e, ok := memos.m[addr]; ok && e.cert.Value() == c { // made concurrently by another scrape
		memos.Unlock()
		return e.memo
	}
	if shared := memos.byFP[fp]; shared != nil {
		m = shared
	} else {
		memos.byFP[fp] = m
	}
	if old, ok := memos.m[addr]; ok {
		releaseMemo(old.memo) // a collected certificate whose cleanup has not run yet
	}
	m.refs++
	memos.m[addr] = memoEntry{cert: w, memo: m}
	memos.Unlock()
	runtime.AddCleanup(c, forgetMemo, addr)
	return m
}

// forgetMemo drops the entry of a collected certificate, unless a newer
// certificate at the same address took its place.
func forgetMemo(addr uintptr) {
	memos.Lock()
	if e, ok := memos.m[addr]; ok && e.cert.Value() == nil {
		delete(memos.m, addr)
		releaseMemo(e.memo)
	}
	memos.Unlock()
}

// releaseMemo drops a reference; memos must be locked.
func releaseMemo(m *memo) {
	if m.refs--; m.refs == 0 && memos.byFP[m.fp] == m {
		delete(memos.byFP, m.fp)
	}
}

// SerialHex renders the serial number as lowercase hex of its big-endian
// bytes, so "0a1b" keeps its leading zero nibble.
func SerialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	s := hex.EncodeToString(c.SerialNumber.Bytes())
	if s == "" {
		s = "00"
	}
	if c.SerialNumber.Sign() < 0 {
		return "-" + s
	}
	return s
}

// KeyInfo names the certificate's public key algorithm and its size in bits.
func KeyInfo(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	case *dsa.PublicKey:
		return "DSA", k.P.BitLen()
	}
	return "unknown", 0
}

// IsSelfSigned reports whether the certificate is signed by its own key
// (see source.IsSelfSigned).
func IsSelfSigned(c *x509.Certificate) bool { return source.IsSelfSigned(c) }

// hasWeakSignature reports a signature made with a broken hash (MD2, MD5, SHA-1).
func hasWeakSignature(c *x509.Certificate) bool {
	switch c.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

// hasWeakKey reports keys too small to be trusted: RSA under 2048 bits, ECDSA
// under 256 bits, any DSA key, and keys crypto/x509 cannot use.
func hasWeakKey(c *x509.Certificate) bool {
	if c.PublicKey == nil { // a key crypto/x509 does not support at all
		return true
	}
	alg, bits := KeyInfo(c)
	switch alg {
	case "RSA":
		return bits < 2048
	case "ECDSA":
		return bits < 256
	case "DSA":
		return true
	}
	return false
}
