// Package testpki generates certificate authorities, chains and keys at test
// time, so no test depends on a committed certificate that can expire.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Cert is a generated certificate with its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Options shape a generated certificate. Zero values give a sensible
// certificate: valid from an hour ago for 90 days, ECDSA P-256, SHA-256.
type Options struct {
	CommonName  string
	DNSNames    []string
	IPs         []net.IP
	URIs        []string
	NotBefore   time.Time
	NotAfter    time.Time
	IsCA        bool
	KeyType     string                  // "ecdsa" (default, P-256), "ecdsa224", "ecdsa384", "ecdsa521", "rsa512", "rsa768", "rsa1024", "rsa2048", "rsa4096", "rsa8192", "ed25519", "dsa"
	SigAlg      x509.SignatureAlgorithm // e.g. x509.SHA1WithRSA, x509.ECDSAWithSHA1 or x509.MD5WithRSA for a weak signature
	ExtKeyUsage []x509.ExtKeyUsage      // default serverAuth+clientAuth for leaves
	// NoBasicConstraints leaves out basicConstraints (a non-CA "intermediate").
	NoBasicConstraints bool
	Serial             *big.Int
	IssuerURL          string // AIA caIssuers
	// OCSPServers are the AIA OCSP responder URLs; CRLURLs the CRL
	// distribution points.
	OCSPServers, CRLURLs []string
	// Emails are rfc822Name subject alternative names.
	Emails []string
	// Key, when set, is used instead of a fresh key (KeyType is then ignored),
	// for certificates that must share a key (renewals, key-match checks).
	Key crypto.Signer
	// PadBytes adds a non-critical private extension of about that many
	// bytes, to make large certificates (and huge TLS Certificate messages).
	PadBytes int

	// The fields below shape certificates for the conformance corpus; their
	// zero values change nothing.

	// KeyUsage replaces the default key usage (CAs: certSign|CRLSign|
	// digitalSignature; others: digitalSignature|keyEncipherment).
	KeyUsage x509.KeyUsage
	// CAExtKeyUsage gives a CA an extended key usage extension (CAs have
	// none by default, and ExtKeyUsage applies to leaves only).
	CAExtKeyUsage []x509.ExtKeyUsage
	// NoExtKeyUsage leaves the extended key usage extension out of a leaf.
	NoExtKeyUsage bool
	// EmptyExtKeyUsage writes an extended key usage extension holding an
	// empty SEQUENCE (malformed: RFC 5280 requires at least one purpose).
	EmptyExtKeyUsage bool
	// PathLen, when set, is the basicConstraints pathLenConstraint.
	PathLen *int
	// Name constraints (RFC 5280 4.2.1.10), marked critical.
	PermittedDNS, ExcludedDNS []string
	PermittedIPs, ExcludedIPs []*net.IPNet
	// UnknownCriticalExtension adds a private extension marked critical,
	// which no verifier can honour.
	UnknownCriticalExtension bool
}

// Int returns a pointer to n, for Options.PathLen.
func Int(n int) *int { return &n }

// oidPadding is a private-use OID (under the "example" arc of RFC 7229's
// id-TEST) for the padding extension; nothing interprets it.
var oidPadding = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 13, 1}

// oidCritical is another private-use OID (RFC 7229), for an extension
// marked critical that nothing understands.
var oidCritical = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 13, 2}

// NewKey returns a private key of the given type (see Options.KeyType).
func NewKey(t testing.TB, keyType string) crypto.Signer {
	t.Helper()
	k, err := generateKey(keyType)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func generateKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "", "ecdsa", "ecdsa256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa224":
		return ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "ecdsa384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ecdsa521":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "rsa1024":
		return rsa.GenerateKey(rand.Reader, 1024)
	case "rsa2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "rsa4096":
		return rsa.GenerateKey(rand.Reader, 4096)
	case "rsa512", "rsa768", "rsa8192":
		return newRSAKey(keyType)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "dsa":
		return newDSAKey()
	}
	return nil, fmt.Errorf("unknown key type %q", keyType)
}

var (
	serialMu      sync.Mutex // parallel tests issue certificates concurrently
	serialCounter = big.NewInt(0x1000)
)

func nextSerial() *big.Int {
	serialMu.Lock()
	defer serialMu.Unlock()
	serialCounter.Add(serialCounter, big.NewInt(1))
	return new(big.Int).Set(serialCounter)
}

// New issues a certificate signed by parent, or self-signed when parent is nil.
func New(t testing.TB, parent *Cert, o Options) *Cert {
	t.Helper()
	key := o.Key
	if key == nil {
		key = NewKey(t, o.KeyType)
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(90 * 24 * time.Hour)
	}
	serial := o.Serial
	if serial == nil {
		serial = nextSerial()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName, Organization: []string{"certwatch tests"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		EmailAddresses:        o.Emails,
		BasicConstraintsValid: !o.NoBasicConstraints,
		IsCA:                  o.IsCA,
		SignatureAlgorithm:    o.SigAlg,
	}
	for _, u := range o.URIs {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	tmpl.OCSPServer, tmpl.CRLDistributionPoints = o.OCSPServers, o.CRLURLs
	if o.IssuerURL != "" {
		tmpl.IssuingCertificateURL = []string{o.IssuerURL}
	}
	if o.PadBytes > 0 {
		pad, err := asn1.Marshal(make([]byte, o.PadBytes))
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidPadding, Value: pad})
	}
	if o.IsCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = o.CAExtKeyUsage
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = o.ExtKeyUsage
		if tmpl.ExtKeyUsage == nil && !o.NoExtKeyUsage && !o.EmptyExtKeyUsage {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		}
	}
	if o.KeyUsage != 0 {
		tmpl.KeyUsage = o.KeyUsage
	}
	if o.EmptyExtKeyUsage {
		tmpl.ExtKeyUsage = nil
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidExtKeyUsage, Value: []byte{0x30, 0x00}})
	}
	if o.UnknownCriticalExtension {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidCritical, Critical: true, Value: []byte{0x05, 0x00}})
	}
	if o.PathLen != nil {
		tmpl.MaxPathLen, tmpl.MaxPathLenZero = *o.PathLen, *o.PathLen == 0
	}
	tmpl.PermittedDNSDomains, tmpl.ExcludedDNSDomains = o.PermittedDNS, o.ExcludedDNS
	tmpl.PermittedIPRanges, tmpl.ExcludedIPRanges = o.PermittedIPs, o.ExcludedIPs
	tmpl.PermittedDNSDomainsCritical = len(o.PermittedDNS)+len(o.ExcludedDNS)+len(o.PermittedIPs)+len(o.ExcludedIPs) > 0
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
	}
	var der []byte
	var err error
	if handmade(key, signerKey, o.SigAlg) {
		// crypto/x509 neither signs with MD5 or DSA nor encodes DSA keys.
		der, err = createHandmade(tmpl, signerCert, key, signerKey, o.SigAlg)
	} else {
		der, err = x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	}
	if err != nil {
		t.Fatalf("creating %q: %v", o.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{Cert: c, Key: key}
}

// Chain is a root, an intermediate and a leaf for "localhost" and 127.0.0.1.
type Chain struct {
	Root, Intermediate, Leaf *Cert
}

// NewChain builds root -> intermediate -> leaf; leaf options may be adjusted.
func NewChain(t testing.TB, leaf Options) *Chain {
	t.Helper()
	root := New(t, nil, Options{CommonName: "certwatch test root", IsCA: true, NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour)})
	inter := New(t, root, Options{CommonName: "certwatch test intermediate", IsCA: true, NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour)})
	if leaf.CommonName == "" {
		leaf.CommonName = "localhost"
	}
	if leaf.DNSNames == nil && leaf.IPs == nil {
		leaf.DNSNames = []string{"localhost"}
		leaf.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	return &Chain{Root: root, Intermediate: inter, Leaf: New(t, inter, leaf)}
}

// PEM encodes certificates as PEM.
func PEM(certs ...*Cert) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as PKCS#8 PEM.
func KeyPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TLSCertificate returns a tls.Certificate presenting leaf followed by chain.
func TLSCertificate(leaf *Cert, chain ...*Cert) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Cert.Raw)
	}
	return tc
}

// Pool returns a pool holding the certificates.
func Pool(certs ...*Cert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.Cert)
	}
	return p
}

// WriteFile writes data to name inside dir (created if needed) and returns
// the file's path. Private keys are written with mode 0600.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Certs returns the x509 certificates of generated certificates, in order.
func Certs(certs ...*Cert) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(certs))
	for _, c := range certs {
		out = append(out, c.Cert)
	}
	return out
}
