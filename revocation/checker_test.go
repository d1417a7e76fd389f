package revocation

import (
	"context"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// lookupBoth polls Lookup until the OCSP and CRL answers asked are there.
func lookupBoth(t *testing.T, c *Checker, cert, issuer *x509.Certificate, wantOCSP, wantCRL bool) []Answer {
	t.Helper()
	var as []Answer
	waitFor(t, "answers about "+cert.Subject.CommonName, func() bool {
		as = c.Lookup(cert, issuer, wantOCSP, wantCRL)
		_, haveOCSP := answer(as, MethodOCSP)
		_, haveCRL := answer(as, MethodCRL)
		return haveOCSP == wantOCSP && haveCRL == wantCRL
	})
	return as
}

func TestAnswers(t *testing.T) {
	root := testpki.New(t, nil, testpki.Options{CommonName: "answers root", IsCA: true})
	resp := newResponder(t, root)
	crls := newCRLServer(t)
	rootCRL, interCRL := crls.URL+"/root.crl", crls.URL+"/inter.crl"
	ca := testpki.Options{IsCA: true, OCSPServers: []string{resp.URL}, CRLURLs: []string{rootCRL}}
	ca.CommonName = "answers intermediate"
	inter := testpki.New(t, root, ca)
	ca.CommonName = "answers revoked intermediate"
	revokedInter := testpki.New(t, root, ca)
	resp.cas = append(resp.cas, inter)
	leaf := func(cn string) *testpki.Cert {
		return testpki.New(t, inter, testpki.Options{CommonName: cn, OCSPServers: []string{resp.URL}, CRLURLs: []string{interCRL}})
	}
	good, revokedLeaf, unknown := leaf("good"), leaf("revoked"), leaf("unknown")

	at := time.Now().Add(-48 * time.Hour).Truncate(time.Second).UTC()
	resp.set(revokedLeaf.Cert.SerialNumber, ocsp.Revoked, at, ocsp.KeyCompromise)
	resp.set(revokedInter.Cert.SerialNumber, ocsp.Revoked, at, ocsp.CACompromise)
	resp.set(unknown.Cert.SerialNumber, ocsp.Unknown, time.Time{}, 0)
	crls.put("/inter.crl", opensslCRL(t, inter, []revoked{{revokedLeaf.Cert.SerialNumber, at, "keyCompromise"}}, time.Time{}, time.Time{}))
	crls.put("/root.crl", opensslCRL(t, root, []revoked{{revokedInter.Cert.SerialNumber, at, "CACompromise"}}, time.Time{}, time.Time{}))

	c, logs := startChecker(t, config.Fetch{Allow: loopback, MinRefresh: config.Duration(time.Hour), MaxRefresh: config.Duration(2 * time.Hour)})
	for _, tc := range []struct {
		name             string
		cert, issuer     *testpki.Cert
		ocspSays, crlSay Status
		reason           Reason
	}{
		{"good leaf", good, inter, StatusGood, StatusGood, ReasonNone},
		{"revoked leaf", revokedLeaf, inter, StatusRevoked, StatusRevoked, 1},
		{"revoked intermediate", revokedInter, root, StatusRevoked, StatusRevoked, 2},
		{"good intermediate", inter, root, StatusGood, StatusGood, ReasonNone},
		{"unknown to the responder", unknown, inter, StatusUnknown, StatusGood, ReasonNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := lookupBoth(t, c, tc.cert.Cert, tc.issuer.Cert, true, true)
			o, _ := answer(as, MethodOCSP)
			l, _ := answer(as, MethodCRL)
			if o.Status != tc.ocspSays || l.Status != tc.crlSay {
				t.Fatalf("ocsp %s, crl %s; want %s, %s", o.Status, l.Status, tc.ocspSays, tc.crlSay)
			}
			if o.URL != resp.URL || o.ThisUpdate.IsZero() || o.NextUpdate.IsZero() {
				t.Errorf("ocsp answer %+v", o)
			}
			if l.NextUpdate.Before(time.Now()) || l.URL != tc.cert.Cert.CRLDistributionPoints[0] {
				t.Errorf("crl answer %+v", l)
			}
			for _, a := range []Answer{o, l} {
				if a.Status != StatusRevoked {
					if !a.RevokedAt.IsZero() || a.Reason != ReasonNone {
						t.Errorf("%s: not revoked but %v, %s", a.Method, a.RevokedAt, a.Reason)
					}
					continue
				}
				if !a.RevokedAt.Equal(at) || a.Reason != tc.reason {
					t.Errorf("%s: revoked at %v (%s), want %v (%s)", a.Method, a.RevokedAt, a.Reason, at, tc.reason)
				}
			}
		})
	}

	res := c.Scrape(context.Background())
	if len(res.Findings) != 2 {
		t.Fatalf("%d findings, want one per CRL URL", len(res.Findings))
	}
	for _, f := range res.Findings {
		if f.Source != source.KindCRLDistributionPoint || (f.Target != rootCRL && f.Target != interCRL) || f.Err != nil ||
			len(f.CRLs) != 1 || f.CRLs[0].Entries != 1 {
			t.Errorf("finding %+v", f)
		}
	}
	for _, k := range []struct {
		method Method
		url    string
	}{{MethodOCSP, resp.URL}, {MethodCRL, rootCRL}, {MethodCRL, interCRL}} {
		ok, _ := sample(res, metricSuccess, string(k.method), k.url)
		last, _ := sample(res, metricLastSuccess, string(k.method), k.url)
		if ok != 1 || time.Since(time.Unix(int64(last), 0)) > time.Minute {
			t.Errorf("%s %s: success %v, last success %v", k.method, k.url, ok, last)
		}
	}
	for _, s := range res.Status {
		if s.Help == "" {
			t.Errorf("%s has no help", s.Name)
		}
	}
	if n := logs.count("level=WARN"); n != 0 {
		t.Errorf("%d warnings:\n%s", n, logs.buf.String())
	}
	// Each CRL once, each certificate asked once: answers are cached.
	for _, p := range []string{"/root.crl", "/inter.crl"} {
		if served, _ := crls.count(p); served != 1 {
			t.Errorf("%s served %d times", p, served)
		}
	}
	if n := resp.requests(good.Cert.SerialNumber); n != 1 {
		t.Errorf("good leaf asked %d times", n)
	}
}

// TestFailures: a URL that fails gives no answer, is retried with backoff,
// counted by class, and logged once.
func TestFailures(t *testing.T) {
	root := testpki.New(t, nil, testpki.Options{CommonName: "failures root", IsCA: true})
	other := testpki.New(t, nil, testpki.Options{CommonName: "failures root", IsCA: true}) // same name, another key
	inter := testpki.New(t, root, testpki.Options{CommonName: "failures intermediate", IsCA: true})
	crlDER := opensslCRL(t, inter, nil, time.Time{}, time.Time{})
	fast := config.Duration(100 * time.Millisecond) // backoff and refresh floor

	elsewhere := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the redirect was followed to another host")
	}))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	elsewhere.Listener.Close()
	elsewhere.Listener = ln
	elsewhere.Start()
	defer elsewhere.Close()

	for _, tc := range []struct {
		name   string
		method Method
		class  source.Class
		fetch  config.Fetch
		// setup returns the URL the leaf names and a count of the requests
		// that reached a server, when there is one.
		setup func(t *testing.T) (url string, reached func() int)
	}{
		{"responder down", MethodOCSP, source.ClassRefused, config.Fetch{Allow: loopback},
			func(t *testing.T) (string, func() int) { return freeURL(t), nil }},
		{"responder slow", MethodOCSP, source.ClassTimeout, config.Fetch{Allow: loopback, Timeout: config.Duration(300 * time.Millisecond)},
			func(t *testing.T) (string, func() int) {
				r := newResponder(t, inter)
				r.delay = time.Minute
				return r.URL, nil
			}},
		{"response signed by another key", MethodOCSP, source.ClassBadSignature, config.Fetch{Allow: loopback},
			func(t *testing.T) (string, func() int) {
				r := newResponder(t, inter)
				r.signer = other
				return r.URL, nil
			}},
		{"responder denied", MethodOCSP, source.ClassDenied, config.Fetch{},
			func(t *testing.T) (string, func() int) {
				r := newResponder(t, inter)
				return r.URL, func() int { return int(r.total.Load()) }
			}},
		{"CRL denied", MethodCRL, source.ClassDenied, config.Fetch{},
			func(t *testing.T) (string, func() int) {
				s := newCRLServer(t)
				return s.put("/x.crl", crlDER), func() int { n, _ := s.count("/x.crl"); return n }
			}},
		{"CRL over the size cap", MethodCRL, source.ClassTooLarge, config.Fetch{Allow: loopback, MaxCRLSize: 100},
			func(t *testing.T) (string, func() int) { return newCRLServer(t).put("/x.crl", crlDER), nil }},
		{"CRL signed by another key", MethodCRL, source.ClassBadSignature, config.Fetch{Allow: loopback},
			func(t *testing.T) (string, func() int) {
				return newCRLServer(t).put("/x.crl", opensslCRL(t, other, nil, time.Time{}, time.Time{})), nil
			}},
		{"CRL missing", MethodCRL, source.ClassHTTP, config.Fetch{Allow: loopback},
			func(t *testing.T) (string, func() int) { return newCRLServer(t).URL + "/missing.crl", nil }},
		{"CRL redirected to another host", MethodCRL, source.ClassDenied, config.Fetch{Allow: loopback},
			func(t *testing.T) (string, func() int) {
				s := newCRLServer(t)
				s.redirect = elsewhere.URL + "/x.crl"
				return s.URL + "/x.crl", nil
			}},
		{"CRL garbage", MethodCRL, source.ClassParse, config.Fetch{Allow: loopback},
			func(t *testing.T) (string, func() int) {
				return newCRLServer(t).put("/x.crl", []byte("not a CRL")), nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, reached := tc.setup(t)
			o := testpki.Options{CommonName: tc.name}
			if tc.method == MethodOCSP {
				o.OCSPServers = []string{url}
			} else {
				o.CRLURLs = []string{url}
			}
			leaf := testpki.New(t, inter, o)
			tc.fetch.MinRefresh = fast
			c, logs := startChecker(t, tc.fetch)
			var res source.Result
			waitFor(t, "three failed attempts", func() bool {
				if as := c.Lookup(leaf.Cert, inter.Cert, true, true); len(as) != 0 {
					t.Fatalf("answers from a failing URL: %+v", as)
				}
				res = c.Scrape(context.Background())
				n, _ := sample(res, metricErrors, string(tc.method), url, string(tc.class))
				return n >= 3
			})
			if ok, found := sample(res, metricSuccess, string(tc.method), url); !found || ok != 0 {
				t.Errorf("success gauge %v (found %v), want 0", ok, found)
			}
			if last, _ := sample(res, metricLastSuccess, string(tc.method), url); last != 0 {
				t.Errorf("last success %v, want 0", last)
			}
			if n := logs.count("revocation fetch failed", "method="+string(tc.method), "class="+string(tc.class)); n != 1 {
				t.Errorf("%d warning lines, want one per state change:\n%s", n, logs.buf.String())
			}
			if reached != nil && reached() != 0 {
				t.Errorf("%d requests reached a denied server", reached())
			}
			if tc.method == MethodCRL {
				if len(res.Findings) != 1 || source.ClassOf(res.Findings[0].Err) != tc.class || len(res.Findings[0].CRLs) != 0 {
					t.Errorf("findings %+v", res.Findings)
				}
			}
		})
	}
}

// TestStaleCRL: a CRL past its next update still answers; its finding
// carries the dates the place is reported stale by.
func TestStaleCRL(t *testing.T) {
	ca := testpki.New(t, nil, testpki.Options{CommonName: "stale CA", IsCA: true})
	crls := newCRLServer(t)
	next := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	url := crls.put("/stale.crl", opensslCRL(t, ca, nil, next.Add(-24*time.Hour), next))
	leaf := testpki.New(t, ca, testpki.Options{CommonName: "stale leaf", CRLURLs: []string{url}})
	c, _ := startChecker(t, config.Fetch{Allow: loopback})
	as := lookupBoth(t, c, leaf.Cert, ca.Cert, false, true)
	if as[0].Status != StatusGood || !as[0].NextUpdate.Equal(next) {
		t.Errorf("answer %+v", as[0])
	}
	res := c.Scrape(context.Background())
	if len(res.Findings) != 1 || res.Findings[0].Err != nil || len(res.Findings[0].CRLs) != 1 || !res.Findings[0].CRLs[0].NextUpdate.Equal(next) {
		t.Errorf("findings %+v", res.Findings)
	}
}

// TestLastGoodAnswerKept: when the responder and the distribution point go
// away, the answers fetched before stay while they are valid, and the CRL
// finding keeps its list beside the error.
func TestLastGoodAnswerKept(t *testing.T) {
	ca := testpki.New(t, nil, testpki.Options{CommonName: "kept CA", IsCA: true})
	resp := newResponder(t, ca)
	crls := newCRLServer(t)
	url := crls.put("/kept.crl", opensslCRL(t, ca, nil, time.Time{}, time.Time{}))
	leaf := testpki.New(t, ca, testpki.Options{CommonName: "kept leaf", OCSPServers: []string{resp.URL}, CRLURLs: []string{url}})
	short := config.Duration(100 * time.Millisecond)
	c, _ := startChecker(t, config.Fetch{Allow: loopback, MinRefresh: short, MaxRefresh: short})
	lookupBoth(t, c, leaf.Cert, ca.Cert, true, true)
	resp.Close()
	crls.Close()
	waitFor(t, "failed refreshes", func() bool {
		as := c.Lookup(leaf.Cert, ca.Cert, true, true)
		if len(as) != 2 || as[0].Status != StatusGood || as[1].Status != StatusGood {
			t.Fatalf("answers %+v", as)
		}
		res := c.Scrape(context.Background())
		n1, _ := sample(res, metricErrors, "ocsp", resp.URL, "refused")
		n2, _ := sample(res, metricErrors, "crl", url, "refused")
		return n1 >= 2 && n2 >= 2
	})
	res := c.Scrape(context.Background())
	if len(res.Findings) != 1 || source.ClassOf(res.Findings[0].Err) != source.ClassRefused || len(res.Findings[0].CRLs) != 1 {
		t.Errorf("findings %+v", res.Findings)
	}
}

// TestOneFetchPerIssuer: the leaves of one issuer cost one CRL fetch
// between them and one OCSP request each. 2,000 leaves show it as well as
// 10,000 (CERTWATCH_REVOCATION_LEAVES=10000), at a fifth of the CPU of a
// suite that runs on two cores.
func TestOneFetchPerIssuer(t *testing.T) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("CERTWATCH_REVOCATION_LEAVES")); err == nil && v > 0 {
		n = v
	} else if testing.Short() {
		n = 500
	}
	ca := testpki.New(t, nil, testpki.Options{CommonName: "busy CA", IsCA: true})
	resp := newResponder(t, ca)
	crls := newCRLServer(t)
	url := crls.put("/busy.crl", opensslCRL(t, ca, nil, time.Time{}, time.Time{}))
	key := testpki.NewKey(t, "ecdsa")
	leaves := make([]*x509.Certificate, n)
	for i := range leaves {
		leaves[i] = testpki.New(t, ca, testpki.Options{CommonName: "leaf", Key: key, OCSPServers: []string{resp.URL}, CRLURLs: []string{url}}).Cert
	}
	c, logs := startChecker(t, config.Fetch{Allow: loopback, MinRefresh: config.Duration(time.Hour), MaxRefresh: config.Duration(time.Hour)})
	// Thousands of signed and verified OCSP exchanges: seconds, a minute under -race.
	waitForWithin(t, 5*time.Minute, "every leaf answered", func() bool {
		all := true
		for _, l := range leaves {
			if len(c.Lookup(l, ca.Cert, true, true)) != 2 {
				all = false
			}
		}
		return all
	})
	if n := logs.count("level=WARN"); n != 0 {
		t.Errorf("%d warnings:\n%s", n, logs.buf.String())
	}
	if served, _ := crls.count("/busy.crl"); served != 1 {
		t.Errorf("CRL fetched %d times", served)
	}
	for _, l := range leaves {
		if k := resp.requests(l.SerialNumber); k != 1 {
			t.Fatalf("leaf %s asked %d times", l.SerialNumber, k)
		}
	}
}

// TestHostInterval: requests to one host are spaced by HostInterval.
func TestHostInterval(t *testing.T) {
	ca := testpki.New(t, nil, testpki.Options{CommonName: "spaced CA", IsCA: true})
	resp := newResponder(t, ca)
	var leaves []*x509.Certificate
	for range 5 {
		leaves = append(leaves, testpki.New(t, ca, testpki.Options{CommonName: "spaced", OCSPServers: []string{resp.URL}}).Cert)
	}
	interval := 200 * time.Millisecond
	c, _ := startChecker(t, config.Fetch{Allow: loopback, HostInterval: config.Duration(interval), Concurrency: 4})
	waitFor(t, "every leaf answered", func() bool {
		all := true
		for _, l := range leaves {
			all = len(c.Lookup(l, ca.Cert, true, false)) == 1 && all
		}
		return all
	})
	resp.mu.Lock()
	times := append([]time.Time(nil), resp.times...)
	resp.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	if len(times) != len(leaves) {
		t.Fatalf("%d requests, want %d", len(times), len(leaves))
	}
	for i := 1; i < len(times); i++ {
		// Slack for the time between dispatch and arrival.
		if gap := times[i].Sub(times[i-1]); gap < interval*3/4 {
			t.Errorf("requests %d and %d %v apart, want about %v", i-1, i, gap, interval)
		}
	}
}

// TestRunStops: Run returns when its context ends and leaves no goroutine
// behind, fetches in flight included.
func TestRunStops(t *testing.T) {
	ca := testpki.New(t, nil, testpki.Options{CommonName: "stop CA", IsCA: true})
	resp := newResponder(t, ca)
	slow := newResponder(t, ca)
	slow.delay = time.Minute
	crls := newCRLServer(t)
	url := crls.put("/stop.crl", opensslCRL(t, ca, nil, time.Time{}, time.Time{}))
	answered := testpki.New(t, ca, testpki.Options{CommonName: "stop", OCSPServers: []string{resp.URL}, CRLURLs: []string{url}})
	hanging := testpki.New(t, ca, testpki.Options{CommonName: "hang", OCSPServers: []string{slow.URL}})
	before := runtime.NumGoroutine()

	c, err := NewChecker(config.Fetch{Allow: loopback}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	lookupBoth(t, c, answered.Cert, ca.Cert, true, true)
	c.Lookup(hanging.Cert, ca.Cert, true, false)
	waitFor(t, "the slow request to arrive", func() bool { return slow.total.Load() == 1 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	var after int
	waitFor(t, "goroutines to end", func() bool {
		after = runtime.NumGoroutine()
		return after <= before
	})
}

// TestUpdateKeepsCache: a reload keeps the answers held, even under rules
// that would now refuse their URLs.
func TestUpdateKeepsCache(t *testing.T) {
	ca := testpki.New(t, nil, testpki.Options{CommonName: "update CA", IsCA: true})
	resp := newResponder(t, ca)
	crls := newCRLServer(t)
	url := crls.put("/update.crl", opensslCRL(t, ca, nil, time.Time{}, time.Time{}))
	leaf := testpki.New(t, ca, testpki.Options{CommonName: "update", OCSPServers: []string{resp.URL}, CRLURLs: []string{url}})
	c, _ := startChecker(t, config.Fetch{Allow: loopback})
	lookupBoth(t, c, leaf.Cert, ca.Cert, true, true)
	if err := c.Update(config.Fetch{Concurrency: 2}); err != nil {
		t.Fatal(err)
	}
	if as := c.Lookup(leaf.Cert, ca.Cert, true, true); len(as) != 2 {
		t.Fatalf("answers after the update: %+v", as)
	}
	if as := c.Lookup(&x509.Certificate{OCSPServer: []string{resp.URL}}, ca.Cert, true, true); as != nil {
		t.Errorf("answers about a certificate without a serial: %+v", as)
	}
	if err := c.Update(config.Fetch{Deny: []string{"not a range"}}); err == nil {
		t.Error("an invalid configuration was applied")
	}
	if resp.total.Load() != 1 {
		t.Errorf("%d OCSP requests", resp.total.Load())
	}
}

// TestLabelsCut: URLs become label values of at most 1 KiB.
func TestLabelsCut(t *testing.T) {
	long := "http://127.0.0.1:1/" + strings.Repeat("é", 1000)
	if got := cut(long); len(got) > maxLabelBytes || !strings.HasPrefix(long, got) || len(got) < maxLabelBytes-1 {
		t.Errorf("cut to %d bytes", len(got))
	}
	if cut("http://x/") != "http://x/" {
		t.Error("a short URL was changed")
	}
}

func TestBackoffAndRefresh(t *testing.T) {
	f := withDefaults(config.Fetch{})
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, backoff(f, n))
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("backoff %v, want %v", got, want)
			break
		}
	}
	now := time.Now()
	for _, tc := range []struct {
		next time.Time
		want time.Duration
	}{
		{time.Time{}, 5 * time.Minute},
		{now.Add(time.Minute), 5 * time.Minute},
		{now.Add(-time.Hour), 5 * time.Minute},
		{now.Add(3 * time.Hour), 3 * time.Hour},
		{now.Add(7 * 24 * time.Hour), 24 * time.Hour},
	} {
		if got := refreshAt(f, now, tc.next).Sub(now); got != tc.want {
			t.Errorf("next update in %v: refresh in %v, want %v", tc.next.Sub(now), got, tc.want)
		}
	}
}

func TestSerialKeys(t *testing.T) {
	big1 := new(big.Int).Lsh(big.NewInt(1), 200)
	keys := map[serialKey]bool{}
	for _, s := range []*big.Int{big.NewInt(1), big.NewInt(-1), big.NewInt(256), big1, new(big.Int).Add(big1, big.NewInt(1))} {
		k := serialKeyOf(s)
		if keys[k] {
			t.Errorf("serial %s collides", s)
		}
		keys[k] = true
		if serialKeyOf(new(big.Int).Set(s)) != k {
			t.Errorf("serial %s keyed differently", s)
		}
	}
}

// TestFallbackURLs: when the first responder or distribution point fails,
// the next one named answers.
func TestFallbackURLs(t *testing.T) {
	ca := testpki.New(t, nil, testpki.Options{CommonName: "fallback CA", IsCA: true})
	resp := newResponder(t, ca)
	crls := newCRLServer(t)
	url := crls.put("/fallback.crl", opensslCRL(t, ca, nil, time.Time{}, time.Time{}))
	down := freeURL(t)
	leaf := testpki.New(t, ca, testpki.Options{CommonName: "fallback", OCSPServers: []string{down, resp.URL},
		CRLURLs: []string{"ldap://ldap.invalid/cn=crl", down + "x.crl", url}})
	c, _ := startChecker(t, config.Fetch{Allow: loopback})
	as := lookupBoth(t, c, leaf.Cert, ca.Cert, true, true)
	for _, a := range as {
		if a.Status != StatusGood || (a.URL != resp.URL && a.URL != url) {
			t.Errorf("answer %+v", a)
		}
	}
	res := c.Scrape(context.Background())
	for _, k := range []struct{ method, url string }{{"ocsp", down}, {"crl", down + "x.crl"}} {
		if n, _ := sample(res, metricErrors, k.method, k.url, "refused"); n != 1 {
			t.Errorf("%s %s: %v refusals", k.method, k.url, n)
		}
	}
}

// TestCRLFetchesBounded: however many distribution points are due, at most
// maxCRLFetches CRLs are downloaded at once.
func TestCRLFetchesBounded(t *testing.T) {
	ca := testpki.New(t, nil, testpki.Options{CommonName: "bounded CA", IsCA: true})
	der := opensslCRL(t, ca, nil, time.Time{}, time.Time{})
	var mu sync.Mutex
	inFlight, most := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		_, _ = w.Write(der)
	}))
	defer srv.Close()
	var leaves []*x509.Certificate
	for i := range 6 {
		leaves = append(leaves, testpki.New(t, ca, testpki.Options{CommonName: "bounded", CRLURLs: []string{srv.URL + "/" + strconv.Itoa(i) + ".crl"}}).Cert)
	}
	c, _ := startChecker(t, config.Fetch{Allow: loopback, Concurrency: 8})
	waitFor(t, "every CRL", func() bool {
		all := true
		for _, l := range leaves {
			all = len(c.Lookup(l, ca.Cert, false, true)) == 1 && all
		}
		return all
	})
	mu.Lock()
	defer mu.Unlock()
	if most > maxCRLFetches {
		t.Errorf("%d CRL fetches at once, want at most %d", most, maxCRLFetches)
	}
}

// TestBounds: Lookup queues each fetch once, and tracks at most MaxURLs
// URLs, saying so once. Run is not started: nothing is fetched.
func TestBounds(t *testing.T) {
	logs := &logBuffer{}
	c, err := NewChecker(config.Fetch{}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	issuer := testpki.New(t, nil, testpki.Options{CommonName: "bounds CA", IsCA: true}).Cert
	for i := range 10_000 {
		c.Lookup(&x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), OCSPServer: []string{"http://ocsp.example/"},
			CRLDistributionPoints: []string{"http://crl.example/ca.crl"}}, issuer, true, true)
	}
	if c.queued != 10_001 || c.nCRL != 1 || c.nOCSP != 10_000 {
		t.Errorf("%d queued, %d CRLs, %d OCSP entries; want 10001, 1, 10000", c.queued, c.nCRL, c.nOCSP)
	}
	for i := range MaxURLs + 10 {
		c.Lookup(&x509.Certificate{SerialNumber: big.NewInt(1), CRLDistributionPoints: []string{"http://crl.example/" + strconv.Itoa(i) + ".crl"}}, issuer, false, true)
	}
	if len(c.stats) != MaxURLs {
		t.Errorf("%d URLs tracked, want %d", len(c.stats), MaxURLs)
	}
	if n := logs.count("bound reached"); n != 1 {
		t.Errorf("%d lines about the bound, want 1", n)
	}
}
