// Package testpki generates certificate authorities, chains and keys at test
// time, so no test depends on a committed certificate that can expire.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
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
	KeyType     string // "ecdsa" (default, P-256), "ecdsa384", "rsa2048", "rsa1024", "rsa4096"
	SigAlg      x509.SignatureAlgorithm
	ExtKeyUsage []x509.ExtKeyUsage // default serverAuth+clientAuth for leaves
	// NoBasicConstraints leaves out basicConstraints (a non-CA "intermediate").
	NoBasicConstraints bool
	Serial             *big.Int
	IssuerURL          string // AIA caIssuers
}

// NewKey returns a private key of the given type (see Options.KeyType).
func NewKey(t testing.TB, keyType string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch keyType {
	case "", "ecdsa":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa4096":
		k, err = rsa.GenerateKey(rand.Reader, 4096)
	default:
		t.Fatalf("unknown key type %q", keyType)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serialCounter = big.NewInt(0x1000)

// New issues a certificate signed by parent, or self-signed when parent is nil.
func New(t testing.TB, parent *Cert, o Options) *Cert {
	t.Helper()
	key := NewKey(t, o.KeyType)
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(90 * 24 * time.Hour)
	}
	serial := o.Serial
	if serial == nil {
		serialCounter.Add(serialCounter, big.NewInt(1))
		serial = new(big.Int).Set(serialCounter)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName, Organization: []string{"certwatch tests"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
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
	if o.IssuerURL != "" {
		tmpl.IssuingCertificateURL = []string{o.IssuerURL}
	}
	if o.IsCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = o.ExtKeyUsage
		if tmpl.ExtKeyUsage == nil {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		}
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
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
