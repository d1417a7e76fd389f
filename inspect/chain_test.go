package inspect_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestJudgeChainShapes covers what a TLS client or `openssl verify` agrees
// on and a naive reading of a place gets wrong: which certificate is the
// leaf, what a bundle of anchors is, which certificates count for weak
// signatures, when an AIA URL means an intermediate is missing, and the
// usage rules crypto/x509 does not enforce.
func TestJudgeChainShapes(t *testing.T) {
	t.Parallel()
	now := time.Now()
	std := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})
	other := newPKI(t, testpki.Options{CommonName: "unrelated root"}, testpki.Options{CommonName: "unrelated intermediate"}, testpki.Options{})
	expiredLeaf := testpki.New(t, std.inter, testpki.Options{CommonName: "expired leaf", DNSNames: []string{"localhost"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	shortLeaf := testpki.New(t, std.inter, testpki.Options{CommonName: "short leaf", DNSNames: []string{"localhost"}, NotAfter: now.Add(10 * day)})
	sha1Leaf := testpki.New(t, std.inter, testpki.Options{CommonName: "sha1 leaf", DNSNames: []string{"localhost"}, SigAlg: x509.ECDSAWithSHA1})
	sha1Unrelated := testpki.New(t, other.inter, testpki.Options{CommonName: "unrelated sha1", DNSNames: []string{"localhost"}, SigAlg: x509.ECDSAWithSHA1})
	caLeaf := testpki.New(t, std.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, IsCA: true})

	// A complete chain whose intermediate names its issuer's URL (as nearly
	// every real one does), to a root nobody trusts.
	aiaRoot := testpki.New(t, nil, testpki.Options{CommonName: "aia root", IsCA: true})
	aiaInter := testpki.New(t, aiaRoot, testpki.Options{CommonName: "aia intermediate", IsCA: true, IssuerURL: "http://ca.example/root.cer"})
	aiaLeaf := testpki.New(t, aiaInter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, IssuerURL: "http://ca.example/inter.cer"})

	// Keys crypto/x509 refuses to use below 1024 bits: weak keys, not
	// unknown authorities.
	rsa512 := newRSAKey(t, 512)
	smallRoot := testpki.New(t, nil, testpki.Options{CommonName: "rsa512 root", IsCA: true, Key: rsa512})
	smallRootInter := testpki.New(t, smallRoot, testpki.Options{CommonName: "under a small root", IsCA: true})
	smallRootLeaf := testpki.New(t, smallRootInter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	smallInter := testpki.New(t, std.root, testpki.Options{CommonName: "rsa768 intermediate", IsCA: true, Key: newRSAKey(t, 768)})
	smallInterLeaf := testpki.New(t, smallInter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})

	emptyEKU := newEmptyEKULeaf(t, std.inter)
	caKey := testpki.NewKey(t, "ecdsa")

	ca := source.NewCA(testpki.Certs(std.root, std.inter)) // a CA file with the intermediate beside the root
	caServer := ca.VerifyParams()
	caServer.DNSName, caServer.ServerAuth = "localhost", true

	cases := []judgeCase{
		// 1. The leaf is the certificate that issued none of the others.
		{name: "reversed file: intermediate first, expired leaf last", certs: testpki.Certs(std.inter, expiredLeaf), params: fileParams(std.root),
			want: inspect.ReasonExpired, detail: "expired leaf", chainNotAfter: expiredLeaf.Cert.NotAfter},
		{name: "reversed file: ChainNotAfter follows the leaf", certs: testpki.Certs(std.inter, shortLeaf), params: fileParams(std.root),
			want: inspect.ReasonOK, chainNotAfter: shortLeaf.Cert.NotAfter},
		{name: "two leaves: the worst is reported and named", certs: testpki.Certs(std.leaf, std.inter, expiredLeaf), params: fileParams(std.root),
			want: inspect.ReasonExpired, detail: `leaf "expired leaf" (2 of 2)`, chainNotAfter: expiredLeaf.Cert.NotAfter},
		{name: "an endpoint's leaf is what it presented first", certs: testpki.Certs(std.inter, std.leaf), params: serverParams(std.root),
			want: inspect.ReasonHostnameMismatch},

		// 2. A root first does not make a chain a bundle of anchors.
		{name: "root-first chain with a SHA-1 leaf", certs: testpki.Certs(std.root, std.inter, sha1Leaf), params: fileParams(std.root),
			want: inspect.ReasonWeakSignature, detail: "sha1 leaf"},
		{name: "root-first chain with a leaf of another CA", certs: testpki.Certs(std.root, std.inter, other.leaf), params: fileParams(std.root),
			want: inspect.ReasonUnknownAuthority},
		{name: "a root in the place is not trusted because it is there", certs: testpki.Certs(std.root, std.inter, std.leaf), params: fileParams(other.root),
			want: inspect.ReasonUnknownAuthority},
		{name: "root-first chain to a trusted root", certs: testpki.Certs(std.root, std.inter, std.leaf), params: fileParams(std.root),
			want: inspect.ReasonOK},
		{name: "unrelated CAs, none issued another: a bundle", certs: testpki.Certs(std.inter, other.inter), params: fileParams(),
			want: inspect.ReasonOK},

		// 3. A self-signed CA stored with a key that is not its own.
		{name: "self-signed CA with a foreign key", certs: testpki.Certs(std.root), keys: []crypto.PublicKey{caKey.Public()}, params: fileParams(),
			want: inspect.ReasonKeyMismatch},
		{name: "self-signed CA with its own key", certs: testpki.Certs(std.root), keys: []crypto.PublicKey{std.root.Key.Public()}, params: fileParams(),
			want: inspect.ReasonOK},

		// 4. Keys crypto/x509 refuses are weak keys.
		{name: "RSA-512 root", certs: testpki.Certs(smallRootLeaf, smallRootInter), params: serverParams(smallRoot),
			want: inspect.ReasonWeakKey, detail: "512-bit RSA"},
		{name: "RSA-768 intermediate", certs: testpki.Certs(smallInterLeaf, smallInter), params: serverParams(std.root),
			want: inspect.ReasonWeakKey, detail: "768-bit RSA"},

		// 5. A complete chain to an untrusted root is an unknown authority.
		{name: "complete chain, intermediate with AIA, untrusted root", certs: testpki.Certs(aiaLeaf, aiaInter), params: serverParams(std.root),
			want: inspect.ReasonUnknownAuthority},
		{name: "leaf alone with AIA: incomplete", certs: testpki.Certs(aiaLeaf), params: serverParams(std.root),
			want: inspect.ReasonIncompleteChain},

		// 7. Intermediates of a CA file diagnose, they are not anchors.
		{name: "file lacking its intermediate, CA file with root and intermediate", certs: testpki.Certs(std.leaf), params: ca.VerifyParams(),
			want: inspect.ReasonIncompleteChain},
		{name: "endpoint lacking its intermediate, the same CA file", certs: testpki.Certs(std.leaf), params: caServer,
			want: inspect.ReasonIncompleteChain},
		{name: "complete file, the same CA file", certs: testpki.Certs(std.leaf, std.inter), params: ca.VerifyParams(),
			want: inspect.ReasonOK},

		// 8. Only the leaf's path counts for weak signatures.
		{name: "unrelated SHA-1 certificate, unknown root", certs: testpki.Certs(other.leaf, other.inter, sha1Unrelated), params: serverParams(std.root),
			want: inspect.ReasonUnknownAuthority},
		{name: "unrelated SHA-1 certificate sent beside a good chain", certs: testpki.Certs(std.leaf, std.inter, sha1Unrelated), params: serverParams(std.root),
			want: inspect.ReasonOK},

		// 9. Usage rules a client enforces.
		{name: "empty extended key usage extension", certs: testpki.Certs(emptyEKU, std.inter), params: fileParams(std.root),
			want: inspect.ReasonInvalidUsage, detail: "empty extended key usage"},
		{name: "endpoint whose leaf is a CA", certs: testpki.Certs(caLeaf, std.inter), params: serverParams(std.root),
			want: inspect.ReasonInvalidUsage, detail: "CA:TRUE"},
		{name: "a CA certificate as a file's leaf is fine", certs: testpki.Certs(caLeaf, std.inter), params: fileParams(std.root),
			want: inspect.ReasonOK},

		// Duplicates and loops.
		{name: "duplicate certificates", certs: testpki.Certs(std.leaf, std.inter, std.leaf, std.inter), params: fileParams(std.root),
			want: inspect.ReasonOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := inspect.NewInspector(func() time.Time { return now })
			v := in.Judge(tc.certs, tc.keys, tc.params)
			if v.Reason != tc.want {
				t.Fatalf("reason = %q (detail %q), want %q", v.Reason, v.Detail, tc.want)
			}
			if tc.detail != "" && !strings.Contains(v.Detail, tc.detail) {
				t.Errorf("detail %q does not mention %q", v.Detail, tc.detail)
			}
			if !tc.chainNotAfter.IsZero() && !v.ChainNotAfter.Equal(tc.chainNotAfter) {
				t.Errorf("ChainNotAfter = %s, want %s", v.ChainNotAfter, tc.chainNotAfter)
			}
		})
	}
}

// TestJudgeRoles checks the role of every certificate of a place.
func TestJudgeRoles(t *testing.T) {
	t.Parallel()
	std := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})
	other := newPKI(t, testpki.Options{CommonName: "other root"}, testpki.Options{}, testpki.Options{})
	L, I, R, A := inspect.RoleLeaf, inspect.RoleIntermediate, inspect.RoleRoot, inspect.RoleAnchor
	cases := []struct {
		name   string
		certs  []*x509.Certificate
		params source.VerifyParams
		want   []inspect.Role
	}{
		{"leaf first", testpki.Certs(std.leaf, std.inter, std.root), fileParams(std.root), []inspect.Role{L, I, R}},
		{"reversed", testpki.Certs(std.root, std.inter, std.leaf), fileParams(std.root), []inspect.Role{R, I, L}},
		{"bundle", testpki.Certs(std.root, other.root), fileParams(), []inspect.Role{A, A}},
		{"duplicates share a role", testpki.Certs(std.inter, std.leaf, std.inter), fileParams(std.root), []inspect.Role{I, L, I}},
		{"endpoint presenting its chain", testpki.Certs(std.leaf, std.inter), serverParams(std.root), []inspect.Role{L, I}},
	}
	for _, tc := range cases {
		v := inspect.NewInspector(nil).Judge(tc.certs, nil, tc.params)
		if !reflect.DeepEqual(v.Roles, tc.want) {
			t.Errorf("%s: roles %v, want %v", tc.name, v.Roles, tc.want)
		}
	}
}

// TestJudgeDeterministic judges the same places in every order, on fresh
// inspectors, and wants the same verdicts: nothing learnt from one place
// decides another's reason.
func TestJudgeDeterministic(t *testing.T) {
	t.Parallel()
	std := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})
	sibling := testpki.New(t, std.inter, testpki.Options{CommonName: "sibling", DNSNames: []string{"localhost"}})
	chains := []inspect.Chain{
		{Certs: testpki.Certs(sibling, std.inter), Verify: serverParams(std.root)},
		{Certs: testpki.Certs(std.leaf), Verify: serverParams(std.root)},
		{Certs: testpki.Certs(std.inter), Verify: serverParams(std.root)},
	}
	want := inspect.NewInspector(nil).JudgeAll(chains)
	for _, order := range [][]int{{1, 0, 2}, {2, 1, 0}, {0, 2, 1}} {
		in := inspect.NewInspector(nil)
		for _, i := range order {
			got := in.JudgeAll(chains[i : i+1])[0]
			if got.Reason != want[i].Reason {
				t.Errorf("order %v: place %d is %q, in one batch %q", order, i, got.Reason, want[i].Reason)
			}
		}
	}
	if want[1].Reason != inspect.ReasonUnknownAuthority {
		t.Errorf("leaf without its intermediate: %q, want unknown_authority", want[1].Reason)
	}
}

// TestParseCA checks the one loader of CA files: self-signed certificates
// are anchors, others intermediates.
func TestParseCA(t *testing.T) {
	t.Parallel()
	std := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})
	ca, err := source.ParseCA(append(testpki.PEM(std.inter, std.root), testpki.TrustedPEM(t, "trusted", std.leaf)...))
	if err != nil {
		t.Fatal(err)
	}
	if len(ca.Anchors) != 1 || !ca.Anchors[0].Equal(std.root.Cert) {
		t.Errorf("anchors = %d, want the root alone", len(ca.Anchors))
	}
	if len(ca.Intermediates) != 2 {
		t.Errorf("intermediates = %d, want the intermediate and the leaf", len(ca.Intermediates))
	}
	if _, err := source.ParseCA([]byte("no pem here")); err == nil {
		t.Error("a file without certificates loaded")
	}
}

func newRSAKey(t *testing.T, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("RSA-%d key (needs godebug rsa1024min=0 in go.mod): %v", bits, err)
	}
	return k
}

// newEmptyEKULeaf makes a leaf whose extended key usage extension lists no
// usage at all.
func newEmptyEKULeaf(t *testing.T, issuer *testpki.Cert) *testpki.Cert {
	t.Helper()
	key := testpki.NewKey(t, "ecdsa")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "empty eku"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * day),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{
			Id:    []int{2, 5, 29, 37},
			Value: []byte{0x30, 0x00}, // SEQUENCE {}
		}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.Cert, key.Public(), issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testpki.Cert{Cert: c, Key: key}
}

// BenchmarkJudgeBundle judges bundles of self-signed CAs (a trust store in
// one file) of growing size: with issuers indexed by subject the time per
// certificate stays flat, where a search of every pair grew with the size.
func BenchmarkJudgeBundle(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		certs := make([]*x509.Certificate, n)
		key := testpki.NewKey(b, "ecdsa")
		for i := range certs {
			certs[i] = testpki.New(b, nil, testpki.Options{CommonName: "bundle root " + strconv.Itoa(i), IsCA: true, Key: key}).Cert
		}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				// A fresh inspector each time: no cached verdict.
				if v := inspect.NewInspector(nil).Judge(certs, nil, fileParams()); v.Reason != inspect.ReasonOK {
					b.Fatalf("%s: %s", v.Reason, v.Detail)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/cert")
		})
	}
}

// TestDetailIsBounded: a verdict's detail goes into log lines, and quotes
// names a certificate's issuer chose.
func TestDetailIsBounded(t *testing.T) {
	t.Parallel()
	std := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})
	huge := strings.Repeat("n", 64<<10)
	leaf := testpki.New(t, std.inter, testpki.Options{CommonName: huge, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-2 * day), NotAfter: time.Now().Add(-day)})
	v := inspect.NewInspector(nil).Judge(testpki.Certs(leaf, std.inter), nil, serverParams(std.root))
	if v.Reason != inspect.ReasonExpired || len(v.Detail) > inspect.MaxDetailBytes {
		t.Fatalf("%q with a %d-byte detail, want expired within %d bytes", v.Reason, len(v.Detail), inspect.MaxDetailBytes)
	}
}
