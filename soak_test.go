package main

// The hostile-input soak: the built binary against every kind of hostile
// place at once (internal/hostile), scraped again and again as Prometheus
// would with a 2 s scrape timeout. Every answer must arrive in time, be valid
// and say the right thing about every place, the log must hold no panic,
// and the process's goroutines, descriptors and memory must stay flat.
// bench soak runs the same setup for 1,000 scrapes and more.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/certwatch/certwatch/internal/hostile"
	"github.com/certwatch/certwatch/internal/kubetest"
)

const soakScrapeTimeout = 2 * time.Second

// soakScrapes is 30 (under a minute), or CERTWATCH_SOAK_SCRAPES.
func soakScrapes(t *testing.T) int {
	if v := os.Getenv("CERTWATCH_SOAK_SCRAPES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("CERTWATCH_SOAK_SCRAPES=%q: want a number of at least 10", v)
		}
		return n
	}
	if testing.Short() {
		return 20
	}
	return 30
}

// kubeBinaries says whether internal/kubetest can start a cluster here.
func kubeBinaries() (bool, string) {
	dir := kubetest.BinDir()
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode()&0o111 == 0 {
			return false, fmt.Sprintf("%s not found in %s (scripts/kube-tools.sh builds it; %s names another folder)", name, dir, kubetest.BinEnv)
		}
	}
	return true, ""
}

func TestHostileSoak(t *testing.T) {
	scrapes := soakScrapes(t)
	bin := buildBinary(t)
	setup := hostile.New(t, hostile.Options{})
	for _, n := range setup.Notes {
		t.Logf("left out: %s", n)
	}
	var args []string
	if ok, why := kubeBinaries(); !ok || os.Getenv(kubetest.SkipEnv) == "1" {
		if why == "" {
			why = kubetest.SkipEnv + "=1"
		}
		t.Logf("hostile Kubernetes objects left out: %s", why)
	} else {
		args = append(args, setup.AddKube(t, kubetest.Start(t)))
	}
	configPath := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, configPath, []byte(setup.Config))

	if setup.SlowRead != nil { // confined from its first read on
		bin = setup.SlowRead.Wrapper(t, bin)
	}
	p := startExporter(t, bin, configPath, args...)
	if setup.SlowRead != nil { // again, so the throttle is lifted before certwatch is stopped
		if err := setup.SlowRead.Confine(t, p.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if len(args) > 0 { // the Kubernetes caches sync before answers are complete
		deadline := time.Now().Add(60 * time.Second)
		for code, _ := p.get(t, "/-/ready", nil); code != 200; code, _ = p.get(t, "/-/ready", nil) {
			if time.Now().After(deadline) {
				t.Fatalf("/-/ready still %d after 60s", code)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("%d places (%d good, %d hostile), %d scrapes with a %s scrape timeout", len(setup.Places),
		countGood(setup.Places), len(setup.Places)-countGood(setup.Places), scrapes, soakScrapeTimeout)

	limit := hostile.Allowance(soakScrapeTimeout)
	url := "http://" + p.addr + "/metrics"
	var (
		took     []time.Duration
		figures  = make([]hostile.Figures, 0, scrapes)
		late     []string
		problems = map[string][]int{} // what was misreported, and in which answers
		failed   int                  // answers that never came or did not parse, in a row
	)
	for i := 1; i <= scrapes; i++ {
		d, body, err := hostile.Scrape(url, soakScrapeTimeout, limit+5*time.Second)
		took = append(took, d)
		if d > limit {
			late = append(late, fmt.Sprintf("scrape %d: %s", i, d.Round(time.Millisecond)))
		}
		if err == nil {
			var mfs map[string]*dto.MetricFamily
			if mfs, err = hostile.Parse(body); err == nil {
				for _, pr := range setup.Check(mfs) {
					problems[pr] = append(problems[pr], i)
				}
				var f hostile.Figures
				if f, err = hostile.FiguresOf(mfs); err == nil {
					figures = append(figures, f)
				}
			}
		}
		if err != nil {
			t.Errorf("scrape %d (after %s): %v", i, d.Round(time.Millisecond), err)
			if failed++; failed == 3 {
				t.Errorf("giving up after 3 failed scrapes in a row")
				break
			}
			continue
		}
		failed = 0
	}

	// Every answer in time: Prometheus' timeout plus 10 %.
	sorted := append([]time.Duration(nil), took...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("answer time: median %s, max %s, limit %s", sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), limit)
	if len(late) > 0 {
		t.Errorf("%d of %d answers later than %s (the %s scrape timeout + 10%%): %s", len(late), len(took), limit, soakScrapeTimeout, strings.Join(late, ", "))
	}
	// Every answer right about every place.
	keys := make([]string, 0, len(problems))
	for k := range problems {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("in %d of %d answers (scrapes %s): %s", len(problems[k]), len(took), scrapeList(problems[k]), k)
	}
	// No panic, recovered or not.
	if log := p.stderr.String(); strings.Contains(log, "panic") {
		t.Errorf("the log mentions a panic")
	}
	// Flat: the median of a window after warm-up against the last window.
	if len(figures) < scrapes/2 {
		t.Fatalf("only %d of %d answers carried the process figures", len(figures), scrapes)
	}
	window := max(5, len(figures)/5)
	warm := len(figures) / 4
	early, last := figures[warm:warm+window], figures[len(figures)-window:]
	t.Logf("process after warm-up: %s; at the end: %s (medians of %d scrapes)", hostile.Median(early), hostile.Median(last), window)
	for _, g := range hostile.Flat(early, last, hostile.DefaultSlack) {
		t.Errorf("not flat: %s", g)
	}
}

// scrapeList is "1, 2, 5" or "1, 2, 5, ... (12 in all)".
func scrapeList(ns []int) string {
	var parts []string
	for _, n := range ns[:min(len(ns), 5)] {
		parts = append(parts, strconv.Itoa(n))
	}
	if len(ns) > 5 {
		parts = append(parts, fmt.Sprintf("... (%d in all)", len(ns)))
	}
	return strings.Join(parts, ", ")
}

func countGood(places []hostile.Place) int {
	n := 0
	for _, p := range places {
		if p.Good() {
			n++
		}
	}
	return n
}
