package inventory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/hostile"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
	"github.com/certwatch/certwatch/source/files"
)

// Hostile names of the fixture: markup in a CN and a SAN, and names far
// longer than any layout expects.
const (
	scriptCN   = `<script>alert(1)</script>`
	imgSAN     = `x"><img src=x onerror=alert(2)>.example`
	formulaCN  = `=HYPERLINK("http://evil.example","click")`
	longLabel  = "averyveryverylonglabelwithoutanybreakopportunityatallfortheinventorylayouttest"
	fixtureCA  = "inventory test root"
	hostnameCN = "not-this-host.example"
)

// fixture is a real exporter over real files and a real TLS endpoint on
// loopback, and the inventory over it.
type fixture struct {
	e        *collector.Exporter
	h        *Handler
	mux      *http.ServeMux
	dir      string
	okAddr   string // endpoint whose chain verifies
	nameAddr string // endpoint that presents a certificate for another name
	chain    *testpki.Chain
	bulk     int
}

// newFixture writes the odd places and bulk more ordinary ones (team
// payments or platform, expiring over the next 400 days), starts the
// endpoints, configures an exporter and collects once.
func newFixture(t testing.TB, bulk int) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), bulk: bulk}
	dir := f.dir
	f.chain = testpki.NewChain(t, testpki.Options{})
	root, inter := f.chain.Root, f.chain.Intermediate
	// The CA file holds the root and the intermediate: a file holding a leaf
	// without its intermediate verifies only with the CA file's copy, which
	// makes it an incomplete chain.
	testpki.WriteFile(t, dir, "ca.pem", testpki.PEM(root, inter))

	// Files trusted through ca.pem.
	svc := testpki.New(t, inter, testpki.Options{CommonName: "svc.payments.example", DNSNames: []string{"svc.payments.example", "api.payments.example"},
		IPs: nil, Emails: []string{"pki@payments.example"}, URIs: []string{"spiffe://payments.example/svc"}, IssuerURL: "http://pki.example/inter.crt"})
	testpki.WriteFile(t, dir, "pki/svc.pem", append(testpki.PEM(svc, inter), testpki.KeyPEM(t, svc.Key)...))
	testpki.WriteFile(t, dir, "pki/expired.pem", testpki.PEM(testpki.New(t, inter, testpki.Options{CommonName: "expired.payments.example",
		DNSNames: []string{"expired.payments.example"}, NotBefore: time.Now().Add(-400 * 24 * time.Hour), NotAfter: time.Now().Add(-2 * 24 * time.Hour)}), inter))
	testpki.WriteFile(t, dir, "pki/future.pem", testpki.PEM(testpki.New(t, inter, testpki.Options{CommonName: "future.payments.example",
		DNSNames: []string{"future.payments.example"}, NotBefore: time.Now().Add(10 * 24 * time.Hour), NotAfter: time.Now().Add(100 * 24 * time.Hour)}), inter))
	// A kubeconfig: two places in one file, told apart by their key.
	ops := testpki.New(t, inter, testpki.Options{CommonName: "kube-ops", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	testpki.WriteFile(t, dir, "pki/admin.kubeconfig", testpki.Kubeconfig(t,
		[]testpki.KubeCluster{{Name: "prod", CA: []*testpki.Cert{root}}},
		[]testpki.KubeUser{{Name: "ops", Certs: []*testpki.Cert{ops, inter}, Key: ops.Key}}))
	testpki.WriteFile(t, dir, "pki/junk.pem", []byte("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"))
	stranger := testpki.New(t, nil, testpki.Options{CommonName: "stranger root", IsCA: true})
	testpki.WriteFile(t, dir, "pki/stranger.pem", testpki.PEM(testpki.New(t, stranger, testpki.Options{CommonName: "unknown.payments.example",
		DNSNames: []string{"unknown.payments.example"}})))
	long := strings.Repeat(longLabel, 3)
	testpki.WriteFile(t, dir, "pki/hostile.pem", testpki.PEM(testpki.New(t, inter, testpki.Options{CommonName: scriptCN,
		DNSNames: []string{imgSAN, long + ".example", "a.example", "b.example", "c.example"}})))
	testpki.WriteFile(t, dir, "pki/formula.pem", testpki.PEM(testpki.New(t, inter, testpki.Options{CommonName: formulaCN})))
	testpki.WriteFile(t, dir, "pki/"+longLabel+".pem", testpki.PEM(testpki.New(t, inter, testpki.Options{CommonName: long})))

	// Bulk places: one key, many certificates.
	for _, team := range []string{"payments", "platform"} {
		if err := os.MkdirAll(filepath.Join(dir, "bulk", team), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	key := testpki.NewKey(t, "")
	for i := range bulk {
		team := "platform"
		if i%3 == 0 {
			team = "payments"
		}
		name := fmt.Sprintf("host-%04d.%s.example", i, team)
		c := testpki.New(t, inter, testpki.Options{CommonName: name, DNSNames: []string{name}, Key: key,
			NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(time.Duration(3+i%400) * 24 * time.Hour)})
		testpki.WriteFile(t, dir, fmt.Sprintf("bulk/%s/%04d.pem", team, i), testpki.PEM(c, inter))
	}

	// Endpoints: one whose chain verifies, one serving a certificate for
	// another name.
	serve := func(leaf *testpki.Cert) string {
		tc := testpki.TLSCertificate(leaf, inter)
		return hostile.Serve(t, hostile.TLS(&tls.Config{Certificates: []tls.Certificate{tc}})).Addr()
	}
	f.okAddr = serve(f.chain.Leaf)
	f.nameAddr = serve(testpki.New(t, inter, testpki.Options{CommonName: hostnameCN, DNSNames: []string{hostnameCN}}))

	cfgText := fmt.Sprintf(`modules:
  local:
    timeout: 5s
    tls:
      ca_file: ca.pem
endpoints:
  - targets: [%q, %q]
    module: local
    labels: {team: edge}
files:
  - paths: [pki]
    ca_file: ca.pem
    labels: {team: payments}
  - paths: [bulk/payments]
    ca_file: ca.pem
    labels: {team: payments}
  - paths: [bulk/platform]
    ca_file: ca.pem
    labels: {team: platform}
`, f.okAddr, f.nameAddr)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := promslog.NewNopLogger()
	f.e = collector.New(logger, inspect.NewInspector(nil), 0)
	prober := endpoint.New(cfg, logger)
	f.e.Update(&collector.Sources{Collectors: []source.Collector{prober, files.New(cfg, files.NewCache(), logger)}, Prober: prober})
	f.h = New(f.e, logger, Options{DefaultModule: "local"})
	f.mux = http.NewServeMux()
	f.h.Register(f.mux)
	return f
}

// places is how many places the fixture has: the bulk, 10 in files (two
// in the kubeconfig), 2 endpoints.
func (f *fixture) places() int { return f.bulk + 10 + 2 }

// get serves one request through the mux.
func (f *fixture) get(t testing.TB, target string) *httptest.ResponseRecorder {
	t.Helper()
	return httpGet(f.mux, target)
}

func httpGet(h http.Handler, target string) *httptest.ResponseRecorder {
	return httpDo(h, http.MethodGet, target)
}

func httpDo(h http.Handler, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), method, target, nil))
	return rec
}
