package files

import (
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestCollectCRLs: files holding CRLs, alone or beside certificates, in PEM
// or DER, are findings with CRLs, found by a walk like certificates; a
// broken CRL is reported, not skipped.
func TestCollectCRLs(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	root, inter := chain.Root, chain.Intermediate
	rootCRL := testpki.CRL(t, root, 11, 1, 2, 3)
	interCRL := testpki.CRL(t, inter, 12, 9)
	dir := t.TempDir()
	write(t, dir, "d/root.crl", rootCRL)                                                       // DER
	write(t, dir, "d/inter-crl.pem", pemBlock("X509 CRL", interCRL))                           // PEM, CRL only
	write(t, dir, "d/bundle.pem", join(testpki.PEM(inter), pemBlock("X509 CRL", rootCRL)))     // certificate and CRL
	write(t, dir, "d/broken.crl", []byte{0x30, 0x03, 0x02, 0x01, 0x00})                        // claims a CRL by its name
	write(t, dir, "d/broken-crl.txt", pemBlock("X509 CRL", []byte{0x30, 0x03, 0x02, 0x01, 0})) // a container whatever its name
	write(t, dir, "d/notes.txt", []byte("revocation notes\n"))                                 // skipped

	s, _ := newSource(t, dir, groupSpec{Paths: []string{"d"}})
	for range 2 { // the second time from the cache
		got, skipped := s.CollectCounted(t.Context())
		checkFindings(t, dir, got, []want{
			{target: "d/broken-crl.txt", class: source.ClassParse},
			{target: "d/broken.crl", class: source.ClassParse},
			{target: "d/bundle.pem", certs: certs(inter)},
			{target: "d/inter-crl.pem"},
			{target: "d/root.crl"},
		})
		if len(skipped) != 1 || skipped[0] != 1 {
			t.Errorf("skipped %v, want [1] (notes.txt)", skipped)
		}
		if len(got) != 5 {
			continue
		}
		for i, w := range []struct {
			der     []byte
			entries int
		}{{}, {}, {rootCRL, 3}, {interCRL, 1}, {rootCRL, 3}} {
			f := got[i]
			if w.der == nil {
				if len(f.CRLs) != 0 {
					t.Errorf("%s: %d CRLs, want none", f.Target, len(f.CRLs))
				}
				continue
			}
			if len(f.CRLs) != 1 {
				t.Errorf("%s: %d CRLs, want 1", f.Target, len(f.CRLs))
				continue
			}
			want, err := x509.ParseRevocationList(w.der)
			if err != nil {
				t.Fatal(err)
			}
			c := f.CRLs[0]
			if c.Issuer != want.Issuer.String() || c.Number.Cmp(want.Number) != 0 || c.Entries != w.entries ||
				!c.ThisUpdate.Equal(want.ThisUpdate) || !c.NextUpdate.Equal(want.NextUpdate) || c.Fingerprint != sha256.Sum256(w.der) {
				t.Errorf("%s: CRL %+v, want issuer %q, number %v, %d entries, updates %v/%v and the DER's fingerprint",
					f.Target, c, want.Issuer, want.Number, w.entries, want.ThisUpdate, want.NextUpdate)
			}
		}
	}
}
