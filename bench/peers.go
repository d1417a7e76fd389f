//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Figure "peers": certwatch beside the exporters its users run today, on the
// same generated files, the same TLS farm and the same Secrets on a real
// kube-apiserver (peers_kube.go), each a real process started
// fresh every round, in turn (A B C A B C), its CPU and memory read from
// /proc as for certwatch in the endpoints figure.
//
// Peers are pinned and built once into the tool cache (peers.sh does the
// same from a shell); see peerSpec for the versions.

// peerSpec is one pinned peer exporter.
type peerSpec struct {
	name, version, commit string
}

var (
	peerBlackbox = peerSpec{"blackbox_exporter", "v0.27.0", ""}
	peerX509     = peerSpec{"x509-certificate-exporter", "v4.2.0", "8bab222d43bad953d1dbab2bd7f6fd77ae70e1cb"}
	peerSSL      = peerSpec{"ssl_exporter", "v2.4.3", "3f34a7b234ce861a5bc41d726a90d7be5e808cd8"}
)

func runPeers(args []string) {
	fs := flag.NewFlagSet("peers", flag.ExitOnError)
	var c common
	c.register(fs)
	files := fs.String("files", "1000,10000", "numbers of files")
	files100k := fs.Bool("files-100k", false, "also measure 100,000 files")
	endpoints := fs.String("endpoints", "100", "numbers of TLS endpoints")
	endpoints1k := fs.Bool("endpoints-1k", false, "also measure 1,000 endpoints")
	scrapes := fs.Int("scrapes", 5, "warm scrapes per round (CPU per scrape is their mean)")
	probeConc := fs.Int("probe-concurrency", 50, "concurrent /probe requests when sweeping the endpoints")
	bin := fs.String("certwatch", "", "certwatch binary (built from this checkout when empty)")
	x509Bin := fs.String("x509", "", "x509-certificate-exporter binary (built from -x509-src into the tool cache when empty)")
	x509Src := fs.String("x509-src", "", "source checkout of enix/x509-certificate-exporter "+peerX509.version)
	sslBin := fs.String("ssl", "", "ssl_exporter binary (built from -ssl-src into the tool cache when empty)")
	sslSrc := fs.String("ssl-src", "", "source checkout of ribbybibby/ssl_exporter "+peerSSL.version)
	fs.DurationVar(&coldLimit, "cold-limit", 10*time.Minute, "longest wait for an exporter's first complete answer; one that misses it is left out of the case")
	bbBin := fs.String("blackbox", "", "blackbox_exporter binary (built from the module proxy into the tool cache when empty)")
	kubeSecrets := fs.Int("kube-secrets", 10000, "kubernetes.io/tls Secrets of the Kubernetes case (0 leaves the case out; so does CERTWATCH_SKIP_KUBE_TESTS=1)")
	kubeWorkers := fs.Int("kube-create-concurrency", 16, "concurrent create requests when making the Secrets")
	parseFlags(fs, args)

	fileSizes := parseSizes(*files)
	if *files100k && !slices.Contains(fileSizes, 100000) {
		fileSizes = append(fileSizes, 100000)
	}
	epSizes := parseSizes(*endpoints)
	if *endpoints1k && !slices.Contains(epSizes, 1000) {
		epSizes = append(epSizes, 1000)
	}

	work, err := os.MkdirTemp("", "certwatch-bench-peers-")
	if err != nil {
		fatalf("%v", err)
	}
	atExit(func() { os.RemoveAll(work) })
	if *bin == "" {
		*bin = buildCertwatch(work)
	}
	fig := newFigure("peers", c.runs)
	fig.comment("each exporter a real process on 127.0.0.1, started fresh every round, the exporters in turn (A B C A B C); " +
		"CPU from /proc/PID/task/*/schedstat, RSS is VmRSS; in the rows below \"floor\" is certwatch, and the ratio is the median of the per-round ratios peer/certwatch " +
		"(above 1: the peer takes more)")
	fig.comment("files: only certwatch verifies chains (a ca_file with both roots; every chain ok); the peers parse and report each certificate. " +
		"endpoints: all three verify the handshake against the same roots (ssl_exporter tcp and blackbox_exporter tcp+tls with tls_config.ca_file)")
	paths := map[string]string{}
	for _, p := range []struct {
		spec     peerSpec
		bin, src string
	}{{peerX509, *x509Bin, *x509Src}, {peerSSL, *sslBin, *sslSrc}, {peerBlackbox, *bbBin, ""}} {
		path, err := peerBinary(p.spec, p.bin, p.src)
		if err != nil {
			fig.comment("%s %s left out: %v", p.spec.name, p.spec.version, err)
			continue
		}
		paths[p.spec.name] = path
		fig.comment("%s %s%s: %s", p.spec.name, p.spec.version, commitNote(p.spec), path)
	}

	if len(fileSizes) > 0 {
		tb := newTB()
		t := openTree(tb, c.cache)
		t.ensure(tb, slices.Max(fileSizes))
		for _, n := range fileSizes {
			peersFiles(fig, &c, t, n, *scrapes, *bin, paths, work)
		}
	}
	if len(epSizes) > 0 {
		peersEndpoints(fig, &c, epSizes, *scrapes, *probeConc, *bin, paths, work)
	}
	if *kubeSecrets > 0 {
		peersKube(fig, &c, *kubeSecrets, *scrapes, *kubeWorkers, *bin, paths)
	}
	fig.save(c.results)
	printPeersTable(fig)
}

// coldLimit is how long an exporter may take to its first complete answer.
var coldLimit = 10 * time.Minute

func commitNote(p peerSpec) string {
	if p.commit == "" {
		return ""
	}
	return " (commit " + p.commit[:12] + ")"
}

// peerToolsDir is where a pinned peer is built once:
// ~/.cache/certwatch/tools/peers-<name>-<version>/ (as scripts/peers.sh).
func peerToolsDir(p peerSpec) string {
	base := os.Getenv("CERTWATCH_TOOLS")
	if base == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		base = filepath.Join(cache, "certwatch", "tools")
	}
	return filepath.Join(base, "peers-"+p.name+"-"+p.version)
}

// peerBinary returns the peer's binary: the one given, the one already in
// the tool cache, or one built now (from src for the two peers that are
// built from a checkout, from the module proxy for blackbox_exporter).
func peerBinary(p peerSpec, given, src string) (string, error) {
	if given != "" {
		return given, nil
	}
	dir := peerToolsDir(p)
	out := filepath.Join(dir, p.name)
	if fi, err := os.Stat(out); err == nil && fi.Mode()&0o111 != 0 {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.tmp.%d", out, os.Getpid())
	defer os.Remove(tmp)
	env := append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	var build *exec.Cmd
	switch p {
	case peerBlackbox:
		// "go install ...@v0.27.0" also looks the module's versions up for
		// deprecation notices, which a proxy serving only pinned versions
		// refuses: download the pinned module and build in its folder.
		dl := exec.Command("go", "mod", "download", "-json", "github.com/prometheus/blackbox_exporter@"+p.version)
		dl.Env = append(env, "GOFLAGS=")
		dl.Stderr = os.Stderr
		data, err := dl.Output()
		if err != nil {
			return "", fmt.Errorf("downloading github.com/prometheus/blackbox_exporter@%s: %w", p.version, err)
		}
		var mod struct{ Dir string }
		if err := json.Unmarshal(data, &mod); err != nil || mod.Dir == "" {
			return "", fmt.Errorf("go mod download said %q", data)
		}
		build = exec.Command("go", "build", "-trimpath", "-o", tmp, ".")
		build.Dir = mod.Dir
		build.Env = append(env, "GOFLAGS=-mod=readonly")
	default:
		if src == "" {
			return "", fmt.Errorf("no binary in %s and no source checkout given (-%s-src; see bench/README.md)", dir, map[string]string{peerX509.name: "x509", peerSSL.name: "ssl"}[p.name])
		}
		pkg := "."
		if p == peerX509 {
			pkg = "./cmd/x509-certificate-exporter"
		}
		build = exec.Command("go", "build", "-trimpath", "-o", tmp, pkg)
		build.Dir = src
		build.Env = append(env, "GOFLAGS=-mod=mod")
	}
	var stderr bytes.Buffer
	build.Stderr = io.MultiWriter(os.Stderr, &stderr)
	start := time.Now()
	logf("building %s %s into %s", p.name, p.version, dir)
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build in %s: %w: %s", build.Dir, err, lastLines(stderr.String(), 5))
	}
	logf("built %s in %.0f s", p.name, time.Since(start).Seconds())
	return out, os.Rename(tmp, out)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// peerProcess is one exporter under test, started fresh.
type peerProcess struct {
	*child
	name    string
	addr    string
	started time.Time
	listen  time.Duration // from start until the port accepted connections
	client  *http.Client
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPeer starts bin with args built around a loopback address; the clock
// of its cold start begins here.
func startPeer(name, bin string, args func(addr string) []string) *peerProcess {
	addr := freeAddr()
	p := &peerProcess{name: name, addr: addr,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}, Timeout: 5 * time.Minute}}
	p.started = time.Now()
	p.child = startChild(bin, args(addr)...)
	return p
}

// waitListening polls until the port accepts connections.
func (p *peerProcess) waitListening() {
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			p.listen = time.Since(p.started)
			conn.Close()
			return
		}
		select {
		case <-p.done:
			fatalf("%s exited: %s", p.name, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			fatalf("%s did not listen on %s: %s", p.name, p.addr, p.stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (p *peerProcess) get(path string) (int, []byte, time.Duration) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+path, nil)
	req.Header.Set("Accept", acceptText)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "120")
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		fatalf("%s: GET %s: %v; its log:\n%s", p.name, path, err, p.stderr.String())
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		fatalf("%s: GET %s: %v", p.name, path, err)
	}
	return resp.StatusCode, body, time.Since(start)
}

// peerAnswer counts the series of an answer: all of them, and the
// exporter's own (without the go_, process_ and promhttp_ series every
// client_golang exporter adds), and per metric name.
type peerAnswer struct {
	total, own int
	byName     map[string]int
	lines      []string
}

// countedAnswer is the answer of an exporter whose /metrics is complete
// once it holds want series of metric, one per certificate; more is a
// mistake in the case.
func countedAnswer(who, metric string, want int) func(*peerProcess) (bool, peerAnswer, time.Duration) {
	return func(p *peerProcess) (bool, peerAnswer, time.Duration) {
		code, body, wall := p.get("/metrics")
		e := countSeries(body)
		if code != http.StatusOK {
			return false, e, wall
		}
		got := e.byName[metric]
		if got > want {
			fatalf("%s: %d %s series, more than the %d certificates", who, got, metric, want)
		}
		return got == want, e, wall
	}
}

func countSeries(body []byte) peerAnswer {
	e := peerAnswer{byName: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		e.total++
		e.byName[name]++
		if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			e.own++
		}
		e.lines = append(e.lines, line)
	}
	return e
}

// valueOf returns the value of the first series starting with prefix.
func (e peerAnswer) valueOf(prefix string) (float64, bool) {
	for _, l := range e.lines {
		if strings.HasPrefix(l, prefix) {
			v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// peerRun is what one round of one exporter measured.
type peerRun struct {
	cold      float64 // ms (files) or s (endpoints), start to the first complete answer
	warm      float64 // median wall time of a warm scrape (files, ms) or sweep (endpoints, s)
	cpu       float64 // CPU per warm scrape (ms) or per probe (µs)
	rss       float64 // MiB, VmRSS after the warm scrapes
	listen    float64 // ms, start until the port accepted connections
	series    int     // the exporter's own series in a complete answer
	extraCold float64 // certwatch only: /metrics first answer (endpoints)
	extraCPU  float64 // certwatch only: CPU per probe through /metrics (endpoints)
	// Kubernetes (peers_kube.go)
	rssReady  float64 // MiB, VmRSS at the first complete answer
	peak      float64 // MiB, VmHWM after the warm scrapes
	apiStart  float64 // API requests from process start to the first complete answer
	apiScrape float64 // API requests per warm scrape
}

// peerCase is one exporter in one case: how to start it and what its
// complete answer is.
type peerCase struct {
	name  string
	start func() *peerProcess
	// answer requests the exporter's answer once and says whether it is
	// complete (every file or endpoint present); it fails on a wrong one.
	answer func(p *peerProcess) (complete bool, e peerAnswer, wall time.Duration)
	// readyPath, when set, is polled (200) before asking for the answer,
	// for exporters that load in the background.
	readyPath string
}

// coldStart starts the exporter and returns it with the time from process
// start until its first complete answer; ok is false when none came within
// limit (the process is stopped then).
func (pc peerCase) coldStart(limit time.Duration) (p *peerProcess, cold time.Duration, e peerAnswer, ok bool) {
	p = pc.start()
	p.waitListening()
	deadline := p.started.Add(limit)
	for {
		if pc.readyPath != "" {
			for {
				code, _, _ := p.get(pc.readyPath)
				if code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					logf("%s: %s still %d after %v", pc.name, pc.readyPath, code, limit)
					p.stop()
					return p, 0, e, false
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		complete, e, _ := pc.answer(p)
		if complete {
			return p, time.Since(p.started), e, true
		}
		if time.Now().After(deadline) {
			logf("%s: no complete answer after %v (%d series)", pc.name, limit, e.own)
			p.stop()
			return p, 0, e, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peerTimeouts records the exporters that gave no complete answer within
// the cold-start limit; they are left out of later rounds of that case.
type peerTimeouts map[string]time.Duration

// ---- files ----

func peersFiles(fig *Figure, c *common, t *tree, n, scrapes int, bin string, peers map[string]string, work string) {
	cs := fmt.Sprintf("files N=%d", n)
	certs := certsInFirst(n)
	dirs := t.dirs(n)
	logf("peers: %d files (%d certificates), %d rounds", n, certs, c.runs)

	cwCfg := filepath.Join(work, fmt.Sprintf("certwatch-files-%d.yml", n))
	var b strings.Builder
	fmt.Fprintf(&b, "files:\n  - ca_file: %q\n    paths:\n", t.rootsFile())
	for _, d := range dirs {
		fmt.Fprintf(&b, "      - %q\n", d)
	}
	writeFile(cwCfg, b.String())

	cases := []peerCase{{
		name: "certwatch",
		start: func() *peerProcess {
			return startPeer("certwatch", bin, func(addr string) []string {
				return []string{"--config.file=" + cwCfg, "--web.listen-address=" + addr, "--log.level=warn"}
			})
		},
		answer: func(p *peerProcess) (bool, peerAnswer, time.Duration) {
			code, body, wall := p.get("/metrics")
			e := countSeries(body)
			if code != http.StatusOK {
				return false, e, wall
			}
			if got := e.byName["certwatch_cert_info"]; got != certs {
				fatalf("certwatch: %d certwatch_cert_info series, expected %d", got, certs)
			}
			return true, e, wall
		},
	}}
	if x := peers[peerX509.name]; x != "" {
		cfg := filepath.Join(work, fmt.Sprintf("x509-files-%d.yaml", n))
		cases = append(cases, peerCase{
			name: peerX509.name,
			start: func() *peerProcess {
				return startPeer(peerX509.name, x, func(addr string) []string {
					var b strings.Builder
					fmt.Fprintf(&b, "server:\n  listen: %q\nlog:\n  level: warn\nsources:\n  - kind: file\n    name: bench\n    formats: [pem]\n    paths:\n", addr)
					for _, d := range dirs {
						fmt.Fprintf(&b, "      - %q\n", filepath.Join(d, "*.pem"))
					}
					writeFile(cfg, b.String())
					return []string{"--config=" + cfg}
				})
			},
			readyPath: "/readyz",
			answer:    countedAnswer("x509-certificate-exporter", "x509_cert_not_after", certs),
		})
	}
	if s := peers[peerSSL.name]; s != "" {
		var names []string
		for _, d := range dirs {
			names = append(names, filepath.Base(d))
		}
		// One probe for the whole tree: a doublestar glob naming exactly the
		// N files' folders.
		glob := filepath.Join(t.dir, "{"+strings.Join(names, ",")+"}", "*.pem")
		path := "/probe?module=file&target=" + url.QueryEscape(glob)
		cases = append(cases, peerCase{
			name: peerSSL.name,
			start: func() *peerProcess {
				return startPeer(peerSSL.name, s, func(addr string) []string {
					return []string{"--web.listen-address=" + addr, "--log.level=warn"}
				})
			},
			answer: func(p *peerProcess) (bool, peerAnswer, time.Duration) {
				code, body, wall := p.get(path)
				e := countSeries(body)
				if code != http.StatusOK {
					fatalf("ssl_exporter: /probe answered %d: %s", code, body)
				}
				if v, _ := e.valueOf("ssl_probe_success "); v != 1 {
					fatalf("ssl_exporter: the file probe failed: %s", p.stderr.String())
				}
				if got := e.byName["ssl_file_cert_not_after"]; got != certs {
					fatalf("ssl_exporter: %d ssl_file_cert_not_after series, expected %d", got, certs)
				}
				return true, e, wall
			},
		})
	}
	if len(cases) == 1 {
		fig.comment("%s: no peer to compare with", cs)
		return
	}

	runs, timeouts := peerRounds(c.runs, cases, coldLimit, func(r int, pc peerCase, p *peerProcess, cold time.Duration, e peerAnswer) peerRun {
		pc.answer(p) // one warm-up answer: caches filled, as after any first scrape
		var walls []float64
		cpu0 := procCPU(p.pid())
		for range scrapes {
			ok, _, wall := pc.answer(p)
			if !ok {
				fatalf("%s: a warm answer was incomplete", pc.name)
			}
			walls = append(walls, ms(wall))
		}
		cpu := procCPU(p.pid()) - cpu0
		run := peerRun{cold: ms(cold), warm: median(walls), cpu: ms(cpu) / float64(scrapes),
			rss: float64(procStatus(p.pid(), "VmRSS")) / (1 << 20), series: e.own, listen: ms(p.listen)}
		p.stop()
		logf("  %s round %d %s: cold %.0f ms, warm %.1f ms, %.1f ms CPU/scrape, RSS %.0f MiB, %d series",
			cs, r+1, pc.name, run.cold, run.warm, run.cpu, run.rss, run.series)
		return run
	})
	addPeerRows(fig, cs, n, "file", cases, runs, timeouts, false)
}

// ---- endpoints ----

func peersEndpoints(fig *Figure, c *common, ks []int, scrapes, conc int, bin string, peers map[string]string, work string) {
	largest := slices.Max(ks)
	farmDir := filepath.Join(work, "farm")
	_ = os.MkdirAll(farmDir, 0o755)
	logf("peers: starting a farm of %d TLS servers", largest)
	farm := startChild(self(), "farm", "-k", strconv.Itoa(largest), "-dir", farmDir, "-cache", c.cache)
	if line := farm.readLine(5 * time.Minute); line != "READY" {
		fatalf("farm said %q", line)
	}
	defer farm.stop()
	targets := readLines(filepath.Join(farmDir, "targets.txt"))
	roots := filepath.Join(farmDir, "roots.pem")

	sslCfg := filepath.Join(work, "ssl.yml")
	writeFile(sslCfg, fmt.Sprintf("modules:\n  tcp:\n    prober: tcp\n    timeout: 10s\n    tls_config:\n      ca_file: %q\n", roots))
	bbCfg := filepath.Join(work, "blackbox.yml")
	writeFile(bbCfg, fmt.Sprintf("modules:\n  tls:\n    prober: tcp\n    timeout: 10s\n    tcp:\n      preferred_ip_protocol: ip4\n      tls: true\n      tls_config:\n        ca_file: %q\n", roots))

	for _, k := range ks {
		cs := fmt.Sprintf("endpoints K=%d", k)
		ts := targets[:k]
		cwCfg := filepath.Join(work, fmt.Sprintf("certwatch-endpoints-%d.yml", k))
		var b strings.Builder
		fmt.Fprintf(&b, "modules:\n  default:\n    tls:\n      ca_file: %q\nendpoints:\n  - targets:\n", roots)
		for _, t := range ts {
			fmt.Fprintf(&b, "      - %q\n", t)
		}
		writeFile(cwCfg, b.String())
		sweeps := max(scrapes, (1000+k-1)/k) // at least 1,000 probes per sample

		probeCase := func(name, bin string, args func(addr string) []string, path func(target string) string, ok func(e peerAnswer) bool) peerCase {
			return peerCase{
				name:  name,
				start: func() *peerProcess { return startPeer(name, bin, args) },
				answer: func(p *peerProcess) (bool, peerAnswer, time.Duration) {
					start := time.Now()
					var first peerAnswer
					var once sync.Once
					var failed atomic.Int64
					parallel(len(ts), conc, func(_, i int) {
						code, body, _ := p.get(path(ts[i]))
						e := countSeries(body)
						if code != http.StatusOK || !ok(e) {
							if failed.Add(1) == 1 {
								logf("%s: probe of %s failed (%d): %s", name, ts[i], code, lastLines(string(body), 20))
							}
						}
						once.Do(func() { first = e })
					})
					if failed.Load() > 0 {
						fatalf("%s: %d of %d probes failed; its log:\n%s", name, failed.Load(), len(ts), lastLines(p.stderr.String(), 20))
					}
					return true, first, time.Since(start)
				},
			}
		}
		cwArgs := func(addr string) []string {
			return []string{"--config.file=" + cwCfg, "--web.listen-address=" + addr, "--log.level=warn"}
		}
		cases := []peerCase{probeCase("certwatch", bin, cwArgs,
			func(t string) string { return "/probe?module=default&target=" + url.QueryEscape(t) },
			func(e peerAnswer) bool {
				v, _ := e.valueOf(`certwatch_target_success{source="endpoint"`)
				return v == 1
			})}
		if s := peers[peerSSL.name]; s != "" {
			cases = append(cases, probeCase(peerSSL.name, s,
				func(addr string) []string {
					return []string{"--config.file=" + sslCfg, "--web.listen-address=" + addr, "--log.level=warn"}
				},
				func(t string) string { return "/probe?module=tcp&target=" + url.QueryEscape(t) },
				func(e peerAnswer) bool {
					v, _ := e.valueOf("ssl_probe_success ")
					return v == 1 && e.byName["ssl_verified_cert_not_after"] > 0
				}))
		}
		if bb := peers[peerBlackbox.name]; bb != "" {
			cases = append(cases, probeCase(peerBlackbox.name, bb,
				func(addr string) []string {
					return []string{"--config.file=" + bbCfg, "--web.listen-address=" + addr, "--log.level=warn"}
				},
				func(t string) string { return "/probe?module=tls&target=" + url.QueryEscape(t) },
				func(e peerAnswer) bool {
					v, _ := e.valueOf("probe_success ")
					return v == 1 && e.byName["probe_ssl_earliest_cert_expiry"] == 1
				}))
		}
		if len(cases) == 1 {
			fig.comment("%s: no peer to compare with", cs)
			continue
		}

		runs, timeouts := peerRounds(c.runs, cases, coldLimit, func(r int, pc peerCase, p *peerProcess, cold time.Duration, e peerAnswer) peerRun {
			var walls []float64
			cpu0 := procCPU(p.pid())
			for range sweeps {
				_, _, wall := pc.answer(p)
				walls = append(walls, wall.Seconds())
			}
			cpu := procCPU(p.pid()) - cpu0
			run := peerRun{cold: cold.Seconds(), warm: median(walls), cpu: us(cpu) / float64(sweeps*k),
				rss: float64(procStatus(p.pid(), "VmRSS")) / (1 << 20), series: e.own, listen: ms(p.listen)}
			if pc.name == "certwatch" {
				// The same process through /metrics, as most users run it:
				// every endpoint in one scrape.
				x := &exporterProcess{child: p.child, addr: p.addr, client: p.client}
				cpu1 := procCPU(p.pid())
				for range sweeps {
					checkEndpoints(x.scrapeMetrics(10*time.Second), k, "steady /metrics")
				}
				run.extraCPU = us(procCPU(p.pid())-cpu1) / float64(sweeps*k)
			}
			p.stop()
			if pc.name == "certwatch" {
				// /metrics cold: a fresh process, start to first complete scrape.
				q := startPeer("certwatch", bin, cwArgs)
				q.waitListening()
				x := &exporterProcess{child: q.child, addr: q.addr, client: q.client}
				for {
					code, body, _, err := x.get("/metrics", 10*time.Second)
					if err == nil && code == http.StatusOK {
						checkEndpoints(httpScrape{body: body}, k, "first /metrics")
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				run.extraCold = time.Since(q.started).Seconds()
				q.stop()
			}
			logf("  %s round %d %s: cold %.3f s, warm sweep %.3f s, %.0f µs CPU/probe, RSS %.0f MiB, %d series per probe",
				cs, r+1, pc.name, run.cold, run.warm, run.cpu, run.rss, run.series)
			return run
		})
		addPeerRows(fig, cs, k, "endpoint", cases, runs, timeouts, true)
	}
}

// peerRounds runs rounds of the cases, the exporters in turn within each
// round: each is started afresh and its cold start measured, then measure
// takes the rest and stops it. An exporter with no complete answer within
// coldLimit is left out from then on (certwatch may not be).
func peerRounds(rounds int, cases []peerCase, coldLimit time.Duration,
	measure func(r int, pc peerCase, p *peerProcess, cold time.Duration, e peerAnswer) peerRun) (map[string][]peerRun, peerTimeouts) {
	runs := make(map[string][]peerRun)
	timeouts := peerTimeouts{}
	for r := range rounds {
		for _, pc := range cases {
			if _, gone := timeouts[pc.name]; gone {
				continue
			}
			p, cold, e, ok := pc.coldStart(coldLimit)
			if !ok {
				if pc.name == "certwatch" {
					fatalf("certwatch gave no complete answer within %v (-cold-limit)", coldLimit)
				}
				timeouts[pc.name] = coldLimit
				continue
			}
			runs[pc.name] = append(runs[pc.name], measure(r, pc, p, cold, e))
		}
	}
	return runs, timeouts
}

// ---- rows ----

// peerMeasure is one measure of a case: a row per exporter, each peer's
// with certwatch as its reference.
type peerMeasure struct {
	name, unit string
	get        func(peerRun) float64
	// target describes what each peer's ratio must satisfy (pass); empty
	// for an informative measure.
	target string
	pass   func(ratio float64) bool
	// bound marks the cold start: an exporter cut short by the cold-start
	// limit shows the limit here, as a lower bound.
	bound bool
	// own, when set, is a target of certwatch's own value (median).
	own     string
	ownPass func(v float64) bool
}

var (
	peerRatioAbove1   = func(r float64) bool { return r > 1 }
	peerRatioAtLeast1 = func(r float64) bool { return r >= 1 }
)

// addPeerRows prints every measure of every exporter, each peer's row with
// certwatch as its reference (ratio = the median of the per-round ratios
// peer/certwatch) and PASS/FAIL for the targets.
func addPeerRows(fig *Figure, cs string, n int, unitName string, cases []peerCase, runs map[string][]peerRun, timeouts peerTimeouts, endpoints bool) {
	coldUnit, warmUnit, cpuUnit, cpuName, warmName := "ms", "ms", "ms", "CPU per warm scrape", "warm scrape wall time"
	if endpoints {
		coldUnit, warmUnit, cpuUnit, cpuName, warmName = "s", "s", "µs", "CPU per probe (/probe, warm)", "warm sweep of every endpoint through /probe (wall)"
	}
	addPeerMeasures(fig, cs, cases, runs, timeouts, []peerMeasure{
		{name: "process start until listening", unit: "ms", get: func(r peerRun) float64 { return r.listen }},
		{name: "cold start to first complete answer", unit: coldUnit, get: func(r peerRun) float64 { return r.cold },
			target: "certwatch faster (ratio > 1)", pass: peerRatioAbove1, bound: true},
		{name: warmName, unit: warmUnit, get: func(r peerRun) float64 { return r.warm }},
		{name: cpuName, unit: cpuUnit, get: func(r peerRun) float64 { return r.cpu },
			target: "certwatch at or below (ratio ≥ 1)", pass: peerRatioAtLeast1},
		{name: "RSS after warm scrapes", unit: "MiB", get: func(r peerRun) float64 { return r.rss },
			target: "certwatch at or below (ratio ≥ 1)", pass: peerRatioAtLeast1},
	})
	if endpoints {
		fig.add(measured(cs, "certwatch: cold start to first complete /metrics", "s", peerSamples(runs, "certwatch", func(r peerRun) float64 { return r.extraCold })).
			note("every endpoint in one scrape, chains verified"))
		fig.add(measured(cs, "certwatch: CPU per probe through /metrics (warm)", "µs", peerSamples(runs, "certwatch", func(r peerRun) float64 { return r.extraCPU })))
	}
	addPeerSeries(fig, cs, n, unitName, cases, runs, endpoints)
}

func peerSamples(runs map[string][]peerRun, name string, get func(peerRun) float64) []float64 {
	var out []float64
	for _, r := range runs[name] {
		out = append(out, get(r))
	}
	return out
}

// addPeerMeasures adds the rows of each measure: certwatch's, then each
// peer's with the median of the per-round ratios peer/certwatch.
func addPeerMeasures(fig *Figure, cs string, cases []peerCase, runs map[string][]peerRun, timeouts peerTimeouts, measures []peerMeasure) {
	for _, m := range measures {
		cw := peerSamples(runs, "certwatch", m.get)
		row := measured(cs, "certwatch: "+m.name, m.unit, cw)
		if m.ownPass != nil {
			row = row.target(m.own, m.ownPass(row.Value))
		}
		fig.add(row)
		for _, pc := range cases[1:] {
			if limit, gone := timeouts[pc.name]; gone {
				if m.bound {
					v := limit.Seconds()
					if m.unit == "ms" {
						v *= 1000
					}
					row := measured(cs, pc.name+": "+m.name, m.unit, []float64{v}).withFloor("certwatch", cw).
						note("no complete answer within %v: the value and ratio are lower bounds; its other measures are left out", limit)
					fig.add(row.target(m.target, m.pass(row.Ratio)))
				}
				continue
			}
			ps := peerSamples(runs, pc.name, m.get)
			var ratios []float64
			for i := range min(len(ps), len(cw)) {
				if cw[i] > 0 {
					ratios = append(ratios, ps[i]/cw[i])
				}
			}
			row := measured(cs, pc.name+": "+m.name, m.unit, ps).withFloor("certwatch", cw)
			row.Ratio = 0 // no ratio when certwatch's value is 0
			if len(ratios) > 0 {
				row.Ratio = median(ratios)
			}
			if m.pass != nil {
				row = row.target(m.target, m.pass(row.Ratio))
			}
			fig.add(row)
		}
	}
}

// addPeerSeries adds each exporter's own series per file, endpoint or
// Secret (perProbe: in one probe's answer).
func addPeerSeries(fig *Figure, cs string, n int, unitName string, cases []peerCase, runs map[string][]peerRun, perProbe bool) {
	for _, pc := range cases {
		rs := runs[pc.name]
		if len(rs) == 0 {
			continue
		}
		s := rs[len(rs)-1].series
		per := float64(s) / float64(n)
		if perProbe {
			per = float64(s) // one probe answers for one endpoint
		}
		fig.add(measured(cs, fmt.Sprintf("%s: series per %s", pc.name, unitName), "", []float64{per}).
			note("%d series of its own in a complete answer", s))
	}
}

// printPeersTable prints the figure as one Markdown table: a column per
// exporter, and each peer's ratio to certwatch.
func printPeersTable(fig *Figure) {
	type key struct{ cs, measure string }
	vals := map[key]map[string]Row{}
	var order []key
	exporters := []string{"certwatch", peerX509.name, peerSSL.name, peerBlackbox.name}
	for _, r := range fig.Rows {
		exp, m, ok := strings.Cut(r.Name, ": ")
		if !ok {
			continue
		}
		k := key{r.Case, m}
		if vals[k] == nil {
			vals[k] = map[string]Row{}
			order = append(order, k)
		}
		vals[k][exp] = r
	}
	fmt.Println()
	fmt.Println("| case | measure | certwatch | x509-certificate-exporter (ratio) | ssl_exporter (ratio) | blackbox_exporter (ratio) |")
	fmt.Println("|---|---|---:|---:|---:|---:|")
	for _, k := range order {
		cells := []string{k.cs, k.measure}
		for i, e := range exporters {
			r, ok := vals[k][e]
			switch {
			case !ok:
				cells = append(cells, "—")
			case i == 0 || r.Ratio == 0:
				cell := fmtValue(r.Value, r.Unit)
				if r.Pass != nil {
					cell += " " + passFail(*r.Pass)
				}
				cells = append(cells, cell)
			default:
				cell := fmt.Sprintf("%s (%.2f×)", fmtValue(r.Value, r.Unit), r.Ratio)
				if strings.Contains(r.Note, "lower bound") {
					cell = "≥ " + cell + ", never complete"
				}
				if r.Pass != nil {
					cell += " " + passFail(*r.Pass)
				}
				cells = append(cells, cell)
			}
		}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
	fmt.Println()
	for _, c := range fig.Comments {
		fmt.Println("- " + c)
	}
}

func writeFile(path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		fatalf("%v", err)
	}
}
