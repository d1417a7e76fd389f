package inspect

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/conformance"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// agree judges a place with and without the batch's shared links and fails
// unless the verdicts are identical in every field.
func agree(t *testing.T, name string, certs []*x509.Certificate, keys []crypto.PublicKey, p source.VerifyParams, now time.Time, ls *links) {
	t.Helper()
	plain := judge(certs, keys, p, now, nil)
	shared := judge(certs, keys, p, now, ls)
	if !reflect.DeepEqual(plain, shared) {
		t.Errorf("%s: verdict with shared links\n%+v\nwithout\n%+v", name, shared, plain)
	}
}

// verifiedLinks counts the links of a batch the shortcut could use.
func verifiedLinks(ls *links) int {
	n := 0
	for _, lk := range ls.m {
		if lk.chains != nil {
			n++
		}
	}
	return n
}

// TestLinksAgreeOnCorpus: every case of the conformance corpus, as a file
// and as an endpoint, gets the same verdict with the links of one batch
// shared across all of them as it gets alone.
func TestLinksAgreeOnCorpus(t *testing.T) {
	cases := conformance.Corpus(t)
	now := time.Now()
	ls := newLinks()
	for _, c := range cases {
		for _, endpoint := range []bool{false, true} {
			p := source.VerifyParams{RootsID: "system"}
			if c.CA != nil {
				ca, err := source.ParseCA(testpki.PEM(c.CA...))
				if err != nil {
					t.Fatalf("%s: CA file: %v", c.Name, err)
				}
				p = ca.VerifyParams()
			}
			var keys []crypto.PublicKey
			if endpoint {
				p.DNSName, p.ServerAuth = c.Server(), true
			} else {
				for _, k := range c.Keys {
					keys = append(keys, k.Public())
				}
			}
			agree(t, c.Name, testpki.Certs(c.Place...), keys, p, now, ls)
		}
	}
	if n := verifiedLinks(ls); n < 5 {
		t.Fatalf("the corpus used %d verified links; the comparison tests too little", n)
	}
}

// policyConstraintsCA is a CA, issued by parent (self-signed when nil),
// whose policyConstraints require an explicit policy after skip more
// certificates (requireExplicitPolicy): a chain below it whose certificates
// carry no policy is then invalid, for crypto/x509 as for RFC 5280.
// testpki cannot make one, so it is built here.
func policyConstraintsCA(t *testing.T, parent *testpki.Cert, cn string, skip byte) *testpki.Cert {
	t.Helper()
	key := testpki.NewKey(t, "ecdsa")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(3650 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		// SEQUENCE { requireExplicitPolicy [0] IMPLICIT INTEGER skip }
		ExtraExtensions: []pkix.Extension{{Id: oidPolicyConstraints, Critical: true, Value: []byte{0x30, 0x03, 0x80, 0x01, skip}}},
	}
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testpki.Cert{Cert: c, Key: key}
}

// TestLinksPreconditions: chains where a link verified alone would pass
// but the leaf's whole chain must not, or where the leaf has another first
// hop; each verdict is compared with the ordinary verification's, in one
// batch with a plain chain under the same root so the links are shared.
func TestLinksPreconditions(t *testing.T) {
	now := time.Now()
	long := now.Add(3650 * 24 * time.Hour)
	type placeCase struct {
		name  string
		place []*testpki.Cert
		ca    []*testpki.Cert
	}
	var cases []placeCase
	add := func(name string, ca []*testpki.Cert, place ...*testpki.Cert) {
		cases = append(cases, placeCase{name, place, ca})
	}

	root := testpki.New(t, nil, testpki.Options{CommonName: "links root", IsCA: true, NotAfter: long})
	inter := testpki.New(t, root, testpki.Options{CommonName: "links intermediate", IsCA: true})
	for i := range 3 {
		leaf := testpki.New(t, inter, testpki.Options{CommonName: "leaf " + strconv.Itoa(i), DNSNames: []string{"leaf.example"}})
		add("plain "+strconv.Itoa(i), []*testpki.Cert{root}, leaf, inter)
	}

	// The root's name constraints exclude the leaf's name.
	ncRoot := testpki.New(t, nil, testpki.Options{CommonName: "nc root", IsCA: true, NotAfter: long, PermittedDNS: []string{"other.example"}})
	ncInter := testpki.New(t, ncRoot, testpki.Options{CommonName: "nc intermediate", IsCA: true, DNSNames: []string{"ca.other.example"}})
	add("root name constraints", []*testpki.Cert{ncRoot}, testpki.New(t, ncInter, testpki.Options{DNSNames: []string{"leaf.example"}}), ncInter)
	add("root name constraints, leaf within", []*testpki.Cert{ncRoot}, testpki.New(t, ncInter, testpki.Options{DNSNames: []string{"a.other.example"}}), ncInter)

	// A root that allows no intermediate: the intermediate alone verifies.
	plRoot := testpki.New(t, nil, testpki.Options{CommonName: "pathlen root", IsCA: true, NotAfter: long, PathLen: testpki.Int(0)})
	plInter := testpki.New(t, plRoot, testpki.Options{CommonName: "pathlen intermediate", IsCA: true})
	add("root path length 0", []*testpki.Cert{plRoot}, testpki.New(t, plInter, testpki.Options{}), plInter)

	// An "intermediate" without basic constraints: a root needs none.
	nbInter := testpki.New(t, root, testpki.Options{CommonName: "no basic constraints", NoBasicConstraints: true, KeyUsage: x509.KeyUsageCertSign})
	add("intermediate without basic constraints", []*testpki.Cert{root}, testpki.New(t, nbInter, testpki.Options{}), nbInter)

	// An explicit policy required by the root, and none in the chain.
	pcRoot := policyConstraintsCA(t, nil, "policy root", 0)
	pcInter := testpki.New(t, pcRoot, testpki.Options{CommonName: "policy intermediate", IsCA: true})
	add("root requires an explicit policy", []*testpki.Cert{pcRoot}, testpki.New(t, pcInter, testpki.Options{}), pcInter)

	// The intermediate is itself trusted.
	add("intermediate in the CA file", []*testpki.Cert{root, inter}, testpki.New(t, inter, testpki.Options{}), inter)

	// A cross-signed intermediate: the same name and key under another
	// root, trusted as a root itself and outliving the intermediate.
	short := testpki.New(t, root, testpki.Options{CommonName: "cross intermediate", IsCA: true, NotAfter: now.Add(60 * 24 * time.Hour)})
	cross := testpki.New(t, nil, testpki.Options{CommonName: "cross intermediate", IsCA: true, Key: short.Key, NotAfter: long})
	add("intermediate's name trusted as a root", []*testpki.Cert{root, cross}, testpki.New(t, short, testpki.Options{}), short)
	// Two intermediates of one name and key under two roots, in the place:
	// the one under the second root gives the longer-lived chain.
	rootB := testpki.New(t, nil, testpki.Options{CommonName: "links root B", IsCA: true, NotAfter: long})
	longB := testpki.New(t, rootB, testpki.Options{CommonName: "cross intermediate", IsCA: true, Key: short.Key, NotAfter: now.Add(200 * 24 * time.Hour)})
	add("two intermediates of one name", []*testpki.Cert{root, rootB}, testpki.New(t, short, testpki.Options{}), short, longB)
	add("one intermediate, two roots trusted", []*testpki.Cert{root, rootB}, testpki.New(t, short, testpki.Options{}), short)

	// An intermediate that requires an explicit policy from the
	// certificate after next: verified alone it is the last certificate,
	// and the requirement binds only the leaf's chain.
	pcInter2 := policyConstraintsCA(t, root, "policy-requiring intermediate", 1)
	add("intermediate requires an explicit policy", []*testpki.Cert{root}, testpki.New(t, pcInter2, testpki.Options{}), pcInter2)

	// The leaf shares its subject with the root.
	add("leaf named as the root", []*testpki.Cert{root}, testpki.New(t, inter, testpki.Options{CommonName: "links root"}), inter)

	// Out of date above the intermediate, and unknown authorities.
	oldRoot := testpki.New(t, nil, testpki.Options{CommonName: "old root", IsCA: true, NotBefore: now.Add(-400 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	oldInter := testpki.New(t, oldRoot, testpki.Options{CommonName: "old intermediate", IsCA: true})
	add("expired root", []*testpki.Cert{oldRoot}, testpki.New(t, oldInter, testpki.Options{}), oldInter)
	add("unknown authority", []*testpki.Cert{rootB}, testpki.New(t, inter, testpki.Options{}), inter)
	add("system roots", nil, testpki.New(t, inter, testpki.Options{}), inter)

	ls := newLinks()
	for _, c := range cases {
		p := source.VerifyParams{RootsID: "system"}
		if c.ca != nil {
			ca, err := source.ParseCA(testpki.PEM(c.ca...))
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			p = ca.VerifyParams()
		}
		p.Revocation.OCSP = true // keeps the verified paths in the verdict, so they are compared too
		agree(t, c.name, testpki.Certs(c.place...), nil, p, now, ls)
	}
	if verifiedLinks(ls) == 0 {
		t.Fatal("no link was verified: the plain chains did not take the shortcut")
	}
}
