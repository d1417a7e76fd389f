package inspect_test

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestJudgeSVID checks the X.509-SVID rules a SPIFFE peer enforces on top of
// path verification against the trust domain's bundle.
func TestJudgeSVID(t *testing.T) {
	t.Parallel()
	const id = "spiffe://example.org/ns/payments/sa/api"
	root := testpki.New(t, nil, testpki.Options{CommonName: "example.org SPIRE CA", IsCA: true})
	params := source.VerifyParams{Roots: poolOf(root.Cert), Anchors: []*x509.Certificate{root.Cert}, RootsID: "bundle", SPIFFEID: id}
	svid := func(o testpki.Options) *x509.Certificate { return testpki.New(t, root, o).Cert }
	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		want   inspect.Reason
		detail string
	}{
		{"valid", svid(testpki.Options{URIs: []string{id}}), inspect.ReasonOK, ""},
		{"no URI name", svid(testpki.Options{DNSNames: []string{"api"}}), inspect.ReasonInvalidUsage, "no URI name"},
		{"two URI names", svid(testpki.Options{URIs: []string{id, "spiffe://example.org/other"}}), inspect.ReasonInvalidUsage, "2 URI names"},
		{"not a SPIFFE ID", svid(testpki.Options{URIs: []string{"https://example.org/api"}}), inspect.ReasonInvalidUsage, "not a SPIFFE ID"},
		{"another SPIFFE ID", svid(testpki.Options{URIs: []string{"spiffe://example.org/ns/other"}}), inspect.ReasonInvalidUsage, "not the SPIFFE ID"},
		{"a CA", svid(testpki.Options{URIs: []string{id}, IsCA: true}), inspect.ReasonInvalidUsage, "is a CA"},
		{"no digitalSignature", svid(testpki.Options{URIs: []string{id}, KeyUsage: x509.KeyUsageKeyEncipherment}), inspect.ReasonInvalidUsage, "digitalSignature"},
		{"keyCertSign", svid(testpki.Options{URIs: []string{id}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}), inspect.ReasonInvalidUsage, "keyCertSign"},
		{"from another trust domain's CA", testpki.New(t, testpki.New(t, nil, testpki.Options{CommonName: "other CA", IsCA: true}),
			testpki.Options{URIs: []string{id}}).Cert, inspect.ReasonUnknownAuthority, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := inspect.NewInspector(nil).Judge([]*x509.Certificate{tc.cert}, nil, params)
			if v.Reason != tc.want || !strings.Contains(v.Detail, tc.detail) {
				t.Fatalf("verdict %s (%s), want %s with %q", v.Reason, v.Detail, tc.want, tc.detail)
			}
			if tc.want == inspect.ReasonOK && (len(v.Roles) != 1 || v.Roles[0] != inspect.RoleLeaf) {
				t.Errorf("roles %v, want the SVID as the leaf", v.Roles)
			}
		})
	}
	// Without a SPIFFE ID the same certificate is judged as any file's.
	plain := params
	plain.SPIFFEID = ""
	if v := inspect.NewInspector(nil).Judge([]*x509.Certificate{svid(testpki.Options{DNSNames: []string{"api"}})}, nil, plain); v.Reason != inspect.ReasonOK {
		t.Errorf("without a SPIFFE ID: %s (%s)", v.Reason, v.Detail)
	}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
