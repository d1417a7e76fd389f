package main

// End-to-end test of revocation: the real binary against TLS listeners that
// staple OCSP responses, an OCSP responder and a CRL distribution point
// served by the test, a CRL made by the real `openssl ca -gencrl`, and CRL
// files. Every certificate, response and CRL is generated at test time.
//
// Certificates carry URLs the exporter may follow, among them one at
// 169.254.169.254 that it must refuse. So that a fault cannot send a request
// anywhere but loopback, the test runs itself again inside a network
// namespace with only a loopback interface when it can (as root, with
// unshare and ip); otherwise it runs in place and leaves that one case out.

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/internal/testpki"
)

// revNetnsEnv marks the run of the test inside its network namespace.
const revNetnsEnv = "CERTWATCH_REVOCATION_E2E_NETNS"

// revWaitFor bounds how long the background checks may take to show.
const revWaitFor = 30 * time.Second

func TestRevocationEndToEnd(t *testing.T) {
	switch {
	case os.Getenv(revNetnsEnv) == "1":
		revEndToEnd(t, true)
	case revCanIsolate():
		revRunIsolated(t)
	default:
		t.Log("not root, or unshare/ip missing: running without a network namespace of its own, " +
			"and without the certificate whose OCSP URL is 169.254.169.254")
		revEndToEnd(t, false)
	}
}

func revCanIsolate() bool {
	if os.Geteuid() != 0 {
		return false
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false
		}
	}
	return exec.Command("unshare", "-n", "true").Run() == nil
}

// revRunIsolated runs this test again, in this test binary, inside a new
// network namespace whose only interface is loopback.
func revRunIsolated(t *testing.T) {
	cmd := exec.Command("unshare", "-n", "--", "sh", "-c", `ip link set lo up && exec "$@"`, "sh",
		os.Args[0], "-test.run=^TestRevocationEndToEnd$", "-test.count=1", "-test.v="+strconv.FormatBool(testing.Verbose()))
	cmd.Env = append(os.Environ(), revNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside a loopback-only network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the test failed inside its network namespace: %v", err)
	}
}

// revCounter is an HTTP server on a loopback address counting its requests.
type revCounter struct {
	url  string
	hits atomic.Int64
}

func revServe(t *testing.T, addr string, handle http.HandlerFunc) *revCounter {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &revCounter{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		if handle != nil {
			handle(w, r)
		}
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c.url = srv.URL + "/"
	return c
}

// revChain is root -> intermediate -> leaf (localhost, 127.0.0.1), the
// intermediate and leaf shaped by their options.
func revChain(t *testing.T, name string, inter, leaf testpki.Options) *testpki.Chain {
	t.Helper()
	root := testpki.New(t, nil, testpki.Options{CommonName: name + " root", IsCA: true, NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour)})
	inter.CommonName, inter.IsCA = name+" intermediate", true
	in := testpki.New(t, root, inter)
	leaf.CommonName, leaf.DNSNames, leaf.IPs = "localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
	return &testpki.Chain{Root: root, Intermediate: in, Leaf: testpki.New(t, in, leaf)}
}

// revAnswer is what an OCSP response says, with times at the second (as
// OCSP carries them).
type revAnswer struct {
	status                          int
	thisUpdate, nextUpdate, revoked time.Time
}

func revAnswerOf(status int) revAnswer {
	now := time.Now().Truncate(time.Second)
	a := revAnswer{status: status, thisUpdate: now.Add(-time.Hour), nextUpdate: now.Add(36 * time.Hour)}
	if status == ocsp.Revoked {
		a.revoked = now.Add(-3 * time.Hour)
	}
	return a
}

// revOCSP is a response about cert issued by issuer, signed with signer's
// key (the issuer's own, or another for a bad signature).
func revOCSP(t *testing.T, cert, issuer, signer *testpki.Cert, a revAnswer) []byte {
	t.Helper()
	tmpl := ocsp.Response{Status: a.status, SerialNumber: cert.Cert.SerialNumber, ThisUpdate: a.thisUpdate, NextUpdate: a.nextUpdate}
	if a.status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = a.revoked, ocsp.KeyCompromise
	}
	der, err := ocsp.CreateResponse(issuer.Cert, issuer.Cert, tmpl, signer.Key)
	if err != nil {
		t.Fatalf("creating an OCSP response: %v", err)
	}
	return der
}

// revStapling serves chain (leaf, intermediate) stapling staple (nil: none).
func revStapling(t *testing.T, chain *testpki.Chain, staple []byte) string {
	t.Helper()
	cert := testpki.TLSCertificate(chain.Leaf, chain.Intermediate)
	cert.OCSPStaple = staple
	return tlsServer(t, cert)
}

// revResponderFor answers OCSP requests (GET or POST) about the
// certificates it knows, by serial, and unauthorized about the others.
type revResponderFor struct {
	mu      sync.Mutex
	answers map[string]func() []byte
}

func (r *revResponderFor) add(serial *big.Int, answer func() []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[serial.String()] = answer
}

func (r *revResponderFor) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var der []byte
	switch req.Method {
	case http.MethodPost:
		der, _ = io.ReadAll(io.LimitReader(req.Body, 64<<10))
	case http.MethodGet: // RFC 6960 A.1.1: the base64 of the request as the path
		der, _ = base64.StdEncoding.DecodeString(strings.TrimLeft(req.URL.Path, "/"))
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	q, err := ocsp.ParseRequest(der)
	if err != nil {
		_, _ = w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	r.mu.Lock()
	answer := r.answers[q.SerialNumber.String()]
	r.mu.Unlock()
	if answer == nil {
		_, _ = w.Write(ocsp.UnauthorizedErrorResponse)
		return
	}
	_, _ = w.Write(answer())
}

// revOpenSSLCRL has the real `openssl ca` revoke cert (keyCompromise) in a
// database of its own for the CA ca, then issue a CRL: PEM.
func revOpenSSLCRL(t *testing.T, dir string, ca, cert *testpki.Cert) []byte {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl not found (install the openssl package, or run .ci/install-test-deps.sh): %v", err)
	}
	dir = filepath.Join(dir, "openssl-ca")
	writeFile(t, filepath.Join(dir, "ca.pem"), testpki.PEM(ca))
	writeFile(t, filepath.Join(dir, "ca.key"), testpki.KeyPEM(t, ca.Key))
	writeFile(t, filepath.Join(dir, "revoke.pem"), testpki.PEM(cert))
	writeFile(t, filepath.Join(dir, "index.txt"), nil)
	writeFile(t, filepath.Join(dir, "crlnumber"), []byte("1000\n"))
	writeFile(t, filepath.Join(dir, "openssl.cnf"), fmt.Appendf(nil, `[ ca ]
default_ca = test_ca
[ test_ca ]
database = %[1]s/index.txt
certificate = %[1]s/ca.pem
private_key = %[1]s/ca.key
crlnumber = %[1]s/crlnumber
default_md = sha256
default_crl_days = 7
`, dir))
	for _, args := range [][]string{
		{"-revoke", filepath.Join(dir, "revoke.pem"), "-crl_reason", "keyCompromise"},
		{"-gencrl", "-out", filepath.Join(dir, "crl.pem")},
	} {
		cmd := exec.Command(openssl, append([]string{"ca", "-batch", "-config", filepath.Join(dir, "openssl.cnf")}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl ca %s: %v\n%s", args[0], err, out)
		}
	}
	crl, err := os.ReadFile(filepath.Join(dir, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// revStaleCRL is a CRL by ca listing entries serials, whose next update
// passed a day ago.
func revStaleCRL(t *testing.T, ca *testpki.Cert, entries int) []byte {
	t.Helper()
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(7), ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-24 * time.Hour)}
	for i := range entries {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: big.NewInt(int64(9000 + i)), RevocationTime: now.Add(-72 * time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func revEndToEnd(t *testing.T, isolated bool) {
	bin := buildBinary(t)
	dir := t.TempDir()

	// Stapling endpoints, each with a chain of its own.
	revokedAnswer := revAnswerOf(ocsp.Revoked)
	stapledRevoked := revChain(t, "stapled revoked", testpki.Options{}, testpki.Options{})
	stapledGood := revChain(t, "stapled good", testpki.Options{}, testpki.Options{})
	stapledForged := revChain(t, "stapled forged", testpki.Options{}, testpki.Options{})
	unstapled := revChain(t, "unstapled", testpki.Options{}, testpki.Options{})
	stranger := testpki.New(t, nil, testpki.Options{CommonName: "unrelated signer", IsCA: true})
	revokedStapleAddr := revStapling(t, stapledRevoked, revOCSP(t, stapledRevoked.Leaf, stapledRevoked.Intermediate, stapledRevoked.Intermediate, revokedAnswer))
	goodStapleAddr := revStapling(t, stapledGood, revOCSP(t, stapledGood.Leaf, stapledGood.Intermediate, stapledGood.Intermediate, revAnswerOf(ocsp.Good)))
	forgedStapleAddr := revStapling(t, stapledForged, revOCSP(t, stapledForged.Leaf, stapledForged.Intermediate, stranger, revAnswerOf(ocsp.Good)))
	noStapleAddr := revStapling(t, unstapled, nil)

	// An OCSP responder that says the intermediate of its chain is revoked
	// (answering for the root) and its leaf good.
	answers := &revResponderFor{answers: map[string]func() []byte{}}
	responder := revServe(t, "127.0.0.1:0", answers.ServeHTTP)
	viaOCSP := revChain(t, "ocsp checked", testpki.Options{OCSPServers: []string{responder.url}}, testpki.Options{OCSPServers: []string{responder.url}})
	answers.add(viaOCSP.Intermediate.Cert.SerialNumber, func() []byte {
		return revOCSP(t, viaOCSP.Intermediate, viaOCSP.Root, viaOCSP.Root, revAnswerOf(ocsp.Revoked))
	})
	answers.add(viaOCSP.Leaf.Cert.SerialNumber, func() []byte {
		return revOCSP(t, viaOCSP.Leaf, viaOCSP.Intermediate, viaOCSP.Intermediate, revAnswerOf(ocsp.Good))
	})
	viaOCSPAddr := revStapling(t, viaOCSP, nil)

	// A leaf whose CRL distribution point the test serves: a CRL issued by
	// the real openssl, listing it.
	var crlDER atomic.Pointer[[]byte]
	crlServer := revServe(t, "127.0.0.1:0", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(*crlDER.Load())
	})
	crlURL := crlServer.url + "intermediate.crl"
	viaCRL := revChain(t, "crl checked", testpki.Options{}, testpki.Options{CRLURLs: []string{crlURL}})
	opensslCRL := revOpenSSLCRL(t, dir, viaCRL.Intermediate, viaCRL.Leaf)
	block, _ := pem.Decode(opensslCRL)
	if block == nil || block.Type != "X509 CRL" {
		t.Fatalf("openssl wrote no PEM CRL:\n%s", opensslCRL)
	}
	crlDER.Store(&block.Bytes)
	viaCRLFile := filepath.Join(dir, "crl-checked", "tls.pem")
	writeFile(t, viaCRLFile, testpki.PEM(viaCRL.Leaf, viaCRL.Intermediate))

	// CRL files: openssl's (one entry, current) and a stale one.
	currentCRLFile, staleCRLFile := filepath.Join(dir, "crls", "current.pem"), filepath.Join(dir, "crls", "stale.pem")
	writeFile(t, currentCRLFile, opensslCRL)
	writeFile(t, staleCRLFile, revStaleCRL(t, viaCRL.Intermediate, 2))

	// URLs that must not be fetched: a loopback address no allow rule
	// admits (a server there counts what reaches it), the cloud metadata
	// address (inside the namespace only), and a responder that is down.
	deniedServer := revServe(t, "127.0.0.2:0", nil)
	deniedChain := revChain(t, "denied", testpki.Options{}, testpki.Options{OCSPServers: []string{deniedServer.url}})
	deniedAddr := revStapling(t, deniedChain, nil)
	const metadataURL = "http://169.254.169.254/ocsp"
	metadataChain := revChain(t, "metadata", testpki.Options{}, testpki.Options{OCSPServers: []string{metadataURL}})
	metadataAddr := revStapling(t, metadataChain, nil)
	downURL := "http://" + freePort(t) + "/"
	downChain := revChain(t, "down responder", testpki.Options{}, testpki.Options{OCSPServers: []string{downURL}})
	downAddr := revStapling(t, downChain, nil)

	var roots []*testpki.Cert
	for _, c := range []*testpki.Chain{stapledRevoked, stapledGood, stapledForged, unstapled, viaOCSP, viaCRL, deniedChain, metadataChain, downChain} {
		roots = append(roots, c.Root)
	}
	writeFile(t, filepath.Join(dir, "roots.pem"), testpki.PEM(roots...))
	checkedTargets := []string{viaOCSPAddr, deniedAddr, downAddr}
	if isolated {
		checkedTargets = append(checkedTargets, metadataAddr)
	}
	config := func(revocation bool) string {
		ocspOn, crlOn := "", ""
		if revocation {
			ocspOn, crlOn = "revocation: {ocsp: true}", "revocation: {crl: true}"
		}
		return fmt.Sprintf(`
global:
  revocation:
    allow: ["127.0.0.1/32:*"] # loopback is denied by default; 127.0.0.2 stays denied
    host_interval: 1ms
    timeout: 3s
modules:
  staple:
    timeout: 5s
    tls: {ca_file: roots.pem}
  checked:
    timeout: 5s
    tls: {ca_file: roots.pem}
    %s
endpoints:
  - module: staple
    targets: [%q, %q, %q, %q]
    labels: {team: edge}
  - module: checked
    targets: [%s]
files:
  - paths: [crl-checked/tls.pem]
    ca_file: roots.pem
    %s
  - paths: ["crls/*.pem"]
`, ocspOn, revokedStapleAddr, goodStapleAddr, forgedStapleAddr, noStapleAddr, revQuoted(checkedTargets), crlOn)
	}

	// With revocation off, the same certificates send nothing anywhere.
	t.Run("revocation off", func(t *testing.T) {
		path := filepath.Join(dir, "off.yml")
		writeFile(t, path, []byte(config(false)))
		p := startExporter(t, bin, path)
		p.scrape(t, "/metrics")
		time.Sleep(time.Second) // room for a background fetch, were one queued
		mfs := p.scrape(t, "/metrics")
		time.Sleep(time.Second)
		for name, c := range map[string]*revCounter{"OCSP responder": responder, "CRL distribution point": crlServer, "denied loopback server": deniedServer} {
			if n := c.hits.Load(); n != 0 {
				t.Errorf("%s saw %d requests with revocation off, want 0", name, n)
			}
		}
		for _, name := range []string{"certwatch_revocation_fetch_success", "certwatch_revocation_fetch_errors_total"} {
			if got := find(mfs, name, nil); len(got) != 0 {
				t.Errorf("%s: %d series with revocation off, want none", name, len(got))
			}
		}
	})
	if t.Failed() {
		return
	}

	path := filepath.Join(dir, "on.yml")
	writeFile(t, path, []byte(config(true)))
	p := startExporter(t, bin, path)

	ep := func(target string, more ...string) map[string]string {
		l := map[string]string{"source": "endpoint", "target": target}
		for i := 0; i+1 < len(more); i += 2 {
			l[more[i]] = more[i+1]
		}
		return l
	}
	file := func(target string, more ...string) map[string]string {
		l := ep(target, more...)
		l["source"] = "file"
		return l
	}
	now := float64(time.Now().Unix())
	checks := []revCheck{
		{"revoked staple: chain_valid{reason=revoked} 0", revVerdict(ep(revokedStapleAddr), "revoked")},
		{"revoked staple: ocsp_stapled 1", revValue("certwatch_ocsp_stapled", ep(revokedStapleAddr), 1)},
		{"revoked staple: cert_revocation_info{ocsp_staple,revoked,keyCompromise} with the place's labels",
			revValue("certwatch_cert_revocation_info", ep(revokedStapleAddr, "index", "0", "method", "ocsp_staple", "status", "revoked", "reason", "keyCompromise", "team", "edge"), 1)},
		{"revoked staple: cert_revoked_timestamp_seconds",
			revValue("certwatch_cert_revoked_timestamp_seconds", ep(revokedStapleAddr, "index", "0", "method", "ocsp_staple"), float64(revokedAnswer.revoked.Unix()))},
		{"revoked staple: cert_revocation_this_update_timestamp_seconds",
			revValue("certwatch_cert_revocation_this_update_timestamp_seconds", ep(revokedStapleAddr, "index", "0", "method", "ocsp_staple"), float64(revokedAnswer.thisUpdate.Unix()))},
		{"revoked staple: cert_revocation_next_update_timestamp_seconds",
			revValue("certwatch_cert_revocation_next_update_timestamp_seconds", ep(revokedStapleAddr, "index", "0", "method", "ocsp_staple"), float64(revokedAnswer.nextUpdate.Unix()))},

		{"good staple: chain_valid{reason=ok} 1", revVerdict(ep(goodStapleAddr), "ok")},
		{"good staple: ocsp_stapled 1", revValue("certwatch_ocsp_stapled", ep(goodStapleAddr), 1)},
		{"good staple: cert_revocation_info{ocsp_staple,good}",
			revValue("certwatch_cert_revocation_info", ep(goodStapleAddr, "index", "0", "method", "ocsp_staple", "status", "good", "reason", ""), 1)},
		{"good staple: no cert_revoked_timestamp_seconds", revAbsent("certwatch_cert_revoked_timestamp_seconds", ep(goodStapleAddr))},

		{"no staple: ocsp_stapled 0", revValue("certwatch_ocsp_stapled", ep(noStapleAddr), 0)},
		{"no staple: chain_valid{reason=ok} 1", revVerdict(ep(noStapleAddr), "ok")},
		{"no staple: no cert_revocation_info", revAbsent("certwatch_cert_revocation_info", ep(noStapleAddr))},

		{"forged staple: ocsp_staple_error_info{class=bad_signature}", revValue("certwatch_ocsp_staple_error_info", ep(forgedStapleAddr, "class", "bad_signature"), 1)},
		{"forged staple: chain_valid{reason=ok} 1", revVerdict(ep(forgedStapleAddr), "ok")},
		{"forged staple: no cert_revocation_info", revAbsent("certwatch_cert_revocation_info", ep(forgedStapleAddr))},

		{"OCSP: chain_valid{reason=revoked} 0 (intermediate revoked)", revVerdict(ep(viaOCSPAddr), "revoked")},
		{"OCSP: cert_revocation_info{index=1,ocsp,revoked}", revValue("certwatch_cert_revocation_info", ep(viaOCSPAddr, "index", "1", "method", "ocsp", "status", "revoked", "reason", "keyCompromise"), 1)},
		{"OCSP: cert_revocation_info{index=0,ocsp,good}", revValue("certwatch_cert_revocation_info", ep(viaOCSPAddr, "index", "0", "method", "ocsp", "status", "good"), 1)},
		{"OCSP: revocation_fetch_success 1", revValue("certwatch_revocation_fetch_success", map[string]string{"method": "ocsp", "url": responder.url}, 1)},
		{"OCSP: revocation_fetch_last_success_timestamp_seconds", revBetween("certwatch_revocation_fetch_last_success_timestamp_seconds", map[string]string{"method": "ocsp", "url": responder.url}, now-5, now+revWaitFor.Seconds()+5)},

		{"CRL: chain_valid{source=file,reason=revoked} 0", revVerdict(file(viaCRLFile), "revoked")},
		{"CRL: cert_revocation_info{index=0,crl,revoked,keyCompromise}", revValue("certwatch_cert_revocation_info", file(viaCRLFile, "index", "0", "method", "crl", "status", "revoked", "reason", "keyCompromise"), 1)},
		{"CRL: cert_revoked_timestamp_seconds", revBetween("certwatch_cert_revoked_timestamp_seconds", file(viaCRLFile, "index", "0", "method", "crl"), now-600, now+1)},
		{"CRL: cert_revocation_next_update_timestamp_seconds (7 days)", revBetween("certwatch_cert_revocation_next_update_timestamp_seconds", file(viaCRLFile, "index", "0", "method", "crl"), now+6*86400, now+8*86400)},
		{"CRL: crl_next_update_timestamp_seconds{source=crl_distribution_point}", revBetween("certwatch_crl_next_update_timestamp_seconds", map[string]string{"source": "crl_distribution_point", "target": crlURL}, now+6*86400, now+8*86400)},
		{"CRL: crl_revoked_certificates{source=crl_distribution_point} 1", revValue("certwatch_crl_revoked_certificates", map[string]string{"source": "crl_distribution_point", "target": crlURL}, 1)},
		{"CRL: revocation_fetch_success 1", revValue("certwatch_revocation_fetch_success", map[string]string{"method": "crl", "url": crlURL}, 1)},

		{"CRL file: crl_revoked_certificates 1", revValue("certwatch_crl_revoked_certificates", file(currentCRLFile, "index", "0"), 1)},
		{"CRL file: crl_next_update_timestamp_seconds in 7 days", revBetween("certwatch_crl_next_update_timestamp_seconds", file(currentCRLFile, "index", "0"), now+6*86400, now+8*86400)},
		{"CRL file: crl_number 4096 (openssl's 1000 in hex)", revValue("certwatch_crl_number", file(currentCRLFile, "index", "0"), 4096)},
		{"CRL file: crl_info", revValue("certwatch_crl_info", file(currentCRLFile, "index", "0", "issuer_cn", "crl checked intermediate"), 1)},
		{"stale CRL file: crl_revoked_certificates 2", revValue("certwatch_crl_revoked_certificates", file(staleCRLFile, "index", "0"), 2)},
		{"stale CRL file: crl_next_update_timestamp_seconds a day ago", revBetween("certwatch_crl_next_update_timestamp_seconds", file(staleCRLFile, "index", "0"), now-25*3600, now-23*3600)},
		{"stale CRL file: crl_this_update_timestamp_seconds two days ago", revBetween("certwatch_crl_this_update_timestamp_seconds", file(staleCRLFile, "index", "0"), now-49*3600, now-47*3600)},

		{"denied loopback: revocation_fetch_errors_total{class=denied} > 0", revPositive("certwatch_revocation_fetch_errors_total", map[string]string{"method": "ocsp", "url": deniedServer.url, "class": "denied"})},
		{"denied loopback: chain_valid{reason=ok} 1", revVerdict(ep(deniedAddr), "ok")},
		{"down responder: revocation_fetch_success 0", revValue("certwatch_revocation_fetch_success", map[string]string{"method": "ocsp", "url": downURL}, 0)},
		{"down responder: chain_valid{reason=ok} 1", revVerdict(ep(downAddr), "ok")},
	}
	if isolated {
		checks = append(checks,
			revCheck{"metadata address: revocation_fetch_errors_total{class=denied} > 0", revPositive("certwatch_revocation_fetch_errors_total", map[string]string{"method": "ocsp", "url": metadataURL, "class": "denied"})},
			revCheck{"metadata address: chain_valid{reason=ok} 1", revVerdict(ep(metadataAddr), "ok")})
	}
	revWait(t, p, checks)

	if n := deniedServer.hits.Load(); n != 0 {
		t.Errorf("the server at a denied loopback address saw %d requests, want 0", n)
	}
	if responder.hits.Load() == 0 || crlServer.hits.Load() == 0 {
		t.Errorf("the OCSP responder saw %d requests and the CRL distribution point %d: want some of each", responder.hits.Load(), crlServer.hits.Load())
	}
}

func revQuoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// revCheck is one expectation about a scrape.
type revCheck struct {
	name  string
	check func(map[string]*dto.MetricFamily) error
}

// revWait scrapes until every check passes, or for revWaitFor, then
// reports each check that still fails: the background answers take a few
// scrapes to show.
func revWait(t *testing.T, p *exporterProcess, checks []revCheck) {
	t.Helper()
	deadline := time.Now().Add(revWaitFor)
	for {
		mfs := p.scrape(t, "/metrics")
		var failing []string
		for _, c := range checks {
			if err := c.check(mfs); err != nil {
				failing = append(failing, fmt.Sprintf("%s: %v", c.name, err))
			}
		}
		if len(failing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, f := range failing {
				t.Errorf("after %v: %s", revWaitFor, f)
			}
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// revOne returns the one series of name whose labels include want
// (want[l] == "" matches a series whose label l is empty or absent).
func revOne(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (*dto.Metric, error) {
	got := find(mfs, name, want)
	if len(got) != 1 {
		return nil, fmt.Errorf("%s%s: %d series, want 1%s", name, revLabels(want), len(got), revNear(mfs, name, want))
	}
	return got[0], nil
}

// revNear lists the series of name for the same target, to show what is
// there instead.
func revNear(mfs map[string]*dto.MetricFamily, name string, want map[string]string) string {
	var near []string
	for _, m := range find(mfs, name, map[string]string{"target": want["target"]}) {
		l := map[string]string{}
		for _, lp := range m.Label {
			l[lp.GetName()] = lp.GetValue()
		}
		near = append(near, fmt.Sprintf("%s %v", revLabels(l), revValueOf(m)))
	}
	if len(near) == 0 {
		return ""
	}
	return "; present: " + strings.Join(near, ", ")
}

func revLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", k, l[k])
	}
	b.WriteString("}")
	return b.String()
}

func revValueOf(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func revValue(name string, labels map[string]string, want float64) func(map[string]*dto.MetricFamily) error {
	return func(mfs map[string]*dto.MetricFamily) error {
		m, err := revOne(mfs, name, labels)
		if err != nil {
			return err
		}
		if v := revValueOf(m); v != want {
			return fmt.Errorf("%s%s = %v, want %v", name, revLabels(labels), v, want)
		}
		return nil
	}
}

func revBetween(name string, labels map[string]string, lo, hi float64) func(map[string]*dto.MetricFamily) error {
	return func(mfs map[string]*dto.MetricFamily) error {
		m, err := revOne(mfs, name, labels)
		if err != nil {
			return err
		}
		if v := revValueOf(m); v < lo || v > hi {
			return fmt.Errorf("%s%s = %v (%s), want between %s and %s", name, revLabels(labels), v, unixTime(v), unixTime(lo), unixTime(hi))
		}
		return nil
	}
}

func revPositive(name string, labels map[string]string) func(map[string]*dto.MetricFamily) error {
	return func(mfs map[string]*dto.MetricFamily) error {
		m, err := revOne(mfs, name, labels)
		if err != nil {
			return err
		}
		if v := revValueOf(m); v <= 0 {
			return fmt.Errorf("%s%s = %v, want > 0", name, revLabels(labels), v)
		}
		return nil
	}
}

func revAbsent(name string, labels map[string]string) func(map[string]*dto.MetricFamily) error {
	return func(mfs map[string]*dto.MetricFamily) error {
		if got := find(mfs, name, labels); len(got) != 0 {
			return fmt.Errorf("%s%s: %d series, want none%s", name, revLabels(labels), len(got), revNear(mfs, name, labels))
		}
		return nil
	}
}

// revVerdict checks certwatch_chain_valid: 1 with reason ok, 0 otherwise.
func revVerdict(labels map[string]string, reason string) func(map[string]*dto.MetricFamily) error {
	return func(mfs map[string]*dto.MetricFamily) error {
		m, err := revOne(mfs, "certwatch_chain_valid", labels)
		if err != nil {
			return err
		}
		want := 0.0
		if reason == "ok" {
			want = 1
		}
		if got := label(m, "reason"); got != reason || revValueOf(m) != want {
			return fmt.Errorf("certwatch_chain_valid%s = %v with reason %q, want %v with reason %q",
				revLabels(labels), revValueOf(m), got, want, reason)
		}
		return nil
	}
}
