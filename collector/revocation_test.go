package collector

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/revocation"
)

// answerTable stands for the background checks: answers by certificate.
type answerTable struct {
	mu    sync.Mutex
	about map[string][]revocation.Answer // by subject CN
}

func (a *answerTable) Lookup(cert, _ *x509.Certificate, ocspOn, crlOn bool) []revocation.Answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []revocation.Answer
	for _, ans := range a.about[cert.Subject.CommonName] {
		if (ans.Method == revocation.MethodOCSP && ocspOn) || (ans.Method == revocation.MethodCRL && crlOn) {
			out = append(out, ans)
		}
	}
	return out
}

// TestRevocationSeries: a stapled revoked response, answers of background
// checks for a files group that opted in, and CRL files all show in both
// exposition paths, alike, and the verdicts follow the answers.
func TestRevocationSeries(t *testing.T) {
	dir := t.TempDir()
	chain := testpki.NewChain(t, testpki.Options{DNSNames: []string{"localhost"}})
	fileLeaf := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "file leaf"})
	testpki.WriteFile(t, dir, "certs/leaf.pem", testpki.PEM(fileLeaf, chain.Intermediate))
	ca := testpki.WriteFile(t, dir, "root.crt", testpki.PEM(chain.Root))

	now := time.Now()
	crlDER, err := x509.CreateRevocationList(nil, &x509.RevocationList{
		Number: big.NewInt(42), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(-time.Minute), // stale
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(7), RevocationTime: now.Add(-2 * time.Hour)}},
	}, chain.Intermediate.Cert, chain.Intermediate.Key)
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, dir, "crl/int.crl", crlDER)

	revokedAt := now.Add(-3 * time.Hour).Truncate(time.Second)
	stapled, err := ocsp.CreateResponse(chain.Intermediate.Cert, chain.Intermediate.Cert, ocsp.Response{Status: ocsp.Revoked,
		SerialNumber: chain.Leaf.Cert.SerialNumber, ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour),
		RevokedAt: revokedAt, RevocationReason: ocsp.KeyCompromise}, chain.Intermediate.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert := testpki.TLSCertificate(chain.Leaf, chain.Intermediate)
	cert.OCSPStaple = stapled
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	yml := fmt.Sprintf(`modules:
  default:
    tls: {ca_file: %[1]s, server_name: localhost}
endpoints:
  - targets: [%[2]s]
files:
  - paths: [%[3]s/certs/*.pem]
    ca_file: %[1]s
    labels: {team: platform}
    revocation: {ocsp: true, crl: true}
  - paths: [%[3]s/crl/*.crl]
`, ca, srv.Listener.Addr(), dir)
	e := newTestExporter(t, t.TempDir(), yml, nil)
	table := &answerTable{about: map[string][]revocation.Answer{
		"file leaf": {{Method: revocation.MethodOCSP, Status: revocation.StatusGood, ThisUpdate: now.Add(-time.Hour),
			NextUpdate: now.Add(time.Hour), URL: "http://ocsp.example/", Reason: revocation.ReasonNone}},
		chain.Intermediate.Cert.Subject.CommonName: {{Method: revocation.MethodCRL, Status: revocation.StatusGood,
			ThisUpdate: now.Add(-time.Hour), URL: "http://crl.example/int.crl", Reason: revocation.ReasonNone}},
	}}
	e.inspector.SetRevocations(table)
	h := e.MetricsHandler(prometheus.NewRegistry())

	protoFormat := expfmt.NewFormat(expfmt.TypeProtoDelim)
	textFormat := expfmt.NewFormat(expfmt.TypeTextPlain)
	scrape := func() []string {
		t.Helper()
		_, pb := get(t, h, string(protoFormat), "")
		want := samples(decode(t, pb, protoFormat))
		_, text := get(t, h, "text/plain;version=0.0.4", "")
		got := samples(decode(t, text, textFormat))
		if !slices.Equal(got, want) {
			t.Fatalf("text and protobuf differ:\n%s", diff(want, got))
		}
		return got
	}
	has := func(lines []string, parts ...string) bool {
		return slices.ContainsFunc(lines, func(l string) bool {
			for _, p := range parts {
				if !strings.Contains(l, p) {
					return false
				}
			}
			return true
		})
	}
	endpoint := fmt.Sprintf(`target=%q`, srv.Listener.Addr().String())
	lines := scrape()
	for _, want := range [][]string{
		{" certwatch_chain_valid{", endpoint, `reason="revoked"`, "} 0"},
		{" certwatch_ocsp_stapled{", endpoint, "} 1"},
		{" certwatch_cert_revocation_info{", endpoint, `index="0"`, `method="ocsp_staple"`, `status="revoked"`, `reason="keyCompromise"`},
		{" certwatch_cert_revoked_timestamp_seconds{", endpoint, `method="ocsp_staple"`, fmt.Sprint(float64(revokedAt.Unix()))},
		{" certwatch_cert_revocation_next_update_timestamp_seconds{", endpoint, `method="ocsp_staple"`},
		{" certwatch_chain_valid{", "leaf.pem", `reason="ok"`, "} 1"},
		{" certwatch_cert_revocation_info{", "leaf.pem", `index="0"`, `method="ocsp"`, `status="good"`, `reason=""`, `team="platform"`},
		{" certwatch_cert_revocation_info{", "leaf.pem", `index="1"`, `method="crl"`, `status="good"`},
		{" certwatch_crl_next_update_timestamp_seconds{", "int.crl", `index="0"`, `issuer_cn="certwatch test intermediate"`},
		{" certwatch_crl_revoked_certificates{", "int.crl", "} 1"},
		{" certwatch_crl_number{", "int.crl", "} 42"},
		{" certwatch_crl_info{", "int.crl", `delta="false"`, `signature_algorithm="ECDSA-SHA256"`},
		{" certwatch_target_success{", "int.crl", "} 1"},
	} {
		if !has(lines, want...) {
			t.Errorf("no series with %q", want)
		}
	}
	if has(lines, " certwatch_cert_revocation_info{", "leaf.pem", `method="ocsp_staple"`) || has(lines, "certwatch_ocsp_stapled{", "leaf.pem") {
		t.Errorf("staple series for a file")
	}

	// The file's leaf is revoked later: the next scrape says so, from the
	// cached verdict.
	table.mu.Lock()
	table.about["file leaf"] = []revocation.Answer{{Method: revocation.MethodOCSP, Status: revocation.StatusRevoked,
		RevokedAt: now, Reason: revocation.ReasonNone, URL: "http://ocsp.example/"}}
	table.mu.Unlock()
	lines = scrape()
	if !has(lines, " certwatch_chain_valid{", "leaf.pem", `reason="revoked"`, "} 0") {
		t.Errorf("a revocation learnt after the chain was judged is not reported")
	}
	if !has(lines, " certwatch_cert_revocation_info{", "leaf.pem", `status="revoked"`, `reason=""`) {
		t.Errorf("no revoked answer series for the file")
	}
}
