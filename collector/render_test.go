package collector

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// testExporter serves files (good, a bundle, an expired one, a hostile
// name, junk) and a real TLS endpoint, with extra labels.
func testExporter(t *testing.T, now func() time.Time) (*Exporter, http.Handler, string, *testpki.Chain) {
	t.Helper()
	dir := t.TempDir()
	chain := testpki.NewChain(t, testpki.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	odd := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "quote\" back\\slash\nnewline é", Emails: []string{"a@example.com"}})
	expired := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "old",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	testpki.WriteFile(t, dir, "leaf.pem", testpki.PEM(chain.Leaf, chain.Intermediate))
	testpki.WriteFile(t, dir, "bundle.pem", testpki.PEM(chain.Root, chain.Intermediate))
	testpki.WriteFile(t, dir, "odd.pem", testpki.PEM(odd, chain.Intermediate))
	testpki.WriteFile(t, dir, "expired.pem", testpki.PEM(expired, chain.Intermediate))
	testpki.WriteFile(t, dir, "junk.pem", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	ca := testpki.WriteFile(t, dir, "ca/root.crt", testpki.PEM(chain.Root))

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(chain.Leaf, chain.Intermediate)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	yml := fmt.Sprintf(`modules:
  default:
    tls:
      ca_file: %[1]s
      server_name: localhost
endpoints:
  - targets: [%[2]s]
    labels: {team: "edge \"a\""}
  - targets: ["127.0.0.1:1"]
files:
  - paths: [%[3]s/*.pem]
    ca_file: %[1]s
    labels: {team: platform, env: prod}
  - paths: [%[3]s/ca/*.crt]
`, ca, addr, dir)
	e := newTestExporter(t, t.TempDir(), yml, now)
	static := prometheus.NewRegistry()
	return e, e.MetricsHandler(static), dir, chain
}

func get(t *testing.T, h http.Handler, accept, encoding string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return resp, body
}

// samples flattens families into sorted "name{labels} value" lines, label
// pairs sorted, values printed alike, the time-varying ones masked.
func samples(families map[string]*dto.MetricFamily) []string {
	var out []string
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, lp := range m.GetLabel() {
				pairs = append(pairs, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(pairs)
			v := "?"
			switch {
			case name == nameHandshake || name == nameCollectorTime:
				v = "masked"
			case m.GetGauge() != nil:
				v = fmt.Sprint(m.GetGauge().GetValue())
			case m.GetCounter() != nil:
				v = fmt.Sprint(m.GetCounter().GetValue())
			}
			out = append(out, fmt.Sprintf("%s %s{%s} %s", mf.GetType(), name, strings.Join(pairs, ","), v))
		}
	}
	sort.Strings(out)
	return out
}

func decode(t *testing.T, body []byte, format expfmt.Format) map[string]*dto.MetricFamily {
	t.Helper()
	out := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(bytes.NewReader(body), format)
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("decoding %s: %v", format, err)
		}
		if _, dup := out[mf.GetName()]; dup {
			t.Fatalf("family %s appears twice", mf.GetName())
		}
		out[mf.GetName()] = mf
	}
}

// TestTextAnswersMatchTheRegistry checks that the cached text rendering of
// places says exactly what the registry path (protobuf) says, over several
// scrapes (the second from the cache), and that OpenMetrics differs only in
// its number syntax and its end marker; with every certificate_series.
func TestTextAnswersMatchTheRegistry(t *testing.T) {
	for _, mode := range []string{CertificateSeriesAll, CertificateSeriesLeaves} {
		t.Run(mode, func(t *testing.T) { testTextAnswersMatchTheRegistry(t, mode) })
	}
}

func testTextAnswersMatchTheRegistry(t *testing.T, mode string) {
	e, h, dir, chain := testExporter(t, nil)
	e.SetCertificateSeries(mode)
	protoFormat := expfmt.NewFormat(expfmt.TypeProtoDelim)
	textFormat := expfmt.NewFormat(expfmt.TypeTextPlain)
	for scrape := 1; scrape <= 4; scrape++ {
		if scrape == 4 { // a renewal, a deletion and a new file: the cache must follow
			renewed := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "renewed"})
			testpki.WriteFile(t, dir, "leaf.pem", testpki.PEM(renewed, chain.Intermediate))
			if err := os.Remove(filepath.Join(dir, "expired.pem")); err != nil {
				t.Fatal(err)
			}
			testpki.WriteFile(t, dir, "new.pem", testpki.PEM(chain.Leaf))
		}
		_, pb := get(t, h, string(protoFormat), "")
		want := samples(decode(t, pb, protoFormat))
		resp, text := get(t, h, "text/plain;version=0.0.4", "")
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Fatalf("Content-Type %q", ct)
		}
		got := samples(decode(t, text, textFormat))
		if !slices.Equal(got, want) {
			t.Fatalf("scrape %d: text and protobuf differ:\n%s", scrape, diff(want, got))
		}
		if scrape == 4 {
			joined := strings.Join(got, "\n")
			if strings.Contains(joined, "expired.pem") || !strings.Contains(joined, `subject_cn="renewed"`) || !strings.Contains(joined, "new.pem") {
				t.Fatalf("the answer after a renewal, a deletion and a new file is stale:\n%s", joined)
			}
		}
		for _, name := range []string{nameCertNotAfter, nameCertInfo, nameChainValid, nameTargetSuccess, nameTargetError, nameTLSVersion, nameHandshake} {
			if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, " "+name+"{") }) {
				t.Errorf("scrape %d: no %s series", scrape, name)
			}
		}
		checkRoles(t, got, mode)

		_, om := get(t, h, "application/openmetrics-text;version=1.0.0", "")
		if !bytes.HasSuffix(om, []byte("# EOF\n")) || bytes.Count(om, []byte("# EOF")) != 1 {
			t.Fatalf("OpenMetrics answer does not end with one # EOF")
		}
		if !regexp.MustCompile(`(?m)^certwatch_target_success\{.*\} 1\.0$`).Match(om) {
			t.Errorf("OpenMetrics answer does not write integral values as floats (1.0)")
		}
		if a, b := openMetricsAsText(t, om), textLines(text); !slices.Equal(a, b) {
			t.Fatalf("scrape %d: OpenMetrics and text differ beyond number syntax:\n%s", scrape, diff(b, a))
		}

		resp, gz := get(t, h, "text/plain;version=0.0.4", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatal("gzip was asked for and not given")
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if got := samples(decode(t, plain, textFormat)); !slices.Equal(got, want) {
			t.Fatalf("scrape %d: gzip text differs", scrape)
		}
	}
}

// checkRoles checks the roles of the certificate series of an answer's
// samples: leaves and anchors in every mode, intermediates and roots only
// with CertificateSeriesAll (the answer holds chains of three).
func checkRoles(t *testing.T, got []string, mode string) {
	t.Helper()
	roles := map[string]int{}
	for _, s := range got {
		if m := regexp.MustCompile(`,role="([^"]*)"`).FindStringSubmatch(s); m != nil {
			roles[m[1]]++
		}
	}
	for _, role := range inspect.Roles {
		want := mode == CertificateSeriesAll || role == inspect.RoleLeaf || role == inspect.RoleAnchor
		if have := roles[string(role)] > 0; have != want {
			t.Errorf("certificate_series %s: series of role %s present: %v, want %v (roles seen: %v)", mode, role, have, want, roles)
		}
	}
}

// textLines are the place samples of a text answer, masked and sorted.
func textLines(body []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "certwatch_") || strings.HasPrefix(line, nameHandshake) || strings.HasPrefix(line, nameCollectorTime) {
			continue
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// openMetricsAsText maps OpenMetrics' integral floats ("1.0") back to the
// text format's ("1").
func openMetricsAsText(t *testing.T, body []byte) []string {
	var out []string
	for _, line := range textLines(body) {
		i := strings.LastIndexByte(line, ' ')
		name, v := line[:i], line[i+1:]
		if strings.HasSuffix(v, ".0") && !strings.ContainsAny(v, "e") {
			v = strings.TrimSuffix(v, ".0")
		}
		out = append(out, name+" "+v)
	}
	return out
}

func diff(want, got []string) string {
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "- %s\n", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "+ %s\n", g)
		}
	}
	return b.String()
}

// TestCachedVerdictsExpire checks that a place written from the cache still
// changes verdict when time alone changes it: the leaf expires.
func TestCachedVerdictsExpire(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	_, h, _, chain := testExporter(t, func() time.Time { return time.Unix(0, clock.Load()) })
	textFormat := expfmt.NewFormat(expfmt.TypeTextPlain)
	valid := func() (string, float64) {
		_, body := get(t, h, "text/plain;version=0.0.4", "")
		for _, m := range decode(t, body, textFormat)[nameChainValid].GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if strings.HasSuffix(labels["target"], "/leaf.pem") {
				return labels["reason"], m.GetGauge().GetValue()
			}
		}
		t.Fatal("no chain_valid series for leaf.pem")
		return "", 0
	}
	for range 2 {
		if reason, v := valid(); reason != "ok" || v != 1 {
			t.Fatalf("before expiry: reason %q value %v, want ok 1", reason, v)
		}
	}
	clock.Store(chain.Leaf.Cert.NotAfter.Add(time.Minute).UnixNano())
	if reason, v := valid(); reason != "expired" || v != 0 {
		t.Fatalf("after the leaf expired: reason %q value %v, want expired 0", reason, v)
	}
}

// TestDuplicatePlacesAreWrittenOnce feeds the same place and target twice,
// on a first scrape (places new to the cache) and on later ones (places
// found in it): each series must be written once, with the first
// finding's content, and a target's error must come from any of its
// findings.
func TestDuplicatePlacesAreWrittenOnce(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	other := testpki.NewChain(t, testpki.Options{})
	e := New(promslog.NewNopLogger(), inspect.NewInspector(nil), 0)
	labels := map[string]string{"team": "a"}
	place := func(target, key string) source.Place {
		return source.Place{Source: source.KindFile, Target: target, Key: key, Labels: labels}
	}
	findings := []source.Finding{
		{Place: place("/x.pem", ""), Certs: testpki.Certs(chain.Leaf)},
		{Place: place("/x.pem", ""), Certs: testpki.Certs(other.Leaf)}, // duplicate: ignored
		{Place: place("/ks.p12", "a"), Certs: testpki.Certs(chain.Leaf)},
		{Place: place("/ks.p12", "b"), Err: source.Errorf(source.ClassWrongPassword, "no")},
		{Place: place("/ks.p12", "a"), Certs: testpki.Certs(other.Leaf)}, // duplicate: ignored
	}
	for scrape := 1; scrape <= 3; scrape++ {
		p := e.places.begin(e)
		p.findings(findings)
		places := p.finish()
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if err := writePlaces(w, places, false); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		counts := map[string]int{}
		for _, line := range strings.Split(buf.String(), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				counts[line[:strings.LastIndexByte(line, ' ')]]++
			}
		}
		for series, n := range counts {
			if n != 1 {
				t.Errorf("scrape %d: %s written %d times", scrape, series, n)
			}
		}
		text := buf.String()
		if got := strings.Count(text, nameCertNotAfter+"{"); got != 2 {
			t.Errorf("scrape %d: %d not-after series, want 2 (one per distinct place)", scrape, got)
		}
		if fp := inspect.FactsOf(other.Leaf.Cert).FingerprintSHA256; strings.Contains(text, fp) {
			t.Errorf("scrape %d: a duplicate's certificate was written", scrape)
		}
		if fp := inspect.FactsOf(chain.Leaf.Cert).FingerprintSHA256; strings.Count(text, fp) != 2 {
			t.Errorf("scrape %d: the first finding's certificate is not in both places", scrape)
		}
		if !strings.Contains(text, `certwatch_target_error_info{class="wrong_password",source="file",target="/ks.p12",team="a"} 1`) {
			t.Errorf("scrape %d: the keystore target's error is missing:\n%s", scrape, text)
		}
		if got := strings.Count(text, nameTargetSuccess+"{"); got != 2 {
			t.Errorf("scrape %d: %d target success series, want 2", scrape, got)
		}
	}
}
