// Package source holds what every certificate source shares: the Finding a
// source reports for one place, the bounded set of error classes that say
// why a place could not be read, and the Collector interface through which
// the collector runs every source without knowing any by name.
//
// Sources (source/endpoint, source/files, ...) find certificates; they do not
// judge them. Judging is the inspect package's job, and turning findings and
// judgements into metrics is the collector's.
package source

import (
	"crypto"
	"crypto/x509"
	"math/big"
	"time"
)

// Kinds of source, used as the value of the "source" label.
const (
	KindEndpoint     = "endpoint"
	KindFile         = "file"
	KindSPIFFESVID   = "spiffe_svid"   // X.509 SVIDs from a Workload API
	KindSPIFFEBundle = "spiffe_bundle" // trust bundles, from a Workload API or a bundle endpoint
	KindURL          = "url"           // certificates and CRLs published at a configured URL
	// KindCRLDistributionPoint is a CRL fetched from a distribution point
	// named in a certificate, for an active revocation check.
	KindCRLDistributionPoint = "crl_distribution_point"
)

// Place names where certificates were found. Source, Target and Key are the
// identity labels of every series about the place; Labels are the user's
// extra labels from the configuration.
type Place struct {
	Source string // KindEndpoint, KindFile, ...
	Target string // host:port, file path, ...
	Key    string // sub-location inside the target (keystore alias, kubeconfig user), "" when none
	Labels map[string]string
}

// TLSState is what a TLS handshake told us about an endpoint.
type TLSState struct {
	Version           string // "TLS 1.3"
	CipherSuite       string
	HandshakeDuration time.Duration
	ServerName        string // the name sent as SNI and used for hostname verification
	// OCSPStaple is the OCSP response the endpoint stapled to its
	// handshake; nil when it stapled none.
	OCSPStaple []byte
}

// Finding is everything one source learned about one place during one
// collection: the certificates in the order they were presented or stored,
// the public halves of private keys stored beside them (never the private
// keys themselves), or the error that prevented reading them.
type Finding struct {
	Place
	Certs []*x509.Certificate
	// KeyPublics are the public keys of private keys found with the
	// certificates; the inspector checks that one of them matches the leaf.
	KeyPublics []crypto.PublicKey
	// Verify says how the chain at this place is to be verified.
	Verify VerifyParams
	TLS    *TLSState // endpoints only
	// CRLs are the certificate revocation lists found at the place, with
	// or without certificates beside them.
	CRLs []CRL
	Err  error // nil when Certs were read; wrap with Classify for the class
}

// Staple is the OCSP response an endpoint stapled; nil for other places.
// It lives in TLSState: findings of files are many, and carry none.
func (f *Finding) Staple() []byte {
	if f.TLS == nil {
		return nil
	}
	return f.TLS.OCSPStaple
}

// CRL is what a certificate revocation list says about itself. Its entries
// are not kept: a public CRL can list hundreds of thousands of serials, and
// a place reports only how many.
type CRL struct {
	Issuer         string // the issuer's distinguished name, RFC 2253
	IssuerCN       string
	AuthorityKeyID []byte // nil when absent
	ThisUpdate     time.Time
	NextUpdate     time.Time // zero when absent
	Number         *big.Int  // the CRL number; nil when absent
	Entries        int       // revoked certificates listed
	Delta          bool      // a delta CRL (it carries a delta CRL indicator)
	// SignatureAlgorithm names the algorithm the CRL is signed with, as
	// crypto/x509 names it ("SHA256-RSA").
	SignatureAlgorithm string
	Fingerprint        [32]byte // SHA-256 of the DER
}

// VerifyParams carries the verification settings of the place's module or
// file entry to the inspector.
type VerifyParams struct {
	Roots *x509.CertPool // trust anchors; nil means the system roots
	// Anchors are the certificates of Roots, when Roots is not the system
	// pool: they let the inspector name an anchor that is the problem (a
	// weak key, say) when crypto/x509 only says it found no path.
	Anchors []*x509.Certificate
	// Extra are intermediates known from a CA file: they help build and
	// diagnose chains (a chain that only verifies with them is incomplete)
	// but are never trusted on their own.
	Extra   []*x509.Certificate
	DNSName string // hostname to verify, endpoints only
	// ServerAuth judges the place as a TLS client judges a server
	// (endpoints): the first certificate presented is the leaf, it needs the
	// serverAuth extended key usage and may not be a CA. Files hold client
	// and server certificates alike, in any order: they accept any usage and
	// their leaves are found by who issued whom.
	ServerAuth bool
	// Revocation says which active revocation checks the place opted in
	// to. A stapled OCSP response is judged whatever it says. (It sits
	// beside ServerAuth, in the padding after it: every finding holds
	// these parameters.)
	Revocation Revocation
	// SPIFFEID, when set, says the place is an X.509-SVID issued for this
	// SPIFFE ID: the first certificate is the leaf, and it must carry this
	// ID as its only URI name and be usable as an SVID.
	SPIFFEID string
	// RootsID identifies Roots for caching verdicts ("system" or the CA
	// file's content hash).
	RootsID string
}

// Revocation is the active revocation checks of a module, file group or
// Kubernetes block: asking the OCSP responder in each certificate's
// authority information access, fetching the CRL of its distribution
// points.
type Revocation struct {
	OCSP bool `yaml:"ocsp"`
	CRL  bool `yaml:"crl"`
}

// Any reports whether an active check is on.
func (r Revocation) Any() bool { return r.OCSP || r.CRL }
