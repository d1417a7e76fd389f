//go:build linux

package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/childproc"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
	"github.com/certwatch/certwatch/source/files"
)

// Figure 1: the files source with the collector, in process.
//
// The driver makes sure the tree exists, then runs one child process per N
// (so each N starts from a clean heap), which reports back a Figure.
func runFiles(args []string) {
	fs := flag.NewFlagSet("files", flag.ExitOnError)
	var c common
	c.register(fs)
	sizes := fs.String("sizes", "1000,10000,100000", "numbers of files")
	watch := fs.String("watch", "poll,inotify", "global.files_watch modes whose warm scrapes are compared side by side (\"\" for none)")
	parseFlags(fs, args)

	tb := newTB()
	fig := newFigure("files", c.runs)
	ns := parseSizes(*sizes)
	largest := 0
	for _, n := range ns {
		largest = max(largest, n)
	}
	t := openTree(tb, c.cache)
	t.ensure(tb, largest)
	fig.comment("in process: collector.New + Update + MetricsHandler, requests handed to the handler (no socket), " +
		"Accept: text/plain;version=0.0.4, no compression; page cache warm for exporter and floors alike")
	fig.comment("floors and the files source both use GOMAXPROCS*2 = %d workers; floors get the file list ready-made (no directory walk)",
		runtime.GOMAXPROCS(0)*2)
	for _, n := range ns {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("certwatch-bench-files-%d-%d.json", n, os.Getpid()))
		args := []string{"files-one", "-n", strconv.Itoa(n), "-out", out, "-runs", strconv.Itoa(c.runs), "-cache", c.cache, "-watch", *watch}
		if c.profile != "" {
			args = append(args, "-profile", c.profile)
		}
		cmd := exec.Command(self(), args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := childproc.Start(cmd); err != nil {
			fatalf("%v", err)
		}
		if err := cmd.Wait(); err != nil {
			fatalf("files-one -n %d: %v", n, err)
		}
		var part Figure
		data, err := os.ReadFile(out)
		if err != nil || json.Unmarshal(data, &part) != nil {
			fatalf("files-one -n %d wrote no result", n)
		}
		_ = os.Remove(out)
		fig.Rows = append(fig.Rows, part.Rows...)
		fig.Comments = append(fig.Comments, part.Comments...)
	}
	fig.save(c.results)
}

// filesBench is the state of one N.
type filesBench struct {
	tb      *benchTB
	t       *tree
	n       int
	certs   int
	paths   []string
	cfg     string
	roots   *x509.CertPool
	workers int
}

const filesScrapeTimeout = 120 * time.Second // generous: a cut-short scrape would be invalid, and is checked

func runFilesOne(args []string) {
	fs := flag.NewFlagSet("files-one", flag.ExitOnError)
	var c common
	c.register(fs)
	n := fs.Int("n", 1000, "number of files")
	out := fs.String("out", "", "where to write the figure")
	watch := fs.String("watch", "poll,inotify", "global.files_watch modes to compare")
	parseFlags(fs, args)

	tb := newTB()
	b := &filesBench{tb: tb, t: openTree(tb, c.cache), n: *n, certs: certsInFirst(*n), workers: runtime.GOMAXPROCS(0) * 2}
	b.t.ensure(tb, b.n)
	b.paths = b.t.files(b.n)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "files:\n  - ca_file: %q\n    paths:\n", b.t.rootsFile())
	for _, d := range b.t.dirs(b.n) {
		fmt.Fprintf(&cfg, "      - %q\n", d)
	}
	b.cfg = cfg.String()
	rootsPEM, err := os.ReadFile(b.t.rootsFile())
	if err != nil {
		fatalf("%v", err)
	}
	b.roots = x509.NewCertPool()
	b.roots.AppendCertsFromPEM(rootsPEM)

	fig := newFigure("files", c.runs)
	cs := fmt.Sprintf("N=%d", b.n)
	logf("files N=%d (%d certificates): %d runs", b.n, b.certs, c.runs)

	// Cold: a fresh exporter (empty file cache, empty verdict cache) each
	// run, against the read+parse floor, alternating which goes first.
	var cold, coldGather, floorRP, floorRPV []float64
	for r := range c.runs {
		var res scrapeResult
		exp := func() {
			x := newInProcess(parseConfig(b.cfg), nil)
			res = scrape(x.handler, "/metrics", acceptText, filesScrapeTimeout, false)
			checkStatus(res)
		}
		floor := func() {
			d, got := b.readParseFloor(b.paths, false)
			b.checkCount(got)
			floorRP = append(floorRP, ms(d))
		}
		if r%2 == 0 {
			floor()
			exp()
		} else {
			exp()
			floor()
		}
		d, _ := b.readParseFloor(b.paths, true)
		floorRPV = append(floorRPV, ms(d))
		cold, coldGather = append(cold, ms(res.total)), append(coldGather, ms(res.gather))
		logf("  cold run %d: scrape %.1f ms (%d bytes), floor read+parse %.1f ms, +verify %.1f ms",
			r+1, ms(res.total), res.bytes, floorRP[len(floorRP)-1], floorRPV[len(floorRPV)-1])
	}
	row := measured(cs, "cold scrape (first, empty caches)", "ms", cold).
		withFloor("read + PEM decode + x509.ParseCertificate", floorRP).ratioTarget(1.5).
		note("until first byte %.0f%%", 100*median(coldGather)/median(cold))
	fig.add(row)
	fig.add(measured(cs, "cold scrape vs floor incl. chain verification", "ms", cold).
		withFloor("read + parse + x509 Verify of each chain", floorRPV))

	// Warm: one exporter, nothing changed; against stat-ing every file.
	x := newInProcess(parseConfig(b.cfg), nil)
	checkStatus(scrape(x.handler, "/metrics", acceptText, filesScrapeTimeout, false))
	series := b.validate(x)
	var warm, warmGather, warmSource, floorStat []float64
	var warmBytes int64
	for r := range c.runs {
		var res scrapeResult
		exp := func() { res = scrape(x.handler, "/metrics", acceptText, filesScrapeTimeout, false) }
		floor := func() { floorStat = append(floorStat, ms(b.statFloor(b.paths))) }
		if r%2 == 0 {
			floor()
			exp()
		} else {
			exp()
			floor()
		}
		checkStatus(res)
		warmBytes = res.bytes
		warm, warmGather = append(warm, ms(res.total)), append(warmGather, ms(res.gather))
		start := time.Now()
		x.files.Collect(context.Background())
		warmSource = append(warmSource, ms(time.Since(start)))
		logf("  warm run %d: scrape %.1f ms, files source alone %.1f ms, floor stat %.2f ms",
			r+1, ms(res.total), warmSource[len(warmSource)-1], floorStat[len(floorStat)-1])
	}
	row = measured(cs, "warm scrape (nothing changed), whole /metrics", "ms", warm).
		withFloor("os.Stat every file", floorStat).
		note("until first byte %.0f%%, %d series, %.1f MB", 100*median(warmGather)/median(warm), series, float64(warmBytes)/1e6)
	if b.n == 10000 {
		row = row.ratioTarget(3)
	}
	fig.add(row)
	row = measured(cs, "warm: files source alone (Files.Collect)", "ms", warmSource).withFloor("os.Stat every file", floorStat)
	fig.add(row)

	// 1% changed: renewed certificates written over 1% of the files (a
	// different 1% each run), then a scrape; against stat-all + read+parse
	// of the changed files.
	var chg, floorChg []float64
	for r := range c.runs {
		rng := rand.New(rand.NewPCG(uint64(b.n), uint64(r)))
		idx := rng.Perm(b.n)[:max(1, b.n/100)]
		changed := make([]string, len(idx))
		for k, i := range idx {
			data, mode := b.t.fileContent(tb, i)
			changed[k] = b.t.fileName(i)
			b.t.rewrite(changed[k], data, mode)
		}
		var res scrapeResult
		exp := func() { res = scrape(x.handler, "/metrics", acceptText, filesScrapeTimeout, false) }
		floor := func() {
			start := time.Now()
			b.statFloor(b.paths)
			_, got := b.readParseFloor(changed, false)
			floorChg = append(floorChg, ms(time.Since(start)))
			if got == 0 {
				fatalf("the changed files held no certificate")
			}
		}
		if r%2 == 0 {
			floor()
			exp()
		} else {
			exp()
			floor()
		}
		checkStatus(res)
		chg = append(chg, ms(res.total))
		logf("  1%% run %d: scrape %.1f ms, floor %.2f ms", r+1, ms(res.total), floorChg[len(floorChg)-1])
	}
	fig.add(measured(cs, "scrape after 1% of files renewed", "ms", chg).
		withFloor("stat all + read+parse the 1%", floorChg))
	b.validate(x)

	if *watch != "" {
		b.watchModes(fig, cs, strings.Split(*watch, ","), c.runs)
	}

	if c.profile != "" && b.n <= 10000 { // enough evidence; 100,000 would take minutes
		cpuProfile(c.profile, fmt.Sprintf("files-%d-cold", b.n), func() {
			y := newInProcess(parseConfig(b.cfg), nil)
			scrape(y.handler, "/metrics", acceptText, filesScrapeTimeout, false)
		})
		cpuProfile(c.profile, fmt.Sprintf("files-%d-warm", b.n), func() {
			for range max(3, 100000/b.n) {
				scrape(x.handler, "/metrics", acceptText, filesScrapeTimeout, false)
			}
		})
	}

	// Memory held: the live heap after GC with a fresh exporter that has
	// read everything once and scraped again, minus the heap before it.
	x = nil
	before, beforeInuse := memAfterGC()
	y := newInProcess(parseConfig(b.cfg), nil)
	checkStatus(scrape(y.handler, "/metrics", acceptText, filesScrapeTimeout, false))
	checkStatus(scrape(y.handler, "/metrics", acceptText, filesScrapeTimeout, false))
	after, afterInuse := memAfterGC()
	perCert := float64(after-before) / float64(b.certs) / 1024
	fig.add(measured(cs, "memory held per certificate (heap after GC)", "KiB", []float64{perCert}).
		target("< 4 KiB", perCert < 4).
		note("%d certs in %d files, %.1f MiB held, HeapInuse +%.1f MiB, process VmHWM %.0f MiB",
			b.certs, b.n, float64(after-before)/(1<<20), float64(int64(afterInuse)-int64(beforeInuse))/(1<<20),
			float64(procStatus(os.Getpid(), "VmHWM"))/(1<<20)))
	heapProfile(c.profile, fmt.Sprintf("files-%d-heap", b.n))
	runtimeKeepAlive(y)

	fig.save("")
	data, _ := json.Marshal(fig)
	if *out != "" {
		if err := os.WriteFile(*out, data, 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

func checkStatus(r scrapeResult) {
	if r.status != 200 {
		fatalf("scrape answered %d", r.status)
	}
}

func (b *filesBench) checkCount(got int) {
	if got != b.certs {
		fatalf("floor parsed %d certificates, expected %d", got, b.certs)
	}
}

// validate scrapes once more, keeping the body, and checks that every file
// was read, every certificate reported and every chain judged ok. It
// returns the number of series.
func (b *filesBench) validate(x *inProcess) int {
	res := scrape(x.handler, "/metrics", acceptText, filesScrapeTimeout, true)
	e := parseText(res.body)
	if got := e.series["certwatch_cert_info"]; got != b.certs {
		fatalf("validation: %d certwatch_cert_info series, expected %d", got, b.certs)
	}
	if got := e.values["certwatch_target_success"]["file=1"]; got != b.n {
		fatalf("validation: %d files read, expected %d (errors: %v %v)", got, b.n, e.values["certwatch_target_error_info"], e.failures)
	}
	if got := e.values["certwatch_chain_valid"]["ok"]; got != b.n {
		fatalf("validation: %d chains ok, expected %d: %v", got, b.n, e.values["certwatch_chain_valid"])
	}
	if got := e.values["certwatch_collector_success"]["file=1"]; got != 1 {
		fatalf("validation: the file collector did not succeed")
	}
	total := 0
	for _, n := range e.series {
		total += n
	}
	return total
}

// parallel runs f(0..n-1) on workers goroutines.
func parallel(n, workers int, f func(worker, i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(w, i)
			}
		}()
	}
	wg.Wait()
}

// readParseFloor reads every file, decodes its PEM blocks and parses every
// certificate, with the files source's parallelism; verify also verifies
// each chain as the inspector must (leaf to the roots, the rest of the file
// as intermediates; files starting with a self-signed CA stand alone).
func (b *filesBench) readParseFloor(paths []string, verify bool) (time.Duration, int) {
	counts := make([]int, b.workers)
	start := time.Now()
	parallel(len(paths), b.workers, func(w, i int) {
		data, err := os.ReadFile(paths[i])
		if err != nil {
			fatalf("%v", err)
		}
		var certs []*x509.Certificate
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				fatalf("%s: %v", paths[i], err)
			}
			certs = append(certs, c)
		}
		counts[w] += len(certs)
		if verify && len(certs) > 0 && !(certs[0].IsCA && certs[0].CheckSignatureFrom(certs[0]) == nil) {
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			if _, err := certs[0].Verify(x509.VerifyOptions{Roots: b.roots, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				fatalf("%s: %v", paths[i], err)
			}
		}
	})
	d := time.Since(start)
	total := 0
	for _, c := range counts {
		total += c
	}
	return d, total
}

// statFloor stats every file with the files source's parallelism.
func (b *filesBench) statFloor(paths []string) time.Duration {
	start := time.Now()
	parallel(len(paths), b.workers, func(_, i int) {
		if _, err := os.Stat(paths[i]); err != nil {
			fatalf("%v", err)
		}
	})
	return time.Since(start)
}

func runtimeKeepAlive(x any) { runtime.KeepAlive(x) }

// watchModes measures the CPU of a warm scrape (nothing changed) with each
// global.files_watch mode, one exporter per mode in this process, their
// runs alternated; the first mode is the reference of the others' ratio.
// CPU is the whole process's (every thread, /proc schedstat), so what the
// watcher's goroutines spend counts too.
func (b *filesBench) watchModes(fig *Figure, cs string, modes []string, runs int) {
	type exp struct {
		mode  string
		x     *inProcess
		cache *files.Cache
	}
	var exps []exp
	for _, m := range modes {
		cfg := parseConfig(strings.Replace(b.cfg, "files:\n", "global:\n  files_watch: "+m+"\nfiles:\n", 1))
		cache := files.NewCache()
		if m != config.FilesWatchPoll {
			cache = files.NewWatchingCache()
		}
		x := newInProcess(cfg, nil)
		logger := benchLogger()
		prober := endpoint.New(cfg, logger)
		x.files = files.New(cfg, cache, logger)
		x.exporter.Update(&collector.Sources{Collectors: []source.Collector{prober, x.files}, Prober: prober})
		checkStatus(scrape(x.handler, "/metrics", acceptText, filesScrapeTimeout, false)) // cold: reads and watches everything
		b.validate(x)
		res := scrape(x.handler, "/metrics", acceptText, filesScrapeTimeout, true)
		watched := strings.Contains(string(res.body), `certwatch_files_watch_paths{group="0",mode="poll"} 0`)
		if watched != (m != config.FilesWatchPoll) {
			fatalf("files_watch %s: the paths are not in the mode asked for", m)
		}
		exps = append(exps, exp{mode: m, x: x, cache: cache})
	}
	per := max(1, 20000/b.n) // scrapes per sample: at least tens of milliseconds of CPU
	cpu, alone := map[string][]float64{}, map[string][]float64{}
	pid := os.Getpid()
	for r := range runs {
		for i := range exps {
			e := exps[i]
			if r%2 == 1 {
				e = exps[len(exps)-1-i]
			}
			runtime.GC()
			start := procCPU(pid)
			for range per {
				checkStatus(scrape(e.x.handler, "/metrics", acceptText, filesScrapeTimeout, false))
			}
			cpu[e.mode] = append(cpu[e.mode], ms(procCPU(pid)-start)/float64(per))
			runtime.GC()
			start = procCPU(pid)
			for range per {
				e.x.files.Collect(context.Background())
			}
			alone[e.mode] = append(alone[e.mode], ms(procCPU(pid)-start)/float64(per))
		}
		line := fmt.Sprintf("  watch run %d:", r+1)
		for _, e := range exps {
			line += fmt.Sprintf(" %s %.1f ms CPU (source alone %.2f ms)", e.mode, cpu[e.mode][r], alone[e.mode][r])
		}
		logf("%s", line)
	}
	ref := exps[0].mode
	for _, e := range exps {
		row := measured(cs, "warm scrape CPU, files_watch: "+e.mode+", whole /metrics", "ms", cpu[e.mode])
		rowAlone := measured(cs, "warm CPU, files_watch: "+e.mode+", files source alone", "ms", alone[e.mode])
		if e.mode != ref {
			row = row.withFloor("same with files_watch: "+ref, cpu[ref])
			rowAlone = rowAlone.withFloor("same with files_watch: "+ref, alone[ref])
		}
		fig.add(row)
		fig.add(rowAlone)
		b.validate(e.x)
		e.cache.Stop()
	}
}
