package main

// End-to-end tests: build the real binary, run it against real TLS servers
// and files generated here, and read everything back over HTTP.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
)

// buildBinary compiles certwatch once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "certwatch")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building certwatch: %v", err)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// tlsServer serves the given certificate until the test ends.
func tlsServer(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	return tlsServerWith(t, &tls.Config{Certificates: []tls.Certificate{cert}})
}

// silentServer accepts connections and never speaks.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String()
}

type exporterProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr *testtools.SyncBuffer
}

func startExporter(t *testing.T, bin, configPath string, extraArgs ...string) *exporterProcess {
	t.Helper()
	addr := freePort(t)
	args := append([]string{"--config.file=" + configPath, "--web.listen-address=" + addr}, extraArgs...)
	cmd := exec.Command(bin, args...)
	stderr := &testtools.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &exporterProcess{cmd: cmd, addr: addr, stderr: stderr}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("certwatch did not stop within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("certwatch log:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("certwatch did not start; log:\n%s", stderr.String())
	return nil
}

func (p *exporterProcess) get(t *testing.T, path string, header http.Header) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func (p *exporterProcess) scrape(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := p.get(t, path, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return parseMetrics(t, body)
}

func parseMetrics(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing metrics: %v\n%s", err, body)
	}
	return mfs
}

// find returns the samples of a metric whose labels include want.
func find(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, lp := range m.Label {
			labels[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.Label {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func one(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	got := find(mfs, name, want)
	if len(got) != 1 {
		t.Fatalf("%s%v: want exactly one series, got %d", name, want, len(got))
	}
	return got[0]
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()

	good := testpki.NewChain(t, testpki.Options{})
	expired := testpki.NewChain(t, testpki.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	goodAddr := tlsServer(t, testpki.TLSCertificate(good.Leaf, good.Intermediate))
	expiredAddr := tlsServer(t, testpki.TLSCertificate(expired.Leaf, expired.Intermediate))
	hungAddr := silentServer(t)
	refusedAddr := freePort(t)

	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, testpki.PEM(good.Root, expired.Root))
	writeFile(t, filepath.Join(dir, "certs", "service.pem"), append(testpki.PEM(good.Leaf, good.Intermediate), testpki.KeyPEM(t, good.Leaf.Key)...))
	writeFile(t, filepath.Join(dir, "certs", "junk.pem"), []byte("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"))
	goodPort := goodAddr[strings.LastIndex(goodAddr, ":")+1:]

	configPath := filepath.Join(dir, "config.yml")
	config := fmt.Sprintf(`
modules:
  internal:
    timeout: 3s
    tls:
      ca_file: ca.pem
      server_name: localhost
    probe_allow: ["localhost:%[1]s", "127.0.0.1/32:%[1]s", "[::1]:%[1]s"] # localhost is loopback: denied unless named
endpoints:
  - targets: ["%s", "%s", "%s"]
    module: internal
    labels:
      team: payments
  - targets: ["%s"]
    module: internal
files:
  - paths: ["certs/*.pem", "missing.pem"]
    ca_file: ca.pem
    labels:
      team: platform
`, goodPort, goodAddr, expiredAddr, refusedAddr, hungAddr)
	writeFile(t, configPath, []byte(config))

	p := startExporter(t, bin, configPath, "--web.enable-lifecycle") // the reload subtest POSTs /-/reload

	// A scrape bounded by Prometheus' timeout header answers in time even
	// though one endpoint never speaks.
	start := time.Now()
	code, body := p.get(t, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"2"}})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("scrape with a 2s timeout took %v", took)
	}
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	mfs := parseMetrics(t, body)

	// Endpoint: valid chain.
	ep := map[string]string{"source": "endpoint", "target": goodAddr}
	if v := one(t, mfs, "certwatch_target_success", ep).GetGauge().GetValue(); v != 1 {
		t.Errorf("good endpoint success = %v", v)
	}
	if m := one(t, mfs, "certwatch_chain_valid", ep); m.GetGauge().GetValue() != 1 || label(m, "reason") != "ok" || label(m, "team") != "payments" {
		t.Errorf("good endpoint chain: %v", m)
	}
	leafSeries := one(t, mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": "endpoint", "target": goodAddr, "index": "0"})
	if got, want := leafSeries.GetGauge().GetValue(), float64(good.Leaf.Cert.NotAfter.Unix()); got != want {
		t.Errorf("leaf not_after = %v, want %v", got, want)
	}
	if label(leafSeries, "subject_cn") != "localhost" || label(leafSeries, "issuer_cn") != "certwatch test intermediate" {
		t.Errorf("leaf labels: %v", leafSeries)
	}
	one(t, mfs, "certwatch_cert_not_before_timestamp_seconds", map[string]string{"target": goodAddr, "index": "1"})
	info := one(t, mfs, "certwatch_cert_info", map[string]string{"target": goodAddr, "index": "0"})
	if label(info, "dns_names") != "localhost" || label(info, "ip_addresses") != "127.0.0.1" || label(info, "key_algorithm") != "ECDSA" || label(info, "is_ca") != "false" || len(label(info, "fingerprint_sha256")) != 64 {
		t.Errorf("cert_info labels: %v", info)
	}
	// The chain breaks when the leaf expires (it is the earliest in the chain).
	if got := one(t, mfs, "certwatch_chain_not_after_timestamp_seconds", ep).GetGauge().GetValue(); got != float64(good.Leaf.Cert.NotAfter.Unix()) {
		t.Errorf("chain not_after = %v", got)
	}
	if m := one(t, mfs, "certwatch_tls_version_info", ep); label(m, "version") != "TLS 1.3" || label(m, "cipher") == "" {
		t.Errorf("tls version: %v", m)
	}
	if v := one(t, mfs, "certwatch_tls_handshake_duration_seconds", ep).GetGauge().GetValue(); v <= 0 || v > 3 {
		t.Errorf("handshake duration %v", v)
	}

	// Endpoint: expired chain, refused port, hung server.
	if m := one(t, mfs, "certwatch_chain_valid", map[string]string{"target": expiredAddr}); m.GetGauge().GetValue() != 0 || label(m, "reason") != "expired" {
		t.Errorf("expired endpoint chain: %v", m)
	}
	for addr, class := range map[string]string{refusedAddr: "refused", hungAddr: "timeout"} {
		if v := one(t, mfs, "certwatch_target_success", map[string]string{"target": addr}).GetGauge().GetValue(); v != 0 {
			t.Errorf("%s success = %v", class, v)
		}
		one(t, mfs, "certwatch_target_error_info", map[string]string{"target": addr, "class": class})
	}

	// Files: a valid leaf+key bundle, a corrupt one, a missing one.
	service := filepath.Join(dir, "certs", "service.pem")
	if m := one(t, mfs, "certwatch_chain_valid", map[string]string{"source": "file", "target": service}); label(m, "reason") != "ok" || label(m, "team") != "platform" {
		t.Errorf("service.pem chain: %v", m)
	}
	if n := len(find(mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"target": service})); n != 2 {
		t.Errorf("service.pem: %d certificates reported, want 2", n)
	}
	one(t, mfs, "certwatch_target_error_info", map[string]string{"target": filepath.Join(dir, "certs", "junk.pem"), "class": "parse"})
	one(t, mfs, "certwatch_target_error_info", map[string]string{"target": filepath.Join(dir, "missing.pem"), "class": "not_found"})

	// Self-health.
	for _, c := range []string{"endpoint", "file"} {
		one(t, mfs, "certwatch_collector_duration_seconds", map[string]string{"collector": c})
		one(t, mfs, "certwatch_collector_success", map[string]string{"collector": c})
	}
	if v := one(t, mfs, "certwatch_config_last_reload_successful", nil).GetGauge().GetValue(); v != 1 {
		t.Errorf("reload successful = %v", v)
	}
	one(t, mfs, "certwatch_config_last_reload_success_timestamp_seconds", nil)
	one(t, mfs, "certwatch_build_info", nil)

	// No secret ever leaves: the key in service.pem is not in the output.
	keyPEM := string(testpki.KeyPEM(t, good.Leaf.Key))
	keyBody := strings.Split(keyPEM, "\n")[1]
	if strings.Contains(string(body), keyBody) || strings.Contains(p.stderr.String(), keyBody) {
		t.Error("private key material appears in the output or the log")
	}

	t.Run("probe", func(t *testing.T) {
		target := "localhost:" + goodPort
		mfs := p.scrape(t, "/probe?module=internal&target="+target)
		if m := one(t, mfs, "certwatch_chain_valid", map[string]string{"target": target}); label(m, "reason") != "ok" {
			t.Errorf("probe chain: %v", m)
		}
		one(t, mfs, "certwatch_target_success", map[string]string{"target": target})
		if len(find(mfs, "certwatch_cert_not_after_timestamp_seconds", nil)) != 2 {
			t.Error("probe should report exactly the endpoint's two certificates")
		}
		// Configured targets are allowed too; anything else is refused.
		if code, _ := p.get(t, "/probe?module=internal&target="+expiredAddr, nil); code != http.StatusOK {
			t.Errorf("configured target refused: %d", code)
		}
		for _, q := range []string{"module=internal&target=example.com:443", "module=nope&target=" + target, "module=internal"} {
			if code, _ := p.get(t, "/probe?"+q, nil); code == http.StatusOK {
				t.Errorf("/probe?%s was allowed", q)
			}
		}
	})

	t.Run("promtool", func(t *testing.T) {
		promtool := testtools.Find(t, "promtool")
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("reload", func(t *testing.T) {
		post := func() int {
			resp, err := http.Post("http://"+p.addr+"/-/reload", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		writeFile(t, configPath, []byte("endpoints:\n  - targets: [\"no-port\"]\n"))
		if code := post(); code != http.StatusInternalServerError {
			t.Errorf("broken config reload answered %d", code)
		}
		mfs := p.scrape(t, "/metrics")
		if v := one(t, mfs, "certwatch_config_last_reload_successful", nil).GetGauge().GetValue(); v != 0 {
			t.Errorf("reload successful = %v after a broken config", v)
		}
		// The old configuration still runs.
		one(t, mfs, "certwatch_chain_valid", map[string]string{"target": goodAddr})

		// A good config by SIGHUP: only the good endpoint remains.
		writeFile(t, configPath, []byte(fmt.Sprintf("modules:\n  internal:\n    tls:\n      ca_file: ca.pem\nendpoints:\n  - targets: [\"%s\"]\n    module: internal\n", goodAddr)))
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mfs = p.scrape(t, "/metrics")
			if one(t, mfs, "certwatch_config_last_reload_successful", nil).GetGauge().GetValue() == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("SIGHUP did not reload the fixed config")
			}
			time.Sleep(100 * time.Millisecond)
		}
		mfs = p.scrape(t, "/metrics") // the scrape above may have begun before the reload
		if n := len(find(mfs, "certwatch_target_success", nil)); n != 1 {
			t.Errorf("%d targets after reload, want 1", n)
		}
		if code := post(); code != http.StatusOK {
			t.Errorf("good config reload answered %d", code)
		}
	})
}

func TestConfigCheck(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "--config.check", "--config.file=config.example.yml").CombinedOutput()
	if err != nil {
		t.Errorf("example config: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	writeFile(t, bad, []byte("modules:\n  m:\n    timeout: soon\n"))
	out, err = exec.Command(bin, "--config.check", "--config.file="+bad).CombinedOutput()
	if err == nil {
		t.Fatal("an invalid config passed --config.check")
	}
	if !strings.Contains(string(out), "line 3") || !strings.Contains(string(out), "soon") {
		t.Errorf("--config.check output does not name the line and value: %s", out)
	}
}

// TestTrustStoreMatchesOpenSSL cross-checks certwatch against an independent
// tool: for every certificate file in the system trust store, the not-after
// certwatch reports equals what `openssl x509 -enddate` prints.
func TestTrustStoreMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is needed for this cross-check (apt-get install openssl)")
	}
	files, _ := filepath.Glob("/etc/ssl/certs/*.pem")
	if len(files) < 10 {
		t.Fatalf("only %d certificates in /etc/ssl/certs; is ca-certificates installed?", len(files))
	}
	bin := buildBinary(t)
	configPath := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, configPath, []byte("files:\n  - paths: [\"/etc/ssl/certs/*.pem\"]\n"))
	p := startExporter(t, bin, configPath)
	mfs := p.scrape(t, "/metrics")

	checked := 0
	for _, f := range files {
		out, err := exec.Command(openssl, "x509", "-enddate", "-noout", "-in", f).Output()
		if err != nil {
			t.Errorf("openssl on %s: %v", f, err)
			continue
		}
		date := strings.TrimPrefix(strings.TrimSpace(string(out)), "notAfter=")
		want, err := time.Parse("Jan _2 15:04:05 2006 MST", date)
		if err != nil {
			t.Errorf("%s: parsing openssl date %q: %v", f, date, err)
			continue
		}
		series := find(mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"target": f, "index": "0"})
		if len(series) != 1 {
			t.Errorf("%s: %d series", f, len(series))
			continue
		}
		if got := series[0].GetGauge().GetValue(); got != float64(want.Unix()) {
			t.Errorf("%s: certwatch says %v, openssl says %v (%s)", f, time.Unix(int64(got), 0).UTC(), want, date)
		}
		checked++
	}
	t.Logf("%d trust store certificates agree with openssl", checked)
}

// TestShardsTogetherEqualOneInstance: two replicas with --shard.total=2
// report, together, exactly the series of one unsharded instance, and no
// series twice.
func TestShardsTogetherEqualOneInstance(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ca := testpki.New(t, nil, testpki.Options{CommonName: "shard root", IsCA: true})
	for i := range 40 {
		leaf := testpki.New(t, ca, testpki.Options{CommonName: fmt.Sprintf("svc%d", i)})
		writeFile(t, filepath.Join(dir, "certs", fmt.Sprintf("svc%02d.pem", i)), testpki.PEM(leaf, ca))
	}
	var targets []string
	for range 10 {
		chain := testpki.NewChain(t, testpki.Options{})
		targets = append(targets, fmt.Sprintf("%q", tlsServer(t, testpki.TLSCertificate(chain.Leaf, chain.Intermediate))))
	}
	configPath := filepath.Join(dir, "config.yml")
	writeFile(t, configPath, []byte(fmt.Sprintf("endpoints:\n  - targets: [%s]\nfiles:\n  - paths: [\"certs/*.pem\"]\n", strings.Join(targets, ", "))))

	series := func(mfs map[string]*dto.MetricFamily) map[string]bool {
		out := map[string]bool{}
		for name, mf := range mfs {
			if !strings.HasPrefix(name, "certwatch_cert_") && !strings.HasPrefix(name, "certwatch_chain_") &&
				!strings.HasPrefix(name, "certwatch_target_") && !strings.HasPrefix(name, "certwatch_tls_version") {
				continue
			}
			for _, m := range mf.Metric {
				var b strings.Builder
				b.WriteString(name)
				for _, lp := range m.Label {
					fmt.Fprintf(&b, ",%s=%q", lp.GetName(), lp.GetValue())
				}
				out[b.String()] = true
			}
		}
		return out
	}
	whole := series(startExporter(t, bin, configPath).scrape(t, "/metrics"))
	union := map[string]bool{}
	for i := range 2 {
		part := series(startExporter(t, bin, configPath, fmt.Sprintf("--shard.index=%d", i), "--shard.total=2").scrape(t, "/metrics"))
		if len(part) == 0 || len(part) == len(whole) {
			t.Errorf("shard %d reports %d of %d series", i, len(part), len(whole))
		}
		for s := range part {
			if union[s] {
				t.Errorf("series reported by both shards: %s", s)
			}
			union[s] = true
		}
	}
	if len(whole) < 200 {
		t.Fatalf("only %d series from the unsharded instance", len(whole))
	}
	for s := range whole {
		if !union[s] {
			t.Errorf("missing from the shards: %s", s)
		}
	}
	for s := range union {
		if !whole[s] {
			t.Errorf("only in the shards: %s", s)
		}
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	bin := buildBinary(t)
	configPath := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, configPath, []byte("files:\n  - paths: [\"/etc/ssl/certs/*.pem\"]\n"))
	if code, _ := startExporter(t, bin, configPath).get(t, "/debug/pprof/", nil); code == http.StatusOK {
		t.Error("/debug/pprof/ is served without --web.enable-pprof")
	}
	if code, body := startExporter(t, bin, configPath, "--web.enable-pprof").get(t, "/debug/pprof/", nil); code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("/debug/pprof/ with --web.enable-pprof: %d", code)
	}
}

// TestKubernetesWithoutClusterFailsAtStart: a kubernetes section certwatch
// cannot act on is an error at start, not a silently missing source.
func TestKubernetesWithoutClusterFailsAtStart(t *testing.T) {
	bin := buildBinary(t)
	configPath := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, configPath, []byte("kubernetes:\n  secrets: {}\n"))
	cmd := exec.Command(bin, "--config.file="+configPath, "--kubeconfig=/nonexistent/kubeconfig", "--web.listen-address="+freePort(t))
	done := make(chan error, 1)
	var out testtools.SyncBuffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(out.String(), "kubeconfig") {
			t.Errorf("exit %v, log:\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("certwatch kept running without a usable cluster configuration")
	}
}

// TestProbeRefusals: /probe refuses with 403, before any connection, a
// target no rule admits ("not allowed") and a name that resolves to a
// loopback address no rule names ("address denied"); the body says which,
// and nothing about the port.
func TestProbeRefusals(t *testing.T) {
	bin := buildBinary(t)
	chain := testpki.NewChain(t, testpki.Options{})
	addr := tlsServer(t, testpki.TLSCertificate(chain.Leaf, chain.Intermediate))
	port := addr[strings.LastIndex(addr, ":")+1:]
	configPath := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, configPath, []byte(fmt.Sprintf(`modules:
  names: {probe_allow: ["localhost:*"]}
  named: {probe_allow: ["localhost:*", "127.0.0.1/32:%s", "[::1]:%s"]}
`, port, port)))
	p := startExporter(t, bin, configPath)
	for _, tc := range []struct {
		query, body string
		code        int
	}{
		{"module=names&target=localhost:" + port, "address denied: ", http.StatusForbidden},
		{"module=names&target=127.0.0.1:" + port, "not allowed: ", http.StatusForbidden},
		{"module=names&target=example.com:443", "not allowed: ", http.StatusForbidden},
		{"module=named&target=localhost:" + port, "certwatch_target_success", http.StatusOK},
	} {
		code, body := p.get(t, "/probe?"+tc.query, nil)
		if code != tc.code || !strings.HasPrefix(string(body), tc.body) && !strings.Contains(string(body), tc.body) {
			t.Errorf("/probe?%s: %d %q, want %d and %q", tc.query, code, body, tc.code, tc.body)
		}
		if code == http.StatusForbidden && (strings.Contains(string(body), "connect") || strings.Contains(string(body), "refused")) {
			t.Errorf("/probe?%s: the refusal talks about a connection: %q", tc.query, body)
		}
	}
}

// TestReloadNeedsLifecycleFlag: POST /-/reload is refused with 403 naming
// --web.enable-lifecycle unless certwatch runs with it; SIGHUP reloads
// either way.
func TestReloadNeedsLifecycleFlag(t *testing.T) {
	bin := buildBinary(t)
	configPath := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, configPath, []byte("endpoints:\n  - targets: [\"127.0.0.1:1\"]\n"))
	post := func(p *exporterProcess) (int, string) {
		resp, err := http.Post("http://"+p.addr+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	targets := func(p *exporterProcess) int {
		return len(find(p.scrape(t, "/metrics"), "certwatch_target_success", map[string]string{"source": "endpoint"}))
	}

	p := startExporter(t, bin, configPath)
	writeFile(t, configPath, []byte("endpoints:\n  - targets: [\"127.0.0.1:1\", \"127.0.0.2:1\"]\n"))
	if code, body := post(p); code != http.StatusForbidden || !strings.Contains(body, "--web.enable-lifecycle") {
		t.Errorf("POST /-/reload without the flag: %d %q, want 403 naming --web.enable-lifecycle", code, body)
	}
	if n := targets(p); n != 1 {
		t.Errorf("%d endpoints after a refused reload, want 1", n)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); targets(p) != 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload without the flag")
		}
	}

	p = startExporter(t, bin, configPath, "--web.enable-lifecycle")
	writeFile(t, configPath, []byte("endpoints:\n  - targets: [\"127.0.0.1:1\"]\n"))
	if code, body := post(p); code != http.StatusOK {
		t.Errorf("POST /-/reload with the flag: %d %q", code, body)
	}
	if n := targets(p); n != 1 {
		t.Errorf("%d endpoints after the reload, want 1", n)
	}
}
