package urls

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// testInterval keeps background fetches frequent; no assertion depends on
// how long anything takes.
const testInterval = 200 * time.Millisecond

// published is one document a test server serves, with its validators.
type published struct {
	body     []byte
	etag     string
	modified time.Time
	redirect string // when set, a 302 to it instead of the body
	status   int    // when set, this status and no validators
}

// publisher is an HTTP server laid out like the URLs certwatch watches (a
// Vault PKI mount, a step-ca): it serves ETag and Last-Modified, honours
// If-None-Match and If-Modified-Since, and counts its 200s and 304s per
// path.
type publisher struct {
	mu          sync.Mutex
	docs        map[string]published
	ok, revalid map[string]int
	block       chan struct{} // when set, requests wait for it to close
	hold        time.Duration // when set, each answer waits this long, so that fetches overlap
	requests    int
	inFlight    int
	maxInFlight int
}

func newPublisher() *publisher {
	return &publisher{docs: map[string]published{}, ok: map[string]int{}, revalid: map[string]int{}}
}

// set publishes body at path with validators derived from it.
func (p *publisher) set(path string, body []byte) {
	sum := sha256.Sum256(body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.docs[path] = published{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`,
		modified: time.Now().Add(-time.Minute).Truncate(time.Second)}
}

func (p *publisher) setDoc(path string, d published) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.docs[path] = d
}

func (p *publisher) counts(path string) (ok, revalidated int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok[path], p.revalid[path]
}

func (p *publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	d, found := p.docs[r.URL.Path]
	block, hold := p.block, p.hold
	p.requests++
	p.inFlight++
	p.maxInFlight = max(p.maxInFlight, p.inFlight)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.mu.Unlock()
	}()
	if hold > 0 {
		time.Sleep(hold)
	}
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case !found:
		http.Error(w, `{"errors":[]}`, http.StatusNotFound)
		return
	case d.redirect != "":
		http.Redirect(w, r, d.redirect, http.StatusFound)
		return
	case d.status != 0:
		w.WriteHeader(d.status)
		w.Write(d.body)
		return
	}
	w.Header().Set("ETag", d.etag)
	w.Header().Set("Last-Modified", d.modified.UTC().Format(http.TimeFormat))
	notModified := false
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		notModified = inm == d.etag
	} else if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil {
		notModified = !d.modified.After(ims)
	}
	p.mu.Lock()
	if notModified {
		p.revalid[r.URL.Path]++
	} else {
		p.ok[r.URL.Path]++
	}
	p.mu.Unlock()
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(d.body)
}

// serve starts p on 127.0.0.1.
func serve(t *testing.T, p *publisher) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

// pki is a root CA and an intermediate, as a Vault root mount "pki" and an
// intermediate mount "pki_int" hold them.
type pki struct {
	root, inter *testpki.Cert
	caFile      string // the root, as a group's ca_file
}

func newPKI(t *testing.T) pki {
	t.Helper()
	root := testpki.New(t, nil, testpki.Options{CommonName: "Example Root CA", IsCA: true})
	inter := testpki.New(t, root, testpki.Options{CommonName: "Example Intermediate CA", IsCA: true})
	return pki{root: root, inter: inter, caFile: testpki.WriteFile(t, t.TempDir(), "root.pem", testpki.PEM(root))}
}

// crl returns a CRL of the intermediate, numbered number, revoking
// revoked serials: DER and PEM.
func (p pki) crl(t *testing.T, number int64, revoked ...int64) (der, pemBytes []byte) {
	t.Helper()
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour)}
	for _, s := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: now.Add(-time.Hour), ReasonCode: 1})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.inter.Cert, p.inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// vaultPaths are the unauthenticated PKI paths of the mount pki_int.
const (
	pathChain  = "/v1/pki_int/ca_chain"
	pathIssuer = "/v1/pki_int/issuer/default/pem"
	pathCRLPEM = "/v1/pki_int/crl/pem"
	pathCRLDER = "/v1/pki_int/crl"
	pathRoots  = "/roots.pem"
)

func group(urls ...string) config.URLGroup {
	return config.URLGroup{URLs: urls, Interval: config.Duration(testInterval), Timeout: config.Duration(5 * time.Second),
		TLS: config.TLS{MinVersion: "TLS12"}}
}

func configOf(groups ...config.URLGroup) *config.Config {
	cfg := &config.Config{URLs: groups}
	cfg.Global.Revocation.MaxCRLSize = 1 << 20
	cfg.Global.Revocation.Concurrency = 8
	return cfg
}

// run applies cfg to a new Runner stopped at the end of the test.
func run(t *testing.T, cfg *config.Config) (*Runner, *Source) {
	t.Helper()
	r := NewRunner(promslog.NewNopLogger())
	t.Cleanup(r.Stop)
	s := r.Apply(cfg)
	if s == nil {
		t.Fatal("Apply returned no source")
	}
	return r, s
}

// waitFor polls cond until it holds; the bound only keeps a broken test
// from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func findingOf(res source.Result, target string) *source.Finding {
	for i := range res.Findings {
		if res.Findings[i].Target == target {
			return &res.Findings[i]
		}
	}
	return nil
}

func sampleOf(res source.Result, name string, labels ...string) (float64, bool) {
	for _, st := range res.Status {
		if st.Name != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for j, n := range st.LabelNames {
				if n == labels[i] && st.Values[j] == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if match {
			return st.Value, true
		}
	}
	return 0, false
}

// classOf is the class of the finding at target ("" when it succeeded,
// "missing" when there is none).
func classOf(s *Source, target string) source.Class {
	f := findingOf(s.Scrape(context.Background()), target)
	if f == nil {
		return "missing"
	}
	return source.ClassOf(f.Err)
}

// TestVaultMount watches a Vault PKI mount's chain, issuer and CRL (PEM
// and DER) and a step-ca's roots: the first fetch, revalidation answered
// by 304 without parsing again, a changed CRL picked up, and the server
// going away after a good fetch.
func TestVaultMount(t *testing.T) {
	ca := newPKI(t)
	crlDER, crlPEM := ca.crl(t, 1, 1001)
	pub := newPublisher()
	pub.set(pathChain, testpki.PEM(ca.inter, ca.root))
	pub.set(pathIssuer, testpki.PEM(ca.inter))
	pub.set(pathCRLPEM, crlPEM)
	pub.set(pathCRLDER, crlDER)
	pub.set(pathRoots, testpki.PEM(ca.root))
	srv := serve(t, pub)

	g := group(srv.URL+pathChain, srv.URL+pathIssuer, srv.URL+pathCRLPEM, srv.URL+pathCRLDER, srv.URL+pathRoots)
	g.CAFile = ca.caFile
	g.Labels = map[string]string{"team": "pki"}
	g.Revocation = source.Revocation{CRL: true}
	r, s := run(t, configOf(g))
	waitFor(t, "a first outcome of every URL", s.Ready)

	res := s.Scrape(context.Background())
	if len(res.Findings) != 5 {
		t.Fatalf("%d findings, want 5", len(res.Findings))
	}
	rootCA, err := source.LoadCAFile(ca.caFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if f.Err != nil || f.Source != source.KindURL || f.Key != "" || f.Labels["team"] != "pki" {
			t.Errorf("%s: place %+v err %v", f.Target, f.Place, f.Err)
		}
		if f.Verify.RootsID != rootCA.ID || len(f.Verify.Anchors) != 1 || !f.Verify.Anchors[0].Equal(ca.root.Cert) ||
			f.Verify.Revocation != (source.Revocation{CRL: true}) || f.Verify.ServerAuth {
			t.Errorf("%s: verify params %+v", f.Target, f.Verify)
		}
		if _, ok := sampleOf(res, nameLastSuccess, "target", f.Target, "team", "pki"); !ok {
			t.Errorf("%s: no %s", f.Target, nameLastSuccess)
		}
		if _, ok := sampleOf(res, nameErrors, "target", f.Target); ok {
			t.Errorf("%s: fetch errors counted after a good fetch", f.Target)
		}
	}
	wantCerts := map[string][]*testpki.Cert{pathChain: {ca.inter, ca.root}, pathIssuer: {ca.inter}, pathRoots: {ca.root}}
	for path, want := range wantCerts {
		f := findingOf(res, srv.URL+path)
		if len(f.Certs) != len(want) || len(f.CRLs) != 0 {
			t.Fatalf("%s: %d certificates and %d CRLs, want %d and none", path, len(f.Certs), len(f.CRLs), len(want))
		}
		for i, c := range want {
			if !f.Certs[i].Equal(c.Cert) {
				t.Errorf("%s: certificate %d is %s", path, i, f.Certs[i].Subject)
			}
		}
	}
	for _, path := range []string{pathCRLPEM, pathCRLDER} {
		f := findingOf(res, srv.URL+path)
		if len(f.Certs) != 0 || len(f.CRLs) != 1 {
			t.Fatalf("%s: %d certificates and %d CRLs, want one CRL", path, len(f.Certs), len(f.CRLs))
		}
		c := f.CRLs[0]
		if c.IssuerCN != "Example Intermediate CA" || c.Entries != 1 || c.Number == nil || c.Number.Int64() != 1 ||
			c.Fingerprint != sha256.Sum256(crlDER) {
			t.Errorf("%s: CRL %+v", path, c)
		}
	}

	// Revalidation: every URL is asked again with its validators and
	// answered 304; nothing is parsed again and the findings stay.
	waitFor(t, "two revalidations of every URL", func() bool {
		for _, path := range []string{pathChain, pathIssuer, pathCRLPEM, pathCRLDER, pathRoots} {
			if _, n := pub.counts(path); n < 2 {
				return false
			}
		}
		return true
	})
	for _, path := range []string{pathChain, pathIssuer, pathCRLPEM, pathCRLDER, pathRoots} {
		if ok, _ := pub.counts(path); ok != 1 {
			t.Errorf("%s: served in full %d times, want once", path, ok)
		}
	}
	again := s.Scrape(context.Background())
	for _, f := range again.Findings {
		before := findingOf(res, f.Target)
		if f.Err != nil || len(f.Certs) != len(before.Certs) || len(f.CRLs) != len(before.CRLs) ||
			(len(f.Certs) > 0 && f.Certs[0] != before.Certs[0]) {
			t.Errorf("%s: findings changed on a 304: %d certificates, %d CRLs, err %v", f.Target, len(f.Certs), len(f.CRLs), f.Err)
		}
	}
	r.mu.Lock()
	for key, f := range r.fetchers {
		if n := f.decodes.Load(); n != 1 {
			t.Errorf("%s: decoded %d times, want once", key, n)
		}
	}
	r.mu.Unlock()

	// The CA publishes a new CRL: the next fetch reads it.
	_, crl2 := ca.crl(t, 2, 1001, 1002)
	pub.set(pathCRLPEM, crl2)
	waitFor(t, "the new CRL", func() bool {
		f := findingOf(s.Scrape(context.Background()), srv.URL+pathCRLPEM)
		return len(f.CRLs) == 1 && f.CRLs[0].Entries == 2
	})
	if ok, _ := pub.counts(pathCRLPEM); ok != 2 {
		t.Errorf("the CRL was served in full %d times, want twice", ok)
	}

	// The server goes away: the certificates stay, the place fails.
	srv.Close()
	waitFor(t, "the outage to show", func() bool { return classOf(s, srv.URL+pathChain) == source.ClassRefused })
	res = s.Scrape(context.Background())
	f := findingOf(res, srv.URL+pathChain)
	if len(f.Certs) != 2 || !f.Certs[0].Equal(ca.inter.Cert) {
		t.Errorf("the chain was dropped on failure: %d certificates", len(f.Certs))
	}
	if n, ok := sampleOf(res, nameErrors, "target", srv.URL+pathChain, "class", "refused"); !ok || n < 1 {
		t.Errorf("%s{class=refused} = %v, %v", nameErrors, n, ok)
	}
	if _, ok := sampleOf(res, nameLastSuccess, "target", srv.URL+pathChain); !ok {
		t.Errorf("%s dropped on failure", nameLastSuccess)
	}
}

// TestFetchFailures covers answers that are not certificates: each class
// is reported for the URL, with nothing fetched before.
func TestFetchFailures(t *testing.T) {
	ca := newPKI(t)
	pub := newPublisher()
	srv := serve(t, pub)
	other := serve(t, newPublisher()) // another host:port of the same machine
	pub.set("/big.pem", bytes.Repeat(testpki.PEM(ca.root), 20))
	pub.setDoc("/moved", published{redirect: other.URL + pathRoots})
	pub.setDoc("/here", published{redirect: "/roots.pem"})
	pub.set("/roots.pem", testpki.PEM(ca.root))
	pub.set("/v1/pki_int/issuer/default", []byte(`{"data":{"certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}}`))
	pub.setDoc("/error", published{status: http.StatusInternalServerError, body: []byte("internal")})

	cases := []struct {
		path string
		want source.Class
	}{
		{"/missing", source.ClassHTTP},
		{"/error", source.ClassHTTP},
		{"/big.pem", source.ClassTooLarge},
		{"/moved", source.ClassDenied},
		{"/here", ""}, // a redirect on the same host is followed
		{"/v1/pki_int/issuer/default", source.ClassParse},
	}
	g := group()
	for _, c := range cases {
		g.URLs = append(g.URLs, srv.URL+c.path)
	}
	cfg := configOf(g)
	cfg.Global.Revocation.MaxCRLSize = config.ByteSize(len(testpki.PEM(ca.root)) * 4)
	_, s := run(t, cfg)
	waitFor(t, "a first outcome of every URL", s.Ready)
	res := s.Scrape(context.Background())
	for _, c := range cases {
		f := findingOf(res, srv.URL+c.path)
		if got := source.ClassOf(f.Err); got != c.want {
			t.Errorf("%s: class %q (%v), want %q", c.path, got, f.Err, c.want)
		}
		if c.want == "" {
			continue
		}
		if len(f.Certs) != 0 {
			t.Errorf("%s: %d certificates from a failed fetch", c.path, len(f.Certs))
		}
		if n, ok := sampleOf(res, nameErrors, "target", srv.URL+c.path, "class", string(c.want)); !ok || n < 1 {
			t.Errorf("%s: %s{class=%s} = %v, %v", c.path, nameErrors, c.want, n, ok)
		}
		if _, ok := sampleOf(res, nameLastSuccess, "target", srv.URL+c.path); ok {
			t.Errorf("%s: a last success without one", c.path)
		}
	}
}

// TestNotFetchedYet: before its first answer a URL reports a timeout and
// the source is not ready; a scrape does not wait for the fetch.
func TestNotFetchedYet(t *testing.T) {
	ca := newPKI(t)
	pub := newPublisher()
	pub.set(pathRoots, testpki.PEM(ca.root))
	release := make(chan struct{})
	pub.block = release
	srv := serve(t, pub)
	_, s := run(t, configOf(group(srv.URL+pathRoots)))

	if s.Ready() {
		t.Fatal("ready before any answer")
	}
	f := findingOf(s.Scrape(context.Background()), srv.URL+pathRoots)
	if source.ClassOf(f.Err) != source.ClassTimeout || len(f.Certs) != 0 {
		t.Fatalf("before the first answer: class %q (%v)", source.ClassOf(f.Err), f.Err)
	}
	close(release)
	waitFor(t, "the first answer", s.Ready)
	if f := findingOf(s.Scrape(context.Background()), srv.URL+pathRoots); f.Err != nil || len(f.Certs) != 1 {
		t.Fatalf("after the first answer: %d certificates, err %v", len(f.Certs), f.Err)
	}
}

// TestHTTPS fetches from a TLS server whose certificate only the group's
// tls.ca_file trusts and which asks for the group's client certificate.
func TestHTTPS(t *testing.T) {
	published := newPKI(t)
	serverPKI := testpki.NewChain(t, testpki.Options{})
	clientCert := testpki.New(t, serverPKI.Intermediate, testpki.Options{CommonName: "certwatch",
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	dir := t.TempDir()
	pub := newPublisher()
	pub.set(pathRoots, testpki.PEM(published.root))
	srv := httptest.NewUnstartedServer(pub)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(serverPKI.Leaf, serverPKI.Intermediate)},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: testpki.Pool(serverPKI.Root)}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u := srv.URL + pathRoots

	trusted := group(u)
	trusted.TLS = config.TLS{MinVersion: "TLS12", CAFile: testpki.WriteFile(t, dir, "server-ca.pem", testpki.PEM(serverPKI.Root)),
		CertFile: testpki.WriteFile(t, dir, "client.pem", testpki.PEM(clientCert, serverPKI.Intermediate)),
		KeyFile:  testpki.WriteFile(t, dir, "client.key", testpki.KeyPEM(t, clientCert.Key))}
	untrusted := group(u)

	for _, c := range []struct {
		name string
		g    config.URLGroup
		want source.Class
	}{
		{"tls.ca_file and client certificate", trusted, ""},
		{"system roots", untrusted, source.ClassHandshake},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, s := run(t, configOf(c.g))
			waitFor(t, "the first outcome", s.Ready)
			f := findingOf(s.Scrape(context.Background()), u)
			if got := source.ClassOf(f.Err); got != c.want {
				t.Fatalf("class %q (%v), want %q", got, f.Err, c.want)
			}
			if c.want == "" && (len(f.Certs) != 1 || !f.Certs[0].Equal(published.root.Cert)) {
				t.Fatalf("%d certificates", len(f.Certs))
			}
		})
	}
}

// TestReload: a URL kept across a reload keeps its fetcher and what it
// read, under the new labels; a URL removed is no longer fetched.
func TestReload(t *testing.T) {
	ca := newPKI(t)
	pub := newPublisher()
	pub.set(pathRoots, testpki.PEM(ca.root))
	pub.set(pathChain, testpki.PEM(ca.inter, ca.root))
	srv := serve(t, pub)
	g := group(srv.URL+pathRoots, srv.URL+pathChain)
	r, s := run(t, configOf(g))
	waitFor(t, "the first outcomes", s.Ready)

	g2 := group(srv.URL + pathRoots)
	g2.Labels = map[string]string{"env": "prod"}
	s2 := r.Apply(configOf(g2))
	if !s2.Ready() {
		t.Error("a kept URL lost its outcome on reload")
	}
	res := s2.Scrape(context.Background())
	if len(res.Findings) != 1 || res.Findings[0].Labels["env"] != "prod" || len(res.Findings[0].Certs) != 1 {
		t.Fatalf("after reload: %+v", res.Findings)
	}
	r.mu.Lock()
	n := len(r.fetchers)
	r.mu.Unlock()
	if n != 1 {
		t.Errorf("%d fetchers after removing a URL, want 1", n)
	}
	// Fetched another way (a new interval): a new fetcher, starting from
	// what the previous one read.
	g3 := g2
	g3.Interval = config.Duration(2 * testInterval)
	s3 := r.Apply(configOf(g3))
	if f := findingOf(s3.Scrape(context.Background()), srv.URL+pathRoots); !s3.Ready() || f.Err != nil || len(f.Certs) != 1 {
		t.Errorf("a URL fetched another way lost what it read: %+v", f)
	}
	if r.Apply(configOf()) != nil {
		t.Error("a source for a configuration without urls")
	}
}

// TestPacing: global.revocation.concurrency bounds the fetches in flight,
// and host_interval spaces the requests to one host without holding back
// another host.
func TestPacing(t *testing.T) {
	ca := newPKI(t)
	t.Run("concurrency", func(t *testing.T) {
		pub := newPublisher()
		pub.hold = 20 * time.Millisecond
		g := group()
		srv := serve(t, pub)
		for i := range 6 {
			path := fmt.Sprintf("/ca/%d.pem", i)
			pub.set(path, testpki.PEM(ca.root))
			g.URLs = append(g.URLs, srv.URL+path)
		}
		cfg := configOf(g)
		cfg.Global.Revocation.Concurrency = 1
		_, s := run(t, cfg)
		waitFor(t, "every URL fetched", s.Ready)
		pub.mu.Lock()
		defer pub.mu.Unlock()
		if pub.maxInFlight != 1 {
			t.Errorf("%d fetches in flight at once, want 1", pub.maxInFlight)
		}
	})
	t.Run("host_interval", func(t *testing.T) {
		pub, other := newPublisher(), newPublisher()
		pub.set("/a.pem", testpki.PEM(ca.root))
		pub.set("/b.pem", testpki.PEM(ca.root))
		other.set("/c.pem", testpki.PEM(ca.root))
		srv, otherSrv := serve(t, pub), serve(t, other)
		cfg := configOf(group(srv.URL+"/a.pem", srv.URL+"/b.pem", otherSrv.URL+"/c.pem"))
		cfg.Global.Revocation.HostInterval = config.Duration(time.Hour)
		_, s := run(t, cfg)
		waitFor(t, "one URL of the first host and the other host", func() bool {
			res := s.Scrape(context.Background())
			a, b := findingOf(res, srv.URL+"/a.pem").Err == nil, findingOf(res, srv.URL+"/b.pem").Err == nil
			return a != b && findingOf(res, otherSrv.URL+"/c.pem").Err == nil
		})
		pub.mu.Lock()
		defer pub.mu.Unlock()
		if pub.requests != 1 {
			t.Errorf("%d requests to one host within host_interval, want 1", pub.requests)
		}
		if s.Ready() {
			t.Error("ready while a URL waits for its host's turn")
		}
	})
}

// syncBuffer is a log sink safe for the fetchers' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWarnsOncePerStateChange: a URL failing the same way at every retry
// is one warning; failing another way is another; the body never appears.
func TestWarnsOncePerStateChange(t *testing.T) {
	const marker = "BODY-MARKER-d41d8cd98f00"
	pub := newPublisher()
	pub.set("/junk", []byte("-----BEGIN CERTIFICATE-----\n"+marker+"\n-----END CERTIFICATE-----\n"))
	srv := serve(t, pub)
	var logs syncBuffer
	r := NewRunner(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(r.Stop)
	u := srv.URL + "/junk"
	s := r.Apply(configOf(group(u)))
	count := func(class string) float64 {
		n, _ := sampleOf(s.Scrape(context.Background()), nameErrors, "target", u, "class", class)
		return n
	}
	waitFor(t, "three failed fetches", func() bool { return count("parse") >= 3 })
	pub.setDoc("/junk", published{status: http.StatusNotFound})
	waitFor(t, "three 404s", func() bool { return count("http") >= 3 })

	out := logs.String()
	warnings := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=WARN") {
			warnings++
			if !strings.Contains(line, "target="+u) {
				t.Errorf("warning without the URL: %s", line)
			}
		}
	}
	if warnings != 2 {
		t.Errorf("%d warnings, want 2 (one per class):\n%s", warnings, out)
	}
	if strings.Contains(out, marker) {
		t.Errorf("the body reached the log:\n%s", out)
	}
}

// TestStopLeavesNoGoroutines: every fetcher's goroutine and connection
// ends with Stop. Not parallel: runtime.NumGoroutine counts the process.
func TestStopLeavesNoGoroutines(t *testing.T) {
	baseline := runtime.NumGoroutine()
	func() {
		ca := newPKI(t)
		pub := newPublisher()
		pub.set(pathRoots, testpki.PEM(ca.root))
		srv := httptest.NewServer(pub)
		defer srv.Close()
		// A server that accepts and never answers, so a fetch is in
		// flight when Stop comes.
		hung, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer hung.Close()
		r := NewRunner(promslog.NewNopLogger())
		s := r.Apply(configOf(group(srv.URL+pathRoots, srv.URL+"/missing", "http://"+hung.Addr().String()+"/crl")))
		waitFor(t, "the answered URLs", func() bool {
			return classOf(s, srv.URL+pathRoots) == "" && classOf(s, srv.URL+"/missing") == source.ClassHTTP
		})
		r.Stop()
	}()
	waitFor(t, fmt.Sprintf("the goroutines to end (baseline %d)", baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

func TestJitterStaysWithinTenPercent(t *testing.T) {
	const d = time.Minute
	for range 1000 {
		if j := jitter(d); j < d*9/10 || j > d*11/10 {
			t.Fatalf("jitter(%s) = %s", d, j)
		}
	}
}

// TestHealthSamplesCarryGroupLabels checks the health series' label names
// are the target, the class, then the group's labels in order.
func TestHealthSamplesCarryGroupLabels(t *testing.T) {
	st := sample(nameErrors, helpErrors, true, map[string]string{"zone": "b", "app": "a"}, 3, "target", "u", "class", "http")
	want := []string{"target", "class", "app", "zone"}
	if strings.Join(st.LabelNames, ",") != strings.Join(want, ",") || strings.Join(st.Values, ",") != "u,http,a,b" || !st.Counter {
		t.Fatalf("sample %+v", st)
	}
}
