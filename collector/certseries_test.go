package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/revocation"
)

// leafFiles writes n files of a leaf and its intermediate under dir/certs,
// and the root as dir/root.crt. The intermediate expires before the leaves,
// so the chain's not-after is the intermediate's.
func leafFiles(tb testing.TB, dir string, n int) (intermediate *testpki.Cert) {
	tb.Helper()
	root := testpki.New(tb, nil, testpki.Options{CommonName: "series root", IsCA: true, NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour)})
	intermediate = testpki.New(tb, root, testpki.Options{CommonName: "series intermediate", IsCA: true, NotAfter: time.Now().Add(30 * 24 * time.Hour)})
	for i := range n {
		leaf := testpki.New(tb, intermediate, testpki.Options{CommonName: fmt.Sprintf("leaf-%d.example", i),
			DNSNames: []string{fmt.Sprintf("leaf-%d.example", i)}})
		testpki.WriteFile(tb, dir, fmt.Sprintf("certs/%05d.pem", i), testpki.PEM(leaf, intermediate))
	}
	testpki.WriteFile(tb, dir, "root.crt", testpki.PEM(root))
	return intermediate
}

// leafFilesConfig is the configuration of leafFiles' files with a
// certificate_series mode, and extra keys for the file group.
func leafFilesConfig(dir, mode, group string) string {
	return fmt.Sprintf("global:\n  certificate_series: %s\nfiles:\n  - paths: [%s]\n    ca_file: %s\n%s",
		mode, filepath.Join(dir, "certs", "*.pem"), filepath.Join(dir, "root.crt"), group)
}

// TestCertificateSeriesOnMetrics reads the series of files of a leaf and an
// intermediate back from a /metrics answer over HTTP, with the setting
// coming from the configuration file.
func TestCertificateSeriesOnMetrics(t *testing.T) {
	const files = 3
	dir := t.TempDir()
	intermediate := leafFiles(t, dir, files)
	for _, tc := range []struct {
		mode    string
		perFile int      // series per file, of places and targets
		roles   []string // of the certificate series
	}{
		{CertificateSeriesAll, 9, []string{"intermediate", "leaf"}},
		{CertificateSeriesLeaves, 6, []string{"leaf"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e := newTestExporter(t, t.TempDir(), leafFilesConfig(dir, tc.mode, ""), nil)
			srv := httptest.NewServer(e.MetricsHandler(prometheus.NewRegistry())) // bound to 127.0.0.1
			t.Cleanup(srv.Close)
			for scrape := 1; scrape <= 2; scrape++ { // the second from the render cache
				resp, err := http.Get(srv.URL + "/metrics")
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("scrape %d: status %d, %v", scrape, resp.StatusCode, err)
				}
				families := decode(t, body, expfmt.NewFormat(expfmt.TypeTextPlain))
				perFile := map[string]int{}
				roles := map[string]bool{}
				for name, mf := range families {
					for _, m := range mf.GetMetric() {
						labels := map[string]string{}
						for _, lp := range m.GetLabel() {
							labels[lp.GetName()] = lp.GetValue()
						}
						if labels["source"] != "file" {
							continue
						}
						perFile[labels["target"]]++
						if name == nameCertNotAfter || name == nameCertNotBefore || name == nameCertInfo {
							roles[labels["role"]] = true
						}
						if name == nameChainNotAfter && m.GetGauge().GetValue() != float64(intermediate.Cert.NotAfter.Unix()) {
							t.Errorf("scrape %d: %s of %s is %v, want the intermediate's not-after %d",
								scrape, name, labels["target"], m.GetGauge().GetValue(), intermediate.Cert.NotAfter.Unix())
						}
						if name == nameChainValid && labels["reason"] != "ok" {
							t.Errorf("scrape %d: chain of %s not valid: %s", scrape, labels["target"], labels["reason"])
						}
					}
				}
				if len(perFile) != files {
					t.Fatalf("scrape %d: series for %d files, want %d: %v", scrape, len(perFile), files, perFile)
				}
				for target, n := range perFile {
					if n != tc.perFile {
						t.Errorf("scrape %d: %s has %d series, want %d", scrape, target, n, tc.perFile)
					}
				}
				var seen []string
				for role := range roles {
					seen = append(seen, role)
				}
				slices.Sort(seen)
				if !slices.Equal(seen, tc.roles) {
					t.Errorf("scrape %d: certificate series of roles %v, want %v", scrape, seen, tc.roles)
				}
			}
		})
	}
}

// TestCertificateSeriesReload switches the setting between scrapes, as a
// reload does: the next answer follows in both exposition paths (every
// cached place is rendered again), the chain and revocation series do not
// change, and switching back gives the first answer again.
func TestCertificateSeriesReload(t *testing.T) {
	dir := t.TempDir()
	intermediate := leafFiles(t, dir, 2)
	e := newTestExporter(t, t.TempDir(), leafFilesConfig(dir, CertificateSeriesAll, "    revocation: {crl: true}\n"), nil)
	now := time.Now()
	e.inspector.SetRevocations(&answerTable{about: map[string][]revocation.Answer{
		intermediate.Cert.Subject.CommonName: {{Method: revocation.MethodCRL, Status: revocation.StatusGood,
			ThisUpdate: now.Add(-time.Hour), URL: "http://crl.example/int.crl", Reason: revocation.ReasonNone}},
	}})
	h := e.MetricsHandler(prometheus.NewRegistry())
	protoFormat := expfmt.NewFormat(expfmt.TypeProtoDelim)
	textFormat := expfmt.NewFormat(expfmt.TypeTextPlain)
	scrape := func() []string {
		t.Helper()
		_, text := get(t, h, "text/plain;version=0.0.4", "")
		got := samples(decode(t, text, textFormat))
		_, pb := get(t, h, string(protoFormat), "")
		if want := samples(decode(t, pb, protoFormat)); !slices.Equal(got, want) {
			t.Fatalf("text and protobuf differ:\n%s", diff(want, got))
		}
		return got
	}
	isCert := func(s string) bool {
		return strings.Contains(s, " "+nameCertNotAfter+"{") || strings.Contains(s, " "+nameCertNotBefore+"{") ||
			strings.Contains(s, " "+nameCertInfo+"{")
	}
	split := func(lines []string) (certs, others []string) {
		for _, l := range lines {
			if isCert(l) {
				certs = append(certs, l)
			} else if !strings.Contains(l, nameCollectorOK) { // the same, but timing aside
				others = append(others, l)
			}
		}
		return certs, others
	}

	scrape()
	all := scrape() // written from the render cache
	allCerts, allOthers := split(all)
	if !slices.ContainsFunc(allCerts, func(s string) bool { return strings.Contains(s, `role="intermediate"`) }) {
		t.Fatalf("no intermediate series with certificate_series all:\n%s", strings.Join(all, "\n"))
	}
	if !slices.ContainsFunc(allOthers, func(s string) bool {
		return strings.Contains(s, "certwatch_cert_revocation_info{") && strings.Contains(s, `index="1"`)
	}) {
		t.Fatalf("no revocation series of the intermediate:\n%s", strings.Join(all, "\n"))
	}

	e.SetCertificateSeries(CertificateSeriesLeaves)
	leaves := scrape()
	leafCerts, leafOthers := split(leaves)
	wantCerts := slices.DeleteFunc(slices.Clone(allCerts), func(s string) bool { return !strings.Contains(s, `role="leaf"`) })
	if !slices.Equal(leafCerts, wantCerts) {
		t.Errorf("certificate series with certificate_series leaves are not those of the leaves:\n%s", diff(wantCerts, leafCerts))
	}
	if !slices.Equal(leafOthers, allOthers) {
		t.Errorf("chain, target or revocation series changed with the setting:\n%s", diff(allOthers, leafOthers))
	}

	e.SetCertificateSeries(CertificateSeriesAll)
	if again := scrape(); !slices.Equal(again, all) {
		t.Errorf("switching back to all does not give the first answer:\n%s", diff(all, again))
	}
}

// BenchmarkSeriesPerFile scrapes /metrics in the text format, warm, over
// 1,000 files of a leaf and its intermediate, and reports the series and
// bytes of the answer per file with each certificate_series.
func BenchmarkSeriesPerFile(b *testing.B) {
	const files = 1000
	dir := b.TempDir()
	leafFiles(b, dir, files)
	certsDir := filepath.Join(dir, "certs") + string(filepath.Separator)
	for _, mode := range []string{CertificateSeriesAll, CertificateSeriesLeaves} {
		b.Run(mode, func(b *testing.B) {
			e := newTestExporter(b, b.TempDir(), leafFilesConfig(dir, mode, ""), nil)
			h := e.MetricsHandler(prometheus.NewRegistry())
			scrape := func() []byte {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept", "text/plain;version=0.0.4")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
				return rec.Body.Bytes()
			}
			body := scrape() // cold: files read, chains judged, places rendered
			for b.Loop() {
				body = scrape()
			}
			series := 0 // of the files' places and targets
			sc := bufio.NewScanner(bytes.NewReader(body))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if line := sc.Text(); !strings.HasPrefix(line, "#") && strings.Contains(line, `target="`+certsDir) {
					series++
				}
			}
			b.ReportMetric(float64(series)/files, "series/file")
			b.ReportMetric(float64(len(body))/files, "bytes/file")
		})
	}
}
