package decode

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// newCRL makes a DER CRL issued by ca listing the given serials.
func newCRL(t testing.TB, ca *testpki.Cert, number int64, serials ...int64) []byte {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: now.Add(-time.Minute), ReasonCode: 1})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// brokenCRL has the shape of a CRL (LooksLikeCRL) but an entry whose
// serial is not an INTEGER.
func brokenCRL(t testing.TB, ca *testpki.Cert) []byte {
	t.Helper()
	der := newCRL(t, ca, 1, 0x4242)
	i := bytes.Index(der, []byte{0x02, 0x02, 0x42, 0x42}) // the entry's serial
	if i < 0 {
		t.Fatal("serial not found in the CRL")
	}
	out := bytes.Clone(der)
	out[i] = 0x04 // an OCTET STRING
	return out
}

func checkCRL(t *testing.T, got source.CRL, der []byte, entries int) {
	t.Helper()
	want, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if got.Issuer != want.Issuer.String() || got.Number.Cmp(want.Number) != 0 || got.Entries != entries ||
		!got.NextUpdate.Equal(want.NextUpdate) || got.Fingerprint != sha256.Sum256(der) ||
		!bytes.Equal(got.AuthorityKeyID, want.AuthorityKeyId) {
		t.Errorf("CRL summary = %+v, want issuer %q, number %v, %d entries, next update %v and the DER's fingerprint",
			got, want.Issuer, want.Number, entries, want.NextUpdate)
	}
}

func TestDecodeCRLs(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	root, inter, leaf := chain.Root, chain.Intermediate, chain.Leaf
	rootCRL := newCRL(t, root, 7, 100, 101, 102)
	interCRL := newCRL(t, inter, 8)
	broken := brokenCRL(t, root)
	crlPEM := func(der []byte) []byte { return pemBlock("X509 CRL", der) }

	for _, tc := range []struct {
		name     string
		data     []byte
		certs    int
		crls     [][]byte // the DER of each CRL expected, in order
		entries  []int
		errClass source.Class // of Decode's error; "" when none
		entryErr string       // in the entry's Err; "" when none
	}{
		{name: "PEM CRL only", data: crlPEM(rootCRL), crls: [][]byte{rootCRL}, entries: []int{3}},
		{name: "DER CRL", data: rootCRL, crls: [][]byte{rootCRL}, entries: []int{3}},
		{name: "two PEM CRLs", data: join(crlPEM(rootCRL), crlPEM(interCRL)), crls: [][]byte{rootCRL, interCRL}, entries: []int{3, 0}},
		{name: "certificates, a key and a CRL", data: join(testpki.PEM(leaf, inter), testpki.KeyPEM(t, leaf.Key), crlPEM(interCRL)),
			certs: 2, crls: [][]byte{interCRL}, entries: []int{0}},
		{name: "a broken CRL block beside a certificate", data: join(testpki.PEM(root), crlPEM(broken)),
			certs: 1, entryErr: "PEM block 2: CRL: entry 0: malformed serial number"},
		{name: "a broken CRL block beside a good one", data: join(crlPEM(broken), crlPEM(interCRL)),
			crls: [][]byte{interCRL}, entries: []int{0}, entryErr: "PEM block 1: CRL: entry 0"},
		{name: "a broken PEM CRL alone", data: crlPEM(broken), errClass: source.ClassParse},
		{name: "a broken DER CRL", data: broken, errClass: source.ClassParse},
		{name: "a DER CRL with trailing data", data: join(rootCRL, []byte{0, 0}), errClass: source.ClassParse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := bytes.Clone(tc.data)
			entries, err := Decode(buf, nil)
			clear(buf) // as the files source does: summaries must not point into it
			if tc.errClass != "" {
				if err == nil || source.ClassOf(err) != tc.errClass {
					t.Fatalf("Decode error = %v (class %q), want class %q", err, source.ClassOf(err), tc.errClass)
				}
				if errors.Is(err, ErrNoCertificates) {
					t.Errorf("a broken CRL is reported as holding nothing: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(entries) != 1 {
				t.Fatalf("%d entries, want 1", len(entries))
			}
			e := entries[0]
			if len(e.Certs) != tc.certs || len(e.CRLs) != len(tc.crls) {
				t.Fatalf("%d certificates and %d CRLs, want %d and %d", len(e.Certs), len(e.CRLs), tc.certs, len(tc.crls))
			}
			for i, der := range tc.crls {
				checkCRL(t, e.CRLs[i], der, tc.entries[i])
			}
			switch {
			case tc.entryErr == "" && e.Err != nil:
				t.Errorf("entry error %v, want none", e.Err)
			case tc.entryErr != "" && (e.Err == nil || !strings.Contains(e.Err.Error(), tc.entryErr)):
				t.Errorf("entry error %v, want one saying %q", e.Err, tc.entryErr)
			case e.Err != nil && source.ClassOf(e.Err) != source.ClassParse:
				t.Errorf("entry error class %q, want parse", source.ClassOf(e.Err))
			}
		})
	}
}

func TestBrokenDERCRLNamesTheCRL(t *testing.T) {
	root := testpki.NewChain(t, testpki.Options{}).Root
	_, err := Decode(brokenCRL(t, root), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "CRL: entry 0") {
		t.Errorf("error %v, want one starting %q", err, "CRL: entry 0")
	}
}

func TestTakesPasswordNotForCRLs(t *testing.T) {
	root := testpki.NewChain(t, testpki.Options{}).Root
	if TakesPassword(newCRL(t, root, 1, 5)) {
		t.Error("a DER CRL is taken for a PKCS#12 file")
	}
	if TakesPassword(brokenCRL(t, root)) {
		t.Error("a broken DER CRL is taken for a PKCS#12 file")
	}
	if !TakesPassword(testpki.PKCS12(t, root, nil, "pw")) {
		t.Error("a PKCS#12 file no longer takes a password")
	}
}
