package revocation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
	"github.com/certwatch/certwatch/source"
)

// responder is an OCSP responder on 127.0.0.1 answering for the CAs it
// was given, counting the requests that reach it.
type responder struct {
	*httptest.Server
	mu      sync.Mutex
	cas     []*testpki.Cert
	status  map[string]ocsp.Response // by serial; Good when absent
	signer  *testpki.Cert            // signs instead of the CA when set (a bad signature)
	delay   time.Duration
	release chan struct{}
	bySN    map[string]int
	times   []time.Time
	total   atomic.Int64
}

func newResponder(t testing.TB, cas ...*testpki.Cert) *responder {
	r := &responder{cas: cas, status: map[string]ocsp.Response{}, bySN: map[string]int{}, release: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	t.Cleanup(func() { close(r.release) }) // runs before Close: slow handlers return
	return r
}

func (r *responder) set(serial *big.Int, status int, at time.Time, reason int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[serial.String()] = ocsp.Response{Status: status, RevokedAt: at, RevocationReason: reason}
}

func (r *responder) requests(serial *big.Int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bySN[serial.String()]
}

func (r *responder) serve(w http.ResponseWriter, req *http.Request) {
	r.total.Add(1)
	body, _ := io.ReadAll(req.Body)
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.bySN[q.SerialNumber.String()]++
	r.times = append(r.times, time.Now())
	st, delay, signer := r.status[q.SerialNumber.String()], r.delay, r.signer
	var ca *testpki.Cert
	for _, c := range r.cas {
		probe, _ := ocsp.CreateRequest(c.Cert, c.Cert, nil)
		if pq, _ := ocsp.ParseRequest(probe); pq != nil && bytes.Equal(pq.IssuerKeyHash, q.IssuerKeyHash) {
			ca = c
		}
	}
	r.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.release:
		case <-req.Context().Done(): // the client gave up
		}
	}
	if ca == nil {
		_, _ = w.Write(ocsp.UnauthorizedErrorResponse)
		return
	}
	now := time.Now()
	tmpl := ocsp.Response{Status: st.Status, SerialNumber: q.SerialNumber, ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(time.Hour), RevokedAt: st.RevokedAt, RevocationReason: st.RevocationReason}
	if signer == nil {
		signer = ca
	}
	der, err := ocsp.CreateResponse(ca.Cert, signer.Cert, tmpl, signer.Key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

// crlServer serves CRLs by path on 127.0.0.1, revalidating with ETag.
type crlServer struct {
	*httptest.Server
	mu       sync.Mutex
	crls     map[string][]byte
	served   map[string]int // 200s
	notMod   map[string]int // 304s
	redirect string         // when set, every request is redirected there
}

func newCRLServer(t testing.TB) *crlServer {
	s := &crlServer{crls: map[string][]byte{}, served: map[string]int{}, notMod: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *crlServer) put(path string, der []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crls[path] = der
	return s.URL + path
}

func (s *crlServer) count(path string) (served, notModified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[path], s.notMod[path]
}

func (s *crlServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	der, ok := s.crls[r.URL.Path]
	redirect := s.redirect
	s.mu.Unlock()
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusTemporaryRedirect)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(der)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	s.mu.Lock()
	if r.Header.Get("If-None-Match") == etag {
		s.notMod[r.URL.Path]++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.served[r.URL.Path]++
	s.mu.Unlock()
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/pkix-crl")
	_, _ = w.Write(der)
}

// revoked is one entry of a CRL made with openssl.
type revoked struct {
	serial *big.Int
	at     time.Time
	reason string // an openssl reason name, "" for none
}

// opensslCRL issues a DER CRL signed by ca with the real openssl ca
// -gencrl, from an index listing the revoked serials. Zero times take
// openssl's defaults (now, and a week later).
func opensslCRL(t testing.TB, ca *testpki.Cert, entries []revoked, lastUpdate, nextUpdate time.Time) []byte {
	t.Helper()
	testtools.RequireTools(t, false, "openssl")
	dir := t.TempDir()
	testpki.WriteFile(t, dir, "ca.pem", testpki.PEM(ca))
	testpki.WriteFile(t, dir, "ca.key", testpki.KeyPEM(t, ca.Key))
	var index strings.Builder
	for _, e := range entries {
		at := e.at.UTC().Format("060102150405Z")
		if e.reason != "" {
			at += "," + e.reason
		}
		serial := fmt.Sprintf("%X", e.serial)
		if len(serial)%2 == 1 {
			serial = "0" + serial // openssl reads whole bytes
		}
		fmt.Fprintf(&index, "R\t%s\t%s\t%s\tunknown\t/CN=revoked %s\n",
			time.Now().Add(365*24*time.Hour).UTC().Format("060102150405Z"), at, serial, e.serial)
	}
	testpki.WriteFile(t, dir, "index.txt", []byte(index.String()))
	testpki.WriteFile(t, dir, "index.txt.attr", []byte("unique_subject = no\n"))
	testpki.WriteFile(t, dir, "crlnumber", []byte("1000\n"))
	testpki.WriteFile(t, dir, "openssl.cnf", []byte(`[ ca ]
default_ca = CA_default
[ CA_default ]
dir = `+dir+`
database = $dir/index.txt
certificate = $dir/ca.pem
private_key = $dir/ca.key
crlnumber = $dir/crlnumber
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
`))
	args := []string{"ca", "-config", filepath.Join(dir, "openssl.cnf"), "-gencrl", "-out", filepath.Join(dir, "crl.pem"), "-batch"}
	if !lastUpdate.IsZero() {
		args = append(args, "-crl_lastupdate", lastUpdate.UTC().Format("20060102150405Z"))
	}
	if !nextUpdate.IsZero() {
		args = append(args, "-crl_nextupdate", nextUpdate.UTC().Format("20060102150405Z"))
	}
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("openssl wrote no PEM CRL: %q", data)
	}
	return b.Bytes
}

// logBuffer collects log lines, safe for concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(substrings ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.buf.String(), "\n") {
		all := line != ""
		for _, s := range substrings {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// loopback admits the test servers on 127.0.0.0/8.
var loopback = []string{"127.0.0.0/8:*"}

// startChecker runs a Checker under f until the test ends.
func startChecker(t testing.TB, f config.Fetch) (*Checker, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	c, err := NewChecker(f, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c, logs
}

// waitFor polls cond until it holds, failing the test after 30 s
// (waitForWithin: after limit).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 30*time.Second, what, cond)
}

func waitForWithin(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// answer returns the answer of method among as.
func answer(as []Answer, m Method) (Answer, bool) {
	for _, a := range as {
		if a.Method == m {
			return a, true
		}
	}
	return Answer{}, false
}

// sample finds a status series of a scrape by name and label values.
func sample(res source.Result, name string, values ...string) (float64, bool) {
	for _, s := range res.Status {
		if s.Name != name || len(s.Values) != len(values) {
			continue
		}
		match := true
		for i := range values {
			match = match && s.Values[i] == values[i]
		}
		if match {
			return s.Value, true
		}
	}
	return 0, false
}

// freeURL is an http URL on 127.0.0.1 where nothing listens.
func freeURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/"
}
