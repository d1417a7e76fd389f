package inspect_test

import (
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/revocation"
	"github.com/certwatch/certwatch/source"
)

// staple makes an OCSP response about cert signed by signer (its issuer,
// or not, for a bad signature).
func staple(t *testing.T, cert, issuer, signer *testpki.Cert, status int, reason int) []byte {
	t.Helper()
	now := time.Now()
	tmpl := ocsp.Response{Status: status, SerialNumber: cert.Cert.SerialNumber, ThisUpdate: now.Add(-time.Hour),
		NextUpdate: now.Add(24 * time.Hour)}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = now.Add(-2*time.Hour).Truncate(time.Second), reason
	}
	der, err := ocsp.CreateResponse(issuer.Cert, signer.Cert, tmpl, signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// answers is a table of revocation answers by certificate, the part of the
// revocation package the inspector reads; it records what it was asked.
type answers struct {
	mu    sync.Mutex
	about map[*x509.Certificate][]revocation.Answer
	asked []string
}

func (a *answers) Lookup(cert, issuer *x509.Certificate, ocspOn, crlOn bool) []revocation.Answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, cert.Subject.CommonName+" by "+issuer.Subject.CommonName)
	var out []revocation.Answer
	for _, ans := range a.about[cert] {
		if (ans.Method == revocation.MethodOCSP && ocspOn) || (ans.Method == revocation.MethodCRL && crlOn) {
			out = append(out, ans)
		}
	}
	return out
}

func TestRevokeStaple(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{DNSNames: []string{"localhost"}})
	other := testpki.New(t, nil, testpki.Options{CommonName: "someone else", IsCA: true})
	params := source.VerifyParams{Roots: testpki.Pool(chain.Root), DNSName: "localhost", ServerAuth: true, RootsID: "test"}
	certs := testpki.Certs(chain.Leaf, chain.Intermediate)
	cases := []struct {
		name       string
		staple     []byte
		certs      []*x509.Certificate
		reason     inspect.Reason
		status     revocation.Status
		stapleErr  source.Class
		wantDetail string
	}{
		{name: "good", staple: staple(t, chain.Leaf, chain.Intermediate, chain.Intermediate, ocsp.Good, 0),
			certs: certs, reason: inspect.ReasonOK, status: revocation.StatusGood},
		{name: "revoked", staple: staple(t, chain.Leaf, chain.Intermediate, chain.Intermediate, ocsp.Revoked, ocsp.KeyCompromise),
			certs: certs, reason: inspect.ReasonRevoked, status: revocation.StatusRevoked, wantDetail: "(keyCompromise), says its stapled OCSP response"},
		{name: "unknown", staple: staple(t, chain.Leaf, chain.Intermediate, chain.Intermediate, ocsp.Unknown, 0),
			certs: certs, reason: inspect.ReasonOK, status: revocation.StatusUnknown},
		{name: "bad signature", staple: staple(t, chain.Leaf, chain.Intermediate, other, ocsp.Revoked, ocsp.KeyCompromise),
			certs: certs, reason: inspect.ReasonOK, stapleErr: source.ClassBadSignature},
		{name: "about another certificate", staple: staple(t, chain.Intermediate, chain.Root, chain.Root, ocsp.Revoked, 0),
			certs: certs, reason: inspect.ReasonOK, stapleErr: source.ClassParse},
		{name: "junk", staple: []byte("not an OCSP response"), certs: certs, reason: inspect.ReasonOK, stapleErr: source.ClassParse},
		{name: "issuer unknown", staple: staple(t, chain.Leaf, chain.Intermediate, chain.Intermediate, ocsp.Revoked, 0),
			certs: testpki.Certs(chain.Leaf), reason: inspect.ReasonUnknownAuthority, stapleErr: source.ClassUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := inspect.NewInspector(nil)
			c := inspect.Chain{Certs: tc.certs, Verify: params, Staple: tc.staple}
			v := in.Revoke(c, in.JudgeAll([]inspect.Chain{c})[0])
			if v.Reason != tc.reason {
				t.Fatalf("reason %s (%s), want %s", v.Reason, v.Detail, tc.reason)
			}
			if !strings.Contains(v.Detail, tc.wantDetail) {
				t.Errorf("detail %q does not contain %q", v.Detail, tc.wantDetail)
			}
			rf := v.Revocation()
			if rf == nil || !rf.Stapled {
				t.Fatalf("revocation facts %+v, want stapled", rf)
			}
			if got := source.ClassOf(rf.StapleErr); got != tc.stapleErr {
				t.Fatalf("staple error %v (class %q), want class %q", rf.StapleErr, got, tc.stapleErr)
			}
			if tc.stapleErr != "" {
				if len(rf.Certs) != 0 {
					t.Errorf("answers %+v from an unusable staple", rf.Certs)
				}
				return
			}
			if len(rf.Certs) != 1 || rf.Certs[0].Index != 0 || len(rf.Certs[0].Answers) != 1 {
				t.Fatalf("answers %+v, want one about the leaf", rf.Certs)
			}
			a := rf.Certs[0].Answers[0]
			if a.Method != revocation.MethodStaple || a.Status != tc.status || a.NextUpdate.IsZero() {
				t.Errorf("answer %+v, want a %s staple with a next update", a, tc.status)
			}
			if tc.status == revocation.StatusRevoked && (a.Reason.String() != "keyCompromise" || a.RevokedAt.IsZero()) {
				t.Errorf("revoked answer %+v lacks its reason or time", a)
			}
		})
	}
}

// TestRevokeActive: answers of the background checks about any
// certificate of the chain decide, for the methods the place opted in to,
// and only a revoked answer changes the verdict, over every other reason.
func TestRevokeActive(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{DNSNames: []string{"localhost"}})
	revokedAt := time.Now().Add(-time.Hour).Truncate(time.Second)
	revoked := func(m revocation.Method) revocation.Answer {
		return revocation.Answer{Method: m, Status: revocation.StatusRevoked, RevokedAt: revokedAt,
			Reason: 5, URL: "http://ca.example/x"}
	}
	good := func(m revocation.Method) revocation.Answer {
		return revocation.Answer{Method: m, Status: revocation.StatusGood, URL: "http://ca.example/x", Reason: revocation.ReasonNone}
	}
	certs := testpki.Certs(chain.Leaf, chain.Intermediate)
	cases := []struct {
		name      string
		about     map[*x509.Certificate][]revocation.Answer
		opt       source.Revocation
		roots     *x509.CertPool
		reason    inspect.Reason
		answered  []int // place indexes with answers
		wantAsked int
	}{
		{name: "off: nothing asked", about: map[*x509.Certificate][]revocation.Answer{chain.Leaf.Cert: {revoked(revocation.MethodOCSP)}},
			reason: inspect.ReasonOK},
		{name: "all good", about: map[*x509.Certificate][]revocation.Answer{chain.Leaf.Cert: {good(revocation.MethodOCSP), good(revocation.MethodCRL)},
			chain.Intermediate.Cert: {good(revocation.MethodCRL)}}, opt: source.Revocation{OCSP: true, CRL: true},
			reason: inspect.ReasonOK, answered: []int{0, 1}, wantAsked: 2},
		{name: "revoked intermediate by CRL", about: map[*x509.Certificate][]revocation.Answer{chain.Leaf.Cert: {good(revocation.MethodOCSP)},
			chain.Intermediate.Cert: {revoked(revocation.MethodCRL)}}, opt: source.Revocation{OCSP: true, CRL: true},
			reason: inspect.ReasonRevoked, answered: []int{0, 1}, wantAsked: 2},
		{name: "revoked by a method not opted in", about: map[*x509.Certificate][]revocation.Answer{chain.Leaf.Cert: {revoked(revocation.MethodCRL)}},
			opt: source.Revocation{OCSP: true}, reason: inspect.ReasonOK, wantAsked: 2},
		{name: "no answer yet", about: nil, opt: source.Revocation{OCSP: true}, reason: inspect.ReasonOK, wantAsked: 2},
		{name: "revoked beats unknown authority", about: map[*x509.Certificate][]revocation.Answer{chain.Leaf.Cert: {revoked(revocation.MethodOCSP)}},
			opt: source.Revocation{OCSP: true}, roots: testpki.Pool(testpki.New(t, nil, testpki.Options{CommonName: "other", IsCA: true})),
			reason: inspect.ReasonRevoked, answered: []int{0}, wantAsked: 1}, // the path ends at the intermediate
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := inspect.NewInspector(nil)
			table := &answers{about: tc.about}
			in.SetRevocations(table)
			roots := tc.roots
			if roots == nil {
				roots = testpki.Pool(chain.Root)
			}
			c := inspect.Chain{Certs: certs, Verify: source.VerifyParams{Roots: roots, DNSName: "localhost", ServerAuth: true,
				RootsID: tc.name, Revocation: tc.opt}}
			v := in.Revoke(c, in.JudgeAll([]inspect.Chain{c})[0])
			if v.Reason != tc.reason {
				t.Fatalf("reason %s (%s), want %s", v.Reason, v.Detail, tc.reason)
			}
			if len(table.asked) != tc.wantAsked {
				t.Errorf("asked %v, want %d lookups", table.asked, tc.wantAsked)
			}
			if !tc.opt.Any() {
				if v.Revocation() != nil {
					t.Errorf("facts %+v for a place that opted in to nothing", v.Revocation())
				}
				return
			}
			var got []int
			for _, ca := range v.Revocation().Certs {
				got = append(got, ca.Index)
			}
			if len(got) != len(tc.answered) || (len(got) > 0 && !equalInts(got, tc.answered)) {
				t.Errorf("answered indexes %v, want %v", got, tc.answered)
			}
			if tc.reason == inspect.ReasonRevoked && !strings.Contains(v.Detail, "(cessationOfOperation), says the ") {
				t.Errorf("detail %q does not say why and by whom", v.Detail)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRevokeNotCached: the verdict cache never holds a revocation, so a
// certificate revoked after its chain was judged is reported at once, and
// one whose revocation is lifted (certificateHold removed) too.
func TestRevokeNotCached(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{DNSNames: []string{"localhost"}})
	in := inspect.NewInspector(nil)
	table := &answers{about: map[*x509.Certificate][]revocation.Answer{}}
	in.SetRevocations(table)
	c := inspect.Chain{Certs: testpki.Certs(chain.Leaf, chain.Intermediate), Verify: source.VerifyParams{Roots: testpki.Pool(chain.Root),
		DNSName: "localhost", ServerAuth: true, RootsID: "t", Revocation: source.Revocation{CRL: true}}}
	judge := func() inspect.Reason { return in.Revoke(c, in.JudgeAll([]inspect.Chain{c})[0]).Reason }
	if r := judge(); r != inspect.ReasonOK {
		t.Fatalf("before: %s", r)
	}
	table.mu.Lock()
	table.about[chain.Leaf.Cert] = []revocation.Answer{{Method: revocation.MethodCRL, Status: revocation.StatusRevoked, Reason: 6}}
	table.mu.Unlock()
	if r := judge(); r != inspect.ReasonRevoked {
		t.Fatalf("after revocation: %s", r)
	}
	table.mu.Lock()
	delete(table.about, chain.Leaf.Cert)
	table.mu.Unlock()
	if r := judge(); r != inspect.ReasonOK {
		t.Fatalf("after the hold was lifted: %s", r)
	}
}

// TestRevocationOptInAfterJudging: a chain judged without revocation checks
// (its verdict keeps no paths, to save memory) and then opted in, as a
// reload does, is checked at once rather than when its cached verdict
// expires.
func TestRevocationOptInAfterJudging(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{})
	in := inspect.NewInspector(nil)
	in.SetRevocations(&answers{about: map[*x509.Certificate][]revocation.Answer{
		chain.Leaf.Cert: {{Method: revocation.MethodCRL, Status: revocation.StatusRevoked, Reason: revocation.ReasonNone}}}})
	c := inspect.Chain{Certs: testpki.Certs(chain.Leaf, chain.Intermediate), Verify: source.VerifyParams{Roots: testpki.Pool(chain.Root), RootsID: "t"}}
	v := in.Revoke(c, in.JudgeAll([]inspect.Chain{c})[0])
	if v.Reason != inspect.ReasonOK || v.Paths() != nil || v.Revocation() != nil {
		t.Fatalf("without an opt-in: reason %s, paths %d, facts %+v", v.Reason, len(v.Paths()), v.Revocation())
	}
	c.Verify.Revocation = source.Revocation{CRL: true}
	if v := in.Revoke(c, in.JudgeAll([]inspect.Chain{c})[0]); v.Reason != inspect.ReasonRevoked {
		t.Fatalf("after the opt-in: %s", v.Reason)
	}
}
