package inspect_test

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

const day = 24 * time.Hour

// clock is an injectable, settable clock for NewInspector.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// pki is a root -> intermediate -> leaf chain for "localhost" with explicit
// dates, so that tests can aim at the moments they care about.
type pki struct {
	root, inter, leaf *testpki.Cert
}

func newPKI(t *testing.T, rootOpts, interOpts, leafOpts testpki.Options) pki {
	t.Helper()
	rootOpts.IsCA = true
	if rootOpts.CommonName == "" {
		rootOpts.CommonName = "verdict test root"
	}
	if rootOpts.NotAfter.IsZero() {
		rootOpts.NotAfter = time.Now().Add(3650 * day)
	}
	if !interOpts.NoBasicConstraints {
		interOpts.IsCA = true
	}
	if interOpts.CommonName == "" {
		interOpts.CommonName = "verdict test intermediate"
	}
	if interOpts.NotAfter.IsZero() {
		interOpts.NotAfter = time.Now().Add(1825 * day)
	}
	if leafOpts.CommonName == "" {
		leafOpts.CommonName = "localhost"
	}
	if leafOpts.DNSNames == nil {
		leafOpts.DNSNames = []string{"localhost"}
	}
	root := testpki.New(t, nil, rootOpts)
	inter := testpki.New(t, root, interOpts)
	return pki{root: root, inter: inter, leaf: testpki.New(t, inter, leafOpts)}
}

func serverParams(roots ...*testpki.Cert) source.VerifyParams {
	return source.VerifyParams{Roots: testpki.Pool(roots...), RootsID: rootsID(roots), DNSName: "localhost", ServerAuth: true}
}

func fileParams(roots ...*testpki.Cert) source.VerifyParams {
	return source.VerifyParams{Roots: testpki.Pool(roots...), RootsID: rootsID(roots)}
}

func rootsID(roots []*testpki.Cert) string {
	var b strings.Builder
	for _, r := range roots {
		fmt.Fprintf(&b, "%x;", r.Cert.Raw[len(r.Cert.Raw)-8:])
	}
	return b.String()
}

type judgeCase struct {
	name   string
	certs  []*x509.Certificate
	keys   []crypto.PublicKey
	params source.VerifyParams
	// earlier are chains judged first, as other places, on the same inspector.
	earlier [][]*x509.Certificate
	want    inspect.Reason
	// detail, when set, must appear in the verdict's Detail.
	detail string
	// chainNotAfter, when set, is the expected ChainNotAfter.
	chainNotAfter time.Time
}

// TestJudgeReasons drives one case per verdict reason through a fresh
// Inspector and asserts the exact reason (and, where it matters, the detail
// and ChainNotAfter).
func TestJudgeReasons(t *testing.T) {
	t.Parallel()
	now := time.Now()
	std := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})
	other := newPKI(t, testpki.Options{CommonName: "unrelated root"}, testpki.Options{CommonName: "unrelated intermediate"}, testpki.Options{})

	// The root expires first: ChainNotAfter must come from the root, which
	// the server never presents.
	shortRoot := newPKI(t,
		testpki.Options{NotAfter: now.Add(30 * day)},
		testpki.Options{NotAfter: now.Add(60 * day)},
		testpki.Options{NotAfter: now.Add(90 * day)})

	expiredLeaf := testpki.New(t, std.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	futureLeaf := testpki.New(t, std.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"},
		NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)})
	expiredInter := newPKI(t, testpki.Options{},
		testpki.Options{NotBefore: now.Add(-30 * day), NotAfter: now.Add(-time.Hour)},
		testpki.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(30 * day)})

	sibling := testpki.New(t, std.inter, testpki.Options{CommonName: "sibling", DNSNames: []string{"localhost"}})
	aiaLeaf := testpki.New(t, other.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"},
		IssuerURL: "http://ca.example/intermediate.cer"})

	clientOnly := testpki.New(t, std.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	notCA := newPKI(t, testpki.Options{}, testpki.Options{CommonName: "not a CA", NoBasicConstraints: true}, testpki.Options{})

	sha1ECDSA := testpki.New(t, std.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, SigAlg: x509.ECDSAWithSHA1})
	rsaChain := newPKI(t, testpki.Options{KeyType: "rsa2048"}, testpki.Options{KeyType: "rsa2048"}, testpki.Options{})
	sha1RSA := testpki.New(t, rsaChain.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, SigAlg: x509.SHA1WithRSA})
	rsa1024 := testpki.New(t, std.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, KeyType: "rsa1024"})
	weakInter := newPKI(t, testpki.Options{}, testpki.Options{KeyType: "rsa1024"}, testpki.Options{})

	anchorA := testpki.New(t, nil, testpki.Options{CommonName: "anchor A", IsCA: true, NotAfter: now.Add(400 * day)})
	anchorB := testpki.New(t, nil, testpki.Options{CommonName: "anchor B", IsCA: true, NotAfter: now.Add(200 * day)})
	anchorC := testpki.New(t, nil, testpki.Options{CommonName: "anchor C", IsCA: true, NotAfter: now.Add(800 * day)})
	anchorExpired := testpki.New(t, nil, testpki.Options{CommonName: "anchor expired", IsCA: true,
		NotBefore: now.Add(-400 * day), NotAfter: now.Add(-day)})
	anchorFuture := testpki.New(t, nil, testpki.Options{CommonName: "anchor future", IsCA: true,
		NotBefore: now.Add(day), NotAfter: now.Add(400 * day)})
	anchorWeak := testpki.New(t, nil, testpki.Options{CommonName: "anchor weak", IsCA: true, KeyType: "rsa1024"})

	otherKey := testpki.NewKey(t, "ecdsa")
	withExtra := serverParams(std.root)
	withExtra.Extra = []*x509.Certificate{std.inter.Cert}

	cases := []judgeCase{
		{name: "ok full chain", certs: testpki.Certs(std.leaf, std.inter), params: serverParams(std.root),
			want: inspect.ReasonOK, chainNotAfter: std.leaf.Cert.NotAfter},
		{name: "ok ChainNotAfter is the root's", certs: testpki.Certs(shortRoot.leaf, shortRoot.inter), params: serverParams(shortRoot.root),
			want: inspect.ReasonOK, chainNotAfter: shortRoot.root.Cert.NotAfter},
		{name: "ok file without hostname or serverAuth", certs: testpki.Certs(std.leaf, std.inter), params: fileParams(std.root),
			want: inspect.ReasonOK},

		{name: "expired leaf", certs: testpki.Certs(expiredLeaf, std.inter), params: serverParams(std.root),
			want: inspect.ReasonExpired, chainNotAfter: expiredLeaf.Cert.NotAfter},
		{name: "expired intermediate, leaf in date", certs: testpki.Certs(expiredInter.leaf, expiredInter.inter), params: serverParams(expiredInter.root),
			want: inspect.ReasonExpired, chainNotAfter: expiredInter.inter.Cert.NotAfter},
		{name: "not yet valid leaf", certs: testpki.Certs(futureLeaf, std.inter), params: serverParams(std.root),
			want: inspect.ReasonNotYetValid, detail: "before"},
		{name: "expired wins over hostname mismatch", certs: testpki.Certs(expiredLeaf, std.inter),
			params: source.VerifyParams{Roots: testpki.Pool(std.root), RootsID: "r", DNSName: "elsewhere.example", ServerAuth: true},
			want:   inspect.ReasonExpired},

		{name: "hostname mismatch", certs: testpki.Certs(std.leaf, std.inter),
			params: source.VerifyParams{Roots: testpki.Pool(std.root), RootsID: "r", DNSName: "elsewhere.example", ServerAuth: true},
			want:   inspect.ReasonHostnameMismatch, detail: "elsewhere.example"},

		{name: "incomplete chain, intermediate known from the CA file (Extra)", certs: testpki.Certs(std.leaf), params: withExtra,
			want: inspect.ReasonIncompleteChain},
		{name: "an intermediate seen at another place changes nothing", certs: testpki.Certs(std.leaf), params: serverParams(std.root),
			earlier: [][]*x509.Certificate{testpki.Certs(sibling, std.inter)},
			want:    inspect.ReasonUnknownAuthority},
		{name: "incomplete chain, AIA names the missing issuer", certs: testpki.Certs(aiaLeaf), params: serverParams(std.root),
			want: inspect.ReasonIncompleteChain, detail: "was not presented"},
		{name: "missing intermediate nobody knows is an unknown authority", certs: testpki.Certs(std.leaf), params: serverParams(std.root),
			want: inspect.ReasonUnknownAuthority},

		{name: "unknown authority", certs: testpki.Certs(other.leaf, other.inter), params: serverParams(std.root),
			want: inspect.ReasonUnknownAuthority, chainNotAfter: other.leaf.Cert.NotAfter},
		{name: "unknown authority, self-signed leaf", certs: testpki.Certs(testpki.New(t, nil, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})),
			params: serverParams(std.root), want: inspect.ReasonUnknownAuthority},

		{name: "invalid usage, clientAuth-only leaf where serverAuth is required", certs: testpki.Certs(clientOnly, std.inter), params: serverParams(std.root),
			want: inspect.ReasonInvalidUsage},
		{name: "clientAuth-only leaf in a file is fine", certs: testpki.Certs(clientOnly, std.inter), params: fileParams(std.root),
			want: inspect.ReasonOK},
		{name: "invalid usage, intermediate without CA basic constraints", certs: testpki.Certs(notCA.leaf, notCA.inter), params: serverParams(notCA.root),
			want: inspect.ReasonInvalidUsage, detail: "which may not issue certificates"},

		{name: "weak signature, ECDSA-SHA1 leaf", certs: testpki.Certs(sha1ECDSA, std.inter), params: serverParams(std.root),
			want: inspect.ReasonWeakSignature},
		{name: "weak signature, SHA1-RSA leaf", certs: testpki.Certs(sha1RSA, rsaChain.inter), params: serverParams(rsaChain.root),
			want: inspect.ReasonWeakSignature},

		{name: "weak key, RSA 1024 leaf", certs: testpki.Certs(rsa1024, std.inter), params: serverParams(std.root),
			want: inspect.ReasonWeakKey, detail: "1024-bit RSA"},
		{name: "weak key, RSA 1024 intermediate", certs: testpki.Certs(weakInter.leaf, weakInter.inter), params: serverParams(weakInter.root),
			want: inspect.ReasonWeakKey, detail: "1024-bit RSA"},

		{name: "key mismatch", certs: testpki.Certs(std.leaf, std.inter), keys: []crypto.PublicKey{otherKey.Public()}, params: fileParams(std.root),
			want: inspect.ReasonKeyMismatch},
		{name: "matching key", certs: testpki.Certs(std.leaf, std.inter), keys: []crypto.PublicKey{std.leaf.Key.Public()}, params: fileParams(std.root),
			want: inspect.ReasonOK},
		{name: "one of several keys matches", certs: testpki.Certs(std.leaf, std.inter), keys: []crypto.PublicKey{otherKey.Public(), std.leaf.Key.Public()},
			params: fileParams(std.root), want: inspect.ReasonOK},

		{name: "trust anchor file, one self-signed CA", certs: testpki.Certs(anchorA), params: fileParams(),
			want: inspect.ReasonOK, chainNotAfter: anchorA.Cert.NotAfter},
		{name: "trust anchor bundle", certs: testpki.Certs(anchorA, anchorB, anchorC), params: fileParams(),
			want: inspect.ReasonOK, chainNotAfter: anchorB.Cert.NotAfter},
		{name: "trust anchor bundle with an expired CA", certs: testpki.Certs(anchorA, anchorExpired, anchorC), params: fileParams(),
			want: inspect.ReasonExpired, detail: "anchor expired", chainNotAfter: anchorExpired.Cert.NotAfter},
		{name: "trust anchor bundle with a CA not yet valid", certs: testpki.Certs(anchorA, anchorFuture), params: fileParams(),
			want: inspect.ReasonNotYetValid, detail: "anchor future"},
		{name: "trust anchor bundle with a weak key", certs: testpki.Certs(anchorA, anchorWeak), params: fileParams(),
			want: inspect.ReasonWeakKey, detail: "anchor weak"},

		{name: "no certificates", certs: nil, params: fileParams(), want: inspect.ReasonInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := inspect.NewInspector(func() time.Time { return now })
			for _, chain := range tc.earlier {
				if v := in.Judge(chain, nil, tc.params); v.Reason != inspect.ReasonOK {
					t.Fatalf("earlier chain: got %s (%s), want ok", v.Reason, v.Detail)
				}
			}
			v := in.Judge(tc.certs, tc.keys, tc.params)
			if v.Reason != tc.want {
				t.Fatalf("reason = %q (detail %q), want %q", v.Reason, v.Detail, tc.want)
			}
			if v.Valid() != (tc.want == inspect.ReasonOK) {
				t.Errorf("Valid() = %t for reason %q", v.Valid(), v.Reason)
			}
			if tc.want != inspect.ReasonOK && v.Detail == "" {
				t.Errorf("reason %q without a detail", v.Reason)
			}
			if tc.detail != "" && !strings.Contains(v.Detail, tc.detail) {
				t.Errorf("detail %q does not mention %q", v.Detail, tc.detail)
			}
			if strings.Contains(v.Detail, "PRIVATE KEY") {
				t.Errorf("detail carries key material: %q", v.Detail)
			}
			if !tc.chainNotAfter.IsZero() && !v.ChainNotAfter.Equal(tc.chainNotAfter) {
				t.Errorf("ChainNotAfter = %s, want %s", v.ChainNotAfter, tc.chainNotAfter)
			}
			if len(tc.certs) > 0 && !v.ValidUntil.After(now) {
				t.Errorf("ValidUntil %s is not after now %s", v.ValidUntil, now)
			}
		})
	}
}

// TestReasonsListed keeps Reasons in step with the constants.
func TestReasonsListed(t *testing.T) {
	t.Parallel()
	want := []inspect.Reason{"ok", "revoked", "expired", "not_yet_valid", "hostname_mismatch", "incomplete_chain", "unknown_authority",
		"invalid_usage", "weak_signature", "weak_key", "key_mismatch", "invalid"}
	if !reflect.DeepEqual(inspect.Reasons, want) {
		t.Fatalf("Reasons = %v, want %v", inspect.Reasons, want)
	}
}

// TestVerdictCache shows that a verdict is remembered until ValidUntil and
// recomputed from then on, and that other places judged in between (one
// that holds the missing intermediate) change nothing, then or after.
func TestVerdictCache(t *testing.T) {
	t.Parallel()
	base := time.Now().Truncate(time.Second)
	c := &clock{t: base}
	in := inspect.NewInspector(c.now)
	p := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{NotAfter: base.Add(90 * day)})
	sibling := testpki.New(t, p.inter, testpki.Options{CommonName: "sibling", DNSNames: []string{"localhost"}})
	params := serverParams(p.root)

	first := in.Judge(testpki.Certs(p.leaf), nil, params)
	if first.Reason != inspect.ReasonUnknownAuthority {
		t.Fatalf("leaf alone, nothing known: %q (%s), want unknown_authority", first.Reason, first.Detail)
	}
	// Nothing in the leaf changes within a day: the verdict is re-derived daily.
	if want := base.Add(day); !first.ValidUntil.Equal(want) {
		t.Fatalf("ValidUntil = %s, want %s (daily re-verification)", first.ValidUntil, want)
	}

	// Another place holds the intermediate.
	if v := in.Judge(testpki.Certs(sibling, p.inter), nil, params); v.Reason != inspect.ReasonOK {
		t.Fatalf("sibling: %q (%s)", v.Reason, v.Detail)
	}

	for _, at := range []time.Time{base, base.Add(time.Hour), first.ValidUntil.Add(-time.Nanosecond)} {
		c.set(at)
		if v := in.Judge(testpki.Certs(p.leaf), nil, params); !reflect.DeepEqual(v, first) {
			t.Fatalf("at %s: got %+v, want the cached %+v", at, v, first)
		}
	}
	c.set(first.ValidUntil)
	v := in.Judge(testpki.Certs(p.leaf), nil, params)
	if v.Reason != inspect.ReasonUnknownAuthority || !v.ValidUntil.After(first.ValidUntil) {
		t.Fatalf("at ValidUntil the verdict must be recomputed, to the same reason: %q (%s) until %s, want unknown_authority after %s",
			v.Reason, v.Detail, v.ValidUntil, first.ValidUntil)
	}

	// The cache is keyed by the verification parameters too.
	c.set(base)
	mismatch := params
	mismatch.DNSName = "elsewhere.example"
	if v := in.Judge(testpki.Certs(sibling, p.inter), nil, mismatch); v.Reason != inspect.ReasonHostnameMismatch {
		t.Fatalf("same chain, other DNS name: %q, want hostname_mismatch", v.Reason)
	}
	// ... and by the stored keys.
	if v := in.Judge(testpki.Certs(sibling, p.inter), []crypto.PublicKey{p.leaf.Key.Public()}, params); v.Reason != inspect.ReasonKeyMismatch {
		t.Fatalf("same chain, foreign key: %q, want key_mismatch", v.Reason)
	}
}

// TestVerdictValidUntil checks that ValidUntil is the nearest date ahead at
// which the verdict can change, and that the verdict does change there.
func TestVerdictValidUntil(t *testing.T) {
	t.Parallel()
	base := time.Now().Truncate(time.Second)
	p := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})

	t.Run("expiry ahead", func(t *testing.T) {
		t.Parallel()
		c := &clock{t: base}
		in := inspect.NewInspector(c.now)
		leaf := testpki.New(t, p.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, NotAfter: base.Add(2 * time.Hour)})
		v := in.Judge(testpki.Certs(leaf, p.inter), nil, serverParams(p.root))
		if v.Reason != inspect.ReasonOK {
			t.Fatalf("%q (%s)", v.Reason, v.Detail)
		}
		// crypto/x509 treats NotAfter itself as valid; a second later it is not.
		if want := leaf.Cert.NotAfter.Add(time.Second); !v.ValidUntil.Equal(want) {
			t.Fatalf("ValidUntil = %s, want %s", v.ValidUntil, want)
		}
		if !v.ChainNotAfter.Equal(leaf.Cert.NotAfter) {
			t.Fatalf("ChainNotAfter = %s, want %s", v.ChainNotAfter, leaf.Cert.NotAfter)
		}
		c.set(v.ValidUntil)
		if v := in.Judge(testpki.Certs(leaf, p.inter), nil, serverParams(p.root)); v.Reason != inspect.ReasonExpired {
			t.Fatalf("at ValidUntil: %q, want expired", v.Reason)
		}
	})
	t.Run("not-before ahead", func(t *testing.T) {
		t.Parallel()
		c := &clock{t: base}
		in := inspect.NewInspector(c.now)
		leaf := testpki.New(t, p.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"},
			NotBefore: base.Add(time.Hour), NotAfter: base.Add(30 * day)})
		v := in.Judge(testpki.Certs(leaf, p.inter), nil, serverParams(p.root))
		if v.Reason != inspect.ReasonNotYetValid {
			t.Fatalf("%q (%s)", v.Reason, v.Detail)
		}
		if !v.ValidUntil.Equal(leaf.Cert.NotBefore) {
			t.Fatalf("ValidUntil = %s, want the leaf's not-before %s", v.ValidUntil, leaf.Cert.NotBefore)
		}
		c.set(v.ValidUntil)
		if v := in.Judge(testpki.Certs(leaf, p.inter), nil, serverParams(p.root)); v.Reason != inspect.ReasonOK {
			t.Fatalf("at not-before: %q (%s), want ok", v.Reason, v.Detail)
		}
	})
	t.Run("root expiry bounds ValidUntil", func(t *testing.T) {
		t.Parallel()
		c := &clock{t: base}
		in := inspect.NewInspector(c.now)
		short := newPKI(t, testpki.Options{NotAfter: base.Add(3 * time.Hour)}, testpki.Options{}, testpki.Options{})
		v := in.Judge(testpki.Certs(short.leaf, short.inter), nil, serverParams(short.root))
		if v.Reason != inspect.ReasonOK {
			t.Fatalf("%q (%s)", v.Reason, v.Detail)
		}
		if want := short.root.Cert.NotAfter.Add(time.Second); !v.ValidUntil.Equal(want) {
			t.Fatalf("ValidUntil = %s, want the root's expiry %s", v.ValidUntil, want)
		}
		c.set(v.ValidUntil)
		if v := in.Judge(testpki.Certs(short.leaf, short.inter), nil, serverParams(short.root)); v.Reason != inspect.ReasonExpired {
			t.Fatalf("after the root expired: %q (%s), want expired", v.Reason, v.Detail)
		}
	})
}

// TestJudgeConcurrent judges many places at once on one inspector; run with
// -race it proves the verdict and intermediate caches are guarded.
func TestJudgeConcurrent(t *testing.T) {
	t.Parallel()
	p := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})
	in := inspect.NewInspector(nil)
	leaves := make([]*testpki.Cert, 8)
	for i := range leaves {
		leaves[i] = testpki.New(t, p.inter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leaf := leaves[i%len(leaves)]
			certs := testpki.Certs(leaf, p.inter)
			want := inspect.ReasonOK
			if i%2 == 1 {
				certs = testpki.Certs(leaf) // may or may not be known yet: either reason is right
				want = ""
			}
			v := in.Judge(certs, nil, serverParams(p.root))
			if want != "" && v.Reason != want {
				errs <- fmt.Sprintf("goroutine %d: %q", i, v.Reason)
			} else if want == "" && v.Reason != inspect.ReasonIncompleteChain && v.Reason != inspect.ReasonUnknownAuthority {
				errs <- fmt.Sprintf("goroutine %d: leaf alone judged %q", i, v.Reason)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestJudgeAllOnOneCore: with one core (GOMAXPROCS 1, as a container
// limited to one CPU gets) every chain of a batch is judged, not just the
// first.
func TestJudgeAllOnOneCore(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	std := newPKI(t, testpki.Options{}, testpki.Options{}, testpki.Options{})
	var chains []inspect.Chain
	for i := range 3 {
		leaf := testpki.New(t, std.inter, testpki.Options{CommonName: fmt.Sprintf("one core %d", i)})
		chains = append(chains, inspect.Chain{Certs: testpki.Certs(leaf, std.inter), Verify: fileParams(std.root)})
	}
	for i, v := range inspect.NewInspector(nil).JudgeAll(chains) {
		if v.Reason != inspect.ReasonOK {
			t.Errorf("chain %d: %q (%s), want ok", i, v.Reason, v.Detail)
		}
	}
}
