package main

// The alert rules and dashboards proven against the real thing: certwatch
// runs against servers and files built to trip each alert, a real Prometheus
// scrapes it and evaluates the shipped rules, and every dashboard query and
// every alert expression is run through Prometheus' HTTP API.

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/dashboards"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
)

type promResult struct {
	Metric map[string]string `json:"metric"`
}

type promClient struct{ base string }

func (c promClient) query(t *testing.T, expr string) ([]promResult, error) {
	t.Helper()
	resp, err := http.Get(c.base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query failed: %s", r.Error)
	}
	if r.Data.ResultType == "scalar" {
		return []promResult{{}}, nil
	}
	var results []promResult
	err = json.Unmarshal(r.Data.Result, &results)
	return results, err
}

func TestAlertsAndDashboardsAgainstPrometheus(t *testing.T) {
	prometheus := testtools.Find(t, "prometheus")
	bin := buildBinary(t)
	dir := t.TempDir()
	now := time.Now()
	day := 24 * time.Hour

	// One place per alert, plus healthy ones that must stay silent.
	names := map[string]string{} // address or URL -> fixture name
	healthy := testpki.NewChain(t, testpki.Options{})
	ca := healthy.Root
	inter := healthy.Intermediate
	leaf := func(o testpki.Options) *testpki.Cert {
		o.CommonName, o.DNSNames = "localhost", []string{"localhost"}
		return testpki.New(t, inter, o)
	}
	serveStapled := func(c *testpki.Cert, staple []byte) string {
		cert := testpki.TLSCertificate(c, inter)
		cert.OCSPStaple = staple
		return tlsServerWith(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	serve := func(c *testpki.Cert, maxVersion uint16, chain ...*testpki.Cert) string {
		if len(chain) == 0 {
			chain = []*testpki.Cert{inter}
		}
		cert := testpki.TLSCertificate(c, chain...)
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion}
		if maxVersion != 0 {
			cfg.MinVersion = maxVersion // Go servers refuse TLS 1.0 and 1.1 unless told otherwise
		}
		return tlsServerWith(t, cfg)
	}
	addrs := map[string]string{
		"healthy":   serve(healthy.Leaf, 0),
		"shortlife": serve(leaf(testpki.Options{NotBefore: now.Add(-30 * time.Minute), NotAfter: now.Add(30 * time.Minute)}), 0),
		"expired":   serve(leaf(testpki.Options{NotBefore: now.Add(-90 * day), NotAfter: now.Add(-time.Hour)}), 0),
		"expiring":  serve(leaf(testpki.Options{NotBefore: now.Add(-80 * day), NotAfter: now.Add(10 * day)}), 0),
		"soon":      serve(leaf(testpki.Options{NotBefore: now.Add(-89 * day), NotAfter: now.Add(day)}), 0),
		"notyet":    serve(leaf(testpki.Options{NotBefore: now.Add(day), NotAfter: now.Add(91 * day)}), 0),
		"legacy":    serve(leaf(testpki.Options{}), tls.VersionTLS10),
		"refused":   freePort(t),
	}
	stranger := testpki.NewChain(t, testpki.Options{})
	addrs["untrusted"] = serve(stranger.Leaf, 0, stranger.Intermediate)

	// Revocation: staples revoked, expiring and forged; a responder that is
	// down for a module that checks actively; CRLs stale and nearly so; a
	// CA chain published at a URL.
	staple := func(c *testpki.Cert, status int, thisUpdate, nextUpdate time.Time, signer *testpki.Cert) []byte {
		der, err := ocsp.CreateResponse(inter.Cert, signer.Cert, ocsp.Response{Status: status, SerialNumber: c.Cert.SerialNumber,
			ThisUpdate: thisUpdate, NextUpdate: nextUpdate, RevokedAt: now.Add(-day), RevocationReason: ocsp.KeyCompromise}, signer.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	revokedLeaf, expiringLeaf, forgedLeaf := leaf(testpki.Options{}), leaf(testpki.Options{}), leaf(testpki.Options{})
	addrs["revoked"] = serveStapled(revokedLeaf, staple(revokedLeaf, ocsp.Revoked, now.Add(-time.Hour), now.Add(3*day), inter))
	addrs["stapleexpiring"] = serveStapled(expiringLeaf, staple(expiringLeaf, ocsp.Good, now.Add(-3*day), now.Add(2*time.Hour), inter))
	addrs["forgedstaple"] = serveStapled(forgedLeaf, staple(forgedLeaf, ocsp.Good, now.Add(-time.Hour), now.Add(3*day), stranger.Intermediate))
	responder := "http://" + freePort(t) + "/" // nothing listens there
	checkedLeaf := leaf(testpki.Options{OCSPServers: []string{responder}})
	checked := serve(checkedLeaf, 0)
	names[checked] = "checked"
	names[responder] = "responderdown"
	goodResponder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := ocsp.CreateResponse(inter.Cert, inter.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(day)}, inter.Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(goodResponder.Close)
	answeredLeaf := leaf(testpki.Options{OCSPServers: []string{goodResponder.URL + "/"}})
	answered := serve(answeredLeaf, 0)
	names[answered] = "answered"
	crl := func(thisUpdate, nextUpdate time.Time) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
			ThisUpdate: thisUpdate, NextUpdate: nextUpdate}, inter.Cert, inter.Key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	writeFile(t, filepath.Join(dir, "crls", "stale.crl"), crl(now.Add(-8*day), now.Add(-time.Hour)))
	writeFile(t, filepath.Join(dir, "crls", "soon.crl"), crl(now.Add(-6*day), now.Add(3*time.Hour)))
	writeFile(t, filepath.Join(dir, "crls", "fresh.crl"), crl(now.Add(-time.Hour), now.Add(7*day)))
	chainPEM := testpki.PEM(inter, ca)
	published := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/ca_chain") {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(chainPEM)
	}))
	t.Cleanup(published.Close)
	names[published.URL+"/v1/pki_int/missing"] = "urlmissing"
	shortInter := testpki.New(t, ca, testpki.Options{CommonName: "short intermediate", IsCA: true, NotAfter: now.Add(20 * day)})
	shortLeaf := testpki.New(t, shortInter, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, NotAfter: now.Add(60 * day)})
	addrs["shortchain"] = serve(shortLeaf, 0, shortInter)

	writeFile(t, filepath.Join(dir, "ca.pem"), testpki.PEM(ca))
	weak := testpki.New(t, nil, testpki.Options{CommonName: "old weak root", IsCA: true, KeyType: "rsa1024"})
	writeFile(t, filepath.Join(dir, "files", "weak.pem"), testpki.PEM(weak))
	writeFile(t, filepath.Join(dir, "files", "service.pem"), testpki.PEM(healthy.Leaf, inter))
	// A trust store's expired root (role="anchor") pages nobody; an expired
	// leaf stored after its intermediate does.
	expiredRoot := testpki.New(t, nil, testpki.Options{CommonName: "expired trust store root", IsCA: true,
		NotBefore: now.Add(-3650 * day), NotAfter: now.Add(-day)})
	writeFile(t, filepath.Join(dir, "files", "trust-store-root.pem"), testpki.PEM(expiredRoot))
	writeFile(t, filepath.Join(dir, "files", "reversed.pem"),
		testpki.PEM(inter, leaf(testpki.Options{NotBefore: now.Add(-90 * day), NotAfter: now.Add(-time.Hour)})))

	var targets []string
	for name, a := range addrs {
		targets = append(targets, fmt.Sprintf("%q", a))
		names[a] = name
	}
	sort.Strings(targets)
	writeFile(t, filepath.Join(dir, "certwatch.yml"), []byte(fmt.Sprintf(`
modules:
  default:
    timeout: 2s
    tls:
      ca_file: ca.pem
      server_name: localhost
  revocation_checks:
    timeout: 2s
    tls: {ca_file: ca.pem, server_name: localhost}
    revocation: {ocsp: true}
global:
  revocation:
    allow: ["127.0.0.1/32:*"]
    timeout: 1s
endpoints:
  - targets: [%[1]s]
    labels: {team: web}
  - targets: [%[2]q, %[4]q]
    module: revocation_checks
files:
  - paths: ["files/*.pem"]
    ca_file: ca.pem
  - paths: ["crls/*.crl"]
urls:
  - urls: [%[3]q, %[5]q]
    interval: 2s
    ca_file: ca.pem
`, strings.Join(targets, ", "), checked, published.URL+"/v1/pki_int/ca_chain", answered, published.URL+"/v1/pki_int/missing")))
	cw := startExporter(t, bin, filepath.Join(dir, "certwatch.yml"))

	pc := startPrometheus(t, prometheus, dir, cw.addr, "2s")

	// Poll until Prometheus has scraped certwatch at least twice, and the
	// background revocation checks and URL fetches have failed and
	// succeeded in two scrapes (rates need two samples).
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := pc.query(t, `count_over_time(certwatch_build_info[1m]) >= 2`)
		var ready bool
		if err == nil && len(res) > 0 {
			ready = true
			for _, q := range []string{
				`count_over_time(certwatch_revocation_fetch_errors_total[1m]) >= 2`,
				`count_over_time(certwatch_url_fetch_errors_total[1m]) >= 2`,
				`certwatch_revocation_fetch_last_success_timestamp_seconds > 0`,
			} {
				if res, err := pc.query(t, q); err != nil || len(res) == 0 {
					ready = false
				}
			}
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape certwatch in time (last error: %v)", err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	t.Run("rules loaded healthy", func(t *testing.T) {
		resp, err := http.Get(pc.base + "/api/v1/rules")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				n++
				if rule.Health == "err" {
					t.Errorf("rule %s: %s", rule.Name, rule.LastError)
				}
			}
		}
		if n < 10 {
			t.Errorf("only %d rules loaded", n)
		}
	})

	t.Run("every dashboard query returns data", func(t *testing.T) {
		qs, err := dashboards.Queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			res, err := pc.query(t, dashboards.ExpandVariables(q.Expr))
			if err != nil {
				t.Errorf("%s / %s: %v\n%s", q.Dashboard, q.Panel, err, q.Expr)
				continue
			}
			// No SPIRE agent here: the SPIFFE panels run, and stay empty.
			// Nothing here is revoked by a CRL: that panel too. No
			// cert-manager either: certmanager_e2e_test.go checks its panels.
			if len(res) == 0 && !strings.Contains(q.Expr, "spiffe") && !strings.Contains(q.Expr, "certwatch_certmanager_") {
				t.Errorf("%s / %s returns no data:\n%s", q.Dashboard, q.Panel, q.Expr)
			}
		}
	})

	t.Run("every alert expression returns exactly its fixtures", func(t *testing.T) {
		want := map[string][]string{
			"CertwatchCertificateExpired":          {"expired", "files/reversed.pem"},
			"CertwatchCertificateExpiringSoon":     {"soon"},
			"CertwatchCertificateExpiring":         {"expiring", "soon"},
			"CertwatchCertificateRenewalOverdue":   {"expiring", "soon"},
			"CertwatchCertificateNotYetValid":      {"notyet"},
			"CertwatchChainExpiresBeforeLeaf":      {"shortchain"},
			"CertwatchChainInvalid":                {"untrusted"},
			"CertwatchWeakCrypto":                  {"files/weak.pem"},
			"CertwatchLegacyTLSVersion":            {"legacy"},
			"CertwatchTargetFailing":               {"refused", "urlmissing"},
			"CertwatchCollectorFailing":            nil,
			"CertwatchKubernetesInformerNotSynced": nil, // proven by the Kubernetes end-to-end test's metrics
			"CertwatchKubernetesWatchErrors":       nil,
			"CertwatchKubernetesClusterDown":       nil, // kubernetes_clusters_e2e_test.go reads cluster_up; promtool tests the rule
			// No Kubernetes here: certmanager_e2e_test.go runs these against
			// a real Prometheus scraping certwatch under a real kube-apiserver.
			"CertwatchCertManagerRenewalOverdue":      nil,
			"CertwatchCertManagerCertificateNotReady": nil,
			"CertwatchCertManagerIssuerNotReady":      nil,
			"CertwatchCertManagerSecretMismatch":      nil,
			"CertwatchConfigReloadFailed":             nil,
			"CertwatchExporterDown":                   nil,

			// No Kubernetes here either: mesh_e2e_test.go runs these against
			// a real Prometheus scraping certwatch under a real kube-apiserver.
			"CertwatchMeshCAExpiring":         nil,
			"CertwatchMeshTrustRootsExpiring": nil,
			"CertwatchMeshTrustRootsStale":    nil,

			// No SPIRE agent here: the promtool unit tests cover these.
			"CertwatchSpiffeSVIDRotationOverdue":  nil,
			"CertwatchSpiffeWorkloadAPIDown":      nil,
			"CertwatchSpiffeBundleEndpointStale":  nil,
			"CertwatchSpiffeTrustBundleExpiring":  nil,
			"CertwatchCertificateRevoked":         {"revoked"},
			"CertwatchCRLStale":                   {"crls/stale.crl"},
			"CertwatchCRLExpiringSoon":            {"crls/soon.crl"},
			"CertwatchRevocationResponderFailing": {"responderdown"},
			"CertwatchOCSPStapleExpiring":         {"stapleexpiring"},
			"CertwatchOCSPStapleInvalid":          {"forgedstaple"},
		}
		checkAlertFixtures(t, pc, "", want, true, func(m map[string]string) string {
			target := m["target"]
			if target == "" {
				target = m["url"] // the revocation checker's series are per URL
			}
			if n, ok := names[target]; ok {
				return n
			}
			if rel, err := filepath.Rel(dir, target); err == nil && !strings.HasPrefix(rel, "..") {
				return rel
			}
			return target
		})
	})
}

// checkAlertFixtures runs the expression of every shipped alert whose name
// starts with prefix ("" for all) in Prometheus and compares what it
// matches, each result named by name and sorted (duplicates dropped when
// distinct is set), with want; an alert under prefix without an entry in
// want, or an entry naming no alert, fails the test.
func checkAlertFixtures(t *testing.T, pc promClient, prefix string, want map[string][]string, distinct bool, name func(labels map[string]string) string) {
	t.Helper()
	exprs := alertExpressions(t, "alerts/certwatch.rules.yml")
	for alert := range exprs {
		if _, ok := want[alert]; strings.HasPrefix(alert, prefix) && !ok {
			t.Errorf("alert %s has no expectation in this test", alert)
		}
	}
	for alert, expected := range want {
		expr, ok := exprs[alert]
		if !ok {
			t.Errorf("alert %s is not in the rules", alert)
			continue
		}
		res, err := pc.query(t, expr)
		if err != nil {
			t.Errorf("%s: %v", alert, err)
			continue
		}
		var got []string
		for _, r := range res {
			got = append(got, name(r.Metric))
		}
		sort.Strings(got)
		if distinct {
			got = slices.Compact(got)
		}
		if !slices.Equal(got, expected) {
			t.Errorf("%s matched %v, want %v", alert, got, expected)
		}
	}
}

// alertExpressions reads the shipped rule file.
func alertExpressions(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out[r.Alert] = r.Expr
			}
		}
	}
	return out
}

// tlsServerWith serves with the given TLS configuration until the test ends.
func tlsServerWith(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String()
}

// startPrometheus runs a real Prometheus in dir with the shipped rules,
// scraping certwatch at addr and evaluating every interval, until the test
// ends (its log is shown when the test failed).
func startPrometheus(t *testing.T, prometheus, dir, addr, interval string) promClient {
	t.Helper()
	rules, err := filepath.Abs("alerts/certwatch.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := freePort(t)
	every, err := time.ParseDuration(interval)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "prometheus.yml"), []byte(fmt.Sprintf(`
global:
  scrape_interval: %[1]s
  scrape_timeout: %[2]dms
  evaluation_interval: %[1]s
rule_files: [%[3]q]
scrape_configs:
  - job_name: certwatch
    static_configs:
      - targets: [%[4]q]
`, interval, every.Milliseconds()*95/100, rules, addr)))
	prom := exec.Command(prometheus, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	promLog := &testtools.SyncBuffer{}
	prom.Stdout, prom.Stderr = promLog, promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = prom.Process.Kill()
		_ = prom.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	})
	return promClient{base: "http://" + promAddr}
}

// waitForQuery polls Prometheus until query returns a result (it has
// scraped what the test needs), failing the test after 90 s.
func waitForQuery(t *testing.T, pc promClient, query string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := pc.query(t, query)
		if err == nil && len(res) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape certwatch in time (%s; last error: %v)", query, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
