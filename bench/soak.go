//go:build linux

package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/certwatch/certwatch/internal/hostile"
	"github.com/certwatch/certwatch/internal/kubetest"
)

// Figure 6: the hostile soak, the long version of soak_test.go. The real
// certwatch binary against the whole hostile mix of internal/hostile (TLS
// servers that never answer, trickle a byte a second, stall after the
// ServerHello, send a ~250 KiB chain, reset mid-handshake, greet with an
// endless STARTTLS banner or speak HTTP; corrupt, truncated, huge, wrongly
// locked, FIFO and stalled files, a directory of 100,000 entries; with the
// kube binaries, a 1 MiB Secret, one of 4,000 keys and a malformed one),
// scraped over HTTP as Prometheus would with a 2 s scrape timeout, one scrape
// after the other. Every answer is timed, parsed and checked place by place;
// the process's own go_goroutines, process_open_fds and
// process_resident_memory_bytes are read from every answer.
func runSoak(args []string) {
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	var c common
	c.register(fs)
	scrapes := fs.Int("scrapes", 1000, "consecutive scrapes")
	timeout := fs.Duration("timeout", 2*time.Second, "Prometheus' scrape timeout, sent as X-Prometheus-Scrape-Timeout-Seconds")
	bin := fs.String("certwatch", "", "certwatch binary (built from this checkout when empty)")
	bigDir := fs.Int("bigdir", 100_000, "entries of the directory listed on every scrape")
	kube := fs.String("kube", "auto", "hostile Kubernetes objects: on, off, or auto (on when the kube binaries are there)")
	slowRead := fs.Bool("slowread", true, "include the file whose reads stall (needs root, loop devices, cgroup v1 blkio); false to see the rest of the mix alone")
	parseFlags(fs, args)
	if *scrapes < 20 {
		fatalf("-scrapes %d: want at least 20", *scrapes)
	}

	tb := newTB()
	work := tb.TempDir()
	if *bin == "" {
		*bin = buildCertwatch(work)
	}
	logf("setting up the hostile mix")
	setup := hostile.New(tb, hostile.Options{BigDirEntries: *bigDir, NoSlowRead: !*slowRead})
	fig := newFigure("soak", 1)
	if !*slowRead {
		fig.comment("left out: the stalled file (-slowread=false)")
	}
	for _, n := range setup.Notes {
		fig.comment("left out: %s", n)
	}
	var extra []string
	switch useKube, why := kubeWanted(*kube); {
	case useKube:
		logf("starting kube-apiserver and etcd for the hostile Secrets")
		extra = append(extra, setup.AddKube(tb, kubetest.Start(tb)))
	default:
		fig.comment("hostile Kubernetes objects left out: %s", why)
	}
	cfgPath := filepath.Join(work, "certwatch.yml")
	if err := os.WriteFile(cfgPath, []byte(setup.Config), 0o600); err != nil {
		fatalf("%v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	addr := l.Addr().String()
	l.Close()
	exe := *bin
	if setup.SlowRead != nil { // confined from its first read on
		exe = setup.SlowRead.Wrapper(tb, exe)
	}
	x := startChild(exe, append([]string{"--config.file=" + cfgPath, "--web.listen-address=" + addr, "--log.level=warn"}, extra...)...)
	if setup.SlowRead != nil {
		if err := setup.SlowRead.Confine(tb, x.pid()); err != nil {
			fatalf("%v", err)
		}
		atExit(setup.SlowRead.Release) // before the child is stopped: it cannot exit in mid-read
	}
	waitReady(addr, x)

	good := 0
	for _, p := range setup.Places {
		if p.Good() {
			good++
		}
	}
	limit := hostile.Allowance(*timeout)
	fig.comment("the certwatch binary over HTTP; %d places (%d good, %d hostile); %d scrapes one after the other with a %s scrape timeout (answers due within %s)",
		len(setup.Places), good, len(setup.Places)-good, *scrapes, *timeout, limit)

	url := "http://" + addr + "/metrics"
	var (
		took     []time.Duration
		figures  []hostile.Figures
		at       []int                // the scrape each figure comes from
		wrong    int                  // answers that misreport a place
		problems = map[string][]int{} // what was misreported, and in which answers
		failures []string
		inARow   int
	)
	start := time.Now()
	for i := 1; i <= *scrapes; i++ {
		d, body, err := hostile.Scrape(url, *timeout, limit+5*time.Second)
		took = append(took, d)
		if err == nil {
			mfs, perr := hostile.Parse(body)
			err = perr
			if perr == nil {
				if ps := setup.Check(mfs); len(ps) > 0 {
					wrong++
					for _, p := range ps {
						problems[p] = append(problems[p], i)
					}
				}
				if f, ferr := hostile.FiguresOf(mfs); ferr == nil {
					figures, at = append(figures, f), append(at, i)
				} else {
					err = ferr
				}
			}
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("scrape %d: %v", i, err))
			if inARow++; inARow == 3 {
				fig.comment("stopped after 3 failed scrapes in a row, at scrape %d", i)
				break
			}
		} else {
			inARow = 0
		}
		if i%100 == 0 && len(figures) > 0 {
			logf("  scrape %4d: last answer %s; %s", i, d.Round(time.Millisecond), figures[len(figures)-1])
		}
	}
	elapsed := time.Since(start)
	if setup.SlowRead != nil {
		setup.SlowRead.Release()
	}
	log := x.stderr.String()
	x.stop()

	cs := fmt.Sprintf("%d scrapes", len(took))
	sorted := append([]time.Duration(nil), took...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	med, p99, worst := percentile(sorted, 50), percentile(sorted, 99), sorted[len(sorted)-1]
	lateCount := len(sorted) - sort.Search(len(sorted), func(i int) bool { return sorted[i] > limit })
	samples := make([]float64, len(took))
	for i, d := range took {
		samples[i] = ms(d)
	}
	fig.add(measured(cs, "answer time, median", "ms", samples).
		note("ratio to the %s timeout %.2f", *timeout, med.Seconds()/timeout.Seconds()))
	fig.add(Row{Case: cs, Name: "answer time, p99", Unit: "ms", Value: ms(p99)}.
		note("ratio to the timeout %.2f", p99.Seconds()/timeout.Seconds()))
	fig.add(Row{Case: cs, Name: "answer time, slowest", Unit: "ms", Value: ms(worst)}.
		target(fmt.Sprintf("every answer ≤ timeout + 10%% (%s)", limit), lateCount == 0).
		note("ratio to the timeout %.2f; %d late", worst.Seconds()/timeout.Seconds(), lateCount))
	fig.add(Row{Case: cs, Name: "answers failed (no answer, not parseable)", Value: float64(len(failures))}.
		target("none", len(failures) == 0 && len(took) == *scrapes).note("%s", firstOf(failures, 3)))
	var keys []string
	for k, at := range problems {
		keys = append(keys, fmt.Sprintf("%s (%d×, first in scrape %d)", k, len(at), at[0]))
	}
	sort.Strings(keys)
	fig.add(Row{Case: cs, Name: "answers misreporting a place", Value: float64(wrong)}.
		target("none", wrong == 0).note("%s", firstOf(keys, 5)))
	panics := strings.Count(log, "panic")
	fig.add(Row{Case: cs, Name: "panics in the log", Value: float64(panics)}.target("none", panics == 0))

	if len(figures) >= 20 {
		// Start: the first answer. Flatness compares the median of a window
		// after warm-up (from 10% of the run) with that of the last window.
		window := max(5, len(figures)/10)
		warm := len(figures) / 10
		early, mid, last := figures[warm:warm+window], figures[len(figures)/2-window/2:len(figures)/2-window/2+window], figures[len(figures)-window:]
		first, a, m, b := figures[0], hostile.Median(early), hostile.Median(mid), hostile.Median(last)
		slack := hostile.DefaultSlack
		fig.comment("process figures: start = first answer; after warm-up = median of scrapes %d-%d; middle = median around scrape %d; end = median of the last %d", at[warm], at[warm+window-1], at[len(figures)/2], window)
		fig.add(Row{Case: cs, Name: "goroutines start / warm / middle / end", Value: float64(b.Goroutines),
			Samples: []float64{float64(first.Goroutines), float64(a.Goroutines), float64(m.Goroutines), float64(b.Goroutines)}}.
			target(fmt.Sprintf("end ≤ warm + %d", slack.Goroutines), b.Goroutines <= a.Goroutines+slack.Goroutines).
			note("%d, %d, %d, %d", first.Goroutines, a.Goroutines, m.Goroutines, b.Goroutines))
		fig.add(Row{Case: cs, Name: "open fds start / warm / middle / end", Value: float64(b.OpenFDs),
			Samples: []float64{float64(first.OpenFDs), float64(a.OpenFDs), float64(m.OpenFDs), float64(b.OpenFDs)}}.
			target(fmt.Sprintf("end ≤ warm + %d", slack.OpenFDs), b.OpenFDs <= a.OpenFDs+slack.OpenFDs).
			note("%d, %d, %d, %d", first.OpenFDs, a.OpenFDs, m.OpenFDs, b.OpenFDs))
		mib := func(v float64) float64 { return v / (1 << 20) }
		fig.add(Row{Case: cs, Name: "resident memory start / warm / middle / end", Unit: "MiB", Value: mib(b.RSS),
			Samples: []float64{mib(first.RSS), mib(a.RSS), mib(m.RSS), mib(b.RSS)}}.
			target(fmt.Sprintf("end ≤ warm + %.0f MiB", mib(slack.RSS)), b.RSS <= a.RSS+slack.RSS).
			note("%.1f, %.1f, %.1f, %.1f MiB (process_resident_memory_bytes)", mib(first.RSS), mib(a.RSS), mib(m.RSS), mib(b.RSS)))
	} else {
		fig.add(Row{Case: cs, Name: "process figures", Value: float64(len(figures))}.
			target("from at least 20 answers", false))
	}
	fig.add(Row{Case: cs, Name: "wall time", Unit: "s", Value: elapsed.Seconds()})
	fig.save(c.results)
	runCleanups()
}

// kubeWanted decides whether the soak runs the hostile Kubernetes objects.
func kubeWanted(flagValue string) (bool, string) {
	switch flagValue {
	case "on":
		return true, ""
	case "off":
		return false, "-kube off"
	case "auto":
	default:
		fatalf("-kube %q: want on, off or auto", flagValue)
	}
	if os.Getenv(kubetest.SkipEnv) == "1" {
		return false, kubetest.SkipEnv + "=1"
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(kubetest.BinDir(), name)); err != nil {
			return false, fmt.Sprintf("%s not in %s (scripts/kube-tools.sh builds it)", name, kubetest.BinDir())
		}
	}
	return true, ""
}

// waitReady waits for /-/ready (the Kubernetes caches synced).
func waitReady(addr string, x *child) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			fatalf("certwatch not ready after 60s: %s", x.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func firstOf(ss []string, n int) string {
	if len(ss) <= n {
		return strings.Join(ss, "; ")
	}
	return strings.Join(ss[:n], "; ") + fmt.Sprintf("; and %d more", len(ss)-n)
}
