//go:build linux

package main

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

// benchPKI is a realistic small private PKI: an ECDSA and an RSA root, a few
// intermediates under each, and pools of leaf keys (real CAs issue many
// certificates; reusing keys keeps generating 100,000 of them fast, while
// every certificate stays distinct: its own serial, names and signature).
type benchPKI struct {
	ecRoot, rsaRoot *testpki.Cert
	ecInts, rsaInts []*testpki.Cert
	ecKeys, rsaKeys []crypto.Signer
}

const (
	ecIntermediates  = 4
	rsaIntermediates = 2
	ecKeyPool        = 256
	rsaKeyPool       = 16
	leafLifetime     = 397 * 24 * time.Hour
)

// loadOrCreatePKI reads the PKI from dir, or creates it there.
func loadOrCreatePKI(tb *benchTB, dir string) *benchPKI {
	if p, err := loadPKI(dir); err == nil {
		return p
	}
	logf("creating the benchmark PKI in %s", dir)
	p := &benchPKI{}
	now := time.Now()
	p.ecRoot = testpki.New(tb, nil, testpki.Options{CommonName: "Bench ECDSA Root CA", IsCA: true, KeyType: "ecdsa",
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(20 * 365 * 24 * time.Hour), Serial: randomSerial()})
	p.rsaRoot = testpki.New(tb, nil, testpki.Options{CommonName: "Bench RSA Root CA", IsCA: true, KeyType: "rsa2048",
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(20 * 365 * 24 * time.Hour), Serial: randomSerial()})
	for i := range ecIntermediates {
		p.ecInts = append(p.ecInts, testpki.New(tb, p.ecRoot, testpki.Options{CommonName: fmt.Sprintf("Bench ECDSA Issuing CA %d", i+1),
			IsCA: true, KeyType: "ecdsa", NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
			Serial: randomSerial(), IssuerURL: "http://pki.bench.example/root-ecdsa.crt"}))
	}
	for i := range rsaIntermediates {
		p.rsaInts = append(p.rsaInts, testpki.New(tb, p.rsaRoot, testpki.Options{CommonName: fmt.Sprintf("Bench RSA Issuing CA %d", i+1),
			IsCA: true, KeyType: "rsa2048", NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
			Serial: randomSerial(), IssuerURL: "http://pki.bench.example/root-rsa.crt"}))
	}
	for range ecKeyPool {
		p.ecKeys = append(p.ecKeys, testpki.NewKey(tb, "ecdsa"))
	}
	for range rsaKeyPool {
		p.rsaKeys = append(p.rsaKeys, testpki.NewKey(tb, "rsa2048"))
	}
	if err := p.save(tb, dir); err != nil {
		fatalf("saving the PKI: %v", err)
	}
	return p
}

func (p *benchPKI) save(tb *benchTB, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var certs, keys []byte
	all := append(append([]*testpki.Cert{p.ecRoot, p.rsaRoot}, p.ecInts...), p.rsaInts...)
	for _, c := range all {
		certs = append(certs, testpki.PEM(c)...)
		keys = append(keys, testpki.KeyPEM(tb, c.Key)...)
	}
	for _, k := range append(append([]crypto.Signer{}, p.ecKeys...), p.rsaKeys...) {
		keys = append(keys, testpki.KeyPEM(tb, k)...)
	}
	if err := os.WriteFile(filepath.Join(dir, "roots.pem"), testpki.PEM(p.ecRoot, p.rsaRoot), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "keys.pem"), keys, 0o600); err != nil {
		return err
	}
	// Written last: its presence marks a complete PKI.
	return os.WriteFile(filepath.Join(dir, "cas.pem"), certs, 0o644)
}

func loadPKI(dir string) (*benchPKI, error) {
	certData, err := os.ReadFile(filepath.Join(dir, "cas.pem"))
	if err != nil {
		return nil, err
	}
	keyData, err := os.ReadFile(filepath.Join(dir, "keys.pem"))
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for b, rest := pem.Decode(certData); b != nil; b, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	var keys []crypto.Signer
	for b, rest := pem.Decode(keyData); b != nil; b, rest = pem.Decode(rest) {
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k.(crypto.Signer))
	}
	nCA := 2 + ecIntermediates + rsaIntermediates
	if len(certs) != nCA || len(keys) != nCA+ecKeyPool+rsaKeyPool {
		return nil, fmt.Errorf("incomplete PKI in %s", dir)
	}
	if time.Until(certs[2].NotAfter) < 2*leafLifetime {
		return nil, fmt.Errorf("PKI in %s is too old", dir)
	}
	ca := func(i int) *testpki.Cert { return &testpki.Cert{Cert: certs[i], Key: keys[i]} }
	p := &benchPKI{ecRoot: ca(0), rsaRoot: ca(1)}
	for i := range ecIntermediates {
		p.ecInts = append(p.ecInts, ca(2+i))
	}
	for i := range rsaIntermediates {
		p.rsaInts = append(p.rsaInts, ca(2+ecIntermediates+i))
	}
	p.ecKeys = keys[nCA : nCA+ecKeyPool]
	p.rsaKeys = keys[nCA+ecKeyPool:]
	return p, nil
}

// leaf issues a server certificate for name (and ip when set); rsa picks an
// RSA-2048 key and an RSA issuer, else ECDSA P-256. i picks the key and issuer.
func (p *benchPKI) leaf(tb *benchTB, i int, rsaKey bool, name string, ip net.IP) (*testpki.Cert, *testpki.Cert) {
	issuer, key := p.ecInts[i%len(p.ecInts)], p.ecKeys[i%len(p.ecKeys)]
	if rsaKey {
		issuer, key = p.rsaInts[i%len(p.rsaInts)], p.rsaKeys[i%len(p.rsaKeys)]
	}
	o := testpki.Options{
		CommonName: name,
		DNSNames:   []string{name, "www." + name},
		Key:        key,
		Serial:     randomSerial(),
		NotBefore:  time.Now().Add(-time.Hour),
		NotAfter:   time.Now().Add(leafLifetime),
		IssuerURL:  "http://pki.bench.example/" + issuer.Cert.Subject.CommonName + ".crt",
	}
	if ip != nil {
		o.IPs = []net.IP{ip}
	}
	return testpki.New(tb, issuer, o), issuer
}

// randomSerial is a 128-bit positive serial, as public CAs issue them.
func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		fatalf("%v", err)
	}
	return n.Add(n, big.NewInt(1))
}
