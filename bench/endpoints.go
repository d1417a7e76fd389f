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

// Figure 2: endpoints. The real certwatch binary, scraped over HTTP, probing
// a farm of loopback TLS servers in another process; its CPU time is read
// from /proc around each measurement. The floor is tlsfloor: verified
// crypto/tls handshakes against the same farm, in a process of its own.
func runEndpoints(args []string) {
	fs := flag.NewFlagSet("endpoints", flag.ExitOnError)
	var c common
	c.register(fs)
	sizes := fs.String("sizes", "100,1000", "numbers of endpoints")
	bin := fs.String("certwatch", "", "certwatch binary (built from this checkout when empty)")
	probeConc := fs.Int("probe-concurrency", 50, "concurrent /probe requests")
	parseFlags(fs, args)

	ks := parseSizes(*sizes)
	largest := slices.Max(ks)
	work, err := os.MkdirTemp("", "certwatch-bench-endpoints-")
	if err != nil {
		fatalf("%v", err)
	}
	atExit(func() { os.RemoveAll(work) })
	if *bin == "" {
		*bin = buildCertwatch(work)
	}
	fig := newFigure("endpoints", c.runs)
	fig.comment("exporter: the certwatch binary, default settings (probe_concurrency 128, module timeout 10s), " +
		"scraped over HTTP with X-Prometheus-Scrape-Timeout-Seconds: 10; its CPU from /proc/PID/task/*/schedstat")
	fig.comment("farm: %d TLS servers on 127.0.0.1-4 in a separate process, each its own leaf (80%% ECDSA P-256, 20%% RSA-2048) + intermediate", largest)
	fig.comment("floor: tlsfloor, a loop of tls.Dial + full verification (roots, IP SAN) with concurrency 128, in its own process")

	farmDir := filepath.Join(work, "farm")
	_ = os.MkdirAll(farmDir, 0o755)
	logf("starting a farm of %d TLS servers", largest)
	farm := startChild(self(), "farm", "-k", strconv.Itoa(largest), "-dir", farmDir, "-cache", c.cache)
	if line := farm.readLine(5 * time.Minute); line != "READY" {
		fatalf("farm said %q", line)
	}
	targets := readLines(filepath.Join(farmDir, "targets.txt"))
	roots := filepath.Join(farmDir, "roots.pem")

	for _, k := range ks {
		cs := fmt.Sprintf("K=%d", k)
		cfgPath := filepath.Join(work, fmt.Sprintf("certwatch-%d.yml", k))
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "modules:\n  default:\n    tls:\n      ca_file: %q\nendpoints:\n  - targets:\n", roots)
		for _, t := range targets[:k] {
			fmt.Fprintf(&cfg, "      - %q\n", t)
		}
		if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
			fatalf("%v", err)
		}
		// Enough scrapes per sample for at least 1,000 probes, so that
		// per-probe CPU is well above timer and scheduling noise.
		perSample := max(1, (1000+k-1)/k)

		var coldWall, warmWall, coldCPU, warmCPU, floorCPU, floorWall []float64
		var rss int64
		for r := range c.runs {
			exp := func() {
				x := startExporter(*bin, cfgPath, false)
				cpu0 := procCPU(x.pid())
				res := x.scrapeMetrics(10 * time.Second)
				cpu1 := procCPU(x.pid())
				checkEndpoints(res, k, "first scrape")
				coldWall = append(coldWall, res.wall.Seconds())
				coldCPU = append(coldCPU, us(cpu1-cpu0)/float64(k))
				var walls []float64
				for range perSample {
					res := x.scrapeMetrics(10 * time.Second)
					checkEndpoints(res, k, "steady scrape")
					walls = append(walls, res.wall.Seconds())
				}
				cpu2 := procCPU(x.pid())
				warmWall = append(warmWall, median(walls))
				warmCPU = append(warmCPU, us(cpu2-cpu1)/float64(k*perSample))
				rss = max(rss, procStatus(x.pid(), "VmHWM"))
				x.stop()
			}
			floor := func() {
				fr := runFloor(targets, roots, k, k*perSample, 128, "")
				floorCPU = append(floorCPU, fr.CPUSeconds*1e6/float64(fr.Handshakes))
				floorWall = append(floorWall, fr.WallSecond/float64(perSample))
			}
			if r%2 == 0 {
				floor()
				exp()
			} else {
				exp()
				floor()
			}
			logf("  %s run %d: first scrape %.2f s (%.0f µs CPU/probe), steady %.2f s (%.0f µs CPU/probe); floor %.0f µs CPU/handshake",
				cs, r+1, coldWall[r], coldCPU[r], warmWall[r], warmCPU[r], floorCPU[r])
		}
		row := measured(cs, "/metrics wall time, steady", "s", warmWall).
			withFloor("bare handshakes, same concurrency (wall)", floorWall)
		if k == 1000 {
			row = row.target("< 10 s, all probes ok", median(warmWall) < 10)
		}
		fig.add(row)
		row = measured(cs, "/metrics wall time, first scrape", "s", coldWall)
		if k == 1000 {
			row = row.target("< 10 s, all probes ok", median(coldWall) < 10)
		}
		fig.add(row.note("verdicts not cached yet: every chain verified"))
		fig.add(measured(cs, "exporter CPU per probe, steady", "µs", warmCPU).
			withFloor("verified crypto/tls handshake (CPU)", floorCPU).ratioTarget(1.3).
			note("%d scrapes per sample; exporter VmHWM %.0f MiB", perSample, float64(rss)/(1<<20)))
		fig.add(measured(cs, "exporter CPU per probe, first scrape", "µs", coldCPU).
			withFloor("verified crypto/tls handshake (CPU)", floorCPU))

		// /probe, as Prometheus drives it: 50 requests in flight, each for
		// the next target in turn.
		x := startExporter(*bin, cfgPath, false)
		for _, t := range targets[:k] { // warm: each target probed once
			if _, err := x.probe(t); err != nil {
				fatalf("/probe %s: %v", t, err)
			}
		}
		n := max(1000, 2*k)
		var thr, p50, p90, p99, pmax, probeCPU []float64
		for r := range c.runs {
			lat, wall, cpu := x.probeLoad(targets[:k], n, *probeConc)
			thr = append(thr, float64(n)/wall.Seconds())
			p50, p90 = append(p50, ms(percentile(lat, 50))), append(p90, ms(percentile(lat, 90)))
			p99, pmax = append(p99, ms(percentile(lat, 99))), append(pmax, ms(lat[len(lat)-1]))
			probeCPU = append(probeCPU, us(cpu)/float64(n))
			logf("  %s /probe run %d: %.0f req/s, p50 %.1f ms, p99 %.1f ms, %.0f µs CPU/request",
				cs, r+1, thr[r], p50[r], p99[r], probeCPU[r])
		}
		x.stop()
		fig.add(measured(cs, fmt.Sprintf("/probe throughput, %d concurrent", *probeConc), "req/s", thr).note("%d requests per run", n))
		fig.add(measured(cs, "/probe latency p50", "ms", p50))
		fig.add(measured(cs, "/probe latency p90", "ms", p90))
		fig.add(measured(cs, "/probe latency p99", "ms", p99))
		fig.add(measured(cs, "/probe latency max", "ms", pmax))
		fig.add(measured(cs, "exporter CPU per /probe request", "µs", probeCPU).withFloor("verified crypto/tls handshake (CPU)", floorCPU))

		if c.profile != "" && k == largest {
			profileEndpoints(*bin, cfgPath, targets, roots, k, c.profile)
		}
	}
	farm.stop()
	fig.save(c.results)
}

func runFloor(targets []string, roots string, k, n, conc int, profile string) floorResult {
	dir, _ := os.MkdirTemp("", "certwatch-bench-floor-")
	defer os.RemoveAll(dir)
	tf := filepath.Join(dir, "targets.txt")
	_ = os.WriteFile(tf, []byte(strings.Join(targets[:k], "\n")), 0o644)
	args := []string{"tlsfloor", "-targets", tf, "-roots", roots, "-n", strconv.Itoa(n), "-concurrency", strconv.Itoa(conc)}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	ch := startChild(self(), args...)
	line := ch.readLine(5 * time.Minute)
	ch.stop()
	var fr floorResult
	if err := json.Unmarshal([]byte(line), &fr); err != nil {
		fatalf("tlsfloor said %q", line)
	}
	if fr.Errors > 0 {
		fatalf("tlsfloor: %d of %d handshakes failed", fr.Errors, fr.Handshakes)
	}
	return fr
}

// profileEndpoints takes CPU profiles of the exporter (steady /metrics
// scrapes) and of the floor, for the report.
func profileEndpoints(bin, cfgPath string, targets []string, roots string, k int, dir string) {
	_ = os.MkdirAll(dir, 0o755)
	x := startExporter(bin, cfgPath, true)
	x.scrapeMetrics(10 * time.Second)
	done := make(chan []byte)
	go func() {
		resp, err := http.Get("http://" + x.addr + "/debug/pprof/profile?seconds=10")
		if err != nil {
			fatalf("profile: %v", err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- data
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		x.scrapeMetrics(10 * time.Second)
	}
	prof := <-done
	_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("endpoints-%d-exporter.pprof", k)), prof, 0o644)
	x.stop()
	runFloor(targets, roots, k, 5*k, 128, filepath.Join(dir, fmt.Sprintf("endpoints-%d-floor.pprof", k)))
	logf("wrote endpoint profiles into %s", dir)
}

// buildCertwatch builds the exporter from this checkout, as make build does.
func buildCertwatch(dir string) string {
	out := filepath.Join(dir, "certwatch")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fatalf("building certwatch: %v", err)
	}
	return out
}

// exporterProcess is the certwatch binary under test.
type exporterProcess struct {
	*child
	addr   string
	client *http.Client
}

func startExporter(bin, cfgPath string, pprofOn bool) *exporterProcess {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"--config.file=" + cfgPath, "--web.listen-address=" + addr, "--log.level=warn"}
	if pprofOn {
		args = append(args, "--web.enable-pprof")
	}
	x := &exporterProcess{child: startChild(bin, args...), addr: addr,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}, Timeout: time.Minute}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := x.client.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return x
			}
		}
		if time.Now().After(deadline) {
			fatalf("certwatch did not start: %s", x.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type httpScrape struct {
	wall time.Duration
	body []byte
}

func (x *exporterProcess) get(path string, timeout time.Duration) (int, []byte, time.Duration, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+x.addr+path, nil)
	req.Header.Set("Accept", acceptText)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", formatSeconds(timeout))
	start := time.Now()
	resp, err := x.client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, body, time.Since(start), err
}

func (x *exporterProcess) scrapeMetrics(timeout time.Duration) httpScrape {
	code, body, wall, err := x.get("/metrics", timeout)
	if err != nil || code != http.StatusOK {
		fatalf("scraping /metrics: %d %v; certwatch log:\n%s", code, err, x.stderr.String())
	}
	return httpScrape{wall: wall, body: body}
}

func (x *exporterProcess) probe(target string) (time.Duration, error) {
	code, body, wall, err := x.get("/probe?module=default&target="+url.QueryEscape(target), 10*time.Second)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("status %d: %s", code, body)
	}
	if !bytes.Contains(body, []byte("certwatch_target_success{source=\"endpoint\",target=\""+target+"\"} 1\n")) {
		return 0, fmt.Errorf("the probe failed:\n%s", body)
	}
	return wall, nil
}

// probeLoad sends n /probe requests from conc workers, each for the next
// target in turn, and returns the sorted latencies, the wall time and the
// exporter's CPU time.
func (x *exporterProcess) probeLoad(targets []string, n, conc int) ([]time.Duration, time.Duration, time.Duration) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0, start := procCPU(x.pid()), time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				d, err := x.probe(targets[i%len(targets)])
				if err != nil {
					fatalf("/probe: %v", err)
				}
				lat[i] = d
			}
		}()
	}
	wg.Wait()
	wall, cpu := time.Since(start), procCPU(x.pid())-cpu0
	slices.Sort(lat)
	return lat, wall, cpu
}

func (x *exporterProcess) stop() { x.child.stop() }

// checkEndpoints fails unless every endpoint was probed successfully.
func checkEndpoints(s httpScrape, k int, what string) {
	ok, total := 0, 0
	sc := bufio.NewScanner(bytes.NewReader(s.body))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `certwatch_target_success{source="endpoint"`) {
			total++
			if strings.HasSuffix(line, " 1") {
				ok++
			}
		}
	}
	if ok != k || total != k {
		e := parseText(s.body)
		fatalf("%s: %d of %d endpoints ok (%d reported): %v %v", what, ok, k, total, e.values["certwatch_target_error_info"], e.failures)
	}
}
