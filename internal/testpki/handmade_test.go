package testpki

import (
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // checking the DSA certificates this package makes
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"net"
	"os/exec"
	"testing"
)

// TestHandmade checks the certificates crypto/x509 will not make: each
// signature is verified with the issuer's key by hand, and by openssl when
// it is installed.
func TestHandmade(t *testing.T) {
	t.Parallel()
	dsaRoot := New(t, nil, Options{CommonName: "dsa root", IsCA: true, KeyType: "dsa"})
	dsaInter := New(t, dsaRoot, Options{CommonName: "signed by dsa", IsCA: true})
	rsaRoot := New(t, nil, Options{CommonName: "rsa root", IsCA: true, KeyType: "rsa2048"})
	md5Leaf := New(t, rsaRoot, Options{CommonName: "md5 leaf", DNSNames: []string{"md5.example"}, SigAlg: x509.MD5WithRSA})
	md5Root := New(t, nil, Options{CommonName: "md5 root", IsCA: true, KeyType: "rsa2048", SigAlg: x509.MD5WithRSA})
	dsaLeaf := New(t, rsaRoot, Options{CommonName: "dsa leaf", DNSNames: []string{"dsa.example"}, KeyType: "dsa"})

	if dsaRoot.Cert.PublicKeyAlgorithm != x509.DSA || dsaLeaf.Cert.PublicKeyAlgorithm != x509.DSA {
		t.Errorf("DSA key algorithms: root %v, leaf %v", dsaRoot.Cert.PublicKeyAlgorithm, dsaLeaf.Cert.PublicKeyAlgorithm)
	}
	if dsaInter.Cert.SignatureAlgorithm != x509.DSAWithSHA256 || dsaRoot.Cert.SignatureAlgorithm != x509.DSAWithSHA256 {
		t.Errorf("DSA signature algorithms: %v, %v", dsaInter.Cert.SignatureAlgorithm, dsaRoot.Cert.SignatureAlgorithm)
	}
	checkDSA := func(child, parent *Cert) {
		t.Helper()
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(child.Cert.Signature, &sig); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(child.Cert.RawTBSCertificate)
		pub := &parent.Key.(DSAKey).Key.PublicKey
		if !dsa.Verify(pub, sum[:(pub.Q.BitLen()+7)/8], sig.R, sig.S) {
			t.Errorf("%q: DSA signature does not verify", child.Cert.Subject.CommonName)
		}
	}
	checkDSA(dsaRoot, dsaRoot)
	checkDSA(dsaInter, dsaRoot)
	if err := dsaLeaf.Cert.CheckSignatureFrom(rsaRoot.Cert); err != nil {
		t.Errorf("DSA-keyed leaf signed by RSA: %v", err)
	}
	checkMD5 := func(child, parent *Cert) {
		t.Helper()
		if child.Cert.SignatureAlgorithm != x509.MD5WithRSA {
			t.Errorf("%q: signature algorithm %v", child.Cert.Subject.CommonName, child.Cert.SignatureAlgorithm)
		}
		sum := md5.Sum(child.Cert.RawTBSCertificate)
		if err := rsa.VerifyPKCS1v15(parent.Key.Public().(*rsa.PublicKey), crypto.MD5, sum[:], child.Cert.Signature); err != nil {
			t.Errorf("%q: MD5 signature: %v", child.Cert.Subject.CommonName, err)
		}
	}
	checkMD5(md5Leaf, rsaRoot)
	checkMD5(md5Root, md5Root)
	if !bytes.Equal(md5Leaf.Cert.AuthorityKeyId, rsaRoot.Cert.SubjectKeyId) {
		t.Error("hand-made certificate lost its authority key identifier")
	}

	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl not installed: signatures checked in Go only")
		return
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name         string
		leaf, anchor *Cert
	}{{"dsa root", dsaRoot, dsaRoot}, {"signed by dsa", dsaInter, dsaRoot}, {"dsa leaf", dsaLeaf, rsaRoot}} {
		leaf := WriteFile(t, dir, "leaf.pem", PEM(c.leaf))
		anchor := WriteFile(t, dir, "anchor.pem", PEM(c.anchor))
		if out, err := exec.Command("openssl", "verify", "-auth_level", "0", "-CAfile", anchor, leaf).CombinedOutput(); err != nil {
			t.Errorf("%s: openssl verify: %v\n%s", c.name, err, out)
		}
	}
}

// TestShapes checks the options that shape certificates for the
// conformance corpus.
func TestShapes(t *testing.T) {
	t.Parallel()
	root := New(t, nil, Options{CommonName: "root", IsCA: true, PathLen: Int(0),
		PermittedDNS: []string{"example.test"}, ExcludedIPs: []*net.IPNet{{IP: net.IPv4(10, 0, 0, 0), Mask: net.CIDRMask(8, 32)}},
		CAExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if !root.Cert.MaxPathLenZero || root.Cert.MaxPathLen != 0 {
		t.Errorf("path length: %d zero=%v", root.Cert.MaxPathLen, root.Cert.MaxPathLenZero)
	}
	if len(root.Cert.PermittedDNSDomains) != 1 || len(root.Cert.ExcludedIPRanges) != 1 || !root.Cert.PermittedDNSDomainsCritical {
		t.Errorf("name constraints: %v %v", root.Cert.PermittedDNSDomains, root.Cert.ExcludedIPRanges)
	}
	if len(root.Cert.ExtKeyUsage) != 1 || root.Cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("CA extended key usage: %v", root.Cert.ExtKeyUsage)
	}
	empty := New(t, root, Options{CommonName: "empty eku", DNSNames: []string{"a.example.test"}, EmptyExtKeyUsage: true})
	none := New(t, root, Options{CommonName: "no eku", NoExtKeyUsage: true})
	found := false
	for _, e := range empty.Cert.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			found = bytes.Equal(e.Value, []byte{0x30, 0x00})
		}
	}
	if !found || len(empty.Cert.ExtKeyUsage) != 0 {
		t.Errorf("empty EKU extension missing: %v", empty.Cert.ExtKeyUsage)
	}
	for _, e := range none.Cert.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			t.Error("NoExtKeyUsage left an EKU extension")
		}
	}
	ku := New(t, root, Options{CommonName: "ku", IsCA: true, KeyUsage: x509.KeyUsageDigitalSignature})
	if ku.Cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %v", ku.Cert.KeyUsage)
	}
	for _, kt := range []string{"rsa512", "rsa768", "ecdsa224", "ecdsa521"} {
		c := New(t, root, Options{CommonName: kt, KeyType: kt})
		if c.Cert.PublicKey == nil {
			t.Errorf("%s: no public key", kt)
		}
	}
}
