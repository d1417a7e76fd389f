package inspect_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
)

// TestFactsOf checks every fact FactsOf reports on generated certificates.
func TestFactsOf(t *testing.T) {
	t.Parallel()
	notBefore := time.Now().Add(-2 * time.Hour).Truncate(time.Second).UTC()
	notAfter := time.Now().Add(40 * day).Truncate(time.Second).UTC()

	root := testpki.New(t, nil, testpki.Options{CommonName: "facts root", IsCA: true, KeyType: "rsa2048"})
	inter := testpki.New(t, root, testpki.Options{CommonName: "facts intermediate", IsCA: true})
	edRoot := testpki.New(t, nil, testpki.Options{CommonName: "facts ed25519 root", IsCA: true, KeyType: "ed25519"})

	leaf := testpki.New(t, inter, testpki.Options{
		CommonName: "web.example.org",
		DNSNames:   []string{"web.example.org", "www.example.org"},
		IPs:        []net.IP{net.IPv4(192, 0, 2, 7), net.ParseIP("2001:db8::1")},
		URIs:       []string{"spiffe://example.org/ns/default/sa/web"},
		Emails:     []string{"hostmaster@example.org"},
		Serial:     big.NewInt(0x0a1b),
		NotBefore:  notBefore,
		NotAfter:   notAfter,
	})
	rsaLeaf := testpki.New(t, root, testpki.Options{CommonName: "rsa leaf", KeyType: "rsa2048", Serial: big.NewInt(1)})
	rsa1024Leaf := testpki.New(t, root, testpki.Options{CommonName: "rsa1024 leaf", KeyType: "rsa1024"})
	p384Leaf := testpki.New(t, inter, testpki.Options{CommonName: "p384 leaf", KeyType: "ecdsa384"})
	edLeaf := testpki.New(t, edRoot, testpki.Options{CommonName: "ed25519 leaf", KeyType: "ed25519"})
	selfSignedLeaf := testpki.New(t, nil, testpki.Options{CommonName: "self-signed leaf"})
	// Issued by root, with the root's exact subject but its own key: the names
	// match, the signature is not its own.
	impostor := testpki.New(t, root, testpki.Options{CommonName: "facts root"})
	bigSerial, _ := new(big.Int).SetString("00ff00000000000000000000000000000000000001", 16)
	bigSerialLeaf := testpki.New(t, inter, testpki.Options{CommonName: "big serial", Serial: bigSerial})

	type want struct {
		serial, keyAlg, sigAlg string
		keyBits                int
		isCA, selfSigned       bool
	}
	cases := []struct {
		name string
		cert *testpki.Cert
		want want
	}{
		{"leaf with SANs", leaf, want{serial: "0a1b", keyAlg: "ECDSA", keyBits: 256, sigAlg: "ECDSA-SHA256"}},
		{"serial 1 keeps its leading zero nibble", rsaLeaf, want{serial: "01", keyAlg: "RSA", keyBits: 2048, sigAlg: "SHA256-RSA"}},
		{"long serial", bigSerialLeaf, want{serial: "ff00000000000000000000000000000000000001", keyAlg: "ECDSA", keyBits: 256, sigAlg: "ECDSA-SHA256"}},
		{"rsa 1024", rsa1024Leaf, want{keyAlg: "RSA", keyBits: 1024, sigAlg: "SHA256-RSA"}},
		{"ecdsa p-384", p384Leaf, want{keyAlg: "ECDSA", keyBits: 384, sigAlg: "ECDSA-SHA256"}},
		{"ed25519", edLeaf, want{keyAlg: "Ed25519", keyBits: 256, sigAlg: "Ed25519"}},
		{"rsa root", root, want{keyAlg: "RSA", keyBits: 2048, sigAlg: "SHA256-RSA", isCA: true, selfSigned: true}},
		{"ed25519 root", edRoot, want{keyAlg: "Ed25519", keyBits: 256, sigAlg: "Ed25519", isCA: true, selfSigned: true}},
		{"intermediate", inter, want{keyAlg: "ECDSA", keyBits: 256, sigAlg: "SHA256-RSA", isCA: true}},
		{"self-signed leaf", selfSignedLeaf, want{keyAlg: "ECDSA", keyBits: 256, sigAlg: "ECDSA-SHA256", selfSigned: true}},
		{"issuer name equals subject, other key", impostor, want{keyAlg: "ECDSA", keyBits: 256, sigAlg: "SHA256-RSA"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.cert.Cert
			f := inspect.FactsOf(c)
			if tc.want.serial != "" && f.Serial != tc.want.serial {
				t.Errorf("Serial = %q, want %q", f.Serial, tc.want.serial)
			}
			if f.Serial != hex.EncodeToString(c.SerialNumber.Bytes()) {
				t.Errorf("Serial = %q, not the hex of the serial's bytes", f.Serial)
			}
			sum := sha256.Sum256(c.Raw)
			if f.FingerprintSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("FingerprintSHA256 = %q, want sha256 of Raw %x", f.FingerprintSHA256, sum)
			}
			if f.KeyAlgorithm != tc.want.keyAlg || f.KeyBits != tc.want.keyBits {
				t.Errorf("key = %s/%d, want %s/%d", f.KeyAlgorithm, f.KeyBits, tc.want.keyAlg, tc.want.keyBits)
			}
			if f.SignatureAlgorithm != tc.want.sigAlg {
				t.Errorf("SignatureAlgorithm = %q, want %q", f.SignatureAlgorithm, tc.want.sigAlg)
			}
			if f.IsCA != tc.want.isCA {
				t.Errorf("IsCA = %t, want %t", f.IsCA, tc.want.isCA)
			}
			if f.SelfSigned != tc.want.selfSigned {
				t.Errorf("SelfSigned = %t, want %t", f.SelfSigned, tc.want.selfSigned)
			}
			if f.SubjectCN != c.Subject.CommonName || f.IssuerCN != c.Issuer.CommonName {
				t.Errorf("CNs = %q / %q, want %q / %q", f.SubjectCN, f.IssuerCN, c.Subject.CommonName, c.Issuer.CommonName)
			}
			if !f.NotBefore.Equal(c.NotBefore) || !f.NotAfter.Equal(c.NotAfter) {
				t.Errorf("dates = %s..%s, want %s..%s", f.NotBefore, f.NotAfter, c.NotBefore, c.NotAfter)
			}
		})
	}

	t.Run("names and dates of the leaf", func(t *testing.T) {
		t.Parallel()
		f := inspect.FactsOf(leaf.Cert)
		checks := []struct {
			what      string
			got, want any
		}{
			{"SubjectCN", f.SubjectCN, "web.example.org"},
			{"IssuerCN", f.IssuerCN, "facts intermediate"},
			{"Subject", f.Subject, "CN=web.example.org,O=certwatch tests"},
			{"Issuer", f.Issuer, "CN=facts intermediate,O=certwatch tests"},
			{"DNSNames", f.DNSNames, []string{"web.example.org", "www.example.org"}},
			{"IPAddresses", f.IPAddresses, []string{"192.0.2.7", "2001:db8::1"}},
			{"URIs", f.URIs, []string{"spiffe://example.org/ns/default/sa/web"}},
			{"EmailAddresses", f.EmailAddresses, []string{"hostmaster@example.org"}},
			{"NotBefore", f.NotBefore, notBefore},
			{"NotAfter", f.NotAfter, notAfter},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
			}
		}
	})
}

// TestSerialHex covers serials FactsOf cannot get from CreateCertificate.
func TestSerialHex(t *testing.T) {
	t.Parallel()
	cases := []struct {
		serial *big.Int
		want   string
	}{
		{nil, ""},
		{big.NewInt(0), "00"},
		{big.NewInt(0x0a1b), "0a1b"},
		{big.NewInt(0x80), "80"},
		{big.NewInt(0x0100), "0100"},
		{big.NewInt(-0x0a1b), "-0a1b"},
	}
	for _, tc := range cases {
		if got := inspect.SerialHex(&x509.Certificate{SerialNumber: tc.serial}); got != tc.want {
			t.Errorf("SerialHex(%v) = %q, want %q", tc.serial, got, tc.want)
		}
	}
}

// TestKeyInfoUnknown: a key type certwatch does not know is named "unknown".
func TestKeyInfoUnknown(t *testing.T) {
	t.Parallel()
	if alg, bits := inspect.KeyInfo(&x509.Certificate{PublicKey: "not a key"}); alg != "unknown" || bits != 0 {
		t.Fatalf("KeyInfo = %s/%d, want unknown/0", alg, bits)
	}
}
