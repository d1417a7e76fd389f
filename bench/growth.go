//go:build linux

package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Figure 5: no growth. An in-process exporter scrapes a hostile mix 1,000
// times in a row: TLS endpoints that answer, servers that accept and never
// speak (timeouts), ports where nothing listens, and the zoo of files (junk,
// empty, key-only, corrupt bundles, a malformed PKCS#12, a file over the
// size limit, ...), with a short module timeout. Live heap after GC,
// goroutines and open file descriptors are sampled every 50 scrapes, after
// waiting out straggling probes.
func runGrowth(args []string) {
	fs := flag.NewFlagSet("growth", flag.ExitOnError)
	var c common
	c.register(fs)
	scrapes := fs.Int("scrapes", 1000, "consecutive scrapes")
	every := fs.Int("every", 50, "sample every this many scrapes")
	good := fs.Int("good", 10, "TLS endpoints that answer")
	hung := fs.Int("hung", 10, "servers that never answer")
	refused := fs.Int("refused", 10, "ports where nothing listens")
	timeout := fs.Duration("timeout", 100*time.Millisecond, "module timeout")
	parseFlags(fs, args)

	tb := newTB()
	work, err := os.MkdirTemp("", "certwatch-bench-growth-")
	if err != nil {
		fatalf("%v", err)
	}
	atExit(func() { os.RemoveAll(work) })
	t := openTree(tb, c.cache)
	roots, password := writeZoo(tb, filepath.Join(work, "zoo"), t.pki)
	farmDir := filepath.Join(work, "farm")
	_ = os.MkdirAll(farmDir, 0o755)
	farm := startChild(self(), "farm", "-k", strconv.Itoa(*good), "-hung", strconv.Itoa(*hung),
		"-refused", strconv.Itoa(*refused), "-dir", farmDir, "-cache", c.cache)
	if line := farm.readLine(5 * time.Minute); line != "READY" {
		fatalf("farm said %q", line)
	}
	var targets []string
	for _, f := range []string{"targets.txt", "hung.txt", "refused.txt"} {
		targets = append(targets, readLines(filepath.Join(farmDir, f))...)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "modules:\n  default:\n    timeout: %s\n    tls:\n      ca_file: %q\nendpoints:\n  - targets:\n",
		timeout.String(), filepath.Join(farmDir, "roots.pem"))
	for _, tg := range targets {
		fmt.Fprintf(&cfg, "      - %q\n", tg)
	}
	fmt.Fprintf(&cfg, "files:\n  - paths: [%q, %q]\n    ca_file: %q\n    password_file: %q\n",
		filepath.Join(work, "zoo"), filepath.Join(work, "missing.pem"), roots, password)

	x := newInProcess(parseConfig(cfg.String()), nil)
	first := scrape(x.handler, "/metrics", acceptText, 5*time.Second, true)
	checkStatus(first)
	e := parseText(first.body)
	classes := e.values["certwatch_target_error_info"]
	if classes["timeout"] != *hung || classes["refused"] != *refused || e.values["certwatch_target_success"]["endpoint=1"] != *good {
		fatalf("the hostile mix is not what it should be: %v, endpoint successes %d", classes, e.values["certwatch_target_success"]["endpoint=1"])
	}

	fig := newFigure("growth", 1)
	fig.comment("in process; %d TLS endpoints, %d hung, %d refused, the file zoo (%d failing files: %v); module timeout %s; %d scrapes",
		*good, *hung, *refused, classes["parse"]+classes["too_large"]+classes["not_found"]+classes["wrong_password"], classes, timeout, *scrapes)

	type sample struct {
		scrape           int
		heap, inuse, rss uint64
		goroutines, fds  int
		scrapeMsAtSample float64
	}
	take := func(i int, last time.Duration) sample {
		time.Sleep(3 * *timeout) // probes abandoned at the deadline finish closing
		alloc, inuse := memAfterGC()
		debug.FreeOSMemory() // resident memory without the pages the runtime has not yet given back
		rss := uint64(procStatus(os.Getpid(), "VmRSS"))
		return sample{scrape: i, heap: alloc, inuse: inuse, rss: rss, goroutines: runtime.NumGoroutine(), fds: openFDs(), scrapeMsAtSample: ms(last)}
	}
	var samples []sample
	samples = append(samples, take(1, first.total))
	start := time.Now()
	var last time.Duration
	for i := 2; i <= *scrapes; i++ {
		r := scrape(x.handler, "/metrics", acceptText, 5*time.Second, false)
		if r.status != 200 {
			fatalf("scrape %d answered %d", i, r.status)
		}
		last = r.total
		if i%*every == 0 {
			s := take(i, last)
			samples = append(samples, s)
			logf("  scrape %4d: heap %.2f MiB (in use %.2f MiB), RSS %.1f MiB, %d goroutines, %d fds, last scrape %.0f ms",
				i, float64(s.heap)/(1<<20), float64(s.inuse)/(1<<20), float64(s.rss)/(1<<20), s.goroutines, s.fds, s.scrapeMsAtSample)
		}
	}
	elapsed := time.Since(start)
	farm.stop()

	startS, endS := samples[0], samples[len(samples)-1]
	mid := samples[len(samples)/2]
	// The fit and the tolerance use the samples after the first 100
	// scrapes: the first ones fill caches, map buckets and pools.
	var xs, ys []float64
	for _, s := range samples {
		if s.scrape >= 100 {
			xs, ys = append(xs, float64(s.scrape)), append(ys, float64(s.heap))
		}
	}
	slope := fitSlope(xs, ys)
	const tolerance = 256 << 10
	growth := int64(endS.heap) - int64(mid.heap)
	cs := fmt.Sprintf("%d scrapes", *scrapes)
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	fig.add(Row{Case: cs, Name: "heap after GC at start / middle / end", Unit: "MiB", Value: mib(endS.heap),
		Samples: []float64{mib(startS.heap), mib(mid.heap), mib(endS.heap)}}.
		target("middle→end ≤ 256 KiB and slope ≤ 512 B/scrape", growth <= tolerance && slope <= 512).
		note("start %.2f, middle %.2f (scrape %d), end %.2f MiB; fitted slope %+.0f B/scrape", mib(startS.heap), mib(mid.heap), mid.scrape, mib(endS.heap), slope))
	fig.add(Row{Case: cs, Name: "heap in use (spans) at start / middle / end", Unit: "MiB", Value: mib(endS.inuse),
		Samples: []float64{mib(startS.inuse), mib(mid.inuse), mib(endS.inuse)}}.
		note("start %.2f, middle %.2f, end %.2f MiB", mib(startS.inuse), mib(mid.inuse), mib(endS.inuse)))
	const rssTolerance = 2 << 20
	fig.add(Row{Case: cs, Name: "resident memory (VmRSS) at start / middle / end", Unit: "MiB", Value: mib(endS.rss),
		Samples: []float64{mib(startS.rss), mib(mid.rss), mib(endS.rss)}}.
		target("middle→end ≤ 2 MiB", int64(endS.rss)-int64(mid.rss) <= rssTolerance).
		note("start %.1f, middle %.1f, end %.1f MiB, read after debug.FreeOSMemory", mib(startS.rss), mib(mid.rss), mib(endS.rss)))
	fig.add(Row{Case: cs, Name: "goroutines at start / middle / end", Unit: "", Value: float64(endS.goroutines),
		Samples: []float64{float64(startS.goroutines), float64(mid.goroutines), float64(endS.goroutines)}}.
		target("end ≤ start + 2", endS.goroutines <= startS.goroutines+2).
		note("%d, %d, %d", startS.goroutines, mid.goroutines, endS.goroutines))
	fig.add(Row{Case: cs, Name: "open file descriptors at start / middle / end", Unit: "", Value: float64(endS.fds),
		Samples: []float64{float64(startS.fds), float64(mid.fds), float64(endS.fds)}}.
		target("end ≤ start", endS.fds <= startS.fds).note("%d, %d, %d", startS.fds, mid.fds, endS.fds))
	fig.add(Row{Case: cs, Name: "scrape wall time (mean)", Unit: "ms", Value: ms(elapsed) / float64(*scrapes-1)}.
		note("bounded by the %s module timeout of the hung servers", timeout))
	heapProfile(c.profile, "growth-heap-end")
	runtimeKeepAlive(x)
	fig.save(c.results)
}

// fitSlope is the least-squares slope of ys over xs.
func fitSlope(xs, ys []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(xs))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	return num / den
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}
