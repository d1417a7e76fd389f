package revocation

import (
	"crypto/x509"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

func TestParseStaple(t *testing.T) {
	root := testpki.New(t, nil, testpki.Options{CommonName: "staple root", IsCA: true})
	ca := testpki.New(t, root, testpki.Options{CommonName: "staple CA", IsCA: true})
	other := testpki.New(t, nil, testpki.Options{CommonName: "staple CA", IsCA: true})
	leaf := testpki.New(t, ca, testpki.Options{CommonName: "stapled"})
	sibling := testpki.New(t, ca, testpki.Options{CommonName: "sibling"})
	delegate := testpki.New(t, ca, testpki.Options{CommonName: "responder", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	expiredDelegate := testpki.New(t, ca, testpki.Options{CommonName: "old responder", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	now := time.Now()
	at := now.Add(-time.Hour).Truncate(time.Second)

	response := func(signer *testpki.Cert, embed bool, serialOf *testpki.Cert, status int) []byte {
		tmpl := ocsp.Response{Status: status, SerialNumber: serialOf.Cert.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
			RevokedAt: at, RevocationReason: ocsp.Superseded}
		if embed {
			tmpl.Certificate = signer.Cert
		}
		der, err := ocsp.CreateResponse(ca.Cert, signer.Cert, tmpl, signer.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for _, tc := range []struct {
		name   string
		der    []byte
		status Status
		class  source.Class
	}{
		{"good, signed by the issuer", response(ca, false, leaf, ocsp.Good), StatusGood, ""},
		{"revoked", response(ca, false, leaf, ocsp.Revoked), StatusRevoked, ""},
		{"unknown", response(ca, false, leaf, ocsp.Unknown), StatusUnknown, ""},
		{"the issuer's certificate included", response(ca, true, leaf, ocsp.Good), StatusGood, ""},
		{"delegated responder", response(delegate, true, leaf, ocsp.Good), StatusGood, ""},
		{"delegated responder not included", response(delegate, false, leaf, ocsp.Good), "", source.ClassBadSignature},
		{"about another certificate", response(ca, false, sibling, ocsp.Good), "", source.ClassParse},
		{"signed by another key", response(other, false, leaf, ocsp.Good), "", source.ClassBadSignature},
		{"embedded responder of another CA", response(other, true, leaf, ocsp.Good), "", source.ClassBadSignature},
		{"sibling leaf as responder", response(sibling, true, leaf, ocsp.Good), "", source.ClassBadSignature},
		{"expired responder", response(expiredDelegate, true, leaf, ocsp.Good), "", source.ClassBadSignature},
		{"error status", ocsp.TryLaterErrorResponse, "", source.ClassParse},
		{"junk", []byte("not OCSP"), "", source.ClassParse},
		{"too large", make([]byte, MaxStapleBytes+1), "", source.ClassTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseStaple(tc.der, leaf.Cert, ca.Cert)
			if tc.class != "" {
				if source.ClassOf(err) != tc.class {
					t.Fatalf("class %s (%v), want %s", source.ClassOf(err), err, tc.class)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Method != MethodStaple || a.Status != tc.status || a.NextUpdate.IsZero() || a.URL != "" {
				t.Fatalf("answer %+v", a)
			}
			if tc.status == StatusRevoked && (!a.RevokedAt.Equal(at) || a.Reason.String() != "superseded") {
				t.Errorf("revoked at %v (%s)", a.RevokedAt, a.Reason)
			}
		})
	}
}
